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
 * connection for another while over budget, never a descriptor of anything else.
 *
 * Memory: libzmq keeps every frame of a multipart message that has not ended, and neither
 * ZMQ_MAXMSGSIZE (per frame), the pipe's HWM (complete messages only) nor heartbeats (each frame is
 * complete) bound them; the daemon never sees these frames. So the guard also looks at the
 * process's resident size every 25 ms and, over a budget, shuts down (as above) the connections
 * that have not delivered a complete message for the longest, at least 100 ms, a few per look. The
 * server says which connection each message came from (emo_connguard_seen). A well-behaved idle
 * client may lose its connection then; ZeroMQ clients reconnect by themselves. The same fd reuse
 * applies: a message read just before its connection closed and its number went to a new one may
 * date the new one (its ACCEPTED resets the date), which only spares it for one grace period. */
#pragma once

#include <czmq.h>
#include <stdint.h>

typedef struct emo_connguard emo_connguard_t;

/* Watch router (not yet bound: its LISTENING events name the listeners) and keep at most
 * max_connections open, from a thread of the guard's own: the dispatcher may be busy parsing a
 * large request while a flood arrives. Over memory_budget bytes resident (0: no budget), shed silent
 * connections. router must outlive the guard, and is only touched here and in emo_connguard_free,
 * from the caller's thread. 0, or -errno (-ENOMEM; a libzmq error; /proc/self/statm unreadable). */
int emo_connguard_new(zsock_t *router, unsigned max_connections, uint64_t memory_budget, emo_connguard_t **ret);

/* Connections open now (refused ones excluded), and refused since the start; any thread. */
unsigned emo_connguard_open(emo_connguard_t *g);
uint64_t emo_connguard_refused(emo_connguard_t *g);

/* Connections shed over the memory budget since the start; *ret_episodes (NULL: not wanted): how
 * many times the process went over it. Any thread. */
uint64_t emo_connguard_shed(emo_connguard_t *g, uint64_t *ret_episodes);

/* A complete message came from the connection on fd at now_us (emo_now_us), as ZMQ_SRCFD says;
 * fd < 0 is ignored. Any thread; cheap (one uncontended lock). */
void emo_connguard_seen(emo_connguard_t *g, int fd, int64_t now_us);

/* Stop the thread and the monitor. Accepts NULL, returns NULL. */
emo_connguard_t *emo_connguard_free(emo_connguard_t *g);

/* Raise this process's soft RLIMIT_NOFILE to its hard limit (systemd's default soft limit is 1024).
 * The soft limit now, or -errno. */
int64_t emo_nofile_raise(void);
