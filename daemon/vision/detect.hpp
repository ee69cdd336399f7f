// The detector interface behind emo_detector_t (vision.h): a base class with one subclass per
// detector, each in its own file (detect_yunet.cpp, detect_haar.cpp, detect_blazeface.cpp).
// detect.cpp does what they share: choosing the class, mapping boxes from a scaled image to the
// image's pixels, dropping small faces, sorting, and following faces from frame to frame.
//
// To add a detector: a value of emo_detector_kind_t and its name (vision.h, detect.cpp), a
// subclass in detect_NAME.cpp with a constructor function declared here, and the case in
// emo_detector_new; the daemon's detector setting (daemon/config.c) names it.
#pragma once

#include "internal.hpp"

#include <memory>
#include <vector>

// emo_detector_track: each face is searched for in a window around its last box, scaled to
// EMO__TRACK_SIDE pixels a side.
enum { EMO__TRACK_SIDE = 96 };

struct emo_detector {
        emo_detector_params_t params;
        // YuNet's lean check (params.lean_model_path): BlazeFace, run on windows around the faces
        // read as leaning (emo_detector_detect, emo_detector_track). Null: none.
        std::unique_ptr<emo_detector> lean;

        explicit emo_detector(const emo_detector_params_t &p) : params(p) {}
        virtual ~emo_detector() = default;

        // Faces in src, in src's pixels, in any order. max_side: src is scaled down to at most
        // this longest side to search (0: never; a detector with a fixed input ignores it).
        // to_full: the image's pixels per pixel of src (params.min_face is in the image's).
        virtual void find(const cv::Mat &src, unsigned max_side, double to_full, std::vector<emo_face_box_t> &found) = 0;

        // emo_detector_input_side.
        virtual unsigned input_side() const = 0;

        // Whether find_in_window is cheaper than a detection pass: false makes
        // emo_detector_track answer 0 at once.
        virtual bool tracks() const {
                return false;
        }

        // Faces in win, a square window of a frame around a face's last box, in win's pixels.
        virtual void find_in_window(const cv::Mat &win, double to_full, std::vector<emo_face_box_t> &found) {
                (void) win, (void) to_full, (void) found;
        }
};

// The factor that scales src down to max_side on its longest side: 1 when it fits or max_side is 0.
double emo__scale_factor(const cv::Mat &src, unsigned max_side);

// src scaled by f (< 1) to an explicit size: with a factor alone a very thin image (2000x3) would
// round its short side to 0 pixels, which OpenCV refuses. src itself when f is 1.
cv::Mat emo__scale_down(const cv::Mat &src, double f);

// One constructor per detector: load params->model_path (which exists) and check that the model
// works, so that a broken one fails at start and not per request. -EINVAL, with the reason
// given to emo__fail, when it is not such a model; OpenCV's exceptions pass through.
int emo__yunet_new(const emo_detector_params_t *params, emo_detector **ret);
int emo__haar_new(const emo_detector_params_t *params, emo_detector **ret);
int emo__blazeface_new(const emo_detector_params_t *params, emo_detector **ret);
