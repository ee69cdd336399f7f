#include "application.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <string.h>
#include <stdio.h>

#include "connection.h"
#include "emo/endpoint.h"
#include "emo/protocol.h"
#include "health.h"
#include "preferences-dialog.h"
#include "prefs.h"
#include "sources.h"
#include "window.h"

#define DEFAULT_TIMEOUT_MS 10000
/* A live frame not answered within this is of no use any more: the tile says the daemon does not
 * answer, and the next frame goes on a fresh socket (less when --timeout is less). */
#define LIVE_TIMEOUT_MS 2000
/* A health probe not answered within this says the daemon is gone: the banner comes within about
 * a second of a daemon that stopped answering (at once for one that is not there at all). */
#define HEALTH_TIMEOUT_MS 1000

struct _EmoGtkApplication {
        GtkApplication parent_instance;
        char *server;
        char *language;
        int timeout_ms;
        char *save_annotated;
        gboolean quit_after_result;
        gboolean scripted;  /* --save-annotated or --quit-after-result: report on stdout/stderr */
        emo_gtk_connection_t *connection;
        emo_gtk_connection_t *live_connection; /* for live frames: a frame's timeout */
        int exit_status;
        char **args;          /* the photos, or with --live the sources */
        gboolean live, loop;
        double quit_after;    /* seconds, 0: never */
        char *state_path;     /* --state FILE */
        gboolean state_written;
        emo_gtk_prefs_t *prefs;              /* as saved; --server and --lang win over them */
        emo_gtk_connection_t *health_connection;
        char *server_option;                 /* --server as given, NULL when none */
        emo_gtk_health_t *health;
};

G_DEFINE_FINAL_TYPE(EmoGtkApplication, emo_gtk_application, GTK_TYPE_APPLICATION)

static void on_analysis_finished(EmoGtkWindow *win, gboolean ok, gpointer userdata) {
        EmoGtkApplication *self = userdata;
        /* In scripted use nobody may be looking at the window: say what it shows, or why not. */
        if (self->scripted) {
                g_autofree char *line = ok ? emo_gtk_window_describe(win) : NULL;
                if (line)
                        printf("%s\n", line);
                else if (emo_gtk_window_get_error(win))
                        g_printerr("emotion-gtk: %s\n", emo_gtk_window_get_error(win));
                fflush(stdout);
        }
        if (self->save_annotated) {
                g_autoptr(GError) error = NULL;
                if (!ok)
                        self->exit_status = 1;
                else if (!emo_gtk_window_save_annotated(win, self->save_annotated, &error)) {
                        g_printerr("emotion-gtk: Failed to save %s: %s\n", self->save_annotated, error->message);
                        self->exit_status = 1;
                }
                g_clear_pointer(&self->save_annotated, g_free); /* the first result only */
        } else if (!ok && self->quit_after_result) {
                self->exit_status = 1;
        }
        if (self->quit_after_result)
                g_application_quit(G_APPLICATION(self));
}

static EmoGtkWindow *new_window(EmoGtkApplication *self) {
        EmoGtkWindow *win = emo_gtk_window_new(GTK_APPLICATION(self), self->connection, self->language);
        emo_gtk_window_set_live(win, self->live_connection, self->loop, self->timeout_ms);
        emo_gtk_window_set_health(win, self->health, emo_gtk_connection_endpoint(self->health_connection));
        g_signal_connect(win, "analysis-finished", G_CALLBACK(on_analysis_finished), self);
        if (self->state_path)
                emo_gtk_window_measure_stalls(win);
        gtk_window_present(GTK_WINDOW(win));
        return win;
}

/* --state FILE: the live state of the first window as JSON, written aside and renamed. */
static void write_state(EmoGtkApplication *self) {
        if (!self->state_path || self->state_written)
                return;
        GList *windows = gtk_application_get_windows(GTK_APPLICATION(self));
        if (!windows)
                return;
        g_autofree char *json = emo_gtk_window_live_state_json(EMO_GTK_WINDOW(g_list_last(windows)->data));
        g_autoptr(GError) error = NULL;
        if (!g_file_set_contents(self->state_path, json, -1, &error)) {
                g_printerr("emotion-gtk: Failed to write %s: %s\n", self->state_path, error->message);
                self->exit_status = 1;
        }
}

/* SIGUSR1: the state now, and the stall measurement starts afresh (a script checks one phase at a
 * time: playing, the daemon stopped, the daemon back). */
static gboolean on_usr1(gpointer userdata) {
        EmoGtkApplication *self = userdata;
        write_state(self);
        for (GList *w = gtk_application_get_windows(GTK_APPLICATION(self)); w; w = w->next)
                emo_gtk_window_measure_stalls(EMO_GTK_WINDOW(w->data));
        return G_SOURCE_CONTINUE;
}

static gboolean on_quit_after(gpointer userdata) {
        EmoGtkApplication *self = userdata;
        write_state(self);
        self->state_written = TRUE;
        g_application_quit(G_APPLICATION(self));
        return G_SOURCE_REMOVE;
}

static void emo_gtk_application_open(GApplication *app, GFile **files, int n_files, const char *hint);

/* Every window shows the daemon's health as it changes. */
static void on_health(emo_gtk_health_t *h, void *userdata) {
        EmoGtkApplication *self = userdata;
        for (GList *w = gtk_application_get_windows(GTK_APPLICATION(self)); w; w = w->next)
                if (EMO_IS_GTK_WINDOW(w->data))
                        emo_gtk_window_set_health(EMO_GTK_WINDOW(w->data), h,
                                                  emo_gtk_connection_endpoint(self->health_connection));
}

/* New preferences, saved: the endpoint applies to every connection now (requests in flight fail
 * and are shown as such), the dialogue language to the next requests. */
static void on_prefs_saved(EmoPreferencesDialog *dialog, gpointer prefs, gpointer userdata) {
        EmoGtkApplication *self = userdata;
        const emo_gtk_prefs_t *p = prefs;
        (void) dialog;
        emo_gtk_prefs_set_endpoint(self->prefs, p->endpoint);
        emo_gtk_prefs_set_language(self->prefs, p->language);
        if (g_strcmp0(p->endpoint, self->server) != 0) {
                g_free(self->server);
                self->server = g_strdup(p->endpoint);
                emo_gtk_connection_t *cs[] = { self->health_connection, self->connection, self->live_connection };
                for (size_t i = 0; i < G_N_ELEMENTS(cs); i++)
                        emo_gtk_connection_set_endpoint(cs[i], p->endpoint); /* checked by the dialog */
                emo_gtk_health_probe_now(self->health);
        }
        g_free(self->language);
        self->language = g_strdup(p->language);
        for (GList *w = gtk_application_get_windows(GTK_APPLICATION(self)); w; w = w->next)
                if (EMO_IS_GTK_WINDOW(w->data))
                        emo_gtk_window_set_language(EMO_GTK_WINDOW(w->data), p->language);
        on_health(self->health, self);
}

static void preferences_activated(GSimpleAction *action, GVariant *parameter, gpointer userdata) {
        EmoGtkApplication *self = userdata;
        (void) action;
        (void) parameter;
        g_autofree char *def = emo_endpoint_default_connect();
        EmoPreferencesDialog *d = emo_preferences_dialog_new(gtk_application_get_active_window(GTK_APPLICATION(self)),
                                                              self->prefs, def, self->server_option);
        g_signal_connect(d, "saved", G_CALLBACK(on_prefs_saved), self);
        gtk_window_present(GTK_WINDOW(d));
}

static void emo_gtk_application_activate(GApplication *app) {
        EmoGtkApplication *self = EMO_GTK_APPLICATION(app);
        GtkWindow *win = gtk_application_get_active_window(GTK_APPLICATION(app));
        if (win) {
                gtk_window_present(win);
                return;
        }
        if (self->quit_after > 0)
                g_timeout_add((guint) (self->quit_after * 1000), on_quit_after, self);
        g_auto(GStrv) args = g_steal_pointer(&self->args);
        guint n = args ? g_strv_length(args) : 0;
        if (self->live || n == 0) {
                /* All live sources in one window, as tiles. */
                EmoGtkWindow *w = new_window(self);
                for (guint i = 0; i < n; i++) {
                        g_autoptr(emo_gtk_source_t) source = NULL;
                        if (emo_gtk_source_parse(args[i], &source) == 0) /* checked before */
                                emo_gtk_window_add_live(w, source);
                }
                return;
        }
        GFile **files = g_new0(GFile *, n);
        for (guint i = 0; i < n; i++)
                files[i] = g_file_new_for_commandline_arg(args[i]);
        emo_gtk_application_open(app, files, (int) n, "");
        for (guint i = 0; i < n; i++)
                g_object_unref(files[i]);
        g_free(files);
}

static void emo_gtk_application_open(GApplication *app, GFile **files, int n_files, const char *hint) {
        (void) hint;
        EmoGtkApplication *self = EMO_GTK_APPLICATION(app);
        /* One window per photo: each keeps its own results and face selection side by side. */
        for (int i = 0; i < n_files; i++)
                emo_gtk_window_open(new_window(self), files[i]);
}

static gboolean on_terminate(gpointer userdata) {
        g_application_quit(G_APPLICATION(userdata));
        return G_SOURCE_CONTINUE;
}

static void emo_gtk_application_startup(GApplication *app) {
        EmoGtkApplication *self = EMO_GTK_APPLICATION(app);
        G_APPLICATION_CLASS(emo_gtk_application_parent_class)->startup(app);
        gtk_window_set_default_icon_name("org.emotiond.Gtk"); /* share/icons/hicolor, installed */
        GtkCssProvider *css = gtk_css_provider_new();
        gtk_css_provider_load_from_resource(css, "/org/emotiond/gtk/style.css");
        gtk_style_context_add_provider_for_display(gdk_display_get_default(), GTK_STYLE_PROVIDER(css),
                                                   GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
        g_object_unref(css);
        gtk_application_set_accels_for_action(GTK_APPLICATION(app), "win.open", (const char *[]) { "<Control>o", NULL });
        gtk_application_set_accels_for_action(GTK_APPLICATION(app), "win.save-annotated",
                                              (const char *[]) { "<Control>s", NULL });
        gtk_application_set_accels_for_action(GTK_APPLICATION(app), "win.save-conversation",
                                              (const char *[]) { "<Control><Shift>s", NULL });
        gtk_application_set_accels_for_action(GTK_APPLICATION(app), "app.quit", (const char *[]) { "<Control>q", NULL });
        gtk_application_set_accels_for_action(GTK_APPLICATION(app), "win.add-source", (const char *[]) { "<Control>l", NULL });
        gtk_application_set_accels_for_action(GTK_APPLICATION(app), "app.preferences",
                                              (const char *[]) { "<Control>comma", NULL });
        GSimpleAction *prefs = g_simple_action_new("preferences", NULL);
        g_signal_connect(prefs, "activate", G_CALLBACK(preferences_activated), app);
        g_action_map_add_action(G_ACTION_MAP(app), G_ACTION(prefs));
        g_object_unref(prefs);
        self->health = emo_gtk_health_new(self->health_connection, on_health, self);
        GSimpleAction *quit = g_simple_action_new("quit", NULL);
        g_signal_connect_swapped(quit, "activate", G_CALLBACK(g_application_quit), app);
        g_action_map_add_action(G_ACTION_MAP(app), G_ACTION(quit));
        g_object_unref(quit);
        /* SIGTERM and SIGINT close the windows and end the main loop as the Quit action does. */
        g_unix_signal_add(SIGTERM, on_terminate, app);
        g_unix_signal_add(SIGINT, on_terminate, app);
        g_unix_signal_add(SIGUSR1, on_usr1, app);
}

static void emo_gtk_application_shutdown(GApplication *app) {
        EmoGtkApplication *self = EMO_GTK_APPLICATION(app);
        write_state(self); /* quit by a signal or the Quit action: the state as it was */
        self->state_written = TRUE;
        /* Windows go first: they cancel their requests on the connection. */
        GList *windows;
        while ((windows = gtk_application_get_windows(GTK_APPLICATION(app))))
                gtk_window_destroy(windows->data);
        G_APPLICATION_CLASS(emo_gtk_application_parent_class)->shutdown(app);
        self->health = emo_gtk_health_free(self->health);
        self->health_connection = emo_gtk_connection_free(self->health_connection);
        self->connection = emo_gtk_connection_free(self->connection);
        self->live_connection = emo_gtk_connection_free(self->live_connection);
}

/* Where the translations are: share/locale next to the program's bin/ (the build tree and any
 * installation prefix alike), else the folder the build was configured for. */
static char *locale_dir(void) {
        g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
        if (exe) {
                g_autofree char *bin = g_path_get_dirname(exe);
                g_autofree char *prefix = g_path_get_dirname(bin);
                char *dir = g_build_filename(prefix, "share", "locale", NULL);
                if (g_file_test(dir, G_FILE_TEST_IS_DIR))
                        return dir;
                g_free(dir);
        }
        return g_strdup(EMO_GTK_LOCALEDIR);
}

/* The window speaks language (fr, en): gettext's LANGUAGE, which it honours in any locale but
 * "C", so a bare C locale becomes C.UTF-8 for messages. GTK must not set the locale again. */
static void setup_i18n(const char *language) {
        setlocale(LC_ALL, "");
        const char *m = setlocale(LC_MESSAGES, NULL);
        if (!m || strcmp(m, "C") == 0 || strcmp(m, "POSIX") == 0)
                setlocale(LC_MESSAGES, "C.UTF-8");
        g_setenv("LANGUAGE", language, TRUE);
        gtk_disable_setlocale();
        g_autofree char *dir = locale_dir();
        bindtextdomain(EMO_GTK_GETTEXT_PACKAGE, dir);
        bind_textdomain_codeset(EMO_GTK_GETTEXT_PACKAGE, "UTF-8");
        textdomain(EMO_GTK_GETTEXT_PACKAGE);
}

static int emo_gtk_application_handle_local_options(GApplication *app, GVariantDict *options) {
        EmoGtkApplication *self = EMO_GTK_APPLICATION(app);
        if (g_variant_dict_contains(options, "version")) {
                printf("emotion-gtk %s\n", EMO_VERSION);
                return 0;
        }
        g_variant_dict_lookup(options, "server", "s", &self->server);
        /* As in the CLI: the client library reads them when it opens a tcp:// connection. */
        const char *server_key = NULL, *cert = NULL;
        if (g_variant_dict_lookup(options, "server-key", "&s", &server_key))
                g_setenv("EMOTIOND_SERVER_KEY", server_key, TRUE);
        if (g_variant_dict_lookup(options, "cert", "^&ay", &cert))
                g_setenv("EMOTIOND_CERT", cert, TRUE);
        g_variant_dict_lookup(options, "lang", "s", &self->language);
        self->server_option = g_strdup(self->server);
        g_variant_dict_lookup(options, "save-annotated", "^ay", &self->save_annotated);
        self->quit_after_result = g_variant_dict_contains(options, "quit-after-result");
        self->scripted = self->quit_after_result || self->save_annotated;
        int timeout = DEFAULT_TIMEOUT_MS;
        if (g_variant_dict_lookup(options, "timeout", "i", &timeout) && (timeout < 1 || timeout > 24 * 3600 * 1000)) {
                g_printerr("emotion-gtk: invalid value %d for --timeout: expected milliseconds from 1 to 86400000\n",
                           timeout);
                return 2;
        }
        self->timeout_ms = timeout;
        g_variant_dict_lookup(options, G_OPTION_REMAINING, "^aay", &self->args);
        self->live = g_variant_dict_contains(options, "live");
        self->loop = g_variant_dict_contains(options, "loop");
        g_variant_dict_lookup(options, "state", "^ay", &self->state_path);
        if (g_variant_dict_lookup(options, "quit-after", "d", &self->quit_after) &&
            !(self->quit_after > 0 && self->quit_after < 1e6)) {
                g_printerr("emotion-gtk: invalid value for --quit-after: expected seconds over 0\n");
                return 2;
        }
        for (guint i = 0; self->live && self->args && self->args[i]; i++) {
                g_autoptr(emo_gtk_source_t) source = NULL;
                int k = emo_gtk_source_parse(self->args[i], &source);
                if (k < 0) {
                        g_printerr("emotion-gtk: --live: %s: %s\n", self->args[i],
                                   k == -EPROTONOSUPPORT ? "not a video source (a file, /dev/videoN, rtsp://, http://...)"
                                                         : "not a source (a URL needs a host)");
                        return 2;
                }
        }
        if (self->language && !emo_language_valid(self->language)) {
                g_printerr("emotion-gtk: invalid language '%s' (expected a code such as fr)\n", self->language);
                return 2;
        }
        /* The preferences fill in what the command line leaves out; a bad file is said and the
         * defaults are used. */
        g_autoptr(GError) error = NULL;
        self->prefs = emo_gtk_prefs_load(NULL, &error);
        if (error)
                g_printerr("emotion-gtk: Failed to read the preferences: %s\n", error->message);
        if (!self->server)
                self->server = g_strdup(self->prefs->endpoint);
        if (!self->language)
                self->language = g_strdup(self->prefs->language);
        setup_i18n(self->language);
        int r = emo_gtk_connection_new(self->server, self->timeout_ms, &self->connection);
        if (r >= 0)
                r = emo_gtk_connection_new(self->server, MIN(self->timeout_ms, LIVE_TIMEOUT_MS), &self->live_connection);
        if (r >= 0)
                r = emo_gtk_connection_new(self->server, MIN(self->timeout_ms, HEALTH_TIMEOUT_MS),
                                           &self->health_connection);
        if (r < 0) {
                g_printerr("emotion-gtk: %s endpoint '%s': %s\n", r == -EINVAL ? "invalid" : "cannot use",
                           self->server ? self->server : "(default)", g_strerror(-r));
                return 2;
        }
        return -1; /* go on */
}

static void emo_gtk_application_finalize(GObject *object) {
        EmoGtkApplication *self = EMO_GTK_APPLICATION(object);
        self->health = emo_gtk_health_free(self->health);
        self->health_connection = emo_gtk_connection_free(self->health_connection);
        self->connection = emo_gtk_connection_free(self->connection);
        self->live_connection = emo_gtk_connection_free(self->live_connection);
        self->prefs = emo_gtk_prefs_free(self->prefs);
        g_free(self->server_option);
        g_strfreev(self->args);
        g_free(self->state_path);
        g_free(self->server);
        g_free(self->language);
        g_free(self->save_annotated);
        G_OBJECT_CLASS(emo_gtk_application_parent_class)->finalize(object);
}

static void emo_gtk_application_class_init(EmoGtkApplicationClass *klass) {
        GApplicationClass *app_class = G_APPLICATION_CLASS(klass);
        G_OBJECT_CLASS(klass)->finalize = emo_gtk_application_finalize;
        app_class->activate = emo_gtk_application_activate;
        app_class->open = emo_gtk_application_open;
        app_class->startup = emo_gtk_application_startup;
        app_class->shutdown = emo_gtk_application_shutdown;
        app_class->handle_local_options = emo_gtk_application_handle_local_options;
}

static void emo_gtk_application_init(EmoGtkApplication *self) {
        static const GOptionEntry entries[] = {
                { "server", 0, 0, G_OPTION_ARG_STRING, NULL,
                  "Daemon endpoint (default: the preferences', else $EMOTIOND_ENDPOINT, else the user socket when "
                  "it exists, else ipc:///run/emotiond/emotiond.sock)",
                  "EP" },
                { "server-key", 0, 0, G_OPTION_ARG_STRING, NULL,
                  "The daemon's CURVE public key for a tcp:// endpoint: Z85, or a certificate file "
                  "(default: $EMOTIOND_SERVER_KEY)",
                  "KEY" },
                { "cert", 0, 0, G_OPTION_ARG_FILENAME, NULL,
                  "This client's certificate from 'emotion keygen' (default: $EMOTIOND_CERT)", "FILE" },
                { "lang", 0, 0, G_OPTION_ARG_STRING, NULL,
                  "Language of the dialogue and of the window: fr or en (default: the preferences', else fr)", "LANG" },
                { "timeout", 0, 0, G_OPTION_ARG_INT, NULL, "Wait at most MS milliseconds for a reply (default 10000)",
                  "MS" },
                { "save-annotated", 0, 0, G_OPTION_ARG_FILENAME, NULL,
                  "Save the first analysed photo with its annotation as PNG to FILE", "FILE" },
                { "quit-after-result", 0, 0, G_OPTION_ARG_NONE, NULL,
                  "Quit once the first photo has been analysed and shown (and saved)", NULL },
                { "live", 0, 0, G_OPTION_ARG_NONE, NULL,
                  "Open the arguments as live sources, each in a tile: cameras (/dev/video0), video files "
                  "(played at their frame rate) or URLs (rtsp://, http://)",
                  NULL },
                { "loop", 0, 0, G_OPTION_ARG_NONE, NULL, "Live video files start over at their end", NULL },
                { "quit-after", 0, 0, G_OPTION_ARG_DOUBLE, NULL, "Quit after SECONDS (with --state: once it is written)",
                  "SECONDS" },
                { "state", 0, 0, G_OPTION_ARG_FILENAME, NULL,
                  "When quitting, write the live tiles, the conversation and the longest UI stall as JSON to FILE",
                  "FILE" },
                { "version", 0, 0, G_OPTION_ARG_NONE, NULL, "Show the version and exit", NULL },
                { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, NULL, NULL, "[PHOTO…|SOURCE…]" },
                { NULL },
        };
        self->exit_status = 0;
        g_application_add_main_option_entries(G_APPLICATION(self), entries);
        g_application_set_option_context_parameter_string(G_APPLICATION(self), "[PHOTO…] | --live SOURCE…");
        g_application_set_option_context_summary(
                G_APPLICATION(self), "Show the faces in photos, or live in cameras, video files and streams, with the "
                                     "emotion emotiond finds in each, its emoji and the dialogue line for the main "
                                     "face.");
}

EmoGtkApplication *emo_gtk_application_new(void) {
        /* NON_UNIQUE: each run is its own process with its own --server; no session bus needed. */
        return g_object_new(EMO_TYPE_GTK_APPLICATION, "application-id", "org.emotiond.Gtk", "flags",
                            G_APPLICATION_HANDLES_OPEN | G_APPLICATION_NON_UNIQUE, NULL);
}

int emo_gtk_application_exit_status(EmoGtkApplication *self) {
        return self->exit_status;
}
