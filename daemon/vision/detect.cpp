// Face detection (vision.h): what every detector shares. The detectors themselves are the
// subclasses of emo_detector in detect_*.cpp (detect.hpp).
#include "detect.hpp"

#include <algorithm>
#include <cmath>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

// emo_detector_track: the window around a face's last box (times its side) and the overlap with
// the last box that makes a face found there the same one.
static const double TRACK_WINDOW = 2.0, TRACK_MIN_IOU = 0.3;

// The lean check (check_lean): the window around a face's box (times its side), the longest side
// it is cut at before BlazeFace scales it to its input (which bounds the copy for a face filling a
// large image), the overlap with the box that makes a face found there the same one, and the score
// BlazeFace must give it (below YuNet's default: the face is known to be there).
static const double LEAN_WINDOW = 2.5, LEAN_MIN_IOU = 0.3;
static const int LEAN_WORK_SIDE = 256;
static const float LEAN_MIN_SCORE = 0.5f;

extern "C" const char *emo_detector_kind_name(emo_detector_kind_t kind) {
        switch (kind) {
        case EMO_DETECTOR_YUNET:
                return "yunet";
        case EMO_DETECTOR_BLAZEFACE:
                return "blazeface";
        case EMO_DETECTOR_HAAR:
                return "haar";
        }
        return NULL;
}

extern "C" int emo_detector_new(const emo_detector_params_t *params, emo_detector_t **ret, emo_error_t *err) {
        return emo__guard(err, [&]() -> int {
                if (!emo__file_exists(params->model_path))
                        return emo__fail(-ENOENT, std::string("cannot read detector model ") +
                                                          (params->model_path ? params->model_path : "(none)"));
                switch (params->kind) {
                case EMO_DETECTOR_YUNET: {
                        emo_detector *d = nullptr, *lean = nullptr;
                        int r = emo__yunet_new(params, &d);
                        if (r < 0 || !params->lean_model_path)
                                return r < 0 ? r : (*ret = d, 0);
                        std::unique_ptr<emo_detector> own(d);
                        if (!emo__file_exists(params->lean_model_path))
                                return emo__fail(-ENOENT, std::string("cannot read the lean check's BlazeFace model ") +
                                                                  params->lean_model_path);
                        emo_detector_params_t lp = *params;
                        lp.kind = EMO_DETECTOR_BLAZEFACE;
                        lp.model_path = params->lean_model_path;
                        lp.lean_model_path = nullptr;
                        lp.score_threshold = LEAN_MIN_SCORE;
                        if ((r = emo__blazeface_new(&lp, &lean)) < 0)
                                return r;
                        own->lean.reset(lean);
                        *ret = own.release();
                        return 0;
                }
                case EMO_DETECTOR_BLAZEFACE:
                        return emo__blazeface_new(params, ret);
                case EMO_DETECTOR_HAAR:
                default:
                        return emo__haar_new(params, ret);
                }
        });
}

extern "C" emo_detector_t *emo_detector_free(emo_detector_t *d) {
        delete d;
        return NULL;
}

double emo__scale_factor(const cv::Mat &src, unsigned max_side) {
        unsigned longest = (unsigned) std::max(src.cols, src.rows);
        return max_side && longest > max_side ? (double) max_side / longest : 1.0;
}

cv::Mat emo__scale_down(const cv::Mat &src, double f) {
        if (f >= 1.0)
                return src;
        cv::Mat small;
        cv::resize(src, small, cv::Size(std::max(1, (int) std::lround(src.cols * f)), std::max(1, (int) std::lround(src.rows * f))),
                   0, 0, cv::INTER_AREA);
        return small;
}

// A box in the pixels of a scaled image (offset by ox, oy there) into the image's own; its roll
// too, which a scale different along the two axes changes.
static emo_face_box_t to_image(const emo_face_box_t &b, int ox, int oy, double sx, double sy) {
        int x0 = (int) std::lround((b.x + ox) * sx), y0 = (int) std::lround((b.y + oy) * sy);
        int x1 = (int) std::lround((b.x + ox + b.width) * sx), y1 = (int) std::lround((b.y + oy + b.height) * sy);
        double a = b.roll * CV_PI / 180;
        float roll = sx == sy ? b.roll : (float) (std::atan2(std::sin(a) * sy, std::cos(a) * sx) * 180 / CV_PI);
        return { x0, y0, x1 - x0, y1 - y0, b.score, roll };
}

static double box_iou(const emo_face_box_t &a, const emo_face_box_t &b) {
        double x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
        double x1 = std::min((double) a.x + a.width, (double) b.x + b.width);
        double y1 = std::min((double) a.y + a.height, (double) b.y + b.height);
        double inter = std::max(0.0, x1 - x0) * std::max(0.0, y1 - y0);
        double uni = (double) a.width * a.height + (double) b.width * b.height - inter;
        return uni > 0 ? inter / uni : 0;
}

// YuNet's lean check (EMO_LEAN_CHECK_MIN_ROLL): each of the n faces (in the image's pixels) it
// reads as leaning is looked for by BlazeFace in a square window LEAN_WINDOW times its side around
// its box, which BlazeFace sees at its whole input (the face then about 40 % of it, a size at which
// its eye line was measured within 3 degrees); the face found there overlapping the box most, by at
// least LEAN_MIN_IOU, gives the roll. A face BlazeFace does not find keeps YuNet's.
static void check_lean(emo_detector_t *d, const cv::Mat &src, double sx, double sy, emo_face_box_t *boxes, size_t n) {
        if (!d->lean)
                return;
        const cv::Rect bounds(0, 0, src.cols, src.rows);
        std::vector<emo_face_box_t> found;
        cv::Mat part, win;
        for (size_t i = 0; i < n; i++) {
                emo_face_box_t &b = boxes[i];
                if (!(std::fabs(b.roll) >= EMO_LEAN_CHECK_MIN_ROLL))
                        continue;
                double cx = (b.x + b.width / 2.0) / sx, cy = (b.y + b.height / 2.0) / sy;
                int s = std::max(8, (int) std::lround(LEAN_WINDOW * std::max(b.width / sx, b.height / sy)));
                cv::Rect w((int) std::lround(cx - s / 2.0), (int) std::lround(cy - s / 2.0), s, s);
                cv::Rect inside = w & bounds;
                if (inside.empty())
                        continue;
                // Cut at no more than LEAN_WORK_SIDE a side, the outside black as in tracking.
                double f = std::min(1.0, (double) LEAN_WORK_SIDE / s);
                if (f < 1)
                        cv::resize(src(inside), part,
                                   cv::Size(std::max(1, (int) std::lround(inside.width * f)),
                                            std::max(1, (int) std::lround(inside.height * f))),
                                   0, 0, cv::INTER_AREA);
                else
                        part = src(inside);
                int top = (int) std::lround((inside.y - w.y) * f), left = (int) std::lround((inside.x - w.x) * f);
                int side = std::max({ (int) std::lround(s * f), top + part.rows, left + part.cols });
                cv::copyMakeBorder(part, win, top, side - top - part.rows, left, side - left - part.cols,
                                   cv::BORDER_CONSTANT, cv::Scalar::all(0));
                found.clear();
                d->lean->find(win, 0, sx / f, found);
                double best = LEAN_MIN_IOU;
                for (const auto &c : found) {
                        emo_face_box_t cw = { (int) std::lround(c.x / f), (int) std::lround(c.y / f),
                                              (int) std::lround(c.width / f), (int) std::lround(c.height / f), c.score,
                                              c.roll };
                        emo_face_box_t fb = to_image(cw, w.x, w.y, sx, sy);
                        double o = box_iou(fb, b);
                        if (o >= best) {
                                best = o;
                                b.roll = fb.roll;
                        }
                }
        }
}

extern "C" unsigned emo_detector_input_side(const emo_detector_t *d) {
        return d->input_side();
}

extern "C" int emo_detector_detect(emo_detector_t *d, const emo_image_t *img, emo_face_box_t *boxes,
                                   size_t max_boxes, size_t *ret_n, emo_error_t *err) {
        return emo__guard(err, [&]() -> int {
                const cv::Mat &src = img->mat;
                const double sx = (double) emo__full_width(img) / src.cols, sy = (double) emo__full_height(img) / src.rows;
                std::vector<emo_face_box_t> found;
                d->find(src, d->params.max_side, sx, found);
                if (img->denom > 1)
                        for (auto &b : found)
                                b = to_image(b, 0, 0, sx, sy);
                found.erase(std::remove_if(found.begin(), found.end(),
                                           [&](const emo_face_box_t &b) {
                                                   return b.width < (int) d->params.min_face ||
                                                          b.height < (int) d->params.min_face || b.width <= 0 ||
                                                          b.height <= 0;
                                           }),
                            found.end());
                std::stable_sort(found.begin(), found.end(), [](const emo_face_box_t &a, const emo_face_box_t &b) {
                        return (int64_t) a.width * a.height > (int64_t) b.width * b.height;
                });
                size_t n = std::min(found.size(), max_boxes);
                std::copy_n(found.begin(), n, boxes);
                check_lean(d, src, sx, sy, boxes, n);
                *ret_n = n;
                return 0;
        });
}

// Following a face: its last box widened TRACK_WINDOW times around its centre is searched at
// EMO__TRACK_SIDE x EMO__TRACK_SIDE pixels (the face then about half of that), and the face found
// there that overlaps the last box most, by at least TRACK_MIN_IOU, is the face again. A face
// moving half its width between two frames still overlaps by 1/3. YuNet's windows go to a second
// instance of the network that keeps that one input size (detect_yunet.cpp). At 96 pixels a
// window costs about a quarter of a 320x240 detection (128: about 40 %), and the boxes stay
// within about 5 % of the detector's on the frame.

extern "C" int emo_detector_track(emo_detector_t *d, const emo_image_t *img, const emo_face_box_t *prev, size_t n,
                                  emo_face_box_t *ret_boxes) {
        /* 0 or 1: a failure only means the caller detects instead, so its reason is not kept. */
        return emo__guard(nullptr, [&]() -> int {
                if (!d->tracks())
                        return 0;
                const cv::Mat &src = img->mat;
                const double sx = (double) emo__full_width(img) / src.cols, sy = (double) emo__full_height(img) / src.rows;
                const cv::Rect bounds(0, 0, src.cols, src.rows);
                // What one detection pass costs in input pixels, against what the windows would.
                double f = emo__scale_factor(src, d->params.max_side);
                if ((double) n * EMO__TRACK_SIDE * EMO__TRACK_SIDE >= (double) src.cols * src.rows * f * f)
                        return 0;
                std::vector<emo_face_box_t> found;
                cv::Mat win;
                for (size_t i = 0; i < n; i++) {
                        const emo_face_box_t &b = prev[i];
                        double side = TRACK_WINDOW * std::max(b.width, b.height) / sx;
                        double cx = (b.x + b.width / 2.0) / sx, cy = (b.y + b.height / 2.0) / sy;
                        int s = std::max(8, (int) std::lround(side));
                        cv::Rect w((int) std::lround(cx - s / 2.0), (int) std::lround(cy - s / 2.0), s, s);
                        cv::Rect inside = w & bounds;
                        if (4 * emo__area(inside) < emo__area(w))
                                return 0; // mostly out of the picture
                        cv::copyMakeBorder(src(inside), win, inside.y - w.y, w.br().y - inside.br().y, inside.x - w.x,
                                           w.br().x - inside.br().x, cv::BORDER_CONSTANT, cv::Scalar::all(0));
                        found.clear();
                        d->find_in_window(win, sx, found);
                        double best = TRACK_MIN_IOU;
                        bool again = false;
                        for (const auto &c : found) {
                                emo_face_box_t fb = to_image(c, w.x, w.y, sx, sy);
                                if (fb.width < (int) d->params.min_face || fb.height < (int) d->params.min_face)
                                        continue;
                                double o = box_iou(fb, b);
                                if (o >= best) {
                                        best = o;
                                        ret_boxes[i] = fb;
                                        again = true;
                                }
                        }
                        if (!again)
                                return 0;
                }
                check_lean(d, src, sx, sy, ret_boxes, n);
                return 1;
        });
}
