#include "emo/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "emo/endpoint.h"
#include "emo/util.h"

struct emo_client {
        char *endpoint;
        zsock_t *sock;
        uint64_t next_id;
};

static int open_socket(emo_client_t *c) {
        zsock_t *s = zsock_new(ZMQ_DEALER);
        if (!s)
                return -ENOMEM;
        zsock_set_linger(s, 0);
        if (zsock_connect(s, "%s", c->endpoint) < 0) {
                int r = -(zmq_errno() ?: EINVAL);
                /* A scheme libzmq does not know (http://) or cannot use with DEALER is a malformed
                 * endpoint too, not a transient failure. */
                if (r == -EPROTONOSUPPORT || r == -ENOCOMPATPROTO)
                        r = -EINVAL;
                zsock_destroy(&s);
                return r;
        }
        zsock_destroy(&c->sock);
        c->sock = s;
        return 0;
}

int emo_client_new(const char *endpoint, emo_client_t **ret) {
        emo_client_t *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->endpoint = endpoint ? strdup(endpoint) : emo_endpoint_default_connect();
        /* Ids only need to be unique per connection: every socket (and so every reconnect) gets
         * its own routing identity, so late replies to an old socket never reach the new one. */
        c->next_id = 1;
        int r = c->endpoint ? open_socket(c) : -ENOMEM;
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
        zsock_destroy(&c->sock);
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
        zsock_set_sndtimeo(c->sock, send_timeout_ms);
        if (zframe_send(&f, c->sock, 0) < 0) {
                int e = zmq_errno();
                zframe_destroy(&f);
                return e == EAGAIN ? -ETIMEDOUT : -(e ?: EIO);
        }
        if (ret_id)
                *ret_id = req->request_id;
        return 0;
}

int emo_client_recv(emo_client_t *c, int timeout_ms, emo_reply_t **ret) {
        zmq_pollitem_t item = { .socket = zsock_resolve(c->sock), .events = ZMQ_POLLIN };
        int n = zmq_poll(&item, 1, timeout_ms);
        if (n < 0)
                return -(zmq_errno() ?: EIO);
        if (n == 0)
                return -ETIMEDOUT;
        zmsg_t *msg = zmsg_recv(c->sock);
        if (!msg)
                return -(zmq_errno() ?: EIO);
        zframe_t *body = zmsg_last(msg);
        /* The daemon mirrors our envelope: one frame, or an empty delimiter then the body. */
        int r = zmsg_size(msg) <= 2 && body ? emo_reply_unpack(zframe_data(body), zframe_size(body), ret) : -EPROTO;
        zmsg_destroy(&msg);
        return r;
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
                        r = emo_client_recv(c, (int) ((left + 999) / 1000), &reply);
                        if (r == -ETIMEDOUT)
                                break;
                        if (r < 0)
                                return r;
                        if (reply->request_id == id) {
                                *ret = reply;
                                return 0;
                        }
                        emo_reply_free(reply); /* a late reply to an earlier request */
                }
        }
        return r;
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

static int probe_tcp(const char *address, int timeout_ms) {
        /* tcp://[source;]host:port, the host possibly in brackets (IPv6). */
        const char *semi = strchr(address, ';');
        _cleanup_free_ char *host = strdup(semi ? semi + 1 : address);
        if (!host)
                return -ENOMEM;
        char *colon = strrchr(host, ':');
        if (!colon)
                return 0; /* libzmq will say what is wrong with it */
        *colon = '\0';
        const char *port = colon + 1;
        char *h = host;
        size_t hl = strlen(h);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
                h[hl - 1] = '\0';
                h++;
        }
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
        if (getaddrinfo(h, port, &hints, &res) != 0)
                return 0; /* not resolvable now: leave it to libzmq, which retries */
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
