#include "overlay.h"

#include <math.h>

#include "face-bars.h"
#include "overlay/overlay.h"

/* The window's results as the shared renderer takes them (lib/overlay). */
void emo_gtk_overlay_append(GtkSnapshot *s, PangoContext *pc, const emo_gtk_results_t *r, const emo_gtk_fit_t *f,
                            double view_w, double view_h, double ui_scale, ssize_t selected, ssize_t addressed) {
        if (!r || view_w <= 0 || view_h <= 0)
                return;
        g_autofree emo_overlay_face_t *faces = g_new0(emo_overlay_face_t, r->n_faces ? r->n_faces : 1);
        for (size_t i = 0; i < r->n_faces; i++) {
                const emo_gtk_face_t *face = &r->faces[i];
                faces[i] = (emo_overlay_face_t) { .x = face->x, .y = face->y, .width = face->width,
                                                  .height = face->height, .emotion = face->emotion,
                                                  .confidence = face->confidence, .emoji = face->emoji,
                                                  .label = emo_gtk_emotion_name(face->emotion) };
        }
        /* The bubble speaks to the picked face when the daemon gave it a line of its own. */
        emo_gtk_speech_t said = emo_gtk_results_speech(r, addressed);
        emo_overlay_t o = {
                .faces = faces,
                .n_faces = r->n_faces,
                .selected = selected,
                .speaker = said.kind != 0 ? said.face : -1,
                .dialogue_text = said.text,
                .dialogue_kind = said.kind,
        };
        emo_overlay_view_t v = { .scale = f->scale, .offset_x = f->offset_x, .offset_y = f->offset_y,
                                 .width = view_w, .height = view_h, .ui_scale = ui_scale };
        graphene_rect_t all = GRAPHENE_RECT_INIT(0, 0, (float) view_w, (float) view_h);
        cairo_t *cr = gtk_snapshot_append_cairo(s, &all);
        emo_overlay_draw(cr, pc, &o, &v);
        cairo_destroy(cr);
}

GdkTexture *emo_gtk_overlay_render(GskRenderer *renderer, PangoContext *pc, GdkTexture *image,
                                   const emo_gtk_results_t *r, ssize_t addressed, GError **error) {
        double w = gdk_texture_get_width(image), h = gdk_texture_get_height(image);
        graphene_rect_t all = GRAPHENE_RECT_INIT(0, 0, (float) w, (float) h);
        GtkSnapshot *s = gtk_snapshot_new();
        gtk_snapshot_append_texture(s, image, &all);
        emo_gtk_fit_t f = emo_gtk_fit(r->image_width, r->image_height, w, h);
        /* Text and lines grow with the image, as they would look in a window of about 640 px. */
        double u = emo_overlay_ui_scale(w, h);
        emo_gtk_overlay_append(s, pc, r, &f, w, h, u, -1, addressed);
        GskRenderNode *node = gtk_snapshot_free_to_node(s);
        if (!node) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "Nothing to render");
                return NULL;
        }
        GdkTexture *t = gsk_renderer_render_texture(renderer, node, &all);
        gsk_render_node_unref(node);
        if (!t)
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "The renderer gave no image");
        return t;
}
