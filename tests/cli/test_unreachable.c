/* With no daemon at the endpoint, the client says so at once, naming the endpoint and how to start
 * one, and exits 3: a missing socket file, a socket file left by a daemon killed with SIGKILL, a
 * TCP port nobody listens on. libzmq alone would retry in silence until every attempt timed out
 * (30 s with the default --timeout 10000 --attempts 3, which these tests keep). */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/util.h"

TestSuite(unreachable, .timeout = 120);

/* The deadline: 1 s, unless the client's own start-up (emotion --help: dynamic loading of
 * FFmpeg's ~200 libraries) already takes over half of it on a loaded machine; then that plus
 * 0.5 s. Without the probe the client would take 30 s. */
static double deadline_s(void) {
        const char *argv[] = { emo_test_emotion(), "--help", NULL };
        emo_test_run_t r;
        emo_test_run(argv, NULL, 30000, &r);
        double startup = r.seconds;
        emo_test_run_done(&r);
        return startup < 0.5 ? 1.0 : startup + 0.5;
}

/* `emotion analyze --server endpoint FILE` with the default timeout and attempts; asserts exit 3
 * within the deadline and a message naming the endpoint, `why` and how to start a daemon. */
static void expect_fast_failure(const char *endpoint, const char *why) {
        char dir[] = "/tmp/emo-unreach.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char image[64];
        snprintf(image, sizeof(image), "%s/photo.jpg", dir);
        FILE *f = fopen(image, "w");
        cr_assert_not_null(f);
        fputs("not read: the client gives up first", f);
        fclose(f);
        double limit = deadline_s();
        const char *argv[] = { emo_test_emotion(), "analyze", "--server", endpoint, image, NULL };
        emo_test_run_t r;
        emo_test_run(argv, (const char *const[]) { "EMOTIOND_ENDPOINT=", NULL }, 60000, &r);
        unlink(image);
        rmdir(dir);
        cr_assert_eq(r.status, 3, "exit %d, expected 3; stderr:\n%s", r.status, r.err);
        cr_assert_lt(r.seconds, limit, "took %.2f s to say there is no daemon (limit %.2f s)", r.seconds, limit);
        cr_assert(strstr(r.err, endpoint), "the message should name %s:\n%s", endpoint, r.err);
        cr_assert(strstr(r.err, why), "the message should say '%s':\n%s", why, r.err);
        char start[192];
        snprintf(start, sizeof(start), "emotiond --endpoint %s", endpoint);
        cr_assert(strstr(r.err, start), "the message should say how to start a daemon ('%s'):\n%s", start, r.err);
        emo_test_run_done(&r);
}

Test(unreachable, no_socket_file) {
        char dir[] = "/tmp/emo-unreach.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char ep[96];
        snprintf(ep, sizeof(ep), "ipc://%s/emotiond.sock", dir);
        expect_fast_failure(ep, "the socket file does not exist");
        rmdir(dir);
}

Test(unreachable, stale_socket_file_of_a_killed_daemon) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        emo_test_daemon_signal(&d, SIGKILL);
        emo_test_daemon_wait(&d, 10000);
        struct stat st;
        cr_assert(stat(d.endpoint + strlen("ipc://"), &st) == 0 && S_ISSOCK(st.st_mode),
                  "a killed daemon should leave its socket file, the case under test");
        expect_fast_failure(d.endpoint, "left from a daemon that no longer runs");
        emo_test_daemon_cleanup(&d);
}

Test(unreachable, closed_tcp_port) {
        /* A port the kernel just handed out and took back: nobody listens there. */
        char ep[64];
        snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%u", emo_test_free_port());
        expect_fast_failure(ep, "connection refused");
}

/* The probe must not stand in the way of a daemon that is there. */
Test(unreachable, live_daemon_answers) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        const char *argv[] = { emo_test_emotion(), "health", "--server", d.endpoint, NULL };
        emo_test_run_t r;
        emo_test_run(argv, NULL, 30000, &r);
        cr_assert_eq(r.status, 0, "health exit %d:\n%s", r.status, r.err);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&d);
}
