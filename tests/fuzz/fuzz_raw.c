/* Fuzz target: raw pixels as a client sends them (Image.format GRAY8, BGR24 or RGB24), with the
 * geometry fuzzed. Input: byte 0 the format (modulo 3), bytes 1-12 width, height and stride
 * (little-endian 32-bit, as Image's uint32 fields carry them), byte 13 flags, the rest pixel
 * data. Flag bit 0 sizes the data as the geometry asks (stride * height bytes, the given bytes
 * repeated), so that the copy is reached and not only the length check; without it the data is
 * passed as given. The limit is 4 megapixels.
 *
 * Oracles, besides the sanitizers: the documented errors only, and an image of exactly the
 * geometry asked for, within the limit. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vision/vision.h"

/* What the last failing vision call said (vision.h: each takes an emo_error_t). */
static emo_error_t verr;

#define MAX_PIXELS 4000000ull
#define HEADER 14
/* Largest buffer flag bit 0 makes; past it the input is skipped. */
#define MAX_SIZED (64u << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc, (void) argv;
        emo_vision_init(1);
        return 0;
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void check(bool ok, const char *what, int r) {
        if (!ok) {
                fprintf(stderr, "fuzz_raw: %s (%d: %s)\n", what, r, verr.message);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < HEADER)
                return 0;
        static const emo_pixel_format_t formats[] = { EMO_PIXEL_GRAY8, EMO_PIXEL_BGR24, EMO_PIXEL_RGB24 };
        emo_pixel_format_t format = formats[data[0] % 3];
        uint32_t width = le32(data + 1), height = le32(data + 5), stride = le32(data + 9);
        bool sized = data[13] & 1;
        const uint8_t *pixels = data + HEADER;
        size_t len = size - HEADER;
        uint8_t *buf = NULL;
        if (sized) {
                uint64_t row = (uint64_t) width * (format == EMO_PIXEL_GRAY8 ? 1 : 3);
                uint64_t need = (uint64_t) (stride ? stride : row) * height;
                if (need > MAX_SIZED)
                        return 0;
                /* One byte more than asked for, so that the buffer is never empty. */
                buf = malloc(need + 1);
                if (!buf)
                        return 0;
                for (uint64_t i = 0; i < need; i++)
                        buf[i] = len ? pixels[i % len] : (uint8_t) i;
                pixels = buf;
                len = (size_t) need;
        }
        emo_image_t *img = NULL;
        int r = emo_image_from_raw(format, pixels, len, width, height, stride, MAX_PIXELS, &img, &verr);
        check(r == 0 || r == -EINVAL || r == -E2BIG || r == -ENOMEM, "emo_image_from_raw: unexpected error", r);
        check((r == 0) == (img != NULL), "emo_image_from_raw: image and result disagree", r);
        if (img) {
                check(emo_image_width(img) == width && emo_image_height(img) == height, "image of another size", r);
                check((uint64_t) width * height <= MAX_PIXELS, "image over the limit", r);
        }
        emo_image_free(img);
        free(buf);
        return 0;
}
