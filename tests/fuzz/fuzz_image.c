/* Fuzz target: an encoded image as a client sends it (Image.format ENCODED). The bytes go to
 * emo_image_probe, which reads the size from the header (the daemon's own parsers for JPEG, PNG,
 * WebP, BMP, TIFF and PNM), and to emo_image_decode and emo_image_decode_scaled (for an 8-px
 * detector) under a limit of 4 megapixels (OpenCV behind the probe).
 *
 * Oracles, besides the sanitizers: the documented errors only; no image over the limit; a decoded
 * image no larger than its header said (the size checked before decoding must bound what is
 * decoded, or a small header could make OpenCV allocate a large image); and no temporary file.
 * OpenCV decodes through one only with a decoder that cannot read memory (GDAL, GDCM), never
 * with those of the probed formats: one there means the probe took a file that OpenCV's decoder
 * for the format did not, and another decoder, whose size nobody checked, got it. OpenCV's
 * temporary folder (OPENCV_TEMP_PATH, else /tmp; OpenCV reads it once, when it loads) is watched
 * with inotify for its files. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "vision/vision.h"

/* What the last failing vision call said (vision.h: each takes an emo_error_t). */
static emo_error_t verr;

#define MAX_PIXELS 4000000ull

static int temp_watch = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc, (void) argv;
        emo_vision_init(1);
        const char *dir = getenv("OPENCV_TEMP_PATH");
        if ((temp_watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 ||
            inotify_add_watch(temp_watch, dir && *dir ? dir : "/tmp", IN_CREATE) < 0) {
                perror("fuzz_image: cannot watch OpenCV's temporary folder");
                exit(1);
        }
        return 0;
}

/* Whether OpenCV made a temporary file since the last call. */
static bool made_temp_file(void) {
        bool made = false;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n;
        while ((n = read(temp_watch, buf, sizeof(buf))) > 0) {
                const struct inotify_event *e;
                for (char *p = buf; p < buf + n; p += sizeof(*e) + e->len) {
                        e = (const struct inotify_event *) p;
                        made |= e->len > 0 && strncmp(e->name, "__opencv_temp", 13) == 0;
                }
        }
        return made;
}

static void check(bool ok, const char *what, int r) {
        if (!ok) {
                fprintf(stderr, "fuzz_image: %s (%d: %s)\n", what, r, verr.message);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        unsigned w = 0, h = 0;
        int probed = emo_image_probe(data, size, &w, &h, &verr);
        check(probed == 0 || probed == -EBADMSG || probed == -ENOTSUP, "emo_image_probe: unexpected error", probed);

        emo_image_t *img = NULL;
        int r = emo_image_decode(data, size, MAX_PIXELS, &img, &verr);
        check(!made_temp_file(), "OpenCV decoded through a temporary file", r);
        check(r == 0 || r == -EBADMSG || r == -E2BIG || r == -ENOMEM, "emo_image_decode: unexpected error", r);
        check((r == 0) == (img != NULL), "emo_image_decode: image and result disagree", r);
        if (img) {
                uint64_t iw = emo_image_width(img), ih = emo_image_height(img);
                check(probed == 0, "decoded an image whose header the probe refused", probed);
                check(iw > 0 && ih > 0 && iw * ih <= MAX_PIXELS, "decoded image over the limit", r);
                check(iw * ih <= (uint64_t) w * h, "decoded image larger than its header said", r);
        }
        emo_image_free(img);

        /* The same bytes decoded for a detector of 8 px (JPEGs of 15 px and more get a DCT
         * scale): the same errors and limits, and the image's own size, not the scaled one's. */
        img = NULL;
        int rs = emo_image_decode_scaled(data, size, MAX_PIXELS, 8, &img, &verr);
        check(rs == 0 || rs == -EBADMSG || rs == -E2BIG || rs == -ENOMEM, "emo_image_decode_scaled: unexpected error",
              rs);
        check((rs == 0) == (img != NULL), "emo_image_decode_scaled: image and result disagree", rs);
        if (img) {
                uint64_t iw = emo_image_width(img), ih = emo_image_height(img);
                check(probed == 0, "decoded (scaled) an image whose header the probe refused", probed);
                check(iw * ih <= MAX_PIXELS && iw * ih <= (uint64_t) w * h, "scaled decode over the header's size", rs);
                uint64_t sc = emo_image_scale(img), longest = iw > ih ? iw : ih;
                check(sc == 1 || (longest + sc - 1) / sc >= 8, "scaled below the detector's side", rs);
        }
        emo_image_free(img);
        return 0;
}
