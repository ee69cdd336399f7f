// YuNet (cv::FaceDetectorYN with face_detection_yunet_2022mar.onnx): the default detector, and the
// one whose boxes the classifier's framing was measured against.
#include "detect.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

// The smallest input side YuNet's network accepts, with a margin (measured: 63 works, 60 fails).
enum { YUNET_MIN_SIDE = 64 };

namespace {

struct yunet final : emo_detector {
        cv::Ptr<cv::FaceDetectorYN> net;
        // The same network at the fixed window size of emo_detector_track. OpenCV DNN reallocates
        // its buffers whenever the input size changes, which cost more than the search itself
        // when one network alternated between the frame and the windows.
        cv::Ptr<cv::FaceDetectorYN> tracker;

        using emo_detector::emo_detector;

        void find(const cv::Mat &src, unsigned max_side, double to_full, std::vector<emo_face_box_t> &found) override {
                (void) to_full; // min_face is applied by the caller
                double f = emo__scale_factor(src, max_side);
                cv::Mat small = emo__scale_down(src, f), bgr, faces;
                if (small.channels() == 1)
                        cv::cvtColor(small, bgr, cv::COLOR_GRAY2BGR);
                else
                        bgr = small;
                if (bgr.cols < YUNET_MIN_SIDE || bgr.rows < YUNET_MIN_SIDE) {
                        // YuNet's network cannot take an input under about 63 pixels on a side
                        // (OpenCV fails on a pooling layer): pad small images, such as a 48x48
                        // FER2013 face, right and bottom, where the boxes keep their coordinates.
                        cv::Mat padded;
                        cv::copyMakeBorder(bgr, padded, 0, std::max(0, YUNET_MIN_SIDE - bgr.rows), 0,
                                           std::max(0, YUNET_MIN_SIDE - bgr.cols), cv::BORDER_CONSTANT, cv::Scalar::all(0));
                        bgr = padded;
                }
                net->setInputSize(bgr.size());
                net->detect(bgr, faces);
                boxes(faces, 1, f, found);
        }

        unsigned input_side() const override {
                return params.max_side;
        }

        bool tracks() const override {
                return true;
        }

        void find_in_window(const cv::Mat &win, double to_full, std::vector<emo_face_box_t> &found) override {
                (void) to_full;
                cv::Mat small, bgr, faces;
                cv::resize(win, small, cv::Size(EMO__TRACK_SIDE, EMO__TRACK_SIDE), 0, 0,
                           win.cols > EMO__TRACK_SIDE ? cv::INTER_AREA : cv::INTER_LINEAR);
                if (small.channels() == 1)
                        cv::cvtColor(small, bgr, cv::COLOR_GRAY2BGR);
                else
                        bgr = small;
                tracker->detect(bgr, faces);
                boxes(faces, (double) win.cols / EMO__TRACK_SIDE, 1, found);
        }

        // YuNet's rows (x, y, w, h, five key points, score), scaled by mul / div. The key points
        // begin with the right eye (on the image's left) and the left eye; their line gives the roll.
        static void boxes(const cv::Mat &faces, double mul, double div, std::vector<emo_face_box_t> &found) {
                for (int i = 0; i < faces.rows; i++) {
                        const float *row = faces.ptr<float>(i);
                        float roll = (float) (std::atan2(row[7] - row[5], row[6] - row[4]) * 180 / CV_PI);
                        found.push_back({ (int) (row[0] * mul / div), (int) (row[1] * mul / div),
                                          (int) (row[2] * mul / div), (int) (row[3] * mul / div), row[14],
                                          std::isfinite(roll) ? roll : 0.0f });
                }
        }
};

} // namespace

int emo__yunet_new(const emo_detector_params_t *params, emo_detector **ret) {
        int backend, target;
        emo__dnn_target(params->device, &backend, &target);
        auto d = std::make_unique<yunet>(*params);
        d->net = cv::FaceDetectorYN::create(params->model_path, "", cv::Size(320, 320), params->score_threshold, 0.3f,
                                            5000, backend, target);
        // Run once so a model that loads but cannot infer fails now, not per request.
        cv::Mat probe(240, 320, CV_8UC3, cv::Scalar(127, 127, 127)), faces;
        d->net->setInputSize(probe.size());
        d->net->detect(probe, faces);
        // The tracker, run once too, so that a stream's first followed frame pays no setup.
        d->tracker = cv::FaceDetectorYN::create(params->model_path, "", cv::Size(EMO__TRACK_SIDE, EMO__TRACK_SIDE),
                                                params->score_threshold, 0.3f, 5000, backend, target);
        cv::Mat window(EMO__TRACK_SIDE, EMO__TRACK_SIDE, CV_8UC3, cv::Scalar(127, 127, 127));
        d->tracker->detect(window, faces);
        *ret = d.release();
        return 0;
}
