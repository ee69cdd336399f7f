#include "stats.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emo/util.h"
#include "output.h"

#define STATS_DEFAULT_URL "http://127.0.0.1:9464/metrics"
#define STATS_MAX_BYTES (4u << 20)

static const char *const stages[] = { "queue", "decode", "detect", "classify", "total" };

typedef struct sample {
        char *name;   /* metric name */
        char *labels; /* between the braces, "" when none */
        double value;
} sample_t;

typedef struct metrics {
        sample_t *s;
        size_t n;
} metrics_t;

static void help(void) {
        printf("Usage: %s stats [OPTION]...\n"
               "Show the daemon's metrics: replies by status, the latency of each stage, faces per\n"
               "image, queue, workers and connections. The daemon serves them over HTTP when\n"
               "metrics_listen is set in emotiond.conf (e.g. metrics_listen = 127.0.0.1:9464).\n"
               "\n"
               "      --metrics URL    where to read them (default: $EMOTIOND_METRICS_URL, else\n"
               "                       " STATS_DEFAULT_URL ")\n"
               "      --timeout MS     give up after MS milliseconds (default %d)\n"
               "      --json           one JSON object instead of text\n"
               "  -h, --help           show this help and exit\n"
               "\n"
               "Exit status: 0 shown, 2 usage error, 3 the metrics could not be read.\n",
               cli_program_name, CLI_DEFAULT_TIMEOUT_MS);
}

typedef struct buffer {
        char *data;
        size_t len;
} buffer_t;

static size_t on_data(char *ptr, size_t size, size_t n, void *userdata) {
        buffer_t *b = userdata;
        size_t add = size * n;
        if (b->len + add > STATS_MAX_BYTES)
                return 0; /* curl then fails with CURLE_WRITE_ERROR */
        char *p = realloc(b->data, b->len + add + 1);
        if (!p)
                return 0;
        memcpy(p + b->len, ptr, add);
        b->data = p;
        b->len += add;
        b->data[b->len] = '\0';
        return add;
}

/* GET url into *ret (NUL-terminated); on failure a message in err. */
static int fetch(const char *url, long timeout_ms, char **ret, char *err, size_t errlen) {
        CURL *curl = curl_easy_init();
        if (!curl)
                return -ENOMEM;
        buffer_t b = { 0 };
        char curl_err[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        CURLcode c = curl_easy_perform(curl);
        curl_easy_cleanup(curl);
        if (c != CURLE_OK) {
                snprintf(err, errlen, "%s", *curl_err ? curl_err : curl_easy_strerror(c));
                free(b.data);
                return -EIO;
        }
        *ret = b.data ? b.data : strdup("");
        return *ret ? 0 : -ENOMEM;
}

static void metrics_done(metrics_t *m) {
        for (size_t i = 0; i < m->n; i++) {
                free(m->s[i].name);
                free(m->s[i].labels);
        }
        free(m->s);
}

/* The samples of the text format: NAME[{LABELS}] VALUE lines; comments and others are skipped. */
static int parse(char *text, metrics_t *m) {
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (line[0] == '#' || !line[0])
                        continue;
                size_t nl = strcspn(line, "{ ");
                char *labels = "", *rest = line + nl;
                if (*rest == '{') {
                        char *close = strstr(rest, "} ");
                        if (!close)
                                continue;
                        *close = '\0';
                        labels = rest + 1;
                        rest = close + 1;
                } else if (*rest)
                        *rest++ = '\0';
                line[nl] = '\0';
                char *end = NULL;
                double v = strtod(rest, &end);
                if (end == rest)
                        continue;
                sample_t *s = realloc(m->s, (m->n + 1) * sizeof(*s));
                if (!s)
                        return -ENOMEM;
                m->s = s;
                s[m->n] = (sample_t) { strdup(line), strdup(labels), v };
                if (!s[m->n].name || !s[m->n].labels)
                        return -ENOMEM;
                m->n++;
        }
        return 0;
}

/* The value of name{labels}, or NAN. */
static double get(const metrics_t *m, const char *name, const char *labels) {
        for (size_t i = 0; i < m->n; i++)
                if (streq(m->s[i].name, name) && streq(m->s[i].labels, labels ?: ""))
                        return m->s[i].value;
        return NAN;
}

/* The label's value in a labels string (malloc'd), or NULL. */
static char *label(const char *labels, const char *key) {
        char want[64];
        snprintf(want, sizeof(want), "%s=\"", key);
        const char *p = strstr(labels, want);
        if (!p || (p != labels && p[-1] != ','))
                return NULL;
        p += strlen(want);
        const char *q = p;
        while (*q && *q != '"')
                q += q[0] == '\\' && q[1] ? 2 : 1;
        return strndup(p, (size_t) (q - p));
}

/* The bound ("le" label, malloc'd) of sample i when it is a bucket of histogram `bucket` (NAME_bucket)
 * for stage (NULL: no stage label); NULL when it is not one. */
static char *bucket_bound(const metrics_t *m, size_t i, const char *bucket, const char *stage) {
        if (!streq(m->s[i].name, bucket))
                return NULL;
        _cleanup_free_ char *st = stage ? label(m->s[i].labels, "stage") : NULL;
        if (stage && (!st || !streq(st, stage)))
                return NULL;
        return label(m->s[i].labels, "le");
}

/* The q-quantile of histogram `name` for stage (NULL: no stage label), interpolating linearly in
 * the bucket that holds it; NAN when empty. */
static double quantile(const metrics_t *m, const char *name, const char *stage, double q) {
        char bucket[96];
        snprintf(bucket, sizeof(bucket), "%s_bucket", name);
        double total = NAN, prev_bound = 0, prev_count = 0;
        for (size_t i = 0; i < m->n; i++) {
                _cleanup_free_ char *le = bucket_bound(m, i, bucket, stage);
                if (le && streq(le, "+Inf"))
                        total = m->s[i].value;
        }
        if (isnan(total) || total <= 0)
                return NAN;
        double rank = q * total;
        for (size_t i = 0; i < m->n; i++) {
                _cleanup_free_ char *le = bucket_bound(m, i, bucket, stage);
                if (!le)
                        continue;
                if (streq(le, "+Inf"))
                        return prev_bound; /* beyond the last bound: the last bound, as Prometheus does */
                double bound = strtod(le, NULL), count = m->s[i].value;
                if (count >= rank) {
                        if (count == prev_count)
                                return bound;
                        return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count);
                }
                prev_bound = bound;
                prev_count = count;
        }
        return NAN;
}

static void print_human(const char *url, const metrics_t *m) {
        for (size_t i = 0; i < m->n; i++)
                if (streq(m->s[i].name, "emotiond_info")) {
                        _cleanup_free_ char *version = label(m->s[i].labels, "version"),
                                            *model = label(m->s[i].labels, "model"),
                                            *detector = label(m->s[i].labels, "detector"),
                                            *device = label(m->s[i].labels, "device");
                        printf("daemon:      emotiond %s, model %s, %s detector, device %s, up %.0f s (%s)\n",
                               version ?: "?", model ?: "?", detector ?: "?", device ?: "?",
                               get(m, "emotiond_uptime_seconds", NULL), url);
                }
        printf("replies:    ");
        bool any = false;
        for (size_t i = 0; i < m->n; i++) {
                if (!streq(m->s[i].name, "emotiond_replies_total"))
                        continue;
                _cleanup_free_ char *status = label(m->s[i].labels, "status");
                if (m->s[i].value > 0 || (status && streq(status, "ok"))) {
                        printf("%s %s %.0f", any ? "," : "", status ?: "?", m->s[i].value);
                        any = true;
                }
        }
        printf("\n%-12s %8s %10s %10s %10s\n", "stage", "count", "mean ms", "p50 ms", "p95 ms");
        for (size_t i = 0; i < ELEMENTSOF(stages); i++) {
                char labels[32];
                snprintf(labels, sizeof(labels), "stage=\"%s\"", stages[i]);
                double count = get(m, "emotiond_stage_seconds_count", labels),
                       sum = get(m, "emotiond_stage_seconds_sum", labels);
                printf("%-12s %8.0f %10.1f %10.1f %10.1f\n", stages[i], count, count > 0 ? 1000 * sum / count : NAN,
                       1000 * quantile(m, "emotiond_stage_seconds", stages[i], 0.5),
                       1000 * quantile(m, "emotiond_stage_seconds", stages[i], 0.95));
        }
        double images = get(m, "emotiond_faces_per_image_count", NULL), faces = get(m, "emotiond_faces_per_image_sum", NULL);
        printf("faces:       %.0f in %.0f images (%.2f per image)\n", faces, images, images > 0 ? faces / images : 0);
        printf("queue:       %.0f/%.0f, workers %.0f/%.0f busy, connections %.0f (refused %.0f, shed %.0f), smoothed "
               "streams %.0f\n",
               get(m, "emotiond_queue_depth", NULL), get(m, "emotiond_queue_capacity", NULL),
               get(m, "emotiond_workers_busy", NULL), get(m, "emotiond_workers", NULL),
               get(m, "emotiond_connections", NULL), get(m, "emotiond_connections_refused_total", NULL),
               get(m, "emotiond_connections_shed_total", NULL), get(m, "emotiond_smoothed_streams", NULL));
}

static json_object *json_stats(const char *url, const metrics_t *m) {
        json_object *o = json_object_new_object(), *replies = json_object_new_object(),
                    *st = json_object_new_object();
        if (!o || !replies || !st) {
                json_object_put(o);
                json_object_put(replies);
                json_object_put(st);
                return NULL;
        }
        cli_json_add_string(o, "metrics", url);
        for (size_t i = 0; i < m->n; i++) {
                if (streq(m->s[i].name, "emotiond_info")) {
                        const char *keys[] = { "version", "model", "model_sha256", "detector", "device" };
                        for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                                _cleanup_free_ char *v = label(m->s[i].labels, keys[k]);
                                if (v)
                                        cli_json_add_string(o, keys[k], v);
                        }
                }
                if (streq(m->s[i].name, "emotiond_replies_total")) {
                        _cleanup_free_ char *status = label(m->s[i].labels, "status");
                        if (status)
                                json_object_object_add(replies, status, json_object_new_int64((int64_t) m->s[i].value));
                }
        }
        json_object_object_add(o, "replies", replies);
        for (size_t i = 0; i < ELEMENTSOF(stages); i++) {
                char labels[32];
                snprintf(labels, sizeof(labels), "stage=\"%s\"", stages[i]);
                double count = get(m, "emotiond_stage_seconds_count", labels),
                       sum = get(m, "emotiond_stage_seconds_sum", labels);
                json_object *s = json_object_new_object();
                if (!s)
                        continue;
                cli_json_add_uint(s, "count", isnan(count) ? 0 : (uint64_t) count);
                double stats[] = { count > 0 ? 1000 * sum / count : NAN,
                                   1000 * quantile(m, "emotiond_stage_seconds", stages[i], 0.5),
                                   1000 * quantile(m, "emotiond_stage_seconds", stages[i], 0.95) };
                const char *names[] = { "mean_ms", "p50_ms", "p95_ms" };
                for (size_t k = 0; k < ELEMENTSOF(names); k++)
                        json_object_object_add(s, names[k], isnan(stats[k]) ? NULL : cli_json_new_number(stats[k]));
                json_object_object_add(st, stages[i], s);
        }
        json_object_object_add(o, "stages", st);
        const struct {
                const char *key, *metric;
        } gauges[] = {
                { "images", "emotiond_faces_per_image_count" }, { "faces", "emotiond_faces_per_image_sum" },
                { "queue_depth", "emotiond_queue_depth" },       { "queue_capacity", "emotiond_queue_capacity" },
                { "workers", "emotiond_workers" },               { "workers_busy", "emotiond_workers_busy" },
                { "connections", "emotiond_connections" },       { "connections_refused", "emotiond_connections_refused_total" },
                { "connections_shed", "emotiond_connections_shed_total" },
                { "smoothed_streams", "emotiond_smoothed_streams" }, { "uptime_s", "emotiond_uptime_seconds" },
        };
        for (size_t i = 0; i < ELEMENTSOF(gauges); i++) {
                double v = get(m, gauges[i].metric, NULL);
                if (!isnan(v))
                        cli_json_add_uint(o, gauges[i].key, (uint64_t) v);
        }
        return o;
}

enum { OPT_METRICS = CLI_ARG_FIRST };

static int option(void *userdata, int c, const char *arg) {
        if (c != OPT_METRICS)
                return cli_usage_hint("stats");
        *(const char **) userdata = arg;
        return CLI_EXIT_OK;
}

int cli_stats_main(const cli_options_t *defaults, int argc, char **argv) {
        static const struct option options[] = {
                { "metrics", required_argument, NULL, OPT_METRICS },
                {},
        };
        cli_options_t o = *defaults;
        const char *url = getenv("EMOTIOND_METRICS_URL");
        if (!url || !*url)
                url = STATS_DEFAULT_URL;
        const cli_command_t cmd = {
                .name = "stats",
                .help = help,
                .takes = CLI_TAKES_CONNECTION,
                .options = options,
                .option = option,
                .userdata = &url,
        };
        int ret;
        if (!cli_parse_command(&cmd, &o, argc, argv, &ret))
                return ret;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
                cli_error("Failed to set up libcurl");
                return CLI_EXIT_FAILED;
        }
        char err[CURL_ERROR_SIZE + 64];
        _cleanup_free_ char *text = NULL;
        int r = fetch(url, o.timeout_ms, &text, err, sizeof(err));
        curl_global_cleanup();
        if (r < 0) {
                cli_error("Failed to read the metrics at %s: %s. The daemon serves them when metrics_listen is set "
                          "(emotiond.conf, or emotiond --set metrics_listen=127.0.0.1:9464); choose the address with "
                          "--metrics or $EMOTIOND_METRICS_URL.",
                          url, r == -EIO ? err : strerror(-r));
                return CLI_EXIT_UNREACHABLE;
        }
        metrics_t m = { 0 };
        r = parse(text, &m);
        if (r >= 0 && isnan(get(&m, "emotiond_uptime_seconds", NULL))) {
                cli_error("%s does not serve emotiond's metrics", url);
                metrics_done(&m);
                return CLI_EXIT_FAILED;
        }
        if (r < 0) {
                cli_error("Out of memory");
                metrics_done(&m);
                return CLI_EXIT_FAILED;
        }
        if (o.json) {
                json_object *j = json_stats(url, &m);
                if (j)
                        cli_json_print_line(j);
                json_object_put(j);
        } else
                print_human(url, &m);
        metrics_done(&m);
        return CLI_EXIT_OK;
}
