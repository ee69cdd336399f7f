/* probe: the size of an encoded image, read from its header before any decoder allocates a pixel.
 * Plain C, security-critical: these parsers read a client's bytes first, and what they let pass
 * is what OpenCV's decoders then size their buffers by. emo_image_probe (vision.h) and the decode
 * functions call emo__probe; tests/unit/test_vision.c and tests/fuzz/fuzz_image.c reach every
 * probe through them. Internal to daemon/vision (emo__ names). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct emo__probe_info {
        unsigned width, height;
        /* The passes the decoder makes over the image: a progressive JPEG's scans, else 1. */
        size_t scans;
        /* The largest block of pixels the decoder allocates apart from the image itself (a TIFF
         * tile or strip), which a header may declare far larger than the image; 0: none. */
        uint64_t block_width, block_height;
        const char *block_what; /* the fields that size it, for the refusal */
        char why[192];          /* why the header was refused; "" for -ENOTSUP */
} emo__probe_info_t;

/* Probe a JPEG, PNG, WebP, BMP, TIFF or PNM header; each format is recognised by the very
 * signature that OpenCV's decoder for it checks. 0 with *ret filled; -ENOTSUP for any other
 * format; -EBADMSG for a broken, ambiguous or oversized header, with the reason in ret->why
 * (vision.h, emo_image_probe, lists them). */
int emo__probe(const void *data, size_t len, emo__probe_info_t *ret);

#ifdef __cplusplus
}
#endif
