#include "emo/client.h"

#include <errno.h>
#include <string.h>

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
