/* The daemon's listening sockets: those systemd passes (socket activation, emotiond.socket) and
 * those it binds by itself.
 *
 * Under socket activation ($LISTEN_FDS, sd_listen_fds(3)) every socket systemd passes is served,
 * whatever the configuration says: the socket unit is where the administrator chose them. Each is
 * handed to libzmq with ZMQ_USE_FD and bound under the endpoint its own address names
 * (ipc:///run/emotiond/emotiond.sock, tcp://0.0.0.0:5560), so libzmq, the connection guard
 * (whose LISTENING events carry the fd) and the logs all see the address systemd listens on.
 * A configured endpoint that one of them covers is not bound again; the others are bound as by a
 * daemon started by hand.
 *
 * On exit the daemon removes the ipc socket files it created (libzmq 4.3.4 leaves them behind),
 * never one that systemd owns: the socket unit keeps listening there for the next start.
 *
 * tcp:// endpoints, whether bound here or passed by systemd, speak CURVE with the server's
 * certificate and ask the ZAP handler (auth.h) about each client; without a certificate they are
 * refused unless insecure_tcp allows plaintext. libzmq copies a socket's options into each
 * listener when it binds, so one ROUTER serves ipc:// without CURVE (filesystem permissions guard
 * it) and tcp:// with it. */
#pragma once

#include "emo/error.h"

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct emo_listeners emo_listeners_t;

/* How tcp:// endpoints may be served. */
typedef struct emo_tcp_security {
        zcert_t *cert;          /* the server's certificate with its secret key; NULL: none loaded */
        bool insecure;          /* insecure_tcp: plaintext when there is no certificate */
        const char *cert_path;  /* where the certificate was looked for, for messages */
        const char *cert_error; /* why it was not loaded, for messages */
} emo_tcp_security_t;

/* Bind router to the sockets from systemd and to each endpoint of the comma- or space-separated
 * list that they do not cover. The ipc folders are created as needed (emo_endpoint_prepare).
 * On failure nothing stays bound by us, err says which endpoint and why, -errno (-EADDRINUSE:
 * another daemon answers on an ipc endpoint). */
int emo_listeners_bind(zsock_t *router, const char *endpoints, const emo_tcp_security_t *sec, emo_listeners_t **ret,
                       emo_error_t *err);

/* Whether the endpoints (and the sockets systemd passes) include tcp://. */
bool emo_listeners_need_tcp(const char *endpoints);

/* The endpoints served, for logs and STATUS=: "ipc:///x.sock (from systemd), tcp://...". Owned
 * by l. */
const char *emo_listeners_describe(const emo_listeners_t *l);

/* Remove the ipc socket files bound by the daemon itself that are still the ones it bound (same
 * inode), and free l. Call once the socket is closed or about to be. Accepts NULL, returns NULL. */
emo_listeners_t *emo_listeners_free(emo_listeners_t *l);

/* For --check: whether each endpoint of the list could be bound now, without keeping anything:
 * an ipc endpoint whose folder exists is bound for real and its file removed again; one whose
 * folder is missing needs the nearest existing folder above to be writable (the daemon creates
 * the rest); a tcp endpoint is bound on a scratch socket and closed. An endpoint covered by a
 * socket from systemd passes. 0, or -errno with err naming the endpoint and the cause. */
int emo_listeners_check(const char *endpoints, const emo_tcp_security_t *sec, emo_error_t *err);
