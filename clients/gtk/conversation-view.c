#include "conversation-view.h"

#include <glib/gi18n.h>
#include <string.h>

#include "emo/labels.h"

struct _EmoConversationView {
        GtkBox parent_instance;
        GtkListBox *list;
        GtkScrolledWindow *scroller;
        GtkWidget *answer_box;
        GtkEntry *answer;
        GtkWidget *save_button, *clear_button;
        emo_gtk_dialogue_t *dialogue;
        size_t shown; /* lines of the model already in the list */
        /* The face spoken to in the last analysis observed: where it came from and its box. */
        gconstpointer addressee_source;
        int addressee[4];
        GtkFileChooserNative *chooser;
};

G_DEFINE_FINAL_TYPE(EmoConversationView, emo_conversation_view, GTK_TYPE_BOX)

static GtkWidget *line_row(const emo_gtk_line_t *l) {
        bool daemon = l->speaker == EMO_GTK_SPEAKER_DAEMON;
        g_autoptr(GDateTime) t = g_date_time_new_from_unix_local(l->wall_us / 1000000);
        g_autofree char *when = t ? g_date_time_format(t, "%H:%M:%S") : g_strdup("");
        g_autofree char *who = daemon ? g_strdup_printf("%s emotiond · %s", emo_emotion_emoji(l->emotion), when)
                                      : g_strdup_printf(_("You · %s"), when);
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
        GtkWidget *head = gtk_label_new(who);
        GtkWidget *text = gtk_label_new(l->text);
        gtk_label_set_wrap(GTK_LABEL(text), TRUE);
        gtk_label_set_wrap_mode(GTK_LABEL(text), PANGO_WRAP_WORD_CHAR);
        gtk_label_set_selectable(GTK_LABEL(text), TRUE);
        float align = daemon ? 0.0f : 1.0f;
        gtk_label_set_xalign(GTK_LABEL(head), align);
        gtk_label_set_xalign(GTK_LABEL(text), align);
        /* Each line hugs its text, emotiond's on the left and the person's on the right. */
        gtk_widget_set_halign(text, daemon ? GTK_ALIGN_START : GTK_ALIGN_END);
        gtk_widget_add_css_class(head, "dim-label");
        gtk_widget_add_css_class(head, "caption");
        gtk_box_append(GTK_BOX(box), head);
        gtk_box_append(GTK_BOX(box), text);
        gtk_widget_add_css_class(box, daemon ? "daemon-line" : "person-line");
        return box;
}

static void refresh(EmoConversationView *self) {
        size_t n = emo_gtk_dialogue_n_lines(self->dialogue);
        for (; self->shown < n; self->shown++)
                gtk_list_box_append(self->list, line_row(emo_gtk_dialogue_line(self->dialogue, self->shown)));
        bool awaiting = emo_gtk_dialogue_awaiting_answer(self->dialogue);
        gtk_widget_set_visible(self->answer_box, awaiting);
        gtk_widget_set_sensitive(self->save_button, n > 0);
        gtk_widget_set_sensitive(self->clear_button, n > 0);
        /* The newest line in view. */
        GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(self->scroller);
        gtk_adjustment_set_value(adj, gtk_adjustment_get_upper(adj));
}

static void on_answer(EmoConversationView *self) {
        const char *text = gtk_editable_get_text(GTK_EDITABLE(self->answer));
        if (emo_gtk_dialogue_answer(self->dialogue, text) < 0)
                return; /* empty, or nothing to answer: keep what was typed */
        gtk_editable_set_text(GTK_EDITABLE(self->answer), "");
        refresh(self);
}

static void on_clear(EmoConversationView *self) {
        emo_gtk_dialogue_clear(self->dialogue);
        self->shown = 0;
        GtkWidget *child;
        while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->list))))
                gtk_list_box_remove(self->list, child);
        refresh(self);
}

static void show_error(EmoConversationView *self, const char *message) {
        GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(self));
        GtkWidget *d = gtk_message_dialog_new(GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL, GTK_DIALOG_MODAL,
                                              GTK_MESSAGE_ERROR, GTK_BUTTONS_CLOSE, "%s", message);
        g_signal_connect(d, "response", G_CALLBACK(gtk_window_destroy), NULL);
        gtk_widget_show(d);
}

static void on_save_response(GtkNativeDialog *dialog, int response, gpointer userdata) {
        EmoConversationView *self = userdata;
        if (response == GTK_RESPONSE_ACCEPT) {
                g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
                g_autofree char *text = emo_gtk_dialogue_to_text(self->dialogue);
                g_autoptr(GError) error = NULL;
                if (!text || !g_file_replace_contents(file, text, strlen(text), NULL, FALSE, G_FILE_CREATE_PRIVATE,
                                                      NULL, NULL, &error)) {
                        g_autofree char *m = g_strdup_printf(_("Failed to save the conversation: %s"),
                                                             error ? error->message : "out of memory");
                        show_error(self, m);
                }
        }
        g_clear_object(&self->chooser);
}

static void on_save(EmoConversationView *self) {
        if (emo_gtk_dialogue_n_lines(self->dialogue) == 0)
                return;
        GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(self));
        g_clear_object(&self->chooser);
        self->chooser = gtk_file_chooser_native_new(_("Save the conversation"), GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL,
                                                    GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), _("_Cancel"));
        gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(self->chooser), "conversation.txt");
        g_signal_connect(self->chooser, "response", G_CALLBACK(on_save_response), self);
        gtk_native_dialog_show(GTK_NATIVE_DIALOG(self->chooser));
}

static void emo_conversation_view_dispose(GObject *object) {
        EmoConversationView *self = EMO_CONVERSATION_VIEW(object);
        g_clear_object(&self->chooser);
        gtk_widget_dispose_template(GTK_WIDGET(self), EMO_TYPE_CONVERSATION_VIEW);
        G_OBJECT_CLASS(emo_conversation_view_parent_class)->dispose(object);
}

static void emo_conversation_view_finalize(GObject *object) {
        EmoConversationView *self = EMO_CONVERSATION_VIEW(object);
        self->dialogue = emo_gtk_dialogue_free(self->dialogue);
        G_OBJECT_CLASS(emo_conversation_view_parent_class)->finalize(object);
}

static void emo_conversation_view_class_init(EmoConversationViewClass *klass) {
        GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
        G_OBJECT_CLASS(klass)->dispose = emo_conversation_view_dispose;
        G_OBJECT_CLASS(klass)->finalize = emo_conversation_view_finalize;
        gtk_widget_class_set_template_from_resource(widget_class, "/org/emotiond/gtk/conversation-view.ui");
        gtk_widget_class_bind_template_child(widget_class, EmoConversationView, list);
        gtk_widget_class_bind_template_child(widget_class, EmoConversationView, scroller);
        gtk_widget_class_bind_template_child(widget_class, EmoConversationView, answer_box);
        gtk_widget_class_bind_template_child(widget_class, EmoConversationView, answer);
        gtk_widget_class_bind_template_child(widget_class, EmoConversationView, save_button);
        gtk_widget_class_bind_template_child(widget_class, EmoConversationView, clear_button);
        gtk_widget_class_bind_template_callback(widget_class, on_answer);
        gtk_widget_class_bind_template_callback(widget_class, on_clear);
        gtk_widget_class_bind_template_callback(widget_class, on_save);
}

static void emo_conversation_view_init(EmoConversationView *self) {
        gtk_widget_init_template(GTK_WIDGET(self));
        self->dialogue = emo_gtk_dialogue_new();
        if (!self->dialogue)
                g_error("Out of memory");
}

void emo_conversation_view_observe(EmoConversationView *self, gconstpointer source,
                                   const emo_gtk_results_t *r, ssize_t selected, gboolean picked) {
        emo_gtk_speech_t said = emo_gtk_results_speech(r, selected);
        if (said.face < 0)
                return;
        const emo_gtk_face_t *f = &r->faces[said.face];
        int box[4] = { f->x, f->y, f->width, f->height };
        /* A click's results are the ones observed last: the same box is the same face. */
        if (picked && (source != self->addressee_source || memcmp(box, self->addressee, sizeof(box)) != 0))
                emo_gtk_dialogue_readdress(self->dialogue);
        self->addressee_source = source;
        memcpy(self->addressee, box, sizeof(box));
        if (emo_gtk_dialogue_observe(self->dialogue, said.emotion, said.kind, said.text) > 0 ||
            !emo_gtk_dialogue_awaiting_answer(self->dialogue))
                refresh(self);
        if (emo_gtk_dialogue_awaiting_answer(self->dialogue))
                gtk_widget_grab_focus(GTK_WIDGET(self->answer));
}

emo_gtk_dialogue_t *emo_conversation_view_get_dialogue(EmoConversationView *self) {
        return self->dialogue;
}

void emo_conversation_view_save(EmoConversationView *self) {
        on_save(self);
}
