#include "config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "emo/endpoint.h"
#include "emo/protocol.h"
#include "emo/util.h"
#include "paths.h"

enum kind { STR, UINT, U64, DBL, BOOL };

/* Every key, its section in the file and where it lives in the struct. Sections only group keys
 * for readers; a key is looked up by name. */
static const struct key {
        const char *section, *name;
        enum kind kind;
        size_t offset;
        double min, max;
} keys[] = {
        { "server", "endpoints", STR, offsetof(emo_config_t, endpoints), 0, 0 },
        { "server", "workers", UINT, offsetof(emo_config_t, workers), 0, 256 },
        { "server", "threads", UINT, offsetof(emo_config_t, threads), 1, 64 },
        { "server", "queue_capacity", UINT, offsetof(emo_config_t, queue_capacity), 1, 1000000 },
        { "server", "max_connections", UINT, offsetof(emo_config_t, max_connections), 1, 1000000 },
        { "server", "metrics_listen", STR, offsetof(emo_config_t, metrics_listen), 0, 0 },
        { "server", "client_timeout_ms", UINT, offsetof(emo_config_t, client_timeout_ms), 100, 3600000 },
        { "model", "model", STR, offsetof(emo_config_t, model), 0, 0 },
        { "model", "device", STR, offsetof(emo_config_t, device), 0, 0 },
        { "detector", "detector", STR, offsetof(emo_config_t, detector), 0, 0 },
        { "detector", "yunet_model", STR, offsetof(emo_config_t, yunet_model), 0, 0 },
        { "detector", "blazeface_model", STR, offsetof(emo_config_t, blazeface_model), 0, 0 },
        { "detector", "haar_model", STR, offsetof(emo_config_t, haar_model), 0, 0 },
        { "detector", "detect_max_side", UINT, offsetof(emo_config_t, detect_max_side), 0, 100000 },
        { "detector", "min_face", UINT, offsetof(emo_config_t, min_face), 1, 100000 },
        { "detector", "score_threshold", DBL, offsetof(emo_config_t, score_threshold), 0, 1 },
        { "detector", "detect_every", UINT, offsetof(emo_config_t, detect_every), 1, 1000 },
        { "detector", "lean_check", BOOL, offsetof(emo_config_t, lean_check), 0, 0 },
        { "limits", "max_message_bytes", U64, offsetof(emo_config_t, max_message_bytes), 1024, 1ull << 31 },
        { "limits", "max_pixels", U64, offsetof(emo_config_t, max_pixels), 64, 1ull << 30 },
        { "limits", "memory_budget_mb", UINT, offsetof(emo_config_t, memory_budget_mb), 0, 16777216 },
        { "limits", "max_faces", UINT, offsetof(emo_config_t, max_faces), 1, 1024 },
        { "dialogue", "dialogue_dir", STR, offsetof(emo_config_t, dialogue_dir), 0, 0 },
        { "dialogue", "language", STR, offsetof(emo_config_t, language), 0, 0 },
        { "logging", "log_results", BOOL, offsetof(emo_config_t, log_results), 0, 0 },
        { "security", "server_cert", STR, offsetof(emo_config_t, server_cert), 0, 0 },
        { "security", "clients_dir", STR, offsetof(emo_config_t, clients_dir), 0, 0 },
        { "security", "insecure_tcp", BOOL, offsetof(emo_config_t, insecure_tcp), 0, 0 },
};

int emo_config_init(emo_config_t *c) {
        *c = (emo_config_t) {
                .workers = 0,
                .threads = 1,
                .queue_capacity = 64,
                .max_connections = 64,
                .client_timeout_ms = 30000,
                .max_message_bytes = 32u << 20,
                .max_pixels = 40000000,
                .max_faces = 32,
                .detect_max_side = 320,
                .min_face = 20,
                .score_threshold = 0.6,
                .detect_every = 3,
        };
        if (asprintf(&c->model, "%s/models/emotion.json", emo_paths()->datadir) < 0)
                c->model = NULL;
        c->detector = strdup("auto");
        c->device = strdup("auto");
        if (asprintf(&c->dialogue_dir, "%s/dialogue", emo_paths()->datadir) < 0)
                c->dialogue_dir = NULL;
        c->language = strdup("fr");
        /* Beside the configuration file, so that an install under a prefix keeps its own keys. */
        _cleanup_free_ char *confdir = strdup(emo_paths()->config);
        char *slash = confdir ? strrchr(confdir, '/') : NULL;
        if (slash)
                *slash = '\0';
        if (!confdir || asprintf(&c->server_cert, "%s/server.cert", slash ? confdir : ".") < 0)
                c->server_cert = NULL;
        if (!confdir || asprintf(&c->clients_dir, "%s/clients.d", slash ? confdir : ".") < 0)
                c->clients_dir = NULL;
        if (!c->model || !c->detector || !c->device || !c->dialogue_dir || !c->language || !c->server_cert ||
            !c->clients_dir) {
                emo_config_done(c);
                return -ENOMEM;
        }
        return 0;
}

void emo_config_done(emo_config_t *c) {
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (keys[i].kind == STR) {
                        char **p = (char **) ((char *) c + keys[i].offset);
                        free(*p);
                        *p = NULL;
                }
}

static int parse_number(const struct key *k, const char *value, double *ret) {
        char *end;
        errno = 0;
        double v = k->kind == DBL ? strtod(value, &end) : (double) strtoull(value, &end, 10);
        if (errno || end == value || *end || (k->kind != DBL && strchr(value, '-')))
                return -EINVAL;
        /* strtod reads "nan" and "inf"; NaN would pass the range check, as every comparison with it
         * is false. */
        if (!isfinite(v))
                return -EDOM;
        if (v < k->min || v > k->max)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* The spellings systemd accepts for a boolean, so that an administrator's habit works here too. */
static int parse_bool(const char *value, bool *ret) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(value, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(value, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

int emo_config_set(emo_config_t *c, const char *name, const char *value, emo_error_t *err) {
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const struct key *k = &keys[i];
                if (strcmp(k->name, name) != 0)
                        continue;
                void *field = (char *) c + k->offset;
                if (k->kind == STR) {
                        char *s = strdup(value);
                        if (!s)
                                return -ENOMEM;
                        free(*(char **) field);
                        *(char **) field = s;
                        return 0;
                }
                if (k->kind == BOOL) {
                        if (parse_bool(value, (bool *) field) < 0)
                                return emo_error_set(err, -EINVAL,
                                                     "%s = %s: expected true or false (or yes/no, on/off, 1/0)", name,
                                                     value);
                        return 0;
                }
                double v;
                int r = parse_number(k, value, &v);
                if (r < 0) {
                        emo_error_set(err, -EINVAL, "%s = %s: %s", name, value,
                                      r == -ERANGE ? "out of range"
                                      : r == -EDOM ? "not a finite number"
                                                   : "not a number");
                        if (r == -ERANGE)
                                emo_error_append(err, " (%g..%g)", k->min, k->max);
                        return -EINVAL;
                }
                if (k->kind == UINT)
                        *(unsigned *) field = (unsigned) v;
                else if (k->kind == U64)
                        *(uint64_t *) field = (uint64_t) v;
                else
                        *(double *) field = v;
                return 0;
        }
        return emo_error_set(err, -EINVAL, "unknown setting '%s'", name);
}

struct load_state {
        emo_config_t *c;
        emo_error_t *detail; /* the reason, without the file and line */
        int r;
};

static int on_ini_key(void *user, const char *section, const char *name, const char *value) {
        struct load_state *s = user;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (strcmp(keys[i].name, name) == 0 && strcmp(keys[i].section, section) != 0) {
                        s->r = emo_error_set(s->detail, -EINVAL, "'%s' belongs in section [%s], not [%s]", name,
                                             keys[i].section, section);
                        return 0;
                }
        s->r = emo_config_set(s->c, name, value, s->detail);
        return s->r == 0;
}

int emo_config_load(emo_config_t *c, const char *path, emo_error_t *err) {
        FILE *f = fopen(path, "re");
        if (!f) {
                int r = -errno;
                return emo_error_set(err, r, "%s: %s", path, strerror(errno));
        }
        emo_error_t detail = { "" };
        struct load_state s = { c, &detail, 0 };
        int line = ini_parse_file(f, on_ini_key, &s);
        fclose(f);
        if (line == 0)
                return 0;
        if (line < 0)
                return emo_error_set(err, -EIO, "%s: cannot read", path);
        return emo_error_set(err, s.r == -ENOMEM ? -ENOMEM : -EINVAL, "%s:%d: %s", path, line,
                             detail.message[0] ? detail.message : "syntax error");
}

int emo_config_validate(const emo_config_t *c, emo_error_t *err) {
        static const char *const detectors[] = { "auto", "yunet", "blazeface", "haar" };
        static const char *const devices[] = { "auto", "cpu", "opencl", "cuda" };
        bool ok = false;
        for (size_t i = 0; i < ELEMENTSOF(detectors); i++)
                ok |= strcmp(c->detector, detectors[i]) == 0;
        if (!ok)
                return emo_error_set(err, -EINVAL,
                                     "detector = %s: expected auto, yunet, blazeface or haar", c->detector);
        ok = false;
        for (size_t i = 0; i < ELEMENTSOF(devices); i++)
                ok |= strcmp(c->device, devices[i]) == 0;
        if (!ok)
                return emo_error_set(err, -EINVAL, "device = %s: expected auto, cpu, opencl or cuda", c->device);
        /* Separators only would bind nothing, and the daemon would report itself ready anyway. */
        if (c->endpoints && !c->endpoints[strspn(c->endpoints, EMO_ENDPOINT_SEPARATORS)])
                return emo_error_set(err, -EINVAL,
                                     "endpoints = '%s': no endpoint in the list (expected e.g. %s)", c->endpoints,
                                     EMO_SYSTEM_ENDPOINT);
        if (!emo_language_valid(c->language))
                return emo_error_set(err, -EINVAL,
                                     "language = '%s': not a language code (1 to %d ASCII letters, digits, '-' or "
                                     "'_', such as fr or en-GB)",
                                     c->language, EMO_LANGUAGE_MAX);
        return 0;
}
