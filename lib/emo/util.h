/* Small helpers shared by every C file of the project: scope-bound cleanup (systemd style) and
 * clocks. Header-only. */
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(emo_freep)
#define _unused_ __attribute__((unused))
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static inline void emo_freep(void *p) {
        free(*(void **) p);
}

/* Take ownership away from a _cleanup_ variable: returns its value and sets it to NULL. */
#define TAKE_PTR(p)                             \
        ({                                      \
                __typeof__(p) _p_ = (p);        \
                (p) = NULL;                     \
                _p_;                            \
        })

#define DEFINE_FREEP(type, func)                  \
        static inline void func##p(type **p) {    \
                if (*p)                           \
                        *p = func(*p);            \
        }

/* Monotonic clock in microseconds: for durations and deadlines, never for wall time. */
static inline int64_t emo_now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Wall clock in microseconds since the Unix epoch (capture timestamps). */
static inline int64_t emo_wall_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
