#include "streams.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
        emo_smoother_t *smoother;
        unsigned window;
        uint64_t sequence; /* of the last frame fed */
        int64_t last_us;   /* when it was fed */
        emo_face_box_t *boxes; /* of the last frame, n_boxes of them, for the next frame to follow */
        size_t n_boxes;
        bool have_boxes;
        unsigned since_detect; /* frames since the detector ran */
} entry_t;

struct emo_streams {
        pthread_mutex_t lock;
        zhashx_t *by_key; /* key -> entry_t */
        size_t capacity;
};

static void entry_destroy(void **item) {
        entry_t *e = *item;
        if (e) {
                emo_smoother_free(e->smoother);
                free(e->boxes);
                free(e);
        }
        *item = NULL;
}

int emo_streams_new(size_t capacity, emo_streams_t **ret) {
        if (capacity == 0)
                return -EINVAL;
        emo_streams_t *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->capacity = capacity;
        if (!(s->by_key = zhashx_new())) {
                free(s);
                return -ENOMEM;
        }
        zhashx_set_destructor(s->by_key, entry_destroy);
        pthread_mutex_init(&s->lock, NULL);
        *ret = s;
        return 0;
}

emo_streams_t *emo_streams_free(emo_streams_t *s) {
        if (!s)
                return NULL;
        zhashx_destroy(&s->by_key);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

/* Make room for one more stream: drop the one fed longest ago. */
static void evict_oldest(emo_streams_t *s) {
        const void *oldest = NULL;
        int64_t oldest_us = INT64_MAX;
        for (entry_t *e = zhashx_first(s->by_key); e; e = zhashx_next(s->by_key))
                if (e->last_us < oldest_us) {
                        oldest_us = e->last_us;
                        oldest = zhashx_cursor(s->by_key);
                }
        if (oldest)
                zhashx_delete(s->by_key, oldest);
}

/* A fresh smoother for e, or -ENOMEM with e unchanged. */
static int restart(entry_t *e, unsigned window) {
        emo_smoother_t *fresh = NULL;
        int r = emo_smoother_new(window, &fresh);
        if (r < 0)
                return r;
        emo_smoother_free(e->smoother);
        e->smoother = fresh;
        e->window = window;
        e->have_boxes = false;
        return 0;
}

int emo_streams_smooth(emo_streams_t *s, const char *key, unsigned window, uint64_t sequence, int64_t now_us,
                       const emo_smooth_face_t *faces, size_t n, emo_smoothed_t *out) {
        if (window < 1 || window > EMO_SMOOTH_MAX_WINDOW)
                return -EINVAL;
        int r = 0;
        pthread_mutex_lock(&s->lock);
        entry_t *e = zhashx_lookup(s->by_key, key);
        if (!e) {
                if (!(e = calloc(1, sizeof(*e))) || restart(e, window) < 0) {
                        free(e);
                        r = -ENOMEM;
                        goto out;
                }
                if (zhashx_size(s->by_key) >= s->capacity)
                        evict_oldest(s);
                if (zhashx_insert(s->by_key, key, e) < 0) {
                        void *item = e;
                        entry_destroy(&item);
                        r = -ENOMEM;
                        goto out;
                }
        } else if (e->window != window || sequence < e->sequence || now_us - e->last_us > EMO_STREAM_IDLE_US) {
                if ((r = restart(e, window)) < 0)
                        goto out;
        }
        if ((r = emo_smoother_update(e->smoother, faces, n, out)) < 0)
                goto out;
        e->sequence = sequence;
        e->last_us = now_us;
out:
        pthread_mutex_unlock(&s->lock);
        return r;
}

int emo_streams_track_from(emo_streams_t *s, const char *key, unsigned window, uint64_t sequence, int64_t now_us,
                           unsigned every, emo_face_box_t *boxes, size_t max, size_t *ret_n) {
        int r = 0;
        pthread_mutex_lock(&s->lock);
        entry_t *e = zhashx_lookup(s->by_key, key);
        if (e && e->have_boxes && e->window == window && sequence >= e->sequence &&
            now_us - e->last_us <= EMO_STREAM_IDLE_US && e->since_detect + 1 < every) {
                size_t n = e->n_boxes < max ? e->n_boxes : max;
                if (n > 0) /* e->boxes is NULL while no face was ever kept */
                        memcpy(boxes, e->boxes, n * sizeof(*boxes));
                *ret_n = n;
                r = 1;
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

int emo_streams_keep_boxes(emo_streams_t *s, const char *key, const emo_face_box_t *boxes, size_t n, bool detected) {
        int r = 0;
        pthread_mutex_lock(&s->lock);
        entry_t *e = zhashx_lookup(s->by_key, key);
        if (!e) {
                r = -ENOENT;
                goto out;
        }
        e->have_boxes = false;
        if (n > 0) {
                emo_face_box_t *b = realloc(e->boxes, n * sizeof(*b));
                if (!b) {
                        r = -ENOMEM;
                        goto out;
                }
                e->boxes = b;
                memcpy(b, boxes, n * sizeof(*b));
        }
        e->n_boxes = n;
        e->since_detect = detected ? 0 : e->since_detect + 1;
        e->have_boxes = true;
out:
        pthread_mutex_unlock(&s->lock);
        return r;
}

size_t emo_streams_size(emo_streams_t *s) {
        pthread_mutex_lock(&s->lock);
        size_t n = zhashx_size(s->by_key);
        pthread_mutex_unlock(&s->lock);
        return n;
}

size_t emo_streams_active(emo_streams_t *s, int64_t now_us) {
        pthread_mutex_lock(&s->lock);
        zlistx_t *keys = zhashx_keys(s->by_key);
        for (const char *key = keys ? zlistx_first(keys) : NULL; key; key = zlistx_next(keys)) {
                entry_t *e = zhashx_lookup(s->by_key, key);
                if (now_us - e->last_us > EMO_STREAM_IDLE_US)
                        zhashx_delete(s->by_key, key);
        }
        zlistx_destroy(&keys);
        size_t n = zhashx_size(s->by_key);
        pthread_mutex_unlock(&s->lock);
        return n;
}
