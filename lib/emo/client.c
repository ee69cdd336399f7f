#include "emo/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "emo/endpoint.h"
#include "emo/util.h"

struct emo_client {
        char *endpoint;
        zsock_t *sock;
        zsock_t *monitor; /* handshake events of sock (tcp:// only), or NULL */
        uint8_t server_key[32];
        zcert_t *cert;            /* this client's CURVE key pair; NULL: plaintext */
        unsigned lost_handshakes; /* connections closed in the handshake since the last that succeeded */
        bool up;                  /* a handshake succeeded and that connection has not closed since */
        uint64_t drops;           /* connections that were up and closed, since the client was made */
        uint64_t drops_at_send;   /* drops when the last request went out */
        uint64_t next_id;
};

static bool is_tcp(const emo_client_t *c) {
        return strncmp(c->endpoint, "tcp://", 6) == 0;
}

/* Watch the handshakes of a tcp socket, so that a refusal is told at once: libzmq would retry it
 * silently forever, and the caller would see only timeouts. */
static zsock_t *monitor_socket(zsock_t *s) {
        static unsigned counter;
        char ep[96];
        unsigned n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        snprintf(ep, sizeof(ep), "inproc://emo-client-monitor-%p-%u", (void *) s, n);
        if (zmq_socket_monitor(zsock_resolve(s), ep,
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                                       ZMQ_EVENT_DISCONNECTED) < 0)
                return NULL;
        zsock_t *m = zsock_new(ZMQ_PAIR);
        if (m && zsock_connect(m, "%s", ep) < 0)
                zsock_destroy(&m);
        return m;
}

/* Close the socket and its monitor: the monitor is stopped first, so that libzmq does not report
 * the closing to a monitor socket already gone. */
static void drop_socket(emo_client_t *c) {
        if (c->sock && c->monitor)
                zmq_socket_monitor(zsock_resolve(c->sock), NULL, 0);
        zsock_destroy(&c->monitor);
        zsock_destroy(&c->sock);
}

static int open_socket(emo_client_t *c) {
        zsock_t *s = zsock_new(ZMQ_DEALER);
        if (!s)
                return -ENOMEM;
        zsock_set_linger(s, 0);
        if (c->cert && is_tcp(c)) {
                zcert_apply(c->cert, s);
                zsock_set_curve_serverkey_bin(s, c->server_key);
        }
        zsock_t *m = is_tcp(c) ? monitor_socket(s) : NULL;
        if (is_tcp(c) && !m) {
                zsock_destroy(&s);
                return -ENOMEM;
        }
        if (zsock_connect(s, "%s", c->endpoint) < 0) {
                int r = -(zmq_errno() ?: EINVAL);
                /* A scheme libzmq does not know (http://) or cannot use with DEALER is a malformed
                 * endpoint too, not a transient failure. */
                if (r == -EPROTONOSUPPORT || r == -ENOCOMPATPROTO)
                        r = -EINVAL;
                zsock_destroy(&m);
                zsock_destroy(&s);
                return r;
        }
        drop_socket(c);
        c->sock = s;
        c->monitor = m;
        c->lost_handshakes = 0;
        c->up = false;
        return 0;
}

/* A connection closed in the middle of its handshake is a daemon going away (libzmq reconnects)
 * or a refusal libzmq could not name: a wrong server key (the daemon cannot read our HELLO and
 * hangs up), or CURVE on one side only when the daemon hangs up before its greeting has reached
 * us (it closes as soon as it has read ours; whether its own went out first is a race). This many
 * in a row, with none completed, is taken for the refusal. */
#define LOST_HANDSHAKES_MAX 3

static int greeting_probe(const emo_client_t *c, int timeout_ms);

/* The first handshake failure the monitor reported, as an error of emo_client_recv: -EACCES the
 * daemon refused our key, -EPROTONOSUPPORT CURVE on one side only, -EKEYREJECTED the handshake
 * broke off with our CURVE key (see LOST_HANDSHAKES_MAX), -ECONNRESET the connections were
 * closed before any daemon greeted us (a TCP load balancer with no live daemon behind it accepts
 * and closes: that is no key problem). 0 when none. Also counts in c->drops a connection that
 * closed after its handshake: a request sent on it may have been lost with it. */
static int handshake_error(emo_client_t *c) {
        if (!c->monitor)
                return 0;
        for (;;) {
                zmsg_t *ev = zmsg_recv_nowait(c->monitor);
                if (!ev)
                        return 0;
                zframe_t *f = zmsg_first(ev);
                uint16_t event = 0;
                uint32_t value = 0;
                if (f && zframe_size(f) == 6) {
                        memcpy(&event, zframe_data(f), 2);
                        memcpy(&value, zframe_data(f) + 2, 4);
                }
                zmsg_destroy(&ev);
                if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                        c->lost_handshakes = 0;
                        c->up = true;
                }
                if (event == ZMQ_EVENT_DISCONNECTED) {
                        c->drops += c->up;
                        c->up = false;
                }
                if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
                        return -EACCES;
                if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
                        return value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH ? -EPROTONOSUPPORT : -EKEYREJECTED;
                if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && ++c->lost_handshakes >= LOST_HANDSHAKES_MAX) {
                        /* Only a peer that greets can have refused us; the counting restarts, so a
                         * balancer whose daemons come back is tried again by the next call. */
                        if (greeting_probe(c, 1000) <= 0) {
                                c->lost_handshakes = 0;
                                return -ECONNRESET;
                        }
                        return c->cert ? -EKEYREJECTED : -EPROTONOSUPPORT;
                }
        }
}

const char *emo_client_strerror(int error) {
        switch (error) {
        case -EACCES:
                return "the daemon refused this client's CURVE key (its public certificate is not in the daemon's "
                       "clients_dir)";
        case -EPROTONOSUPPORT:
                return "security mismatch: the daemon requires CURVE and no --server-key was given, or the daemon "
                       "serves plaintext and a server key was given";
        case -ECONNRESET:
                return "the connection was closed before any daemon answered: nothing serves behind this endpoint "
                       "(a load balancer with no live daemon, or a daemon refusing connections)";
        case -EKEYREJECTED:
                return "the CURVE handshake failed: the server key given is not this daemon's (check "
                       "'emotiond --print-public-key')";
        default:
                return strerror(-error);
        }
}

/* A Z85 public key (40 characters), or a certificate file holding one. */
static int read_server_key(const char *s, uint8_t key[32]) {
        if (strlen(s) == 40 && zmq_z85_decode(key, s))
                return 0;
        zcert_t *cert = zcert_load(s);
        if (!cert)
                return -EINVAL;
        memcpy(key, zcert_public_key(cert), 32);
        zcert_destroy(&cert);
        return 0;
}

/* Take the keys for the next socket. */
static int configure_curve(emo_client_t *c, const char *server_key, const char *cert_path) {
        if (!server_key) {
                zcert_destroy(&c->cert);
                return 0;
        }
        uint8_t key[32];
        if (read_server_key(server_key, key) < 0)
                return -EBADMSG;
        zcert_t *cert = NULL;
        if (cert_path) {
                cert = zcert_load(cert_path);
                if (!cert)
                        return -ENOENT;
                static const char zero[41] = "0000000000000000000000000000000000000000";
                if (streq(zcert_secret_txt(cert), zero)) {
                        zcert_destroy(&cert);
                        return -ENOKEY;
                }
        } else if (!(cert = zcert_new())) /* a throwaway key pair: the daemon will refuse it */
                return -ENOMEM;
        memcpy(c->server_key, key, 32);
        zcert_destroy(&c->cert);
        c->cert = cert;
        return 0;
}

int emo_client_set_curve(emo_client_t *c, const char *server_key, const char *cert_path) {
        int r = configure_curve(c, server_key, cert_path);
        if (r < 0)
                return r;
        return is_tcp(c) ? open_socket(c) : 0;
}

char *emo_client_stream_id(const char *name) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t) sizeof(r)) {
                /* No entropy yet (early boot): time and pid still differ between clients. */
                r = (uint32_t) emo_now_us() ^ ((uint32_t) getpid() << 16);
        }
        size_t keep = strlen(name), max = EMO_STREAM_ID_MAX - 9;
        if (keep > max) {
                keep = max;
                while (keep > 0 && ((unsigned char) name[keep] & 0xc0) == 0x80) /* not inside a character */
                        keep--;
        }
        char *id = NULL;
        if (asprintf(&id, "%.*s#%08x", (int) keep, name, r) < 0)
                return NULL;
        return id;
}

int emo_client_new(const char *endpoint, emo_client_t **ret) {
        emo_client_t *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->endpoint = endpoint ? strdup(endpoint) : emo_endpoint_default_connect();
        /* Ids only need to be unique per connection: every socket (and so every reconnect) gets
         * its own routing identity, so late replies to an old socket never reach the new one. */
        c->next_id = 1;
        const char *key = getenv("EMOTIOND_SERVER_KEY"), *cert = getenv("EMOTIOND_CERT");
        int r = c->endpoint ? 0 : -ENOMEM;
        if (r >= 0 && key && *key && is_tcp(c))
                r = configure_curve(c, key, cert && *cert ? cert : NULL);
        if (r >= 0)
                r = open_socket(c);
        if (r < 0) {
                emo_client_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

emo_client_t *emo_client_free(emo_client_t *c) {
        if (!c)
                return NULL;
        drop_socket(c);
        zcert_destroy(&c->cert);
        free(c->endpoint);
        free(c);
        return NULL;
}

const char *emo_client_endpoint(const emo_client_t *c) {
        return c->endpoint;
}

int emo_client_reconnect(emo_client_t *c) {
        return open_socket(c);
}

int emo_client_send(emo_client_t *c, emo_request_t *req, int send_timeout_ms, uint64_t *ret_id) {
        req->protocol_version = EMO_PROTOCOL_VERSION;
        req->request_id = c->next_id++;
        zframe_t *f = emo_request_pack_frame(req);
        if (!f)
                return -ENOMEM;
        /* A refused handshake leaves the socket without a peer, so a send would wait for one
         * until send_timeout_ms: say why instead. */
        int r = handshake_error(c);
        if (r < 0) {
                zframe_destroy(&f);
                return r;
        }
        c->drops_at_send = c->drops; /* from here on, a drop may take this request with it */
        zmq_pollitem_t items[2] = {
                { .socket = zsock_resolve(c->sock), .events = ZMQ_POLLOUT },
                { .socket = c->monitor ? zsock_resolve(c->monitor) : NULL, .events = ZMQ_POLLIN },
        };
        int64_t deadline = emo_now_us() + (int64_t) send_timeout_ms * 1000;
        while (zframe_send(&f, c->sock, ZFRAME_DONTWAIT) < 0) {
                int e = zmq_errno();
                if (e == EAGAIN && (r = handshake_error(c)) < 0)
                        e = -r;
                else if (e == EAGAIN) {
                        int64_t left = deadline - emo_now_us();
                        if (send_timeout_ms >= 0 && left <= 0)
                                e = ETIMEDOUT;
                        else if (zmq_poll(items, c->monitor ? 2 : 1,
                                          send_timeout_ms < 0 ? -1 : (long) ((left + 999) / 1000)) >= 0 ||
                                 zmq_errno() == EINTR)
                                continue;
                        else
                                e = zmq_errno();
                }
                zframe_destroy(&f);
                return -(e ?: EIO);
        }
        if (ret_id)
                *ret_id = req->request_id;
        return 0;
}

/* emo_client_recv; with drops, -ECONNABORTED as soon as a connection that was up has closed since
 * *drops was counted (*drops is then the new count): the replies to requests sent on it may be
 * lost with it. */
static int recv_reply(emo_client_t *c, int timeout_ms, uint64_t *drops, emo_reply_t **ret) {
        zmq_pollitem_t items[2] = {
                { .socket = zsock_resolve(c->sock), .events = ZMQ_POLLIN },
                { .socket = c->monitor ? zsock_resolve(c->monitor) : NULL, .events = ZMQ_POLLIN },
        };
        int64_t deadline = timeout_ms < 0 ? 0 : emo_now_us() + (int64_t) timeout_ms * 1000;
        for (;;) {
                int r = handshake_error(c);
                if (r < 0)
                        return r;
                if (drops && c->drops != *drops) {
                        *drops = c->drops;
                        return -ECONNABORTED;
                }
                long left = timeout_ms < 0 ? -1 : (long) ((deadline - emo_now_us() + 999) / 1000);
                if (timeout_ms >= 0 && left < 0)
                        left = 0;
                int n = zmq_poll(items, c->monitor ? 2 : 1, left);
                if (n < 0)
                        return -(zmq_errno() ?: EIO);
                if (items[0].revents & ZMQ_POLLIN)
                        break;
                if (n == 0)
                        return -ETIMEDOUT;
        }
        zmsg_t *msg = zmsg_recv(c->sock);
        if (!msg)
                return -(zmq_errno() ?: EIO);
        zframe_t *body = zmsg_last(msg);
        /* The daemon mirrors our envelope: one frame, or an empty delimiter then the body. */
        int r = zmsg_size(msg) <= 2 && body ? emo_reply_unpack(zframe_data(body), zframe_size(body), ret) : -EPROTO;
        zmsg_destroy(&msg);
        return r;
}

int emo_client_recv(emo_client_t *c, int timeout_ms, emo_reply_t **ret) {
        return recv_reply(c, timeout_ms, NULL, ret);
}

int emo_client_recv_or_drop(emo_client_t *c, int timeout_ms, uint64_t *drops, emo_reply_t **ret) {
        return recv_reply(c, timeout_ms, drops, ret);
}

int emo_client_call(emo_client_t *c, emo_request_t *req, int timeout_ms, int attempts, emo_reply_t **ret) {
        int r = -ETIMEDOUT;
        for (int attempt = 0; attempt < attempts; attempt++) {
                if (attempt > 0 && (r = emo_client_reconnect(c)) < 0)
                        return r;
                uint64_t id;
                r = emo_client_send(c, req, timeout_ms, &id);
                if (r == -ETIMEDOUT)
                        continue;
                if (r < 0)
                        return r;
                int64_t deadline = emo_now_us() + (int64_t) timeout_ms * 1000;
                for (;;) {
                        int64_t left = deadline - emo_now_us();
                        if (left <= 0) {
                                r = -ETIMEDOUT;
                                break;
                        }
                        emo_reply_t *reply = NULL;
                        /* A daemon that vanished with the request (killed; behind a load balancer,
                         * whose other daemons the next connection reaches) is not waited for. */
                        r = recv_reply(c, (int) ((left + 999) / 1000), &c->drops_at_send, &reply);
                        if (r == -ETIMEDOUT || r == -ECONNABORTED)
                                break;
                        if (r < 0)
                                return r; /* a refused handshake too: retrying cannot help */
                        if (reply->request_id == id) {
                                *ret = reply;
                                return 0;
                        }
                        emo_reply_free(reply); /* a late reply to an earlier request */
                }
        }
        return r == -ECONNABORTED ? -ETIMEDOUT : r;
}

int emo_client_monitor_fd(emo_client_t *c, int *ret_fd) {
        if (!c->monitor)
                return -ENOTSUP;
        *ret_fd = zsock_fd(c->monitor);
        return 0;
}

int emo_client_check_drops(emo_client_t *c, uint64_t *drops) {
        int r = handshake_error(c);
        if (r < 0)
                return r;
        if (c->drops == *drops)
                return 0;
        *drops = c->drops;
        return 1;
}

int emo_client_fd(emo_client_t *c, int *ret_fd) {
        int fd = -1;
        size_t len = sizeof(fd);
        if (zmq_getsockopt(zsock_resolve(c->sock), ZMQ_FD, &fd, &len) < 0)
                return -(zmq_errno() ?: EIO);
        *ret_fd = fd;
        return 0;
}

int emo_client_readable(emo_client_t *c) {
        int events = 0;
        size_t len = sizeof(events);
        if (zmq_getsockopt(zsock_resolve(c->sock), ZMQ_EVENTS, &events, &len) < 0)
                return -(zmq_errno() ?: EIO);
        return (events & ZMQ_POLLIN) ? 1 : 0;
}

/* Start a non-blocking connect(2) of a new socket to addr and wait for its outcome, at most until
 * deadline_us (emo_now_us). 0 connected, 1 still pending at the deadline, -errno refused or
 * failed. */
static int probe_connect(int family, const struct sockaddr *addr, socklen_t len, int64_t deadline_us) {
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        int r = 0;
        if (connect(fd, addr, len) < 0) {
                r = -errno;
                /* A unix socket whose backlog is full says EAGAIN: someone listens there. */
                if (r == -EAGAIN && family == AF_UNIX)
                        r = 0;
                else if (r == -EINPROGRESS) {
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        int64_t left = deadline_us - emo_now_us();
                        int n = left > 0 ? poll(&p, 1, (int) ((left + 999) / 1000)) : 0;
                        int err = 0;
                        socklen_t elen = sizeof(err);
                        if (n < 0)
                                r = -errno;
                        else if (n == 0)
                                r = 1;
                        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
                                r = -errno;
                        else
                                r = -err;
                }
        }
        close(fd);
        return r;
}

static int probe_ipc(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t len;
        if (path[0] == '@') { /* abstract: no file, a name that nobody may hold */
                size_t n = strlen(path + 1);
                if (n + 1 > sizeof(sa.sun_path))
                        return -ENAMETOOLONG;
                memcpy(sa.sun_path + 1, path + 1, n);
                len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + n);
        } else {
                if (strlen(path) >= sizeof(sa.sun_path))
                        return -ENAMETOOLONG;
                /* Missing is told apart from refused: a file left by a killed daemon refuses. */
                if (access(path, F_OK) < 0)
                        return -errno;
                strcpy(sa.sun_path, path);
                len = sizeof(sa);
        }
        /* A local connect(2) completes or fails at once. */
        return probe_connect(AF_UNIX, (struct sockaddr *) &sa, len, emo_now_us());
}

/* The addresses of tcp://[source;]host:port (address without "tcp://"), the host possibly in
 * brackets (IPv6). 0 with *ret (freeaddrinfo), 1 when it cannot be told now (no port; not
 * resolvable: libzmq says or retries), -ENOMEM. */
static int tcp_addresses(const char *address, struct addrinfo **ret) {
        const char *semi = strchr(address, ';');
        _cleanup_free_ char *host = strdup(semi ? semi + 1 : address);
        if (!host)
                return -ENOMEM;
        char *colon = strrchr(host, ':');
        if (!colon)
                return 1;
        *colon = '\0';
        const char *port = colon + 1;
        char *h = host;
        size_t hl = strlen(h);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
                h[hl - 1] = '\0';
                h++;
        }
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
        return getaddrinfo(h, port, &hints, ret) == 0 ? 0 : 1;
}

/* Whether whatever accepts connections at c's tcp:// endpoint speaks ZMTP: a ZeroMQ peer sends
 * its signature (first byte 0xFF) as soon as it is connected, before reading anything, while a
 * TCP load balancer with no live backend accepts and closes without a byte. 1 greeted, 0 closed,
 * refused or silent for timeout_ms, 1 too when it cannot be told. */
static int greeting_probe(const emo_client_t *c, int timeout_ms) {
        struct addrinfo *res = NULL;
        if (tcp_addresses(c->endpoint + 6, &res) != 0)
                return 1;
        int64_t deadline = emo_now_us() + (int64_t) timeout_ms * 1000;
        int greeted = 0;
        for (struct addrinfo *a = res; a && !greeted; a = a->ai_next) {
                int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0)
                        continue;
                if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS)
                        for (;;) {
                                struct pollfd p = { .fd = fd, .events = POLLIN };
                                int64_t left = deadline - emo_now_us();
                                if (left <= 0 || poll(&p, 1, (int) ((left + 999) / 1000)) <= 0) {
                                        if (left > 0 && errno == EINTR)
                                                continue;
                                        break;
                                }
                                unsigned char b = 0;
                                greeted = recv(fd, &b, 1, 0) == 1 && b == 0xff;
                                break;
                        }
                close(fd);
        }
        freeaddrinfo(res);
        return greeted;
}

static int probe_tcp(const char *address, int timeout_ms) {
        struct addrinfo *res = NULL;
        int k = tcp_addresses(address, &res);
        if (k != 0)
                return k < 0 ? k : 0; /* libzmq will say what is wrong with it, or retries */
        int64_t deadline = emo_now_us() + (int64_t) timeout_ms * 1000;
        int r = -ECONNREFUSED;
        for (struct addrinfo *a = res; a; a = a->ai_next) {
                int k = probe_connect(a->ai_family, a->ai_addr, a->ai_addrlen, deadline);
                if (k >= 0) {
                        r = 0; /* connected, or no answer either way in time: cannot tell */
                        break;
                }
                r = k;
        }
        freeaddrinfo(res);
        return r;
}

int emo_client_probe(const emo_client_t *c, int timeout_ms) {
        const char *ep = c->endpoint;
        if (strncmp(ep, "ipc://", 6) == 0)
                return probe_ipc(ep + 6);
        if (strncmp(ep, "tcp://", 6) == 0)
                return probe_tcp(ep + 6, timeout_ms);
        return 0;
}
