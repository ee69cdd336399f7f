#include "sources.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Schemes of FFmpeg's network protocols that carry live video. */
static const char *const url_schemes[] = { "rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp",
                                           "rtp",  "tcp",   "srt",  "hls",   NULL };

emo_gtk_source_t *emo_gtk_source_free(emo_gtk_source_t *s) {
        if (s) {
                g_free(s->location);
                g_free(s->label);
                g_free(s);
        }
        return NULL;
}

static emo_gtk_source_t *source_new(emo_gtk_source_kind_t kind, const char *location, char *label) {
        emo_gtk_source_t *s = g_new0(emo_gtk_source_t, 1);
        s->kind = kind;
        s->location = g_strdup(location);
        s->label = label;
        return s;
}

emo_gtk_source_t *emo_gtk_source_new_camera(const char *path, const char *name) {
        return source_new(EMO_GTK_SOURCE_CAMERA, path, g_strdup(name && *name ? name : path));
}

/* The URL as shown: without the password of user:password@host (it would end up on screenshots). */
static char *url_label(const char *url, const char *after_scheme) {
        const char *at = NULL;
        for (const char *p = after_scheme; *p && *p != '/' && *p != '?' && *p != '#'; p++)
                if (*p == '@')
                        at = p;
        if (!at)
                return g_strdup(url);
        const char *colon = memchr(after_scheme, ':', (size_t) (at - after_scheme));
        if (!colon)
                return g_strdup(url);
        return g_strdup_printf("%.*s:•••%s", (int) (colon - url), url, at);
}

int emo_gtk_source_parse(const char *arg, emo_gtk_source_t **ret) {
        if (!arg || !*arg)
                return -EINVAL;
        const char *sep = strstr(arg, "://");
        if (sep) {
                g_autofree char *scheme = g_ascii_strdown(arg, sep - arg);
                const char *rest = sep + 3;
                if (g_str_equal(scheme, "file")) {
                        g_autofree char *path = g_filename_from_uri(arg, NULL, NULL);
                        if (!path)
                                return -EINVAL;
                        *ret = source_new(EMO_GTK_SOURCE_FILE, path, g_path_get_basename(path));
                        return 0;
                }
                if (!g_strv_contains(url_schemes, scheme))
                        return -EPROTONOSUPPORT;
                if (!*rest || *rest == '/' || *rest == '?' || *rest == '#')
                        return -EINVAL; /* no host */
                *ret = source_new(EMO_GTK_SOURCE_URL, arg, url_label(arg, rest));
                return 0;
        }
        const char *colon = strchr(arg, ':');
        if (colon && colon > arg && !strchr(arg, '/') && g_ascii_isalpha(arg[0])) {
                /* mailto:x, about:blank: a scheme without //, not a file name with a colon in it
                 * (those are given as ./a:b or with their folder). */
                bool scheme = true;
                for (const char *p = arg; p < colon; p++)
                        if (!g_ascii_isalnum(*p) && *p != '+' && *p != '-' && *p != '.')
                                scheme = false;
                if (scheme && access(arg, F_OK) != 0)
                        return -EPROTONOSUPPORT;
        }
        if (g_str_has_prefix(arg, "/dev/")) {
                *ret = emo_gtk_source_new_camera(arg, NULL);
                return 0;
        }
        *ret = source_new(EMO_GTK_SOURCE_FILE, arg, g_path_get_basename(arg));
        return 0;
}

static int compare_numbers(gconstpointer a, gconstpointer b) {
        const emo_gtk_source_t *x = *(emo_gtk_source_t *const *) a, *y = *(emo_gtk_source_t *const *) b;
        size_t lx = strlen(x->location), ly = strlen(y->location);
        return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->location, y->location); /* video2 < video10 */
}

static void source_destroy(gpointer p) {
        emo_gtk_source_free(p);
}

GPtrArray *emo_gtk_cameras_list(const char *dir) {
        GPtrArray *list = g_ptr_array_new_with_free_func(source_destroy);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        if (!d)
                return list;
        const char *name;
        while ((name = g_dir_read_name(d))) {
                if (!g_str_has_prefix(name, "video") || !g_ascii_isdigit(name[5]))
                        continue;
                g_autofree char *path = g_build_filename(dir, name, NULL);
                /* O_NONBLOCK: asking a camera what it is must not wait for it. */
                int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0)
                        continue;
                struct v4l2_capability cap = { 0 };
                int r = ioctl(fd, VIDIOC_QUERYCAP, &cap);
                close(fd);
                if (r < 0)
                        continue;
                uint32_t caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
                if (!(caps & (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE)))
                        continue;
                char card[sizeof(cap.card) + 1];
                memcpy(card, cap.card, sizeof(cap.card));
                card[sizeof(cap.card)] = '\0';
                g_ptr_array_add(list, emo_gtk_source_new_camera(path, g_utf8_validate(card, -1, NULL) ? card : NULL));
        }
        g_ptr_array_sort(list, compare_numbers);
        return list;
}
