/* The Prometheus endpoint (metrics_listen), scraped with curl from the real daemon and parsed: each
 * line well formed, histograms cumulative, and the numbers moving as requests are answered. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/client.h"
#include "emo/util.h"

TestSuite(metrics, .timeout = 120);

/* GET url with curl; the body (caller frees), asserting HTTP 200 unless want_fail. */
static char *scrape(const char *url) {
        const char *argv[] = { EMO_TEST_CURL, "-sS", "--fail", "--max-time", "10", url, NULL };
        emo_test_run_t r;
        emo_test_run(argv, NULL, 20000, &r);
        cr_assert_eq(r.status, 0, "curl %s exited %d: %s", url, r.status, r.err);
        char *body = TAKE_PTR(r.out);
        emo_test_run_done(&r);
        return body;
}

/* The value of the sample whose name and labels are exactly `series`; asserts it is there once. */
static double sample(const char *text, const char *series) {
        size_t n = strlen(series);
        const char *found = NULL;
        for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                if (strncmp(line, series, n) == 0 && line[n] == ' ') {
                        cr_assert_null(found, "%s appears twice", series);
                        found = line + n + 1;
                }
        cr_assert_not_null(found, "no sample %s in:\n%s", series, text);
        return strtod(found, NULL);
}

/* Every line a comment (# HELP/# TYPE) or NAME[{LABELS}] VALUE, per the text format 0.0.4. */
static void assert_well_formed(const char *text) {
        char *copy = strdup(text), *save = NULL;
        size_t samples = 0;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (line[0] == '#') {
                        cr_assert(strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0, "bad comment: %s",
                                  line);
                        continue;
                }
                size_t name = strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
                cr_assert_gt(name, 0, "no metric name: %s", line);
                char *rest = line + name;
                if (*rest == '{') {
                        char *close = strstr(rest, "} ");
                        cr_assert_not_null(close, "labels not closed: %s", line);
                        rest = close + 1;
                }
                cr_assert_eq(*rest, ' ', "no value: %s", line);
                char *end = NULL;
                strtod(rest + 1, &end);
                cr_assert(end != rest + 1 && *end == '\0', "value is not a number: %s", line);
                samples++;
        }
        free(copy);
        cr_assert_gt(samples, 50, "only %zu samples", samples);
}

/* Start d with its metrics on a free loopback port; the port. */
static unsigned start_with_metrics(emo_test_daemon_t *d) {
        unsigned port = emo_test_free_port();
        char set[64];
        snprintf(set, sizeof(set), "metrics_listen=127.0.0.1:%u", port);
        emo_test_daemon_start(d, (const char *const[]) { "--set", set, NULL });
        return port;
}

Test(metrics, scraped_and_parsed) {
        emo_test_daemon_t d;
        unsigned port = start_with_metrics(&d);
        char url[64], bad_url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", port);
        snprintf(bad_url, sizeof(bad_url), "http://127.0.0.1:%u/", port);

        _cleanup_free_ char *before = scrape(url);
        assert_well_formed(before);
        char info[512];
        snprintf(info, sizeof(info),
                 "emotiond_info{version=\"%s\",model=\"%s\",model_sha256=\"%s\",detector=\"yunet\",device=\"cpu\"}",
                 PROJECT_VERSION_STRING, emo_test_model_name(), emo_test_model_sha256());
        cr_assert_eq(sample(before, info), 1);
        cr_assert_eq(sample(before, "emotiond_workers"), 2);
        cr_assert_eq(sample(before, "emotiond_queue_capacity"), 64);

        /* One face analysed, one malformed request. */
        size_t len;
        _cleanup_free_ void *jpeg = emo_test_read_fixture("one_face.jpg", &len);
        emo_test_req_t t;
        emo_test_req_encoded(&t, jpeg, len);
        emo_reply_t *r = emo_test_call(d.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK);
        cr_assert_eq(r->analyze->n_faces, 1);
        emo_reply_free(r);
        static const char junk[] = "not protobuf";
        size_t junk_len = sizeof(junk) - 1;
        r = emo_test_raw(d.endpoint, (const void *[]) { junk }, &junk_len, 1, 10000, NULL);
        cr_assert_eq(r->status, EMO_STATUS_INVALID_REQUEST);
        emo_reply_free(r);

        _cleanup_free_ char *after = scrape(url);
        assert_well_formed(after);
        const char *moved[][2] = {
                { "emotiond_replies_total{status=\"ok\"}", "1" },
                { "emotiond_replies_total{status=\"invalid_request\"}", "1" },
                { "emotiond_replies_total{status=\"overloaded\"}", "0" },
                { "emotiond_stage_seconds_count{stage=\"total\"}", "1" },
                { "emotiond_stage_seconds_count{stage=\"detect\"}", "1" },
                { "emotiond_faces_per_image_bucket{le=\"0\"}", "0" },
                { "emotiond_faces_per_image_bucket{le=\"1\"}", "1" },
                { "emotiond_faces_per_image_count", "1" },
        };
        for (size_t i = 0; i < ELEMENTSOF(moved); i++)
                cr_assert_eq(sample(after, moved[i][0]) - sample(before, moved[i][0]), atof(moved[i][1]),
                             "%s went from %g to %g, expected +%s", moved[i][0], sample(before, moved[i][0]),
                             sample(after, moved[i][0]), moved[i][1]);
        /* The histogram is cumulative and its +Inf bucket is its count; the stages add up. */
        const char *bounds[] = { "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
                                 "5", "10", "+Inf" };
        double last = 0;
        for (size_t i = 0; i < ELEMENTSOF(bounds); i++) {
                char series[96];
                snprintf(series, sizeof(series), "emotiond_stage_seconds_bucket{stage=\"total\",le=\"%s\"}", bounds[i]);
                double v = sample(after, series);
                cr_assert_geq(v, last, "%s = %g after %g", series, v, last);
                last = v;
        }
        cr_assert_eq(last, sample(after, "emotiond_stage_seconds_count{stage=\"total\"}"));
        double total = sample(after, "emotiond_stage_seconds_sum{stage=\"total\"}");
        double parts = sample(after, "emotiond_stage_seconds_sum{stage=\"decode\"}") +
                       sample(after, "emotiond_stage_seconds_sum{stage=\"detect\"}") +
                       sample(after, "emotiond_stage_seconds_sum{stage=\"classify\"}");
        cr_assert(total > 0 && parts > 0 && parts <= total + 1e-3, "stages sum to %g s, total %g s", parts, total);

        /* Anything but /metrics is a 404. */
        const char *argv[] = { EMO_TEST_CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", bad_url, NULL };
        emo_test_run_t c;
        emo_test_run(argv, NULL, 20000, &c);
        cr_assert_str_eq(c.out, "404");
        emo_test_run_done(&c);
        emo_test_daemon_stop(&d);
}

Test(metrics, port_in_use_fails_the_start) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        cr_assert(bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 && listen(fd, 1) == 0 &&
                  getsockname(fd, (struct sockaddr *) &sa, &len) == 0);
        char dir[] = "/tmp/emotiond-metrics.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char ep[96], set[64], want[128];
        snprintf(ep, sizeof(ep), "ipc://%s/emotiond.sock", dir);
        snprintf(set, sizeof(set), "metrics_listen=127.0.0.1:%u", ntohs(sa.sin_port));
        snprintf(want, sizeof(want), "Failed to serve metrics on 127.0.0.1:%u: Address already in use", ntohs(sa.sin_port));
        _cleanup_free_ char *dialogue = emo_test_join(emo_test_source_dir(), "deploy/dialogue");
        const char *argv[] = { emo_test_emotiond(), "--endpoint", ep, "--model", emo_test_model(), "--yunet-model",
                               emo_test_yunet(), "--dialogue-dir", dialogue, "-w", "1", "--set", set, NULL };
        emo_test_run_t r;
        emo_test_run(argv, NULL, 30000, &r);
        /* --check says the same, before any start. */
        const char *check[ELEMENTSOF(argv) + 1];
        memcpy(check, argv, sizeof(argv));
        check[ELEMENTSOF(argv) - 1] = "--check";
        check[ELEMENTSOF(argv)] = NULL;
        emo_test_run_t c;
        emo_test_run(check, NULL, 30000, &c);
        close(fd);
        cr_assert(c.status > 0 && c.status < 128 && strstr(c.err, want), "--check exited %d:\n%s", c.status, c.err);
        emo_test_run_done(&c);
        char sock[128];
        snprintf(sock, sizeof(sock), "%s/emotiond.sock", dir);
        unlink(sock);
        rmdir(dir);
        cr_assert(r.status > 0 && r.status < 128, "emotiond exited %d:\n%s", r.status, r.err);
        cr_assert(strstr(r.err, want), "stderr should say '%s':\n%s", want, r.err);
        emo_test_run_done(&r);
}

/* GET /health, what HAProxy's `option httpchk` asks (deploy/haproxy/emotiond.cfg): 200 and
 * "serving" from a daemon that answers, HEAD too; any other method is refused. */
Test(metrics, health) {
        emo_test_daemon_t d;
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/health", start_with_metrics(&d));
        emo_reply_free(emo_test_health(d.endpoint));

        _cleanup_free_ char *body = scrape(url);
        cr_assert(strncmp(body, "serving: 0/2 workers busy, queue 0/64", 37) == 0, "GET /health said: %s", body);
        const char *head[] = { EMO_TEST_CURL, "-s", "-I", "-o", "/dev/null", "-w", "%{http_code}", url, NULL };
        emo_test_run_t c;
        emo_test_run(head, NULL, 20000, &c);
        cr_assert_str_eq(c.out, "200", "HEAD /health: %s", c.out);
        emo_test_run_done(&c);
        const char *post[] = { EMO_TEST_CURL, "-s", "-X", "POST", "-o", "/dev/null", "-w", "%{http_code}", url, NULL };
        emo_test_run(post, NULL, 20000, &c);
        cr_assert_str_eq(c.out, "405", "POST /health: %s", c.out);
        emo_test_run_done(&c);
        emo_test_daemon_stop(&d);
}

/* A daemon draining after SIGTERM refuses new requests: /health says so with 503, so that a load
 * balancer sends new connections elsewhere at once. A client keeps the drain going (each request
 * it sends restarts the daemon's quiet period, up to the drain's 2 s) while /health is asked,
 * until both are seen: a request sent just after the signal may still be served if the daemon has
 * not yet read it, and the drain can begin between that request and the next /health. */
Test(metrics, health_says_stopping_while_draining) {
        emo_test_daemon_t d;
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/health", start_with_metrics(&d));
        emo_reply_free(emo_test_health(d.endpoint));
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(d.endpoint, &c), 0);
        emo_test_daemon_signal(&d, SIGTERM);

        const char *curl[] = { EMO_TEST_CURL, "-s", "--max-time", "5", "-w", "\n%{http_code}", url, NULL };
        bool stopping = false, refused = false;
        for (int i = 0; i < 40 && !(stopping && refused); i++) {
                emo_health_request_t h = EMOTION__V1__HEALTH_REQUEST__INIT;
                emo_request_t req = EMOTION__V1__REQUEST__INIT;
                req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
                req.health = &h;
                emo_reply_t *r = NULL;
                if (emo_client_call(c, &req, 1000, 1, &r) == 0) {
                        refused |= r->status == EMO_STATUS_SHUTTING_DOWN;
                        emo_reply_free(r);
                }
                emo_test_run_t run;
                emo_test_run(curl, NULL, 10000, &run);
                const char *code = run.out ? strrchr(run.out, '\n') : NULL;
                if (code && strcmp(code + 1, "503") == 0) {
                        cr_assert(strncmp(run.out, "not serving: stopping", 21) == 0, "GET /health said: %s", run.out);
                        stopping = true;
                } else
                        cr_assert(code && strcmp(code + 1, "200") == 0, "GET /health while stopping: %s",
                                  run.out ? run.out : "(nothing)");
                emo_test_run_done(&run);
        }
        cr_expect(refused, "the draining daemon refused no request with SHUTTING_DOWN");
        cr_expect(stopping, "GET /health never said 503 while the daemon drained");
        emo_client_free(c);
        cr_expect_eq(emo_test_daemon_wait(&d, 30000), 0);
        emo_test_daemon_cleanup(&d);
}
