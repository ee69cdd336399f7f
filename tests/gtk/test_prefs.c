/* The GTK client's preferences file (GKeyFile) without a display: defaults when it is missing,
 * what was saved is read back, bad values are said and left out, the command line is not here
 * (application.c) but the default path follows XDG_CONFIG_HOME. */
#include <criterion/criterion.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#include "emo/util.h"
#include "prefs.h"

TestSuite(prefs, .timeout = 30);

static char *tmpdir(void) {
        char *d = g_dir_make_tmp("emo-gtk-prefs.XXXXXX", NULL);
        cr_assert_not_null(d);
        return d;
}

Test(prefs, missing_file_gives_the_defaults) {
        g_autofree char *d = tmpdir();
        g_autofree char *path = g_build_filename(d, "none", "gtk.ini", NULL);
        GError *error = NULL;
        emo_gtk_prefs_t *p = emo_gtk_prefs_load(path, &error);
        cr_assert_null(error);
        cr_assert_null(p->endpoint);
        cr_assert_str_eq(p->language, "fr", "French by default");
        emo_gtk_prefs_free(p);
        g_rmdir(d);
}

Test(prefs, saved_is_read_back_under_xdg_config_home) {
        g_autofree char *d = tmpdir();
        g_setenv("XDG_CONFIG_HOME", d, TRUE);
        g_autofree char *path = emo_gtk_prefs_default_path();
        g_autofree char *want = g_build_filename(d, "emotiond", "gtk.ini", NULL);
        cr_assert_str_eq(path, want);
        emo_gtk_prefs_t *p = emo_gtk_prefs_load(NULL, NULL);
        cr_assert(emo_gtk_prefs_set_endpoint(p, "tcp://10.0.0.2:5555"));
        cr_assert(emo_gtk_prefs_set_language(p, "en"));
        GError *error = NULL;
        cr_assert(emo_gtk_prefs_save(p, NULL, &error), "%s", error ? error->message : "");
        emo_gtk_prefs_free(p);
        g_autofree char *text = NULL;
        cr_assert(g_file_get_contents(want, &text, NULL, NULL));
        cr_assert(strstr(text, "[emotion-gtk]\n") && strstr(text, "endpoint=tcp://10.0.0.2:5555\n") &&
                          strstr(text, "language=en\n"),
                  "%s", text);
        p = emo_gtk_prefs_load(NULL, &error);
        cr_assert_null(error);
        cr_assert_str_eq(p->endpoint, "tcp://10.0.0.2:5555");
        cr_assert_str_eq(p->language, "en");
        /* Back to the default endpoint: an empty value. */
        cr_assert(emo_gtk_prefs_set_endpoint(p, ""));
        cr_assert(emo_gtk_prefs_save(p, NULL, NULL));
        emo_gtk_prefs_free(p);
        p = emo_gtk_prefs_load(NULL, NULL);
        cr_assert_null(p->endpoint);
        emo_gtk_prefs_free(p);
        g_unlink(want);
        g_autofree char *sub = g_build_filename(d, "emotiond", NULL);
        g_rmdir(sub);
        g_rmdir(d);
}

Test(prefs, bad_values_are_said_and_left_out) {
        g_autofree char *d = tmpdir();
        g_autofree char *path = g_build_filename(d, "gtk.ini", NULL);
        cr_assert(g_file_set_contents(path, "[emotion-gtk]\nendpoint=http://x/\nlanguage=f r\n", -1, NULL));
        GError *error = NULL;
        emo_gtk_prefs_t *p = emo_gtk_prefs_load(path, &error);
        cr_assert_not_null(error);
        cr_assert(strstr(error->message, "http://x/") && strstr(error->message, "f r"), "%s", error->message);
        cr_assert_null(p->endpoint);
        cr_assert_str_eq(p->language, "fr");
        g_clear_error(&error);
        cr_assert_not(emo_gtk_prefs_set_endpoint(p, "ipc:///a b"));
        cr_assert_not(emo_gtk_prefs_set_language(p, ""));
        emo_gtk_prefs_free(p);
        /* Not a key file at all. */
        cr_assert(g_file_set_contents(path, "\x01garbage", -1, NULL));
        p = emo_gtk_prefs_load(path, &error);
        cr_assert_not_null(error);
        cr_assert_str_eq(p->language, "fr");
        g_clear_error(&error);
        emo_gtk_prefs_free(p);
        g_unlink(path);
        g_rmdir(d);
}
