/* Stopping and starting: SIGTERM drains (every request still gets exactly one reply, then exit 0),
 * and a daemon that cannot start says why on stderr and exits non-zero. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/util.h"

TestSuite(shutdown, .timeout = 120);
TestSuite(startup, .timeout = 60);

enum { BATCH = 20 };

/* Send BATCH photos on c; ids into ids. */
static void send_batch(emo_client_t *c, uint64_t *ids) {
        size_t len;
        _cleanup_free_ void *data = emo_test_read_fixture("four_faces.jpg", &len);
        for (int i = 0; i < BATCH; i++) {
                emo_test_req_t t;
                emo_test_req_encoded(&t, data, len);
                cr_assert_eq(emo_client_send(c, &t.req, 5000, &ids[i]), 0);
        }
}

/* Replies to one batch: how often each request was answered, and with what. */
typedef struct tally {
        int counts[BATCH];
        int ok, refused, got;
} tally_t;

static void tally_add(tally_t *t, const uint64_t *ids, emo_reply_t *r) {
        int i = 0;
        while (i < BATCH && ids[i] != r->request_id)
                i++;
        cr_assert(i < BATCH, "reply to an unknown request id %llu", (unsigned long long) r->request_id);
        t->counts[i]++;
        t->got++;
        if (r->status == EMO_STATUS_OK)
                t->ok++;
        else if (r->status == EMO_STATUS_SHUTTING_DOWN)
                t->refused++;
        else
                cr_expect_fail("request %d got %s: %s", i, emo_status_name(r->status), r->message);
        emo_reply_free(r);
}

/* Receive until every request of the batch was answered (30 s without a reply: give up), then
 * 300 ms more for duplicates; each request must have been answered exactly once. */
static void tally_rest(tally_t *t, emo_client_t *c, const uint64_t *ids) {
        for (;;) {
                emo_reply_t *r = NULL;
                int e = emo_client_recv(c, t->got < BATCH ? 30000 : 300, &r);
                if (e == -ETIMEDOUT)
                        break;
                cr_assert_eq(e, 0, "recv: %s", strerror(-e));
                tally_add(t, ids, r);
        }
        int missing = 0, twice = 0;
        for (int i = 0; i < BATCH; i++) {
                missing += t->counts[i] == 0;
                twice += t->counts[i] > 1;
        }
        cr_expect(missing == 0 && twice == 0, "of %d requests, %d got no reply and %d more than one (%d OK, %d "
                  "SHUTTING_DOWN)", BATCH, missing, twice, t->ok, t->refused);
}

/* The id of a thread of process pid other than its main thread that has SIGTERM unblocked, or 0. */
static pid_t thread_taking_sigterm(pid_t pid) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
        DIR *dir = opendir(path);
        cr_assert(dir, "%s: %s", path, strerror(errno));
        pid_t found = 0;
        struct dirent *e;
        while (!found && (e = readdir(dir))) {
                pid_t tid = (pid_t) atoi(e->d_name);
                if (tid <= 0 || tid == pid)
                        continue;
                char status[96], line[256];
                snprintf(status, sizeof(status), "/proc/%d/task/%d/status", (int) pid, (int) tid);
                FILE *f = fopen(status, "r");
                if (!f)
                        continue;
                unsigned long long blocked;
                while (fgets(line, sizeof(line), f))
                        if (sscanf(line, "SigBlk: %llx", &blocked) == 1 && !(blocked & (1ULL << (SIGTERM - 1))))
                                found = tid;
                fclose(f);
        }
        closedir(dir);
        return found;
}

/* How drain_under_load sends SIGTERM. */
typedef enum { TO_PROCESS, TO_UNBLOCKED_THREAD } sigterm_target_t;

/* Start a daemon (with `preload` in LD_PRELOAD unless NULL), have it read a batch of photos (a
 * health request sent after them has been answered, and the daemon reads in order), then SIGTERM:
 * the photos in the workers finish OK, the queued ones are refused with SHUTTING_DOWN, every
 * request is answered once, and the daemon exits 0. */
static void drain_under_load(const char *preload, sigterm_target_t target) {
        emo_test_daemon_t d;
        if (preload) {
                setenv("LD_PRELOAD", preload, 1);
                setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1); /* a sanitizer build wants to be first */
        }
        emo_test_daemon_start(&d, NULL);
        unsetenv("LD_PRELOAD");
        pid_t taker = thread_taking_sigterm(d.pid);
        if (preload)
                cr_assert(taker > 0, "no thread of emotiond with %s preloaded has SIGTERM unblocked", preload);
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(d.endpoint, &c), 0);
        uint64_t ids[BATCH];
        send_batch(c, ids);
        emo_health_request_t h = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &h;
        uint64_t health_id;
        cr_assert_eq(emo_client_send(c, &req, 5000, &health_id), 0);
        tally_t t = { 0 };
        for (;;) {
                emo_reply_t *r = NULL;
                cr_assert_eq(emo_client_recv(c, 30000, &r), 0, "no health reply");
                if (r->request_id == health_id) {
                        emo_reply_free(r);
                        break;
                }
                tally_add(&t, ids, r); /* photos answered before the health request */
        }
        int before = t.got;
        if (target == TO_UNBLOCKED_THREAD)
                cr_assert_eq(syscall(SYS_tgkill, d.pid, taker, SIGTERM), 0, "tgkill: %s", strerror(errno));
        else
                emo_test_daemon_signal(&d, SIGTERM);
        tally_rest(&t, c, ids);
        cr_expect_geq(t.refused, 1, "SIGTERM with %d photos queued refused none", BATCH - before - 2);
        int status = emo_test_daemon_wait(&d, 30000);
        _cleanup_free_ char *log = emo_test_daemon_log(&d);
        cr_expect_eq(status, 0, "emotiond exited with %d after SIGTERM; stderr:\n%s", status, log);
        cr_expect(strstr(log, "Received Terminated"), "the daemon did not log the SIGTERM; stderr:\n%s", log);
        cr_log_info("drain: %d answered before SIGTERM, %d OK and %d SHUTTING_DOWN in all", before, t.ok, t.refused);
        emo_client_free(c);
        emo_test_daemon_cleanup(&d);
}

Test(shutdown, sigterm_drains_the_queue) {
        drain_under_load(NULL, TO_PROCESS);
}

/* A library thread started before main() with SIGTERM unblocked (tests/common/unblocked_thread.c)
 * receives the SIGTERM itself: the daemon still drains and exits 0, it is not killed there. */
Test(shutdown, sigterm_to_a_library_thread_drains) {
        drain_under_load(EMO_TEST_UNBLOCKED_THREAD, TO_UNBLOCKED_THREAD);
}

/* The case found on a fresh Debian 12: OpenBLAS (pthread build) as the BLAS that OpenCV loads
 * starts its pool before main(). systemd's SIGTERM to the process drains as usual. */
Test(shutdown, sigterm_with_openblas_threads_drains) {
        static const char *const candidates[] = {
                "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
                "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
        };
        const char *lib = NULL;
        for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]) && !lib; i++)
                if (access(candidates[i], R_OK) == 0)
                        lib = candidates[i];
        if (!lib)
                cr_skip_test("OpenBLAS (libopenblas0-pthread) is not installed; scripts/setup.sh --tests installs it");
        drain_under_load(lib, TO_PROCESS);
}

/* SIGTERM right after sending, without waiting for the daemon to read the batch: every request
 * is answered exactly once (OK or SHUTTING_DOWN) and the daemon exits 0. The client's connection
 * is made first (a health call), so the requests are on their way when the signal comes: a
 * request that never reached the daemon cannot be answered by it. */
Test(shutdown, sigterm_right_after_sending) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(d.endpoint, &c), 0);
        emo_health_request_t h = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &h;
        emo_reply_t *hr = NULL;
        cr_assert_eq(emo_client_call(c, &req, 10000, 1, &hr), 0);
        emo_reply_free(hr);
        uint64_t ids[BATCH];
        send_batch(c, ids);
        emo_test_daemon_signal(&d, SIGTERM);
        tally_t t = { 0 };
        tally_rest(&t, c, ids);
        int status = emo_test_daemon_wait(&d, 30000);
        _cleanup_free_ char *log = emo_test_daemon_log(&d);
        cr_expect_eq(status, 0, "emotiond exited with %d after SIGTERM; stderr:\n%s", status, log);
        cr_log_info("immediate SIGTERM: %d OK, %d SHUTTING_DOWN", t.ok, t.refused);
        emo_client_free(c);
        emo_test_daemon_cleanup(&d);
}

/* A client that keeps sending, like a camera: every 10 ms a health request, replies counted. */
typedef struct steady_sender {
        const char *endpoint;
        volatile bool stop;
        int ok, refused, other;
} steady_sender_t;

static void *steady_send(void *arg) {
        steady_sender_t *s = arg;
        emo_client_t *c = NULL;
        if (emo_client_new(s->endpoint, &c) < 0)
                return NULL;
        emo_health_request_t h = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &h;
        while (!s->stop) {
                uint64_t id;
                if (emo_client_send(c, &req, 100, &id) < 0)
                        continue;
                emo_reply_t *r = NULL;
                while (emo_client_recv(c, 10, &r) == 0) {
                        if (r->status == EMO_STATUS_OK)
                                s->ok++;
                        else if (r->status == EMO_STATUS_SHUTTING_DOWN)
                                s->refused++;
                        else
                                s->other++;
                        emo_reply_free(r);
                }
        }
        emo_client_free(c);
        return NULL;
}

/* A client that never stops sending does not hold the stop: after SIGTERM the daemon answers it
 * SHUTTING_DOWN (health requests too: a load balancer must see that the daemon is going) and
 * exits 0 within its 2 s drain limit, not at systemd's stop timeout. */
Test(shutdown, steady_sender_does_not_hold_the_stop) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        steady_sender_t s = { .endpoint = d.endpoint };
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, steady_send, &s), 0);
        usleep(300 * 1000);
        int ok_before = s.ok;
        int64_t t0 = emo_now_us();
        emo_test_daemon_signal(&d, SIGTERM);
        int status = emo_test_daemon_wait(&d, 20000);
        double seconds = (double) (emo_now_us() - t0) / 1e6;
        s.stop = true;
        pthread_join(th, NULL);
        _cleanup_free_ char *log = emo_test_daemon_log(&d);
        cr_expect_eq(status, 0, "emotiond exited with %d after SIGTERM; stderr:\n%s", status, log);
        cr_expect_gt(ok_before, 0, "the sender got no OK health reply before SIGTERM");
        cr_expect_gt(s.refused, 0, "no request got SHUTTING_DOWN while the daemon was stopping");
        cr_expect_eq(s.other, 0, "%d replies were neither OK nor SHUTTING_DOWN", s.other);
        cr_expect_lt(seconds, 5.0, "the daemon took %.1f s to stop under a steady sender", seconds);
        cr_log_info("steady sender: stopped %.2f s after SIGTERM; %d OK, %d SHUTTING_DOWN", seconds, s.ok, s.refused);
        emo_test_daemon_cleanup(&d);
}

/* An idle daemon stops at once on SIGTERM and on SIGINT (Ctrl-C in a terminal). */
Test(shutdown, idle_daemon_exits_zero) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        emo_test_daemon_stop(&d);
        emo_test_daemon_start(&d, NULL);
        emo_test_daemon_signal(&d, SIGINT);
        int status = emo_test_daemon_wait(&d, 10000);
        cr_expect_eq(status, 0, "exit status %d after SIGINT", status);
        emo_test_daemon_cleanup(&d);
}

/* SIGHUP is logged and ignored: the daemon keeps serving. */
Test(shutdown, sighup_is_ignored) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        emo_test_daemon_signal(&d, SIGHUP);
        usleep(200000);
        emo_reply_free(emo_test_health(d.endpoint));
        emo_test_daemon_stop(&d);
}

/* ---- startup errors ------------------------------------------------------------------------------ */

/* Run emotiond with the usual test arguments, `extra` appended, on a private endpoint; expect it
 * to exit non-zero within 15 s (it starts in about one) with `message` on stderr. */
static void expect_startup_failure(const char *const *extra, const char *message) {
        char dir[] = "/tmp/emotiond-start.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char endpoint[96];
        snprintf(endpoint, sizeof(endpoint), "ipc://%s/emotiond.sock", dir);
        _cleanup_free_ char *dialogue = emo_test_join(emo_test_source_dir(), "deploy/dialogue");
        const char *argv[32] = { emo_test_emotiond(), "--endpoint", endpoint, "--model", emo_test_model(),
                                 "--yunet-model", emo_test_yunet(), "--dialogue-dir", dialogue, "-w", "1" };
        size_t n = 11;
        for (const char *const *a = extra; *a; a++)
                argv[n++] = *a;
        argv[n] = NULL;
        emo_test_run_t r;
        emo_test_run(argv, NULL, 15000, &r);
        char sock[128];
        snprintf(sock, sizeof(sock), "%s/emotiond.sock", dir);
        unlink(sock);
        rmdir(dir);
        cr_assert_neq(r.status, -1, "emotiond did not exit within 15 s (expected: %s)", message);
        cr_assert_neq(r.status, 0, "emotiond started although it should fail with '%s'", message);
        cr_assert_lt(r.status, 128, "emotiond died of signal %d instead of failing cleanly", r.status - 128);
        cr_assert_not_null(strstr(r.err, message), "stderr should contain '%s'; it was:\n%s", message, r.err);
        /* Not under journald (no $JOURNAL_STREAM for this stderr): plain lines, no "<3>" prefix
         * (tests/daemon/test_lifecycle.c checks the journal's case). */
        cr_assert_null(strstr(r.err, SD_ERR), "a line carries a journal priority prefix outside journald:\n%s", r.err);
        emo_test_run_done(&r);
}

Test(startup, missing_model_file) {
        static const char *const extra[] = { "--model", "/nonexistent/emonet.json", NULL };
        expect_startup_failure(extra, "/nonexistent/emonet.json");
        expect_startup_failure(extra, "Failed to load the model");
}

Test(startup, model_with_wrong_checksum) {
        /* A copy of the test model's metadata next to a different "ONNX" file. */
        char dir[] = "/tmp/emotiond-model.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        _cleanup_free_ char *meta = emo_test_read_file(emo_test_model(), NULL);
        _cleanup_free_ char *json = emo_test_join(dir, "m.json");
        json_object *root = json_tokener_parse(meta);
        cr_assert_not_null(root);
        json_object *onnx;
        cr_assert(json_object_object_get_ex(root, "onnx", &onnx));
        _cleanup_free_ char *onnx_path = emo_test_join(dir, json_object_get_string(onnx));
        FILE *f = fopen(onnx_path, "we");
        fputs("not the network", f);
        fclose(f);
        cr_assert_eq(json_object_to_file(json, root), 0);
        json_object_put(root);
        const char *extra[] = { "--model", json, NULL };
        expect_startup_failure(extra, "sha256");
        unlink(onnx_path);
        unlink(json);
        rmdir(dir);
}

Test(startup, unknown_config_key) {
        char path[] = "/tmp/emotiond-conf.XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        const char text[] = "[server]\nworkers = 1\nwrokers = 2\n";
        cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t) sizeof(text) - 1);
        close(fd);
        const char *extra[] = { "-c", path, NULL };
        char where[64];
        snprintf(where, sizeof(where), "%s:3:", path);
        expect_startup_failure(extra, where);
        expect_startup_failure(extra, "wrokers");
        unlink(path);
}

Test(startup, unknown_set_key_and_bad_value) {
        static const char *const key[] = { "--set", "max_facez=3", NULL };
        expect_startup_failure(key, "unknown setting 'max_facez'");
        static const char *const value[] = { "--set", "queue_capacity=0", NULL };
        expect_startup_failure(value, "out of range");
        static const char *const device[] = { "--device", "gpu", NULL };
        expect_startup_failure(device, "device");
}

/* This machine's OpenCV has no CUDA: an explicit --device cuda is refused, not silently CPU. */
Test(startup, device_cuda_unavailable) {
        static const char *const extra[] = { "--device", "cuda", NULL };
        expect_startup_failure(extra, "Failed to use device cuda");
        expect_startup_failure(extra, "CUDA is not available");
}

Test(startup, missing_detector_and_dialogue) {
        static const char *const yunet[] = { "--detector", "yunet", "--yunet-model", "/nonexistent/yunet.onnx", NULL };
        expect_startup_failure(yunet, "/nonexistent/yunet.onnx");
        static const char *const dialogue[] = { "--dialogue-dir", "/nonexistent/dialogue", NULL };
        expect_startup_failure(dialogue, "/nonexistent/dialogue");
        static const char *const lang[] = { "--language", "de", NULL };
        expect_startup_failure(lang, "'de'");
}

/* Start a second emotiond on `endpoint` (ipc:// relative to `cwd` when given) while d serves there;
 * *ret is its run, and the result whether d still answers on its own endpoint afterwards. */
static bool second_daemon(emo_test_daemon_t *d, const char *endpoint, const char *cwd, emo_test_run_t *ret) {
        _cleanup_free_ char *dialogue = emo_test_join(emo_test_source_dir(), "deploy/dialogue");
        const char *argv[] = { emo_test_emotiond(), "--endpoint", endpoint, "--model", emo_test_model(),
                               "--yunet-model", emo_test_yunet(), "--dialogue-dir", dialogue, "-w", "1", NULL };
        char here[4096];
        if (cwd) {
                cr_assert_not_null(getcwd(here, sizeof(here)));
                cr_assert_eq(chdir(cwd), 0, "chdir %s: %m", cwd);
        }
        emo_test_run(argv, NULL, 8000, ret);
        if (cwd)
                cr_assert_eq(chdir(here), 0);
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(d->endpoint, &c), 0);
        emo_health_request_t h = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &h;
        emo_reply_t *reply = NULL;
        bool answers = emo_client_call(c, &req, 3000, 1, &reply) == 0;
        emo_reply_free(reply);
        emo_client_free(c);
        return answers;
}

/* Another daemon already serves the endpoint: the second one says so and exits, and the first keeps
 * its socket (ZeroMQ's ipc:// bind replaces an existing socket file, so this needs a check). */
Test(startup, endpoint_in_use) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        emo_test_run_t r;
        bool first_answers = second_daemon(&d, d.endpoint, NULL, &r);
        cr_expect(r.status != -1, "a second emotiond on %s kept running (killed after 8 s)%s", d.endpoint,
                  first_answers ? "" : ", and the first one no longer answers there: the second took its socket");
        cr_expect(r.status > 0 && r.status < 128, "the second emotiond exited with %d", r.status);
        cr_expect_not_null(strstr(r.err, d.endpoint), "the second emotiond's stderr does not name the endpoint:\n%s",
                           r.err);
        cr_expect(first_answers, "the first emotiond no longer answers on %s after a second one started there",
                  d.endpoint);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&d);
}

/* The same with a relative ipc:// endpoint, which ZeroMQ resolves against the working folder:
 * started in the first daemon's folder, ipc://emotiond.sock is the first daemon's socket file. */
Test(startup, relative_endpoint_in_use) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        emo_test_run_t r;
        bool first_answers = second_daemon(&d, "ipc://emotiond.sock", d.dir, &r);
        cr_expect(r.status != -1, "a second emotiond on ipc://emotiond.sock in %s kept running (killed after 8 s)%s",
                  d.dir, first_answers ? "" : ", and the first one no longer answers: the second took its socket");
        cr_expect(r.status > 0 && r.status < 128, "the second emotiond exited with %d", r.status);
        cr_expect_not_null(strstr(r.err, "another emotiond is serving there"),
                           "the second emotiond's stderr does not say the endpoint is in use:\n%s", r.err);
        cr_expect(first_answers, "the first emotiond no longer answers on %s after a second one started on "
                  "ipc://emotiond.sock in its folder", d.endpoint);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&d);
}

Test(startup, check_mode) {
        _cleanup_free_ char *dialogue = emo_test_join(emo_test_source_dir(), "deploy/dialogue");
        /* --check binds the endpoint for a moment: a private abstract one, not the machine's default,
         * where a running service would (rightly) fail the check. */
        char endpoint[64];
        snprintf(endpoint, sizeof(endpoint), "ipc://@emotiond-check-%d", (int) getpid());
        const char *argv[] = { emo_test_emotiond(), "--model", emo_test_model(), "--detector", "yunet", "--yunet-model",
                               emo_test_yunet(), "--dialogue-dir", dialogue, "--endpoint", endpoint, "--check", NULL };
        emo_test_run_t r;
        emo_test_run(argv, NULL, 30000, &r);
        cr_assert_eq(r.status, 0, "emotiond --check failed (%d):\n%s", r.status, r.err);
        cr_assert_not_null(strstr(r.out, "configuration OK"), "stdout: %s", r.out);
        emo_test_run_done(&r);
}
