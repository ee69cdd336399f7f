#include "fer_csv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "emo/util.h"

/* Longest valid row: "6," + 2304 * "255 " + a 64-byte split name + "\r\n", about 9.3 KB. */
#define LINE_MAX_BYTES 16384

/* The longest split name accepted in the Usage column. */
#define USAGE_MAX_BYTES 64

void cli_fer_set_done(cli_fer_set_t *s) {
        free(s->labels);
        free(s->pixels);
        free(s->lines);
        *s = (cli_fer_set_t) {};
}

static void gzclosep(gzFile *f) {
        if (*f)
                gzclose(*f);
}

/* Parse "N,P P P ...,Usage" (or "N,P P P ..." when the file has no Usage column: *ret_usage is
 * then NULL) into its parts; *ret_usage points into line. NULL on success, else what is wrong. */
static const char *parse_row(char *line, bool has_usage, uint8_t *ret_label, uint8_t *pixels,
                             const char **ret_usage) {
        const char *fields = has_usage ? "expected 3 comma-separated fields" : "expected 2 comma-separated fields";
        char *c1 = strchr(line, ',');
        if (!c1)
                return fields;
        char *c2 = strchr(c1 + 1, ',');
        if (has_usage ? !c2 || strchr(c2 + 1, ',') : c2 != NULL)
                return fields;
        *c1 = '\0';
        if (c2)
                *c2 = '\0';

        if (line[0] < '0' || line[0] > '6' || line[1] != '\0')
                return "the emotion label is not an integer from 0 to 6";

        const char *p = c1 + 1;
        for (int i = 0; i < CLI_FER_PIXELS; i++) {
                while (*p == ' ')
                        p++;
                if (*p < '0' || *p > '9')
                        return i == 0 || *p == '\0' ? "expected 2304 pixel values, found fewer"
                                                    : "a pixel value is not an integer from 0 to 255";
                unsigned v = 0;
                int digits = 0;
                for (; *p >= '0' && *p <= '9'; p++, digits++)
                        v = v * 10 + (unsigned) (*p - '0');
                if (digits > 3 || v > 255)
                        return "a pixel value is not an integer from 0 to 255";
                if (*p != ' ' && *p != '\0')
                        return "a pixel value is not an integer from 0 to 255";
                pixels[i] = (uint8_t) v;
        }
        while (*p == ' ')
                p++;
        if (*p != '\0')
                return "expected 2304 pixel values, found more";

        const char *usage = NULL;
        if (has_usage) {
                usage = c2 + 1;
                size_t n = strlen(usage);
                if (n == 0 || n > USAGE_MAX_BYTES)
                        return "the Usage field is empty or longer than 64 bytes";
                for (const char *q = usage; *q; q++)
                        if ((unsigned char) *q < 0x20 || *q == 0x7f)
                                return "the Usage field has a control character";
        }
        *ret_label = (uint8_t) (line[0] - '0');
        *ret_usage = usage;
        return NULL;
}

/* zlib's messages start with the path; ours add it themselves. */
static const char *zlib_message(const char *path, const char *msg) {
        size_t n = strlen(path);
        if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
                return msg + n + 2;
        return msg;
}

static int grow(cli_fer_set_t *s, size_t *cap) {
        if (s->n < *cap)
                return 0;
        size_t ncap = *cap ? *cap * 2 : 1024;
        uint8_t *labels = realloc(s->labels, ncap);
        if (!labels)
                return -ENOMEM;
        s->labels = labels;
        unsigned *lines = realloc(s->lines, ncap * sizeof(unsigned));
        if (!lines)
                return -ENOMEM;
        s->lines = lines;
        uint8_t *pixels = realloc(s->pixels, ncap * CLI_FER_PIXELS);
        if (!pixels)
                return -ENOMEM;
        s->pixels = pixels;
        *cap = ncap;
        return 0;
}

int cli_fer_read(const char *path, const char *usage, size_t limit, char *err, size_t errlen,
                 cli_fer_set_t *ret) {
        _cleanup_(gzclosep) gzFile f = NULL;
        _cleanup_free_ char *line = malloc(LINE_MAX_BYTES);
        _cleanup_(cli_fer_set_done) cli_fer_set_t s = {};
        size_t cap = 0;
        unsigned lineno = 0;
        int r;

        if (errlen > 0)
                err[0] = '\0';
        if (!line) {
                snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
                return -ENOMEM;
        }
        errno = 0;
        f = gzopen(path, "rb");
        if (!f) {
                r = errno ? -errno : -ENOMEM;
                snprintf(err, errlen, "%s: %s", path, strerror(-r));
                return r;
        }
        gzbuffer(f, 256 * 1024);

        while (limit == 0 || s.n < limit) {
                if (!gzgets(f, line, LINE_MAX_BYTES))
                        break;
                lineno++;
                size_t len = strlen(line);
                if (len == LINE_MAX_BYTES - 1 && line[len - 1] != '\n') {
                        snprintf(err, errlen, "%s:%u: line too long for a FER2013 row", path, lineno);
                        return -EBADMSG;
                }
                bool complete = len > 0 && line[len - 1] == '\n';
                while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        line[--len] = '\0';

                if (lineno == 1) {
                        const char *h = line;
                        if (strncmp(h, "\xEF\xBB\xBF", 3) == 0) /* a BOM from a spreadsheet */
                                h += 3;
                        if (strcmp(h, "emotion,pixels,Usage") == 0)
                                s.has_usage = true;
                        else if (strcmp(h, "emotion,pixels") != 0) {
                                snprintf(err, errlen, "%s:1: expected the header 'emotion,pixels,Usage' or 'emotion,pixels'",
                                         path);
                                return -EBADMSG;
                        }
                        continue;
                }
                if (len == 0)
                        continue;

                r = grow(&s, &cap);
                if (r < 0) {
                        snprintf(err, errlen, "%s: %s", path, strerror(-r));
                        return r;
                }
                uint8_t label;
                const char *u;
                const char *what = parse_row(line, s.has_usage, &label, s.pixels + s.n * CLI_FER_PIXELS, &u);
                if (what) {
                        /* A truncated .gz cuts its last line short: say so, not that the
                         * row is malformed. zlib notices when asked for more. */
                        int zerr = Z_OK;
                        const char *zmsg = NULL;
                        if (!complete && gzgetc(f) < 0)
                                zmsg = gzerror(f, &zerr);
                        if (zmsg && zerr != Z_OK && zerr != Z_STREAM_END)
                                what = zlib_message(path, zmsg);
                        snprintf(err, errlen, "%s:%u: %s", path, lineno, what);
                        return -EBADMSG;
                }
                if (usage && u && strcasecmp(u, usage) != 0)
                        continue;
                s.labels[s.n] = label;
                s.lines[s.n] = lineno;
                s.n++;
        }

        int zerr;
        const char *zmsg = gzerror(f, &zerr);
        if (zerr == Z_ERRNO) {
                r = errno ? -errno : -EIO;
                snprintf(err, errlen, "%s: %s", path, strerror(-r));
                return r;
        }
        if (zerr != Z_OK && zerr != Z_STREAM_END) {
                if (lineno == 0)
                        snprintf(err, errlen, "%s: %s", path, zlib_message(path, zmsg));
                else /* while reading the next line */
                        snprintf(err, errlen, "%s:%u: %s", path, lineno + 1, zlib_message(path, zmsg));
                return -EBADMSG;
        }
        if (lineno == 0) {
                snprintf(err, errlen, "%s: empty file, expected the header 'emotion,pixels,Usage' or 'emotion,pixels'",
                         path);
                return -EBADMSG;
        }

        *ret = s;
        s = (cli_fer_set_t) {}; /* now owned by the caller */
        return 0;
}
