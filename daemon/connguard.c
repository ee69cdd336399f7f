#include "connguard.h"

#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "emo/util.h"

#define MAX_LISTENERS 32
/* Between two looks at every counted fd for connections libzmq closed without a DISCONNECTED event
 * (none is known in 4.3.4, but a count that only grows would refuse everyone). */
#define SWEEP_INTERVAL_US (5 * 1000000LL)
/* Events read before acting on them: all that are pending, unless a flood keeps them coming
 * faster than they are read; then acting late would let descriptors run out, and acting with
 * events unread only widens the fd-reuse race of connguard.h, which the address check bounds. */
#define MAX_EVENTS_PER_PASS 4096
/* Between two looks at the resident size; a look is one pread of /proc/self/statm. */
#define RSS_INTERVAL_US (25 * 1000LL)
/* A connection that delivered a complete message this recently (or was accepted) is not shed: it
 * is being served, and its message may wait in the socket while the dispatcher parses a large
 * one. This and the interval bound how far one connection takes the process over budget: libzmq
 * reads a local unix socket at about 1.2 GB/s, so by about 35-70 MiB (measured, issue 22; with
 * 200 and 50 ms it was 30-225 MiB, and 1 s would let a gigabyte in). */
#define SHED_GRACE_US (100 * 1000LL)
/* Connections shed per look at most: those silent the longest, which hold the unfinished
 * messages; the next look, once libzmq has freed theirs, says whether more must go. */
#define SHED_BATCH 16

enum { CONN_NONE, CONN_OPEN, CONN_REFUSED };

typedef struct conn {
        uint8_t state;
        uint64_t seq; /* which accept this is: an fd number is reused */
        int64_t last_us; /* accepted, or last complete message delivered; under seen_lock */
} conn_t;

typedef struct pending {
        int fd;
        uint64_t seq;
} pending_t;

typedef struct silent {
        int fd;
        int64_t last_us;
} silent_t;

struct emo_connguard {
        void *router;
        zsock_t *monitor; /* used by the guard's thread only, once it runs */
        zactor_t *actor;
        unsigned max;
        conn_t *conns; /* indexed by fd; grown under seen_lock, which emo_connguard_seen takes */
        size_t n_conns;
        pthread_mutex_t seen_lock;
        pending_t *pending; /* accepted since the last look at the events, oldest first */
        size_t n_pending, n_pending_alloc;
        silent_t *silent; /* candidates for shedding, during one look */
        size_t n_silent_alloc;
        unsigned open;
        uint64_t refused, seq;
        _Atomic unsigned open_shown; /* for other threads */
        _Atomic uint64_t refused_shown;
        uint64_t budget; /* bytes of resident memory; 0: never shed */
        int statm_fd;
        long page_size;
        int64_t next_rss_us;
        bool over; /* over budget at the last look */
        _Atomic uint64_t shed_shown, episodes_shown; /* written by the guard's thread only */
        int64_t next_sweep_us;
        struct sockaddr_storage listeners[MAX_LISTENERS];
        socklen_t listener_lens[MAX_LISTENERS];
        size_t n_listeners;
        bool monitoring;
};

int64_t emo_nofile_raise(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return -errno;
        }
        return rl.rlim_cur > INT64_MAX ? INT64_MAX : (int64_t) rl.rlim_cur;
}

static bool same_address(const struct sockaddr_storage *a, socklen_t alen, const struct sockaddr_storage *l,
                         socklen_t llen) {
        if (a->ss_family != l->ss_family)
                return false;
        switch (a->ss_family) {
        case AF_UNIX: /* an accepted unix socket carries its listener's address */
                return alen == llen && memcmp(a, l, alen) == 0;
        case AF_INET: {
                const struct sockaddr_in *x = (const void *) a, *y = (const void *) l;
                return x->sin_port == y->sin_port &&
                       (y->sin_addr.s_addr == htonl(INADDR_ANY) || x->sin_addr.s_addr == y->sin_addr.s_addr);
        }
        case AF_INET6: {
                const struct sockaddr_in6 *x = (const void *) a, *y = (const void *) l;
                return x->sin6_port == y->sin6_port &&
                       (IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr) ||
                        memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0);
        }
        default:
                return false;
        }
}

/* Is fd a connected stream socket accepted by one of our listeners? */
static bool from_listener(const emo_connguard_t *g, int fd) {
        int type = 0, listening = 1;
        socklen_t len = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
                return false;
        len = sizeof(listening);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || listening)
                return false;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *) &ss, &sl) < 0)
                return false;
        for (size_t i = 0; i < g->n_listeners; i++)
                if (same_address(&ss, sl, &g->listeners[i], g->listener_lens[i]))
                        return true;
        return false;
}

static int track(emo_connguard_t *g, int fd) {
        if ((size_t) fd >= g->n_conns) {
                size_t n = g->n_conns ? g->n_conns : 1024;
                while (n <= (size_t) fd)
                        n *= 2;
                pthread_mutex_lock(&g->seen_lock);
                conn_t *c = realloc(g->conns, n * sizeof(*c));
                if (c) {
                        memset(c + g->n_conns, 0, (n - g->n_conns) * sizeof(*c));
                        g->conns = c;
                        g->n_conns = n;
                }
                pthread_mutex_unlock(&g->seen_lock);
                if (!c)
                        return -ENOMEM;
        }
        if (g->n_pending == g->n_pending_alloc) {
                size_t n = g->n_pending_alloc ? 2 * g->n_pending_alloc : 64;
                pending_t *p = realloc(g->pending, n * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                g->pending = p;
                g->n_pending_alloc = n;
        }
        conn_t *c = &g->conns[fd];
        /* Still counted: libzmq closed it without telling, and reused the number. */
        if (c->state == CONN_OPEN)
                g->open--;
        c->state = CONN_OPEN;
        c->seq = ++g->seq;
        /* A new connection: what the number delivered before was another's. */
        pthread_mutex_lock(&g->seen_lock);
        c->last_us = emo_now_us();
        pthread_mutex_unlock(&g->seen_lock);
        g->open++;
        g->pending[g->n_pending++] = (pending_t){ fd, c->seq };
        return 0;
}

static void untrack(emo_connguard_t *g, int fd) {
        if (fd < 0 || (size_t) fd >= g->n_conns)
                return;
        if (g->conns[fd].state == CONN_OPEN)
                g->open--;
        g->conns[fd].state = CONN_NONE;
}

static void add_listener(emo_connguard_t *g, int fd) {
        if (g->n_listeners == MAX_LISTENERS)
                return;
        socklen_t len = sizeof(g->listeners[0]);
        if (getsockname(fd, (struct sockaddr *) &g->listeners[g->n_listeners], &len) < 0)
                return;
        g->listener_lens[g->n_listeners++] = len;
}

/* Forget connections whose fd is closed or no longer a connection of ours. */
static void sweep(emo_connguard_t *g) {
        for (size_t fd = 0; fd < g->n_conns; fd++)
                if (g->conns[fd].state != CONN_NONE && (fcntl((int) fd, F_GETFD) < 0 || !from_listener(g, (int) fd)))
                        untrack(g, (int) fd);
}

static int process(emo_connguard_t *g) {
        void *h = zsock_resolve(g->monitor);
        /* Every pending event first: a DISCONNECTED still queued would mean that its fd may already
         * be another connection. */
        for (int k = 0; k < MAX_EVENTS_PER_PASS; k++) {
                uint8_t head[6];
                int n = zmq_recv(h, head, sizeof(head), ZMQ_DONTWAIT);
                if (n < 0)
                        break;
                int more = 0;
                size_t more_len = sizeof(more);
                char endpoint[256];
                /* The second frame names the endpoint; the fd is all we need. */
                while (zmq_getsockopt(h, ZMQ_RCVMORE, &more, &more_len) == 0 && more)
                        zmq_recv(h, endpoint, sizeof(endpoint), 0);
                if (n != sizeof(head))
                        continue;
                uint16_t event;
                int32_t value;
                memcpy(&event, head, sizeof(event));
                memcpy(&value, head + 2, sizeof(value));
                switch (event) {
                case ZMQ_EVENT_LISTENING:
                        add_listener(g, value);
                        break;
                case ZMQ_EVENT_ACCEPTED:
                        /* Out of memory: this one goes uncounted; libzmq would fail first. */
                        if (value >= 0)
                                (void) track(g, value);
                        break;
                case ZMQ_EVENT_DISCONNECTED:
                        untrack(g, value);
                        break;
                default:
                        break;
                }
        }
        int64_t now = emo_now_us();
        if (now >= g->next_sweep_us) {
                sweep(g);
                g->next_sweep_us = now + SWEEP_INTERVAL_US;
        }
        /* Over budget: refuse the newest. Older connections keep their slot, so a flood cannot push
         * out clients already being served. */
        int refused = 0;
        for (size_t i = g->n_pending; i-- > 0 && g->open > g->max;) {
                const pending_t *p = &g->pending[i];
                conn_t *c = &g->conns[p->fd];
                if (c->state != CONN_OPEN || c->seq != p->seq)
                        continue;
                if (!from_listener(g, p->fd)) {
                        untrack(g, p->fd);
                        continue;
                }
                /* libzmq reads end-of-file and closes the fd itself (its DISCONNECTED event then
                 * ends our record). ENOTCONN: the peer is gone already, which ends the same way. */
                (void) shutdown(p->fd, SHUT_RDWR);
                c->state = CONN_REFUSED;
                g->open--;
                g->refused++;
                refused++;
        }
        g->n_pending = 0;
        atomic_store(&g->open_shown, g->open);
        atomic_store(&g->refused_shown, g->refused);
        return refused;
}

/* Resident bytes of this process, or 0 when unknown. */
static uint64_t resident(const emo_connguard_t *g) {
        char buf[128];
        ssize_t n = pread(g->statm_fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        unsigned long long size, pages;
        if (sscanf(buf, "%llu %llu", &size, &pages) != 2)
                return 0;
        return (uint64_t) pages * (uint64_t) g->page_size;
}

static int by_last_us(const void *a, const void *b) {
        const silent_t *x = a, *y = b;
        return x->last_us < y->last_us ? -1 : x->last_us > y->last_us;
}

/* Over budget: shut down the connections that have delivered nothing for the longest, at least
 * SHED_GRACE_US. libzmq keeps every frame of a multipart message until its last one arrives, so
 * one connection can grow the process without limit, and only its silence gives it away: the
 * dispatcher never sees those frames. */
static void shed(emo_connguard_t *g, int64_t now) {
        if (!g->budget || now < g->next_rss_us)
                return;
        g->next_rss_us = now + RSS_INTERVAL_US;
        uint64_t rss = resident(g);
#ifdef __GLIBC__
        /* Freed memory stays in malloc's arenas (main.c keeps up to 128 MiB there for speed),
         * among it the frames of the connections shed at the last look: give it back before
         * judging, or the process would stay over budget and shed every silent client (measured:
         * 213 MiB resident after shedding with a budget of 151, 80 MiB with this). */
        if (rss > g->budget) {
                malloc_trim(0);
                rss = resident(g);
        }
#endif
        if (rss <= g->budget) {
                g->over = false;
                return;
        }
        if (!g->over)
                atomic_fetch_add(&g->episodes_shown, 1);
        g->over = true;
        size_t n = 0;
        pthread_mutex_lock(&g->seen_lock);
        for (size_t fd = 0; fd < g->n_conns; fd++) {
                const conn_t *c = &g->conns[fd];
                if (c->state != CONN_OPEN || now - c->last_us < SHED_GRACE_US)
                        continue;
                if (n == g->n_silent_alloc) {
                        size_t m = n ? 2 * n : 64;
                        silent_t *p = realloc(g->silent, m * sizeof(*p));
                        if (!p)
                                break; /* shed among those found so far */
                        g->silent = p;
                        g->n_silent_alloc = m;
                }
                g->silent[n++] = (silent_t){ (int) fd, c->last_us };
        }
        pthread_mutex_unlock(&g->seen_lock);
        if (n == 0)
                return; /* over budget, but every connection is being served */
        qsort(g->silent, n, sizeof(*g->silent), by_last_us);
        unsigned done = 0;
        for (size_t i = 0; i < n && done < SHED_BATCH; i++) {
                int fd = g->silent[i].fd;
                if (!from_listener(g, fd)) {
                        untrack(g, fd);
                        continue;
                }
                /* As in process(): libzmq reads end-of-file and closes the fd itself. */
                (void) shutdown(fd, SHUT_RDWR);
                g->conns[fd].state = CONN_REFUSED;
                g->open--;
                done++;
        }
        atomic_store(&g->open_shown, g->open);
        atomic_fetch_add(&g->shed_shown, done);
}

/* The guard's thread: a flood is answered while the dispatcher parses a large request, and the
 * descriptors it has to spare last only as long as libzmq's accept loop takes to use them. */
static void guard_actor(zsock_t *pipe, void *arg) {
        emo_connguard_t *g = arg;
        zsock_signal(pipe, 0);
        zmq_pollitem_t items[2] = {
                { .socket = zsock_resolve(pipe), .events = ZMQ_POLLIN },
                { .socket = zsock_resolve(g->monitor), .events = ZMQ_POLLIN },
        };
        for (;;) {
                long timeout_ms = (g->budget ? RSS_INTERVAL_US : SWEEP_INTERVAL_US) / 1000;
                if (zmq_poll(items, 2, timeout_ms) < 0 && zmq_errno() != EINTR)
                        break;
                if (items[0].revents & ZMQ_POLLIN) {
                        char *cmd = zstr_recv(pipe);
                        bool term = !cmd || streq(cmd, "$TERM");
                        free(cmd);
                        if (term)
                                break;
                }
                /* Events left over from a capped pass keep the socket readable: zmq_poll
                 * returns at once for them. */
                process(g);
                shed(g, emo_now_us());
        }
}

int emo_connguard_new(zsock_t *router, unsigned max_connections, uint64_t memory_budget, emo_connguard_t **ret) {
        emo_connguard_t *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->statm_fd = -1;
        pthread_mutex_init(&g->seen_lock, NULL);
        g->max = max_connections;
        g->budget = memory_budget;
        g->page_size = sysconf(_SC_PAGESIZE);
        if (memory_budget) {
                g->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
                if (g->statm_fd < 0) {
                        int r = -errno;
                        emo_connguard_free(g);
                        return r;
                }
        }
        g->router = zsock_resolve(router);
        char endpoint[64];
        snprintf(endpoint, sizeof(endpoint), "inproc://emotiond-connguard-%p", (void *) g);
        if (zmq_socket_monitor(g->router, endpoint, ZMQ_EVENT_LISTENING | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) <
            0) {
                int r = -(zmq_errno() ?: EINVAL);
                free(g);
                return r;
        }
        g->monitoring = true;
        /* libzmq sends events without waiting and drops them when the pipe is full: an unlimited
         * receive side (an inproc pipe's limit is the sum of both sides', 0 if either is 0) keeps
         * every ACCEPTED, however long a flood. Each event is a few dozen bytes. */
        g->monitor = zsock_new(ZMQ_PAIR);
        if (!g->monitor) {
                emo_connguard_free(g);
                return -ENOMEM;
        }
        zsock_set_rcvhwm(g->monitor, 0);
        if (zsock_connect(g->monitor, "%s", endpoint) < 0) {
                int r = -(zmq_errno() ?: EINVAL);
                emo_connguard_free(g);
                return r;
        }
        g->actor = zactor_new(guard_actor, g);
        if (!g->actor) {
                emo_connguard_free(g);
                return -ENOMEM;
        }
        *ret = g;
        return 0;
}

unsigned emo_connguard_open(emo_connguard_t *g) {
        return atomic_load(&g->open_shown);
}

uint64_t emo_connguard_refused(emo_connguard_t *g) {
        return atomic_load(&g->refused_shown);
}

uint64_t emo_connguard_shed(emo_connguard_t *g, uint64_t *ret_episodes) {
        if (ret_episodes)
                *ret_episodes = atomic_load(&g->episodes_shown);
        return atomic_load(&g->shed_shown);
}

void emo_connguard_seen(emo_connguard_t *g, int fd, int64_t now_us) {
        if (fd < 0)
                return;
        pthread_mutex_lock(&g->seen_lock);
        if ((size_t) fd < g->n_conns)
                g->conns[fd].last_us = now_us;
        pthread_mutex_unlock(&g->seen_lock);
}

emo_connguard_t *emo_connguard_free(emo_connguard_t *g) {
        if (!g)
                return NULL;
        zactor_destroy(&g->actor);
        if (g->monitoring)
                zmq_socket_monitor(g->router, NULL, 0);
        zsock_destroy(&g->monitor);
        if (g->statm_fd >= 0)
                close(g->statm_fd);
        pthread_mutex_destroy(&g->seen_lock);
        free(g->conns);
        free(g->pending);
        free(g->silent);
        free(g);
        return NULL;
}
