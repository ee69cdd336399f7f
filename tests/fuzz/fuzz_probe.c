/* Fuzz target: the header probes alone (daemon/vision/probe.c, jpeg.c), the first code to read a
 * client's encoded image. Plain C without OpenCV behind it, so it runs many times faster than
 * fuzz_image, which reaches the same probes through the decoders; seeded with the same files.
 *
 * Oracles, besides the sanitizers (the input is an exact-size heap copy, so a read past its end
 * is caught): emo__probe answers 0, -ENOTSUP or -EBADMSG only; a refusal says why, -ENOTSUP
 * says nothing; a probed JPEG has at most EMO_JPEG_MAX_SCANS scans; a block the decoder would
 * allocate (a TIFF tile or strip) has a size. For a JPEG, the other readers of jpeg.h run too:
 * the EXIF orientation is -1 or 1..8. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vision/jpeg.h"
#include "vision/probe.h"
#include "vision/vision.h"

static void check(bool ok, const char *what, int r, const char *why) {
        if (!ok) {
                fprintf(stderr, "fuzz_probe: %s (%d: %s)\n", what, r, why);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        emo__probe_info_t info;
        int r = emo__probe(data, size, &info);
        check(r == 0 || r == -ENOTSUP || r == -EBADMSG, "undocumented error", r, info.why);
        check(memchr(info.why, '\0', sizeof(info.why)) != NULL, "reason not terminated", r, "");
        check((r == -EBADMSG) == (info.why[0] != '\0'), "a refusal without a reason, or a reason without one", r,
              info.why);
        if (r == 0) {
                check(info.scans <= EMO_JPEG_MAX_SCANS, "JPEG over the scan limit probed", r, "");
                check(!info.block_what || (info.block_width > 0 && info.block_height > 0), "block without a size", r,
                      info.block_what ? info.block_what : "");
        }
        if (size >= 2 && data[0] == 0xff && data[1] == 0xd8) {
                int o = emo__jpeg_orientation(data, size);
                check(o == -1 || (o >= 1 && o <= 8), "EXIF orientation out of range", o, "");
                (void) emo__jpeg_scans(data, size);
                (void) emo__jpeg_truncated(data, size);
        }
        return 0;
}
