#include "queue.h"

#include <czmq.h>
#include <errno.h>

struct emo_queue {
        size_t capacity, size;
        zhashx_t *by_key; /* key -> zlistx_t of jobs */
        zlistx_t *ring;   /* own copies of the keys with at least one job, in service order */
};

static void list_destroy(void **item) {
        zlistx_destroy((zlistx_t **) item);
}

emo_queue_t *emo_queue_new(size_t capacity) {
        emo_queue_t *q = calloc(1, sizeof(*q));
        if (!q)
                return NULL;
        q->capacity = capacity;
        q->by_key = zhashx_new();
        q->ring = zlistx_new();
        if (!q->by_key || !q->ring)
                return emo_queue_free(q);
        zhashx_set_destructor(q->by_key, list_destroy);
        zlistx_set_duplicator(q->ring, (czmq_duplicator *) strdup);
        zlistx_set_destructor(q->ring, (czmq_destructor *) zstr_free);
        return q;
}

emo_queue_t *emo_queue_free(emo_queue_t *q) {
        if (!q)
                return NULL;
        zlistx_destroy(&q->ring);
        zhashx_destroy(&q->by_key);
        free(q);
        return NULL;
}

int emo_queue_push(emo_queue_t *q, const char *key, void *job) {
        if (q->size >= q->capacity)
                return -ENOBUFS;
        zlistx_t *jobs = zhashx_lookup(q->by_key, key);
        if (!jobs) {
                if (!(jobs = zlistx_new()))
                        return -ENOMEM;
                if (zhashx_insert(q->by_key, key, jobs) < 0) {
                        zlistx_destroy(&jobs);
                        return -ENOMEM;
                }
                if (!zlistx_add_end(q->ring, (void *) key)) {
                        zhashx_delete(q->by_key, key);
                        return -ENOMEM;
                }
        }
        if (!zlistx_add_end(jobs, job))
                return -ENOMEM;
        q->size++;
        return 0;
}

void *emo_queue_pop(emo_queue_t *q) {
        const char *key = zlistx_first(q->ring);
        if (!key)
                return NULL;
        zlistx_t *jobs = zhashx_lookup(q->by_key, key);
        void *job = zlistx_detach(jobs, NULL);
        q->size--;
        if (zlistx_size(jobs) > 0)
                zlistx_move_end(q->ring, zlistx_cursor(q->ring));
        else {
                zhashx_delete(q->by_key, key);
                zlistx_delete(q->ring, zlistx_cursor(q->ring));
        }
        return job;
}

size_t emo_queue_size(const emo_queue_t *q) {
        return q->size;
}

size_t emo_queue_capacity(const emo_queue_t *q) {
        return q->capacity;
}
