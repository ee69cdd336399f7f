#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "auth.h"   /* EMO_AUTH_DOMAIN */
#include "config.h" /* EMO_ENDPOINT_SEPARATORS */
#include "emo/endpoint.h"
#include "emo/util.h"

typedef struct passed {
        int fd;
        char *endpoint; /* named after the socket's own address */
        struct sockaddr_storage addr;
        socklen_t addr_len;
} passed_t;

typedef struct own_file {
        char *path;
        dev_t dev;
        ino_t ino;
} own_file_t;

struct emo_listeners {
        passed_t *passed;
        size_t n_passed;
        own_file_t *files;
        size_t n_files;
        char *description;
};

static void passed_free(passed_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(p[i].endpoint);
        free(p);
}

/* The endpoint that names a listening socket's address, as libzmq writes it. */
static int endpoint_of(const struct sockaddr_storage *ss, socklen_t len, char **ret) {
        char host[INET6_ADDRSTRLEN];
        int r = -1;
        switch (ss->ss_family) {
        case AF_UNIX: {
                const struct sockaddr_un *un = (const void *) ss;
                size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
                if (n == 0)
                        return -EINVAL; /* unnamed */
                if (un->sun_path[0] == '\0') /* abstract: ipc://@name */
                        r = asprintf(ret, "ipc://@%.*s", (int) (n - 1), un->sun_path + 1);
                else
                        r = asprintf(ret, "ipc://%.*s", (int) strnlen(un->sun_path, n), un->sun_path);
                break;
        }
        case AF_INET: {
                const struct sockaddr_in *in = (const void *) ss;
                if (!inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)))
                        return -errno;
                r = asprintf(ret, "tcp://%s:%u", host, ntohs(in->sin_port));
                break;
        }
        case AF_INET6: {
                const struct sockaddr_in6 *in6 = (const void *) ss;
                if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)))
                        return -errno;
                r = asprintf(ret, "tcp://[%s]:%u", host, ntohs(in6->sin6_port));
                break;
        }
        default:
                return -EAFNOSUPPORT;
        }
        return r < 0 ? -ENOMEM : 0;
}

/* The listening sockets systemd passed, if any. unset: forget $LISTEN_FDS (the daemon proper; the
 * configuration check leaves them). */
static int take_passed(bool unset, passed_t **ret, size_t *ret_n, emo_error_t *err) {
        int n = sd_listen_fds(unset);
        if (n < 0)
                return emo_error_set(err, n,
                                     "Failed to read the sockets passed by systemd ($LISTEN_FDS): %s", strerror(-n));
        passed_t *p = n > 0 ? calloc((size_t) n, sizeof(*p)) : NULL;
        if (n > 0 && !p)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                p[i].fd = fd;
                p[i].addr_len = sizeof(p[i].addr);
                if ((sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0 &&
                     sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0) ||
                    getsockname(fd, (struct sockaddr *) &p[i].addr, &p[i].addr_len) < 0 ||
                    endpoint_of(&p[i].addr, p[i].addr_len, &p[i].endpoint) < 0) {
                        passed_free(p, (size_t) n);
                        return emo_error_set(err, -ENOTSOCK,
                                             "Socket %d from systemd is not a listening unix or TCP stream socket: "
                                             "use ListenStream= with a path or a port in the socket unit", fd);
                }
                /* libzmq accepts when poll says so; a connection reset in between must not block it. */
                int flags = fcntl(fd, F_GETFL);
                if (flags >= 0)
                        (void) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        }
        *ret = p;
        *ret_n = (size_t) n;
        return 0;
}

/* Does the configured endpoint name the passed socket's address? ipc: the same path. tcp: the
 * same port and address, "*" being the wildcard address of either family. */
static bool covers(const passed_t *p, const char *endpoint) {
        if (strncmp(endpoint, "ipc://", 6) == 0)
                return streq(endpoint, p->endpoint);
        if (strncmp(endpoint, "tcp://", 6) != 0 || (p->addr.ss_family != AF_INET && p->addr.ss_family != AF_INET6))
                return false;
        _cleanup_free_ char *host = strdup(endpoint + 6);
        if (!host)
                return false;
        char *colon = strrchr(host, ':');
        if (!colon)
                return false;
        *colon = '\0';
        const char *port = colon + 1;
        char *h = host;
        if (h[0] == '[' && h[strlen(h) - 1] == ']') {
                h[strlen(h) - 1] = '\0';
                h++;
        }
        const struct sockaddr_in *in = (const void *) &p->addr;
        const struct sockaddr_in6 *in6 = (const void *) &p->addr;
        unsigned passed_port = ntohs(p->addr.ss_family == AF_INET ? in->sin_port : in6->sin6_port);
        char *end = NULL;
        unsigned long want_port = strtoul(port, &end, 10);
        if (!*port || *end || want_port != passed_port)
                return false;
        bool any = p->addr.ss_family == AF_INET ? in->sin_addr.s_addr == htonl(INADDR_ANY)
                                                : IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
        if (streq(h, "*"))
                return any;
        struct addrinfo hints = { .ai_family = p->addr.ss_family, .ai_socktype = SOCK_STREAM }, *res = NULL;
        if (getaddrinfo(h, NULL, &hints, &res) != 0)
                return false;
        bool same = false;
        for (struct addrinfo *a = res; a && !same; a = a->ai_next)
                same = p->addr.ss_family == AF_INET
                               ? ((const struct sockaddr_in *) a->ai_addr)->sin_addr.s_addr == in->sin_addr.s_addr
                               : memcmp(&((const struct sockaddr_in6 *) a->ai_addr)->sin6_addr, &in6->sin6_addr,
                                        sizeof(in6->sin6_addr)) == 0;
        freeaddrinfo(res);
        return same;
}

static const passed_t *covering(const passed_t *p, size_t n, const char *endpoint) {
        for (size_t i = 0; i < n; i++)
                if (covers(&p[i], endpoint))
                        return &p[i];
        return NULL;
}

/* The socket file of an ipc endpoint, or NULL for another transport or an abstract socket. */
static const char *ipc_file(const char *endpoint) {
        if (strncmp(endpoint, "ipc://", 6) != 0 || endpoint[6] == '@')
                return NULL;
        return endpoint + 6;
}

static void remove_own(own_file_t *f) {
        struct stat st;
        if (f->path && stat(f->path, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino)
                (void) unlink(f->path);
        free(f->path);
        f->path = NULL;
}

emo_listeners_t *emo_listeners_free(emo_listeners_t *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n_files; i++)
                remove_own(&l->files[i]);
        free(l->files);
        passed_free(l->passed, l->n_passed);
        free(l->description);
        free(l);
        return NULL;
}

const char *emo_listeners_describe(const emo_listeners_t *l) {
        return l->description;
}

static int describe_add(emo_listeners_t *l, const char *endpoint, bool from_systemd) {
        char *d = NULL;
        if (asprintf(&d, "%s%s%s%s", l->description ?: "", l->description ? ", " : "", endpoint,
                     from_systemd ? " (from systemd)" : "") < 0)
                return -ENOMEM;
        free(l->description);
        l->description = d;
        return 0;
}

/* Remember the socket file just bound at path, to remove it on exit. */
static int remember_file(emo_listeners_t *l, const char *path) {
        struct stat st;
        if (stat(path, &st) < 0)
                return 0; /* gone already: nothing to remove */
        own_file_t *f = realloc(l->files, (l->n_files + 1) * sizeof(*f));
        if (!f)
                return -ENOMEM;
        l->files = f;
        f[l->n_files] = (own_file_t) { .path = strdup(path), .dev = st.st_dev, .ino = st.st_ino };
        if (!f[l->n_files].path)
                return -ENOMEM;
        l->n_files++;
        return 0;
}

static bool is_tcp(const char *ep) {
        return strncmp(ep, "tcp://", 6) == 0;
}

/* Set router's security options for the next bind: CURVE with ZAP for tcp://, none otherwise.
 * -EPERM when tcp:// has neither a certificate nor insecure_tcp. */
static int secure_for(zsock_t *router, const char *ep, const emo_tcp_security_t *sec, emo_error_t *err) {
        if (is_tcp(ep) && sec && sec->cert) {
                zsock_set_curve_server(router, 1);
                zcert_apply(sec->cert, router);
                zsock_set_zap_domain(router, EMO_AUTH_DOMAIN);
                return 0;
        }
        if (is_tcp(ep) && !(sec && sec->insecure))
                return emo_error_set(err, -EPERM,
                                     "Refusing to serve %s without CURVE: failed to load the server certificate "
                                     "%s (%s); make one with 'emotion keygen %s' (then copy clients' public "
                                     "certificates into clients_dir), or set insecure_tcp = true to serve it in "
                                     "plaintext on a trusted network",
                                     ep, sec && sec->cert_path ? sec->cert_path : "(none)",
                                     sec && sec->cert_error ? sec->cert_error : "not configured",
                                     sec && sec->cert_path ? sec->cert_path : "FILE");
        zsock_set_curve_server(router, 0);
        /* libzmq 4.3 asks ZAP about these connections too once a domain was set; this one tells
         * the handler that they are not the CURVE listeners' (an empty one cannot be set back). */
        zsock_set_zap_domain(router, EMO_AUTH_LOCAL_DOMAIN);
        return 0;
}

static int bind_own(zsock_t *router, const char *ep, const emo_tcp_security_t *sec, emo_listeners_t *l,
                    emo_error_t *err) {
        int r = secure_for(router, ep, sec, err);
        if (r < 0)
                return r;
        r = emo_endpoint_prepare(ep);
        if (r == -EADDRINUSE)
                return emo_error_set(err, r, "Failed to bind %s: another emotiond is serving there", ep);
        if (r < 0)
                return emo_error_set(err, r, "Failed to prepare %s: %s", ep, strerror(-r));
        if (zsock_bind(router, "%s", ep) < 0) {
                r = -(zmq_errno() ?: EINVAL);
                return emo_error_set(err, r, "Failed to bind %s: %s", ep, zmq_strerror(-r));
        }
        const char *file = ipc_file(ep);
        if (file && (r = remember_file(l, file)) < 0)
                return r;
        return describe_add(l, ep, false);
}

int emo_listeners_bind(zsock_t *router, const char *endpoints, const emo_tcp_security_t *sec, emo_listeners_t **ret,
                       emo_error_t *err) {
        emo_listeners_t *l = calloc(1, sizeof(*l));
        _cleanup_free_ char *list = strdup(endpoints);
        if (!l || !list) {
                free(l);
                return -ENOMEM;
        }
        int r = take_passed(true, &l->passed, &l->n_passed, err);
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < l->n_passed; i++) {
                passed_t *p = &l->passed[i];
                if (p->addr.ss_family == AF_INET6)
                        zsock_set_ipv6(router, 1);
                if ((r = secure_for(router, p->endpoint, sec, err)) < 0)
                        goto fail;
                zsock_set_use_fd(router, p->fd);
                int b = zsock_bind(router, "%s", p->endpoint);
                zsock_set_use_fd(router, -1);
                if (b < 0) {
                        r = -(zmq_errno() ?: EINVAL);
                        emo_error_set(err, r, "Failed to serve socket %d from systemd (%s): %s", p->fd, p->endpoint,
                                 zmq_strerror(-r));
                        goto fail;
                }
                if ((r = describe_add(l, p->endpoint, true)) < 0)
                        goto fail;
        }
        char *save = NULL;
        for (char *ep = strtok_r(list, EMO_ENDPOINT_SEPARATORS, &save); ep;
             ep = strtok_r(NULL, EMO_ENDPOINT_SEPARATORS, &save)) {
                if (covering(l->passed, l->n_passed, ep))
                        continue;
                if ((r = bind_own(router, ep, sec, l, err)) < 0)
                        goto fail;
        }
        /* The configuration check sees `endpoints`, not $EMOTIOND_ENDPOINT: a daemon bound nowhere
         * would still report itself ready. */
        if (!l->description) {
                r = emo_error_set(err, -EINVAL, "Failed to bind: no endpoint in '%s'", endpoints);
                goto fail;
        }
        *ret = l;
        return 0;
fail:
        emo_listeners_free(l);
        return r;
}

/* Would mkdir -p of dir succeed? The nearest existing folder above must let us write in it. */
static int check_creatable(const char *dir, emo_error_t *err, const char *ep) {
        _cleanup_free_ char *d = strdup(dir);
        if (!d)
                return -ENOMEM;
        struct stat st;
        for (;;) {
                if (stat(d, &st) == 0)
                        break;
                if (errno != ENOENT && errno != ENOTDIR)
                        return emo_error_set(err, -errno, "Failed to bind %s: %s: %s", ep, d, strerror(errno));
                char *slash = strrchr(d, '/');
                if (!slash)
                        return 0; /* a relative path from the working folder */
                if (slash == d) {
                        d[1] = '\0';
                        continue;
                }
                *slash = '\0';
        }
        if (!S_ISDIR(st.st_mode))
                return emo_error_set(err, -ENOTDIR, "Failed to bind %s: %s is not a folder", ep, d);
        if (access(d, W_OK | X_OK) < 0) {
                int e = errno;
                return emo_error_set(err, -e, "Failed to bind %s: cannot create the folder %s in %s: %s", ep, dir, d,
                                     strerror(e));
        }
        return 0;
}

static int check_one(const char *ep, const emo_tcp_security_t *sec, emo_error_t *err) {
        const char *file = ipc_file(ep);
        if (file) {
                _cleanup_free_ char *dir = strdup(file);
                if (!dir)
                        return -ENOMEM;
                char *slash = strrchr(dir, '/');
                if (slash && slash != dir) {
                        *slash = '\0';
                        struct stat st;
                        if (stat(dir, &st) < 0 && (errno == ENOENT || errno == ENOTDIR))
                                /* The daemon would create it; --check creates nothing. */
                                return check_creatable(dir, err, ep);
                }
        }
        emo_listeners_t scratch = { 0 };
        zsock_t *s = zsock_new(ZMQ_ROUTER);
        if (!s)
                return -ENOMEM;
        zsock_set_linger(s, 0);
        int r = bind_own(s, ep, sec, &scratch, err);
        zsock_destroy(&s);
        for (size_t i = 0; i < scratch.n_files; i++)
                remove_own(&scratch.files[i]);
        free(scratch.files);
        free(scratch.description);
        return r;
}

int emo_listeners_check(const char *endpoints, const emo_tcp_security_t *sec, emo_error_t *err) {
        passed_t *passed = NULL;
        size_t n_passed = 0;
        _cleanup_free_ char *list = strdup(endpoints);
        if (!list)
                return -ENOMEM;
        int r = take_passed(false, &passed, &n_passed, err);
        if (r < 0)
                return r;
        char *save = NULL;
        unsigned n = 0;
        for (char *ep = strtok_r(list, EMO_ENDPOINT_SEPARATORS, &save); ep && r >= 0;
             ep = strtok_r(NULL, EMO_ENDPOINT_SEPARATORS, &save)) {
                n++;
                if (!covering(passed, n_passed, ep))
                        r = check_one(ep, sec, err);
        }
        /* A tcp socket from systemd gets CURVE too, so needs the same. */
        for (size_t i = 0; i < n_passed && r >= 0; i++)
                if (is_tcp(passed[i].endpoint) && !(sec && (sec->cert || sec->insecure))) {
                        zsock_t *scratch = zsock_new(ZMQ_ROUTER);
                        r = scratch ? secure_for(scratch, passed[i].endpoint, sec, err) : -ENOMEM;
                        zsock_destroy(&scratch);
                }
        passed_free(passed, n_passed);
        if (r >= 0 && n == 0 && n_passed == 0)
                r = emo_error_set(err, -EINVAL, "Failed to bind: no endpoint in '%s'", endpoints);
        return r;
}

bool emo_listeners_need_tcp(const char *endpoints) {
        _cleanup_free_ char *list = strdup(endpoints);
        char *save = NULL;
        for (char *ep = list ? strtok_r(list, EMO_ENDPOINT_SEPARATORS, &save) : NULL; ep;
             ep = strtok_r(NULL, EMO_ENDPOINT_SEPARATORS, &save))
                if (is_tcp(ep))
                        return true;
        passed_t *passed = NULL;
        size_t n_passed = 0;
        if (take_passed(false, &passed, &n_passed, NULL) < 0)
                return false;
        bool tcp = false;
        for (size_t i = 0; i < n_passed; i++)
                tcp |= is_tcp(passed[i].endpoint);
        passed_free(passed, n_passed);
        return tcp;
}
