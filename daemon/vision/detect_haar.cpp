// Haar cascades (cv::CascadeClassifier, e.g. haarcascade_frontalface_default.xml): no network,
// the fallback when no ONNX detector is installed.
#include "detect.hpp"

#include <algorithm>
#include <memory>

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

namespace {

struct haar final : emo_detector {
        cv::CascadeClassifier cascade;

        using emo_detector::emo_detector;

        void find(const cv::Mat &src, unsigned max_side, double to_full, std::vector<emo_face_box_t> &found) override {
                double f = emo__scale_factor(src, max_side);
                cv::Mat small = emo__scale_down(src, f), gray;
                if (small.channels() == 3)
                        cv::cvtColor(small, gray, cv::COLOR_BGR2GRAY);
                else
                        gray = small;
                cv::equalizeHist(gray, gray);
                std::vector<cv::Rect> rects;
                int min = std::max(1, (int) (params.min_face * f / to_full));
                cascade.detectMultiScale(gray, rects, 1.1, 5, 0, cv::Size(min, min));
                for (const auto &r : rects)
                        found.push_back({ (int) (r.x / f), (int) (r.y / f), (int) (r.width / f), (int) (r.height / f),
                                          1.0f, 0.0f });
        }

        // Haar found fewer faces on the DCT-scaled image (recall 0.413 against 0.430 in
        // scripts/eval_detectors.py), and its own 350 ms dwarf what decoding saves: any size.
        unsigned input_side() const override {
                return 0;
        }

        bool tracks() const override {
                return true;
        }

        void find_in_window(const cv::Mat &win, double to_full, std::vector<emo_face_box_t> &found) override {
                find(win, EMO__TRACK_SIDE, to_full, found);
        }
};

} // namespace

int emo__haar_new(const emo_detector_params_t *params, emo_detector **ret) {
        auto d = std::make_unique<haar>(*params);
        bool ok;
        try {
                ok = d->cascade.load(params->model_path);
        } catch (const cv::Exception &) {
                ok = false; // OpenCV throws on files that are not XML/YAML at all
        }
        if (!ok)
                return emo__fail(-EINVAL, std::string("not a cascade classifier: ") + params->model_path);
        *ret = d.release();
        return 0;
}
