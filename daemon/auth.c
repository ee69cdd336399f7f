#include "auth.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "emo/util.h"
#include "log.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* Refusals remembered so as to log each (address, key) once; past this many, forget them all. */
#define LOGGED_MAX 4096

struct emo_auth {
        zactor_t *actor;
        char *dir;
};

typedef struct {
        char *dir;
        zcertstore_t *store;
        int count;
        zhashx_t *logged; /* "address key" of refusals already logged */
} state_t;

int emo_auth_load_secret_cert(const char *path, zcert_t **ret) {
        zcert_t *cert = zcert_load(path);
        if (!cert)
                return -ENOENT;
        static const char zero[41] = "0000000000000000000000000000000000000000";
        if (streq(zcert_secret_txt(cert), zero)) {
                zcert_destroy(&cert);
                return -ENOKEY;
        }
        *ret = cert;
        return 0;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && streq(s + n - m, suffix);
}

/* Every certificate in dir, by public key. A folder that cannot be read gives an empty store. */
static zcertstore_t *load_store(const char *dir, int *ret_count) {
        zcertstore_t *store = zcertstore_new(NULL);
        int count = 0;
        DIR *d = store ? opendir(dir) : NULL;
        if (store && !d)
                log_warning("Failed to read clients_dir %s: %s; no CURVE client is allowed", dir, strerror(errno));
        struct dirent *e;
        while (d && (e = readdir(d))) {
                /* A NAME_secret is the client's own half; its public file says the same key. */
                if (e->d_name[0] == '.' || ends_with(e->d_name, "_secret"))
                        continue;
                char path[4096];
                if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int) sizeof(path))
                        continue;
                /* zcert_load would read PATH_secret first, which has no business here. */
                zconfig_t *root = zconfig_load(path);
                const char *key = root ? zconfig_get(root, "/curve/public-key", NULL) : NULL;
                uint8_t bin[32];
                if (!key || strlen(key) != 40 || !zmq_z85_decode(bin, key)) {
                        log_warning("%s is not a CZMQ certificate (no curve public-key), ignoring", path);
                        zconfig_destroy(&root);
                        continue;
                }
                zconfig_destroy(&root);
                char z85[41];
                zmq_z85_encode(z85, bin, 32);
                if (zcertstore_lookup(store, z85))
                        continue;
                zcert_t *cert = zcert_new_from(bin, (uint8_t[32]) { 0 });
                if (!cert)
                        continue;
                zcertstore_insert(store, &cert);
                count++;
        }
        if (d)
                closedir(d);
        *ret_count = count;
        return store;
}

/* One ZAP request (RFC 27): version, request id, domain, address, identity, mechanism,
 * credentials; one reply with the same id. */
static void handle_zap(state_t *st, zsock_t *handler) {
        zmsg_t *req = zmsg_recv(handler);
        if (!req)
                return;
        /* ROUTER rather than REP: the session's routing id, then the empty delimiter. A ROUTER
         * keeps no request/reply state, so a session that closes before its answer cannot leave
         * the handler expecting anything. */
        zframe_t *peer = zmsg_pop(req), *delimiter = zmsg_pop(req);
        if (!peer || !delimiter) {
                zframe_destroy(&peer);
                zframe_destroy(&delimiter);
                zmsg_destroy(&req);
                return;
        }
        char *version = zmsg_popstr(req), *id = zmsg_popstr(req), *domain = zmsg_popstr(req),
             *address = zmsg_popstr(req), *identity = zmsg_popstr(req), *mechanism = zmsg_popstr(req);
        zframe_t *cred = zmsg_pop(req);
        const char *status = "400", *text = "unknown client key";
        char z85[41] = "";
        if (!version || !streq(version, "1.0") || !mechanism) {
                status = "500";
                text = "malformed ZAP request";
        } else if (streq(mechanism, "NULL") && domain && streq(domain, EMO_AUTH_LOCAL_DOMAIN)) {
                /* An ipc:// connection: libzmq 4.3 asks ZAP about every connection of a socket
                 * once a handler runs. Its file permissions have admitted it already. */
                status = "200";
                text = "OK";
        } else if (!streq(mechanism, "CURVE") || !cred || zframe_size(cred) != 32) {
                text = "CURVE required";
        } else {
                zmq_z85_encode(z85, zframe_data(cred), 32);
                if (zcertstore_lookup(st->store, z85)) {
                        status = "200";
                        text = "OK";
                        log_debug("CURVE client %s from %s admitted", z85, address ? address : "?");
                }
        }
        log_debug("ZAP request %s from %s, %s %s: %s", id ? id : "?", address ? address : "?", mechanism ? mechanism : "?",
                  z85, status);
        if (!streq(status, "200")) {
                char logkey[128];
                snprintf(logkey, sizeof(logkey), "%s %s", address ? address : "?", z85);
                if (!zhashx_lookup(st->logged, logkey)) {
                        if (zhashx_size(st->logged) >= LOGGED_MAX)
                                zhashx_purge(st->logged);
                        zhashx_insert(st->logged, logkey, (void *) 1);
                        log_warning("Refused a connection from %s: %s%s%s (logged once per address and key)",
                                    address ? address : "?", text, z85[0] ? ", public key " : "", z85);
                }
        }
        zmsg_t *rep = zmsg_new();
        zmsg_append(rep, &peer);
        zmsg_append(rep, &delimiter);
        zmsg_addstr(rep, "1.0");
        zmsg_addstr(rep, id ? id : "");
        zmsg_addstr(rep, status);
        zmsg_addstr(rep, text);
        zmsg_addstr(rep, streq(status, "200") ? z85 : ""); /* user id */
        zmsg_addmem(rep, "", 0);                           /* no metadata */
        zmsg_send(&rep, handler);
        free(version);
        free(id);
        free(domain);
        free(address);
        free(identity);
        free(mechanism);
        zframe_destroy(&cred);
        zframe_destroy(&peer);
        zframe_destroy(&delimiter);
        zmsg_destroy(&req);
}

static void reload(state_t *st) {
        zcertstore_destroy(&st->store);
        st->store = load_store(st->dir, &st->count);
        zhashx_purge(st->logged);
}

/* The actor: after zsock_signal, it sends its start status ("0" or "-errno") on the pipe, then
 * answers ZAP requests and the commands RELOAD and COUNT (each answered with the count) until
 * $TERM. */
static void auth_actor(zsock_t *pipe, void *arg) {
        state_t st = { .dir = arg, .logged = zhashx_new() };
        zsock_signal(pipe, 0);
        zsock_t *handler = zsock_new(ZMQ_ROUTER);
        int r = 0;
        if (!handler || !st.logged)
                r = -ENOMEM;
        else if (zsock_bind(handler, ZAP_ENDPOINT) < 0)
                r = -(zmq_errno() ?: EADDRINUSE);
        if (r == 0) {
                reload(&st);
                if (!st.store)
                        r = -ENOMEM;
        }
        zstr_sendf(pipe, "%d", r);
        zpoller_t *poller = r == 0 ? zpoller_new(pipe, handler, NULL) : NULL;
        while (poller) {
                void *which = zpoller_wait(poller, -1);
                if (which == handler) {
                        handle_zap(&st, handler);
                        continue;
                }
                if (which != pipe) {
                        /* Only the end of the context stops the handler: zpoller_wait also returns
                         * NULL when a wait is interrupted, and a handler gone would leave every
                         * CURVE handshake waiting for an answer. */
                        if (zmq_errno() == ETERM)
                                break;
                        continue;
                }
                char *cmd = zstr_recv(pipe);
                if (!cmd || streq(cmd, "$TERM")) {
                        free(cmd);
                        break;
                }
                if (streq(cmd, "RELOAD"))
                        reload(&st);
                zstr_sendf(pipe, "%d", st.store ? st.count : -ENOMEM);
                free(cmd);
        }
        zpoller_destroy(&poller);
        zsock_destroy(&handler);
        zcertstore_destroy(&st.store);
        zhashx_destroy(&st.logged);
}

static int ask(emo_auth_t *a, const char *cmd) {
        if (zstr_send(a->actor, cmd) < 0)
                return -EIO;
        char *answer = zstr_recv(a->actor);
        if (!answer)
                return -EIO;
        int r = atoi(answer);
        free(answer);
        return r;
}

int emo_auth_new(const char *clients_dir, emo_auth_t **ret) {
        emo_auth_t *a = calloc(1, sizeof(*a));
        if (!a || !(a->dir = strdup(clients_dir))) {
                free(a);
                return -ENOMEM;
        }
        /* The actor reads a->dir until it has answered $TERM (zactor_destroy waits for that). */
        a->actor = zactor_new(auth_actor, a->dir);
        char *status = a->actor ? zstr_recv(a->actor) : NULL;
        int r = status ? atoi(status) : -ENOMEM;
        free(status);
        if (r < 0) {
                emo_auth_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

int emo_auth_reload(emo_auth_t *a) {
        return ask(a, "RELOAD");
}

int emo_auth_count(emo_auth_t *a) {
        return ask(a, "COUNT");
}

emo_auth_t *emo_auth_free(emo_auth_t *a) {
        if (!a)
                return NULL;
        zactor_destroy(&a->actor);
        free(a->dir);
        free(a);
        return NULL;
}
