/* Client authentication for the CURVE (tcp) endpoints: the daemon's own ZAP handler (ZeroMQ RFC 27),
 * which answers libzmq's requests on inproc://zeromq.zap.01 from a thread of its own.
 *
 * A client may connect when its CURVE public key is one of the certificates in clients_dir (CZMQ
 * zcert files, as `emotion keygen` writes them; the public half is enough). The folder is read at
 * start and again at each emo_auth_reload() (SIGHUP), never in between, so an administrator can
 * stage several changes and apply them at once. ZAP runs at the handshake only: a connection
 * that was admitted stays connected after its key is removed, and is refused when it reconnects.
 *
 * Why not CZMQ's zauth actor: it logs through zsys with its own format, once per attempt (a
 * client retries every 100 ms), and does not say from which address; this handler logs each
 * refusal once per peer address and key, with the key, in the daemon's log. The keys are still
 * CZMQ's: zcert and zcertstore read them.
 *
 * libzmq 4.3 asks the handler about the NULL-mechanism connections of the same socket too (the
 * ipc endpoints): those are admitted, their file permissions having done the work. */
#pragma once

#include <czmq.h>

/* The ZAP domain of the CURVE listeners; NULL-mechanism requests from any other (ipc://) pass. */
#define EMO_AUTH_DOMAIN "emotiond"
#define EMO_AUTH_LOCAL_DOMAIN "emotiond-local"

typedef struct emo_auth emo_auth_t;

/* Start the handler with the keys of clients_dir (a missing folder allows nobody). Only one per
 * process: libzmq has one ZAP endpoint per context. 0, or -errno (-EADDRINUSE: another handler
 * runs). */
int emo_auth_new(const char *clients_dir, emo_auth_t **ret);

/* Read clients_dir again; the new set of keys applies to handshakes from now on. The number of
 * keys now allowed, or -errno. */
int emo_auth_reload(emo_auth_t *a);

/* The number of keys allowed now. */
int emo_auth_count(emo_auth_t *a);

/* Stop the handler. Accepts NULL, returns NULL. */
emo_auth_t *emo_auth_free(emo_auth_t *a);

/* Load a certificate with its secret key: path is the public file as zcert_save wrote it (its
 * secret half is path + "_secret") or the secret file itself. 0 with *ret, -ENOENT when neither
 * file can be read, -ENOKEY when there is no secret key in it. */
int emo_auth_load_secret_cert(const char *path, zcert_t **ret);
