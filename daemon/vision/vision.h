/* vision: the only door to OpenCV (which has no C API in version 4). Image decoding with limits,
 * face detection and the emotion CNN, behind opaque handles and plain C types.
 *
 * Every function returns >= 0 on success and a negative errno on failure, the reason in the
 * caller's emo_error_t (emo/error.h; NULL: not wanted), as in the rest of the daemon; no C++
 * exception crosses this header. Detector and classifier handles are not thread-safe: give each
 * worker thread its own.
 *
 * Behind it: vision.cpp (errors, devices), choose.c (the detector policy, plain C), image.cpp
 * (decoding) over the plain-C header probes of probe.c and jpeg.c, detect.cpp with one
 * detect_*.cpp per detector (detect.hpp is their interface), and classify.cpp. See docs/architecture.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emo/error.h"
#include "emo/labels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Process-wide setup, before any other call: the number of threads OpenCV may use per call (1
 * when each worker owns a core). */
void emo_vision_init(int threads);

/* ---- images ---------------------------------------------------------------------------------- */

typedef struct emo_image emo_image_t;

typedef enum emo_pixel_format {
        EMO_PIXEL_GRAY8,
        EMO_PIXEL_BGR24,
        EMO_PIXEL_RGB24,
} emo_pixel_format_t;

/* Read the dimensions from an encoded image's header without decoding it (JPEG, PNG, WebP, BMP,
 * TIFF, PNM). -ENOTSUP for other formats (BigTIFF included, and a PNM magic number without the
 * whitespace OpenCV needs after it), which emo_image_decode refuses for that reason; -EBADMSG for
 * a header that is broken or truncated, or that does not give its size unambiguously (a TIFF
 * directory listing ImageWidth or ImageLength twice, or not as one SHORT or LONG; a PNM width
 * followed directly by a '#' comment: their decoders could read another size; the same for a
 * TIFF's tile, strip, sample and bit fields), a header field that would size a decoder's buffer
 * past what OpenCV decodes (TIFF: more than 4 SamplesPerPixel, BitsPerSample other than 1, 2, 4,
 * 8 or 16; BMP: biBitCount other than 1, 4, 8, 16, 24 or 32, biClrUsed over 256), or a JPEG of
 * more than EMO_JPEG_MAX_SCANS scans (each one a pass over the whole image: a small file of
 * thousands would hold a worker for minutes). */
#define EMO_JPEG_MAX_SCANS 100
int emo_image_probe(const void *data, size_t len, unsigned *ret_width, unsigned *ret_height, emo_error_t *err);

/* A progressive JPEG may cost at most this many passes over an image of max_pixels: scans x width
 * x height <= EMO_JPEG_MAX_PASSES x max_pixels. Encoders write up to about 10 scans, so every
 * ordinary file up to max_pixels passes; 100 scans pass up to a fifth of it. */
#define EMO_JPEG_MAX_PASSES 20

/* Decode an encoded image. Dimensions are checked against max_pixels before any pixel memory is
 * allocated, and so is a TIFF's tile (TileWidth x TileLength) or strip (ImageWidth x
 * RowsPerStrip), which OpenCV allocates whatever the image's size; a progressive JPEG's scans
 * against EMO_JPEG_MAX_PASSES. -E2BIG over a limit, the message naming the fields
 * (decompression bombs included), -EBADMSG when the bytes are
 * not a decodable image or a JPEG is truncated, -ENOMEM. */
int emo_image_decode(const void *data, size_t len, uint64_t max_pixels, emo_image_t **ret, emo_error_t *err);

/* Decode an encoded image for a detector that needs need_side pixels on the longest side (see
 * emo_detector_input_side; 0: any). A baseline JPEG is decoded at the smallest of libjpeg's DCT
 * scales 1/2, 1/4, 1/8 that keeps at least need_side pixels on its longest side, which costs a
 * fraction of a full decode; other formats and progressive JPEGs are decoded in full. Same checks
 * and errors as emo_image_decode, on the image's full size. The image keeps the caller's data
 * (not copied: it must outlive img) to decode the region of faces that are too small at that
 * scale for the classifier at a finer one (emo_classifier_classify). Width, height and every box
 * are in the pixels of the full image, turned upright by its EXIF orientation. */
int emo_image_decode_scaled(const void *data, size_t len, uint64_t max_pixels, unsigned need_side,
                            emo_image_t **ret, emo_error_t *err);

/* Copy raw pixels into an image. stride 0 means width * bytes per pixel. -EINVAL when len is
 * not exactly stride * height or the geometry is impossible, -E2BIG over max_pixels. */
int emo_image_from_raw(emo_pixel_format_t format, const void *data, size_t len, unsigned width, unsigned height,
                       unsigned stride, uint64_t max_pixels, emo_image_t **ret, emo_error_t *err);

/* Accepts NULL, returns NULL. */
emo_image_t *emo_image_free(emo_image_t *img);

unsigned emo_image_width(const emo_image_t *img);
unsigned emo_image_height(const emo_image_t *img);

/* The DCT scale an image was decoded at: 1 (full), 2, 4 or 8. */
unsigned emo_image_scale(const emo_image_t *img);

/* ---- compute devices ------------------------------------------------------------------------- */

typedef enum emo_device {
        EMO_DEVICE_AUTO,
        EMO_DEVICE_CPU,
        EMO_DEVICE_OPENCL,
        EMO_DEVICE_CUDA,
} emo_device_t;

/* "auto", "cpu", "opencl", "cuda"; NULL when out of range. */
const char *emo_device_name(emo_device_t d);

/* Parse a device name; -EINVAL when unknown. */
int emo_device_from_name(const char *name, emo_device_t *ret);

/* Map a wanted device to one this OpenCV build and machine can run. AUTO picks CUDA when
 * available, else CPU (OpenCL is often slower than the CPU for a small CNN, so it is used only
 * when asked for). An explicit device that is missing is -ENODEV, with the reason in err. */
int emo_device_resolve(emo_device_t want, emo_device_t *ret, emo_error_t *err);

/* ---- face detection -------------------------------------------------------------------------- */

typedef struct emo_face_box {
        int x, y, width, height;
        float score; /* detector confidence 0..1 */
        /* Degrees the face is turned in the picture's plane: the angle of the line from its right
         * eye to its left (as the detector's landmarks place them) above the horizontal,
         * clockwise as seen (image y points down). 0 when the detector gives no eyes (Haar) and
         * for a client's boxes. */
        float roll;
} emo_face_box_t;

/* From how far a face is turned (|roll|, degrees) the classifier turns it upright. Turning every
 * face cost up to 0.8 points on upright ones (the detector's eyes are a few degrees off, and the
 * training turns faces by up to 15 degrees anyway); beyond 15 degrees turning gains 3-6 points.
 * YuNet reads the lean short on faces under about 100 pixels at its input (the daemon's usual
 * case: 72 px for a 640-px webcam frame), 11 degrees for 20 and 17 for 30, so the threshold lies
 * below 15: against 15 it gained up to 2.2 points there and lost nothing significant on large or
 * upright faces (scripts/eval_roll.py; docs/REPORT.md, "Faces turned in the picture's plane"). */
#define EMO_UPRIGHT_MIN_ROLL 10.0

typedef enum emo_detector_kind {
        EMO_DETECTOR_YUNET,     /* cv::FaceDetectorYN with face_detection_yunet_2022mar.onnx */
        EMO_DETECTOR_HAAR,      /* cv::CascadeClassifier, e.g. haarcascade_frontalface_default.xml */
        EMO_DETECTOR_BLAZEFACE, /* MediaPipe BlazeFace ONNX (128 front or 256 back model) in OpenCV DNN */
} emo_detector_kind_t;

typedef struct emo_detector_params {
        emo_detector_kind_t kind;
        const char *model_path;
        float score_threshold; /* YuNet, BlazeFace: keep faces scoring at least this */
        unsigned max_side;     /* YuNet, Haar: images are scaled down to this longest side for detection;
                                * 0: never. BlazeFace always sees the image letterboxed to its input. */
        unsigned min_face;     /* smallest face side in pixels of the original image */
        emo_device_t device;   /* resolved device (not AUTO) */
        /* YuNet: a BlazeFace model (EMO_BLAZEFACE_FILE) for a second look at the faces it reads as
         * leaning (EMO_LEAN_CHECK_MIN_ROLL), whose eye line then gives their roll; NULL: none. */
        const char *lean_model_path;
} emo_detector_params_t;

/* YuNet places the eyes of small leaning faces poorly: on CK+48 faces turned 30 degrees, its eye
 * line is 7 degrees off at 107 pixels and 12 at 72 (median). A face it reads as turned by at least
 * this many degrees is looked at again by BlazeFace in a window around its box (check_lean in
 * detect.cpp), one 128x128 pass of 2-6 ms each, and gets BlazeFace's roll, 3 degrees off there:
 * +2.0 points at 30 degrees for the 72-pixel faces, nothing lost on upright ones, which are mostly
 * not looked at (their roll reads under 4). docs/REPORT.md, "YuNet's lean check". */
#define EMO_LEAN_CHECK_MIN_ROLL 4.0

typedef struct emo_detector emo_detector_t;

const char *emo_detector_kind_name(emo_detector_kind_t kind);

/* Load a detector (and its lean check's BlazeFace, when given). -ENOENT missing model file,
 * -EINVAL unusable model. */
int emo_detector_new(const emo_detector_params_t *params, emo_detector_t **ret, emo_error_t *err);

emo_detector_t *emo_detector_free(emo_detector_t *d);

/* Find faces, largest first, at most max_boxes of them. *ret_n is how many were written. Boxes
 * follow YuNet's convention whatever the detector (BlazeFace's are mapped onto it), so that one
 * classifier framing fits all. */
int emo_detector_detect(emo_detector_t *d, const emo_image_t *img, emo_face_box_t *boxes, size_t max_boxes,
                        size_t *ret_n, emo_error_t *err);

/* The longest side the detector works at (YuNet's max_side, BlazeFace's input side); 0: any
 * size, and always for Haar, whose recall drops on a DCT-scaled image. An image need not be
 * decoded with more pixels than that for detection. */
unsigned emo_detector_input_side(const emo_detector_t *d);

/* Follow n faces found in an earlier frame of a stream into img, cheaply: each is searched for in
 * a window of twice its size around its last box, scaled to at most 128 pixels. 1 when each was
 * found again (ret_boxes[i] is where prev[i] is now), 0 when one was not (it left, turned away,
 * or moved more than half its size) or when the windows together would cost a detection pass,
 * and BlazeFace always: the caller runs emo_detector_detect then. ret_boxes is undefined on 0. */
int emo_detector_track(emo_detector_t *d, const emo_image_t *img, const emo_face_box_t *prev, size_t n,
                       emo_face_box_t *ret_boxes);

/* ---- detector choice ------------------------------------------------------------------------- */

/* The detector files' names, as the setup script (scripts/setup-detectors.sh) downloads them. */
#define EMO_YUNET_FILE "face_detection_yunet_2022mar.onnx"
#define EMO_BLAZEFACE_FILE "face_detection_front_128x128_barracuda.onnx"

/* Where the detector files are: configured paths (NULL: searched for yunet and blazeface, OpenCV's
 * haarcascade_frontalface_default.xml for haar) and the install folders to search, each for a
 * detectors/ subfolder (NULL-terminated; after the user's $XDG_DATA_HOME/emotiond/detectors, or
 * ~/.local/share/emotiond/detectors). */
typedef struct emo_detector_files {
        const char *yunet, *blazeface, *haar;
        const char *const *dirs;
} emo_detector_files_t;

typedef struct emo_detector_choice {
        emo_detector_kind_t kind;
        char *path;          /* owned: emo_detector_choice_done */
        char *lean_path;     /* owned; YuNet: the BlazeFace file for its lean check when found, else NULL */
        const char *warning; /* static; non-NULL when auto fell back to a weaker detector: for the log */
} emo_detector_choice_t;

/* The detector policy: want is "yunet", "blazeface", "haar" (that detector, its file found or
 * configured) or "auto" (the first of YuNet, BlazeFace, Haar whose file is there: the order of
 * their measured recall). With YuNet, the BlazeFace file too when there is one, for the lean check
 * (lean_path). Whether the files load is emo_detector_new's business. 0 with *ret;
 * -ENOENT with a message naming the file and the setting when the wanted detector's file is not
 * found; -ENOMEM. */
int emo_detector_choose(const char *want, const emo_detector_files_t *files, emo_detector_choice_t *ret,
                        emo_error_t *err);

void emo_detector_choice_done(emo_detector_choice_t *c);

/* ---- emotion classifier ---------------------------------------------------------------------- */

typedef struct emo_classifier_params {
        const char *onnx_path;
        unsigned width, height; /* network input, one grey channel */
        double scale, mean, std; /* x = (pixel * scale - mean) / std */
        /* Crop framing around a detector box: side = framing_scale * max(w, h), centre shifted by
         * (offset_x, offset_y) * side. */
        double framing_scale, offset_x, offset_y;
        bool tta_hflip;     /* average with the mirrored face */
        /* Multiply the probabilities by class_weight and renormalise (the model's
         * prior_correction, emo_model_t); false: as the network gives them. */
        bool reweight;
        double class_weight[EMO_EMOTION_COUNT];
        emo_device_t device; /* resolved device (not AUTO) */
} emo_classifier_params_t;

typedef struct emo_classifier emo_classifier_t;

/* Load the network and check that it maps [N,1,H,W] to [N,7]. -ENOENT, -EINVAL. */
int emo_classifier_new(const emo_classifier_params_t *params, emo_classifier_t **ret, emo_error_t *err);

emo_classifier_t *emo_classifier_free(emo_classifier_t *c);

/* Classify n faces of img in one batch. A face that has fewer pixels than the network's input in
 * a scaled image (emo_image_decode_scaled) is cropped from a finer decode of the region that all
 * such faces cover (libjpeg-turbo decoding only those rows and columns), or of the whole image
 * when that cannot be done (EXIF-turned, CMYK), so that no face is classified from fewer pixels
 * than a full decode would give it, up to the input's size. A face turned by EMO_UPRIGHT_MIN_ROLL
 * or more is turned upright about its framed square's centre. exact_crop: the boxes are already
 * framed like the training faces, so neither the framing nor the turn is applied. Regions partly outside the image are padded
 * by replicating the border; a region wholly outside is -EINVAL. ret_probs[i] receives the
 * seven probabilities of face i in FER2013 order. */
int emo_classifier_classify(emo_classifier_t *c, const emo_image_t *img, const emo_face_box_t *boxes, size_t n,
                            bool exact_crop, float (*ret_probs)[EMO_EMOTION_COUNT], emo_error_t *err);

#ifdef __cplusplus
}
#endif
