/* The connection guard: a budget of client connections on the server's ROUTER socket.
 *
 * libzmq accepts every connection its listeners see and has no per-listener cap; each one costs a
 * file descriptor and may hold a partial message of up to ZMQ_MAXMSGSIZE bytes before the daemon
 * sees anything. When descriptors run out, libzmq 4.3.4's ipc listener aborts the process (EMFILE
 * in src/ipc_listener.cpp) and its tcp listener spins. The guard watches the socket with a
 * zmq_socket_monitor (ACCEPTED and DISCONNECTED events carry the connection's fd) and, when more
 * than max_connections are open, calls shutdown(2) on the newest ones: libzmq then reads
 * end-of-file and closes them itself, so no descriptor is closed behind its back.
 *
 * Descriptors are reused, so the guard reads every pending event before it acts and shuts down only
 * an fd it still counts as open, after checking that it is a connected stream socket whose local
 * address is one of the socket's listeners (getsockname). What remains: libzmq may close a counted
 * connection and accept another on the same fd number between the guard's last event and its
 * shutdown(2); the guard then refuses that newer connection to the same listener instead, one
 * connection for another while over budget, never a descriptor of anything else. */
#pragma once

#include <czmq.h>
#include <stdint.h>

typedef struct emo_connguard emo_connguard_t;

/* Watch router (not yet bound: its LISTENING events name the listeners) and keep at most
 * max_connections open, from a thread of the guard's own: the dispatcher may be busy parsing a
 * large request while a flood arrives. router must outlive the guard, and is only touched here and
 * in emo_connguard_free, from the caller's thread. 0, or -errno (-ENOMEM; a libzmq error). */
int emo_connguard_new(zsock_t *router, unsigned max_connections, emo_connguard_t **ret);

/* Connections open now (refused ones excluded), and refused since the start; any thread. */
unsigned emo_connguard_open(emo_connguard_t *g);
uint64_t emo_connguard_refused(emo_connguard_t *g);

/* Stop the thread and the monitor. Accepts NULL, returns NULL. */
emo_connguard_t *emo_connguard_free(emo_connguard_t *g);

/* Raise this process's soft RLIMIT_NOFILE to its hard limit (systemd's default soft limit is 1024).
 * The soft limit now, or -errno. */
int64_t emo_nofile_raise(void);
