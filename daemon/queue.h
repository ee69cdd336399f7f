/* A bounded, fair job queue. Jobs are grouped by a key (the stream: a camera name or a client
 * connection) and taken round-robin across keys, so one camera sending a burst cannot starve the
 * others; the total is bounded so the daemon never grows without limit under load. Single
 * thread only (the dispatcher owns it). */
#pragma once

#include <stddef.h>

typedef struct emo_queue emo_queue_t;

/* NULL on out-of-memory. */
emo_queue_t *emo_queue_new(size_t capacity);

/* Accepts NULL; the jobs still queued are not freed (drain with emo_queue_pop_any first:
 * emo_queue_pop skips held keys). */
emo_queue_t *emo_queue_free(emo_queue_t *q);

/* Append job under key. -ENOBUFS when the queue holds capacity jobs, -ENOMEM. */
int emo_queue_push(emo_queue_t *q, const char *key, void *job);

/* The next job in round-robin order over the keys not on hold, or NULL when there is none. */
void *emo_queue_pop(emo_queue_t *q);

/* The next job in round-robin order over all keys, held or not (to empty the queue), or NULL. */
void *emo_queue_pop_any(emo_queue_t *q);

/* Put a key on hold: its jobs stay queued, in order, until emo_queue_release(). The server holds
 * a stream while one of its frames that must be processed in order is with a worker. Holding a
 * held key, or releasing a free one, changes nothing. 0 or -ENOMEM. */
int emo_queue_hold(emo_queue_t *q, const char *key);
void emo_queue_release(emo_queue_t *q, const char *key);

size_t emo_queue_size(const emo_queue_t *q);
size_t emo_queue_capacity(const emo_queue_t *q);
