/* Reader for face tables in the FER2013 CSV layout (Kaggle's): header `emotion,pixels,Usage`, then
 * one row per face with the label (0..6, the Emotion enum), 2304 space-separated grey values (48x48,
 * row major) and the split (FER2013's are Training, PublicTest and PrivateTest; another set may
 * name its own). Files of other face sets may leave the split out: header `emotion,pixels`, two
 * fields a row. Plain or gzip-compressed (zlib reads both). Every row is validated, whichever
 * split is kept, so that a damaged file is noticed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_FER_SIDE 48
#define CLI_FER_PIXELS (CLI_FER_SIDE * CLI_FER_SIDE)

typedef struct cli_fer_set {
        size_t n;
        uint8_t *labels;  /* n labels */
        uint8_t *pixels;  /* n * CLI_FER_PIXELS grey values */
        unsigned *lines;  /* n line numbers in the file (1 is the header), for messages */
        bool has_usage;   /* the file has the Usage column */
} cli_fer_set_t;

/* Read from path the rows whose Usage is `usage` (case-insensitive; NULL: every row), the first
 * `limit` of them (0: all), into *ret (free with cli_fer_set_done()). A file without the Usage
 * column gives every row, whatever `usage`, with ret->has_usage false: the caller says whether a
 * split it asked for may be missing. 0, or a negative errno with a message naming the file (and the line,
 * when there is one) in err (errlen bytes), on every failure: -ENOENT etc. when the file cannot
 * be read, -ENOMEM, -EBADMSG for a malformed row or header. */
int cli_fer_read(const char *path, const char *usage, size_t limit, char *err, size_t errlen,
                 cli_fer_set_t *ret);

/* Free what cli_fer_read() allocated; accepts a zeroed set. */
void cli_fer_set_done(cli_fer_set_t *s);
