#include "bench.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "emo/util.h"
#include "output.h"
#include "window.h"

#define BENCH_MAX_LEVELS 32
#define BENCH_MAX_CLIENTS 256
#define BENCH_MAX_REQUESTS 1000000

enum {
        ARG_CLIENTS = CLI_ARG_FIRST,
        ARG_REQUESTS,
        ARG_DURATION,
        ARG_WARMUP,
};

typedef struct bench_config {
        cli_options_t o;
        unsigned levels[BENCH_MAX_LEVELS];
        size_t n_levels;
        unsigned requests;
        unsigned duration_s;
        unsigned warmup;
} bench_config_t;

/* What the daemon said about itself, for the report. */
typedef struct bench_server {
        const char *endpoint;
        char version[64], model[128], detector[64], device[32];
        unsigned workers;
} bench_server_t;

typedef struct bench_image {
        const char *name;
        const uint8_t *data;
        size_t size;
        unsigned width, height;
} bench_image_t;

/* Sums over the OK replies one thread saw. */
typedef struct bench_sums {
        uint64_t ok, errors, timeouts, faces;
        uint64_t queue_us, decode_us, detect_us, classify_us, total_us;
        char first_error[160];
} bench_sums_t;

typedef struct bench_run {
        const bench_config_t *config;
        const bench_image_t *image;
        const char *endpoint;
        atomic_uint next;     /* next request number to claim */
        int64_t end_us;       /* no request starts after this */
        double *latency_ms;   /* per request number; NAN when it failed */
        int64_t last_done_us; /* guarded by lock */
        pthread_mutex_t lock;
} bench_run_t;

typedef struct bench_thread {
        pthread_t thread;
        bench_run_t *run;
        bench_sums_t sums;
        int error; /* setting up the thread's connection failed */
} bench_thread_t;

static void help(void) {
        printf("Usage: %s bench [OPTION]... FILE...\n"
               "Benchmark a local emotiond: for each image FILE and each concurrency level, run that many\n"
               "client threads (one connection each) sending FILE again and again, then print requests/s,\n"
               "latency percentiles measured at the client, faces per reply and the mean time per stage\n"
               "reported by the daemon.\n"
               "\n"
               "      --clients LIST   comma-separated concurrency levels (default 1,2,4; each 1..%d)\n"
               "      --requests N     requests per FILE and level, all threads together (default 200)\n"
               "      --duration S     stop starting requests after S seconds per FILE and level (default 10)\n"
               "      --warmup N       unmeasured requests per FILE first (default 3)\n"
               "      --json           one JSON object per FILE and level, one per line\n"
               CLI_COMMON_HELP
               "  -h, --help           show this help and exit\n"
               "\n"
               "Only ipc:// and loopback tcp:// endpoints are accepted. Exit status: 0 every request got\n"
               "an OK reply, 1 some failed or a FILE was unreadable, 2 usage error, 3 the daemon did\n"
               "not answer.\n",
               cli_program_name, BENCH_MAX_CLIENTS);
}

static int parse_levels(const char *arg, bench_config_t *c) {
        _cleanup_free_ char *s = strdup(arg);
        if (!s)
                return -ENOMEM;
        c->n_levels = 0;
        char *save = NULL;
        for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                uint64_t v;
                if (c->n_levels == BENCH_MAX_LEVELS || cli_parse_uint(tok, 1, BENCH_MAX_CLIENTS, &v) < 0)
                        return -EINVAL;
                c->levels[c->n_levels++] = (unsigned) v;
        }
        /* strtok_r skips empty fields: "1,,2" and ",1" are typos, not levels. */
        if (c->n_levels == 0 || arg[0] == ',' || arg[strlen(arg) - 1] == ',' || strstr(arg, ",,"))
                return -EINVAL;
        return 0;
}

/* ipc://, or tcp:// to 127.0.0.0/8, localhost or [::1]. */
static bool endpoint_is_local(const char *ep) {
        if (strncmp(ep, "ipc://", 6) == 0)
                return true;
        if (strncmp(ep, "tcp://", 6) != 0)
                return false;
        const char *host = ep + 6;
        return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost:", 10) == 0 ||
               strncmp(host, "[::1]:", 6) == 0;
}

static void request_for(cli_request_t *r, const bench_image_t *img, const cli_options_t *o) {
        /* The same request `analyze` sends, so that the numbers speak for it. */
        cli_request_init(r, EMOTION__V1__IMAGE__FORMAT__ENCODED, img->data, img->size, o->timeout_ms);
        cli_request_set_options(r, o);
}

static void note_error(bench_sums_t *s, const char *what, const char *message) {
        if (!s->first_error[0])
                snprintf(s->first_error, sizeof(s->first_error), "%s: %s", what, message);
}

static void *thread_main(void *userdata) {
        bench_thread_t *t = userdata;
        bench_run_t *run = t->run;
        const cli_options_t *o = &run->config->o;
        emo_client_t *c = NULL;
        cli_request_t r;

        t->error = emo_client_new(run->endpoint, &c);
        if (t->error < 0)
                return NULL;
        request_for(&r, run->image, o);

        for (;;) {
                unsigned i = atomic_fetch_add(&run->next, 1);
                if (i >= run->config->requests || emo_now_us() >= run->end_us)
                        break;
                int64_t start = emo_now_us();
                emo_reply_t *reply = NULL;
                /* One attempt: a lost reply is a timeout of this run, not something to retry. */
                int k = emo_client_call(c, &r.request, o->timeout_ms, 1, &reply);
                int64_t end = emo_now_us();
                run->latency_ms[i] = NAN;

                pthread_mutex_lock(&run->lock);
                if (end > run->last_done_us)
                        run->last_done_us = end;
                pthread_mutex_unlock(&run->lock);

                if (k < 0) {
                        t->sums.timeouts += k == -ETIMEDOUT;
                        t->sums.errors += k != -ETIMEDOUT;
                        note_error(&t->sums, k == -ETIMEDOUT ? "timeout" : "error",
                                   k == -ETIMEDOUT ? "no reply in time" : strerror(-k));
                        /* Whatever is stuck on this socket is not worth waiting for. */
                        if (emo_client_reconnect(c) < 0)
                                break;
                        continue;
                }
                const emo_analyze_reply_t *a = cli_reply_analyze(reply);
                if (!a) {
                        t->sums.errors++;
                        note_error(&t->sums, emo_status_name(reply->status), reply->message);
                        emo_reply_free(reply);
                        continue;
                }
                run->latency_ms[i] = (end - start) / 1000.0;
                t->sums.ok++;
                t->sums.faces += a->n_faces;
                if (a->timings) {
                        t->sums.queue_us += a->timings->queue_us;
                        t->sums.decode_us += a->timings->decode_us;
                        t->sums.detect_us += a->timings->detect_us;
                        t->sums.classify_us += a->timings->classify_us;
                        t->sums.total_us += a->timings->total_us;
                }
                emo_reply_free(reply);
        }
        emo_client_free(c);
        return NULL;
}

static int compare_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

/* Nearest-rank percentile of n sorted values. */
static double percentile(const double *v, size_t n, double p) {
        if (n == 0)
                return NAN;
        size_t rank = (size_t) ceil(p / 100.0 * (double) n);
        return v[rank > 0 ? rank - 1 : 0];
}

typedef struct bench_result {
        unsigned clients;
        uint64_t requests, ok, errors, timeouts;
        double elapsed_s, rps;
        double p50, p90, p99, mean, max;
        double faces_per_reply;
        double queue_ms, decode_ms, detect_ms, classify_ms, total_ms;
        char first_error[160];
} bench_result_t;

static int run_level(const bench_config_t *config, const bench_image_t *img, const char *endpoint, unsigned clients,
                     bench_result_t *ret) {
        bench_run_t run = {
                .config = config,
                .image = img,
                .endpoint = endpoint,
                .lock = PTHREAD_MUTEX_INITIALIZER,
        };
        atomic_init(&run.next, 0);
        _cleanup_free_ double *latency = malloc(config->requests * sizeof(double));
        _cleanup_free_ bench_thread_t *threads = calloc(clients, sizeof(bench_thread_t));
        if (!latency || !threads)
                return -ENOMEM;
        for (unsigned i = 0; i < config->requests; i++)
                latency[i] = NAN;
        run.latency_ms = latency;

        int64_t start = emo_now_us();
        run.end_us = start + (int64_t) config->duration_s * 1000000;
        run.last_done_us = start;
        unsigned started = 0;
        int r = 0;
        for (; started < clients; started++) {
                threads[started].run = &run;
                r = -pthread_create(&threads[started].thread, NULL, thread_main, &threads[started]);
                if (r < 0)
                        break;
        }
        for (unsigned i = 0; i < started; i++)
                pthread_join(threads[i].thread, NULL);
        if (r < 0)
                return r;

        bench_result_t res = { .clients = clients };
        bench_sums_t sum = {};
        for (unsigned i = 0; i < clients; i++) {
                const bench_sums_t *s = &threads[i].sums;
                if (threads[i].error < 0)
                        return threads[i].error;
                sum.ok += s->ok;
                sum.errors += s->errors;
                sum.timeouts += s->timeouts;
                sum.faces += s->faces;
                sum.queue_us += s->queue_us;
                sum.decode_us += s->decode_us;
                sum.detect_us += s->detect_us;
                sum.classify_us += s->classify_us;
                sum.total_us += s->total_us;
                if (!res.first_error[0] && s->first_error[0])
                        memcpy(res.first_error, s->first_error, sizeof(res.first_error));
        }

        /* Keep the latencies of OK replies, in order. */
        size_t n = 0;
        double total = 0;
        for (unsigned i = 0; i < config->requests; i++)
                if (!isnan(latency[i])) {
                        total += latency[i];
                        latency[n++] = latency[i];
                }
        qsort(latency, n, sizeof(double), compare_double);

        res.requests = sum.ok + sum.errors + sum.timeouts;
        res.ok = sum.ok;
        res.errors = sum.errors;
        res.timeouts = sum.timeouts;
        res.elapsed_s = (run.last_done_us - start) / 1e6;
        res.rps = res.elapsed_s > 0 ? sum.ok / res.elapsed_s : 0;
        res.p50 = percentile(latency, n, 50);
        res.p90 = percentile(latency, n, 90);
        res.p99 = percentile(latency, n, 99);
        res.mean = n ? total / n : NAN;
        res.max = n ? latency[n - 1] : NAN;
        double k = sum.ok ? (double) sum.ok : NAN;
        res.faces_per_reply = sum.faces / k;
        res.queue_ms = sum.queue_us / k / 1000.0;
        res.decode_ms = sum.decode_us / k / 1000.0;
        res.detect_ms = sum.detect_us / k / 1000.0;
        res.classify_ms = sum.classify_us / k / 1000.0;
        res.total_ms = sum.total_us / k / 1000.0;
        *ret = res;
        return 0;
}

static void print_json(const bench_server_t *srv, const bench_image_t *img, const bench_result_t *r) {
        json_object *o = json_object_new_object();
        if (!o)
                return;
        cli_json_add_string(o, "file", img->name);
        cli_json_add_uint(o, "bytes", img->size);
        cli_json_add_uint(o, "width", img->width);
        cli_json_add_uint(o, "height", img->height);
        cli_json_add_uint(o, "clients", r->clients);
        cli_json_add_uint(o, "requests", r->requests);
        cli_json_add_uint(o, "ok", r->ok);
        cli_json_add_uint(o, "errors", r->errors);
        cli_json_add_uint(o, "timeouts", r->timeouts);
        cli_json_add_double(o, "elapsed_s", r->elapsed_s);
        cli_json_add_double(o, "requests_per_s", r->rps);
        json_object *l = json_object_new_object();
        if (l) {
                cli_json_add_double(l, "p50", r->p50);
                cli_json_add_double(l, "p90", r->p90);
                cli_json_add_double(l, "p99", r->p99);
                cli_json_add_double(l, "mean", r->mean);
                cli_json_add_double(l, "max", r->max);
        }
        json_object_object_add(o, "latency_ms", l);
        cli_json_add_double(o, "faces_per_reply", r->faces_per_reply);
        json_object *s = json_object_new_object();
        if (s) {
                cli_json_add_double(s, "queue", r->queue_ms);
                cli_json_add_double(s, "decode", r->decode_ms);
                cli_json_add_double(s, "detect", r->detect_ms);
                cli_json_add_double(s, "classify", r->classify_ms);
                cli_json_add_double(s, "total", r->total_ms);
        }
        json_object_object_add(o, "stages_ms", s);
        if (r->first_error[0])
                cli_json_add_string(o, "first_error", r->first_error);
        cli_json_add_string(o, "endpoint", srv->endpoint);
        cli_json_add_string(o, "version", srv->version);
        cli_json_add_string(o, "model", srv->model);
        cli_json_add_string(o, "detector", srv->detector);
        cli_json_add_string(o, "device", srv->device);
        cli_json_add_uint(o, "workers", srv->workers);
        cli_json_print_line(o);
        json_object_put(o);
}

static void print_row(const bench_result_t *r) {
        printf("%7u %8llu %6llu %8.1f %7.2f %7.2f %7.2f %5.2f %7.2f %7.2f %7.2f %8.2f %7.2f\n", r->clients,
               (unsigned long long) r->requests, (unsigned long long) (r->errors + r->timeouts), r->rps, r->p50,
               r->p90, r->p99, r->faces_per_reply, r->queue_ms, r->decode_ms, r->detect_ms, r->classify_ms,
               r->total_ms);
        fflush(stdout);
}

/* Ask the daemon who it is (and whether it is there at all). An exit code, CLI_EXIT_OK on success. */
static int query_server(const cli_options_t *o, emo_client_t *c, bench_server_t *srv) {
        emo_health_request_t hr = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &hr;
        emo_reply_t *reply = NULL;
        int r = emo_client_call(c, &req, o->timeout_ms, o->attempts, &reply);
        if (r == -ETIMEDOUT)
                return cli_report_unreachable(o, c);
        if (r < 0) {
                cli_error("Failed to talk to emotiond at %s: %s", srv->endpoint, strerror(-r));
                return CLI_EXIT_UNREACHABLE;
        }
        const emo_health_reply_t *h = cli_reply_health(reply);
        if (!h) {
                cli_error("%s: health: %s: %s", srv->endpoint, emo_status_name(reply->status), reply->message);
                emo_reply_free(reply);
                return CLI_EXIT_FAILED;
        }
        snprintf(srv->version, sizeof(srv->version), "%s", h->version);
        snprintf(srv->model, sizeof(srv->model), "%s", h->model ? h->model->name : "");
        snprintf(srv->detector, sizeof(srv->detector), "%s", h->detector);
        snprintf(srv->device, sizeof(srv->device), "%s", h->device);
        srv->workers = h->workers;
        emo_reply_free(reply);
        return CLI_EXIT_OK;
}

/* Read FILE and check with a few unmeasured requests that the daemon accepts it. An exit code. */
static int prepare_image(const bench_config_t *config, emo_client_t *c, bench_image_t *img, uint8_t **ret_data) {
        _cleanup_free_ uint8_t *data = NULL;
        int r = cli_read_file(img->name, &data, &img->size);
        if (r < 0) {
                cli_error("%s: %s: %s", img->name, r == -EFBIG ? "file_too_large" : "io_error",
                          r == -EFBIG ? "larger than the 64 MiB limit" : strerror(-r));
                return CLI_EXIT_FAILED;
        }
        img->data = data;

        cli_request_t req;
        request_for(&req, img, &config->o);
        unsigned n = config->warmup ?: 1; /* at least one, to learn the image size */
        for (unsigned i = 0; i < n; i++) {
                emo_reply_t *reply = NULL;
                r = emo_client_call(c, &req.request, config->o.timeout_ms, config->o.attempts, &reply);
                if (r == -ETIMEDOUT)
                        return cli_report_unreachable(&config->o, c);
                if (r < 0) {
                        cli_error("Failed to talk to emotiond: %s", strerror(-r));
                        return CLI_EXIT_UNREACHABLE;
                }
                const emo_analyze_reply_t *a = cli_reply_analyze(reply);
                if (!a) {
                        cli_error("%s: %s: %s", img->name, emo_status_name(reply->status), reply->message);
                        emo_reply_free(reply);
                        return CLI_EXIT_FAILED;
                }
                img->width = a->image_width;
                img->height = a->image_height;
                emo_reply_free(reply);
        }
        *ret_data = TAKE_PTR(data);
        return CLI_EXIT_OK;
}

static int option(void *userdata, int c, const char *arg) {
        bench_config_t *config = userdata;
        uint64_t v;
        switch (c) {
        case ARG_CLIENTS:
                if (parse_levels(arg, config) < 0)
                        return cli_usage_error("bench",
                                               "invalid --clients '%s': expected a comma-separated list of integers "
                                               "from 1 to %d",
                                               arg, BENCH_MAX_CLIENTS);
                return CLI_EXIT_OK;
        case ARG_REQUESTS:
                if (cli_parse_option_uint("bench", "--requests", arg, 1, BENCH_MAX_REQUESTS, &v) < 0)
                        return CLI_EXIT_USAGE;
                config->requests = (unsigned) v;
                return CLI_EXIT_OK;
        case ARG_DURATION:
                if (cli_parse_option_uint("bench", "--duration", arg, 1, 3600, &v) < 0)
                        return CLI_EXIT_USAGE;
                config->duration_s = (unsigned) v;
                return CLI_EXIT_OK;
        case ARG_WARMUP:
                if (cli_parse_option_uint("bench", "--warmup", arg, 0, 1000, &v) < 0)
                        return CLI_EXIT_USAGE;
                config->warmup = (unsigned) v;
                return CLI_EXIT_OK;
        default:
                return cli_usage_hint("bench");
        }
}

/* Every level of config for one FILE; ret is the exit code so far, the new one is returned. */
static int bench_file(const bench_config_t *config, emo_client_t *client, bench_server_t *srv, const char *name,
                      int ret) {
        bench_image_t img = { .name = name };
        _cleanup_free_ uint8_t *data = NULL;
        int k = prepare_image(config, client, &img, &data);
        if (k != CLI_EXIT_OK)
                return k;
        if (!config->o.json) {
                printf("\n%s (%ux%u, %.1f KiB)\n", img.name, img.width, img.height, img.size / 1024.0);
                printf("%7s %8s %6s %8s %7s %7s %7s %5s %7s %7s %7s %8s %7s\n", "clients", "requests", "errors",
                       "req/s", "p50 ms", "p90 ms", "p99 ms", "faces", "queue", "decode", "detect", "classify",
                       "total");
        }
        for (size_t l = 0; l < config->n_levels; l++) {
                bench_result_t res;
                k = run_level(config, &img, srv->endpoint, config->levels[l], &res);
                if (k < 0) {
                        cli_error("Failed to run %u clients: %s", config->levels[l], strerror(-k));
                        return CLI_EXIT_FAILED;
                }
                if (config->o.json)
                        print_json(srv, &img, &res);
                else
                        print_row(&res);
                if (res.errors + res.timeouts > 0) {
                        cli_error("%s, %u clients: %llu of %llu requests failed (first: %s)", img.name,
                                  config->levels[l], (unsigned long long) (res.errors + res.timeouts),
                                  (unsigned long long) res.requests, res.first_error);
                        if (ret == CLI_EXIT_OK)
                                ret = CLI_EXIT_FAILED;
                }
                /* Lost replies, or a daemon gone: ask before spending another run's duration on
                 * timeouts. */
                if (res.timeouts > 0 && query_server(&config->o, client, srv) == CLI_EXIT_UNREACHABLE)
                        return CLI_EXIT_UNREACHABLE;
        }
        return ret;
}

int cli_bench_main(const cli_options_t *defaults, int argc, char **argv) {
        static const struct option options[] = {
                { "clients", required_argument, NULL, ARG_CLIENTS },
                { "requests", required_argument, NULL, ARG_REQUESTS },
                { "duration", required_argument, NULL, ARG_DURATION },
                { "warmup", required_argument, NULL, ARG_WARMUP },
                {},
        };
        bench_config_t config = {
                .o = *defaults,
                .levels = { 1, 2, 4 },
                .n_levels = 3,
                .requests = 200,
                .duration_s = 10,
                .warmup = 3,
        };
        const cli_command_t cmd = {
                .name = "bench",
                .help = help,
                .takes = CLI_TAKES_CONNECTION,
                .options = options,
                .option = option,
                .userdata = &config,
                .operand = "FILE",
        };
        int ret;
        if (!cli_parse_command(&cmd, &config.o, argc, argv, &ret))
                return ret;

        _cleanup_(cli_client_freep) emo_client_t *client = NULL;
        int r = cli_client_open(&config.o, "bench", &client);
        if (r < 0)
                return cli_open_exit(r);
        bench_server_t srv = { .endpoint = emo_client_endpoint(client) };
        if (!endpoint_is_local(srv.endpoint))
                return cli_usage_error("bench",
                                       "'%s' is not a local endpoint: bench only measures a daemon over ipc:// or "
                                       "loopback tcp://",
                                       srv.endpoint);

        ret = query_server(&config.o, client, &srv);
        if (ret != CLI_EXIT_OK)
                return ret;
        if (!config.o.json)
                printf("emotiond %s at %s: model %s, detector %s, device %s, %u worker%s\n", srv.version, srv.endpoint,
                       srv.model, srv.detector, srv.device, srv.workers, srv.workers == 1 ? "" : "s");
        for (int i = optind; i < argc && ret != CLI_EXIT_UNREACHABLE; i++)
                ret = bench_file(&config, client, &srv, argv[i], ret);
        return ret;
}
