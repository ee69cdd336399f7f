#include "connection.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib.h>
#include <glib/gi18n.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "emo/client.h"

typedef struct pending {
        uint64_t id;        /* on the wire: what the reply carries */
        uint64_t caller_id; /* what the caller was given: the first send's id */
        emo_gtk_reply_fn fn;
        void *userdata;
        guint timer;
        emo_gtk_connection_t *c;
        zframe_t *kept; /* the request, to send again once after a drop (emo_gtk_connection_send_kept) */
} pending_t;

struct emo_gtk_connection {
        emo_client_t *client;
        guint watch;         /* the g_unix_fd_add source on the socket's ZMQ_FD */
        guint monitor_watch; /* the same on its connection events (tcp:// only) */
        uint64_t drops;      /* connections dropped after their handshake, as last counted */
        int refusal;         /* a failed handshake the event watch read, for the next send */
        guint idle;          /* a look at the socket after a send */
        int timeout_ms;
        bool answered;       /* a reply came since the connection was made or last failed */
        GHashTable *pending; /* request id -> pending_t, owned */
};

static void pending_free(gpointer p) {
        pending_t *q = p;
        if (q->timer)
                g_source_remove(q->timer);
        zframe_destroy(&q->kept);
        g_free(q);
}

static gboolean on_socket(gint fd, GIOCondition condition, gpointer userdata);
static gboolean on_monitor(gint fd, GIOCondition condition, gpointer userdata);
static gboolean on_idle(gpointer userdata);

static int watch_socket(emo_gtk_connection_t *c) {
        int fd;
        int r = emo_client_fd(c->client, &fd);
        if (r < 0)
                return r;
        if (c->watch)
                g_source_remove(c->watch);
        c->watch = g_unix_fd_add(fd, G_IO_IN, on_socket, c);
        if (c->monitor_watch)
                g_source_remove(c->monitor_watch);
        c->monitor_watch = emo_client_monitor_fd(c->client, &fd) == 0 ? g_unix_fd_add(fd, G_IO_IN, on_monitor, c) : 0;
        return 0;
}

/* Call and forget one request. */
static void complete(emo_gtk_connection_t *c, pending_t *q, emo_reply_t *reply, int error) {
        emo_gtk_reply_fn fn = q->fn;
        void *userdata = q->userdata;
        g_hash_table_remove(c->pending, &q->id);
        fn(reply, error, userdata);
}

static gboolean on_timeout(gpointer userdata);

/* Every request in flight fails with error, except, with again, the kept ones
 * (emo_gtk_connection_send_kept), which go once more on the socket when somebody listens at the
 * endpoint (a load balancer's other daemon, or the daemon restarted), keeping their caller's id,
 * with a whole time-out of their own. The callbacks may send new requests meanwhile, so the table
 * is emptied first. */
static void settle(emo_gtk_connection_t *c, int error, bool again) {
        GHashTable *old = c->pending;
        c->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, pending_free);
        int listening = -1; /* not looked yet: only a kept request needs to know */
        GHashTableIter it;
        gpointer value;
        GPtrArray *failed = g_ptr_array_new_with_free_func(pending_free);
        g_hash_table_iter_init(&it, old);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
                pending_t *q = value;
                if (q->timer)
                        g_source_remove(q->timer);
                q->timer = 0;
                int r = -1;
                if (again && q->kept && listening < 0)
                        listening = emo_client_probe(c->client, 250) == 0;
                emo_request_t *req = NULL;
                if (again && q->kept && listening &&
                    emo_request_unpack(zframe_data(q->kept), zframe_size(q->kept), &req) == 0) {
                        r = emo_client_send(c->client, req, 0, &q->id);
                        emo_request_free(req);
                }
                zframe_destroy(&q->kept); /* once */
                if (r < 0) {
                        g_ptr_array_add(failed, q);
                        continue;
                }
                q->timer = g_timeout_add(c->timeout_ms, on_timeout, q);
                g_hash_table_insert(c->pending, &q->id, q);
        }
        g_hash_table_steal_all(old);
        g_hash_table_unref(old);
        for (guint i = 0; i < failed->len; i++) {
                pending_t *q = failed->pdata[i];
                q->fn(NULL, error, q->userdata);
        }
        g_ptr_array_unref(failed);
        if (g_hash_table_size(c->pending) > 0 && !c->idle)
                c->idle = g_idle_add(on_idle, c);
}

/* settle the requests in flight on a fresh socket: the old one would hold our requests for a
 * daemon that may never come, and its late replies must not be taken for the new requests' (each
 * socket has its own identity, so they never reach the new one). watch_socket replaces the
 * socket's watches, the one being dispatched too (GLib then leaves it destroyed whatever it
 * returns). */
static void start_over(emo_gtk_connection_t *c, int error, bool again) {
        if (emo_client_reconnect(c->client) == 0)
                watch_socket(c);
        c->answered = false;
        settle(c, error, again);
}

static gboolean on_timeout(gpointer userdata) {
        pending_t *q = userdata;
        q->timer = 0; /* this source is being removed by returning FALSE */
        start_over(q->c, -ETIMEDOUT, false);
        return G_SOURCE_REMOVE;
}

/* The connection's events (tcp://): a connection that closes after its handshake (the daemon
 * was killed, or a load balancer's daemon behind it) takes the requests in flight with it. On a
 * fresh socket the kept ones go again and the others fail at once with -ECONNABORTED, rather than
 * at their timeout (a live tile sends its next frame at once); a failed handshake fails them all,
 * and is kept for the next send, which would not see it any more. */
static gboolean on_monitor(gint fd, GIOCondition condition, gpointer userdata) {
        (void) fd;
        (void) condition;
        emo_gtk_connection_t *c = userdata;
        int r = emo_client_check_drops(c->client, &c->drops);
        if (r < 0) {
                c->refusal = r;
                if (g_hash_table_size(c->pending) > 0)
                        settle(c, r, false);
        } else if (r > 0 && g_hash_table_size(c->pending) > 0)
                start_over(c, -ECONNABORTED, true);
        return G_SOURCE_CONTINUE;
}

static void drain(emo_gtk_connection_t *c) {
        /* Edge-triggered: drain everything ZMQ_EVENTS reports, or replies already queued wait
         * until some other event happens to wake us again. */
        for (;;) {
                int r = emo_client_readable(c->client);
                if (r <= 0)
                        break;
                emo_reply_t *reply = NULL;
                r = emo_client_recv(c->client, 0, &reply);
                if (r == -ETIMEDOUT)
                        break;
                if (r == -EPROTO)
                        continue; /* not a Reply: nothing to match it with, keep reading */
                if (r < 0)
                        break; /* the socket failed: the requests' timers will tell */
                c->answered = true;
                pending_t *q = g_hash_table_lookup(c->pending, &reply->request_id);
                if (!q) {
                        emo_reply_free(reply); /* cancelled, or a late reply */
                        continue;
                }
                complete(c, q, reply, 0);
        }
}

static gboolean on_socket(gint fd, GIOCondition condition, gpointer userdata) {
        (void) fd;
        (void) condition;
        drain(userdata);
        return G_SOURCE_CONTINUE;
}

static gboolean on_idle(gpointer userdata) {
        emo_gtk_connection_t *c = userdata;
        c->idle = 0;
        drain(c);
        return G_SOURCE_REMOVE;
}

int emo_gtk_connection_new(const char *endpoint, int timeout_ms, emo_gtk_connection_t **ret) {
        emo_gtk_connection_t *c = g_new0(emo_gtk_connection_t, 1);
        c->timeout_ms = timeout_ms;
        c->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, pending_free);
        int r = emo_client_new(endpoint, &c->client);
        if (r >= 0)
                r = watch_socket(c);
        if (r < 0) {
                emo_gtk_connection_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

emo_gtk_connection_t *emo_gtk_connection_free(emo_gtk_connection_t *c) {
        if (!c)
                return NULL;
        if (c->watch)
                g_source_remove(c->watch);
        if (c->monitor_watch)
                g_source_remove(c->monitor_watch);
        if (c->idle)
                g_source_remove(c->idle);
        g_hash_table_unref(c->pending);
        emo_client_free(c->client);
        g_free(c);
        return NULL;
}

const char *emo_gtk_connection_endpoint(const emo_gtk_connection_t *c) {
        return emo_client_endpoint(c->client);
}

int emo_gtk_connection_set_endpoint(emo_gtk_connection_t *c, const char *endpoint) {
        emo_client_t *client = NULL;
        int r = emo_client_new(endpoint, &client);
        if (r < 0)
                return r;
        emo_client_free(c->client);
        c->client = client;
        c->answered = false;
        r = watch_socket(c);
        /* The old socket's requests will never be answered. */
        settle(c, -ECANCELED, false);
        return r;
}

static int send_request(emo_gtk_connection_t *c, emo_request_t *req, bool keep, emo_gtk_reply_fn fn, void *userdata,
                        uint64_t *ret_id) {
        uint64_t id;
        /* Until the daemon has answered (at first, and after a time-out), look whether anybody
         * listens at all: a socket file that is missing, refuses or is not ours to open fails
         * the request now rather than after the whole time-out. One access(2) and connect(2); a
         * TCP host that neither accepts nor refuses within 250 ms is left to the time-out. */
        int r = c->answered ? 0 : emo_client_probe(c->client, 250);
        if (r < 0)
                return r;
        if (c->refusal < 0) {
                r = c->refusal;
                c->refusal = 0;
                return r;
        }
        /* Kept as packed now (a send again gives it a new id). */
        zframe_t *kept = keep ? emo_request_pack_frame(req) : NULL;
        if (keep && !kept)
                return -ENOMEM;
        /* A DEALER with nobody connected queues the message; 0 ms never waits. */
        r = emo_client_send(c->client, req, 0, &id);
        if (r < 0) {
                zframe_destroy(&kept);
                return r;
        }
        pending_t *q = g_new0(pending_t, 1);
        *q = (pending_t) { .id = id, .caller_id = id, .fn = fn, .userdata = userdata, .c = c, .kept = kept };
        q->timer = g_timeout_add(c->timeout_ms, on_timeout, q);
        g_hash_table_insert(c->pending, &q->id, q);
        if (ret_id)
                *ret_id = id;
        /* Sending changes the socket's events too: a reply may already be waiting with no edge
         * left to wake us, so look once from the loop. */
        if (!c->idle)
                c->idle = g_idle_add(on_idle, c);
        return 0;
}

int emo_gtk_connection_send(emo_gtk_connection_t *c, emo_request_t *req, emo_gtk_reply_fn fn, void *userdata,
                            uint64_t *ret_id) {
        return send_request(c, req, false, fn, userdata, ret_id);
}

int emo_gtk_connection_send_kept(emo_gtk_connection_t *c, emo_request_t *req, emo_gtk_reply_fn fn, void *userdata,
                                 uint64_t *ret_id) {
        return send_request(c, req, true, fn, userdata, ret_id);
}

int emo_gtk_connection_probe(const emo_gtk_connection_t *c, int timeout_ms) {
        return emo_client_probe(c->client, timeout_ms);
}

void emo_gtk_connection_cancel(emo_gtk_connection_t *c, uint64_t id) {
        if (g_hash_table_remove(c->pending, &id))
                return;
        /* Sent again after a drop, under another id on the wire. */
        GHashTableIter it;
        gpointer value;
        g_hash_table_iter_init(&it, c->pending);
        while (g_hash_table_iter_next(&it, NULL, &value))
                if (((pending_t *) value)->caller_id == id) {
                        g_hash_table_iter_remove(&it);
                        return;
                }
}

size_t emo_gtk_connection_in_flight(const emo_gtk_connection_t *c) {
        return g_hash_table_size(c->pending);
}

/* How to start a daemon, or pick another: the end of every "not there" explanation. */
static const char *start_hint(void) {
        return _("Start it with “systemctl start emotiond”, or as yourself with “emotiond --model "
                 "models/emonet-xs.json --dialogue-dir deploy/dialogue” from a build tree; or choose another "
                 "daemon with --server.");
}

char *emo_gtk_connection_explain(const emo_gtk_connection_t *c, int error) {
        const char *ep = emo_gtk_connection_endpoint(c);
        bool tcp = g_str_has_prefix(ep, "tcp://");
        switch (error) {
        case -ETIMEDOUT: {
                bool missing = g_str_has_prefix(ep, "ipc://") && access(ep + 6, F_OK) < 0;
                g_autofree char *head =
                        missing ? g_strdup_printf(_("emotiond did not answer at %s within %.1f s (there is no socket "
                                                    "file: it is not running)."),
                                                  ep, c->timeout_ms / 1000.0)
                                : g_strdup_printf(_("emotiond did not answer at %s within %.1f s."), ep,
                                                  c->timeout_ms / 1000.0);
                return g_strdup_printf("%s\n%s", head, start_hint());
        }
        case -ENOENT:
                return g_strdup_printf(_("emotiond is not running at %s: there is no socket file.\n%s"), ep,
                                       start_hint());
        case -ECONNREFUSED:
                return g_strdup_printf(_("emotiond is not running at %s: nothing listens there (a socket file left "
                                         "by a daemon that stopped, or a closed port).\n%s"),
                                       ep, start_hint());
        case -EACCES:
        case -EPERM:
                if (tcp) /* the daemon's ZAP handler refused our CURVE key */
                        return g_strdup_printf(_("emotiond at %s refused this client’s CURVE key: its public "
                                                 "certificate is not in the daemon’s clients_dir. Make one with "
                                                 "“emotion keygen NAME” and give it to the daemon’s operator."),
                                               ep);
                return g_strdup_printf(_("You may not connect to emotiond at %s: its socket is open to the group "
                                         "emotiond only.\nAdd yourself with “sudo adduser $USER emotiond” and log "
                                         "in again, or choose another daemon with --server."),
                                       ep);
        case -EPROTONOSUPPORT:
                return g_strdup_printf(_("emotiond at %s and this client disagree on security: the daemon "
                                         "requires CURVE and no server key was given (EMOTIOND_SERVER_KEY), or it "
                                         "serves plaintext and a server key was given."),
                                       ep);
        case -EKEYREJECTED:
                return g_strdup_printf(_("The CURVE handshake with %s failed: the server key given is not this "
                                         "daemon’s (its operator can show it with “emotiond --print-public-key”)."),
                                       ep);
        case -EPROTO:
                return g_strdup_printf(_("emotiond at %s sent a reply this client cannot read."), ep);
        case -ECONNABORTED:
                return g_strdup_printf(_("The connection to emotiond at %s was lost before its answer came (the "
                                         "daemon stopped or was killed); the next request goes on a new "
                                         "connection."),
                                       ep);
        default:
                return g_strdup_printf(_("Failed to talk to emotiond at %s: %s"), ep, g_strerror(-error));
        }
}
