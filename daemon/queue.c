#include "queue.h"

#include <czmq.h>
#include <errno.h>
#include <stdbool.h>

struct emo_queue {
        size_t capacity, size;
        zhashx_t *by_key; /* key -> zlistx_t of jobs */
        zlistx_t *ring;   /* own copies of the keys with at least one job, in service order */
        zhashx_t *held;   /* keys on hold (value unused) */
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
        q->held = zhashx_new();
        if (!q->by_key || !q->ring || !q->held)
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
        zhashx_destroy(&q->held);
        free(q);
        return NULL;
}

int emo_queue_push(emo_queue_t *q, const char *key, void *job) {
        if (q->size >= q->capacity)
                return -ENOBUFS;
        zlistx_t *jobs = zhashx_lookup(q->by_key, key);
        if (jobs) {
                if (!zlistx_add_end(jobs, job))
                        return -ENOMEM;
                q->size++;
                return 0;
        }
        /* A new key: its list holds the job and the ring its copy of the key before the key goes
         * into by_key, so a failure leaves nothing behind. A key in by_key with no job would make
         * pop() return NULL without a job and still count one off the size. */
        jobs = zlistx_new();
        if (!jobs)
                return -ENOMEM;
        void *in_ring = NULL;
        if (!zlistx_add_end(jobs, job) || !(in_ring = zlistx_add_end(q->ring, (void *) key)) ||
            zhashx_insert(q->by_key, key, jobs) < 0) {
                if (in_ring)
                        zlistx_delete(q->ring, in_ring);
                zlistx_destroy(&jobs); /* no destructor: the job stays the caller's */
                return -ENOMEM;
        }
        q->size++;
        return 0;
}

/* The first job of the first key in the ring that is not on hold (any key with any_key). */
static void *pop(emo_queue_t *q, bool any_key) {
        const char *key = zlistx_first(q->ring);
        while (key && !any_key && zhashx_lookup(q->held, key))
                key = zlistx_next(q->ring);
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

void *emo_queue_pop(emo_queue_t *q) {
        return pop(q, false);
}

void *emo_queue_pop_any(emo_queue_t *q) {
        return pop(q, true);
}

int emo_queue_hold(emo_queue_t *q, const char *key) {
        if (zhashx_lookup(q->held, key))
                return 0;
        return zhashx_insert(q->held, key, (void *) 1) < 0 ? -ENOMEM : 0;
}

void emo_queue_release(emo_queue_t *q, const char *key) {
        zhashx_delete(q->held, key);
}

size_t emo_queue_size(const emo_queue_t *q) {
        return q->size;
}

size_t emo_queue_capacity(const emo_queue_t *q) {
        return q->capacity;
}
