#include "face-bars.h"

#include <glib/gi18n.h>

#include "emo/labels.h"

const char *emo_gtk_emotion_name(emo_emotion_t e) {
        static const char *const names[] = {
                [EMO_ANGRY] = N_("angry"), [EMO_DISGUST] = N_("disgust"), [EMO_FEAR] = N_("fear"),
                [EMO_HAPPY] = N_("happy"), [EMO_SAD] = N_("sad"),         [EMO_SURPRISE] = N_("surprise"),
                [EMO_NEUTRAL] = N_("neutral"),
        };
        return (size_t) e < G_N_ELEMENTS(names) && names[e] ? _(names[e]) : emo_emotion_name(e);
}

struct _EmoFaceBars {
        GtkBox parent_instance;
        GtkLabel *heading;
        GtkLabel *hint;
        GtkGrid *grid;
        GtkLevelBar *bars[EMO_EMOTION_COUNT];
        GtkLabel *values[EMO_EMOTION_COUNT];
        GtkLabel *names[EMO_EMOTION_COUNT];
};

G_DEFINE_FINAL_TYPE(EmoFaceBars, emo_face_bars, GTK_TYPE_BOX)

static void emo_face_bars_class_init(EmoFaceBarsClass *klass) {
        GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
        gtk_widget_class_set_template_from_resource(widget_class, "/org/emotiond/gtk/face-bars.ui");
        gtk_widget_class_bind_template_child(widget_class, EmoFaceBars, heading);
        gtk_widget_class_bind_template_child(widget_class, EmoFaceBars, hint);
        gtk_widget_class_bind_template_child(widget_class, EmoFaceBars, grid);
}

static void emo_face_bars_init(EmoFaceBars *self) {
        gtk_widget_init_template(GTK_WIDGET(self));
        /* The seven rows in the wire's Emotion order, the same for every face, so that faces can
         * be compared by clicking from one to the other. */
        for (int e = 0; e < EMO_EMOTION_COUNT; e++) {
                g_autofree char *name = g_strdup_printf("%s %s", emo_emotion_emoji(e), emo_gtk_emotion_name(e));
                GtkWidget *label = gtk_label_new(name);
                gtk_label_set_xalign(GTK_LABEL(label), 0);
                GtkWidget *bar = gtk_level_bar_new_for_interval(0, 1);
                gtk_level_bar_set_mode(GTK_LEVEL_BAR(bar), GTK_LEVEL_BAR_MODE_CONTINUOUS);
                /* No offset colours: a bar's length is the only thing it says. */
                gtk_level_bar_remove_offset_value(GTK_LEVEL_BAR(bar), GTK_LEVEL_BAR_OFFSET_LOW);
                gtk_level_bar_remove_offset_value(GTK_LEVEL_BAR(bar), GTK_LEVEL_BAR_OFFSET_HIGH);
                gtk_level_bar_remove_offset_value(GTK_LEVEL_BAR(bar), GTK_LEVEL_BAR_OFFSET_FULL);
                gtk_widget_set_hexpand(bar, TRUE);
                gtk_widget_set_valign(bar, GTK_ALIGN_CENTER);
                gtk_widget_add_css_class(bar, emo_emotion_valence(e) < 0   ? "negative"
                                              : emo_emotion_valence(e) > 0 ? "positive"
                                                                           : "neutral");
                GtkWidget *value = gtk_label_new("");
                gtk_label_set_xalign(GTK_LABEL(value), 1);
                gtk_label_set_width_chars(GTK_LABEL(value), 5);
                gtk_widget_add_css_class(value, "numeric");
                gtk_grid_attach(self->grid, label, 0, e, 1, 1);
                gtk_grid_attach(self->grid, bar, 1, e, 1, 1);
                gtk_grid_attach(self->grid, value, 2, e, 1, 1);
                self->bars[e] = GTK_LEVEL_BAR(bar);
                self->values[e] = GTK_LABEL(value);
                self->names[e] = GTK_LABEL(label);
        }
}

void emo_face_bars_set_face(EmoFaceBars *self, const emo_gtk_face_t *face, size_t index, size_t n_faces) {
        if (!face) {
                gtk_label_set_text(self->heading, n_faces == 0 ? _("No face found") : _("No face selected"));
                gtk_label_set_text(self->hint, n_faces == 0 ? _("emotiond found no face in this photo.")
                                                            : _("Click a face to see its seven probabilities."));
                gtk_widget_set_visible(GTK_WIDGET(self->hint), TRUE);
                gtk_widget_set_visible(GTK_WIDGET(self->grid), FALSE);
                return;
        }
        g_autofree char *heading = g_strdup_printf(_("%s Face %zu of %zu: %s, %.0f %%"), face->emoji, index + 1,
                                                   n_faces, emo_gtk_emotion_name(face->emotion), face->confidence * 100.0);
        gtk_label_set_text(self->heading, heading);
        gtk_label_set_text(self->hint, face->has_probabilities
                                               ? _("Click another face to compare.")
                                               : _("The daemon sent only the top probability for this face."));
        gtk_widget_set_visible(GTK_WIDGET(self->hint), TRUE);
        gtk_widget_set_visible(GTK_WIDGET(self->grid), TRUE);
        for (int e = 0; e < EMO_EMOTION_COUNT; e++) {
                double p = face->probabilities[e];
                gtk_level_bar_set_value(self->bars[e], p < 0 ? 0 : p > 1 ? 1 : p);
                g_autofree char *v = g_strdup_printf("%.1f %%", p * 100.0);
                gtk_label_set_text(self->values[e], v);
                if (e == face->emotion)
                        gtk_widget_add_css_class(GTK_WIDGET(self->names[e]), "top");
                else
                        gtk_widget_remove_css_class(GTK_WIDGET(self->names[e]), "top");
        }
}

void emo_face_bars_clear(EmoFaceBars *self) {
        gtk_label_set_text(self->heading, _("No analysis"));
        gtk_label_set_text(self->hint, _("Open a photo, then click a face to see its seven probabilities."));
        gtk_widget_set_visible(GTK_WIDGET(self->hint), TRUE);
        gtk_widget_set_visible(GTK_WIDGET(self->grid), FALSE);
}

const char *emo_face_bars_get_heading(EmoFaceBars *self) {
        return gtk_label_get_text(self->heading);
}
