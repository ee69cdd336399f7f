// The parts of vision.h that every other file of daemon/vision stands on: the thread's last error
// (emo__fail, emo__guard in internal.hpp), OpenCV's thread count and the compute devices. The rest
// lives in image.cpp (decoding; the header probes in probe.c and jpeg.c), detect.cpp with one
// detect_*.cpp per detector, and classify.cpp.
#include "internal.hpp"

#include <cstdio>
#include <cstring>

#include <opencv2/core/cuda.hpp>
#include <opencv2/core/ocl.hpp>
#include <opencv2/dnn.hpp>

static thread_local std::string last_error;

int emo__fail(int r, const char *why) noexcept {
        try {
                last_error = why;
        } catch (...) {
                try {
                        last_error = "out of memory";
                } catch (...) {
                        last_error.clear();
                }
        }
        return r;
}

int emo__fail(int r, const std::string &why) noexcept {
        return emo__fail(r, why.c_str());
}

void emo__clear_error() noexcept {
        last_error.clear();
}

int emo__report(int r, emo_error_t *err) noexcept {
        if (r < 0 && err)
                snprintf(err->message, sizeof(err->message), "%s",
                         last_error.empty() ? strerror(-r) : last_error.c_str());
        return r;
}

extern "C" void emo_vision_init(int threads) {
        try {
                cv::setNumThreads(threads);
        } catch (...) {
        }
}

/* ---- devices --------------------------------------------------------------------------------- */

static const char *const device_names[] = { "auto", "cpu", "opencl", "cuda" };

extern "C" const char *emo_device_name(emo_device_t d) {
        return (unsigned) d < sizeof(device_names) / sizeof(device_names[0]) ? device_names[d] : NULL;
}

extern "C" int emo_device_from_name(const char *name, emo_device_t *ret) {
        for (unsigned i = 0; i < sizeof(device_names) / sizeof(device_names[0]); i++)
                if (name && strcmp(name, device_names[i]) == 0) {
                        *ret = (emo_device_t) i;
                        return 0;
                }
        return -EINVAL;
}

static bool have_cuda() {
        try {
                return cv::cuda::getCudaEnabledDeviceCount() > 0 &&
                       !cv::dnn::getAvailableTargets(cv::dnn::DNN_BACKEND_CUDA).empty();
        } catch (...) {
                return false;
        }
}

static bool have_opencl() {
        try {
                if (!cv::ocl::haveOpenCL())
                        return false;
                cv::ocl::setUseOpenCL(true);
                return cv::ocl::useOpenCL() && cv::ocl::Device::getDefault().available();
        } catch (...) {
                return false;
        }
}

extern "C" int emo_device_resolve(emo_device_t want, emo_device_t *ret, emo_error_t *err) {
        return emo__guard(err, [&]() -> int {
                switch (want) {
                case EMO_DEVICE_AUTO:
                        *ret = have_cuda() ? EMO_DEVICE_CUDA : EMO_DEVICE_CPU;
                        cv::ocl::setUseOpenCL(false);
                        return 0;
                case EMO_DEVICE_CPU:
                        cv::ocl::setUseOpenCL(false);
                        *ret = want;
                        return 0;
                case EMO_DEVICE_OPENCL:
                        if (!have_opencl())
                                return emo__fail(-ENODEV, "no usable OpenCL device (OpenCV " CV_VERSION
                                                          " has OpenCL support, but no platform or device was found)");
                        *ret = want;
                        return 0;
                case EMO_DEVICE_CUDA:
                        if (!have_cuda())
                                return emo__fail(-ENODEV, "CUDA is not available: this OpenCV " CV_VERSION
                                                          " was built without the CUDA DNN backend, or no CUDA device is present");
                        *ret = want;
                        return 0;
                }
                return emo__fail(-EINVAL, "unknown device");
        });
}

void emo__dnn_target(emo_device_t d, int *backend, int *target) {
        switch (d) {
        case EMO_DEVICE_CUDA:
                *backend = cv::dnn::DNN_BACKEND_CUDA;
                *target = cv::dnn::DNN_TARGET_CUDA;
                break;
        case EMO_DEVICE_OPENCL:
                *backend = cv::dnn::DNN_BACKEND_OPENCV;
                *target = cv::dnn::DNN_TARGET_OPENCL;
                break;
        default:
                *backend = cv::dnn::DNN_BACKEND_OPENCV;
                *target = cv::dnn::DNN_TARGET_CPU;
        }
}

bool emo__file_exists(const char *path) {
        FILE *f = path ? fopen(path, "rb") : NULL;
        if (f)
                fclose(f);
        return f != NULL;
}
