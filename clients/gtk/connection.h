/* The GTK client's connection to emotiond, driven by the GLib main loop: requests are sent
 * without waiting, and replies are read when the socket's ZMQ_FD wakes the loop up (g_unix_fd_add).
 * ZMQ_FD is edge-triggered, so each wake-up reads every reply ZMQ_EVENTS says is there; nothing
 * ever blocks the main thread.
 *
 * Each request gets exactly one callback, from the main loop: its reply, or an error. A request
 * not answered within timeout_ms fails with -ETIMEDOUT, and so do all others then in flight: the
 * socket is replaced by a fresh one (ZeroMQ would otherwise keep queueing for a daemon that is
 * gone), so a daemon started or restarted later is found by the next request. Plain C on GLib,
 * no widgets. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "emo/protocol.h"

typedef struct emo_gtk_connection emo_gtk_connection_t;

/* reply: owned by the callee (free with emo_reply_free), any status; NULL when error < 0
 * (-ETIMEDOUT: no reply in time; -EPROTO: bytes that were no Reply; -EIO...). */
typedef void (*emo_gtk_reply_fn)(emo_reply_t *reply, int error, void *userdata);

/* Connect to endpoint (NULL: the default, as the CLI finds it: lib/emo/endpoint.h) and attach to
 * the thread-default main context. 0; -EINVAL for a malformed endpoint; -ENOMEM. */
int emo_gtk_connection_new(const char *endpoint, int timeout_ms, emo_gtk_connection_t **ret);

/* Drop every request in flight without calling its callback. Accepts NULL, returns NULL. */
emo_gtk_connection_t *emo_gtk_connection_free(emo_gtk_connection_t *c);

const char *emo_gtk_connection_endpoint(const emo_gtk_connection_t *c);

/* Talk to another endpoint (NULL: the default) from now on: the requests in flight fail with
 * -ECANCELED, their callbacks called before this returns; later ones go to the new daemon.
 * 0; -EINVAL for a malformed endpoint (c unchanged). */
int emo_gtk_connection_set_endpoint(emo_gtk_connection_t *c, const char *endpoint);

/* Send req (its protocol_version and request_id are filled in); fn is called once, later, from
 * the main loop, never from inside this call. 0 with *ret_id (may be NULL), or -errno when it
 * could not even be queued (fn is then not called). Until the daemon has answered once (and
 * again after a time-out) it first looks whether anybody listens: -ENOENT no socket file,
 * -ECONNREFUSED nobody listens, -EACCES not allowed to connect (emo_client_probe()). */
int emo_gtk_connection_send(emo_gtk_connection_t *c, emo_request_t *req, emo_gtk_reply_fn fn, void *userdata,
                            uint64_t *ret_id);

/* The same, for a request worth sending again: when a tcp:// connection drops with it in flight
 * (its daemon killed or stopped, or a load balancer's daemon behind the connection), it is sent
 * once more on the new connection if anybody listens there, instead of failing with
 * -ECONNABORTED; the callback then gets the answer of whoever took it (a load balancer's other
 * daemon, or the daemon restarted), within a new time-out. For a photo; a live frame, which the
 * next frame replaces, uses emo_gtk_connection_send. *ret_id stays the request's id for cancel. */
int emo_gtk_connection_send_kept(emo_gtk_connection_t *c, emo_request_t *req, emo_gtk_reply_fn fn, void *userdata,
                                 uint64_t *ret_id);

/* Whether anybody listens at the endpoint now, without a request (emo_client_probe(), at most
 * timeout_ms for TCP): 0, or -ENOENT, -ECONNREFUSED, -EACCES... */
int emo_gtk_connection_probe(const emo_gtk_connection_t *c, int timeout_ms);

/* Forget request id: its callback will not be called. No-op for an unknown id. */
void emo_gtk_connection_cancel(emo_gtk_connection_t *c, uint64_t id);

/* Requests sent and not yet answered. */
size_t emo_gtk_connection_in_flight(const emo_gtk_connection_t *c);

/* What to tell a person when a request failed with error (negative errno, -ETIMEDOUT above all):
 * what happened, and for a daemon that is not there, how to start it. g_free() it. */
char *emo_gtk_connection_explain(const emo_gtk_connection_t *c, int error);
