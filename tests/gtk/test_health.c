/* The daemon's health in the GTK client without a display: the state machine (UP on any reply,
 * DOWN on a failed probe, recoveries counted, the status line and the banner it gives), and the
 * probes from a GLib main loop against the real daemon: absent at first (the banner within a
 * second), started, killed, started again on the same endpoint (the banner goes by itself). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/util.h"
#include "health.h"
#include "restart.h"

TestSuite(health, .timeout = 30);
TestSuite(health_daemon, .timeout = 120);

static emo_reply_t *health_reply(const char *version, const char *model, unsigned workers) {
        emo_reply_t *r = calloc(1, sizeof(*r));
        emotion__v1__reply__init(r);
        r->status = EMO_STATUS_OK;
        r->body_case = EMOTION__V1__REPLY__BODY_HEALTH;
        r->health = calloc(1, sizeof(*r->health));
        emotion__v1__health_reply__init(r->health);
        r->health->version = strdup(version);
        r->health->model = calloc(1, sizeof(*r->health->model));
        emotion__v1__model_info__init(r->health->model);
        r->health->model->name = strdup(model);
        r->health->detector = strdup("yunet");
        r->health->device = strdup("cpu");
        r->health->workers = workers;
        return r;
}

Test(health, state_follows_probes_and_counts_changes) {
        emo_gtk_health_t *h = emo_gtk_health_new(NULL, NULL, NULL);
        cr_assert_eq(emo_gtk_health_state(h), EMO_GTK_HEALTH_UNKNOWN);
        _cleanup_free_ char *line0 = emo_gtk_health_status_line(h, "ipc:///x");
        cr_assert(strstr(line0, "ipc:///x"), "%s", line0);
        cr_assert_null(emo_gtk_health_banner(h, "ipc:///x"), "no banner before the first probe came back");

        cr_assert(emo_gtk_health_observe(h, NULL, -ENOENT));
        cr_assert_eq(emo_gtk_health_state(h), EMO_GTK_HEALTH_DOWN);
        cr_assert_eq(emo_gtk_health_losses(h), 1);
        _cleanup_free_ char *banner = emo_gtk_health_banner(h, "ipc:///x");
        cr_assert(banner && strstr(banner, "ipc:///x") && strstr(banner, "no socket file") &&
                          strstr(banner, "systemctl start emotiond"),
                  "%s", banner);
        cr_assert_not(emo_gtk_health_observe(h, NULL, -ENOENT), "the same failure again changes nothing");
        cr_assert(emo_gtk_health_observe(h, NULL, -ETIMEDOUT), "another reason is shown");
        _cleanup_free_ char *banner2 = emo_gtk_health_banner(h, "ipc:///x");
        cr_assert(strstr(banner2, "does not answer"), "%s", banner2);
        cr_assert_eq(emo_gtk_health_losses(h), 1, "still the same absence");
        /* On tcp:// a refusal is the daemon's CURVE authentication, not a socket's group. */
        cr_assert(emo_gtk_health_observe(h, NULL, -EACCES));
        _cleanup_free_ char *tcp = emo_gtk_health_banner(h, "tcp://127.0.0.1:5560");
        cr_assert(strstr(tcp, "CURVE key") && !strstr(tcp, "group"), "%s", tcp);
        _cleanup_free_ char *ipc = emo_gtk_health_banner(h, "ipc:///x");
        cr_assert(strstr(ipc, "group emotiond"), "%s", ipc);

        emo_reply_t *r = health_reply("9.8.7", "emonet-test", 3);
        cr_assert(emo_gtk_health_observe(h, r, 0));
        cr_assert_eq(emo_gtk_health_state(h), EMO_GTK_HEALTH_UP);
        cr_assert_eq(emo_gtk_health_recoveries(h), 1);
        cr_assert_null(emo_gtk_health_banner(h, "ipc:///x"));
        _cleanup_free_ char *line = emo_gtk_health_status_line(h, "ipc:///x");
        cr_assert(strstr(line, "9.8.7") && strstr(line, "emonet-test") && strstr(line, "yunet") && strstr(line, "cpu") &&
                          strstr(line, "3 workers"),
                  "%s", line);
        cr_assert_not(emo_gtk_health_observe(h, r, 0), "the same report changes nothing");
        r->health->workers = 4;
        cr_assert(emo_gtk_health_observe(h, r, 0), "new figures are shown");
        emo_reply_free(r);

        /* OVERLOADED: the daemon is there, busy; its figures stay. */
        emo_reply_t busy = EMOTION__V1__REPLY__INIT;
        busy.status = EMO_STATUS_OVERLOADED;
        cr_assert_not(emo_gtk_health_observe(h, &busy, 0));
        cr_assert_eq(emo_gtk_health_state(h), EMO_GTK_HEALTH_UP);
        cr_assert_eq(emo_gtk_health_info(h)->workers, 4);

        /* SHUTTING_DOWN: going away, said as such. */
        busy.status = EMO_STATUS_SHUTTING_DOWN;
        cr_assert(emo_gtk_health_observe(h, &busy, 0));
        cr_assert_eq(emo_gtk_health_state(h), EMO_GTK_HEALTH_DOWN);
        _cleanup_free_ char *stopping = emo_gtk_health_banner(h, "ipc:///x");
        cr_assert(strstr(stopping, "shutting down"), "%s", stopping);
        cr_assert_eq(emo_gtk_health_losses(h), 2);
        cr_assert(emo_gtk_health_observe(h, NULL, -ECONNREFUSED));
        cr_assert_null(emo_gtk_health_info(h), "no figures of a daemon that is gone");
        cr_assert_eq(emo_gtk_health_losses(h), 2, "still the same absence");
        emo_gtk_health_free(h);
}

/* ---- against the real daemon ------------------------------------------------------------------- */

typedef struct watch {
        int changes;
} watch_t;

static void on_change(emo_gtk_health_t *h, void *userdata) {
        (void) h;
        ((watch_t *) userdata)->changes++;
}

static gboolean on_deadline(gpointer userdata) {
        *(bool *) userdata = true;
        return G_SOURCE_REMOVE;
}

/* Run the main loop until h is in state want; the milliseconds it took, or -1 after timeout_ms. */
static int64_t run_until_state(emo_gtk_health_t *h, emo_gtk_health_state_t want, int timeout_ms) {
        int64_t t0 = emo_now_us();
        bool expired = false;
        guint timer = g_timeout_add(timeout_ms, on_deadline, &expired);
        while (emo_gtk_health_state(h) != want && !expired)
                g_main_context_iteration(NULL, TRUE);
        if (!expired)
                g_source_remove(timer);
        return expired ? -1 : (emo_now_us() - t0) / 1000;
}

pid_t emo_gtk_test_start_at(const char *endpoint, const char *log) {
        _cleanup_free_ char *dialogue = emo_test_join(emo_test_source_dir(), "deploy/dialogue");
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                dup2(fd, 2);
                unsetenv("NOTIFY_SOCKET");
                /* tcp:// in plaintext: these tests are about the connection, not CURVE. */
                const char *tcp = strncmp(endpoint, "tcp://", 6) == 0 ? "insecure_tcp=true" : "insecure_tcp=false";
                execl(emo_test_emotiond(), emo_test_emotiond(), "--endpoint", endpoint, "--model", emo_test_model(),
                      "--detector", "yunet", "--yunet-model", emo_test_yunet(), "--dialogue-dir", dialogue, "--device",
                      "cpu", "-w", "1", "--set", tcp, (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 120; i++) {
                emo_reply_t *r = emo_test_try_health(endpoint, 250);
                if (r) {
                        emo_reply_free(r);
                        return pid;
                }
                cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "emotiond exited at start; see %s", log);
        }
        cr_assert_fail("emotiond did not answer within 30 s; see %s", log);
        return -1;
}

Test(health_daemon, banner_comes_and_goes_with_the_daemon) {
        char dir[] = "/tmp/emo-gtk-health.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char ep[128], log[128];
        snprintf(ep, sizeof(ep), "ipc://%s/emotiond.sock", dir);
        snprintf(log, sizeof(log), "%s/stderr.log", dir);
        emo_gtk_connection_t *c = NULL;
        cr_assert_eq(emo_gtk_connection_new(ep, 1000, &c), 0);
        watch_t w = { 0 };
        emo_gtk_health_t *h = emo_gtk_health_new(c, on_change, &w);

        /* Nobody there: said within a second. */
        int64_t ms = run_until_state(h, EMO_GTK_HEALTH_DOWN, 5000);
        cr_assert(ms >= 0 && ms < 1000, "DOWN after %lld ms", (long long) ms);
        _cleanup_free_ char *banner = emo_gtk_health_banner(h, ep);
        cr_assert(banner && strstr(banner, ep), "%s", banner);

        /* Started: found by the next probes, the status line names version and model. */
        pid_t pid = emo_gtk_test_start_at(ep, log);
        ms = run_until_state(h, EMO_GTK_HEALTH_UP, 5000);
        cr_assert(ms >= 0 && ms < 2 * EMO_GTK_HEALTH_DOWN_MS + 1000, "UP %lld ms after the daemon answered",
                  (long long) ms);
        emo_reply_t *real = emo_test_health(ep);
        _cleanup_free_ char *line = emo_gtk_health_status_line(h, ep);
        cr_assert(strstr(line, real->health->version) && strstr(line, emo_test_model_name()) && strstr(line, "1 worker"),
                  "%s", line);
        emo_reply_free(real);
        cr_assert_null(emo_gtk_health_banner(h, ep));

        /* Killed (its socket file stays, nobody listens on it): DOWN within a probe and a time-out. */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        ms = run_until_state(h, EMO_GTK_HEALTH_DOWN, 10000);
        /* Its socket file refuses at once: within one probe interval, not a time-out more. */
        cr_assert(ms >= 0 && ms < EMO_GTK_HEALTH_UP_MS + 500, "DOWN %lld ms after the kill", (long long) ms);

        /* Back on the same endpoint: UP again by itself. */
        pid = emo_gtk_test_start_at(ep, log);
        ms = run_until_state(h, EMO_GTK_HEALTH_UP, 5000);
        cr_assert_geq(ms, 0, "the daemon came back, the model did not see it");
        cr_assert_eq(emo_gtk_health_recoveries(h), 2);
        cr_assert_eq(emo_gtk_health_losses(h), 2);
        cr_assert_geq(w.changes, 4);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        emo_gtk_health_free(h);
        emo_gtk_connection_free(c);
        unlink(log);
        char sock[160];
        snprintf(sock, sizeof(sock), "%s/emotiond.sock", dir);
        unlink(sock);
        rmdir(dir);
}
