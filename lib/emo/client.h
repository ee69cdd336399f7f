/* A client connection to emotiond: one DEALER socket, so requests can be pipelined, with
 * timeouts everywhere and retry-by-reconnect (the "lazy pirate" pattern) for calls that wait for
 * their reply. Not thread-safe: use one client per thread. */
#pragma once

#include <stdint.h>

#include "emo/protocol.h"

typedef struct emo_client emo_client_t;

/* Connect to endpoint (NULL: emo_endpoint_default_connect()). Connecting is lazy: an absent
 * daemon shows up as timeouts, not as an error here. For a tcp:// endpoint, $EMOTIOND_SERVER_KEY
 * and $EMOTIOND_CERT, when set, are applied as by emo_client_set_curve(). 0, or -EINVAL for a
 * malformed endpoint, -ENOMEM, and emo_client_set_curve's errors. */
int emo_client_new(const char *endpoint, emo_client_t **ret);

/* CURVE for a tcp:// endpoint (ipc:// is guarded by file permissions and ignores it):
 * server_key is the daemon's public key in Z85 (40 characters, as `emotiond --print-public-key`
 * prints it) or a certificate file that holds it; cert_path is this client's certificate as
 * `emotion keygen NAME` wrote it (NAME, with NAME_secret beside it, or NAME_secret). NULL
 * cert_path: a throwaway key pair, which no daemon admits, so its refusal says what is missing.
 * NULL server_key: plaintext again. The socket is replaced at once. 0, -EBADMSG (not a key),
 * -ENOENT (no certificate there), -ENOKEY (a certificate without its secret key), -ENOMEM. */
int emo_client_set_curve(emo_client_t *c, const char *server_key, const char *cert_path);

/* A message for the errors of this module, the handshake ones included (-EACCES the daemon
 * refused our key, -EKEYREJECTED wrong server key, -EPROTONOSUPPORT CURVE on one side only,
 * -ECONNRESET connections closed before any daemon greeted: a load balancer with none alive);
 * strerror() for the others. Static. */
const char *emo_client_strerror(int error);

/* A stream id of this client's own for the stream it calls name (a file, a camera): name
 * followed by '#' and 8 random hex digits, name cut on a character boundary to fit
 * EMO_STREAM_ID_MAX. The daemon keeps smoothing state per stream id, so two clients watching the
 * same source must not send the same one; a user who wants them to share state (one camera,
 * several client processes one after another) sets the id explicitly. malloc'd; NULL on
 * out-of-memory. */
char *emo_client_stream_id(const char *name);

/* Close the connection; outstanding requests are dropped. Accepts NULL, returns NULL. */
emo_client_t *emo_client_free(emo_client_t *c);

/* The endpoint in use; owned by the client. */
const char *emo_client_endpoint(const emo_client_t *c);

/* Send req without waiting for its reply. Fills req->protocol_version and a fresh
 * req->request_id, returned in *ret_id. -ETIMEDOUT when the send queue stays full for
 * send_timeout_ms, a failed handshake as emo_client_recv says it, -EIO on other socket errors. */
int emo_client_send(emo_client_t *c, emo_request_t *req, int send_timeout_ms, uint64_t *ret_id);

/* Wait up to timeout_ms (-1: forever) for the next reply, whichever request it answers.
 * 0 with *ret owned by the caller (emo_reply_free); -ETIMEDOUT; -EPROTO for bytes that are not
 * a Reply; -EINTR when interrupted by a signal; on tcp://, as soon as libzmq reports it, a
 * failed handshake: -EACCES, -EKEYREJECTED, -EPROTONOSUPPORT, or -ECONNRESET when the connections
 * were closed before any peer sent a ZeroMQ greeting (emo_client_strerror). Three connections in
 * a row closed in the handshake are taken for a refusal only when a probe connection finds a
 * ZeroMQ peer greeting there: behind a TCP load balancer that accepts and closes because no
 * daemon is alive, they are -ECONNRESET, never a false key error. */
int emo_client_recv(emo_client_t *c, int timeout_ms, emo_reply_t **ret);

/* emo_client_recv for a caller with several requests out (a pipeline): also -ECONNABORTED, as
 * soon as it is known, when a connection that had completed its handshake has closed (tcp://
 * only: a daemon killed, alone or behind a load balancer) since *drops was counted. *drops is then
 * the new count; start it at 0. The replies to the requests that went out on that connection may
 * be lost with it: send them again (emo_client_reconnect first, so that the fresh connection is
 * the one they take). */
int emo_client_recv_or_drop(emo_client_t *c, int timeout_ms, uint64_t *drops, emo_reply_t **ret);

/* Send req and wait for its own reply (replies to other ids are discarded). When timeout_ms
 * passes without it, or (tcp://) as soon as the connection it went out on closes after its
 * handshake (a daemon killed, alone or behind a load balancer that sends the next connection to
 * another), the socket is replaced by a fresh one (so a restarted daemon is found again) and the
 * request is sent again, `attempts` times in all. 0 with *ret, or -ETIMEDOUT when no attempt got
 * its reply, or the errors of send/recv (a failed handshake is not retried). */
int emo_client_call(emo_client_t *c, emo_request_t *req, int timeout_ms, int attempts, emo_reply_t **ret);

/* Whether a daemon listens at the client's endpoint, told at once rather than by a timeout (libzmq
 * retries a refused connection forever, silently): for ipc://, the socket file must exist and
 * accept a connection; for tcp://, a TCP connection is tried for at most timeout_ms. The probe's
 * connection is closed at once and is not the client's. 0 when something listens, or when it
 * cannot be told (another transport; a host that neither accepts nor refuses in time: requests
 * then time out as before); -ENOENT no socket file (nobody started a daemon there); -ECONNREFUSED
 * nobody listens (a socket file left by a daemon that was killed, a closed port); -EACCES no
 * permission to connect; other -errno from connect(2) (-EHOSTUNREACH, ...). Never changes c. */
int emo_client_probe(const emo_client_t *c, int timeout_ms);

/* Drop the socket and open a fresh one; outstanding requests are forgotten. 0 or -errno. */
int emo_client_reconnect(emo_client_t *c);

/* ---- event-loop integration (the GTK client: ZeroMQ inside a GLib main loop) -------------------
 * The socket's ZMQ_FD becomes readable when its events may have changed; it is edge-triggered, so
 * on every wake-up read while emo_client_readable() says so, emo_client_recv(c, 0, ...) each time.
 * The fd belongs to the socket: after emo_client_reconnect() (or emo_client_call()'s retries) it
 * is another one, to be watched instead. */

/* The socket's file descriptor (ZMQ_FD) in *ret_fd. 0, or -errno. */
int emo_client_fd(emo_client_t *c, int *ret_fd);

/* 1 when a reply can be received without waiting (ZMQ_EVENTS has ZMQ_POLLIN), 0 when not, -errno.
 * Never blocks. */
int emo_client_readable(emo_client_t *c);

/* The file descriptor of the socket's connection events (tcp:// only; -ENOTSUP for the other
 * transports), edge-triggered like ZMQ_FD: when it becomes readable, call emo_client_check_drops().
 * Another one after emo_client_reconnect(). */
int emo_client_monitor_fd(emo_client_t *c, int *ret_fd);

/* Read the connection events that came, without waiting: 1 when a connection that had completed
 * its handshake has closed since *drops was counted (*drops is then the new count; start it at
 * 0), 0 when none has, or a failed handshake as emo_client_recv says it (it is not said again). */
int emo_client_check_drops(emo_client_t *c, uint64_t *drops);
