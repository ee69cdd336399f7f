// The emotion classifier (vision.h): each face's region framed like the training faces, cut from
// the finest pixels at hand, scaled to the network's input, classified in one batch. Models are
// ONNX files with a JSON card (daemon/model.c reads it into emo_classifier_params_t).
#include "internal.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <vector>

#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "jpeg.h"

struct emo_classifier {
        emo_classifier_params_t params;
        cv::dnn::Net net;
        std::vector<cv::Mat> crops; // reused between calls
};

extern "C" int emo_classifier_new(const emo_classifier_params_t *params, emo_classifier_t **ret, emo_error_t *err) {
        return emo__guard(err, [&]() -> int {
                if (!emo__file_exists(params->onnx_path))
                        return emo__fail(-ENOENT, std::string("cannot read model ") + (params->onnx_path ?: "(none)"));
                if (params->width == 0 || params->height == 0 || params->std <= 0 || params->scale <= 0 ||
                    params->framing_scale <= 0)
                        return emo__fail(-EINVAL, "model metadata has an impossible input size, scale, std or framing");
                auto c = new emo_classifier;
                try {
                        c->params = *params;
                        c->net = cv::dnn::readNetFromONNX(params->onnx_path);
                        int backend, target;
                        emo__dnn_target(params->device, &backend, &target);
                        c->net.setPreferableBackend(backend);
                        c->net.setPreferableTarget(target);
                        int shape[] = { 2, 1, (int) params->height, (int) params->width };
                        c->net.setInput(cv::Mat(4, shape, CV_32F, cv::Scalar(0)));
                        cv::Mat out = c->net.forward();
                        if (out.dims != 2 || out.rows != 2 || out.cols != EMO_EMOTION_COUNT) {
                                delete c;
                                return emo__fail(-EINVAL, "model does not map [N,1,H,W] to [N,7]");
                        }
                } catch (...) {
                        delete c;
                        throw;
                }
                *ret = c;
                return 0;
        });
}

extern "C" emo_classifier_t *emo_classifier_free(emo_classifier_t *c) {
        delete c;
        return NULL;
}

// The region the model is to see for a face box, in image coordinates: the box itself when
// exact, else the square that the model's framing puts around it. -EINVAL when it has no area or
// an edge falls outside int, which cv::Rect holds and sums (a region of billions of pixels, only
// possible with a huge max_pixels).
static int face_region(const emo_classifier_params_t &p, const emo_face_box_t &b, bool exact, cv::Rect *ret) {
        double x = b.x, y = b.y, w = b.width, h = b.height;
        if (!exact) {
                double side = p.framing_scale * std::max(b.width, b.height);
                double cx = b.x + b.width / 2.0 + p.offset_x * side;
                double cy = b.y + b.height / 2.0 + p.offset_y * side;
                x = std::round(cx - side / 2);
                y = std::round(cy - side / 2);
                w = h = std::max(1.0, std::round(side));
        }
        if (!(w > 0 && h > 0))
                return emo__fail(-EINVAL, "face region has no area");
        if (!(x >= INT_MIN && y >= INT_MIN && x + w <= INT_MAX && y + h <= INT_MAX))
                return emo__fail(-EINVAL, "face region is too large");
        *ret = cv::Rect((int) x, (int) y, (int) w, (int) h);
        return 0;
}

// The square that holds framed (a square) turned by roll degrees about its centre: what a face
// to be turned upright is cut from. -EINVAL past int, as face_region.
static int turned_region(const cv::Rect &framed, double roll, cv::Rect *ret) {
        double a = roll * CV_PI / 180;
        double side = std::ceil(framed.width * (std::fabs(std::cos(a)) + std::fabs(std::sin(a))));
        double x = framed.x + (framed.width - side) / 2, y = framed.y + (framed.height - side) / 2;
        x = std::floor(x), y = std::floor(y);
        if (!(x >= INT_MIN && y >= INT_MIN && x + side <= INT_MAX && y + side <= INT_MAX))
                return emo__fail(-EINVAL, "face region is too large");
        *ret = cv::Rect((int) x, (int) y, (int) side, (int) side);
        return 0;
}

// The input in for a face turned by roll degrees: from patch, the region turned_region gave cut
// at twice the input's resolution, the framed square turned about its centre so that the eyes lie
// level, then reduced to in (so that the turn's interpolation is not the last word on the pixels).
static void turn_upright(const cv::Mat &patch, const cv::Rect &framed, const cv::Rect &region, double roll,
                         const cv::Size &in, cv::Mat &face) {
        // The framed square's centre in patch pixels; 2 x in is the framed square's size there.
        double fx = (double) patch.cols / region.width, fy = (double) patch.rows / region.height;
        cv::Point2f centre((float) ((framed.x + framed.width / 2.0 - region.x) * fx),
                           (float) ((framed.y + framed.height / 2.0 - region.y) * fy));
        cv::Mat m = cv::getRotationMatrix2D(centre, roll, 1.0), upright;
        m.at<double>(0, 2) += in.width - centre.x;
        m.at<double>(1, 2) += in.height - centre.y;
        cv::warpAffine(patch, upright, m, cv::Size(2 * in.width, 2 * in.height), cv::INTER_LINEAR,
                       cv::BORDER_REPLICATE);
        cv::resize(upright, face, in, 0, 0, cv::INTER_AREA);
}

// What padding want with the replicated border and scaling it to in gives, computed at the size
// of in: the part of want inside the image (gray, at inside), widened by two pixels' worth of the
// output where it borders padding (replicated, so the edge is not smoothed into the image's own
// pixels), is scaled to its place in the input, and the rest is replicated from its border.
// One axis at a time, the cheaper to widen first: two pixels of the output can be thousands of
// the image's, and widening both axes of a long thin image at once cost its length times that
// (2.8 GB for a region 480000 pixels a side on a 120000 x 1 image). This way no step holds much
// more than the image and the input.
static cv::Mat scaled_then_padded(const cv::Mat &gray, const cv::Rect &inside, const cv::Rect &want,
                                  const cv::Size &in) {
        // One axis: the margins added at each end (source pixels) and where the widened part lands.
        auto place = [](int from, int to, int origin, int extent, int size, int *pre, int *post, int *lo, int *hi) {
                double f = (double) size / extent;
                int m = (int) std::ceil(2.0 / f);
                *pre = std::min(m, from - origin);
                *post = std::min(m, origin + extent - to);
                from -= *pre;
                to += *post;
                *lo = std::min(size - 1, std::max(0, (int) std::lround((from - (double) origin) * f)));
                *hi = std::min(size, std::max(*lo + 1, (int) std::lround((to - (double) origin) * f)));
        };
        int left, right, top, bottom, x0, x1, y0, y1;
        place(inside.x, inside.x + inside.width, want.x, want.width, in.width, &left, &right, &x0, &x1);
        place(inside.y, inside.y + inside.height, want.y, want.height, in.height, &top, &bottom, &y0, &y1);
        // Widen m along one axis (by pre and post) and scale that axis to extent.
        auto stretch = [](const cv::Mat &m, bool x, int pre, int post, int extent) {
                cv::Mat widened, out;
                cv::copyMakeBorder(m, widened, x ? 0 : pre, x ? 0 : post, x ? pre : 0, x ? post : 0,
                                   cv::BORDER_REPLICATE);
                cv::Size to = x ? cv::Size(extent, widened.rows) : cv::Size(widened.cols, extent);
                cv::resize(widened, out, to, 0, 0,
                           (x ? widened.cols : widened.rows) > extent ? cv::INTER_AREA : cv::INTER_LINEAR);
                return out;
        };
        cv::Mat part, out;
        if ((int64_t) (gray.cols + left + right) * gray.rows <= (int64_t) (gray.rows + top + bottom) * gray.cols)
                part = stretch(stretch(gray, true, left, right, x1 - x0), false, top, bottom, y1 - y0);
        else
                part = stretch(stretch(gray, false, top, bottom, y1 - y0), true, left, right, x1 - x0);
        cv::copyMakeBorder(part, out, y0, in.height - y1, x0, in.width - x1, cv::BORDER_REPLICATE);
        return out;
}

// Where a face's pixels come from: the image as decoded, or, for a face with fewer pixels there
// than the model's input, a finer decode of the part of the image that all such faces cover. A
// source maps the image's coordinates to its own: (x - ox) / fx.
struct source {
        cv::Mat mat;
        double ox = 0, oy = 0, fx = 1, fy = 1;
};

// The finer source for the faces of a scaled image that cover cover, at scale 1/denom: libjpeg's
// region decode when the image allows it, else the whole image at full scale.
static int decode_finer(const emo_image *img, const cv::Rect &whole, const cv::Rect &cover, unsigned denom,
                        source *ret) {
        int r = -ENOTSUP;
        if (img->regions) {
                // libjpeg's scaled size rounds up: its pixels are a little over d.
                unsigned d = denom;
                double fx = (double) whole.width / ((whole.width + d - 1) / d);
                double fy = (double) whole.height / ((whole.height + d - 1) / d);
                unsigned char *buf = nullptr;
                int x, width, rows, channels;
                int y0 = (int) std::floor(cover.y / fy);
                r = emo__jpeg_region(img->jpeg, img->jpeg_len, d, (int) std::floor(cover.x / fx), y0,
                                     (int) std::ceil(cover.br().x / fx), (int) std::ceil(cover.br().y / fy), &buf, &x,
                                     &width, &rows, &channels);
                if (r == -ENOMEM)
                        throw std::bad_alloc();
                if (r >= 0) {
                        try {
                                ret->mat = cv::Mat(rows, width, channels == 3 ? CV_8UC3 : CV_8UC1, buf).clone();
                        } catch (...) {
                                free(buf);
                                throw;
                        }
                        free(buf);
                        ret->ox = x * fx, ret->oy = y0 * fy, ret->fx = fx, ret->fy = fy;
                }
        }
        if (r < 0) {
                // Turned by EXIF, CMYK, or libjpeg's region decoding failed: the whole image at
                // full scale, as a plain decode would have it.
                cv::Mat buf(1, (int) std::min<size_t>(img->jpeg_len, INT32_MAX), CV_8UC1,
                            const_cast<unsigned char *>(img->jpeg));
                ret->mat = cv::imdecode(buf, cv::IMREAD_COLOR);
                if (ret->mat.cols != whole.width || ret->mat.rows != whole.height)
                        return emo__fail(-EBADMSG, "JPEG decoded to another size at full scale");
        }
        return 0;
}

// The model's grey input for the region want (image coordinates) of from, padded by replicating
// the border where want leaves the image.
static int crop_face(const source &from, const cv::Rect &want_image, const cv::Rect &whole, const cv::Size &in,
                     cv::Mat &face) {
        const cv::Mat &src = from.mat;
        auto map = [&](const cv::Rect &r) {
                int x0 = (int) std::lround((r.x - from.ox) / from.fx);
                int y0 = (int) std::lround((r.y - from.oy) / from.fy);
                int x1 = (int) std::lround((r.br().x - from.ox) / from.fx);
                int y1 = (int) std::lround((r.br().y - from.oy) / from.fy);
                return cv::Rect(x0, y0, std::max(1, x1 - x0), std::max(1, y1 - y0));
        };
        bool identity = from.fx == 1 && from.fy == 1 && from.ox == 0 && from.oy == 0;
        const cv::Rect want = identity ? want_image : map(want_image);
        const cv::Rect inside = identity ? want_image & whole : map(want_image & whole) & cv::Rect(0, 0, src.cols, src.rows);
        if (inside.empty())
                return emo__fail(-EINVAL, "face region lies outside the image");
        cv::Mat crop = src(inside), gray, padded;
        if (crop.channels() == 3)
                cv::cvtColor(crop, gray, cv::COLOR_BGR2GRAY);
        else
                gray = crop;
        if (inside != want && emo__area(want) > 4 * emo__area(inside) && emo__area(want) > 4 * emo__area(in)) {
                // Mostly outside the image: padding first would allocate the whole region (a client
                // may send a box far larger than its image). Scale the part inside to where it
                // lands in the model's input, then pad there, so the cost stays that of the input.
                face = scaled_then_padded(gray, inside, want, in);
                return 0;
        }
        if (inside != want) {
                cv::copyMakeBorder(gray, padded, inside.y - want.y, want.br().y - inside.br().y, inside.x - want.x,
                                   want.br().x - inside.br().x, cv::BORDER_REPLICATE);
                gray = padded;
        }
        if (gray.size() == in)
                gray.copyTo(face);
        else
                cv::resize(gray, face, in, 0, 0, gray.cols > in.width ? cv::INTER_AREA : cv::INTER_LINEAR);
        return 0;
}

// The network on c->crops; ret_probs[i] for face i of n, averaged with its mirror under TTA, then
// reweighted by the model's prior correction.
static int run_network(emo_classifier *c, size_t n, const cv::Size &in, float (*ret_probs)[EMO_EMOTION_COUNT]) {
        // blobFromImages computes (pixel - mean) * factor; ours is (pixel * scale - mean) / std.
        const auto &p = c->params;
        cv::Mat blob = cv::dnn::blobFromImages(c->crops, p.scale / p.std, in, cv::Scalar(p.mean / p.scale), false, false,
                                               CV_32F);
        c->net.setInput(blob);
        cv::Mat out = c->net.forward();
        if (out.dims != 2 || out.rows != (int) c->crops.size() || out.cols != EMO_EMOTION_COUNT)
                return emo__fail(-EIO, "model output has an unexpected shape");
        for (size_t i = 0; i < n; i++)
                for (int k = 0; k < EMO_EMOTION_COUNT; k++) {
                        float v = out.at<float>((int) i, k);
                        if (p.tta_hflip)
                                v = (v + out.at<float>((int) (n + i), k)) / 2;
                        ret_probs[i][k] = v;
                }
        if (p.reweight)
                for (size_t i = 0; i < n; i++) {
                        double w[EMO_EMOTION_COUNT], sum = 0;
                        for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                                sum += w[k] = ret_probs[i][k] * p.class_weight[k];
                        if (sum > 0 && std::isfinite(sum))
                                for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                                        ret_probs[i][k] = (float) (w[k] / sum);
                }
        return 0;
}

extern "C" int emo_classifier_classify(emo_classifier_t *c, const emo_image_t *img, const emo_face_box_t *boxes,
                                       size_t n, bool exact_crop, float (*ret_probs)[EMO_EMOTION_COUNT],
                                       emo_error_t *err) {
        return emo__guard(err, [&]() -> int {
                if (n == 0)
                        return 0;
                const cv::Size in((int) c->params.width, (int) c->params.height);
                const cv::Rect whole(0, 0, emo__full_width(img), emo__full_height(img));
                c->crops.resize(c->params.tta_hflip ? 2 * n : n);
                source coarse, fine;
                coarse.mat = img->mat;
                coarse.fx = (double) whole.width / img->mat.cols;
                coarse.fy = (double) whole.height / img->mat.rows;
                std::vector<cv::Rect> wants(n), turned(n);
                std::vector<bool> use_fine(n, false), turn(n, false);
                unsigned fine_denom = img->denom;
                cv::Rect cover;
                for (size_t i = 0; i < n; i++) {
                        int r = face_region(c->params, boxes[i], exact_crop, &wants[i]);
                        if (r < 0)
                                return r;
                        turn[i] = !exact_crop && std::fabs(boxes[i].roll) >= EMO_UPRIGHT_MIN_ROLL &&
                                  std::fabs(boxes[i].roll) <= 180;
                        if (turn[i] && (r = turned_region(wants[i], boxes[i].roll, &turned[i])) < 0)
                                return r;
                        cv::Rect inside = (turn[i] ? turned[i] : wants[i]) & whole;
                        if (inside.empty())
                                return emo__fail(-EINVAL, "face region lies outside the image");
                        if (img->denom == 1 || (wants[i].width / coarse.fx >= in.width &&
                                                wants[i].height / coarse.fy >= in.height))
                                continue;
                        // The coarsest scale at which this face still has the input's pixels.
                        unsigned d = img->denom / 2;
                        while (d > 1 && (wants[i].width / (double) d < in.width || wants[i].height / (double) d < in.height))
                                d /= 2;
                        fine_denom = std::min(fine_denom, d);
                        cover = cover.empty() ? inside : cover | inside;
                        use_fine[i] = true;
                }
                int r;
                if (!cover.empty() && (r = decode_finer(img, whole, cover, fine_denom, &fine)) < 0)
                        return r;
                for (size_t i = 0; i < n; i++) {
                        const source &from = use_fine[i] ? fine : coarse;
                        if (turn[i]) {
                                // Twice the input's resolution over the framed square's side.
                                double k = 2.0 * turned[i].width / wants[i].width;
                                cv::Size big((int) std::lround(in.width * k), (int) std::lround(in.height * k));
                                cv::Mat patch;
                                if ((r = crop_face(from, turned[i], whole, big, patch)) < 0)
                                        return r;
                                turn_upright(patch, wants[i], turned[i], boxes[i].roll, in, c->crops[i]);
                        } else if ((r = crop_face(from, wants[i], whole, in, c->crops[i])) < 0)
                                return r;
                        if (c->params.tta_hflip)
                                cv::flip(c->crops[i], c->crops[n + i], 1);
                }
                return run_network(c, n, in, ret_probs);
        });
}
