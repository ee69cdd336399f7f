#include "preferences-dialog.h"

#include <glib/gi18n.h>

struct _EmoPreferencesDialog {
        GtkWindow parent_instance;
        GtkEntry *endpoint;
        GtkDropDown *language;
        GtkLabel *note, *problem;
        emo_gtk_prefs_t *prefs;
};

G_DEFINE_FINAL_TYPE(EmoPreferencesDialog, emo_preferences_dialog, GTK_TYPE_WINDOW)

enum { SIGNAL_SAVED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* The drop-down's items, in its order. */
static const char *const languages[] = { "fr", "en" };

static void show_problem(EmoPreferencesDialog *self, const char *text) {
        gtk_label_set_text(self->problem, text ? text : "");
        gtk_widget_set_visible(GTK_WIDGET(self->problem), text != NULL);
}

static void on_changed(EmoPreferencesDialog *self) {
        show_problem(self, NULL);
}

static void on_save(EmoPreferencesDialog *self) {
        g_autofree char *ep = g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(self->endpoint))));
        if (!emo_gtk_prefs_set_endpoint(self->prefs, ep)) {
                show_problem(self, _("The endpoint must be ipc://PATH or tcp://HOST:PORT, without spaces."));
                return;
        }
        guint i = gtk_drop_down_get_selected(self->language);
        emo_gtk_prefs_set_language(self->prefs, languages[i < G_N_ELEMENTS(languages) ? i : 0]);
        g_autoptr(GError) error = NULL;
        if (!emo_gtk_prefs_save(self->prefs, NULL, &error)) {
                g_autofree char *m = g_strdup_printf(_("Failed to save the preferences: %s"), error->message);
                show_problem(self, m);
                return;
        }
        g_signal_emit(self, signals[SIGNAL_SAVED], 0, self->prefs);
        gtk_window_destroy(GTK_WINDOW(self));
}

static void emo_preferences_dialog_finalize(GObject *object) {
        EmoPreferencesDialog *self = EMO_PREFERENCES_DIALOG(object);
        emo_gtk_prefs_free(self->prefs);
        G_OBJECT_CLASS(emo_preferences_dialog_parent_class)->finalize(object);
}

static void emo_preferences_dialog_dispose(GObject *object) {
        gtk_widget_dispose_template(GTK_WIDGET(object), EMO_TYPE_PREFERENCES_DIALOG);
        G_OBJECT_CLASS(emo_preferences_dialog_parent_class)->dispose(object);
}

static void emo_preferences_dialog_class_init(EmoPreferencesDialogClass *klass) {
        GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
        G_OBJECT_CLASS(klass)->finalize = emo_preferences_dialog_finalize;
        G_OBJECT_CLASS(klass)->dispose = emo_preferences_dialog_dispose;
        gtk_widget_class_set_template_from_resource(widget_class, "/org/emotiond/gtk/preferences-dialog.ui");
        gtk_widget_class_bind_template_child(widget_class, EmoPreferencesDialog, endpoint);
        gtk_widget_class_bind_template_child(widget_class, EmoPreferencesDialog, language);
        gtk_widget_class_bind_template_child(widget_class, EmoPreferencesDialog, note);
        gtk_widget_class_bind_template_child(widget_class, EmoPreferencesDialog, problem);
        gtk_widget_class_bind_template_callback(widget_class, on_changed);
        gtk_widget_class_bind_template_callback(widget_class, on_save);
        gtk_widget_class_add_binding_action(widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
        signals[SIGNAL_SAVED] = g_signal_new("saved", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                             NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
}

static void emo_preferences_dialog_init(EmoPreferencesDialog *self) {
        gtk_widget_init_template(GTK_WIDGET(self));
}

EmoPreferencesDialog *emo_preferences_dialog_new(GtkWindow *parent, const emo_gtk_prefs_t *prefs,
                                                 const char *default_endpoint, const char *overridden) {
        EmoPreferencesDialog *self = g_object_new(EMO_TYPE_PREFERENCES_DIALOG, "transient-for", parent, NULL);
        self->prefs = g_new0(emo_gtk_prefs_t, 1);
        self->prefs->endpoint = g_strdup(prefs->endpoint);
        self->prefs->language = g_strdup(prefs->language);
        gtk_editable_set_text(GTK_EDITABLE(self->endpoint), prefs->endpoint ? prefs->endpoint : "");
        gtk_entry_set_placeholder_text(self->endpoint, default_endpoint);
        gtk_drop_down_set_selected(self->language, g_strcmp0(prefs->language, "en") == 0 ? 1 : 0);
        g_autofree char *path = emo_gtk_prefs_default_path();
        g_autofree char *note = overridden
                ? g_strdup_printf(_("Saved in %s. The window's own language changes at the next start. For this run "
                                    "--server %s was given: a new endpoint applies now, and at the next start unless "
                                    "--server is given again."),
                                  path, overridden)
                : g_strdup_printf(_("Saved in %s. A new endpoint and the dialogue language apply at once; the "
                                    "window's own language changes at the next start."),
                                  path);
        gtk_label_set_text(self->note, note);
        return self;
}
