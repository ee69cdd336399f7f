#include "metrics.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "emo/util.h"

#define N_STATUS 16 /* the wire's statuses (1..10 today); above: "unknown" */
static const double latency_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define N_LATENCY ELEMENTSOF(latency_bounds)
static const double face_bounds[] = { 0, 1, 2, 3, 4, 8, 16, 32 };
#define N_FACES ELEMENTSOF(face_bounds)
enum { STAGE_QUEUE, STAGE_DECODE, STAGE_DETECT, STAGE_CLASSIFY, STAGE_TOTAL, N_STAGES };
static const char *const stage_names[N_STAGES] = { "queue", "decode", "detect", "classify", "total" };

typedef struct histogram {
        uint64_t buckets[16]; /* per bound, not cumulative; the last one past every bound */
        uint64_t count;
        double sum;
} histogram_t;

struct emo_metrics {
        pthread_mutex_t lock;
        char *info_labels;
        uint64_t replies[N_STATUS + 1]; /* [N_STATUS]: unknown */
        histogram_t stages[N_STAGES];
        histogram_t faces;
        emo_metrics_gauges_t gauges;
        int64_t started_us;
        int64_t beat_us; /* when the dispatcher last set the gauges (started_us before its first) */
        struct MHD_Daemon *http;
};

static void observe(histogram_t *h, const double *bounds, size_t n, double v) {
        size_t i = 0;
        while (i < n && v > bounds[i])
                i++;
        h->buckets[i]++;
        h->count++;
        h->sum += v;
}

/* A label value with \, " and newlines escaped, as the text format wants. */
static void put_escaped(FILE *f, const char *s) {
        for (; s && *s; s++) {
                if (*s == '\\' || *s == '"')
                        fputc('\\', f);
                if (*s == '\n') {
                        fputs("\\n", f);
                        continue;
                }
                fputc(*s, f);
        }
}

emo_metrics_t *emo_metrics_new(const emo_metrics_info_t *info) {
        emo_metrics_t *m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        pthread_mutex_init(&m->lock, NULL);
        m->started_us = m->beat_us = emo_now_us();
        size_t len = 0;
        FILE *f = open_memstream(&m->info_labels, &len);
        if (!f)
                return emo_metrics_free(m);
        const char *names[] = { "version", "model", "model_sha256", "detector", "device" };
        const char *values[] = { info->version, info->model, info->model_sha256, info->detector, info->device };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                fprintf(f, "%s%s=\"", i ? "," : "", names[i]);
                put_escaped(f, values[i]);
                fputc('"', f);
        }
        if (fclose(f) != 0)
                return emo_metrics_free(m);
        return m;
}

emo_metrics_t *emo_metrics_free(emo_metrics_t *m) {
        if (!m)
                return NULL;
        if (m->http)
                MHD_stop_daemon(m->http);
        pthread_mutex_destroy(&m->lock);
        free(m->info_labels);
        free(m);
        return NULL;
}

void emo_metrics_reply(emo_metrics_t *m, int status) {
        if (!m)
                return;
        pthread_mutex_lock(&m->lock);
        m->replies[status > 0 && status < N_STATUS ? status : N_STATUS]++;
        pthread_mutex_unlock(&m->lock);
}

void emo_metrics_analysis(emo_metrics_t *m, const emo_timings_t *t, size_t faces) {
        if (!m)
                return;
        pthread_mutex_lock(&m->lock);
        if (t) {
                const uint32_t us[N_STAGES] = { t->queue_us, t->decode_us, t->detect_us, t->classify_us, t->total_us };
                for (int i = 0; i < N_STAGES; i++)
                        observe(&m->stages[i], latency_bounds, N_LATENCY, us[i] / 1e6);
        }
        observe(&m->faces, face_bounds, N_FACES, (double) faces);
        pthread_mutex_unlock(&m->lock);
}

void emo_metrics_set_gauges(emo_metrics_t *m, const emo_metrics_gauges_t *g) {
        if (!m)
                return;
        pthread_mutex_lock(&m->lock);
        m->gauges = *g;
        m->beat_us = emo_now_us();
        pthread_mutex_unlock(&m->lock);
}

static void put_histogram(FILE *f, const char *name, const char *labels, const histogram_t *h, const double *bounds,
                          size_t n) {
        uint64_t cumulative = 0;
        for (size_t i = 0; i < n; i++) {
                cumulative += h->buckets[i];
                fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "", bounds[i],
                        (unsigned long long) cumulative);
        }
        fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "", (unsigned long long) h->count);
        fprintf(f, "%s_sum%s%s%s %.6f\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", h->sum);
        fprintf(f, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
                (unsigned long long) h->count);
}

static void put_gauge(FILE *f, const char *name, const char *type, const char *help, uint64_t v) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, (unsigned long long) v);
}

int emo_metrics_render(emo_metrics_t *m, char **ret, size_t *ret_len) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        pthread_mutex_lock(&m->lock);
        fprintf(f, "# HELP emotiond_info The daemon's version, model, detector and compute device.\n"
                   "# TYPE emotiond_info gauge\nemotiond_info{%s} 1\n", m->info_labels);
        put_gauge(f, "emotiond_uptime_seconds", "gauge", "Seconds since the daemon started.",
                  (uint64_t) ((emo_now_us() - m->started_us) / 1000000));
        fputs("# HELP emotiond_replies_total Replies sent, by status (every request gets exactly one).\n"
              "# TYPE emotiond_replies_total counter\n", f);
        for (int s = 1; s <= N_STATUS; s++) {
                const char *name = s < N_STATUS ? emo_status_name(s) : "unknown";
                if (s < N_STATUS && streq(name, "unknown"))
                        continue; /* no such status on the wire */
                fprintf(f, "emotiond_replies_total{status=\"%s\"} %llu\n", name, (unsigned long long) m->replies[s]);
        }
        fputs("# HELP emotiond_stage_seconds Time of each stage of the analyses answered OK: waiting in the "
              "queue, decoding, face detection, classification, and in all from receipt to reply.\n"
              "# TYPE emotiond_stage_seconds histogram\n", f);
        for (int i = 0; i < N_STAGES; i++) {
                char labels[32];
                snprintf(labels, sizeof(labels), "stage=\"%s\"", stage_names[i]);
                put_histogram(f, "emotiond_stage_seconds", labels, &m->stages[i], latency_bounds, N_LATENCY);
        }
        fputs("# HELP emotiond_faces_per_image Faces found in each image analysed OK.\n"
              "# TYPE emotiond_faces_per_image histogram\n", f);
        put_histogram(f, "emotiond_faces_per_image", "", &m->faces, face_bounds, N_FACES);
        const emo_metrics_gauges_t *g = &m->gauges;
        put_gauge(f, "emotiond_queue_depth", "gauge", "Analyze requests waiting for a worker.", g->queue_depth);
        put_gauge(f, "emotiond_queue_capacity", "gauge", "Requests the queue holds before OVERLOADED.", g->queue_capacity);
        put_gauge(f, "emotiond_workers", "gauge", "Worker threads.", g->workers);
        put_gauge(f, "emotiond_workers_busy", "gauge", "Workers analysing a request now.", g->workers_busy);
        put_gauge(f, "emotiond_connections", "gauge", "Client connections open now.", g->connections);
        put_gauge(f, "emotiond_connections_refused_total", "counter", "Connections closed over max_connections.",
                  g->connections_refused);
        put_gauge(f, "emotiond_connections_shed_total", "counter",
                  "Silent connections closed over memory_budget_mb.", g->connections_shed);
        put_gauge(f, "emotiond_smoothed_streams", "gauge", "Streams with smoothing state (smooth_frames).",
                  g->smoothed_streams);
        pthread_mutex_unlock(&m->lock);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

int emo_metrics_health(emo_metrics_t *m, char **ret) {
        pthread_mutex_lock(&m->lock);
        int64_t silent_us = emo_now_us() - m->beat_us;
        emo_metrics_gauges_t g = m->gauges;
        pthread_mutex_unlock(&m->lock);
        char *text = NULL;
        int k;
        bool serving = silent_us <= EMO_METRICS_SILENT_MAX_US && !g.stopping;
        if (g.stopping)
                k = asprintf(&text, "not serving: stopping, finishing %llu request(s)\n",
                             (unsigned long long) g.workers_busy);
        else if (serving)
                k = asprintf(&text, "serving: %llu/%llu workers busy, queue %llu/%llu, %llu connections\n",
                             (unsigned long long) g.workers_busy, (unsigned long long) g.workers,
                             (unsigned long long) g.queue_depth, (unsigned long long) g.queue_capacity,
                             (unsigned long long) g.connections);
        else
                k = asprintf(&text, "not serving: the dispatcher has not come round for %lld ms\n",
                             (long long) (silent_us / 1000));
        if (k < 0)
                return -ENOMEM;
        *ret = text;
        return serving ? 0 : 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        (void) version;
        (void) upload_data;
        (void) upload_data_size;
        (void) con_cls;
        emo_metrics_t *m = cls;
        char *body = NULL;
        size_t len = 0;
        unsigned code = MHD_HTTP_OK;
        const char *type = "text/plain; version=0.0.4; charset=utf-8";
        if (!streq(method, "GET") && !streq(method, "HEAD")) {
                code = MHD_HTTP_METHOD_NOT_ALLOWED;
                body = strdup("only GET /metrics and GET /health\n");
        } else if (streq(url, "/health")) {
                int h = emo_metrics_health(m, &body);
                code = h < 0 ? MHD_HTTP_INTERNAL_SERVER_ERROR : h ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK;
                type = "text/plain; charset=utf-8";
                if (body)
                        len = strlen(body);
        } else if (!streq(url, "/metrics")) {
                code = MHD_HTTP_NOT_FOUND;
                body = strdup("the metrics are at /metrics, the health at /health\n");
        } else if (emo_metrics_render(m, &body, &len) < 0) {
                code = MHD_HTTP_INTERNAL_SERVER_ERROR;
                body = NULL;
        }
        if (body && code != MHD_HTTP_OK && !len)
                len = strlen(body);
        struct MHD_Response *r = MHD_create_response_from_buffer(body ? len : 0, body, MHD_RESPMEM_MUST_FREE);
        if (!r) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        enum MHD_Result ok = MHD_queue_response(c, code, r);
        MHD_destroy_response(r);
        return ok;
}

int emo_metrics_serve(emo_metrics_t *m, const char *listen_on, emo_error_t *err) {
        _cleanup_free_ char *host = strdup(listen_on);
        if (!host)
                return emo_error_set(err, -ENOMEM, "Failed to serve metrics on %s: %s", listen_on, strerror(ENOMEM));
        char *colon = strrchr(host, ':');
        if (!colon || !colon[1])
                return emo_error_set(err, -EINVAL, "metrics_listen = '%s': expected HOST:PORT, e.g. 127.0.0.1:9464",
                                     listen_on);
        *colon = '\0';
        char *h = host;
        size_t hl = strlen(h);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
                h[hl - 1] = '\0';
                h++;
        }
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE },
                        *res = NULL;
        int g = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &res);
        if (g != 0)
                return emo_error_set(err, -EINVAL,
                                     "metrics_listen = '%s': %s (a numeric address and port, e.g. 127.0.0.1:9464)",
                                     listen_on, gai_strerror(g));
        /* Our own listening socket, so that a failure says why (libmicrohttpd only says that it failed). */
        int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, r = 0;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 64) < 0) {
                r = emo_error_set(err, -errno, "Failed to serve metrics on %s: %s", listen_on, strerror(errno));
        }
        freeaddrinfo(res);
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        m->http = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, m,
                                   MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 16U,
                                   MHD_OPTION_CONNECTION_TIMEOUT, 10U, MHD_OPTION_END);
        if (!m->http) {
                close(fd);
                return emo_error_set(err, -EIO, "Failed to serve metrics on %s: libmicrohttpd did not start",
                                     listen_on);
        }
        return 0;
}
