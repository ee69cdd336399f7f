/* The OpenCV door: header probing, decoding with limits (a hostile image must be refused before
 * any pixel memory is allocated), raw pixel buffers, compute devices and the detector. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jpeglib.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fixtures.h"
#include "model.h"
#include "vision/vision.h"

/* What the last failing vision call said (vision.h: each takes an emo_error_t). */
static emo_error_t verr;

#define MAX_PIXELS 40000000ull

/* GCC says it builds with ASan by __SANITIZE_ADDRESS__, clang (EMO_FUZZ) by __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static void init(void) {
        emo_vision_init(1);
}

TestSuite(vision, .init = init);

/* A width x height grey JPEG made with libjpeg, baseline or progressive (libjpeg's script, 6 scans
 * for grey), so these tests need no fixture files. */
static unsigned char *make_jpeg_as(unsigned width, unsigned height, bool progressive, size_t *ret_len) {
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
        if (progressive)
                jpeg_simple_progression(&c);
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

static unsigned char *make_jpeg(unsigned width, unsigned height, size_t *ret_len) {
        return make_jpeg_as(width, height, false, ret_len);
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
        cr_assert_eq(emo_image_probe(jpeg, len, &w, &h, &verr), 0);
        cr_assert_eq(w, 64);
        cr_assert_eq(h, 32);
        unsigned char png[33];
        size_t n = png_header(png, 1920, 1080);
        cr_assert_eq(emo_image_probe(png, n, &w, &h, &verr), 0);
        cr_assert_eq(w, 1920);
        cr_assert_eq(h, 1080);
        free(jpeg);
}

/* A lossless WebP's header: the RIFF and VP8L chunk headers, the VP8L signature byte and the 14-bit
 * width - 1 and height - 1 (no alpha, version 0). Enough for WebPGetInfo, not for a decoder. */
static size_t webp_header(unsigned char p[26], unsigned width, unsigned height) {
        uint32_t bits = (width - 1) | (height - 1) << 14;
        memcpy(p, "RIFF\x12\0\0\0WEBPVP8L\x05\0\0\0\x2f", 21);
        for (int i = 0; i < 4; i++)
                p[21 + i] = (unsigned char) (bits >> (8 * i));
        p[25] = 0; /* the chunk's padding to an even size */
        return 26;
}

Test(vision, probe_webp_headers) {
        unsigned char webp[26];
        unsigned w = 0, h = 0;
        size_t n = webp_header(webp, 300, 200);
        cr_assert_eq(emo_image_probe(webp, n, &w, &h, &verr), 0, "%s", verr.message);
        cr_assert_eq(w, 300);
        cr_assert_eq(h, 200);
        webp[20] = 0x2e; /* not the VP8L signature */
        w = h = 7;
        cr_assert_eq(emo_image_probe(webp, n, &w, &h, &verr), -EBADMSG);
        cr_assert_not_null(strstr(verr.message, "WebP"), "message: %s", verr.message);
        cr_assert_eq(w, 7, "outputs untouched on failure");
        /* What the probe passes, the decoder refuses for its size before decoding. */
        webp_header(webp, 16000, 16000);
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_decode(webp, n, MAX_PIXELS, &img, &verr), -E2BIG, "%s", verr.message);
        cr_assert_null(img);
}

Test(vision, probe_broken_and_unknown_headers) {
        unsigned w = 7, h = 7;
        unsigned char png[33];
        png_header(png, 10, 10);
        cr_assert_eq(emo_image_probe(png, 20, &w, &h, &verr), -EBADMSG, "PNG cut inside IHDR");
        cr_assert_eq(emo_image_probe("\xff\xd8\xff\xe0garbage", 11, &w, &h, &verr), -EBADMSG, "JPEG with a broken header");
        cr_assert_eq(emo_image_probe("GIF89a\x01\x00\x01\x00", 10, &w, &h, &verr), -ENOTSUP);
        cr_assert_eq(emo_image_probe("hello", 5, &w, &h, &verr), -ENOTSUP);
        cr_assert_eq(w, 7, "outputs untouched on failure");
}

Test(vision, decode_jpeg) {
        size_t len;
        unsigned char *jpeg = make_jpeg(64, 32, &len);
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_decode(jpeg, len, MAX_PIXELS, &img, &verr), 0, "%s", verr.message);
        cr_assert_eq(emo_image_width(img), 64);
        cr_assert_eq(emo_image_height(img), 32);
        emo_image_free(img);
        /* Exactly at the limit is allowed, one pixel less is not. */
        cr_assert_eq(emo_image_decode(jpeg, len, 64 * 32, &img, &verr), 0);
        emo_image_free(img);
        img = NULL;
        cr_assert_eq(emo_image_decode(jpeg, len, 64 * 32 - 1, &img, &verr), -E2BIG);
        cr_assert_null(img);
        free(jpeg);
}

/* A 33-byte file claiming 100000 x 100000 pixels (30 GB decoded) is refused from its header. With
 * the address space capped at 2 GiB, any attempt to allocate the image would fail differently
 * (-ENOMEM or a crash), so -E2BIG shows the refusal came first. */
Test(vision, decompression_bomb_refused_before_allocation) {
#if !UNDER_ASAN /* ASan reserves terabytes of address space up front */
        /* Would a 10^10-pixel buffer be allocated, this limit makes the test fail instead of the machine. */
        struct rlimit rl = { 2ull << 30, 2ull << 30 };
        cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
        unsigned char png[33];
        size_t n = png_header(png, 100000, 100000);
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_decode(png, n, MAX_PIXELS, &img, &verr), -E2BIG, "%s", verr.message);
        cr_assert_null(img);
        cr_assert_not_null(strstr(verr.message, "100000x100000"), "message: %s", verr.message);
        /* A header within the limits but no pixel data is a broken image, not a big one. */
        n = png_header(png, 100, 100);
        cr_assert_eq(emo_image_decode(png, n, MAX_PIXELS, &img, &verr), -EBADMSG);
}

/* Small encoders for the formats whose headers the daemon reads itself, so that a header can
 * claim any size. Each writes a complete file of width x height grey pixels (value 0x80) when the
 * size is small, and just the header otherwise (pixels = false). */
static void put16(unsigned char *p, unsigned v) {
        p[0] = (unsigned char) v;
        p[1] = (unsigned char) (v >> 8);
}

static void put32(unsigned char *p, uint32_t v) {
        put16(p, v & 0xffff);
        put16(p + 2, v >> 16);
}

/* 24-bit BMP with a 40-byte BITMAPINFOHEADER; rows padded to 4 bytes. */
static unsigned char *make_bmp(unsigned w, unsigned h, bool pixels, size_t *ret_len) {
        size_t row = ((size_t) w * 3 + 3) & ~(size_t) 3, data = pixels ? row * h : 0, len = 54 + data;
        unsigned char *p = calloc(1, len);
        cr_assert_not_null(p);
        p[0] = 'B';
        p[1] = 'M';
        put32(p + 2, (uint32_t) len);
        put32(p + 10, 54);
        put32(p + 14, 40);
        put32(p + 18, w);
        put32(p + 22, h);
        put16(p + 26, 1);
        put16(p + 28, 24);
        put32(p + 34, (uint32_t) (row * h));
        memset(p + 54, 0x80, data);
        *ret_len = len;
        return p;
}

/* Little-endian uncompressed 8-bit grey TIFF, one strip. */
static unsigned char *make_tiff(unsigned w, unsigned h, bool pixels, size_t *ret_len) {
        static const uint16_t tags[] = { 256, 257, 258, 259, 262, 273, 277, 278, 279 };
        enum { N = sizeof(tags) / sizeof(tags[0]), IFD = 8, DATA = IFD + 2 + 12 * N + 4 };
        size_t data = pixels ? (size_t) w * h : 0, len = DATA + data;
        unsigned char *p = calloc(1, len);
        cr_assert_not_null(p);
        memcpy(p, "II*\0", 4);
        put32(p + 4, IFD);
        put16(p + IFD, N);
        const uint32_t values[] = { w, h, 8, 1, 1, DATA, 1, h, (uint32_t) ((size_t) w * h) };
        for (int i = 0; i < N; i++) {
                unsigned char *e = p + IFD + 2 + 12 * i;
                put16(e, tags[i]);
                put16(e + 2, 4); /* LONG */
                put32(e + 4, 1);
                put32(e + 8, values[i]);
        }
        memset(p + DATA, 0x80, data);
        *ret_len = len;
        return p;
}

/* Binary PGM (P5), with a comment in the header. */
static unsigned char *make_pgm(unsigned w, unsigned h, bool pixels, size_t *ret_len) {
        char head[64];
        int n = snprintf(head, sizeof(head), "P5\n# emotiond test\n%u %u\n255\n", w, h);
        size_t data = pixels ? (size_t) w * h : 0;
        unsigned char *p = malloc((size_t) n + data);
        cr_assert_not_null(p);
        memcpy(p, head, (size_t) n);
        memset(p + n, 0x80, data);
        *ret_len = (size_t) n + data;
        return p;
}

typedef unsigned char *(*make_fn)(unsigned, unsigned, bool, size_t *);

/* Each format: the header is read (sizes as written), a small file decodes, and a header that
 * claims 30000 x 30000 is refused as too large before decoding, under a 2 GiB address-space cap
 * (OpenCV would have allocated 2.7 GB for it). */
Test(vision, bmp_tiff_pnm_are_probed_before_decoding) {
#if !UNDER_ASAN
        struct rlimit rl = { 2ull << 30, 2ull << 30 };
        cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
        const struct {
                const char *name;
                make_fn make;
        } formats[] = { { "BMP", make_bmp }, { "TIFF", make_tiff }, { "PGM", make_pgm } };
        for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
                size_t len;
                unsigned char *p = formats[f].make(1920, 1080, false, &len);
                unsigned w = 0, h = 0;
                cr_expect_eq(emo_image_probe(p, len, &w, &h, &verr), 0, "%s: %s", formats[f].name, verr.message);
                cr_expect(w == 1920 && h == 1080, "%s: probed %ux%u", formats[f].name, w, h);
                free(p);

                p = formats[f].make(7, 5, true, &len);
                emo_image_t *img = NULL;
                cr_expect_eq(emo_image_decode(p, len, MAX_PIXELS, &img, &verr), 0, "%s: %s", formats[f].name,
                             verr.message);
                if (img)
                        cr_expect(emo_image_width(img) == 7 && emo_image_height(img) == 5, "%s: decoded %ux%u",
                                  formats[f].name, emo_image_width(img), emo_image_height(img));
                img = emo_image_free(img);
                free(p);

                p = formats[f].make(30000, 30000, false, &len);
                cr_expect_eq(emo_image_decode(p, len, MAX_PIXELS, &img, &verr), -E2BIG, "%s: %s", formats[f].name,
                             verr.message);
                cr_expect_null(img);
                free(p);
        }
}

/* A format that OpenCV could decode but whose size the daemon cannot read first (here a Sun
 * raster header claiming 30000 x 30000) is refused, saying which formats are taken. */
Test(vision, formats_without_a_probe_are_refused) {
        unsigned char ras[32] = { 0x59, 0xa6, 0x6a, 0x95 };
        for (int i = 0; i < 4; i++) {
                ras[4 + i] = (unsigned char) (30000u >> (24 - 8 * i));
                ras[8 + i] = (unsigned char) (30000u >> (24 - 8 * i));
        }
        ras[15] = 8; /* depth */
        unsigned w, h;
        cr_assert_eq(emo_image_probe(ras, sizeof(ras), &w, &h, &verr), -ENOTSUP);
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_decode(ras, sizeof(ras), MAX_PIXELS, &img, &verr), -EBADMSG);
        cr_assert_null(img);
        cr_assert_not_null(strstr(verr.message, "JPEG, PNG, WebP, BMP, TIFF, PNM"), "message: %s",
                           verr.message);
}

/* Broken headers of the probed formats are decode failures, not crashes or huge reads. */
Test(vision, broken_bmp_tiff_pnm_headers) {
        unsigned w = 7, h = 7;
        cr_expect_eq(emo_image_probe("BM\0\0", 4, &w, &h, &verr), -EBADMSG, "BMP cut short");
        unsigned char tiff[16] = { 'I', 'I', '*', 0, 0xff, 0xff, 0xff, 0x7f };
        cr_expect_eq(emo_image_probe(tiff, sizeof(tiff), &w, &h, &verr), -EBADMSG, "TIFF directory past the end");
        tiff[4] = 8;
        tiff[5] = tiff[6] = tiff[7] = 0;
        tiff[8] = 0xff; /* 255 entries announced, none there */
        cr_expect_eq(emo_image_probe(tiff, sizeof(tiff), &w, &h, &verr), -EBADMSG, "TIFF directory cut short");
        cr_expect_eq(emo_image_probe("P5\n# only a comment", 20, &w, &h, &verr), -EBADMSG, "PNM without sizes");
        cr_expect_eq(emo_image_probe("P6 0 10 255\n", 12, &w, &h, &verr), -EBADMSG, "PNM of zero width");
        cr_expect_eq(w, 7, "outputs untouched on failure");
}

/* OpenCV's PNM reader ends a number at whatever byte follows it and reads on from the byte after,
 * so in "P5 30000#30000\n1 255" it reads 30000 x 30000 where the format (and a probe that skips
 * the comment) says 30000 x 1: the probe checked 30000 pixels while OpenCV allocated 2.7 GB (found
 * by tests/fuzz/fuzz_image). A comment right after the width is refused from the header, before any
 * pixel memory (under a 2 GiB address-space cap, so that a decode attempt would fail otherwise);
 * one after whitespace, or after the height, gives both readers the same size and decodes. */
Test(vision, pnm_comment_right_after_the_width_refused_before_allocation) {
#if !UNDER_ASAN
        struct rlimit rl = { 2ull << 30, 2ull << 30 };
        cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
        static unsigned char file[64 + 32];
        const struct {
                const char *header; /* followed by 32 bytes of pixels */
                uint64_t max_pixels;
                int result;
                unsigned width, height;
        } cases[] = {
                { "P5\n30000#30000\n1\n255\n", MAX_PIXELS, -EBADMSG, 0, 0 }, /* OpenCV: 30000 x 30000 */
                { "P5\n8#4\n2\n255\n", 16, -EBADMSG, 0, 0 },                 /* OpenCV: 8 x 4 */
                { "P5\n8 #4\n2\n255\n", 16, 0, 8, 2 },
                { "P5 8 4#2\n255\n", MAX_PIXELS, 0, 8, 4 }, /* OpenCV: maxval 2 */
        };
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                size_t n = strlen(cases[k].header);
                memcpy(file, cases[k].header, n);
                memset(file + n, 0x80, 32);
                unsigned w = 7, h = 7;
                int r = emo_image_probe(file, n + 32, &w, &h, &verr);
                emo_image_t *img = NULL;
                cr_expect_eq(emo_image_decode(file, n + 32, cases[k].max_pixels, &img, &verr), cases[k].result,
                             "%zu: %s", k, verr.message);
                if (cases[k].result < 0) {
                        cr_expect_eq(r, -EBADMSG, "%zu: probed %ux%u", k, w, h);
                        cr_expect(w == 7 && h == 7, "%zu: outputs untouched on failure", k);
                        cr_expect_not_null(strstr(verr.message, "comment"), "%zu: message: %s", k,
                                           verr.message);
                        cr_expect_null(img);
                } else {
                        cr_expect(r == 0 && w == cases[k].width && h == cases[k].height, "%zu: probed %ux%u", k, w, h);
                        if (img)
                                cr_expect(emo_image_width(img) == cases[k].width &&
                                                  emo_image_height(img) == cases[k].height,
                                          "%zu: decoded %ux%u", k, emo_image_width(img), emo_image_height(img));
                }
                emo_image_free(img);
        }
}

/* OpenCV takes a file for PNM only when whitespace follows its magic number. Any other goes on to
 * the decoders after PNM's, the last of which, GDAL (in Debian's OpenCV), takes one with "DTED" at
 * offset 140 and opens it from a temporary file with whichever of its drivers knows it: here a
 * VRT (XML that may name other files and URLs) of 30000 x 30000 pixels behind what the probe read
 * as a PNM of 1 x 1 (found by tests/fuzz/fuzz_image). Such a file is no PNM, and not decoded. */
Test(vision, pnm_magic_without_whitespace_is_not_pnm) {
#if !UNDER_ASAN
        struct rlimit rl = { 2ull << 30, 2ull << 30 };
        cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
        static const char vrt[] = "--><VRTDataset rasterXSize=\"30000\" rasterYSize=\"30000\">"
                                  "<VRTRasterBand dataType=\"Byte\" band=\"1\"/></VRTDataset>\n";
        char file[144 + sizeof(vrt)];
        memset(file, ' ', sizeof(file));
        memcpy(file, "P5#\n1 1\n255\n<!--", 16);
        memcpy(file + 140, "DTED", 4);
        memcpy(file + 144, vrt, sizeof(vrt) - 1);
        size_t len = sizeof(file) - 1;
        unsigned w = 7, h = 7;
        cr_expect_eq(emo_image_probe(file, len, &w, &h, &verr), -ENOTSUP, "probed %ux%u", w, h);
        cr_expect(w == 7 && h == 7, "outputs untouched on failure");
        emo_image_t *img = NULL;
        cr_expect_eq(emo_image_decode(file, len, MAX_PIXELS, &img, &verr), -EBADMSG, "%s", verr.message);
        cr_expect_null(img);
        cr_expect_not_null(strstr(verr.message, "JPEG, PNG, WebP, BMP, TIFF, PNM"), "message: %s",
                           verr.message);
        emo_image_free(img);
}

/* One TIFF directory entry; value is the entry's own 4 bytes (an offset when they cannot hold it). */
typedef struct tiff_entry {
        uint16_t tag, type; /* type: 3 SHORT, 4 LONG, 8 SSHORT, 9 SLONG */
        uint32_t count, value;
} tiff_entry_t;

/* A little-endian TIFF whose first directory starts with the given ImageWidth (256) and
 * ImageLength (257) entries, in that order, followed by those of one uncompressed 10 x 10 grey
 * strip, which the file holds: libtiff decodes it at whatever size it takes from the entries. */
static unsigned char *make_tiff_entries(const tiff_entry_t *sizes, size_t n_sizes, size_t *ret_len) {
        static const tiff_entry_t strip[] = { { 258, 3, 1, 8 }, { 259, 3, 1, 1 }, { 262, 3, 1, 1 }, { 273, 4, 1, 0 },
                                              { 277, 3, 1, 1 }, { 278, 4, 1, 10 }, { 279, 4, 1, 100 } };
        enum { IFD = 8, N_STRIP = sizeof(strip) / sizeof(strip[0]) };
        size_t n = n_sizes + N_STRIP, data = IFD + 2 + 12 * n + 4, len = data + 100;
        unsigned char *p = calloc(1, len);
        cr_assert_not_null(p);
        memcpy(p, "II*\0", 4);
        put32(p + 4, IFD);
        put16(p + IFD, (unsigned) n);
        for (size_t i = 0; i < n; i++) {
                tiff_entry_t t = i < n_sizes ? sizes[i] : strip[i - n_sizes];
                if (t.tag == 273)
                        t.value = (uint32_t) data;
                unsigned char *e = p + IFD + 2 + 12 * i;
                put16(e, t.tag);
                put16(e + 2, t.type);
                put32(e + 4, t.count);
                put32(e + 8, t.value); /* a SHORT sits in the first two bytes, little-endian */
        }
        memset(p + data, 0x80, 100);
        *ret_len = len;
        return p;
}

/* libtiff (which OpenCV decodes TIFF with) keeps the first ImageWidth and ImageLength of a
 * directory and reads them from any integer type; a probe that kept the last, or skipped types it
 * does not read, checked 10 x 10 against the limit while OpenCV decoded 2^30 pixels. A directory
 * where the probe and libtiff could disagree is refused from its header, before any pixel memory
 * (under a 2 GiB address-space cap, so that a decode attempt would fail otherwise). */
Test(vision, tiff_with_ambiguous_size_refused_before_allocation) {
#if !UNDER_ASAN
        struct rlimit rl = { 2ull << 30, 2ull << 30 };
        cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
        const struct {
                const char *what;
                tiff_entry_t sizes[4];
                size_t n;
        } bad[] = {
                { "sizes listed twice, the large ones first",
                  { { 256, 4, 1, 32768 }, { 257, 4, 1, 32768 }, { 256, 4, 1, 10 }, { 257, 4, 1, 10 } }, 4 },
                { "SSHORT sizes, then SHORT ones",
                  { { 256, 8, 1, 32767 }, { 257, 8, 1, 32767 }, { 256, 3, 1, 10 }, { 257, 3, 1, 10 } }, 4 },
                { "SLONG sizes, then LONG ones",
                  { { 256, 9, 1, 40000 }, { 257, 9, 1, 40000 }, { 256, 4, 1, 10 }, { 257, 4, 1, 10 } }, 4 },
                { "ImageWidth of two values", { { 256, 4, 2, 8 }, { 257, 4, 1, 10 } }, 2 },
                { "no ImageWidth", { { 257, 4, 1, 10 } }, 1 },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                size_t len;
                unsigned char *p = make_tiff_entries(bad[i].sizes, bad[i].n, &len);
                unsigned w = 7, h = 7;
                cr_expect_eq(emo_image_probe(p, len, &w, &h, &verr), -EBADMSG, "%s: probed %ux%u", bad[i].what, w, h);
                cr_expect(w == 7 && h == 7, "%s: outputs untouched on failure", bad[i].what);
                emo_image_t *img = NULL;
                cr_expect_eq(emo_image_decode(p, len, MAX_PIXELS, &img, &verr), -EBADMSG, "%s: %s", bad[i].what,
                             verr.message);
                cr_expect_null(img, "%s: decoded", bad[i].what);
                img = emo_image_free(img);
                /* The refusal names the tag, so it came from the header, not from a failed decode. */
                cr_expect(strstr(verr.message, "TIFF") && (strstr(verr.message, "ImageWidth") ||
                                                           strstr(verr.message, "ImageLength") ||
                                                           strstr(verr.message, "width")),
                          "%s: message: %s", bad[i].what, verr.message);
                free(p);
        }

        /* The same file with one SHORT pair is the 10 x 10 image it holds. */
        const tiff_entry_t good[] = { { 256, 3, 1, 10 }, { 257, 3, 1, 10 } };
        size_t len;
        unsigned char *p = make_tiff_entries(good, 2, &len);
        unsigned w = 0, h = 0;
        cr_expect_eq(emo_image_probe(p, len, &w, &h, &verr), 0, "%s", verr.message);
        cr_expect(w == 10 && h == 10, "probed %ux%u", w, h);
        emo_image_t *img = NULL;
        cr_expect_eq(emo_image_decode(p, len, MAX_PIXELS, &img, &verr), 0, "%s", verr.message);
        if (img)
                cr_expect(emo_image_width(img) == 10 && emo_image_height(img) == 10, "decoded %ux%u",
                          emo_image_width(img), emo_image_height(img));
        img = emo_image_free(img);
        free(p);

        /* BigTIFF (version 43, 64-bit offsets) is not probed, hence not decoded, even when small. */
        unsigned char big[16 + 8 + 2 * 20 + 8] = { 'I', 'I', 43, 0, 8, 0, 0, 0, 16 };
        big[16] = 2;
        for (int i = 0; i < 2; i++) {
                unsigned char *e = big + 24 + 20 * i;
                put16(e, 256 + i);
                put16(e + 2, 4);
                e[4] = 1;
                put32(e + 12, 32768);
        }
        cr_expect_eq(emo_image_probe(big, sizeof(big), &w, &h, &verr), -ENOTSUP);
        cr_expect_eq(emo_image_decode(big, sizeof(big), MAX_PIXELS, &img, &verr), -EBADMSG, "%s", verr.message);
        cr_expect_null(img);
}

/* A 64 x 64 grey TIFF (8 bits, uncompressed) in tiles of 64 x tile_length, or in strips of
 * rows_per_strip rows (tile_length 0), holding every pixel its blocks need. */
static unsigned char *make_tiff_blocks(bool be, uint32_t tile_length, uint32_t rows_per_strip, size_t *ret_len) {
        emo_test_tiff_entry_t e[10] = {
                { 256, 3, 1, { 64 } }, { 257, 3, 1, { 64 } }, { 258, 3, 1, { 8 } },
                { 259, 3, 1, { 1 } },  { 262, 3, 1, { 1 } },  { 277, 3, 1, { 1 } },
        };
        size_t n = 6, block;
        if (tile_length) {
                block = 64 * (size_t) tile_length;
                e[n++] = (emo_test_tiff_entry_t){ 322, 3, 1, { 64 } };
                e[n++] = (emo_test_tiff_entry_t){ 323, 4, 1, { tile_length } };
                e[n++] = (emo_test_tiff_entry_t){ 324, 4, 1, { 0 } };
                e[n++] = (emo_test_tiff_entry_t){ 325, 4, 1, { (uint32_t) block } };
        } else {
                block = 64 * (size_t) rows_per_strip;
                e[n++] = (emo_test_tiff_entry_t){ 273, 4, 1, { 0 } };
                e[n++] = (emo_test_tiff_entry_t){ 278, 4, 1, { rows_per_strip } };
                e[n++] = (emo_test_tiff_entry_t){ 279, 4, 1, { (uint32_t) block } };
        }
        return emo_test_tiff(be, e, n, block, ret_len);
}

/* Decode p under max_pixels and expect want: 0 with the 64 x 64 image these tests' files hold, or
 * an error whose text contains names (NULL: any text); what says which file in a failure. */
static void expect_decode(const char *what, const unsigned char *p, size_t len, uint64_t max_pixels, int want,
                          const char *names) {
        emo_image_t *img = NULL;
        int r = emo_image_decode(p, len, max_pixels, &img, &verr);
        cr_expect_eq(r, want, "%s: %d (%s), want %d", what, r, verr.message, want);
        if (want == 0 && img)
                cr_expect(emo_image_width(img) == 64 && emo_image_height(img) == 64, "%s: decoded %ux%u", what,
                          emo_image_width(img), emo_image_height(img));
        if (want < 0) {
                cr_expect_null(img, "%s: decoded", what);
                cr_expect(!names || strstr(verr.message, names), "%s: the refusal does not name %s: %s",
                          what, names, verr.message);
        }
        emo_image_free(img);
}

/* OpenCV allocates one TIFF tile (or strip) as 32-bit RGBA, whatever the image's size, and libtiff
 * fills a tile whole: the 198-byte tile bomb (64 x 64 pixels, one 16384 x 16368 tile) cost 1 GB.
 * A tile or strip is held to max_pixels like an image: at the limit it decodes, one row over it
 * is refused naming the fields, in both byte orders; the bomb is refused under a 2 GiB cap. */
Test(vision, tiff_tiles_and_strips_are_held_to_max_pixels) {
#if !UNDER_ASAN
        struct rlimit rl = { 2ull << 30, 2ull << 30 };
        cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
        for (int be = 0; be < 2; be++) {
                const char *order = be ? "big-endian" : "little-endian";
                char what[96];
                size_t len;
                unsigned char *p;

                snprintf(what, sizeof(what), "%s, tiles of 64x64 at a limit of 4096 pixels", order);
                p = make_tiff_blocks(be, 64, 0, &len);
                expect_decode(what, p, len, 64 * 64, 0, NULL);
                free(p);
                snprintf(what, sizeof(what), "%s, tiles of 64x65 at a limit of 4096 pixels", order);
                p = make_tiff_blocks(be, 65, 0, &len);
                expect_decode(what, p, len, 64 * 64, -E2BIG, "TileWidth x TileLength");
                cr_expect_not_null(strstr(verr.message, "64x65"), "%s", verr.message);
                free(p);

                snprintf(what, sizeof(what), "%s, strips of 64 rows at a limit of 4096 pixels", order);
                p = make_tiff_blocks(be, 0, 64, &len);
                expect_decode(what, p, len, 64 * 64, 0, NULL);
                free(p);
                snprintf(what, sizeof(what), "%s, strips of 65 rows at a limit of 4096 pixels", order);
                p = make_tiff_blocks(be, 0, 65, &len);
                expect_decode(what, p, len, 64 * 64, -E2BIG, "ImageWidth x RowsPerStrip");
                free(p);
                /* "One strip" (2^32 - 1 rows, libtiff's default) is the image, as OpenCV reads it. */
                const emo_test_tiff_entry_t one[] = {
                        { 256, 3, 1, { 64 } }, { 257, 3, 1, { 64 } }, { 258, 3, 1, { 8 } },        { 259, 3, 1, { 1 } },
                        { 262, 3, 1, { 1 } },  { 273, 4, 1, { 0 } },  { 277, 3, 1, { 1 } },
                        { 278, 4, 1, { UINT32_MAX } }, { 279, 4, 1, { 4096 } },
                };
                snprintf(what, sizeof(what), "%s, one strip of 2^32 - 1 rows", order);
                p = emo_test_tiff(be, one, sizeof(one) / sizeof(one[0]), 4096, &len);
                expect_decode(what, p, len, 64 * 64, 0, NULL);
                free(p);

                snprintf(what, sizeof(what), "%s tile bomb", order);
                p = emo_test_tiff_tile_bomb(be, &len);
                cr_expect_eq(len, 198);
                expect_decode(what, p, len, MAX_PIXELS, -E2BIG, "16384x16368");
                free(p);
        }
}

/* libtiff takes a directory with either tile field as tiled and, when RowsPerStrip comes first,
 * makes a missing TileLength RowsPerStrip: found by libFuzzer with a malloc limit, 210 bytes of a
 * 64 x 64 image with TileWidth 64 and 16,776,960 rows per strip made OpenCV take 4.3 GB. A tiled
 * directory without both fields, or with either zero, is refused naming them, in both byte
 * orders, under a 2 GiB cap. */
Test(vision, tiff_tiles_need_both_tile_fields) {
#if !UNDER_ASAN
        struct rlimit rl = { 2ull << 30, 2ull << 30 };
        cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
        static const struct {
                const char *what;
                int64_t tile_w, tile_l; /* -1: not in the directory */
        } cases[] = {
                { "TileWidth 64, no TileLength", 64, -1 },
                { "no TileWidth, TileLength 64", -1, 64 },
                { "TileWidth 64, TileLength 0", 64, 0 },
                { "TileWidth 0, TileLength 64", 0, 64 },
        };
        for (int be = 0; be < 2; be++)
                for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                        /* PackBits, as the fuzzer's file: libtiff cannot chop its strip into small ones. */
                        emo_test_tiff_entry_t e[12] = {
                                { 256, 3, 1, { 64 } },     { 257, 3, 1, { 64 } }, { 258, 3, 1, { 8 } },
                                { 259, 3, 1, { 32773 } },  { 262, 3, 1, { 1 } },  { 273, 4, 1, { 0 } },
                                { 277, 3, 1, { 1 } },      { 278, 4, 1, { 0xffff00 } },
                        };
                        size_t n = 8;
                        if (cases[i].tile_w >= 0)
                                e[n++] = (emo_test_tiff_entry_t){ 322, 4, 1, { (uint32_t) cases[i].tile_w } };
                        if (cases[i].tile_l >= 0)
                                e[n++] = (emo_test_tiff_entry_t){ 323, 4, 1, { (uint32_t) cases[i].tile_l } };
                        e[n++] = (emo_test_tiff_entry_t){ 324, 4, 1, { 0 } };
                        e[n++] = (emo_test_tiff_entry_t){ 325, 4, 1, { 64 } };
                        char what[96];
                        snprintf(what, sizeof(what), "%s, %s", be ? "big-endian" : "little-endian", cases[i].what);
                        size_t len;
                        unsigned char *p = emo_test_tiff(be, e, n, 64, &len);
                        expect_decode(what, p, len, MAX_PIXELS, -EBADMSG, "TileWidth and TileLength");
                        free(p);
                }
}

/* libtiff's own tile or strip buffer holds SamplesPerPixel x BitsPerSample bits a pixel: the probe
 * takes what OpenCV decodes (RGBA reader: at most 4 samples of 1 to 16 bits) and refuses more,
 * naming the field, in both byte orders. */
Test(vision, tiff_samples_and_bits_are_held_to_what_opencv_decodes) {
        for (int be = 0; be < 2; be++) {
                const char *order = be ? "big-endian" : "little-endian";
                char what[96];
                size_t len;
                unsigned char *p;
                /* RGBA, 4 x 8 bits (the 4 values after the directory), alpha as ExtraSamples. */
                emo_test_tiff_entry_t rgba[] = {
                        { 256, 3, 1, { 64 } }, { 257, 3, 1, { 64 } }, { 258, 3, 4, { 8, 8, 8, 8 } },
                        { 259, 3, 1, { 1 } },  { 262, 3, 1, { 2 } },  { 273, 4, 1, { 0 } },
                        { 277, 3, 1, { 4 } },  { 278, 4, 1, { 64 } }, { 279, 4, 1, { 64 * 64 * 4 } },
                        { 338, 3, 1, { 2 } },
                };
                snprintf(what, sizeof(what), "%s, 4 samples", order);
                p = emo_test_tiff(be, rgba, sizeof(rgba) / sizeof(rgba[0]), 64 * 64 * 4, &len);
                expect_decode(what, p, len, MAX_PIXELS, 0, NULL);
                free(p);
                snprintf(what, sizeof(what), "%s, 5 samples", order);
                rgba[2] = (emo_test_tiff_entry_t){ 258, 3, 1, { 8 } };
                rgba[6].value[0] = 5;
                rgba[8].value[0] = 64 * 64 * 5;
                p = emo_test_tiff(be, rgba, sizeof(rgba) / sizeof(rgba[0]), 64 * 64 * 5, &len);
                expect_decode(what, p, len, MAX_PIXELS, -EBADMSG, "SamplesPerPixel");
                free(p);

                emo_test_tiff_entry_t grey[] = {
                        { 256, 3, 1, { 64 } }, { 257, 3, 1, { 64 } }, { 258, 3, 1, { 16 } },
                        { 259, 3, 1, { 1 } },  { 262, 3, 1, { 1 } },  { 273, 4, 1, { 0 } },
                        { 277, 3, 1, { 1 } },  { 278, 4, 1, { 64 } }, { 279, 4, 1, { 64 * 64 * 2 } },
                };
                snprintf(what, sizeof(what), "%s, 16 bits", order);
                p = emo_test_tiff(be, grey, sizeof(grey) / sizeof(grey[0]), 64 * 64 * 2, &len);
                expect_decode(what, p, len, MAX_PIXELS, 0, NULL);
                free(p);
                snprintf(what, sizeof(what), "%s, 32 bits", order);
                grey[2].value[0] = 32;
                grey[8].value[0] = 64 * 64 * 4;
                p = emo_test_tiff(be, grey, sizeof(grey) / sizeof(grey[0]), 64 * 64 * 4, &len);
                expect_decode(what, p, len, MAX_PIXELS, -EBADMSG, "BitsPerSample");
                free(p);
        }
}

/* A 64 x 64 BMP of `bits` bits per pixel (biBitCount) and `colours` palette entries (biClrUsed;
 * grey ramp, 0 for 1 << bits), holding its palette and pixels. */
static unsigned char *make_bmp_bits(unsigned bits, uint32_t colours, size_t *ret_len) {
        size_t palette = bits <= 8 ? 4 * (size_t) (colours ? colours : 1u << bits) : 0;
        size_t row = ((size_t) 64 * bits + 31) / 32 * 4, len = 54 + palette + row * 64;
        unsigned char *p = calloc(1, len);
        cr_assert_not_null(p);
        p[0] = 'B';
        p[1] = 'M';
        put32(p + 2, (uint32_t) len);
        put32(p + 10, (uint32_t) (54 + palette));
        put32(p + 14, 40);
        put32(p + 18, 64);
        put32(p + 22, 64);
        put16(p + 26, 1);
        put16(p + 28, bits);
        put32(p + 46, colours);
        for (size_t i = 0; i < palette / 4; i++)
                memset(p + 54 + 4 * i, (int) (i & 0xff), 3);
        memset(p + 54 + palette, 0x11, row * 64);
        *ret_len = len;
        return p;
}

/* OpenCV sizes a BMP's row buffer from width x biBitCount and reads biClrUsed entries into a table
 * of 256: the probe takes what OpenCV decodes and refuses more, naming the field. */
Test(vision, bmp_bits_and_palette_are_held_to_what_opencv_decodes) {
        static const struct {
                unsigned bits;
                uint32_t colours;
                int want;
                const char *names;
        } cases[] = {
                { 8, 256, 0, NULL },     { 8, 257, -EBADMSG, "biClrUsed" }, { 4, 0, 0, NULL },
                { 32, 0, 0, NULL },      { 15, 0, -EBADMSG, "biBitCount" }, { 48, 0, -EBADMSG, "biBitCount" },
                { 64, 0, -EBADMSG, "biBitCount" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char what[64];
                snprintf(what, sizeof(what), "BMP of %u bits, %u colours", cases[i].bits, (unsigned) cases[i].colours);
                size_t len;
                unsigned char *p = make_bmp_bits(cases[i].bits, cases[i].colours, &len);
                expect_decode(what, p, len, MAX_PIXELS, cases[i].want, cases[i].names);
                free(p);
        }
}

/* The size of this process's address space, in bytes (unused under ASan). */
__attribute__((unused)) static unsigned long long vm_size(void) {
        FILE *f = fopen("/proc/self/status", "r");
        cr_assert_not_null(f);
        char line[256];
        unsigned long long kib = 0;
        while (fgets(line, sizeof(line), f) && sscanf(line, "VmSize: %llu kB", &kib) != 1)
                ;
        fclose(f);
        cr_assert_gt(kib, 0, "no VmSize in /proc/self/status");
        return kib * 1024;
}

/* No exception crosses vision.h, not even when there is no memory left for the text of an error:
 * one reaching this C caller would end the process (std::terminate). Here the heap is exhausted
 * (the address space capped at what is mapped, then every free block taken) while a broken header
 * is probed, whose error text needs an allocation. */
Test(vision, errors_without_memory_stay_errors) {
#if UNDER_ASAN
        cr_skip_test("ASan's allocator does not run out the way malloc does");
#else
        struct rlimit old, cap;
        cr_assert_eq(getrlimit(RLIMIT_AS, &old), 0);
        cap = (struct rlimit) { vm_size(), old.rlim_max };
        void *held = NULL; /* the blocks taken, linked through their first bytes */
        unsigned w = 7, h = 7;
        /* A first call: vision's thread-local text registers its destructor, with malloc, and stays
         * empty (no buffer the failure's text could reuse). */
        emo_device_t dev;
        cr_assert_eq(emo_device_resolve(EMO_DEVICE_CPU, &dev, &verr), 0);
        cr_assert_eq(setrlimit(RLIMIT_AS, &cap), 0);
        /* Large blocks first, then every small size, each of which malloc may keep apart (tcache). */
        for (size_t size = 1 << 20; size >= sizeof(void *); size = size > 2048 ? size / 2 : size - 8)
                for (void *p; (p = malloc(size));) {
                        *(void **) p = held;
                        held = p;
                }
        emo_image_t *img = NULL;
        int probed = emo_image_probe("BM\0\0", 4, &w, &h, &verr);
        int decoded = emo_image_decode("BM\0\0", 4, MAX_PIXELS, &img, &verr);
        while (held) {
                void *next = *(void **) held;
                free(held);
                held = next;
        }
        cr_assert_eq(setrlimit(RLIMIT_AS, &old), 0);
        cr_expect_eq(probed, -EBADMSG, "probe: %d", probed);
        cr_expect_eq(decoded, -EBADMSG, "decode: %d", decoded);
        cr_expect_null(img);
        /* What fail() keeps when it cannot copy the text; anything else: the heap was not exhausted. */
        cr_expect_str_eq(verr.message, "out of memory");
#endif
}

Test(vision, truncated_jpeg) {
        size_t len;
        unsigned char *jpeg = make_jpeg(256, 256, &len);
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_decode(jpeg, len * 6 / 10, MAX_PIXELS, &img, &verr), -EBADMSG);
        cr_assert_null(img);
        cr_assert_neq(verr.message[0], '\0', "a reason is given");
        free(jpeg);
}

Test(vision, not_an_image) {
        emo_image_t *img = NULL;
        static const char text[] = "This is a text file, not an image.\n";
        cr_assert_eq(emo_image_decode(text, sizeof(text) - 1, MAX_PIXELS, &img, &verr), -EBADMSG);
        unsigned char noise[4096];
        unsigned seed = 1234;
        for (size_t i = 0; i < sizeof(noise); i++)
                noise[i] = (unsigned char) rand_r(&seed);
        cr_assert_eq(emo_image_decode(noise, sizeof(noise), MAX_PIXELS, &img, &verr), -EBADMSG);
        cr_assert_eq(emo_image_decode(noise, 0, MAX_PIXELS, &img, &verr), -EBADMSG, "empty data");
        cr_assert_null(img);
}

Test(vision, raw_buffers) {
        static uint8_t px[10 * 4 * 3];
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 40, 10, 4, 0, MAX_PIXELS, &img, &verr), 0);
        cr_assert_eq(emo_image_width(img), 10);
        cr_assert_eq(emo_image_height(img), 4);
        img = emo_image_free(img);
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_BGR24, px, 120, 10, 4, 0, MAX_PIXELS, &img, &verr), 0);
        img = emo_image_free(img);
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_RGB24, px, 120, 10, 4, 0, MAX_PIXELS, &img, &verr), 0);
        img = emo_image_free(img);
        /* Padded rows: stride 12 for a 10-pixel grey row. */
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 48, 10, 4, 12, MAX_PIXELS, &img, &verr), 0);
        cr_assert_eq(emo_image_width(img), 10);
        img = emo_image_free(img);

        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 39, 10, 4, 0, MAX_PIXELS, &img, &verr), -EINVAL, "one byte short");
        cr_assert_not_null(strstr(verr.message, "40"), "message should give the size needed: %s",
                           verr.message);
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 41, 10, 4, 0, MAX_PIXELS, &img, &verr), -EINVAL, "one byte over");
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_BGR24, px, 40, 10, 4, 0, MAX_PIXELS, &img, &verr), -EINVAL, "grey size as BGR");
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 36, 10, 4, 9, MAX_PIXELS, &img, &verr), -EINVAL, "stride < row");
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 0, 0, 4, 0, MAX_PIXELS, &img, &verr), -EINVAL, "no width");
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, px, 40, 10, 4, 0, 39, &img, &verr), -E2BIG);
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
        cr_assert_eq(emo_device_resolve(EMO_DEVICE_CPU, &d, &verr), 0);
        cr_assert_eq(d, EMO_DEVICE_CPU);

        /* This machine's OpenCV (Debian's) has no CUDA DNN backend: an explicit cuda is an error
         * with a reason, never a silent fallback. */
        d = EMO_DEVICE_AUTO;
        cr_assert_eq(emo_device_resolve(EMO_DEVICE_CUDA, &d, &verr), -ENODEV);
        cr_assert_not_null(strstr(verr.message, "CUDA"), "message: '%s'", verr.message);
        cr_assert_eq(d, EMO_DEVICE_AUTO, "output untouched on failure");

        /* auto falls back to a real device, never to OpenCL and never stays auto. */
        cr_assert_eq(emo_device_resolve(EMO_DEVICE_AUTO, &d, &verr), 0);
        cr_assert_eq(d, EMO_DEVICE_CPU);

        /* OpenCL depends on the machine: either usable, or -ENODEV with a reason. */
        d = EMO_DEVICE_AUTO;
        int r = emo_device_resolve(EMO_DEVICE_OPENCL, &d, &verr);
        cr_assert(r == 0 || r == -ENODEV, "opencl: %d", r);
        if (r == 0)
                cr_assert_eq(d, EMO_DEVICE_OPENCL);
        else
                cr_assert_neq(verr.message[0], '\0', "-ENODEV without a reason");
}

/* A flat grey image of width x height has no face, and detecting in it succeeds. */
static void assert_no_face_in_grey(emo_detector_t *d, unsigned width, unsigned height) {
        static uint8_t grey[640 * 480];
        cr_assert_leq((size_t) width * height, sizeof(grey));
        memset(grey, 128, sizeof(grey));
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_GRAY8, grey, (size_t) width * height, width, height, 0, MAX_PIXELS,
                                        &img, &verr),
                     0);
        emo_face_box_t boxes[4];
        size_t n = 99;
        cr_assert_eq(emo_detector_detect(d, img, boxes, 4, &n, &verr), 0, "%s", verr.message);
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
        cr_assert_eq(emo_detector_new(&p, &d, &verr), -ENOENT);
        cr_assert_not_null(strstr(verr.message, "/nonexistent/yunet.onnx"), "%s", verr.message);
        cr_assert_null(d);

        p.model_path = emo_test_yunet();
        cr_assert_eq(emo_detector_new(&p, &d, &verr), 0, "%s: %s", p.model_path, verr.message);
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
        cr_assert_eq(emo_detector_new(&p, &d, &verr), -ENOENT);
        p.model_path = emo_test_yunet();
        int r = emo_detector_new(&p, &d, &verr);
        cr_assert_eq(r, -EINVAL, "YuNet taken for BlazeFace: %d %s", r, verr.message);
        cr_assert_not_null(strstr(verr.message, "not a BlazeFace model"), "%s", verr.message);
        cr_assert_null(d);

        p.model_path = path;
        cr_assert_eq(emo_detector_new(&p, &d, &verr), 0, "%s: %s", path, verr.message);
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
        int r = emo_detector_new(&p, &d, &verr);
        cr_assert_eq(r, -EINVAL, "got %d: %s", r, verr.message);
        cr_assert_null(d);
        cr_assert_eq(emo_detector_new(&(emo_detector_params_t) { .kind = EMO_DETECTOR_HAAR,
                                                                 .model_path = "/nonexistent/haar.xml" },
                                      &d, &verr),
                     -ENOENT);
}

Test(vision, classifier_missing_file) {
        emo_classifier_params_t p = {
                .onnx_path = "/nonexistent/model.onnx",
                .width = 48, .height = 48, .scale = 1.0 / 255, .mean = 0.5, .std = 0.25,
                .framing_scale = 1.0, .device = EMO_DEVICE_CPU,
        };
        emo_classifier_t *c = NULL;
        cr_assert_eq(emo_classifier_new(&p, &c, &verr), -ENOENT);
        cr_assert_null(c);
}

/* How many times the marker FF DA (start of scan) occurs in p. */
static size_t count_scans(const unsigned char *p, size_t len) {
        size_t n = 0;
        for (size_t i = 0; i + 1 < len; i++)
                n += p[i] == 0xff && p[i + 1] == 0xda;
        return n;
}

/* p (a progressive JPEG) with its shortest scan repeated `extra` more times before the end
 * marker: libjpeg decodes such a file (it only warns), one pass over the image per scan. */
static unsigned char *with_extra_scans(const unsigned char *p, size_t len, size_t extra, size_t *ret_len) {
        cr_assert(len > 4 && p[len - 2] == 0xff && p[len - 1] == 0xd9, "test bug: no end marker");
        size_t best = 0, best_len = SIZE_MAX;
        for (size_t i = 0; i + 1 < len - 2; i++) {
                if (!(p[i] == 0xff && p[i + 1] == 0xda))
                        continue;
                size_t j = i + 2;
                while (j + 1 < len - 2 && !(p[j] == 0xff && p[j + 1] == 0xda))
                        j++;
                size_t scan_len = (j + 1 < len - 2 ? j : len - 2) - i;
                if (scan_len < best_len)
                        best = i, best_len = scan_len;
        }
        cr_assert(best_len != SIZE_MAX, "test bug: no scan");
        *ret_len = len + extra * best_len;
        unsigned char *out = malloc(*ret_len);
        cr_assert_not_null(out);
        memcpy(out, p, len - 2);
        for (size_t k = 0; k < extra; k++)
                memcpy(out + len - 2 + k * best_len, p + best, best_len);
        memcpy(out + *ret_len - 2, p + len - 2, 2);
        return out;
}

/* A progressive JPEG decodes; one of EMO_JPEG_MAX_SCANS scans still does, one scan more is refused
 * by the probe, before any decoding (each scan is a pass over the whole image, and a small file
 * of thousands kept a worker busy past the watchdog). */
Test(vision, jpeg_scans_are_limited) {
        size_t len;
        unsigned char *prog = make_jpeg_as(256, 192, true, &len);
        size_t own = count_scans(prog, len);
        cr_assert(own > 1 && own < EMO_JPEG_MAX_SCANS, "test bug: %zu scans", own);
        const struct {
                size_t extra;
                int probe, decode;
        } cases[] = { { 0, 0, 0 }, { EMO_JPEG_MAX_SCANS - own, 0, 0 }, { EMO_JPEG_MAX_SCANS - own + 1, -EBADMSG, -EBADMSG } };
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                size_t n;
                unsigned char *p = with_extra_scans(prog, len, cases[k].extra, &n);
                size_t scans = count_scans(p, n);
                unsigned w = 0, h = 0;
                cr_expect_eq(emo_image_probe(p, n, &w, &h, &verr), cases[k].probe, "%zu scans: probe: %s", scans,
                             verr.message);
                emo_image_t *img = NULL;
                cr_expect_eq(emo_image_decode(p, n, MAX_PIXELS, &img, &verr), cases[k].decode, "%zu scans: decode: %s", scans,
                             verr.message);
                if (cases[k].decode == 0 && img)
                        cr_expect(emo_image_width(img) == 256 && emo_image_height(img) == 192, "%zu scans: decoded %ux%u",
                                  scans, emo_image_width(img), emo_image_height(img));
                else
                        cr_expect_not_null(strstr(verr.message, "scans"), "%zu scans: message: %s", scans,
                                           verr.message);
                emo_image_free(img);
                free(p);
        }
        free(prog);
}

/* Decoding time grows with pixels x scans: a progressive JPEG may cost at most EMO_JPEG_MAX_PASSES
 * passes over an image of max_pixels. The same 60-scan file is refused (image too large, the reason
 * named) where max_pixels makes that more than 20 passes, decoded where it does not; its 6-scan
 * original and a baseline JPEG decode at max_pixels = their own size. */
Test(vision, jpeg_scans_times_pixels_are_limited) {
        size_t len, blen;
        unsigned char *prog = make_jpeg_as(256, 192, true, &len);
        unsigned char *base = make_jpeg_as(256, 192, false, &blen);
        const uint64_t pixels = 256 * 192;
        size_t own = count_scans(prog, len), n;
        cr_assert(own > 1 && own <= EMO_JPEG_MAX_PASSES, "test bug: %zu scans", own);
        unsigned char *p = with_extra_scans(prog, len, 60 - own, &n);
        cr_assert_eq(count_scans(p, n), 60);
        emo_image_t *img = NULL;
        /* 60 passes over `pixels` against a budget of 20 x 2 x pixels: refused. */
        cr_expect_eq(emo_image_decode(p, n, 2 * pixels, &img, &verr), -E2BIG, "%s", verr.message);
        cr_expect_null(img);
        cr_expect_not_null(strstr(verr.message, "60 scans"), "%s", verr.message);
        /* Against 20 x 3 x pixels: exactly at the budget, decoded. */
        cr_expect_eq(emo_image_decode(p, n, 3 * pixels, &img, &verr), 0, "%s", verr.message);
        img = emo_image_free(img);
        cr_expect_eq(emo_image_decode(prog, len, pixels, &img, &verr), 0, "%s", verr.message);
        img = emo_image_free(img);
        cr_expect_eq(emo_image_decode(base, blen, pixels, &img, &verr), 0, "%s", verr.message);
        emo_image_free(img);
        free(p);
        free(base);
        free(prog);
}

/* Only real scans count: FF DA bytes inside a marker segment's payload (an APP segment of binary
 * metadata, here 150 of them) or after the end of the image (a second image appended) do not. */
Test(vision, jpeg_scan_limit_reads_only_scans) {
        size_t len;
        unsigned char *prog = make_jpeg_as(64, 48, true, &len);
        enum { PAIRS = 150, SEGMENT = 4 + 2 * PAIRS };
        size_t n = len + SEGMENT + 2 * PAIRS;
        unsigned char *p = malloc(n);
        cr_assert_not_null(p);
        memcpy(p, prog, 2); /* start of image */
        unsigned char *q = p + 2;
        *q++ = 0xff, *q++ = 0xe9; /* APP9 */
        *q++ = (unsigned char) ((SEGMENT - 2) >> 8), *q++ = (unsigned char) ((SEGMENT - 2) & 0xff);
        for (int k = 0; k < PAIRS; k++)
                *q++ = 0xff, *q++ = 0xda;
        memcpy(q, prog + 2, len - 2);
        q += len - 2;
        for (int k = 0; k < PAIRS; k++) /* after the end of the image */
                *q++ = 0xff, *q++ = 0xda;
        cr_assert_eq((size_t) (q - p), n);
        unsigned w = 0, h = 0;
        cr_expect_eq(emo_image_probe(p, n, &w, &h, &verr), 0, "%s", verr.message);
        emo_image_t *img = NULL;
        cr_expect_eq(emo_image_decode(p, n, MAX_PIXELS, &img, &verr), 0, "%s", verr.message);
        cr_expect(img && emo_image_width(img) == 64 && emo_image_height(img) == 48);
        emo_image_free(img);
        free(p);
        free(prog);
}

/* ---- scaled decoding ------------------------------------------------------------------------- */

/* The scale emo_image_decode_scaled picks for a w x h JPEG and a detector side. */
static unsigned scale_for(unsigned w, unsigned h, bool progressive, unsigned need_side) {
        size_t len;
        unsigned char *jpeg = make_jpeg_as(w, h, progressive, &len);
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_decode_scaled(jpeg, len, MAX_PIXELS, need_side, &img, &verr), 0, "%s", verr.message);
        cr_assert_eq(emo_image_width(img), w, "the image keeps its own width at any scale");
        cr_assert_eq(emo_image_height(img), h);
        unsigned s = emo_image_scale(img);
        emo_image_free(img);
        free(jpeg);
        return s;
}

/* The smallest DCT scale that still gives the detector its side: a VGA frame at 1/2 is exactly
 * 320 x 240; one pixel less than that and it is decoded in full. Progressive JPEGs and a
 * detector that takes any size get the full image. */
Test(vision, scaled_decode_picks_the_smallest_scale_that_fills_the_detector) {
        cr_assert_eq(scale_for(640, 480, false, 320), 2);
        cr_assert_eq(scale_for(639, 480, false, 320), 2, "libjpeg rounds up: 320 columns at 1/2");
        cr_assert_eq(scale_for(638, 480, false, 320), 1);
        cr_assert_eq(scale_for(1920, 1080, false, 320), 4);
        cr_assert_eq(scale_for(1080, 1920, false, 320), 4, "the longest side counts, across or down");
        cr_assert_eq(scale_for(2560, 1920, false, 320), 8);
        cr_assert_eq(scale_for(2560, 1920, false, 640), 4);
        cr_assert_eq(scale_for(2560, 1920, false, 128), 8, "1/8 is libjpeg's smallest");
        cr_assert_eq(scale_for(1920, 1440, true, 320), 1, "a progressive JPEG is decoded in full");
        cr_assert_eq(scale_for(1920, 1440, false, 0), 1, "no detector side: full");
        /* Other formats are decoded in full. */
        unsigned char png[64];
        size_t n = png_header(png, 1920, 1080);
        emo_image_t *img = NULL;
        cr_assert_lt(emo_image_decode_scaled(png, n, MAX_PIXELS, 320, &img, &verr), 0, "a header alone does not decode");
        cr_assert_null(img);
}

/* The limits hold on the image's own size, not on the scaled one's: a JPEG one pixel over
 * max_pixels is refused though its 1/8 would fit many times, and the 33-byte PNG bomb still is. */
Test(vision, scaled_decode_keeps_the_limits) {
        size_t len;
        unsigned char *jpeg = make_jpeg(2560, 1920, &len);
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_decode_scaled(jpeg, len, 2560 * 1920 - 1, 320, &img, &verr), -E2BIG);
        cr_assert_null(img);
        cr_assert_eq(emo_image_decode_scaled(jpeg, len, 2560 * 1920, 320, &img, &verr), 0);
        cr_assert_eq(emo_image_scale(img), 8);
        emo_image_free(img);
        free(jpeg);
        unsigned char png[64];
        size_t n = png_header(png, 100000, 100000);
        img = NULL;
        cr_assert_eq(emo_image_decode_scaled(png, n, MAX_PIXELS, 320, &img, &verr), -E2BIG);
        cr_assert_null(img);
        /* A progressive JPEG's passes are held to the same budget (decoded in full, once). */
        unsigned char *prog = make_jpeg_as(2000, 2000, true, &len);
        cr_assert_eq(emo_image_decode_scaled(prog, len, 2000 * 2000 / EMO_JPEG_MAX_PASSES * 6 - 1, 320, &img, &verr), -E2BIG,
                     "%s", verr.message);
        cr_assert_null(img);
        free(prog);
}

/* A colour picture as libjpeg decodes it, 3 bytes a pixel (RGB). */
typedef struct picture {
        unsigned width, height;
        unsigned char *rgb;
} picture_t;

static picture_t read_jpeg_rgb_scaled(const void *data, size_t len, unsigned denom) {
        struct jpeg_decompress_struct d;
        struct jpeg_error_mgr jerr;
        d.err = jpeg_std_error(&jerr);
        jpeg_create_decompress(&d);
        jpeg_mem_src(&d, data, (unsigned long) len);
        jpeg_read_header(&d, TRUE);
        d.out_color_space = JCS_RGB;
        d.scale_num = 1;
        d.scale_denom = denom;
        jpeg_start_decompress(&d);
        picture_t p = { d.output_width, d.output_height, malloc((size_t) d.output_width * d.output_height * 3) };
        cr_assert_not_null(p.rgb);
        while (d.output_scanline < d.output_height) {
                JSAMPROW row = p.rgb + (size_t) d.output_scanline * p.width * 3;
                jpeg_read_scanlines(&d, &row, 1);
        }
        jpeg_finish_decompress(&d);
        jpeg_destroy_decompress(&d);
        return p;
}

static picture_t read_jpeg_rgb(const void *data, size_t len) {
        return read_jpeg_rgb_scaled(data, len, 1);
}

/* p enlarged (nearest neighbour) to w x h. */
static picture_t enlarge(const picture_t *p, unsigned w, unsigned h) {
        picture_t out = { w, h, malloc((size_t) w * h * 3) };
        cr_assert_not_null(out.rgb);
        for (unsigned y = 0; y < h; y++)
                for (unsigned x = 0; x < w; x++) {
                        unsigned sx = x * p->width / w, sy = y * p->height / h;
                        memcpy(out.rgb + ((size_t) y * w + x) * 3, p->rgb + ((size_t) sy * p->width + sx) * 3, 3);
                }
        return out;
}

/* p as a baseline JPEG, with an EXIF APP1 segment giving `orientation` unless it is 0. */
static unsigned char *write_jpeg_rgb(const picture_t *p, int orientation, size_t *ret_len) {
        struct jpeg_compress_struct c;
        struct jpeg_error_mgr jerr;
        c.err = jpeg_std_error(&jerr);
        jpeg_create_compress(&c);
        unsigned char *buf = NULL;
        unsigned long len = 0;
        jpeg_mem_dest(&c, &buf, &len);
        c.image_width = p->width;
        c.image_height = p->height;
        c.input_components = 3;
        c.in_color_space = JCS_RGB;
        jpeg_set_defaults(&c);
        jpeg_set_quality(&c, 92, TRUE);
        jpeg_start_compress(&c, TRUE);
        if (orientation) {
                const unsigned char exif[] = {
                        'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0x00, 0x2a, 0x00, 0x00, 0x00, 0x08, 0x00, 0x01,
                        0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, (unsigned char) orientation, 0x00, 0x00,
                        0x00, 0x00, 0x00, 0x00,
                };
                jpeg_write_marker(&c, JPEG_APP0 + 1, exif, sizeof(exif));
        }
        for (unsigned y = 0; y < p->height; y++) {
                JSAMPROW row = p->rgb + (size_t) y * p->width * 3;
                jpeg_write_scanlines(&c, &row, 1);
        }
        jpeg_finish_compress(&c);
        jpeg_destroy_compress(&c);
        *ret_len = len;
        return buf;
}

/* The fixture's one face (640 x 480, the face about 180 px) placed at (x, y) in a w x h picture,
 * enlarged `zoom` times (nearest neighbour), on a mid-grey ground. */
static picture_t face_picture(unsigned w, unsigned h, unsigned x, unsigned y, unsigned zoom) {
        size_t len;
        void *data = emo_test_read_fixture("one_face.jpg", &len);
        picture_t src = read_jpeg_rgb(data, len);
        free(data);
        picture_t p = { w, h, malloc((size_t) w * h * 3) };
        cr_assert_not_null(p.rgb);
        memset(p.rgb, 128, (size_t) w * h * 3);
        for (unsigned r = 0; r < src.height * zoom && y + r < h; r++)
                for (unsigned c = 0; c < src.width * zoom && x + c < w; c++)
                        memcpy(p.rgb + ((size_t) (y + r) * w + x + c) * 3,
                               src.rgb + ((size_t) (r / zoom) * src.width + c / zoom) * 3, 3);
        free(src.rgb);
        return p;
}

static emo_detector_t *yunet_at(unsigned max_side) {
        emo_detector_params_t p = { .kind = EMO_DETECTOR_YUNET, .model_path = emo_test_yunet(), .score_threshold = 0.6f,
                                    .max_side = max_side, .min_face = 20, .device = EMO_DEVICE_CPU };
        emo_detector_t *d = NULL;
        cr_assert_eq(emo_detector_new(&p, &d, &verr), 0, "%s", verr.message);
        return d;
}

/* The default model, as the daemon loads it; without its prior correction when raw (and its
 * class weights in ret_weight when not NULL). */
static emo_classifier_t *classifier_of_model(bool raw, double ret_weight[EMO_EMOTION_COUNT]) {
        emo_model_t m;
        emo_error_t err = { "" };
        cr_assert_eq(emo_model_load(emo_test_model(), &m, &err), 0, "%s", err.message);
        emo_classifier_params_t p = { .onnx_path = m.onnx_path, .width = m.width, .height = m.height, .scale = m.scale,
                                      .mean = m.mean, .std = m.std, .framing_scale = m.framing_scale,
                                      .offset_x = m.offset_x, .offset_y = m.offset_y, .tta_hflip = m.tta_hflip,
                                      .reweight = m.reweight && !raw, .device = EMO_DEVICE_CPU };
        memcpy(p.class_weight, m.class_weight, sizeof(p.class_weight));
        if (ret_weight)
                memcpy(ret_weight, m.class_weight, sizeof(m.class_weight));
        emo_classifier_t *c = NULL;
        cr_assert_eq(emo_classifier_new(&p, &c, &verr), 0, "%s", verr.message);
        emo_model_done(&m);
        return c;
}

static emo_classifier_t *default_classifier(void) {
        return classifier_of_model(false, NULL);
}

/* Detect the one face of a JPEG, decoded scaled or in full, and classify it. */
static void detect_one(emo_detector_t *d, emo_classifier_t *c, const void *jpeg, size_t len, bool scaled,
                       unsigned *ret_scale, emo_face_box_t *ret_box, float probs[EMO_EMOTION_COUNT]) {
        emo_image_t *img = NULL;
        int r = scaled ? emo_image_decode_scaled(jpeg, len, MAX_PIXELS, emo_detector_input_side(d), &img, &verr)
                       : emo_image_decode(jpeg, len, MAX_PIXELS, &img, &verr);
        cr_assert_eq(r, 0, "%s", verr.message);
        size_t n = 0;
        cr_assert_eq(emo_detector_detect(d, img, ret_box, 1, &n, &verr), 0, "%s", verr.message);
        cr_assert_eq(n, 1, "the face is not found (%s decoding)", scaled ? "scaled" : "full");
        float p[1][EMO_EMOTION_COUNT];
        cr_assert_eq(emo_classifier_classify(c, img, ret_box, 1, false, p, &verr), 0, "%s", verr.message);
        memcpy(probs, p[0], sizeof(p[0]));
        if (ret_scale)
                *ret_scale = emo_image_scale(img);
        emo_image_free(img);
}

static float max_diff(const float *a, const float *b) {
        float m = 0;
        for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                m = fmaxf(m, fabsf(a[k] - b[k]));
        return m;
}

static void assert_box_near(const emo_face_box_t *a, const emo_face_box_t *b, double tolerance) {
        double tol = tolerance * b->width;
        cr_assert(abs(a->x - b->x) <= tol && abs(a->y - b->y) <= tol && abs(a->width - b->width) <= tol &&
                          abs(a->height - b->height) <= tol,
                  "box %d,%d %dx%d is not within %.0f px of %d,%d %dx%d", a->x, a->y, a->width, a->height, tol, b->x,
                  b->y, b->width, b->height);
}

/* A large face in a 1920 x 1440 photo: decoded at 1/4 (480 x 360) for the detector, it has more
 * pixels there than the model's input, so it is classified from the scaled image; the box and the
 * probabilities stay close to those of a full decode. */
Test(vision, scaled_decode_finds_and_classifies_a_large_face_like_a_full_decode) {
        picture_t pic = face_picture(1920, 1440, 0, 0, 3);
        size_t len;
        unsigned char *jpeg = write_jpeg_rgb(&pic, 0, &len);
        emo_detector_t *d = yunet_at(320);
        emo_classifier_t *c = default_classifier();
        emo_face_box_t full_box, box;
        float full_p[EMO_EMOTION_COUNT], p[EMO_EMOTION_COUNT];
        unsigned scale;
        detect_one(d, c, jpeg, len, false, NULL, &full_box, full_p);
        detect_one(d, c, jpeg, len, true, &scale, &box, p);
        cr_assert_eq(scale, 4);
        assert_box_near(&box, &full_box, 0.05);
        cr_assert_lt(max_diff(p, full_p), 0.05f, "probabilities differ by %.3f", max_diff(p, full_p));
        emo_classifier_free(c);
        emo_detector_free(d);
        free(jpeg);
        free(pic.rgb);
}

/* Classify box in p, given as raw pixels. */
static void classify_from_raw_bgr(emo_classifier_t *c, const picture_t *p, const emo_face_box_t *box,
                                  float probs[EMO_EMOTION_COUNT]) {
        size_t n = (size_t) p->width * p->height * 3;
        unsigned char *bgr = malloc(n);
        for (size_t i = 0; i < n; i += 3)
                bgr[i] = p->rgb[i + 2], bgr[i + 1] = p->rgb[i + 1], bgr[i + 2] = p->rgb[i];
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_from_raw(EMO_PIXEL_BGR24, bgr, n, p->width, p->height, 0, MAX_PIXELS, &img, &verr), 0);
        float out[1][EMO_EMOTION_COUNT];
        cr_assert_eq(emo_classifier_classify(c, img, box, 1, false, out, &verr), 0, "%s", verr.message);
        memcpy(probs, out[0], sizeof(out[0]));
        emo_image_free(img);
        free(bgr);
}

/* The model's prior correction: the classifier's probabilities are the network's times the class
 * weights, renormalised (what the Python evaluation and the fixtures' reference compute). */
Test(vision, prior_correction_reweights_the_probabilities) {
        double w[EMO_EMOTION_COUNT];
        emo_classifier_t *raw = classifier_of_model(true, w), *c = classifier_of_model(false, NULL);
        picture_t pic = face_picture(640, 480, 0, 0, 1);
        emo_face_box_t box = { 0 };
        emo_detector_t *d = yunet_at(320);
        size_t len;
        unsigned char *jpeg = write_jpeg_rgb(&pic, 0, &len);
        float ignored[EMO_EMOTION_COUNT], p[EMO_EMOTION_COUNT], q[EMO_EMOTION_COUNT];
        detect_one(d, raw, jpeg, len, false, NULL, &box, ignored);
        classify_from_raw_bgr(raw, &pic, &box, p);
        classify_from_raw_bgr(c, &pic, &box, q);
        double sum = 0;
        for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                sum += p[k] * w[k];
        bool differs = false;
        for (int k = 0; k < EMO_EMOTION_COUNT; k++) {
                cr_assert_float_eq(q[k], p[k] * w[k] / sum, 1e-5, "class %d: %g, not %g", k, q[k], p[k] * w[k] / sum);
                differs |= w[k] != 1;
        }
        cr_assert(differs, "the shipped model has no prior correction to test");
        emo_detector_free(d);
        emo_classifier_free(raw);
        emo_classifier_free(c);
        free(jpeg);
        free(pic.rgb);
}

/* Classify box in a JPEG decoded scaled for a 320-px detector or in full. */
static void classify_box(emo_classifier_t *c, const void *jpeg, size_t len, bool scaled, const emo_face_box_t *box,
                         float probs[EMO_EMOTION_COUNT], unsigned *ret_scale) {
        emo_image_t *img = NULL;
        int r = scaled ? emo_image_decode_scaled(jpeg, len, MAX_PIXELS, 320, &img, &verr)
                       : emo_image_decode(jpeg, len, MAX_PIXELS, &img, &verr);
        cr_assert_eq(r, 0, "%s", verr.message);
        float out[1][EMO_EMOTION_COUNT];
        cr_assert_eq(emo_classifier_classify(c, img, box, 1, false, out, &verr), 0, "%s", verr.message);
        memcpy(probs, out[0], sizeof(out[0]));
        *ret_scale = emo_image_scale(img);
        emo_image_free(img);
}

/* p turned by deg degrees clockwise as seen (image y points down) about (cx, cy), nearest
 * neighbour; mid grey where nothing of p lands. */
static picture_t turned_picture(const picture_t *p, double deg, double cx, double cy) {
        picture_t out = { p->width, p->height, malloc((size_t) p->width * p->height * 3) };
        cr_assert_not_null(out.rgb);
        double c = cos(deg * M_PI / 180), s = sin(deg * M_PI / 180);
        for (unsigned y = 0; y < out.height; y++)
                for (unsigned x = 0; x < out.width; x++) {
                        double dx = x - cx, dy = y - cy;
                        long sx = lround(cx + c * dx + s * dy), sy = lround(cy - s * dx + c * dy);
                        unsigned char *o = out.rgb + ((size_t) y * out.width + x) * 3;
                        if (sx >= 0 && sy >= 0 && sx < (long) p->width && sy < (long) p->height)
                                memcpy(o, p->rgb + ((size_t) sy * p->width + sx) * 3, 3);
                        else
                                memset(o, 128, 3);
                }
        return out;
}

/* A face turned 30 degrees either way from level: the detectors (YuNet, and BlazeFace when
 * installed) give the turn as the box's roll, from the eyes, within what their key points allow
 * (YuNet's were off by up to 11 degrees at 30), and enough to be turned upright. Given the turn,
 * the classifier sees the face as if level: its probabilities come near the level face's, nearer
 * than those of the same box classified as it lies. A roll under EMO_UPRIGHT_MIN_ROLL changes
 * nothing. */
Test(vision, a_turned_face_is_classified_upright) {
        /* The fixture's face leans about 11 degrees: levelled first, by the roll YuNet gives it. */
        picture_t fixture = face_picture(800, 800, 80, 160, 1);
        size_t len;
        unsigned char *jpeg = write_jpeg_rgb(&fixture, 0, &len);
        emo_detector_t *d = yunet_at(640);
        emo_classifier_t *c = default_classifier();
        emo_face_box_t box;
        float up_p[EMO_EMOTION_COUNT], p[EMO_EMOTION_COUNT], plain_p[EMO_EMOTION_COUNT];
        detect_one(d, c, jpeg, len, false, NULL, &box, p);
        free(jpeg);
        double cx = box.x + box.width / 2.0, cy = box.y + box.height / 2.0;
        picture_t up = turned_picture(&fixture, -box.roll, cx, cy);
        free(fixture.rgb);
        jpeg = write_jpeg_rgb(&up, 0, &len);
        emo_face_box_t up_box;
        detect_one(d, c, jpeg, len, false, NULL, &up_box, p);
        free(jpeg);
        cr_assert_lt(fabsf(up_box.roll), 3.0f, "the levelled face's roll is %.1f", up_box.roll);
        classify_from_raw_bgr(c, &up, &up_box, up_p);

        /* Under the threshold: the crop as without a roll. */
        box = up_box;
        box.roll = (float) EMO_UPRIGHT_MIN_ROLL - 1;
        classify_from_raw_bgr(c, &up, &box, p);
        cr_assert_eq(max_diff(p, up_p), 0.0f);

        const char *blaze = emo_test_blazeface();
        emo_detector_params_t bp = { .kind = EMO_DETECTOR_BLAZEFACE, .model_path = blaze, .score_threshold = 0.6f,
                                     .min_face = 20, .device = EMO_DEVICE_CPU };
        emo_detector_t *bd = NULL;
        if (blaze)
                cr_assert_eq(emo_detector_new(&bp, &bd, &verr), 0, "%s", verr.message);
        for (int deg = -30; deg <= 30; deg += 60) {
                /* Turned about the box's centre, the level box is the turned face's too. */
                picture_t pic = turned_picture(&up, deg, up_box.x + up_box.width / 2.0, up_box.y + up_box.height / 2.0);
                jpeg = write_jpeg_rgb(&pic, 0, &len);
                emo_detector_t *dets[] = { d, bd };
                for (size_t k = 0; k < 2 && dets[k]; k++) {
                        detect_one(dets[k], c, jpeg, len, false, NULL, &box, p);
                        cr_assert(fabsf(box.roll - deg) < 12 && fabsf(box.roll) >= EMO_UPRIGHT_MIN_ROLL,
                                  "turned %d degrees, %s's roll is %.1f", deg, k ? "BlazeFace" : "YuNet", box.roll);
                }
                free(jpeg);
                box = up_box;
                box.roll = (float) deg;
                classify_from_raw_bgr(c, &pic, &box, p);
                box.roll = 0;
                classify_from_raw_bgr(c, &pic, &box, plain_p);
                /* Measured: 0.014 and 0.034 turned upright, 0.027 and 0.063 as it lies; turned the
                 * wrong way, it would lie 60 degrees off. */
                cr_assert(max_diff(p, up_p) < 0.05f && max_diff(p, up_p) < max_diff(plain_p, up_p),
                          "turned %d degrees: upright %.3f, as it lies %.3f from the level face's", deg,
                          max_diff(p, up_p), max_diff(plain_p, up_p));
                free(pic.rgb);
        }
        emo_detector_free(bd);
        emo_classifier_free(c);
        emo_detector_free(d);
        free(up.rgb);
}

static emo_detector_t *yunet_lean_at(unsigned max_side, const char *lean) {
        emo_detector_params_t p = { .kind = EMO_DETECTOR_YUNET, .model_path = emo_test_yunet(), .score_threshold = 0.6f,
                                    .max_side = max_side, .min_face = 20, .device = EMO_DEVICE_CPU,
                                    .lean_model_path = lean };
        emo_detector_t *d = NULL;
        cr_assert_eq(emo_detector_new(&p, &d, &verr), 0, "%s", verr.message);
        return d;
}

/* The one face YuNet (or d) finds in p, through a JPEG of it, decoded whole. */
static emo_face_box_t detect_picture(emo_detector_t *d, const picture_t *p) {
        size_t len;
        unsigned char *jpeg = write_jpeg_rgb(p, 0, &len);
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_decode(jpeg, len, MAX_PIXELS, &img, &verr), 0, "%s", verr.message);
        emo_face_box_t box;
        size_t n = 0;
        cr_assert_eq(emo_detector_detect(d, img, &box, 1, &n, &verr), 0, "%s", verr.message);
        cr_assert_eq(n, 1, "the face is not found");
        emo_image_free(img);
        free(jpeg);
        return box;
}

/* YuNet's lean check: the fixture's face, levelled, then turned 20 and 30 degrees either way,
 * small at YuNet's input (43 px: the 800-px picture detected at 200): BlazeFace's second
 * look gives the roll within 5 degrees, and never further from the turn than YuNet's own. A face
 * YuNet reads as upright is not looked at: the same box and roll as without the check. A lean
 * model that is no BlazeFace, or missing, fails at load. */
Test(vision, yunet_lean_check_reads_small_leaning_faces) {
        const char *blaze = emo_test_blazeface();
        if (!blaze)
                cr_skip_test("BlazeFace is not installed (scripts/setup.sh installs it from the npm registry)");
        picture_t fixture = face_picture(800, 800, 80, 160, 1);
        emo_detector_t *fine = yunet_at(640);
        emo_face_box_t box = detect_picture(fine, &fixture);
        emo_detector_free(fine);
        picture_t up = turned_picture(&fixture, -box.roll, box.x + box.width / 2.0, box.y + box.height / 2.0);
        free(fixture.rgb);

        emo_detector_t *plain = yunet_at(200), *lean = yunet_lean_at(200, blaze);
        emo_face_box_t a = detect_picture(plain, &up), b = detect_picture(lean, &up);
        cr_assert_lt(fabsf(a.roll), (float) EMO_LEAN_CHECK_MIN_ROLL, "the levelled face reads %.1f degrees", a.roll);
        cr_assert(a.x == b.x && a.y == b.y && a.width == b.width && a.height == b.height && a.roll == b.roll,
                  "an upright face changed: roll %.1f against %.1f", b.roll, a.roll);
        cr_log_info("face at YuNet's input: %d px", a.width / 4);
        for (int deg = -30; deg <= 30; deg += 10) {
                if (abs(deg) < 20)
                        continue;
                picture_t pic = turned_picture(&up, deg, a.x + a.width / 2.0, a.y + a.height / 2.0);
                a = detect_picture(plain, &pic);
                b = detect_picture(lean, &pic);
                cr_log_info("turned %d degrees: YuNet reads %.1f, with the lean check %.1f", deg, a.roll, b.roll);
                cr_expect_lt(fabsf(b.roll - deg), 5.0f, "turned %d degrees, the lean check reads %.1f", deg, b.roll);
                cr_expect_leq(fabsf(b.roll - deg), fabsf(a.roll - deg) + 0.5f,
                              "turned %d degrees: %.1f with the check, %.1f without", deg, b.roll, a.roll);
                free(pic.rgb);
        }
        emo_detector_free(lean);
        emo_detector_free(plain);
        free(up.rgb);

        emo_detector_params_t p = { .kind = EMO_DETECTOR_YUNET, .model_path = emo_test_yunet(), .score_threshold = 0.6f,
                                    .max_side = 320, .min_face = 20, .device = EMO_DEVICE_CPU,
                                    .lean_model_path = emo_test_yunet() };
        emo_detector_t *d = NULL;
        cr_expect_eq(emo_detector_new(&p, &d, &verr), -EINVAL, "YuNet taken for the lean check's BlazeFace");
        cr_expect_null(d);
        p.lean_model_path = "/nonexistent/blazeface.onnx";
        cr_expect_eq(emo_detector_new(&p, &d, &verr), -ENOENT);
        cr_expect_not_null(strstr(verr.message, "/nonexistent/blazeface.onnx"), "%s", verr.message);
        cr_expect_null(d);
}

/* A small face in a large photo (the fixture's 180 px face in 2560 x 1920): decoded at 1/8 for a
 * 320-px detector it is about 26 px wide, under the model's 48, so its crop comes from a finer
 * decode of its region (1/4 here), and it is classified nearly as from the full image.
 * EXIF-turned, the same face goes through a full decode instead, with the full decode's result,
 * upright. (The box comes from a detector at 1280 px on the full image, which
 * sees the face.) */
Test(vision, a_small_face_in_a_scaled_image_is_cropped_from_finer_pixels) {
        picture_t pic = face_picture(2560, 1920, 1100, 700, 1);
        emo_detector_t *d = yunet_at(1280);
        emo_classifier_t *c = default_classifier();
        for (int orientation = 0; orientation <= 6; orientation += 6) {
                size_t len;
                unsigned char *jpeg = write_jpeg_rgb(&pic, orientation, &len);
                emo_face_box_t box;
                float full_p[EMO_EMOTION_COUNT], p[EMO_EMOTION_COUNT];
                unsigned scale;
                detect_one(d, c, jpeg, len, false, NULL, &box, full_p);
                classify_box(c, jpeg, len, true, &box, p, &scale);
                cr_assert_eq(scale, 8);
                cr_assert_lt(box.width / 8, 48, "test bug: the face is not small at 1/8");
                if (orientation == 6) {
                        /* Turned a quarter clockwise: the face's left edge is now its top. */
                        emo_image_t *img = NULL;
                        cr_assert_eq(emo_image_decode_scaled(jpeg, len, MAX_PIXELS, 320, &img, &verr), 0);
                        cr_assert_eq(emo_image_width(img), 1920);
                        cr_assert_eq(emo_image_height(img), 2560);
                        emo_image_free(img);
                        cr_assert(abs(box.y - 1100 - 240) < 120, "face at y %d, not upright", box.y);
                }
                /* Upright at 1/4 against 1/1 resampled: near. Turned: the fallback is the full
                 * decode itself. */
                cr_assert_lt(max_diff(p, full_p), orientation ? 1e-5f : 0.08f,
                             "orientation %d: probabilities differ by %.3f", orientation, max_diff(p, full_p));
                free(jpeg);
        }
        emo_classifier_free(c);
        emo_detector_free(d);
        free(pic.rgb);
}

/* What the finer decode is for, where it shows: a 192 px square of 4 px stripes in a 2560 x 1920
 * photo, classified as an exact crop. At 1/8 (what the detector gets) the stripes are averaged
 * away to grey; the crop comes from a decode of the square's region at 1/4, where the stripes are
 * one pixel each, just as the model sees them after resizing the full image: the answer is that
 * of the full image, and far from that of the 1/8 pixels. */
Test(vision, the_finer_decode_keeps_what_the_scaled_image_lost) {
        picture_t pic = { 2560, 1920, malloc((size_t) 2560 * 1920 * 3) };
        cr_assert_not_null(pic.rgb);
        memset(pic.rgb, 128, (size_t) 2560 * 1920 * 3);
        for (unsigned y = 800; y < 992; y++)
                for (unsigned x = 1000; x < 1192; x++)
                        memset(pic.rgb + ((size_t) y * 2560 + x) * 3, (x / 4) % 2 ? 255 : 0, 3);
        size_t len;
        unsigned char *jpeg = write_jpeg_rgb(&pic, 0, &len);
        emo_classifier_t *c = default_classifier();
        emo_face_box_t box = { 1000, 800, 192, 192, 1.0f, 0 };
        float full_p[EMO_EMOTION_COUNT], p[EMO_EMOTION_COUNT], out[1][EMO_EMOTION_COUNT];
        unsigned scale;
        emo_image_t *img = NULL;
        cr_assert_eq(emo_image_decode(jpeg, len, MAX_PIXELS, &img, &verr), 0);
        cr_assert_eq(emo_classifier_classify(c, img, &box, 1, true, out, &verr), 0, "%s", verr.message);
        memcpy(full_p, out[0], sizeof(full_p));
        emo_image_free(img);
        cr_assert_eq(emo_image_decode_scaled(jpeg, len, MAX_PIXELS, 320, &img, &verr), 0);
        scale = emo_image_scale(img);
        cr_assert_eq(scale, 8);
        cr_assert_eq(emo_classifier_classify(c, img, &box, 1, true, out, &verr), 0, "%s", verr.message);
        memcpy(p, out[0], sizeof(p));
        emo_image_free(img);
        /* The 1/8 pixels alone, enlarged back to full size. */
        picture_t eighth = read_jpeg_rgb_scaled(jpeg, len, 8);
        picture_t back = enlarge(&eighth, pic.width, pic.height);
        float coarse_p[EMO_EMOTION_COUNT];
        classify_from_raw_bgr(c, &back, &box, coarse_p);
        float fine_off = max_diff(p, full_p), coarse_off = max_diff(coarse_p, full_p);
        cr_assert_gt(coarse_off, 0.1f, "test bug: the stripes do not change the answer (%.3f)", coarse_off);
        cr_assert_lt(fine_off, coarse_off / 4, "the crop is off by %.3f from the full decode's answer, the 1/8 pixels "
                                               "by %.3f: the finer decode did not serve", fine_off, coarse_off);
        free(eighth.rgb);
        free(back.rgb);
        emo_classifier_free(c);
        free(jpeg);
        free(pic.rgb);
}
