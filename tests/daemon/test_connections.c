/* Hostile connections against the real daemon (issue 22): a flood of connections must not take it
 * down, and connections that each hold part of a large message must not take its memory past the
 * budget of deploy/emotiond.conf; in both cases a well-behaved client is served again. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/util.h"

TestSuite(connections, .timeout = 60);

static bool daemon_alive(const emo_test_daemon_t *d) {
        char path[64], state = '?';
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) d->pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return false;
        /* "pid (comm) S ...": a zombie (Z) has exited and waits for us to reap it. */
        bool ok = fscanf(f, "%*d (%*[^)]) %c", &state) == 1 && state != 'Z' && state != 'X';
        fclose(f);
        return ok;
}

/* The end of the daemon's stderr, for failure messages. */
static char *log_tail(const emo_test_daemon_t *d) {
        char *log = emo_test_daemon_log(d);
        size_t n = log ? strlen(log) : 0;
        if (n > 1500)
                memmove(log, log + n - 1500, 1501);
        return log;
}

/* A health request on fresh connections until one is answered, for at most timeout_ms: slots held
 * by hostile connections free up when the daemon drops them. NULL when none was answered. */
static emo_reply_t *health_within(const char *endpoint, int timeout_ms) {
        int64_t deadline = emo_now_us() + (int64_t) timeout_ms * 1000;
        do {
                emo_reply_t *reply = emo_test_try_health(endpoint, 1000);
                if (reply)
                        return reply;
        } while (emo_now_us() < deadline);
        return NULL;
}

/* A connected unix stream socket to the daemon's ipc endpoint, or -1. Blocking, with send and
 * receive timeouts (connect waits at most that long for room in the listen backlog). */
static int connect_raw(const emo_test_daemon_t *d, int timeout_ms) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->endpoint + strlen("ipc://"));
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert(fd >= 0, "socket: %s", strerror(errno));
        struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* This process needs one descriptor per hostile connection. */
static void allow_fds(rlim_t n) {
        struct rlimit rl;
        cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_cur < n) {
                cr_assert(rl.rlim_max >= n, "this test needs %llu file descriptors, the hard limit is %llu",
                          (unsigned long long) n, (unsigned long long) rl.rlim_max);
                rl.rlim_cur = n;
                cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        }
}

/* Give the running daemon the systemd default of 1024 descriptors: without a connection budget,
 * libzmq's ipc listener aborts the process on EMFILE once the connections fill its table. */
static void limit_daemon_fds(const emo_test_daemon_t *d, rlim_t n) {
        struct rlimit rl = { .rlim_cur = n, .rlim_max = n };
        cr_assert_eq(prlimit(d->pid, RLIMIT_NOFILE, &rl, NULL), 0, "prlimit: %s", strerror(errno));
}

#define FLOOD 2000

/* 2,000 connections that never say a word, all held open at once. */
Test(connections, flood_leaves_the_daemon_serving) {
        signal(SIGPIPE, SIG_IGN);
        allow_fds(FLOOD + 256);
        emo_test_daemon_t d;
        static const char *const args[] = { "--set", "max_connections=64", "--set", "client_timeout_ms=2000", NULL };
        emo_test_daemon_start(&d, args);
        limit_daemon_fds(&d, 1024);

        static int fds[FLOOD];
        int opened = 0;
        for (int i = 0; i < FLOOD && daemon_alive(&d); i++)
                if ((fds[i] = connect_raw(&d, 2000)) >= 0)
                        opened++;
        /* Refused connections are closed by the daemon; give it the time to see them all. */
        usleep(500 * 1000);
        _cleanup_free_ char *log = log_tail(&d);
        cr_assert(daemon_alive(&d), "emotiond died under %d connections; its log ends with:\n%s", opened, log);

        /* The 64 slots are held by silent connections until the ZMTP handshake timeout
         * (client_timeout_ms, 2 s here) drops them; then a polite client gets in, while the hostile
         * client still holds all its sockets. */
        emo_reply_t *r = health_within(d.endpoint, 20000);
        free(log);
        log = log_tail(&d);
        cr_assert_not_null(r, "no health reply with %d hostile connections open; log:\n%s", opened, log);
        cr_expect_gt(r->health->connections_refused, 0, "no connection refused of %d", opened);
        cr_expect_leq(r->health->connections, 64, "%u connections open, over max_connections", r->health->connections);
        cr_log_info("%d connections opened, %llu refused, %u open", opened,
                    (unsigned long long) r->health->connections_refused, r->health->connections);
        for (int i = 0; i < FLOOD; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        emo_reply_free(r);
        emo_test_daemon_stop(&d); /* and it still drains and exits 0 */
}

/* ---- partial messages ---------------------------------------------------------------------------- */

/* Speak ZMTP 3.0 with the NULL mechanism as a DEALER (greeting and READY; the daemon's own are
 * left unread: zmtp_wait_ready). false when the daemon closed the connection. */
static bool zmtp_hello(int fd) {
        uint8_t greeting[64] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0, 'N', 'U', 'L', 'L' };
        static const char ready_body[] = "\5READY\13Socket-Type\0\0\0\6DEALER";
        uint8_t ready[2 + sizeof(ready_body) - 1] = { 0x04, sizeof(ready_body) - 1 };
        memcpy(ready + 2, ready_body, sizeof(ready_body) - 1);
        return send(fd, greeting, sizeof(greeting), MSG_NOSIGNAL) == sizeof(greeting) &&
               send(fd, ready, sizeof(ready), MSG_NOSIGNAL) == sizeof(ready);
}

/* Read n bytes; false at end of file, on an error or after the socket's receive timeout. */
static bool recv_all(int fd, void *buf, size_t n) {
        for (size_t got = 0; got < n;) {
                ssize_t r = recv(fd, (char *) buf + got, n - got, 0);
                if (r <= 0)
                        return false;
                got += (size_t) r;
        }
        return true;
}

/* Read the daemon's greeting and READY command: the handshake is over on its side, and messages
 * may follow. A message sent before that is a protocol error (libzmq: "unexpected command"), and
 * libzmq closes the connection when the message overtakes the daemon's READY. */
static bool zmtp_wait_ready(int fd) {
        uint8_t greeting[64], head[9], body[256];
        if (!recv_all(fd, greeting, sizeof(greeting)) || greeting[0] != 0xff || greeting[9] != 0x7f ||
            !recv_all(fd, head, 1) || !(head[0] & 0x04))
                return false;
        uint64_t size = 0;
        if (head[0] & 0x02) { /* a long command: 8-byte size */
                if (!recv_all(fd, head + 1, 8))
                        return false;
                for (int i = 1; i <= 8; i++)
                        size = size << 8 | head[i];
        } else {
                if (!recv_all(fd, head + 1, 1))
                        return false;
                size = head[1];
        }
        return size > 6 && size <= sizeof(body) && recv_all(fd, body, (size_t) size) &&
               memcmp(body, "\5READY", 6) == 0;
}

/* Send a frame header: frame_size bytes follow, and more frames after them when `more`. */
static bool zmtp_frame_header(int fd, uint64_t frame_size, bool more) {
        uint8_t header[9] = { (uint8_t) (0x02 | (more ? 0x01 : 0)) }; /* an 8-byte size */
        for (int i = 0; i < 8; i++)
                header[1 + i] = (uint8_t) (frame_size >> (56 - 8 * i));
        return send(fd, header, sizeof(header), MSG_NOSIGNAL) == sizeof(header);
}

/* Send n bytes of zeros. */
static bool send_zeros(int fd, uint64_t n) {
        static uint8_t chunk[1 << 20];
        for (uint64_t left = n; left > 0;) {
                size_t k = left < sizeof(chunk) ? (size_t) left : sizeof(chunk);
                ssize_t w = send(fd, chunk, k, MSG_NOSIGNAL);
                if (w <= 0)
                        return false;
                left -= (uint64_t) w;
        }
        return true;
}

/* Speak ZMTP as a DEALER, then announce one last frame of frame_size bytes and send all of it but
 * the last `missing` bytes. false when the daemon closed the connection. */
static bool hold_partial(int fd, uint64_t frame_size, size_t missing) {
        return zmtp_hello(fd) && zmtp_wait_ready(fd) && zmtp_frame_header(fd, frame_size, false) &&
               send_zeros(fd, frame_size - missing);
}

/* VmRSS or VmHWM of process pid, in KiB. */
static uint64_t status_kib(pid_t pid, const char *field) {
        char path[64], line[256], fmt[32];
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        snprintf(fmt, sizeof(fmt), "%s: %%llu kB", field);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "cannot read %s", path);
        unsigned long long kib = 0;
        bool found = false;
        while (!found && fgets(line, sizeof(line), f))
                found = sscanf(line, fmt, &kib) == 1;
        fclose(f);
        cr_assert(found, "no %s in %s", field, path);
        return kib;
}

#define HOLDERS 100
#define MAX_CONNECTIONS 16
#define MAX_MESSAGE (2u << 20)
/* Under ASan, memory the daemon frees stays resident in ASan's quarantine (256 MiB by default, to
 * catch use after free), and every byte of heap has an eighth of a byte of shadow: the 4 MiB
 * buffers of connections refused after they sent their frame would count until the quarantine
 * is full, and the daemon would be over any budget of its own. The daemon gets a quarantine of
 * ASAN_QUARANTINE_MIB instead, and the budget grows by it and by the shadow of the growth; the
 * at-rest part is measured in the same build. The release build keeps the real bound. */
#define ASAN_QUARANTINE_MIB 16

/* 100 connections each hold a frame of twice max_message_bytes (the most libzmq accepts) but 64
 * KiB. The budget of deploy/emotiond.conf: max_connections x 2 x max_message_bytes of partial
 * messages, plus what a queued or decoded request may take (queue_capacity + workers) x
 * max_message_bytes and max_pixels x ~6 bytes per worker, over the daemon at rest. */
Test(connections, partial_messages_stay_in_the_memory_budget) {
        signal(SIGPIPE, SIG_IGN);
        allow_fds(HOLDERS + 256);
        emo_test_daemon_t d;
        char max_conn[64], max_msg[64];
        snprintf(max_conn, sizeof(max_conn), "max_connections=%d", MAX_CONNECTIONS);
        snprintf(max_msg, sizeof(max_msg), "max_message_bytes=%u", MAX_MESSAGE);
        const char *const args[] = { "--set", max_conn,
                                     "--set", max_msg,
                                     "--set", "queue_capacity=1",
                                     "--set", "max_pixels=1000000",
                                     "--set", "client_timeout_ms=2000",
                                     /* Its default memory budget counts 100 MiB for the daemon
                                      * itself, which an ASan build is over at rest: it would shed
                                      * the holders before they reach the connection cap. */
                                     EMO_TEST_ASAN ? "--set" : NULL, "memory_budget_mb=4096",
                                     NULL };
        if (EMO_TEST_ASAN) {
                /* The daemon inherits it; this process read its own options at start. */
                const char *old = getenv("ASAN_OPTIONS");
                char opts[512];
                snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=%d", old ? old : "", old && *old ? ":" : "",
                         ASAN_QUARANTINE_MIB);
                cr_assert_eq(setenv("ASAN_OPTIONS", opts, 1), 0);
        }
        emo_test_daemon_start(&d, args);
        uint64_t rest_kib = status_kib(d.pid, "VmHWM");
        uint64_t growth_kib = ((uint64_t) MAX_CONNECTIONS * 2 * MAX_MESSAGE + (1 + 2) * (uint64_t) MAX_MESSAGE +
                               2 * 6 * 1000000) /
                              1024;
        if (EMO_TEST_ASAN)
                growth_kib += growth_kib / 8 + ASAN_QUARANTINE_MIB * 1024;
        uint64_t budget_kib = rest_kib + growth_kib;

        int fds[HOLDERS], holding = 0;
        for (int i = 0; i < HOLDERS; i++) {
                fds[i] = connect_raw(&d, 2000);
                if (fds[i] >= 0 && hold_partial(fds[i], 2 * MAX_MESSAGE, 64 << 10))
                        holding++;
        }
        usleep(500 * 1000);
        uint64_t peak_kib = status_kib(d.pid, "VmHWM");
        _cleanup_free_ char *log = log_tail(&d);
        cr_assert(daemon_alive(&d), "emotiond died; its log ends with:\n%s", log);
        cr_log_info("%d of %d connections hold %u bytes each: peak RSS %llu MiB, at "
                    "rest %llu MiB, budget %llu MiB",
                    holding, HOLDERS, 2 * MAX_MESSAGE - (64 << 10), (unsigned long long) peak_kib / 1024,
                    (unsigned long long) rest_kib / 1024, (unsigned long long) budget_kib / 1024);
        cr_expect_leq(peak_kib, budget_kib, "peak RSS %llu MiB over the budget of %llu MiB (%d connections holding)",
                      (unsigned long long) peak_kib / 1024, (unsigned long long) budget_kib / 1024, holding);

        /* The holders never finish their frame: the heartbeat timeout (client_timeout_ms) drops
         * them and the daemon serves again, while they stay connected. */
        emo_reply_t *r = health_within(d.endpoint, 20000);
        free(log);
        log = log_tail(&d);
        cr_assert_not_null(r, "no health reply while %d connections hold partial messages; log:\n%s", holding, log);
        cr_expect_gt(r->health->connections_refused, 0, "no connection refused (%llu shed, %u open)",
                     (unsigned long long) r->health->connections_shed, r->health->connections);
        emo_reply_free(r);
        for (int i = 0; i < HOLDERS; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        emo_test_daemon_stop(&d); /* and it still drains and exits 0 */
}

/* ---- unfinished multipart messages ----------------------------------------------------------------- */

/* Whether the daemon has closed fd: what it sent is read and dropped, without waiting. */
static bool peer_closed(int fd) {
        char buf[4096];
        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n > 0)
                        continue;
                return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
        }
}

/* The peak resident size of a daemon started with args and asked one health request, in KiB. */
static uint64_t rest_kib(const char *const *args) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, args);
        uint64_t kib = status_kib(d.pid, "VmHWM");
        emo_test_daemon_stop(&d);
        return kib;
}

#define FRAME (1u << 20)
#define FRAMES 600
#define BUDGET_OVER_REST_MIB 64
/* The guard looks every 25 ms and spares a connection for 100 ms after its last message (here:
 * its accept); at the ~1.2 GB/s libzmq reads a local socket, that was 35-68 MiB more. This leaves
 * room for a machine twice as fast; without the budget the peak is the daemon at rest + 600 MiB. */
#define OVERSHOOT_MIB 256

/* One connection sends 1 MiB frames of one message that never ends: libzmq keeps them all, and
 * without the budget the daemon grew by all 600 MiB. Over memory_budget_mb, the daemon closes the
 * connection, its peak stays near the budget, and it serves a polite client and stops cleanly. */
Test(connections, unfinished_multipart_message_is_shed) {
        signal(SIGPIPE, SIG_IGN);
        uint64_t rest = rest_kib(NULL);
        char budget[64];
        unsigned long long budget_mib = rest / 1024 + BUDGET_OVER_REST_MIB;
        snprintf(budget, sizeof(budget), "memory_budget_mb=%llu", budget_mib);
        const char *const args[] = { "--set", budget, NULL };
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, args);

        int fd = connect_raw(&d, 5000);
        cr_assert(fd >= 0, "cannot connect to %s", d.endpoint);
        cr_assert(zmtp_hello(fd));
        cr_assert(zmtp_wait_ready(fd), "no greeting and READY from the daemon");
        int64_t start = emo_now_us();
        unsigned sent = 0;
        while (sent < FRAMES && zmtp_frame_header(fd, FRAME, true) && send_zeros(fd, FRAME))
                sent++;
        int send_errno = errno; /* why the sending stopped: EPIPE or ECONNRESET when closed */
        double seconds = (double) (emo_now_us() - start) / 1e6;
        usleep(300 * 1000);
        uint64_t peak = status_kib(d.pid, "VmHWM");
        uint64_t now = status_kib(d.pid, "VmRSS");
        _cleanup_free_ char *log = log_tail(&d);
        cr_log_info("sent %u MiB in %.2f s before the daemon closed the connection; peak RSS %llu MiB, now %llu "
                    "MiB, at rest %llu MiB, budget %llu MiB",
                    sent, seconds, (unsigned long long) peak / 1024, (unsigned long long) now / 1024,
                    (unsigned long long) rest / 1024, budget_mib);
        cr_assert(daemon_alive(&d), "emotiond died; its log ends with:\n%s", log);
        cr_expect_lt(sent, FRAMES, "the daemon kept all %u MiB of an unfinished message; log:\n%s", sent, log);
        cr_expect_leq(peak / 1024, budget_mib + OVERSHOOT_MIB, "peak RSS %llu MiB, budget %llu MiB",
                      (unsigned long long) peak / 1024, budget_mib);
        close(fd);

        emo_reply_t *r = health_within(d.endpoint, 10000);
        cr_assert_not_null(r, "no health reply after the flood; log:\n%s", log);
        cr_expect_geq(r->health->connections_shed, 1,
                      "the connection was closed after %u MiB (%s), but not shed (%llu refused); log:\n%s", sent,
                      strerror(send_errno), (unsigned long long) r->health->connections_refused, log);
        emo_reply_free(r);
        emo_test_daemon_stop(&d); /* and it still drains and exits 0 */
}

/* Hold a silent ZMTP connection for 2 s (twenty times the grace) and say whether the daemon closed it;
 * *ret_shed: connections_shed in a health reply afterwards. */
static bool idle_client_closed(const char *const *args, uint64_t *ret_shed) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, args);
        int fd = connect_raw(&d, 5000);
        cr_assert(fd >= 0, "cannot connect to %s", d.endpoint);
        cr_assert(zmtp_hello(fd));
        bool closed = false;
        for (int i = 0; i < 20 && !closed; i++) {
                usleep(100 * 1000);
                closed = peer_closed(fd);
        }
        close(fd);
        emo_reply_t *r = health_within(d.endpoint, 10000);
        cr_assert_not_null(r, "no health reply");
        *ret_shed = r->health->connections_shed;
        emo_reply_free(r);
        emo_test_daemon_stop(&d);
        return closed;
}

/* Under the budget (the default: the configuration's worst case), an idle client keeps its
 * connection; over it (a budget below the daemon at rest), the same client is shed, which shows
 * that the first check sees a closed connection. */
Test(connections, idle_client_is_kept_under_the_budget) {
        signal(SIGPIPE, SIG_IGN);
        uint64_t shed = 0;
        cr_expect_not(idle_client_closed(NULL, &shed), "an idle connection was closed under the memory budget");
        cr_expect_eq(shed, 0, "%llu connection(s) shed under the memory budget", (unsigned long long) shed);
        static const char *const tiny[] = { "--set", "memory_budget_mb=1", NULL };
        cr_expect(idle_client_closed(tiny, &shed), "an idle connection was kept over the memory budget");
        cr_expect_geq(shed, 1);
}
