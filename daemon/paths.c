#include "paths.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emo/util.h"
#include "paths-config.h"

/* GNUInstallDirs' absolute form of dir under prefix. `system` marks SYSCONFDIR and LOCALSTATEDIR,
 * which leave /usr for / (/etc, /var) and add /opt/P's name under themselves (/etc/opt/P). */
static char *full_dir(const char *prefix, const char *dir, bool system) {
        char *s = NULL;
        int r;
        if (dir[0] == '/')
                r = asprintf(&s, "%s", dir);
        else if (system && (strcmp(prefix, "/") == 0 || strcmp(prefix, "/usr") == 0))
                r = asprintf(&s, "/%s", dir);
        else if (system && strncmp(prefix, "/opt/", 5) == 0)
                r = asprintf(&s, "/%s%s", dir, prefix);
        else
                r = asprintf(&s, "%s/%s", strcmp(prefix, "/") == 0 ? "" : prefix, dir);
        return r < 0 ? NULL : s;
}

/* The prefix of a program at exe installed as PREFIX/SBINDIR/NAME; NULL when it is not. */
static char *installed_prefix(const char *exe) {
        const char *sbindir = EMO_INSTALL_SBINDIR;
        if (!exe || exe[0] != '/' || sbindir[0] == '/')
                return NULL;
        const char *slash = strrchr(exe, '/');
        size_t dirlen = (size_t) (slash - exe), sblen = strlen(sbindir);
        if (dirlen < sblen + 1 || exe[dirlen - sblen - 1] != '/' || strncmp(exe + dirlen - sblen, sbindir, sblen) != 0)
                return NULL;
        size_t plen = dirlen - sblen - 1;
        return plen == 0 ? strdup("/") : strndup(exe, plen);
}

int emo_paths_resolve(const char *exe, emo_paths_t *ret) {
        _cleanup_free_ char *prefix = installed_prefix(exe);
        _cleanup_free_ char *data = NULL, *conf = NULL, *state = NULL;
        if (prefix) {
                data = full_dir(prefix, EMO_INSTALL_DATADIR, false);
                conf = full_dir(prefix, EMO_INSTALL_SYSCONFDIR, true);
                state = full_dir(prefix, EMO_INSTALL_LOCALSTATEDIR, true);
        } else {
                data = strdup(EMO_FULL_DATADIR);
                conf = strdup(EMO_FULL_SYSCONFDIR);
                state = strdup(EMO_FULL_LOCALSTATEDIR);
        }
        if (!data || !conf || !state)
                return -ENOMEM;
        emo_paths_t p = {};
        if (asprintf(&p.datadir, "%s/emotiond", data) < 0)
                p.datadir = NULL;
        if (asprintf(&p.statedir, "%s/lib/emotiond", state) < 0)
                p.statedir = NULL;
        if (asprintf(&p.config, "%s/emotiond/emotiond.conf", conf) < 0)
                p.config = NULL;
        if (!p.datadir || !p.statedir || !p.config) {
                emo_paths_done(&p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

void emo_paths_done(emo_paths_t *p) {
        free(p->datadir);
        free(p->statedir);
        free(p->config);
        *p = (emo_paths_t) {};
}

static emo_paths_t self;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static void resolve_self(void) {
        _cleanup_free_ char *exe = realpath("/proc/self/exe", NULL);
        if (emo_paths_resolve(exe, &self) < 0)
                self = (emo_paths_t) {
                        .datadir = (char *) EMO_FULL_DATADIR "/emotiond",
                        .statedir = (char *) EMO_FULL_LOCALSTATEDIR "/lib/emotiond",
                        .config = (char *) EMO_FULL_SYSCONFDIR "/emotiond/emotiond.conf",
                };
}

const emo_paths_t *emo_paths(void) {
        pthread_once(&self_once, resolve_self);
        return &self;
}
