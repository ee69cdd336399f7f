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

Test(notify, ready_status_watchdog_stopping) {
        char dir[] = "/tmp/emotiond-notify-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0, "bind %s: %m", sa.sun_path);
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
        close(fd);
        unlink(sa.sun_path);
        rmdir(dir);
}
