/* The live sources of the GTK client: what a command-line argument or a typed URL names (a camera,
 * a video file, a network stream), and the cameras of this machine. Plain C on GLib, no widgets:
 * tested without a display and without a camera. */
#pragma once

#include <glib.h>

typedef enum emo_gtk_source_kind {
        EMO_GTK_SOURCE_CAMERA, /* a V4L2 device, /dev/video0 */
        EMO_GTK_SOURCE_FILE,   /* a video file, played at its frame rate */
        EMO_GTK_SOURCE_URL,    /* rtsp://, http://... */
} emo_gtk_source_kind_t;

typedef struct emo_gtk_source {
        emo_gtk_source_kind_t kind;
        char *location; /* what FFmpeg opens: a path or the URL as given */
        char *label;    /* what the tile shows: the camera's name, the file's name, the URL without
                         * its password */
} emo_gtk_source_t;

/* What arg names: a URL (scheme://..., a scheme FFmpeg reads live streams with; file:// URLs are
 * taken as files), a camera (/dev/...), else a file. 0 with *ret; -EINVAL for an empty argument
 * or a URL without a host; -EPROTONOSUPPORT for another scheme (mailto:, ftp://...). */
int emo_gtk_source_parse(const char *arg, emo_gtk_source_t **ret);

/* A camera, with its name (NULL: the path is the label). NULL on out-of-memory. */
emo_gtk_source_t *emo_gtk_source_new_camera(const char *path, const char *name);

emo_gtk_source_t *emo_gtk_source_free(emo_gtk_source_t *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(emo_gtk_source_t, emo_gtk_source_free)

/* The video capture devices in dir (normally "/dev"): every videoN that V4L2's VIDIOC_QUERYCAP
 * says captures video (metadata nodes of the same camera are left out), named by its card name,
 * in the order of N. An array of emo_gtk_source_t (g_ptr_array_unref frees them); empty when there
 * is none or dir cannot be read. */
GPtrArray *emo_gtk_cameras_list(const char *dir);
