/* The GTK client's preferences: the daemon's endpoint (empty: found as the CLI finds it) and the
 * language of the dialogue and of the window (fr by default, or en), kept as a GKeyFile in
 * g_get_user_config_dir()/emotiond/gtk.ini:
 *
 *     [emotion-gtk]
 *     endpoint=ipc:///run/emotiond/emotiond.sock
 *     language=en
 *
 * The command line wins over them for one run (--server, --lang). Plain C on GLib, no widgets:
 * tested without a display. */
#pragma once

#include <glib.h>

#define EMO_GTK_PREFS_DEFAULT_LANGUAGE "fr"

typedef struct emo_gtk_prefs {
        char *endpoint; /* NULL: the default rules */
        char *language; /* never NULL: "fr", "en"... */
} emo_gtk_prefs_t;

/* g_get_user_config_dir()/emotiond/gtk.ini. g_free() it. */
char *emo_gtk_prefs_default_path(void);

/* Read path (NULL: the default path). A missing file gives the defaults and is no error; a file
 * that cannot be read or parsed, or holds a malformed endpoint or language, gives the defaults
 * for what is wrong, with *error set (may be NULL) to say so. Never NULL. */
emo_gtk_prefs_t *emo_gtk_prefs_load(const char *path, GError **error);

/* Write p to path (NULL: the default path), making the folder; written aside and renamed. */
gboolean emo_gtk_prefs_save(const emo_gtk_prefs_t *p, const char *path, GError **error);

/* Set a field; NULL or "" endpoint means the default. FALSE (p unchanged) for a malformed value. */
gboolean emo_gtk_prefs_set_endpoint(emo_gtk_prefs_t *p, const char *endpoint);
gboolean emo_gtk_prefs_set_language(emo_gtk_prefs_t *p, const char *language);

emo_gtk_prefs_t *emo_gtk_prefs_free(emo_gtk_prefs_t *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(emo_gtk_prefs_t, emo_gtk_prefs_free)
