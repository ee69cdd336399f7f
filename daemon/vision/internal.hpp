// What the C++ files of daemon/vision share and vision.h hides: the image's layout, the error
// channel (fail, guard) and the DNN device mapping. Not for use outside daemon/vision.
#pragma once

#include "vision.h"

#include <cerrno>
#include <cstdint>
#include <new>
#include <string>

#include <opencv2/core.hpp>

struct emo_image {
        cv::Mat mat; // CV_8UC1 or CV_8UC3 (BGR)
        // A JPEG decoded at a DCT scale: mat holds 1/denom of the image, whose own size is
        // width x height; coordinates given to and returned by the API are the image's.
        unsigned denom = 1;
        int width = 0, height = 0;
        // The encoded bytes (the caller's, not copied) to decode a region of at a finer scale when
        // a face is too small in mat for the classifier; regions: libjpeg may decode it directly
        // (baseline, upright, YCbCr or grey), else a full decode through OpenCV serves.
        const unsigned char *jpeg = nullptr;
        size_t jpeg_len = 0;
        bool regions = false;
};

// The image's size, whatever the scale of mat.
static inline int emo__full_width(const emo_image *img) {
        return img->denom > 1 ? img->width : img->mat.cols;
}

static inline int emo__full_height(const emo_image *img) {
        return img->denom > 1 ? img->height : img->mat.rows;
}

// cv::Rect::area() is int in OpenCV 4: a client's region of 46341 pixels a side would wrap.
static inline int64_t emo__area(const cv::Rect &r) {
        return (int64_t) r.width * r.height;
}

static inline int64_t emo__area(const cv::Size &s) {
        return (int64_t) s.width * s.height;
}

// Keep why, for the exported call under way to hand to its caller's emo_error_t (emo__guard), and
// return r. Never throws: guard() calls it in its handlers, where an exception would escape into
// C. Without memory for the text it keeps a short one, which fits the string's own buffer. The
// text is kept per thread between emo__fail and the end of emo__guard only: callers see err.
int emo__fail(int r, const char *why) noexcept;
int emo__fail(int r, const std::string &why) noexcept;

// Forget the last failure's text: each exported call starts with none.
void emo__clear_error() noexcept;

// r, after copying the failure's text into err (when r < 0 and err is not NULL).
int emo__report(int r, emo_error_t *err) noexcept;

// Run f, the body of an exported function, turning every exception into a negative errno and
// the reason of any failure into err.
template <typename F>
static int emo__guard(emo_error_t *err, F &&f) noexcept {
        int r;
        try {
                emo__clear_error();
                r = f();
        } catch (const cv::Exception &e) {
                r = emo__fail(-EIO, e.what());
        } catch (const std::bad_alloc &) {
                r = emo__fail(-ENOMEM, "out of memory");
        } catch (const std::exception &e) {
                r = emo__fail(-EIO, e.what());
        } catch (...) {
                r = emo__fail(-EIO, "unknown C++ exception");
        }
        return emo__report(r, err);
}

// The OpenCV DNN backend and target that run a resolved device.
void emo__dnn_target(emo_device_t d, int *backend, int *target);

// Whether path names a file this process can open.
bool emo__file_exists(const char *path);
