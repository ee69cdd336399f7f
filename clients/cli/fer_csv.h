/* Reader for the FER2013 CSV in its Kaggle layout: header `emotion,pixels,Usage`, then one row per
 * face with the label (0..6, the Emotion enum), 2304 space-separated grey values (48x48, row
 * major) and the split (Training, PublicTest, PrivateTest). Plain or gzip-compressed (zlib reads
 * both). Every row is validated, whichever split is kept, so that a damaged file is noticed. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CLI_FER_SIDE 48
#define CLI_FER_PIXELS (CLI_FER_SIDE * CLI_FER_SIDE)

typedef enum cli_fer_usage {
        CLI_FER_TRAINING,
        CLI_FER_PUBLIC_TEST,
        CLI_FER_PRIVATE_TEST,
        CLI_FER_USAGE_COUNT,
} cli_fer_usage_t;

typedef struct cli_fer_set {
        size_t n;
        uint8_t *labels;  /* n labels */
        uint8_t *pixels;  /* n * CLI_FER_PIXELS grey values */
        unsigned *lines;  /* n line numbers in the file (1 is the header), for messages */
} cli_fer_set_t;

/* "PublicTest" etc., NULL when out of range. */
const char *cli_fer_usage_name(cli_fer_usage_t u);

/* The split named name (case-insensitive), or -EINVAL. */
int cli_fer_usage_from_name(const char *name);

/* Read the rows of split `usage` from path, the first `limit` of them (0: all), into *ret (free
 * with cli_fer_set_done()). 0, or a negative errno with a message naming the file (and the line,
 * when there is one) in err (errlen bytes), on every failure: -ENOENT etc. when the file cannot
 * be read, -ENOMEM, -EBADMSG for a malformed row or header. */
int cli_fer_read(const char *path, cli_fer_usage_t usage, size_t limit, char *err, size_t errlen,
                 cli_fer_set_t *ret);

/* Free what cli_fer_read() allocated; accepts a zeroed set. */
void cli_fer_set_done(cli_fer_set_t *s);
