#include "prefs.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "emo/protocol.h"

#define GROUP "emotion-gtk"

char *emo_gtk_prefs_default_path(void) {
        return g_build_filename(g_get_user_config_dir(), "emotiond", "gtk.ini", NULL);
}

/* A ZeroMQ endpoint as the daemon binds one: ipc://PATH or tcp://HOST:PORT, printable, no
 * spaces. ZeroMQ itself says the last word when the connection is made. */
static gboolean endpoint_valid(const char *ep) {
        if (!g_str_has_prefix(ep, "ipc://") && !g_str_has_prefix(ep, "tcp://"))
                return FALSE;
        if (strlen(ep) <= 6 || strlen(ep) > 1024 || !g_utf8_validate(ep, -1, NULL))
                return FALSE;
        for (const char *c = ep; *c; c++)
                if ((unsigned char) *c <= ' ' || *c == 0x7f)
                        return FALSE;
        return TRUE;
}

gboolean emo_gtk_prefs_set_endpoint(emo_gtk_prefs_t *p, const char *endpoint) {
        if (endpoint && *endpoint && !endpoint_valid(endpoint))
                return FALSE;
        g_free(p->endpoint);
        p->endpoint = endpoint && *endpoint ? g_strdup(endpoint) : NULL;
        return TRUE;
}

gboolean emo_gtk_prefs_set_language(emo_gtk_prefs_t *p, const char *language) {
        if (!language || !emo_language_valid(language))
                return FALSE;
        g_free(p->language);
        p->language = g_strdup(language);
        return TRUE;
}

emo_gtk_prefs_t *emo_gtk_prefs_load(const char *path, GError **error) {
        emo_gtk_prefs_t *p = g_new0(emo_gtk_prefs_t, 1);
        p->language = g_strdup(EMO_GTK_PREFS_DEFAULT_LANGUAGE);
        g_autofree char *def = path ? NULL : emo_gtk_prefs_default_path();
        const char *file = path ? path : def;
        g_autoptr(GKeyFile) kf = g_key_file_new();
        GError *e = NULL;
        if (!g_key_file_load_from_file(kf, file, G_KEY_FILE_NONE, &e)) {
                if (g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        g_clear_error(&e);
                else
                        g_prefix_error(&e, "%s: ", file);
                if (e)
                        g_propagate_error(error, e);
                return p;
        }
        g_autofree char *endpoint = g_key_file_get_string(kf, GROUP, "endpoint", NULL);
        g_autofree char *language = g_key_file_get_string(kf, GROUP, "language", NULL);
        GString *bad = g_string_new(NULL);
        if (endpoint && !emo_gtk_prefs_set_endpoint(p, g_strstrip(endpoint)))
                g_string_append_printf(bad, "%sendpoint “%s” is not ipc://PATH or tcp://HOST:PORT", bad->len ? "; " : "",
                                       endpoint);
        if (language && *g_strstrip(language) && !emo_gtk_prefs_set_language(p, language))
                g_string_append_printf(bad, "%slanguage “%s” is not a code such as fr or en", bad->len ? "; " : "",
                                       language);
        if (bad->len)
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "%s: %s, ignored", file, bad->str);
        g_string_free(bad, TRUE);
        return p;
}

gboolean emo_gtk_prefs_save(const emo_gtk_prefs_t *p, const char *path, GError **error) {
        g_autofree char *def = path ? NULL : emo_gtk_prefs_default_path();
        const char *file = path ? path : def;
        g_autofree char *dir = g_path_get_dirname(file);
        if (g_mkdir_with_parents(dir, 0700) < 0) {
                int e = errno;
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "Failed to create %s: %s", dir,
                            g_strerror(e));
                return FALSE;
        }
        g_autoptr(GKeyFile) kf = g_key_file_new();
        /* Keep what others (a later version) wrote into the file. */
        g_key_file_load_from_file(kf, file, G_KEY_FILE_KEEP_COMMENTS, NULL);
        g_key_file_set_string(kf, GROUP, "endpoint", p->endpoint ? p->endpoint : "");
        g_key_file_set_string(kf, GROUP, "language", p->language);
        /* g_key_file_save_to_file writes aside and renames (g_file_set_contents). */
        return g_key_file_save_to_file(kf, file, error);
}

emo_gtk_prefs_t *emo_gtk_prefs_free(emo_gtk_prefs_t *p) {
        if (!p)
                return NULL;
        g_free(p->endpoint);
        g_free(p->language);
        g_free(p);
        return NULL;
}
