#include "health.h"

#include <errno.h>
#include <glib.h>
#include <glib/gi18n.h>
#include <string.h>

struct emo_gtk_health {
        emo_gtk_connection_t *connection; /* borrowed; NULL: a model only */
        emo_gtk_health_fn fn;
        void *userdata;
        emo_gtk_health_state_t state;
        int error; /* why DOWN */
        bool have_info;
        emo_gtk_health_info_t info;
        unsigned recoveries, losses;
        guint timer;        /* the next probe */
        uint64_t in_flight; /* request id, 0: none */
};

static void info_clear(emo_gtk_health_info_t *i) {
        g_free(i->version);
        g_free(i->model);
        g_free(i->detector);
        g_free(i->device);
        *i = (emo_gtk_health_info_t) { 0 };
}

static bool same(const char *a, const char *b) {
        return g_strcmp0(a, b) == 0;
}

bool emo_gtk_health_observe(emo_gtk_health_t *h, const emo_reply_t *reply, int error) {
        emo_gtk_health_state_t before = h->state;
        /* A daemon that is stopping answers every request so: it will not be there in a moment. */
        if (reply && (int) reply->status == EMO_STATUS_SHUTTING_DOWN) {
                reply = NULL;
                error = -ESHUTDOWN;
        }
        bool changed = false;
        if (!reply) {
                h->state = EMO_GTK_HEALTH_DOWN;
                changed = h->error != error;
                h->error = error < 0 ? error : -EIO;
                if (h->have_info)
                        info_clear(&h->info);
                h->have_info = false;
                if (before != EMO_GTK_HEALTH_DOWN)
                        h->losses++;
        } else {
                h->state = EMO_GTK_HEALTH_UP;
                h->error = 0;
                if (before == EMO_GTK_HEALTH_DOWN)
                        h->recoveries++;
                /* A daemon too busy for a health report (OVERLOADED) is there all the same: the
                 * figures of its last report stay. */
                if ((int) reply->status == EMO_STATUS_OK && reply->body_case == EMOTION__V1__REPLY__BODY_HEALTH &&
                    reply->health) {
                        const emo_health_reply_t *r = reply->health;
                        const char *model = r->model ? r->model->name : "";
                        if (!h->have_info || !same(h->info.version, r->version) || !same(h->info.model, model) ||
                            !same(h->info.detector, r->detector) || !same(h->info.device, r->device) ||
                            h->info.workers != r->workers) {
                                info_clear(&h->info);
                                h->info = (emo_gtk_health_info_t) {
                                        .version = g_strdup(r->version),
                                        .model = g_strdup(model),
                                        .detector = g_strdup(r->detector),
                                        .device = g_strdup(r->device),
                                        .workers = r->workers,
                                };
                                h->have_info = true;
                                changed = true;
                        }
                }
        }
        return changed || before != h->state;
}

static void schedule(emo_gtk_health_t *h);

static void on_reply(emo_reply_t *reply, int error, void *userdata) {
        emo_gtk_health_t *h = userdata;
        h->in_flight = 0;
        bool changed = emo_gtk_health_observe(h, reply, error);
        emo_reply_free(reply);
        schedule(h);
        if (changed && h->fn)
                h->fn(h, h->userdata);
}

static void probe(emo_gtk_health_t *h) {
        if (!h->connection || h->in_flight)
                return;
        emo_health_request_t hr = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &hr;
        uint64_t id = 0;
        /* A daemon killed since the last reply leaves a socket file nobody listens on: one
         * connect(2) says so now, where the request would wait for the whole time-out (the
         * connection only looks before its first reply). Only for ipc://: a TCP probe would be a
         * connection a second to the daemon. */
        int r = 0;
        if (h->state == EMO_GTK_HEALTH_UP && g_str_has_prefix(emo_gtk_connection_endpoint(h->connection), "ipc://"))
                r = emo_gtk_connection_probe(h->connection, 0);
        if (r >= 0)
                r = emo_gtk_connection_send(h->connection, &req, on_reply, h, &id);
        if (r >= 0) {
                h->in_flight = id;
                return;
        }
        /* Refused at once (no socket file, nobody listens): the outcome is known now, but the
         * callback still runs from the loop, never from inside this call. */
        bool changed = emo_gtk_health_observe(h, NULL, r);
        schedule(h);
        if (changed && h->fn)
                h->fn(h, h->userdata);
}

static gboolean on_timer(gpointer userdata) {
        emo_gtk_health_t *h = userdata;
        h->timer = 0;
        probe(h);
        return G_SOURCE_REMOVE;
}

static void schedule(emo_gtk_health_t *h) {
        if (!h->connection || h->timer)
                return;
        h->timer = g_timeout_add(h->state == EMO_GTK_HEALTH_UP ? EMO_GTK_HEALTH_UP_MS : EMO_GTK_HEALTH_DOWN_MS,
                                 on_timer, h);
}

/* The first probe (and one asked for) at the default priority, not an idle one: a window busy with
 * live tiles always has redraws and frames of higher priority than idle, and would starve it. */
emo_gtk_health_t *emo_gtk_health_new(emo_gtk_connection_t *connection, emo_gtk_health_fn fn, void *userdata) {
        emo_gtk_health_t *h = g_new0(emo_gtk_health_t, 1);
        *h = (emo_gtk_health_t) { .connection = connection, .fn = fn, .userdata = userdata };
        if (connection)
                h->timer = g_idle_add_full(G_PRIORITY_DEFAULT, on_timer, h, NULL);
        return h;
}

emo_gtk_health_t *emo_gtk_health_free(emo_gtk_health_t *h) {
        if (!h)
                return NULL;
        if (h->timer)
                g_source_remove(h->timer);
        if (h->in_flight && h->connection)
                emo_gtk_connection_cancel(h->connection, h->in_flight);
        info_clear(&h->info);
        g_free(h);
        return NULL;
}

void emo_gtk_health_probe_now(emo_gtk_health_t *h) {
        if (!h->connection || h->in_flight)
                return;
        if (h->timer)
                g_source_remove(h->timer);
        h->timer = g_idle_add_full(G_PRIORITY_DEFAULT, on_timer, h, NULL);
}

emo_gtk_health_state_t emo_gtk_health_state(const emo_gtk_health_t *h) {
        return h->state;
}

unsigned emo_gtk_health_recoveries(const emo_gtk_health_t *h) {
        return h->recoveries;
}

unsigned emo_gtk_health_losses(const emo_gtk_health_t *h) {
        return h->losses;
}

const emo_gtk_health_info_t *emo_gtk_health_info(const emo_gtk_health_t *h) {
        return h->state == EMO_GTK_HEALTH_UP && h->have_info ? &h->info : NULL;
}

char *emo_gtk_health_status_line(const emo_gtk_health_t *h, const char *endpoint) {
        const emo_gtk_health_info_t *i = emo_gtk_health_info(h);
        if (i)
                /* TRANSLATORS: the status line: version, model, detector, device, workers, endpoint. */
                return g_strdup_printf(ngettext("emotiond %s · model %s · detector %s · %s · %u worker · at %s",
                                                "emotiond %s · model %s · detector %s · %s · %u workers · at %s",
                                                i->workers),
                                       i->version, i->model, i->detector, i->device, i->workers, endpoint);
        if (h->state == EMO_GTK_HEALTH_UP)
                return g_strdup_printf(_("emotiond at %s is busy"), endpoint);
        if (h->state == EMO_GTK_HEALTH_DOWN)
                return g_strdup_printf(_("emotiond at %s: not running"), endpoint);
        return g_strdup_printf(_("emotiond at %s: connecting…"), endpoint);
}

char *emo_gtk_health_banner(const emo_gtk_health_t *h, const char *endpoint) {
        if (h->state != EMO_GTK_HEALTH_DOWN)
                return NULL;
        const char *why;
        switch (h->error) {
        case -ENOENT:
                why = _("there is no socket file");
                break;
        case -ECONNREFUSED:
                why = _("nothing listens there");
                break;
        case -ETIMEDOUT:
                why = _("it does not answer");
                break;
        case -ESHUTDOWN:
                why = _("it is shutting down");
                break;
        case -EACCES:
        case -EPERM:
                why = g_str_has_prefix(endpoint, "tcp://")
                              ? _("it refused this client’s CURVE key")
                              : _("you may not connect to it (add yourself to the group emotiond)");
                break;
        case -EPROTONOSUPPORT:
                why = _("it requires CURVE and no server key was given, or the reverse");
                break;
        case -EKEYREJECTED:
                why = _("the server key given is not its key");
                break;
        default:
                why = g_strerror(-h->error);
        }
        return g_strdup_printf(_("emotiond is not available at %s: %s.\n"
                                 "Start it with “systemctl start emotiond”, or from a build tree with “emotiond "
                                 "--model models/emonet-xs.json --dialogue-dir deploy/dialogue”; or choose another "
                                 "daemon in Preferences. This message goes away by itself when it answers."),
                               endpoint, why);
}
