#include "photo-view.h"

#include "emo/labels.h"
#include "overlay.h"

struct _EmoPhotoView {
        GtkWidget parent_instance;
        GdkTexture *texture;
        const emo_gtk_results_t *results;
        ssize_t selected;
};

G_DEFINE_FINAL_TYPE(EmoPhotoView, emo_photo_view, GTK_TYPE_WIDGET)

enum { SIGNAL_FACE_CLICKED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void update_description(EmoPhotoView *self);

/* Where the photo is drawn; the results are mapped by their own image size (the daemon's), onto
 * the same rectangle. */
static emo_gtk_fit_t texture_fit(EmoPhotoView *self, double w, double h) {
        return emo_gtk_fit(gdk_texture_get_width(self->texture), gdk_texture_get_height(self->texture), w, h);
}

static emo_gtk_fit_t results_fit(EmoPhotoView *self, double w, double h) {
        emo_gtk_fit_t t = texture_fit(self, w, h);
        if (!self->results)
                return t;
        /* The image rectangle on screen, expressed for the daemon's image size. */
        double shown_w = gdk_texture_get_width(self->texture) * t.scale;
        return (emo_gtk_fit_t) { .scale = shown_w / self->results->image_width, .offset_x = t.offset_x,
                                 .offset_y = t.offset_y };
}

static void emo_photo_view_snapshot(GtkWidget *widget, GtkSnapshot *s) {
        EmoPhotoView *self = EMO_PHOTO_VIEW(widget);
        if (!self->texture)
                return;
        double w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
        emo_gtk_fit_t t = texture_fit(self, w, h);
        graphene_rect_t shown = GRAPHENE_RECT_INIT((float) t.offset_x, (float) t.offset_y,
                                                   (float) (gdk_texture_get_width(self->texture) * t.scale),
                                                   (float) (gdk_texture_get_height(self->texture) * t.scale));
        gtk_snapshot_append_texture(s, self->texture, &shown);
        emo_gtk_fit_t f = results_fit(self, w, h);
        emo_gtk_overlay_append(s, gtk_widget_get_pango_context(widget), self->results, &f, w, h, 1.0, self->selected,
                               self->selected);
}

static void emo_photo_view_measure(GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum,
                                   int *natural, int *minimum_baseline, int *natural_baseline) {
        (void) widget;
        (void) for_size;
        *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 240 : 180;
        *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 720 : 540;
        *minimum_baseline = *natural_baseline = -1;
}

static void on_click(GtkGestureClick *gesture, int n_press, double x, double y, gpointer userdata) {
        EmoPhotoView *self = userdata;
        (void) gesture;
        (void) n_press;
        if (!self->texture || !self->results)
                return;
        emo_gtk_fit_t f = results_fit(self, gtk_widget_get_width(GTK_WIDGET(self)),
                                      gtk_widget_get_height(GTK_WIDGET(self)));
        double ix, iy;
        emo_gtk_fit_to_image(&f, x, y, &ix, &iy);
        ssize_t face = emo_gtk_results_face_at(self->results, ix, iy);
        if (face >= 0)
                g_signal_emit(self, signals[SIGNAL_FACE_CLICKED], 0, (int) face);
}

static void emo_photo_view_dispose(GObject *object) {
        EmoPhotoView *self = EMO_PHOTO_VIEW(object);
        g_clear_object(&self->texture);
        self->results = NULL;
        G_OBJECT_CLASS(emo_photo_view_parent_class)->dispose(object);
}

static void emo_photo_view_class_init(EmoPhotoViewClass *klass) {
        GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
        G_OBJECT_CLASS(klass)->dispose = emo_photo_view_dispose;
        widget_class->snapshot = emo_photo_view_snapshot;
        widget_class->measure = emo_photo_view_measure;
        signals[SIGNAL_FACE_CLICKED] = g_signal_new("face-clicked", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                                    NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT);
        gtk_widget_class_set_css_name(widget_class, "photoview");
        gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void emo_photo_view_init(EmoPhotoView *self) {
        self->selected = -1;
        GtkGesture *click = gtk_gesture_click_new();
        g_signal_connect(click, "released", G_CALLBACK(on_click), self);
        gtk_widget_add_controller(GTK_WIDGET(self), GTK_EVENT_CONTROLLER(click));
        gtk_widget_set_hexpand(GTK_WIDGET(self), TRUE);
        gtk_widget_set_vexpand(GTK_WIDGET(self), TRUE);
}

GtkWidget *emo_photo_view_new(void) {
        return g_object_new(EMO_TYPE_PHOTO_VIEW, NULL);
}

void emo_photo_view_set_texture(EmoPhotoView *self, GdkTexture *texture) {
        g_set_object(&self->texture, texture);
        self->results = NULL;
        self->selected = -1;
        update_description(self);
        gtk_widget_queue_draw(GTK_WIDGET(self));
}

/* What a screen reader says for the picture: the faces and their emotions, largest first. */
static void update_description(EmoPhotoView *self) {
        const emo_gtk_results_t *r = self->results;
        GString *s = g_string_new(NULL);
        if (!self->texture)
                g_string_append(s, "No photo");
        else if (!r)
                g_string_append(s, "Photo, not analysed yet");
        else {
                g_string_append_printf(s, "Photo with %zu face%s", r->n_faces, r->n_faces == 1 ? "" : "s");
                for (size_t i = 0; i < r->n_faces; i++)
                        g_string_append_printf(s, "%s%s %.0f %%", i == 0 ? ": " : ", ",
                                               emo_emotion_name(r->faces[i].emotion), r->faces[i].confidence * 100.0);
                if (r->dialogue_kind != 0 && r->dialogue_text[0])
                        g_string_append_printf(s, ". emotiond says: %s", r->dialogue_text);
        }
        gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, s->str, -1);
        g_string_free(s, TRUE);
}

void emo_photo_view_set_results(EmoPhotoView *self, const emo_gtk_results_t *results) {
        self->results = results;
        update_description(self);
        self->selected = -1;
        gtk_widget_queue_draw(GTK_WIDGET(self));
}

ssize_t emo_photo_view_get_selected(EmoPhotoView *self) {
        return self->selected;
}

void emo_photo_view_set_selected(EmoPhotoView *self, ssize_t index) {
        self->selected = index;
        gtk_widget_queue_draw(GTK_WIDGET(self));
}
