/* Prometheus metrics: what the daemon has answered and how long each stage took, served as
 * Prometheus text format (version 0.0.4) on GET /metrics by libmicrohttpd's own thread, opt-in
 * (`metrics_listen = 127.0.0.1:9464`). The same endpoint answers GET /health for load balancers
 * (HAProxy's `option httpchk`): 200 while the daemon serves, 503 when its dispatcher has stopped
 * coming round or it is stopping (draining after SIGTERM: it refuses new requests). It is served only once the model is loaded and the endpoints are bound, and the
 * dispatcher comes round at least every few seconds even when idle, so "served and recently
 * beating" is readiness and liveness both.
 *
 * The dispatcher thread records (every reply by status; for each analysis the stage timings of its
 * reply and its number of faces; the gauges once per loop), the HTTP thread renders a consistent
 * snapshot; one mutex, held for a few increments or one rendering. Histograms use fixed buckets:
 * latencies from 1 ms to 10 s, faces from 0 to 32. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emo/error.h"
#include "emo/protocol.h"

typedef struct emo_metrics emo_metrics_t;

/* Constant labels of emotiond_info (copied). */
typedef struct emo_metrics_info {
        const char *version, *model, *model_sha256, *detector, *device;
} emo_metrics_info_t;

/* Values of the moment, set by the dispatcher. stopping: a SIGTERM is being drained (the daemon
 * finishes its work and refuses new requests until it exits). */
typedef struct emo_metrics_gauges {
        uint64_t queue_depth, queue_capacity, workers, workers_busy, connections, connections_refused,
                connections_shed, smoothed_streams;
        bool stopping;
} emo_metrics_gauges_t;

/* A registry with every counter at zero. NULL on out-of-memory. */
emo_metrics_t *emo_metrics_new(const emo_metrics_info_t *info);

/* Stop serving (if serving) and free. Accepts NULL, returns NULL. */
emo_metrics_t *emo_metrics_free(emo_metrics_t *m);

/* One reply sent with this status (emo_status_t; unknown numbers are counted as "unknown"). */
void emo_metrics_reply(emo_metrics_t *m, int status);

/* One analysis answered OK: its stage timings (NULL: none) and number of faces. */
void emo_metrics_analysis(emo_metrics_t *m, const emo_timings_t *timings, size_t faces);

void emo_metrics_set_gauges(emo_metrics_t *m, const emo_metrics_gauges_t *g);

/* The text exposition of everything now, malloc'd in *ret (NUL-terminated, *ret_len bytes).
 * 0 or -ENOMEM. */
int emo_metrics_render(emo_metrics_t *m, char **ret, size_t *ret_len);

/* How long the dispatcher may go without setting the gauges before /health says 503: it wakes at
 * least every 5 s (its status period), so three periods mean it is stuck. */
#define EMO_METRICS_SILENT_MAX_US (15 * 1000000LL)

/* The health of the daemon as /health tells it: 0 serving, 1 not (the dispatcher is silent, or the
 * daemon is stopping), with a line of text saying so in *ret (malloc'd); -ENOMEM. */
int emo_metrics_health(emo_metrics_t *m, char **ret);

/* Serve GET /metrics (and GET /health) on listen ("HOST:PORT", "[V6]:PORT"; a numeric address) from a thread of
 * libmicrohttpd's. 0, or -errno with err naming the address and the cause (-EADDRINUSE, ...). */
int emo_metrics_serve(emo_metrics_t *m, const char *listen, emo_error_t *err);
