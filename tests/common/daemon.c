#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emo/util.h"

#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 30000

extern char **environ;

static double now_s(void) {
        return (double) emo_now_us() / 1e6;
}

static int exit_code(int wstatus) {
        return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

/* Wait for pid at most timeout_ms; the exit code as emo_test_run's status, -1 on timeout. */
static int wait_child(pid_t pid, int timeout_ms) {
        int64_t deadline = emo_now_us() + (int64_t) timeout_ms * 1000;
        for (;;) {
                int ws;
                pid_t r = waitpid(pid, &ws, WNOHANG);
                if (r == pid)
                        return exit_code(ws);
                cr_assert(r == 0, "waitpid(%d): %s", (int) pid, strerror(errno));
                if (emo_now_us() > deadline)
                        return -1;
                usleep(5000);
        }
}

static void append(char **buf, size_t *len, const char *data, size_t n) {
        char *b = realloc(*buf, *len + n + 1);
        cr_assert(b);
        memcpy(b + *len, data, n);
        *len += n;
        b[*len] = '\0';
        *buf = b;
}

void emo_test_run(const char *const *argv, const char *const *extra_env, int timeout_ms, emo_test_run_t *ret) {
        int out[2], err[2];
        cr_assert(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
        double t0 = now_s();
        pid_t pid = fork();
        cr_assert(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int devnull = open("/dev/null", O_RDONLY);
                dup2(devnull, 0);
                dup2(out[1], 1);
                dup2(err[1], 2);
                for (const char *const *e = extra_env; e && *e; e++)
                        putenv((char *) *e);
                execv(argv[0], (char *const *) argv);
                fprintf(stderr, "cannot execute %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        *ret = (emo_test_run_t) { .status = -1 };
        size_t nout = 0, nerr = 0;
        append(&ret->out, &nout, "", 0);
        append(&ret->err, &nerr, "", 0);
        struct pollfd fds[2] = { { .fd = out[0], .events = POLLIN }, { .fd = err[0], .events = POLLIN } };
        int open_fds = 2;
        int64_t deadline = emo_now_us() + (int64_t) timeout_ms * 1000;
        bool killed = false;
        while (open_fds > 0) {
                int64_t left = (deadline - emo_now_us()) / 1000;
                if (left <= 0 && !killed) {
                        kill(pid, SIGKILL);
                        killed = true;
                }
                int n = poll(fds, 2, killed ? 1000 : (int) left);
                if (n < 0 && errno == EINTR)
                        continue;
                cr_assert(n >= 0);
                if (n == 0 && killed)
                        break;
                for (int i = 0; i < 2; i++) {
                        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        char buf[65536];
                        ssize_t r = read(fds[i].fd, buf, sizeof(buf));
                        if (r > 0) {
                                if (i == 0)
                                        append(&ret->out, &nout, buf, (size_t) r);
                                else
                                        append(&ret->err, &nerr, buf, (size_t) r);
                        } else {
                                close(fds[i].fd);
                                fds[i].fd = -1;
                                open_fds--;
                        }
                }
        }
        for (int i = 0; i < 2; i++)
                if (fds[i].fd >= 0)
                        close(fds[i].fd);
        int status = wait_child(pid, killed ? 5000 : timeout_ms);
        if (status < 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
        ret->status = killed ? -1 : status;
        ret->seconds = now_s() - t0;
}

void emo_test_run_done(emo_test_run_t *r) {
        free(r->out);
        free(r->err);
        *r = (emo_test_run_t) { 0 };
}

/* ---- the daemon -------------------------------------------------------------------------------- */

/* Daemons started and not yet cleaned up, by value: a failed assertion leaves the test function
 * (and its emo_test_daemon_t) behind, so the process's exit removes what is left. */
static struct {
        pid_t pid;
        char dir[64];
} started[16];

static void remove_dir(const char *dir) {
        char path[192];
        snprintf(path, sizeof(path), "%s/emotiond.sock", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/stderr.log", dir);
        unlink(path);
        rmdir(dir);
}

static void cleanup_at_exit(void) {
        for (size_t i = 0; i < ELEMENTSOF(started); i++)
                if (started[i].dir[0]) {
                        if (started[i].pid > 0) {
                                kill(started[i].pid, SIGKILL);
                                waitpid(started[i].pid, NULL, 0);
                        }
                        remove_dir(started[i].dir);
                        started[i].dir[0] = '\0';
                }
}

static void remember(const emo_test_daemon_t *d) {
        static bool registered;
        if (!registered)
                registered = atexit(cleanup_at_exit) == 0;
        for (size_t i = 0; i < ELEMENTSOF(started); i++)
                if (!started[i].dir[0]) {
                        started[i].pid = d->pid;
                        snprintf(started[i].dir, sizeof(started[i].dir), "%s", d->dir);
                        return;
                }
}

/* The process was reaped: its pid may be reused, never kill it again. */
static void reaped(const emo_test_daemon_t *d) {
        for (size_t i = 0; i < ELEMENTSOF(started); i++)
                if (started[i].dir[0] && strcmp(started[i].dir, d->dir) == 0)
                        started[i].pid = 0;
}

static void forget(const emo_test_daemon_t *d) {
        for (size_t i = 0; i < ELEMENTSOF(started); i++)
                if (started[i].dir[0] && strcmp(started[i].dir, d->dir) == 0)
                        started[i].dir[0] = '\0';
}

char *emo_test_daemon_log(const emo_test_daemon_t *d) {
        return emo_test_read_file(d->log, NULL);
}

void emo_test_daemon_start(emo_test_daemon_t *d, const char *const *extra) {
        *d = (emo_test_daemon_t) { 0 };
        snprintf(d->dir, sizeof(d->dir), "/tmp/emotiond-test.XXXXXX");
        cr_assert(mkdtemp(d->dir), "mkdtemp: %s", strerror(errno));
        snprintf(d->endpoint, sizeof(d->endpoint), "ipc://%s/emotiond.sock", d->dir);
        snprintf(d->log, sizeof(d->log), "%s/stderr.log", d->dir);
        _cleanup_free_ char *dialogue = emo_test_join(emo_test_source_dir(), "deploy/dialogue");

        const char *argv[64] = {
                emo_test_emotiond(), "--endpoint", d->endpoint, "--model", emo_test_model(), "--detector", "yunet",
                "--yunet-model", emo_test_yunet(), "--dialogue-dir", dialogue, "--device", "cpu", "-w", "2",
        };
        size_t n = 15;
        /* YuNet's lean check, when a test turns it on, with the tests' BlazeFace; impossible where
         * the tests have none, whatever the machine's data folders hold. */
        const char *blaze = emo_test_blazeface();
        argv[n++] = blaze ? "--blazeface-model" : "--set";
        argv[n++] = blaze ? blaze : "lean_check=false";
        for (const char *const *a = extra; a && *a; a++) {
                cr_assert(n + 1 < ELEMENTSOF(argv));
                argv[n++] = *a;
        }
        argv[n] = NULL;

        int log = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert(log >= 0);
        pid_t pid = fork();
        cr_assert(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
                /* The daemon must not outlive a test that crashes or times out. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int devnull = open("/dev/null", O_RDWR);
                dup2(devnull, 0);
                dup2(devnull, 1);
                dup2(log, 2);
                /* Never the test runner's own systemd socket; a test that plays systemd names
                 * its socket in EMO_TEST_NOTIFY_SOCKET (and EMO_TEST_WATCHDOG_USEC). */
                const char *notify = getenv("EMO_TEST_NOTIFY_SOCKET"), *watchdog = getenv("EMO_TEST_WATCHDOG_USEC");
                if (notify)
                        setenv("NOTIFY_SOCKET", notify, 1);
                else
                        unsetenv("NOTIFY_SOCKET");
                if (watchdog)
                        setenv("WATCHDOG_USEC", watchdog, 1);
                else
                        unsetenv("WATCHDOG_USEC");
                unsetenv("WATCHDOG_PID");
                unsetenv("EMOTIOND_ENDPOINT");
                execv(argv[0], (char *const *) argv);
                fprintf(stderr, "cannot execute %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        close(log);
        d->pid = pid;
        remember(d);

        int64_t deadline = emo_now_us() + START_TIMEOUT_MS * 1000LL;
        for (;;) {
                int ws;
                if (waitpid(pid, &ws, WNOHANG) == pid) {
                        reaped(d);
                        d->pid = 0;
                        _cleanup_free_ char *text = emo_test_daemon_log(d);
                        emo_test_daemon_cleanup(d);
                        cr_assert_fail("emotiond exited with status %d during startup; its stderr:\n%s", exit_code(ws), text);
                }
                emo_reply_t *health = emo_test_try_health(d->endpoint, 250);
                if (health) {
                        emo_reply_free(health);
                        return;
                }
                if (emo_now_us() > deadline) {
                        _cleanup_free_ char *text = emo_test_daemon_log(d);
                        emo_test_daemon_cleanup(d);
                        cr_assert_fail("emotiond did not answer a health request within %d s; its stderr:\n%s",
                                 START_TIMEOUT_MS / 1000, text);
                }
        }
}

void emo_test_daemon_signal(emo_test_daemon_t *d, int sig) {
        cr_assert(d->pid > 0, "emotiond is not running");
        cr_assert(kill(d->pid, sig) == 0, "kill: %s", strerror(errno));
}

int emo_test_daemon_wait(emo_test_daemon_t *d, int timeout_ms) {
        cr_assert(d->pid > 0, "emotiond is not running");
        int status = wait_child(d->pid, timeout_ms);
        if (status < 0) {
                kill(d->pid, SIGKILL);
                waitpid(d->pid, NULL, 0);
        }
        reaped(d);
        d->pid = 0;
        return status;
}

void emo_test_daemon_stop(emo_test_daemon_t *d) {
        emo_test_daemon_signal(d, SIGTERM);
        int status = emo_test_daemon_wait(d, STOP_TIMEOUT_MS);
        _cleanup_free_ char *text = emo_test_daemon_log(d);
        emo_test_daemon_cleanup(d);
        cr_assert(status != -1, "emotiond did not exit within %d s of SIGTERM; its stderr:\n%s", STOP_TIMEOUT_MS / 1000,
                  text);
        cr_assert(status == 0, "emotiond exited with status %d after SIGTERM, expected 0; its stderr:\n%s", status, text);
}

void emo_test_daemon_cleanup(emo_test_daemon_t *d) {
        if (d->pid > 0) {
                kill(d->pid, SIGKILL);
                waitpid(d->pid, NULL, 0);
                reaped(d);
                d->pid = 0;
        }
        if (d->dir[0]) {
                forget(d);
                remove_dir(d->dir);
                d->dir[0] = '\0';
        }
}

/* ---- requests ---------------------------------------------------------------------------------- */

static void req_init(emo_test_req_t *t) {
        *t = (emo_test_req_t) { 0 };
        emotion__v1__request__init(&t->req);
        emotion__v1__analyze_request__init(&t->analyze);
        emotion__v1__image__init(&t->image);
        emotion__v1__options__init(&t->options);
        for (size_t i = 0; i < ELEMENTSOF(t->box); i++) {
                emotion__v1__box__init(&t->box[i]);
                t->boxes[i] = &t->box[i];
        }
        t->req.body_case = EMOTION__V1__REQUEST__BODY_ANALYZE;
        t->req.analyze = &t->analyze;
        t->analyze.image = &t->image;
        t->analyze.options = &t->options;
        t->options.include_probabilities = true;
}

void emo_test_req_encoded(emo_test_req_t *t, const void *data, size_t len) {
        req_init(t);
        t->image.format = EMOTION__V1__IMAGE__FORMAT__ENCODED;
        t->image.data.data = (uint8_t *) data;
        t->image.data.len = len;
}

void emo_test_req_face48(emo_test_req_t *t, const uint8_t *pixels) {
        req_init(t);
        t->image.format = EMOTION__V1__IMAGE__FORMAT__GRAY8;
        t->image.data.data = (uint8_t *) pixels;
        t->image.data.len = 48 * 48;
        t->image.width = t->image.height = 48;
        t->box[0].width = t->box[0].height = 48;
        t->analyze.n_faces = 1;
        t->analyze.faces = t->boxes;
        t->analyze.exact_crop = true;
}

emo_reply_t *emo_test_call(const char *endpoint, emo_request_t *req, int timeout_ms) {
        emo_client_t *c = NULL;
        cr_assert(emo_client_new(endpoint, &c) == 0);
        emo_reply_t *reply = NULL;
        int r = emo_client_call(c, req, timeout_ms, 1, &reply);
        emo_client_free(c);
        cr_assert(r == 0, "no reply from emotiond within %d ms: %s", timeout_ms, strerror(-r));
        return reply;
}

emo_reply_t *emo_test_try_health(const char *endpoint, int timeout_ms) {
        emo_client_t *c = NULL;
        cr_assert(emo_client_new(endpoint, &c) == 0);
        emo_health_request_t h = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &h;
        emo_reply_t *reply = NULL;
        int r = emo_client_call(c, &req, timeout_ms, 1, &reply);
        emo_client_free(c);
        if (r == 0 && reply->status == EMO_STATUS_OK && reply->body_case == EMOTION__V1__REPLY__BODY_HEALTH)
                return reply;
        emo_reply_free(reply);
        return NULL;
}

emo_reply_t *emo_test_health(const char *endpoint) {
        emo_health_request_t h = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &h;
        emo_reply_t *reply = emo_test_call(endpoint, &req, 10000);
        cr_assert(reply->status == EMO_STATUS_OK, "health answered %s: %s", emo_status_name(reply->status),
                  reply->message);
        cr_assert(reply->body_case == EMOTION__V1__REPLY__BODY_HEALTH, "health reply without a health body");
        return reply;
}

emo_reply_t *emo_test_raw(const char *endpoint, const void *const *frames, const size_t *lens, size_t n, int timeout_ms,
                          size_t *ret_frames) {
        zsock_t *s = zsock_new(ZMQ_DEALER);
        cr_assert(s);
        zsock_set_linger(s, 0);
        cr_assert(zsock_connect(s, "%s", endpoint) == 0);
        zmsg_t *msg = zmsg_new();
        for (size_t i = 0; i < n; i++)
                zmsg_addmem(msg, frames[i], lens[i]);
        cr_assert(zmsg_send(&msg, s) == 0);
        zmq_pollitem_t item = { .socket = zsock_resolve(s), .events = ZMQ_POLLIN };
        int p = zmq_poll(&item, 1, timeout_ms);
        cr_assert(p == 1, "no reply from emotiond within %d ms", timeout_ms);
        zmsg_t *reply_msg = zmsg_recv(s);
        cr_assert(reply_msg);
        if (ret_frames)
                *ret_frames = zmsg_size(reply_msg);
        zframe_t *body = zmsg_last(reply_msg);
        emo_reply_t *reply = NULL;
        cr_assert(emo_reply_unpack(zframe_data(body), zframe_size(body), &reply) == 0, "the reply is not a Reply");
        zmsg_destroy(&reply_msg);
        zsock_destroy(&s);
        return reply;
}

uint8_t *emo_test_pack(const emo_request_t *req, size_t *ret_len) {
        size_t n = emotion__v1__request__get_packed_size(req);
        uint8_t *buf = malloc(n ? n : 1);
        cr_assert(buf);
        cr_assert(emotion__v1__request__pack(req, buf) == n);
        *ret_len = n;
        return buf;
}

unsigned emo_test_free_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        cr_assert(fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 &&
                  getsockname(fd, (struct sockaddr *) &sa, &len) == 0);
        close(fd);
        return ntohs(sa.sin_port);
}

void emo_test_emotion_run(const char *endpoint, const char *const *args, int timeout_ms, emo_test_run_t *ret) {
        const char *argv[96] = { emo_test_emotion(), "--server", endpoint };
        size_t n = 3;
        for (; *args; args++) {
                cr_assert_lt(n + 1, ELEMENTSOF(argv));
                argv[n++] = *args;
        }
        argv[n] = NULL;
        emo_test_run(argv, (const char *const[]) { "EMOTIOND_ENDPOINT=", NULL }, timeout_ms, ret);
        cr_assert_neq(ret->status, -1, "emotion did not finish within %d ms; stderr:\n%s", timeout_ms, ret->err);
}
