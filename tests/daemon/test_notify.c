/* The systemd side of the daemon, through a real notification socket: NOTIFY_SOCKET points at a
 * datagram socket of the test, as systemd would set it for a Type=notify service with
 * WatchdogSec=. READY=1 must arrive only once the daemon answers, WATCHDOG=1 must keep coming
 * while it serves, and SIGTERM must be announced with STOPPING=1 before a clean exit. */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/util.h"

TestSuite(notify, .timeout = 90);

/* Read every datagram that arrives within timeout_ms into buf (appended, newline-separated);
 * stops early once `want` appears. Returns whether it appeared. */
static bool collect(int fd, char *buf, size_t size, const char *want, int timeout_ms) {
        int64_t deadline = emo_now_us() + (int64_t) timeout_ms * 1000;
        while (!strstr(buf, want)) {
                int left = (int) ((deadline - emo_now_us()) / 1000);
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (left <= 0 || poll(&p, 1, left) <= 0)
                        return false;
                size_t used = strlen(buf);
                ssize_t n = recv(fd, buf + used, size - used - 2, 0);
                if (n <= 0)
                        return false;
                buf[used + n] = '\n';
                buf[used + n + 1] = '\0';
        }
        return true;
}

/* A datagram socket DIR/notify standing in for systemd's, DIR made from the template dir. */
static int notify_socket(char *dir, struct sockaddr_un *sa) {
        cr_assert_not_null(mkdtemp(dir));
        *sa = (struct sockaddr_un) { .sun_family = AF_UNIX };
        snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/notify", dir);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        cr_assert_eq(bind(fd, (struct sockaddr *) sa, sizeof(*sa)), 0, "bind %s: %m", sa->sun_path);
        return fd;
}

static void notify_socket_close(int fd, const char *dir, const struct sockaddr_un *sa) {
        close(fd);
        unlink(sa->sun_path);
        rmdir(dir);
}

Test(notify, ready_status_watchdog_stopping) {
        char dir[] = "/tmp/emotiond-notify-XXXXXX";
        struct sockaddr_un sa;
        int fd = notify_socket(dir, &sa);
        setenv("EMO_TEST_NOTIFY_SOCKET", sa.sun_path, 1);
        setenv("EMO_TEST_WATCHDOG_USEC", "400000", 1); /* keep-alive expected every 200 ms */

        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        unsetenv("EMO_TEST_NOTIFY_SOCKET");
        unsetenv("EMO_TEST_WATCHDOG_USEC");

        static char got[1 << 16];
        got[0] = '\0';
        /* The fixture returned after a health reply, so READY=1 must already be there. */
        cr_assert(collect(fd, got, sizeof(got), "READY=1", 100), "no READY=1 before the daemon answered; got:\n%s", got);
        cr_assert(strstr(got, "STATUS=Serving on "), "no STATUS= line with READY=1; got:\n%s", got);

        /* Keep-alives: at least three more within a second. */
        int watchdogs = 0;
        int64_t until = emo_now_us() + 1000000;
        while (emo_now_us() < until) {
                got[0] = '\0';
                if (collect(fd, got, sizeof(got), "WATCHDOG=1", 300))
                        watchdogs++;
        }
        cr_assert_geq(watchdogs, 3, "only %d WATCHDOG=1 in one second with WATCHDOG_USEC=400000", watchdogs);

        got[0] = '\0';
        emo_test_daemon_signal(&d, SIGTERM);
        cr_assert(collect(fd, got, sizeof(got), "STOPPING=1", 5000), "no STOPPING=1 after SIGTERM; got:\n%s", got);
        cr_assert_eq(emo_test_daemon_wait(&d, 30000), 0, "daemon did not exit 0 after SIGTERM");
        emo_test_daemon_cleanup(&d);
        notify_socket_close(fd, dir, &sa);
}

/* An endpoint list of separators only (`-e ,`, or $EMOTIOND_ENDPOINT=, which the configuration
 * check does not see) binds nothing: the daemon must refuse to start, saying why, and never tell
 * systemd READY=1 while nobody can reach it. */
Test(notify, no_ready_without_an_endpoint) {
        char dir[] = "/tmp/emotiond-notify-XXXXXX";
        struct sockaddr_un sa;
        int fd = notify_socket(dir, &sa);
        char notify_env[160];
        snprintf(notify_env, sizeof(notify_env), "NOTIFY_SOCKET=%s", sa.sun_path);
        _cleanup_free_ char *dialogue = emo_test_join(emo_test_source_dir(), "deploy/dialogue");

        static const struct {
                const char *option; /* -e value, or NULL */
                const char *env;    /* EMOTIOND_ENDPOINT value, or NULL */
        } cases[] = { { ",", NULL }, { " , ", NULL }, { NULL, "," } };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *argv[16] = { emo_test_emotiond(), "--model", emo_test_model(), "--yunet-model",
                                         emo_test_yunet(), "--dialogue-dir", dialogue, "-w", "1" };
                size_t n = 9;
                if (cases[i].option) {
                        argv[n++] = "-e";
                        argv[n++] = cases[i].option;
                }
                argv[n] = NULL;
                char endpoint_env[64];
                snprintf(endpoint_env, sizeof(endpoint_env), "EMOTIOND_ENDPOINT=%s", cases[i].env ? cases[i].env : "");
                const char *const env[] = { notify_env, endpoint_env, NULL };
                char what[64];
                snprintf(what, sizeof(what), cases[i].option ? "-e '%s'" : "EMOTIOND_ENDPOINT='%s'",
                         cases[i].option ? cases[i].option : cases[i].env);
                emo_test_run_t r;
                emo_test_run(argv, env, 8000, &r);
                static char got[1 << 16];
                got[0] = '\0';
                collect(fd, got, sizeof(got), "READY=1", 100);
                cr_expect_null(strstr(got, "READY=1"), "%s: READY=1 sent with no endpoint bound; got:\n%s", what, got);
                cr_expect_neq(r.status, -1, "%s: emotiond kept running without an endpoint (killed after 8 s)", what);
                cr_expect(r.status > 0 && r.status < 128, "%s: emotiond exited with %d", what, r.status);
                cr_expect_not_null(strstr(r.err, "no endpoint"), "%s: stderr does not say what is wrong:\n%s", what,
                                   r.err);
                emo_test_run_done(&r);
        }
        notify_socket_close(fd, dir, &sa);
}
