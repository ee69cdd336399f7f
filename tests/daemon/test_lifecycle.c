/* The daemon as an operator meets it: -V, --check binding the endpoints for real, the ipc socket
 * file removed on exit, journal priority prefixes only when stderr is the journal, and systemd
 * socket activation through systemd-socket-activate (the tool systemd ships to pass listening
 * sockets as PID 1 would: $LISTEN_FDS, $LISTEN_PID, fds from 3), with the real client. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/util.h"

TestSuite(lifecycle, .timeout = 120);
TestSuite(activation, .timeout = 180);

/* ---- helpers ------------------------------------------------------------------------------------ */

static char *dialogue_dir(void) {
        return emo_test_join(emo_test_source_dir(), "deploy/dialogue");
}

/* argv for emotiond with the test model, detector and dialogue, one worker, then extra (NULL-
 * terminated), in argv (64 entries). */
static void daemon_argv(const char **argv, const char *dialogue, const char *const *extra) {
        const char *base[] = { emo_test_emotiond(), "--model", emo_test_model(), "--detector", "yunet",
                               "--yunet-model", emo_test_yunet(), "--dialogue-dir", dialogue, "--device", "cpu",
                               "-w", "1" };
        size_t n = 0;
        for (; n < ELEMENTSOF(base); n++)
                argv[n] = base[n];
        for (const char *const *a = extra; a && *a; a++)
                argv[n++] = *a;
        argv[n] = NULL;
}

/* Start argv (argv[0] a path) with stdin from /dev/null and stdout and stderr appended to log, the
 * NULL-terminated "NAME=value" entries of env added to its environment. */
static pid_t spawn(const char *const *argv, const char *log, const char *const *env) {
        pid_t pid = fork();
        cr_assert(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int in = open("/dev/null", O_RDONLY), out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
                dup2(in, 0);
                dup2(out, 1);
                dup2(out, 2);
                for (const char *const *e = env; e && *e; e++)
                        putenv((char *) *e);
                execv(argv[0], (char *const *) argv);
                fprintf(stderr, "cannot execute %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        return pid;
}

/* Exit status (128 + signal when killed by one), or -1 when still running after timeout_ms (then
 * it is killed). */
static int wait_for(pid_t pid, int timeout_ms) {
        int64_t deadline = emo_now_us() + (int64_t) timeout_ms * 1000;
        for (;;) {
                int status;
                pid_t r = waitpid(pid, &status, WNOHANG);
                if (r == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                if (emo_now_us() > deadline) {
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        return -1;
                }
                usleep(20000);
        }
}

static char *slurp(const char *path) {
        size_t len;
        char *s = emo_test_read_file(path, &len);
        return s;
}

static bool is_socket(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Run `emotiond ... --check -e endpoints` and return the run (caller frees). */
static void run_check(const char *endpoints, emo_test_run_t *r) {
        _cleanup_free_ char *dialogue = dialogue_dir();
        /* What is checked here is binding: tcp:// in plaintext (test_curve.c checks CURVE). */
        const char *extra[] = { "--check", "--endpoint", endpoints, "--set", "insecure_tcp=true", NULL };
        const char *argv[64];
        daemon_argv(argv, dialogue, extra);
        emo_test_run(argv, NULL, 60000, r);
}

/* ---- lifecycle ---------------------------------------------------------------------------------- */

Test(lifecycle, version_short_and_long) {
        const char *options[] = { "-V", "--version" };
        for (size_t i = 0; i < ELEMENTSOF(options); i++) {
                const char *argv[] = { emo_test_emotiond(), options[i], NULL };
                emo_test_run_t r;
                emo_test_run(argv, NULL, 10000, &r);
                cr_assert_eq(r.status, 0, "emotiond %s exited %d: %s", options[i], r.status, r.err);
                cr_assert_str_eq(r.out, "emotiond " PROJECT_VERSION_STRING "\n", "emotiond %s printed '%s'", options[i],
                                 r.out);
                emo_test_run_done(&r);
        }
}

Test(lifecycle, ipc_socket_file_removed_on_exit) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        const char *path = d.endpoint + strlen("ipc://");
        cr_assert(is_socket(path), "no socket file at %s while the daemon runs", path);
        /* Not emo_test_daemon_stop(), which removes the folder. */
        emo_test_daemon_signal(&d, SIGTERM);
        cr_assert_eq(emo_test_daemon_wait(&d, 30000), 0, "emotiond did not exit 0 after SIGTERM");
        bool left = access(path, F_OK) == 0;
        emo_test_daemon_cleanup(&d);
        cr_assert_not(left, "%s is still there after the daemon exited", path);
}

/* A module's reason for failing reaches --check's stderr whole, under the daemon's own words: the
 * detector that does not load, the model card that does not parse (docs/architecture.md, Errors). */
Test(lifecycle, check_gives_the_reason_a_detector_or_model_fails) {
        _cleanup_free_ char *dialogue = dialogue_dir();
        char card[] = "/tmp/emo-card-XXXXXX.json";
        int fd = mkstemps(card, 5);
        cr_assert(fd >= 0 && write(fd, "{ \"format\": ", 12) == 12);
        close(fd);
        struct {
                const char *extra[8];
                const char *want;
        } cases[] = {
                { { "--check", "--detector", "blazeface", "--blazeface-model", "/nonexistent/bf.onnx", NULL },
                  "Failed to load blazeface detector /nonexistent/bf.onnx: " },
                { { "--check", "--model", card, NULL }, "Failed to load the model: " },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *argv[64];
                daemon_argv(argv, dialogue, cases[i].extra);
                emo_test_run_t r;
                emo_test_run(argv, NULL, 60000, &r);
                cr_expect(r.status > 0 && r.status < 128, "case %zu exited %d:\n%s", i, r.status, r.err);
                const char *at = strstr(r.err, cases[i].want);
                cr_expect_not_null(at, "stderr should say '%s':\n%s", cases[i].want, r.err);
                /* ... followed by the module's message, not an empty one. */
                if (at)
                        cr_expect(strlen(at + strlen(cases[i].want)) > 4, "no reason after '%s':\n%s", cases[i].want,
                                  r.err);
                if (i == 1 && at)
                        cr_expect_not_null(strstr(at, card), "the message should name %s:\n%s", card, r.err);
                cr_expect_null(strstr(r.out, "configuration OK"), "%s", r.out);
                emo_test_run_done(&r);
        }
        unlink(card);
}

Test(lifecycle, check_rejects_a_port_in_use) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        cr_assert(bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 && listen(fd, 1) == 0 &&
                  getsockname(fd, (struct sockaddr *) &sa, &len) == 0);
        char ep[64], want[128];
        snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%u", ntohs(sa.sin_port));
        snprintf(want, sizeof(want), "Failed to bind %s: Address already in use", ep);
        emo_test_run_t r;
        run_check(ep, &r);
        close(fd);
        cr_assert(r.status > 0 && r.status < 128, "--check with %s in use exited %d:\n%s%s", ep, r.status, r.out, r.err);
        cr_assert(strstr(r.err, want), "stderr should say '%s':\n%s", want, r.err);
        cr_assert_null(strstr(r.out, "configuration OK"), "%s", r.out);
        emo_test_run_done(&r);
}

Test(lifecycle, check_rejects_unusable_ipc_endpoints) {
        char dir[] = "/tmp/emotiond-check.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char file[96], ep[160];
        snprintf(file, sizeof(file), "%s/file", dir);
        FILE *f = fopen(file, "w");
        cr_assert_not_null(f);
        fclose(f);

        /* A folder that cannot be made: a file stands where it would go. */
        snprintf(ep, sizeof(ep), "ipc://%s/sock/emotiond.sock", file);
        emo_test_run_t r;
        run_check(ep, &r);
        cr_assert(r.status > 0 && r.status < 128, "--check with %s exited %d:\n%s", ep, r.status, r.err);
        cr_assert(strstr(r.err, ep) && strstr(r.err, "is not a folder"), "stderr should name %s and why:\n%s", ep, r.err);
        emo_test_run_done(&r);

        /* A folder this user may not write in (root may write anywhere: not testable as root). */
        if (geteuid() != 0) {
                char ro[96];
                snprintf(ro, sizeof(ro), "%s/ro", dir);
                cr_assert(mkdir(ro, 0500) == 0);
                snprintf(ep, sizeof(ep), "ipc://%s/sub/emotiond.sock", ro);
                run_check(ep, &r);
                cr_assert(r.status > 0 && r.status < 128 && strstr(r.err, "Permission denied"),
                          "--check with %s exited %d:\n%s", ep, r.status, r.err);
                emo_test_run_done(&r);
                rmdir(ro);
        }

        /* Where another daemon serves. */
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        run_check(d.endpoint, &r);
        cr_assert(r.status > 0 && r.status < 128, "--check on a live daemon's endpoint exited %d", r.status);
        cr_assert(strstr(r.err, "another emotiond is serving there"), "%s", r.err);
        emo_test_run_done(&r);
        emo_test_health(d.endpoint); /* and the live daemon was left alone */
        emo_test_daemon_stop(&d);
        emo_test_daemon_cleanup(&d);
        unlink(file);
        rmdir(dir);
}

Test(lifecycle, check_accepts_free_endpoints_and_leaves_nothing) {
        char dir[] = "/tmp/emotiond-check.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char sock[96], sub[96], eps[320];
        snprintf(sock, sizeof(sock), "%s/emotiond.sock", dir);
        snprintf(sub, sizeof(sub), "%s/sub", dir);
        unsigned port = emo_test_free_port();
        snprintf(eps, sizeof(eps), "ipc://%s,ipc://%s/emotiond.sock,tcp://127.0.0.1:%u", sock, sub, port);
        emo_test_run_t r;
        run_check(eps, &r);
        cr_assert_eq(r.status, 0, "--check with %s exited %d:\n%s", eps, r.status, r.err);
        cr_assert(strstr(r.out, "can be bound") && strstr(r.out, "configuration OK"), "%s", r.out);
        emo_test_run_done(&r);
        cr_assert(access(sock, F_OK) < 0, "--check left %s behind", sock);
        cr_assert(access(sub, F_OK) < 0, "--check made the folder %s", sub);
        /* The port was given back. */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0, "port %u still taken after --check: %m", port);
        close(fd);
        rmdir(dir);
}

/* systemd puts "DEV:INO" of the journal stream it connected to stderr in $JOURNAL_STREAM. The
 * daemon prefixes priorities when its stderr is that stream, and only then. */
Test(lifecycle, priority_prefixes_only_on_the_journal_stream) {
        char dir[] = "/tmp/emotiond-journal.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char log[96], other[96];
        snprintf(log, sizeof(log), "%s/stderr", dir);
        snprintf(other, sizeof(other), "%s/other", dir);
        _cleanup_free_ char *dialogue = dialogue_dir();
        const char *extra[] = { "--model", "/nonexistent/emonet.json", NULL }; /* fails at once, with an error */
        const char *argv[64];
        daemon_argv(argv, dialogue, extra);

        for (int journal = 1; journal >= 0; journal--) {
                close(open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644));
                close(open(other, O_WRONLY | O_CREAT | O_TRUNC, 0644));
                struct stat st;
                cr_assert(stat(journal ? log : other, &st) == 0);
                char env[96];
                snprintf(env, sizeof(env), "JOURNAL_STREAM=%llu:%llu", (unsigned long long) st.st_dev,
                         (unsigned long long) st.st_ino);
                const char *const envs[] = { env, NULL };
                int status = wait_for(spawn(argv, log, envs), 30000);
                _cleanup_free_ char *out = slurp(log);
                cr_assert(status > 0 && status < 128, "emotiond with a missing model exited %d:\n%s", status, out);
                if (journal)
                        cr_assert(strstr(out, SD_ERR "Failed to load the model"),
                                  "stderr is the journal stream (%s): the error should start with <3>:\n%s", env, out);
                else {
                        cr_assert(strstr(out, "Failed to load the model"), "%s", out);
                        cr_assert(!strchr(out, '<'), "stderr is not the journal stream named by %s, yet a line carries "
                                  "a priority prefix:\n%s", env, out);
                }
        }
        unlink(log);
        unlink(other);
        rmdir(dir);
}

/* ---- activation --------------------------------------------------------------------------------- */

typedef struct activated {
        char dir[64];
        char passed[96];    /* the ipc socket systemd-socket-activate listens on */
        char configured[128]; /* the daemon's --endpoint */
        char log[96];
        pid_t pid; /* systemd-socket-activate, then (exec) emotiond */
} activated_t;

/* systemd-socket-activate -l DIR/passed.sock [-l listen2] emotiond --endpoint E, E being the
 * passed socket's endpoint, or with own, ipc://DIR/own.sock; returns once the passed socket exists
 * (systemd-socket-activate starts the daemon at the first connection). */
static void activate(activated_t *a, const char *listen2, bool own) {
        snprintf(a->dir, sizeof(a->dir), "/tmp/emotiond-act.XXXXXX");
        cr_assert_not_null(mkdtemp(a->dir));
        snprintf(a->passed, sizeof(a->passed), "%s/passed.sock", a->dir);
        snprintf(a->log, sizeof(a->log), "%s/log", a->dir);
        if (own)
                snprintf(a->configured, sizeof(a->configured), "ipc://%s/own.sock", a->dir);
        else
                snprintf(a->configured, sizeof(a->configured), "ipc://%s", a->passed);
        _cleanup_free_ char *dialogue = dialogue_dir();
        const char *argv[64] = { EMO_TEST_SOCKET_ACTIVATE, "-l", a->passed };
        size_t n = 3;
        if (listen2) {
                argv[n++] = "-l";
                argv[n++] = listen2;
        }
        /* Plaintext for the passed tcp socket: the point is which sockets are served. */
        const char *extra[] = { "--endpoint", a->configured, "--set", "insecure_tcp=true", NULL };
        daemon_argv(argv + n, dialogue, extra);
        a->pid = spawn(argv, a->log, NULL);
        for (int i = 0; i < 250 && !is_socket(a->passed); i++)
                usleep(20000);
        cr_assert(is_socket(a->passed), "systemd-socket-activate made no socket %s", a->passed);
}

/* The real client over endpoint: an analysed face, exit 0. */
static void analyze_over(const activated_t *a, const char *endpoint) {
        _cleanup_free_ char *image = emo_test_fixture("one_face.jpg");
        const char *argv[] = { emo_test_emotion(), "analyze", "--json", "--server", endpoint, "--timeout", "60000",
                               "--attempts", "1", image, NULL };
        emo_test_run_t r;
        emo_test_run(argv, NULL, 90000, &r);
        _cleanup_free_ char *log = slurp(a->log);
        cr_assert_eq(r.status, 0, "emotion analyze over %s exited %d:\n%s\ndaemon:\n%s", endpoint, r.status, r.err, log);
        cr_assert(strstr(r.out, "\"emotion\""), "no face analysed over %s:\n%s", endpoint, r.out);
        emo_test_run_done(&r);
}

static void stop_activated(activated_t *a) {
        kill(a->pid, SIGTERM);
        int status = wait_for(a->pid, 30000);
        _cleanup_free_ char *log = slurp(a->log);
        cr_assert_eq(status, 0, "emotiond exited %d after SIGTERM:\n%s", status, log);
}

static void remove_activated(activated_t *a) {
        char own[128];
        snprintf(own, sizeof(own), "%s/own.sock", a->dir);
        unlink(own);
        unlink(a->passed);
        unlink(a->log);
        rmdir(a->dir);
}

/* The configured endpoint is the passed socket's: the daemon must serve systemd's socket rather
 * than bind its own there (a daemon that ignored $LISTEN_FDS would find the path answering and
 * refuse to start), count its connections, and leave the socket file to systemd on exit. */
Test(activation, serves_the_socket_systemd_passes) {
        activated_t a;
        activate(&a, NULL, false);
        char ep[128];
        snprintf(ep, sizeof(ep), "ipc://%s", a.passed);
        analyze_over(&a, ep);
        emo_reply_t *h = emo_test_health(ep);
        /* The connection guard sees connections on systemd's socket: this client's own. */
        cr_assert_eq(h->health->connections, 1, "health counts %u connections on the passed socket",
                     h->health->connections);
        emo_reply_free(h);
        _cleanup_free_ char *log = slurp(a.log);
        char want[160];
        snprintf(want, sizeof(want), "Serving on %s (from systemd)", ep);
        cr_assert(strstr(log, want), "the log should say '%s':\n%s", want, log);
        stop_activated(&a);
        cr_assert(is_socket(a.passed), "the daemon removed the socket file systemd owns");
        remove_activated(&a);
}

/* Every socket systemd passes is served (here a TCP port the configuration does not name), and
 * the configured endpoint they do not cover is bound as by hand, and removed on exit. */
Test(activation, serves_passed_sockets_and_binds_the_rest) {
        unsigned port = emo_test_free_port();
        char listen2[32], tcp[48];
        snprintf(listen2, sizeof(listen2), "127.0.0.1:%u", port);
        snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%u", port);
        activated_t a;
        activate(&a, listen2, true);
        char passed[128];
        snprintf(passed, sizeof(passed), "ipc://%s", a.passed);
        analyze_over(&a, passed); /* starts the daemon */
        analyze_over(&a, tcp);
        analyze_over(&a, a.configured);
        _cleanup_free_ char *log = slurp(a.log);
        char want[400];
        snprintf(want, sizeof(want), "Serving on %s (from systemd), %s (from systemd), %s with", passed, tcp,
                 a.configured);
        cr_assert(strstr(log, want), "the log should say '%s':\n%s", want, log);
        stop_activated(&a);
        cr_assert(is_socket(a.passed), "the daemon removed the socket file systemd owns");
        cr_assert(access(a.configured + strlen("ipc://"), F_OK) < 0, "the daemon left its own socket file %s",
                  a.configured);
        remove_activated(&a);
}
