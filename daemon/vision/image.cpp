// Images: decoding with limits (vision.h, "images"). Nothing is decoded before emo__probe
// (probe.c) has read the size from the header and the limits below have passed; a JPEG may be
// decoded at a DCT scale for the detector, keeping its bytes for a finer decode of small faces
// (classify.cpp, emo__jpeg_region in jpeg.c).
#include "internal.hpp"

#include <algorithm>
#include <climits>
#include <cstring>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "jpeg.h"
#include "probe.h"

// emo__probe, its refusal kept as the thread's last error.
static int probe(const void *data, size_t len, emo__probe_info_t *ret) {
        int r = emo__probe(data, len, ret);
        if (r < 0 && r != -ENOTSUP)
                return emo__fail(r, ret->why);
        return r;
}

extern "C" int emo_image_probe(const void *data, size_t len, unsigned *ret_width, unsigned *ret_height,
                               emo_error_t *err) {
        return emo__guard(err, [&]() -> int {
                emo__probe_info_t info;
                int r = probe(data, len, &info);
                if (r < 0)
                        return r;
                *ret_width = info.width;
                *ret_height = info.height;
                return 0;
        });
}

static int check_size(uint64_t w, uint64_t h, uint64_t max_pixels) {
        if (w == 0 || h == 0)
                return emo__fail(-EBADMSG, "image has no pixels");
        if (w * h > max_pixels || w > INT32_MAX / 4 || h > INT32_MAX / 4)
                return emo__fail(-E2BIG, "image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels is over the limit of " +
                                                 std::to_string(max_pixels) + " pixels");
        return 0;
}

// The DCT scale at which a JPEG is decoded for a detector that wants need_side pixels on the
// longest side: the smallest of 1/8, 1/4, 1/2 whose longest side (libjpeg rounds up) is still at
// least that; 1 when none is, when need_side is 0 (the detector takes any size), or for a
// progressive JPEG, whose scans cost the same at any scale and which the region decoding of
// classify.cpp would pass over a second time (the scan budget counts one decode).
static unsigned decode_denom(unsigned w, unsigned h, size_t scans, unsigned need_side) {
        if (need_side == 0 || scans > 1)
                return 1;
        unsigned longest = std::max(w, h);
        for (unsigned d : { 8u, 4u, 2u })
                if ((longest + d - 1) / d >= need_side)
                        return d;
        return 1;
}

static int decode(const void *data, size_t len, uint64_t max_pixels, unsigned need_side, emo_image_t **ret,
                  emo_error_t *err) {
        return emo__guard(err, [&]() -> int {
                const unsigned char *p = static_cast<const unsigned char *>(data);
                if (len == 0)
                        return emo__fail(-EBADMSG, "empty image");
                emo__probe_info_t info;
                int r = probe(data, len, &info);
                if (r == -ENOTSUP)
                        // Only formats whose size can be read before decoding: OpenCV's own limit
                        // (OPENCV_IO_MAX_IMAGE_PIXELS) is fixed when the library loads, at 2^30
                        // pixels unless the environment says otherwise (the systemd unit sets it
                        // to the default max_pixels), so it is only a backstop.
                        return emo__fail(-EBADMSG, "not an image in a format this daemon decodes "
                                                   "(JPEG, PNG, WebP, BMP, TIFF, PNM)");
                if (r < 0)
                        return r;
                unsigned w = info.width, h = info.height;
                size_t scans = info.scans;
                if ((r = check_size(w, h, max_pixels)) < 0)
                        return r;
                // A block the decoder allocates besides the image (a TIFF tile) costs like an image
                // of its size, however small the image: it is held to the same limit.
                if (info.block_what && info.block_width * info.block_height > max_pixels)
                        return emo__fail(-E2BIG, std::string(info.block_what) + " of " + std::to_string(info.block_width) +
                                                         "x" + std::to_string(info.block_height) + " pixels are over the "
                                                         "limit of " + std::to_string(max_pixels) + " pixels");
                // Decoding time grows with pixels x scans: on a 2-vCPU VM a 40-megapixel JPEG took
                // 0.5-0.8 s baseline, 1.4-2.0 s with 10 scans, 2.4-4.7 s with 100 (docs/benchmarks.md,
                // scripts/bench_jpeg_scans.sh). No file may cost more than EMO_JPEG_MAX_PASSES
                // passes over the largest image allowed.
                if (max_pixels <= UINT64_MAX / EMO_JPEG_MAX_PASSES &&
                    (uint64_t) scans * w * h > EMO_JPEG_MAX_PASSES * max_pixels)
                        return emo__fail(-E2BIG, std::to_string(w) + "x" + std::to_string(h) + " JPEG of " +
                                                         std::to_string(scans) + " scans (progressive passes): over the "
                                                         "budget of " + std::to_string(EMO_JPEG_MAX_PASSES) + " x " +
                                                         std::to_string(max_pixels) + " pixels decoded; send it "
                                                         "baseline or smaller");
                bool is_jpeg = len >= 3 && p[0] == 0xff && p[1] == 0xd8;
                if (is_jpeg && emo__jpeg_truncated(p, len))
                        return emo__fail(-EBADMSG, "truncated JPEG (no end-of-image marker)");
                unsigned denom = is_jpeg ? decode_denom(w, h, scans, need_side) : 1;
                static const int reduced[] = { 0, 0, cv::IMREAD_REDUCED_COLOR_2, 0, cv::IMREAD_REDUCED_COLOR_4,
                                               0, 0, 0, cv::IMREAD_REDUCED_COLOR_8 };
                cv::Mat buf(1, (int) std::min<size_t>(len, INT32_MAX), CV_8UC1, const_cast<unsigned char *>(p));
                cv::Mat m;
                try {
                        m = cv::imdecode(buf, denom > 1 ? reduced[denom] : cv::IMREAD_COLOR);
                } catch (const cv::Exception &e) {
                        // OpenCV's own size limit tripped: its decoder read the header otherwise than ours.
                        if (strstr(e.what(), "validateInputImageSize"))
                                return emo__fail(-E2BIG, "image dimensions over the limit");
                        return emo__fail(-EBADMSG, std::string("cannot decode image: ") + e.what());
                }
                if (m.empty())
                        return emo__fail(-EBADMSG, "not an image in a format this daemon decodes");
                if (denom == 1) {
                        if ((r = check_size(m.cols, m.rows, max_pixels)) < 0)
                                return r;
                        *ret = new emo_image{ std::move(m) };
                        return 0;
                }
                // OpenCV has turned the image upright by its EXIF orientation, if any: the scaled
                // image is libjpeg's rounded-up size, across or (turned by 90 degrees) down.
                int sw = (int) ((w + denom - 1) / denom), sh = (int) ((h + denom - 1) / denom);
                bool turned = m.cols == sh && m.rows == sw && sw != sh;
                if (!turned && !(m.cols == sw && m.rows == sh))
                        return emo__fail(-EBADMSG, "JPEG decoded to another size than its header says");
                auto img = new emo_image{ std::move(m) };
                img->denom = denom;
                img->width = (int) (turned ? h : w);
                img->height = (int) (turned ? w : h);
                img->jpeg = p;
                img->jpeg_len = len;
                img->regions = !turned && emo__jpeg_orientation(p, len) == 1;
                *ret = img;
                return 0;
        });
}

extern "C" int emo_image_decode(const void *data, size_t len, uint64_t max_pixels, emo_image_t **ret,
                                emo_error_t *err) {
        return decode(data, len, max_pixels, 0, ret, err);
}

extern "C" int emo_image_decode_scaled(const void *data, size_t len, uint64_t max_pixels, unsigned need_side,
                                       emo_image_t **ret, emo_error_t *err) {
        return decode(data, len, max_pixels, need_side, ret, err);
}

extern "C" int emo_image_from_raw(emo_pixel_format_t format, const void *data, size_t len, unsigned width,
                                  unsigned height, unsigned stride, uint64_t max_pixels, emo_image_t **ret,
                                  emo_error_t *err) {
        return emo__guard(err, [&]() -> int {
                unsigned bpp = format == EMO_PIXEL_GRAY8 ? 1 : 3;
                if (width == 0 || height == 0)
                        return emo__fail(-EINVAL, "raw image needs a width and a height");
                int r = check_size(width, height, max_pixels);
                if (r < 0)
                        return r;
                uint64_t row = (uint64_t) width * bpp;
                uint64_t s = stride ? stride : row;
                if (s < row)
                        return emo__fail(-EINVAL, "stride " + std::to_string(s) + " is less than a row of " + std::to_string(row) +
                                                          " bytes");
                if ((uint64_t) len != s * height)
                        return emo__fail(-EINVAL, "raw image holds " + std::to_string(len) + " bytes, " +
                                                          std::to_string(width) + "x" + std::to_string(height) +
                                                          " with stride " + std::to_string(s) + " needs " +
                                                          std::to_string(s * height));
                cv::Mat view((int) height, (int) width, bpp == 1 ? CV_8UC1 : CV_8UC3, const_cast<void *>(data),
                             (size_t) s);
                auto img = new emo_image;
                if (format == EMO_PIXEL_RGB24)
                        cv::cvtColor(view, img->mat, cv::COLOR_RGB2BGR);
                else
                        img->mat = view.clone();
                *ret = img;
                return 0;
        });
}

extern "C" emo_image_t *emo_image_free(emo_image_t *img) {
        delete img;
        return NULL;
}

extern "C" unsigned emo_image_width(const emo_image_t *img) {
        return (unsigned) emo__full_width(img);
}

extern "C" unsigned emo_image_height(const emo_image_t *img) {
        return (unsigned) emo__full_height(img);
}

extern "C" unsigned emo_image_scale(const emo_image_t *img) {
        return img->denom;
}
