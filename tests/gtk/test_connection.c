/* The GTK client's connection in a GLib main loop against the real daemon (no display needed):
 * replies come through the socket's fd watch, none is lost when many arrive at once, a daemon
 * that is not there is told at once (no socket file, nobody listening) or, when something takes
 * the connection but never answers, becomes a timely -ETIMEDOUT, each with advice; and a cancelled
 * request stays silent. */
#include <criterion/criterion.h>
#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connection.h"
#include "daemon.h"
#include "restart.h"
#include "emo/util.h"
#include "results.h"

static emo_test_daemon_t daemon_;

static void start(void) {
        emo_test_daemon_start(&daemon_, NULL);
}

static void stop(void) {
        emo_test_daemon_cleanup(&daemon_);
}

TestSuite(connection, .init = start, .fini = stop, .timeout = 60);
TestSuite(connection_down, .timeout = 30);

typedef struct calls {
        int n;
        int errors[64];
        emo_reply_t *replies[64];
        int64_t at_us[64];
} calls_t;

static void on_reply(emo_reply_t *reply, int error, void *userdata) {
        calls_t *c = userdata;
        cr_assert_lt(c->n, 64);
        c->errors[c->n] = error;
        c->replies[c->n] = reply;
        c->at_us[c->n] = emo_now_us();
        c->n++;
}

static gboolean on_deadline(gpointer userdata) {
        *(bool *) userdata = true;
        return G_SOURCE_REMOVE;
}

/* Run the default main context, blocking in poll as the GUI does (only the fd watch and timers
 * wake it), until `want` callbacks came or timeout_ms passed. */
static void run_until(calls_t *c, int want, int timeout_ms) {
        bool expired = false;
        guint timer = g_timeout_add(timeout_ms, on_deadline, &expired);
        while (c->n < want && !expired)
                g_main_context_iteration(NULL, TRUE);
        if (!expired)
                g_source_remove(timer);
}

static void calls_free(calls_t *c) {
        for (int i = 0; i < c->n; i++)
                emo_reply_free(c->replies[i]);
}

static void health(emo_request_t *req, emo_health_request_t *h) {
        *h = (emo_health_request_t) EMOTION__V1__HEALTH_REQUEST__INIT;
        *req = (emo_request_t) EMOTION__V1__REQUEST__INIT;
        req->body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req->health = h;
}

Test(connection, reply_arrives_through_the_main_loop) {
        emo_gtk_connection_t *c = NULL;
        cr_assert_eq(emo_gtk_connection_new(daemon_.endpoint, 5000, &c), 0);
        cr_assert_str_eq(emo_gtk_connection_endpoint(c), daemon_.endpoint);
        emo_request_t req;
        emo_health_request_t h;
        health(&req, &h);
        calls_t calls = { 0 };
        uint64_t id = 0;
        cr_assert_eq(emo_gtk_connection_send(c, &req, on_reply, &calls, &id), 0);
        cr_assert_eq(calls.n, 0, "the callback never runs inside send");
        cr_assert_eq(emo_gtk_connection_in_flight(c), 1);
        run_until(&calls, 1, 5000);
        cr_assert_eq(calls.n, 1);
        cr_assert_eq(calls.errors[0], 0);
        cr_assert_eq(calls.replies[0]->request_id, id);
        cr_assert_eq(calls.replies[0]->status, EMO_STATUS_OK);
        cr_assert_eq(emo_gtk_connection_in_flight(c), 0);
        calls_free(&calls);
        emo_gtk_connection_free(c);
}

/* Forty replies reach the socket in bursts: one read per wake-up of the edge-triggered fd would
 * leave some of them queued with nothing left to wake the loop. */
Test(connection, every_reply_of_a_burst_is_read) {
        emo_gtk_connection_t *c = NULL;
        cr_assert_eq(emo_gtk_connection_new(daemon_.endpoint, 10000, &c), 0);
        size_t len;
        void *jpeg = emo_test_read_fixture("one_face.jpg", &len);
        calls_t calls = { 0 };
        enum { N = 40 };
        for (int i = 0; i < N; i++) {
                emo_test_req_t t;
                emo_request_t req;
                emo_health_request_t h;
                if (i % 2) {
                        emo_test_req_encoded(&t, jpeg, len);
                        cr_assert_eq(emo_gtk_connection_send(c, &t.req, on_reply, &calls, NULL), 0);
                } else {
                        health(&req, &h);
                        cr_assert_eq(emo_gtk_connection_send(c, &req, on_reply, &calls, NULL), 0);
                }
        }
        run_until(&calls, N, 20000);
        cr_assert_eq(calls.n, N, "%d of %d replies came", calls.n, N);
        int analyses = 0;
        for (int i = 0; i < N; i++) {
                cr_assert_eq(calls.errors[i], 0);
                cr_assert_eq(calls.replies[i]->status, EMO_STATUS_OK);
                emo_gtk_results_t *r = NULL;
                if (emo_gtk_results_from_reply(calls.replies[i], &r) == 0) {
                        cr_assert_eq(r->n_faces, 1);
                        analyses++;
                        emo_gtk_results_free(r);
                }
        }
        cr_assert_eq(analyses, N / 2);
        free(jpeg);
        calls_free(&calls);
        emo_gtk_connection_free(c);
}

Test(connection, error_status_reaches_the_callback) {
        emo_gtk_connection_t *c = NULL;
        cr_assert_eq(emo_gtk_connection_new(daemon_.endpoint, 5000, &c), 0);
        size_t len;
        void *text = emo_test_read_fixture("text.txt", &len);
        emo_test_req_t t;
        emo_test_req_encoded(&t, text, len);
        calls_t calls = { 0 };
        cr_assert_eq(emo_gtk_connection_send(c, &t.req, on_reply, &calls, NULL), 0);
        run_until(&calls, 1, 5000);
        cr_assert_eq(calls.n, 1);
        cr_assert_eq(calls.errors[0], 0);
        cr_assert_eq(calls.replies[0]->status, EMO_STATUS_DECODE_FAILED);
        emo_gtk_results_t *r = NULL;
        cr_assert_eq(emo_gtk_results_from_reply(calls.replies[0], &r), -EBADMSG);
        free(text);
        calls_free(&calls);
        emo_gtk_connection_free(c);
}

Test(connection, cancelled_request_stays_silent) {
        emo_gtk_connection_t *c = NULL;
        cr_assert_eq(emo_gtk_connection_new(daemon_.endpoint, 5000, &c), 0);
        emo_request_t req;
        emo_health_request_t h;
        health(&req, &h);
        calls_t cancelled = { 0 }, kept = { 0 };
        uint64_t id;
        cr_assert_eq(emo_gtk_connection_send(c, &req, on_reply, &cancelled, &id), 0);
        emo_gtk_connection_cancel(c, id);
        cr_assert_eq(emo_gtk_connection_send(c, &req, on_reply, &kept, NULL), 0);
        run_until(&kept, 1, 5000);
        cr_assert_eq(kept.n, 1);
        run_until(&cancelled, 1, 300);
        cr_assert_eq(cancelled.n, 0);
        cr_assert_eq(emo_gtk_connection_in_flight(c), 0);
        calls_free(&kept);
        emo_gtk_connection_free(c);
}

/* Send a health request to ep and expect it refused at once with want, and fn never called. */
static void expect_refused_now(const char *ep, int want, const char *advice) {
        emo_gtk_connection_t *c = NULL;
        cr_assert_eq(emo_gtk_connection_new(ep, 10000, &c), 0);
        emo_request_t req;
        emo_health_request_t h;
        health(&req, &h);
        calls_t calls = { 0 };
        int64_t t0 = emo_now_us();
        int r = emo_gtk_connection_send(c, &req, on_reply, &calls, NULL);
        double ms = (emo_now_us() - t0) / 1000.0;
        cr_assert_eq(r, want, "%s: %d (%s), want %d", ep, r, g_strerror(-r), want);
        cr_assert_lt(ms, 1000, "refused after %.0f ms", ms);
        cr_assert_eq(emo_gtk_connection_in_flight(c), 0);
        run_until(&calls, 1, 300);
        cr_assert_eq(calls.n, 0, "a refused request was answered too");
        char *m = emo_gtk_connection_explain(c, r);
        cr_assert(strstr(m, ep), "%s", m);
        cr_assert(strstr(m, advice), "%s", m);
        g_free(m);
        emo_gtk_connection_free(c);
}

Test(connection_down, absent_daemon_is_told_at_once_with_advice) {
        char dir[] = "/tmp/emo-gtk-test.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char ep[128], path[100];
        /* No socket file. */
        snprintf(ep, sizeof(ep), "ipc://%s/none.sock", dir);
        expect_refused_now(ep, -ENOENT, "emotiond --model");
        /* A socket file nobody listens on, as a daemon killed with SIGKILL leaves it. */
        snprintf(path, sizeof(path), "%s/stale.sock", dir);
        snprintf(ep, sizeof(ep), "ipc://%s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
        cr_assert_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        close(fd);
        expect_refused_now(ep, -ECONNREFUSED, "nothing listens there");
        unlink(path);
        rmdir(dir);
}

/* Something takes the connection (a listening socket nobody accepts from) but never answers. */
Test(connection_down, silent_listener_times_out_with_advice) {
        char dir[] = "/tmp/emo-gtk-test.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char ep[128], path[100];
        snprintf(path, sizeof(path), "%s/silent.sock", dir);
        snprintf(ep, sizeof(ep), "ipc://%s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
        cr_assert_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        cr_assert_eq(listen(fd, 16), 0);
        emo_gtk_connection_t *c = NULL;
        cr_assert_eq(emo_gtk_connection_new(ep, 400, &c), 0);
        emo_request_t req;
        emo_health_request_t h;
        health(&req, &h);
        calls_t calls = { 0 };
        int64_t t0 = emo_now_us();
        cr_assert_eq(emo_gtk_connection_send(c, &req, on_reply, &calls, NULL), 0);
        cr_assert_eq(emo_gtk_connection_send(c, &req, on_reply, &calls, NULL), 0);
        run_until(&calls, 2, 5000);
        cr_assert_eq(calls.n, 2, "each request is answered once, by an error");
        for (int i = 0; i < 2; i++) {
                cr_assert_eq(calls.errors[i], -ETIMEDOUT);
                cr_assert_null(calls.replies[i]);
                double ms = (calls.at_us[i] - t0) / 1000.0;
                cr_assert(ms >= 380 && ms < 2500, "failed after %.0f ms for a 400 ms timeout", ms);
        }
        run_until(&calls, 3, 600);
        cr_assert_eq(calls.n, 2, "no second callback");
        char *m = emo_gtk_connection_explain(c, -ETIMEDOUT);
        cr_assert(strstr(m, ep), "%s", m);
        cr_assert(strstr(m, "did not answer"), "%s", m);
        cr_assert(strstr(m, "emotiond --model"), "%s", m);
        g_free(m);
        emo_gtk_connection_free(c);
        close(fd);
        unlink(path);
        rmdir(dir);
}

Test(connection_down, malformed_endpoint_is_refused) {
        emo_gtk_connection_t *c = NULL;
        cr_assert_eq(emo_gtk_connection_new("http://example.org/", 1000, &c), -EINVAL);
        cr_assert_null(c);
}

/* A daemon that stops answering (SIGSTOP: hung, or swapped out) fails the request in flight with
 * -ETIMEDOUT; once it goes on, the next request on the same connection is answered: the live
 * tiles of the GUI recover by themselves. */
Test(connection, stalled_daemon_is_found_again) {
        emo_gtk_connection_t *c = NULL;
        cr_assert_eq(emo_gtk_connection_new(daemon_.endpoint, 800, &c), 0);
        emo_request_t req;
        emo_health_request_t h;
        health(&req, &h);
        calls_t calls = { 0 };
        kill(daemon_.pid, SIGSTOP);
        cr_assert_eq(emo_gtk_connection_send(c, &req, on_reply, &calls, NULL), 0);
        run_until(&calls, 1, 5000);
        cr_assert_eq(calls.n, 1);
        cr_assert_eq(calls.errors[0], -ETIMEDOUT);
        /* Still stopped: the fresh socket's request fails the same way. */
        cr_assert_eq(emo_gtk_connection_send(c, &req, on_reply, &calls, NULL), 0);
        run_until(&calls, 2, 5000);
        cr_assert_eq(calls.errors[1], -ETIMEDOUT);
        kill(daemon_.pid, SIGCONT);
        cr_assert_eq(emo_gtk_connection_send(c, &req, on_reply, &calls, NULL), 0);
        run_until(&calls, 3, 5000);
        cr_assert_eq(calls.n, 3);
        cr_assert_eq(calls.errors[2], 0, "no answer after the daemon went on: %d", calls.errors[2]);
        cr_assert_eq(calls.replies[2]->status, EMO_STATUS_OK);
        calls_free(&calls);
        emo_gtk_connection_free(c);
}

/* A refusal is explained for what it is on its transport: on tcp:// -EACCES is the daemon's CURVE
 * authentication refusing our key, on ipc:// the socket file's permissions. */
Test(connection, refusals_are_explained_per_transport) {
        const struct {
                const char *endpoint;
                int error;
                const char *says;
        } cases[] = {
                { "tcp://127.0.0.1:5560", -EACCES, "refused this client’s CURVE key" },
                { "ipc:///tmp/emo-none/emotiond.sock", -EACCES, "open to the group emotiond only" },
                { "tcp://127.0.0.1:5560", -EPROTONOSUPPORT, "disagree on security" },
                { "tcp://127.0.0.1:5560", -EKEYREJECTED, "emotiond --print-public-key" },
                { "ipc:///tmp/emo-none/emotiond.sock", -ECONNREFUSED, "nothing listens there" },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                emo_gtk_connection_t *c = NULL;
                cr_assert_eq(emo_gtk_connection_new(cases[i].endpoint, 1000, &c), 0);
                g_autofree char *m = emo_gtk_connection_explain(c, cases[i].error);
                cr_expect(strstr(m, cases[i].endpoint) && strstr(m, cases[i].says), "%s, %d: %s", cases[i].endpoint,
                          cases[i].error, m);
                emo_gtk_connection_free(c);
        }
}

/* tcp://: a daemon killed with a request in flight (stopped first, so that it has it) fails the
 * request at once with -ECONNABORTED, not at its timeout, with an explanation; the next request
 * goes on a new connection and reaches the daemon started again on the same port. */
/* A daemon of its own on a free tcp:// port, for the tests that kill it, with a connection that
 * has had its first answer (first holds it). */
typedef struct tcp_daemon {
        char dir[32], ep[64], log[128];
        pid_t pid;
        emo_gtk_connection_t *c;
        emo_request_t req; /* a health request */
        emo_health_request_t h;
} tcp_daemon_t;

static void tcp_daemon_start(tcp_daemon_t *t, calls_t *first) {
        snprintf(t->dir, sizeof(t->dir), "/tmp/emo-gtk-drop.XXXXXX");
        cr_assert_not_null(mkdtemp(t->dir));
        snprintf(t->ep, sizeof(t->ep), "tcp://127.0.0.1:%u", emo_test_free_port());
        snprintf(t->log, sizeof(t->log), "%s/stderr.log", t->dir);
        t->pid = emo_gtk_test_start_at(t->ep, t->log);
        t->c = NULL;
        cr_assert_eq(emo_gtk_connection_new(t->ep, 8000, &t->c), 0);
        health(&t->req, &t->h);
        cr_assert_eq(emo_gtk_connection_send(t->c, &t->req, on_reply, first, NULL), 0);
        run_until(first, 1, 5000);
        cr_assert(first->n == 1 && first->errors[0] == 0, "no first answer");
}

static void tcp_daemon_stop(tcp_daemon_t *t) {
        emo_gtk_connection_free(t->c);
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
        remove(t->log);
        rmdir(t->dir);
}

Test(connection_down, dropped_connection_fails_at_once) {
        tcp_daemon_t t;
        calls_t calls = { 0 };
        tcp_daemon_start(&t, &calls);
        emo_gtk_connection_t *c = t.c;
        emo_request_t *req = &t.req;
        const char *ep = t.ep;

        kill(t.pid, SIGSTOP);
        cr_assert_eq(emo_gtk_connection_send(c, req, on_reply, &calls, NULL), 0);
        run_until(&calls, 2, 300); /* it went out, and nothing answers */
        cr_assert_eq(calls.n, 1);
        int64_t t0 = emo_now_us();
        kill(t.pid, SIGKILL);
        waitpid(t.pid, NULL, 0);
        run_until(&calls, 2, 8000);
        int64_t ms = (emo_now_us() - t0) / 1000;
        cr_assert_eq(calls.n, 2);
        cr_assert_eq(calls.errors[1], -ECONNABORTED, "the request in flight ended with %d after %lld ms",
                     calls.errors[1], (long long) ms);
        cr_assert_lt(ms, 2000, "the request in flight failed %lld ms after the kill", (long long) ms);
        g_autofree char *m = emo_gtk_connection_explain(c, calls.errors[1]);
        cr_assert(strstr(m, ep) && strstr(m, "was lost"), "%s", m);

        t.pid = emo_gtk_test_start_at(ep, t.log);
        cr_assert_eq(emo_gtk_connection_send(c, req, on_reply, &calls, NULL), 0);
        run_until(&calls, 3, 5000);
        cr_assert(calls.n == 3 && calls.errors[2] == 0, "no answer from the restarted daemon: %d",
                  calls.n == 3 ? calls.errors[2] : 0);
        calls_free(&calls);
        tcp_daemon_stop(&t);
}

/* tcp://: a request sent with emo_gtk_connection_send_kept (a photo's) is sent again when its
 * connection drops, and answered by whoever listens at the endpoint then (here the daemon
 * started again on the port, as a load balancer's other daemon would be), once; a plain request
 * in flight beside it (a live frame's) fails with -ECONNABORTED as before. */
Test(connection_down, kept_request_is_sent_again_after_a_drop) {
        tcp_daemon_t t;
        calls_t first = { 0 }, kept = { 0 }, plain = { 0 };
        tcp_daemon_start(&t, &first);
        emo_gtk_connection_t *c = t.c;
        emo_request_t *req = &t.req;

        kill(t.pid, SIGSTOP);
        uint64_t id;
        cr_assert_eq(emo_gtk_connection_send_kept(c, req, on_reply, &kept, &id), 0);
        cr_assert_eq(emo_gtk_connection_send(c, req, on_reply, &plain, NULL), 0);
        run_until(&kept, 1, 300); /* they went out, and nothing answers */
        cr_assert(kept.n == 0 && plain.n == 0);
        kill(t.pid, SIGKILL);
        waitpid(t.pid, NULL, 0);
        int64_t t0 = emo_now_us();
        t.pid = emo_gtk_test_start_at(t.ep, t.log);
        run_until(&kept, 1, 8000);
        run_until(&plain, 1, 1000);
        int64_t ms = (emo_now_us() - t0) / 1000;
        cr_assert_eq(plain.n, 1);
        cr_assert_eq(plain.errors[0], -ECONNABORTED, "the plain request ended with %d", plain.errors[0]);
        cr_assert_eq(kept.n, 1);
        cr_assert(kept.errors[0] == 0 && kept.replies[0] && kept.replies[0]->status == EMO_STATUS_OK,
                  "the kept request ended with %d after %lld ms", kept.errors[0], (long long) ms);
        cr_assert_lt(ms, 5000, "answered %lld ms after the restart began (the time-out is 8000)", (long long) ms);
        cr_assert_eq(emo_gtk_connection_in_flight(c), 0);
        /* Once each: nothing more comes. */
        run_until(&kept, 2, 500);
        cr_assert(kept.n == 1 && plain.n == 1);
        calls_free(&first);
        calls_free(&kept);
        calls_free(&plain);
        tcp_daemon_stop(&t);
}
