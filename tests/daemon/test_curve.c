/* CURVE on tcp://, as an operator and a client meet it: certificates made by `emotion keygen`, a
 * real daemon on a loopback port and an ipc socket, and the real client library, whose socket
 * monitor turns a refused handshake into an error instead of a timeout. */
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
#include <unistd.h>

#include "daemon.h"
#include "emo/util.h"

TestSuite(curve, .timeout = 120);

/* A daemon of this suite's own: emo_test_daemon_start binds an ipc endpoint only. */
typedef struct curve_daemon {
        char dir[64];
        char ipc[128], tcp[64];
        char log[128];
        char server_cert[128], clients[128];
        char alice[128], bob[128];       /* client certificates (public file; NAME_secret beside) */
        char alice_key[64], bob_key[64]; /* their public keys, as keygen printed them */
        char server_key[64];
        pid_t pid;
} curve_daemon_t;

/* `emotion keygen path`; its public key (stdout) into key. */
static void keygen(const char *path, char *key, size_t keylen) {
        const char *argv[] = { emo_test_emotion(), "keygen", path, NULL };
        emo_test_run_t r;
        emo_test_run(argv, NULL, 10000, &r);
        cr_assert_eq(r.status, 0, "emotion keygen %s exited %d: %s", path, r.status, r.err);
        r.out[strcspn(r.out, "\n")] = '\0';
        cr_assert_eq(strlen(r.out), 40, "keygen should print a Z85 key, got '%s'", r.out);
        snprintf(key, keylen, "%s", r.out);
        emo_test_run_done(&r);
        char secret[160];
        snprintf(secret, sizeof(secret), "%s_secret", path);
        struct stat st;
        cr_assert(stat(secret, &st) == 0 && (st.st_mode & 077) == 0, "%s should exist, readable by its owner only",
                  secret);
}

static void setup_keys(curve_daemon_t *d) {
        *d = (curve_daemon_t) { 0 };
        snprintf(d->dir, sizeof(d->dir), "/tmp/emotiond-curve.XXXXXX");
        cr_assert(mkdtemp(d->dir));
        snprintf(d->ipc, sizeof(d->ipc), "ipc://%s/emotiond.sock", d->dir);
        snprintf(d->tcp, sizeof(d->tcp), "tcp://127.0.0.1:%u", emo_test_free_port());
        snprintf(d->log, sizeof(d->log), "%s/stderr.log", d->dir);
        snprintf(d->server_cert, sizeof(d->server_cert), "%s/server.cert", d->dir);
        snprintf(d->clients, sizeof(d->clients), "%s/clients.d", d->dir);
        snprintf(d->alice, sizeof(d->alice), "%s/alice", d->dir);
        snprintf(d->bob, sizeof(d->bob), "%s/bob", d->dir);
        cr_assert_eq(mkdir(d->clients, 0755), 0);
        keygen(d->server_cert, d->server_key, sizeof(d->server_key));
        keygen(d->alice, d->alice_key, sizeof(d->alice_key));
        keygen(d->bob, d->bob_key, sizeof(d->bob_key));
        /* Only alice's public certificate is allowed. */
        char allowed[160];
        snprintf(allowed, sizeof(allowed), "%s/alice", d->clients);
        cr_assert_eq(link(d->alice, allowed), 0);
        unsetenv("EMOTIOND_SERVER_KEY");
        unsetenv("EMOTIOND_CERT");
}

static void daemon_argv(const curve_daemon_t *d, const char **argv, const char *dialogue, char *eps, size_t epslen,
                        const char *const *extra) {
        snprintf(eps, epslen, "%s,%s", d->ipc, d->tcp);
        const char *base[] = { emo_test_emotiond(), "--endpoint", eps, "--model", emo_test_model(), "--detector",
                               "yunet", "--yunet-model", emo_test_yunet(), "--dialogue-dir", dialogue, "--device",
                               "cpu", "-w", "1", "--set", "clients_dir", "--set", "server_cert", "-v" };
        size_t n = 0;
        for (; n < ELEMENTSOF(base); n++)
                argv[n] = base[n];
        static char clients_set[200], cert_set[200];
        snprintf(clients_set, sizeof(clients_set), "clients_dir=%s", d->clients);
        snprintf(cert_set, sizeof(cert_set), "server_cert=%s", d->server_cert);
        argv[16] = clients_set;
        argv[18] = cert_set;
        for (; extra && *extra; extra++)
                argv[n++] = *extra;
        argv[n] = NULL;
}

/* Start the daemon on d->ipc and d->tcp, and wait until it answers on ipc. */
static void start(curve_daemon_t *d, const char *const *extra) {
        _cleanup_free_ char *dialogue = emo_test_join(emo_test_source_dir(), "deploy/dialogue");
        const char *argv[64];
        char eps[200];
        daemon_argv(d, argv, dialogue, eps, sizeof(eps), extra);
        int log = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert(log >= 0);
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int devnull = open("/dev/null", O_RDWR);
                dup2(devnull, 0);
                dup2(devnull, 1);
                dup2(log, 2);
                unsetenv("NOTIFY_SOCKET");
                unsetenv("WATCHDOG_USEC");
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
        close(log);
        d->pid = pid;
        for (int i = 0; i < 120; i++) {
                int ws;
                if (waitpid(pid, &ws, WNOHANG) == pid) {
                        d->pid = 0;
                        _cleanup_free_ char *text = emo_test_read_file(d->log, NULL);
                        cr_assert_fail("emotiond exited during startup:\n%s", text);
                }
                emo_reply_t *h = emo_test_try_health(d->ipc, 250);
                if (h) {
                        emo_reply_free(h);
                        return;
                }
        }
        cr_assert_fail("emotiond did not answer on %s", d->ipc);
}

/* Stop the daemon (if any) and remove the folder. */
static void stop(curve_daemon_t *d) {
        if (d->pid > 0) {
                kill(d->pid, SIGTERM);
                waitpid(d->pid, NULL, 0);
                d->pid = 0;
        }
        const char *files[] = { "clients.d/alice", "stderr.log", "emotiond.sock", "server.cert", "server.cert_secret",
                                "alice", "alice_secret", "bob", "bob_secret" };
        char path[200];
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(path, sizeof(path), "%s/%s", d->dir, files[i]);
                unlink(path);
        }
        rmdir(d->clients);
        rmdir(d->dir);
}

static char *daemon_log(const curve_daemon_t *d) {
        return emo_test_read_file(d->log, NULL);
}

static size_t count(const char *haystack, const char *needle) {
        size_t n = 0;
        for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* A health request from client c, one attempt of timeout_ms. The call's result. */
static int health_on(emo_client_t *c, int timeout_ms) {
        emo_health_request_t hr = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &hr;
        emo_reply_t *reply = NULL;
        int r = emo_client_call(c, &req, timeout_ms, 1, &reply);
        if (r == 0) {
                cr_assert_eq(reply->status, EMOTION__V1__STATUS__OK);
                emo_reply_free(reply);
        }
        return r;
}

static emo_client_t *client(const char *ep, const char *server_key, const char *cert) {
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(ep, &c), 0);
        if (server_key)
                cr_assert_eq(emo_client_set_curve(c, server_key, cert), 0, "cannot use key %s / %s", server_key,
                             cert ? cert : "(none)");
        return c;
}

Test(curve, allowed_key_is_served_and_ipc_needs_no_key) {
        curve_daemon_t d;
        setup_keys(&d);
        start(&d, NULL);
        /* The key as Z85 and as the server's public certificate file both work. */
        emo_client_t *c = client(d.tcp, d.server_key, d.alice);
        cr_expect_eq(health_on(c, 10000), 0);
        emo_client_free(c);
        char alice_secret[160];
        snprintf(alice_secret, sizeof(alice_secret), "%s_secret", d.alice);
        c = client(d.tcp, d.server_cert, alice_secret);
        cr_expect_eq(health_on(c, 10000), 0);
        emo_client_free(c);
        c = client(d.ipc, NULL, NULL);
        cr_expect_eq(health_on(c, 10000), 0, "ipc:// must stay without CURVE");
        emo_client_free(c);
        /* The CLI, with the key from the environment and the certificate from an option. */
        const char *argv[] = { emo_test_emotion(), "--server", d.tcp, "--cert", d.alice, "health", NULL };
        char env_key[100];
        snprintf(env_key, sizeof(env_key), "EMOTIOND_SERVER_KEY=%s", d.server_key);
        emo_test_run_t r;
        emo_test_run(argv, (const char *const[]) { env_key, NULL }, 30000, &r);
        cr_expect_eq(r.status, 0, "emotion health over CURVE exited %d: %s", r.status, r.err);
        emo_test_run_done(&r);
        /* emotiond --print-public-key says the key clients need. */
        char set[200];
        snprintf(set, sizeof(set), "server_cert=%s", d.server_cert);
        const char *pk[] = { emo_test_emotiond(), "--set", set, "--print-public-key", NULL };
        emo_test_run(pk, NULL, 10000, &r);
        cr_expect_eq(r.status, 0, "%s", r.err);
        cr_expect(strncmp(r.out, d.server_key, 40) == 0, "--print-public-key printed '%s', want %s", r.out,
                  d.server_key);
        emo_test_run_done(&r);
        stop(&d);
}

Test(curve, unknown_key_is_refused_at_once_and_logged_once) {
        curve_daemon_t d;
        setup_keys(&d);
        start(&d, NULL);
        /* Twice, from the same address: refused quickly both times (not after the 8 s timeout). */
        for (int i = 0; i < 2; i++) {
                emo_client_t *c = client(d.tcp, d.server_key, d.bob);
                int64_t t0 = emo_now_us();
                int r = health_on(c, 8000);
                double s = (double) (emo_now_us() - t0) / 1e6;
                cr_expect_eq(r, -EACCES, "an unknown key should be refused (-EACCES), got %d (%s)", r,
                             emo_client_strerror(r));
                cr_expect_lt(s, 3.0, "the refusal took %.1f s: it should come from the handshake, not a timeout", s);
                cr_expect(strstr(emo_client_strerror(r), "refused this client's CURVE key"), "%s",
                          emo_client_strerror(r));
                emo_client_free(c);
        }
        /* The CLI says so and exits non-zero. */
        const char *argv[] = { emo_test_emotion(), "--server", d.tcp, "--server-key", d.server_key, "--cert", d.bob,
                               "--timeout", "8000", "health", NULL };
        emo_test_run_t r;
        emo_test_run(argv, NULL, 30000, &r);
        cr_expect_neq(r.status, 0);
        cr_expect(strstr(r.err, "refused this client's CURVE key"), "stderr: %s", r.err);
        cr_expect_lt(r.seconds, 4.0, "emotion health took %.1f s to report the refusal", r.seconds);
        emo_test_run_done(&r);
        /* watch too: its first send must not wait for a peer that will never come. */
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        const char *wargv[] = { emo_test_emotion(), "--server", d.tcp, "--server-key", d.server_key, "--cert", d.bob,
                                "watch", "--max-frames", "2", video, NULL };
        emo_test_run(wargv, NULL, 30000, &r);
        cr_expect_eq(r.status, 3, "emotion watch with an unknown key exited %d", r.status);
        cr_expect(strstr(r.err, "refused this client's CURVE key"), "stderr: %s", r.err);
        cr_expect_lt(r.seconds, 4.0, "emotion watch took %.1f s to report the refusal", r.seconds);
        emo_test_run_done(&r);
        /* Without a certificate of its own (a throwaway key), refused too. */
        emo_client_t *c = client(d.tcp, d.server_key, NULL);
        cr_expect_eq(health_on(c, 8000), -EACCES);
        emo_client_free(c);
        usleep(200 * 1000);
        _cleanup_free_ char *log = daemon_log(&d);
        char want[200];
        snprintf(want, sizeof(want), "Refused a connection from 127.0.0.1: unknown client key, public key %s",
                 d.bob_key);
        cr_expect_eq(count(log, want), 1, "the daemon should log '%s' once (libzmq retries, we connected 4 times):\n%s",
                     want, log);
        stop(&d);
}

Test(curve, wrong_server_key_or_no_curve_is_a_clear_error) {
        curve_daemon_t d;
        setup_keys(&d);
        start(&d, NULL);
        /* bob's public key stands for a server key that is not this daemon's. */
        emo_client_t *c = client(d.tcp, d.bob_key, d.alice);
        int64_t t0 = emo_now_us();
        int r = health_on(c, 8000);
        cr_expect_eq(r, -EKEYREJECTED, "wrong server key: got %d (%s)", r, emo_client_strerror(r));
        cr_expect_lt(emo_now_us() - t0, 3000000);
        emo_client_free(c);
        /* A plaintext client on a CURVE endpoint. */
        c = client(d.tcp, NULL, NULL);
        r = health_on(c, 8000);
        cr_expect_eq(r, -EPROTONOSUPPORT, "plaintext client: got %d (%s)", r, emo_client_strerror(r));
        emo_client_free(c);
        stop(&d);
}

Test(curve, sighup_revokes_a_removed_key_but_keeps_open_connections) {
        curve_daemon_t d;
        setup_keys(&d);
        start(&d, NULL);
        emo_client_t *kept = client(d.tcp, d.server_key, d.alice);
        cr_assert_eq(health_on(kept, 10000), 0);
        /* Removed without SIGHUP: nothing changes yet. */
        char allowed[160];
        snprintf(allowed, sizeof(allowed), "%s/alice", d.clients);
        cr_assert_eq(unlink(allowed), 0);
        emo_client_t *c = client(d.tcp, d.server_key, d.alice);
        cr_expect_eq(health_on(c, 10000), 0, "the folder is read at SIGHUP, not before");
        emo_client_free(c);
        kill(d.pid, SIGHUP);
        _cleanup_free_ char *log = NULL;
        for (int i = 0; i < 100; i++) {
                free(log);
                log = daemon_log(&d);
                if (strstr(log, "Received SIGHUP: 0 CURVE client key(s) allowed"))
                        break;
                usleep(50 * 1000);
        }
        cr_assert(strstr(log, "Received SIGHUP: 0 CURVE client key(s) allowed"), "%s", log);
        c = client(d.tcp, d.server_key, d.alice);
        int r = health_on(c, 8000);
        cr_expect_eq(r, -EACCES, "after SIGHUP alice's new connection should be refused, got %d", r);
        emo_client_free(c);
        /* The connection made before keeps its service. */
        cr_expect_eq(health_on(kept, 10000), 0, "the open connection was dropped by the reload");
        emo_client_free(kept);
        /* And the key put back is allowed again after the next SIGHUP. */
        cr_assert_eq(link(d.alice, allowed), 0);
        kill(d.pid, SIGHUP);
        usleep(500 * 1000);
        c = client(d.tcp, d.server_key, d.alice);
        cr_expect_eq(health_on(c, 10000), 0);
        emo_client_free(c);
        stop(&d);
}

/* tcp:// without a certificate is a startup error, and --check says so; insecure_tcp allows it
 * with a warning. */
Test(curve, plaintext_tcp_needs_insecure_tcp) {
        curve_daemon_t d;
        setup_keys(&d);
        _cleanup_free_ char *dialogue = emo_test_join(emo_test_source_dir(), "deploy/dialogue");
        char missing[160];
        snprintf(missing, sizeof(missing), "server_cert=%s/nothing-here", d.dir);
        const char *modes[][4] = { { "--check", "--set", missing, NULL }, { "--set", missing, NULL } };
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                const char *argv[64];
                char eps[200];
                daemon_argv(&d, argv, dialogue, eps, sizeof(eps), modes[i]);
                emo_test_run_t r;
                emo_test_run(argv, NULL, 60000, &r);
                cr_expect(r.status > 0 && r.status < 128, "%s exited %d", modes[i][0], r.status);
                cr_expect(strstr(r.err, "Refusing to serve tcp://127.0.0.1:") && strstr(r.err, "insecure_tcp = true"),
                          "%s: stderr should say why:\n%s", modes[i][0], r.err);
                emo_test_run_done(&r);
        }
        const char *insecure[] = { "--check", "--set", missing, "--set", "insecure_tcp=true", NULL };
        const char *argv[64];
        char eps[200];
        daemon_argv(&d, argv, dialogue, eps, sizeof(eps), insecure);
        emo_test_run_t r;
        emo_test_run(argv, NULL, 60000, &r);
        cr_expect_eq(r.status, 0, "%s", r.err);
        cr_expect(strstr(r.err, "insecure_tcp is on"), "the warning is missing:\n%s", r.err);
        emo_test_run_done(&r);
        /* With the certificate, --check names the key. */
        daemon_argv(&d, argv, dialogue, eps, sizeof(eps), (const char *const[]) { "--check", NULL });
        emo_test_run(argv, NULL, 60000, &r);
        cr_expect_eq(r.status, 0, "%s", r.err);
        cr_expect(strstr(r.out, d.server_key), "--check should show the server key:\n%s", r.out);
        emo_test_run_done(&r);
        stop(&d);
}

/* A tcp socket passed by systemd (socket activation, here by systemd-socket-activate) speaks CURVE
 * as one the daemon binds itself. */
Test(curve, tcp_socket_from_systemd_gets_curve) {
        curve_daemon_t d;
        setup_keys(&d);
        _cleanup_free_ char *dialogue = emo_test_join(emo_test_source_dir(), "deploy/dialogue");
        char listen[48], eps[200];
        snprintf(listen, sizeof(listen), "%.40s", d.tcp + strlen("tcp://"));
        const char *argv[72] = { EMO_TEST_SOCKET_ACTIVATE, "-l", listen };
        daemon_argv(&d, argv + 3, dialogue, eps, sizeof(eps), NULL);
        int log = open(d.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert(log >= 0);
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                dup2(log, 2);
                unsetenv("NOTIFY_SOCKET");
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
        close(log);
        d.pid = pid;
        /* The first connection starts the daemon. */
        int r = -ETIMEDOUT;
        for (int i = 0; i < 120 && r != 0; i++) {
                emo_client_t *c = client(d.tcp, d.server_key, d.alice);
                r = health_on(c, 1000);
                emo_client_free(c);
        }
        _cleanup_free_ char *text = daemon_log(&d);
        cr_assert_eq(r, 0, "alice got no answer on systemd's socket: %d (%s)\n%s", r, emo_client_strerror(r), text);
        char want[100];
        snprintf(want, sizeof(want), "%s (from systemd)", d.tcp);
        cr_expect(strstr(text, want), "the daemon should serve '%s':\n%s", want, text);
        emo_client_t *c = client(d.tcp, NULL, NULL);
        r = health_on(c, 8000);
        cr_expect_eq(r, -EPROTONOSUPPORT, "a plaintext client on systemd's tcp socket: %d (%s)", r,
                     emo_client_strerror(r));
        emo_client_free(c);
        c = client(d.tcp, d.server_key, d.bob);
        cr_expect_eq(health_on(c, 8000), -EACCES);
        emo_client_free(c);
        stop(&d);
}
