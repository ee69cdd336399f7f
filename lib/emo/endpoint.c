#include "emo/endpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "emo/util.h"

static char *user_endpoint(void) {
        const char *dir = getenv("XDG_RUNTIME_DIR");
        char *s = NULL;
        if (!dir || dir[0] != '/')
                return NULL;
        if (asprintf(&s, "ipc://%s/emotiond/emotiond.sock", dir) < 0)
                return NULL;
        return s;
}

char *emo_endpoint_default_bind(void) {
        const char *env = getenv("EMOTIOND_ENDPOINT");
        if (env && *env)
                return strdup(env);
        if (geteuid() != 0) {
                char *u = user_endpoint();
                if (u)
                        return u;
        }
        return strdup(EMO_SYSTEM_ENDPOINT);
}

char *emo_endpoint_default_connect(void) {
        const char *env = getenv("EMOTIOND_ENDPOINT");
        if (env && *env)
                return strdup(env);
        char *u = user_endpoint();
        if (u && access(u + strlen("ipc://"), F_OK) == 0)
                return u;
        free(u);
        return strdup(EMO_SYSTEM_ENDPOINT);
}

/* Create the folders above the socket file at path (absolute, or relative to the working folder
 * as ZeroMQ resolves it). */
static int make_parents(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0; /* in the working folder, or in / */
        *slash = '\0';
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        mode_t mode = xdg && strncmp(dir, xdg, strlen(xdg)) == 0 ? 0700 : 0755;
        /* Create each missing component; only the last one matters in practice. */
        for (char *p = dir + 1; (p = strchr(p, '/')); p++) {
                *p = '\0';
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(dir, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int emo_endpoint_prepare(const char *endpoint) {
        if (strncmp(endpoint, "ipc://", 6) != 0)
                return 0;
        const char *file = endpoint + 6;
        /* An abstract socket (ipc://@name) has no file: its bind fails by itself when taken. */
        if (file[0] == '@')
                return 0;
        int r = make_parents(file);
        if (r < 0)
                return r;
        /* ZeroMQ's ipc bind silently replaces an existing socket file, which would cut a running
         * daemon off from its clients. Refuse when something answers there; a stale file (nobody
         * listening) is fine to replace. A relative path is probed as ZeroMQ binds it, from the
         * working folder. */
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(file) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, file);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        r = connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 ? -EADDRINUSE : 0;
        close(fd);
        return r;
}
