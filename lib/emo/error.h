/* The error convention of the daemon's modules: a function that can fail returns >= 0 on success
 * and a negative errno on failure, and says why in one place, an emo_error_t the caller passes as
 * its last argument. The errno is for code (which status to answer, whether to retry); the message
 * is for people: a complete sentence fragment naming the file, key or endpoint and the cause
 * ("/etc/emotiond/emotiond.conf:12: workers = x: not a number"), which the caller logs, prints
 * (emotiond --check) or puts in a reply, adding only its own context. Modules never log.
 *
 * err may be NULL when the caller only wants the errno. On success the message is left as it was.
 * Header-only. */
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct emo_error {
        char message[512];
} emo_error_t;

/* Write the message (printf format) into err unless it is NULL, and return code, so that a
 * failing path reads `return emo_error_set(err, -EINVAL, "...", ...);`. */
__attribute__((format(printf, 3, 4))) static inline int emo_error_set(emo_error_t *err, int code, const char *fmt,
                                                                      ...) {
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
        }
        return code;
}

/* Append to the message already in err (a detail after the cause). */
__attribute__((format(printf, 2, 3))) static inline void emo_error_append(emo_error_t *err, const char *fmt, ...) {
        if (!err)
                return;
        size_t len = strlen(err->message);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message + len, sizeof(err->message) - len, fmt, ap);
        va_end(ap);
}

/* The message, or "" for NULL: for log lines that take an err that may not have been passed. */
static inline const char *emo_error_message(const emo_error_t *err) {
        return err ? err->message : "";
}
