#include "overlay.h"

#include <math.h>

#include "emo/labels.h"

#define EMOJI_FONT "Noto Color Emoji"

static GdkRGBA valence_color(int emotion) {
        switch (emo_emotion_valence(emotion)) {
        case EMO_VALENCE_NEGATIVE:
                return (GdkRGBA) { 0.91f, 0.33f, 0.20f, 1.0f };
        case EMO_VALENCE_POSITIVE:
                return (GdkRGBA) { 0.16f, 0.70f, 0.42f, 1.0f };
        default:
                return (GdkRGBA) { 0.22f, 0.52f, 0.89f, 1.0f };
        }
}

static double clampd(double v, double lo, double hi) {
        return v < lo ? lo : v > hi ? hi : v;
}

/* A layout of text in font (family and weight; the size is set here in device pixels). */
static PangoLayout *make_layout(PangoContext *pc, const char *font, double px, const char *text) {
        PangoLayout *l = pango_layout_new(pc);
        PangoFontDescription *fd = pango_font_description_from_string(font);
        pango_font_description_set_absolute_size(fd, px * PANGO_SCALE);
        pango_layout_set_font_description(l, fd);
        pango_font_description_free(fd);
        pango_layout_set_text(l, text, -1);
        return l;
}

static void append_layout_at(GtkSnapshot *s, PangoLayout *l, double x, double y, const GdkRGBA *color) {
        gtk_snapshot_save(s);
        gtk_snapshot_translate(s, &GRAPHENE_POINT_INIT((float) x, (float) y));
        gtk_snapshot_append_layout(s, l, color);
        gtk_snapshot_restore(s);
}

static void append_rounded(GtkSnapshot *s, const graphene_rect_t *rect, double radius, const GdkRGBA *color) {
        GskRoundedRect rr;
        gsk_rounded_rect_init_from_rect(&rr, rect, (float) radius);
        gtk_snapshot_push_rounded_clip(s, &rr);
        gtk_snapshot_append_color(s, color, rect);
        gtk_snapshot_pop(s);
}

static void append_frame(GtkSnapshot *s, const graphene_rect_t *rect, double radius, double width,
                         const GdkRGBA *color) {
        GskRoundedRect rr;
        gsk_rounded_rect_init_from_rect(&rr, rect, (float) radius);
        float w = (float) width;
        gtk_snapshot_append_border(s, &rr, (float[4]) { w, w, w, w },
                                   (GdkRGBA[4]) { *color, *color, *color, *color });
}

/* A face is drawn in three layers, each for every face before the next: frames, then emoji,
 * then labels, so that no face's frame or emoji hides a neighbour's label. */
typedef enum layer { LAYER_FRAME, LAYER_EMOJI, LAYER_LABEL } layer_t;

static void draw_face(GtkSnapshot *s, PangoContext *pc, const emo_gtk_face_t *face, const emo_gtk_fit_t *f,
                      double view_w, double view_h, double u, bool selected, layer_t layer) {
        double bx = f->offset_x + face->x * f->scale, by = f->offset_y + face->y * f->scale;
        double bw = face->width * f->scale, bh = face->height * f->scale;
        GdkRGBA color = valence_color(face->emotion);
        GdkRGBA shade = { 0, 0, 0, 0.45f };
        GdkRGBA white = { 1, 1, 1, 1 };
        double line = (selected ? 5 : 3) * u;
        PangoRectangle ink, logical;

        if (layer == LAYER_FRAME) {
                /* A dark rim outside the coloured frame keeps it visible on any background. */
                graphene_rect_t outer = GRAPHENE_RECT_INIT((float) (bx - line - u), (float) (by - line - u),
                                                           (float) (bw + 2 * (line + u)), (float) (bh + 2 * (line + u)));
                append_frame(s, &outer, 8 * u, u, &shade);
                graphene_rect_t frame = GRAPHENE_RECT_INIT((float) (bx - line), (float) (by - line),
                                                           (float) (bw + 2 * line), (float) (bh + 2 * line));
                append_frame(s, &frame, 7 * u, line, selected ? &white : &color);
                if (selected) {
                        graphene_rect_t inner = GRAPHENE_RECT_INIT((float) (bx - 2 * u), (float) (by - 2 * u),
                                                                   (float) (bw + 4 * u), (float) (bh + 4 * u));
                        append_frame(s, &inner, 5 * u, 2 * u, &color);
                }
        } else if (layer == LAYER_EMOJI) {
                /* The emoji straddles the box's top-right corner: on the face, without hiding its
                 * eyes. */
                double es = clampd(fmin(bw, bh) * 0.30, 22 * u, 110 * u);
                PangoLayout *el = make_layout(pc, EMOJI_FONT, es, face->emoji);
                pango_layout_get_pixel_extents(el, &ink, &logical);
                double ex = clampd(bx + bw - logical.width * 0.6, 0, view_w - logical.width);
                double ey = clampd(by - logical.height * 0.4, 0, view_h - logical.height);
                append_layout_at(s, el, ex, ey, &white);
                g_object_unref(el);
        } else {
                /* "happy 87 %" on a pill of the valence colour under the box (inside it at the
                 * bottom of the view). */
                char text[64];
                g_snprintf(text, sizeof(text), "%s %.0f %%", emo_emotion_name(face->emotion),
                           face->confidence * 100.0);
                PangoLayout *ll = make_layout(pc, "Sans Bold", 14 * u, text);
                pango_layout_get_pixel_extents(ll, &ink, &logical);
                double pad_x = 8 * u, pad_y = 3 * u;
                double pw = logical.width + 2 * pad_x, ph = logical.height + 2 * pad_y;
                double px = clampd(bx + bw / 2 - pw / 2, 0, view_w - pw);
                double py = by + bh + line + 4 * u;
                if (py + ph > view_h)
                        py = by + bh - ph - 4 * u;
                graphene_rect_t pill = GRAPHENE_RECT_INIT((float) px, (float) py, (float) pw, (float) ph);
                append_rounded(s, &pill, ph / 2, &color);
                append_layout_at(s, ll, px + pad_x, py + pad_y, &white);
                g_object_unref(ll);
        }
}

typedef struct bubble_geometry {
        double x, y, w, h, r;   /* the rounded body */
        double b1x, b1y, b2x, b2y; /* where the tail leaves the body */
        double tx, ty;          /* the tail's tip, at the face */
} bubble_geometry_t;

static void body_path(cairo_t *cr, const bubble_geometry_t *g) {
        cairo_new_path(cr);
        cairo_arc(cr, g->x + g->w - g->r, g->y + g->r, g->r, -M_PI / 2, 0);
        cairo_arc(cr, g->x + g->w - g->r, g->y + g->h - g->r, g->r, 0, M_PI / 2);
        cairo_arc(cr, g->x + g->r, g->y + g->h - g->r, g->r, M_PI / 2, M_PI);
        cairo_arc(cr, g->x + g->r, g->y + g->r, g->r, M_PI, 3 * M_PI / 2);
        cairo_close_path(cr);
}

static void tail_path(cairo_t *cr, const bubble_geometry_t *g) {
        cairo_new_path(cr);
        cairo_move_to(cr, g->b1x, g->b1y);
        cairo_line_to(cr, g->tx, g->ty);
        cairo_line_to(cr, g->b2x, g->b2y);
        cairo_close_path(cr);
}

/* The outline of body and tail together: both stroked at twice the width, then both filled,
 * which covers the inner half of every stroke and the seam between them. */
static void draw_bubble_shape(cairo_t *cr, const bubble_geometry_t *g, double line, const GdkRGBA *border) {
        cairo_set_line_width(cr, 2 * line);
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
        gdk_cairo_set_source_rgba(cr, border);
        body_path(cr, g);
        cairo_stroke(cr);
        tail_path(cr, g);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 1, 1, 1);
        body_path(cr, g);
        cairo_fill(cr);
        tail_path(cr, g);
        cairo_fill(cr);
}

static void draw_bubble(GtkSnapshot *s, PangoContext *pc, const emo_gtk_results_t *r, const emo_gtk_face_t *face,
                        const emo_gtk_fit_t *f, double view_w, double view_h, double u) {
        double bx = f->offset_x + face->x * f->scale, by = f->offset_y + face->y * f->scale;
        double bw = face->width * f->scale, bh = face->height * f->scale;
        double margin = 6 * u, pad = 10 * u, tail = 22 * u;

        PangoLayout *l = make_layout(pc, "Sans", 16 * u, r->dialogue_text);
        double max_w = fmin(fmax(view_w * 0.55, 160 * u), 380 * u);
        pango_layout_set_width(l, (int) (max_w * PANGO_SCALE));
        pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
        PangoRectangle ink, logical;
        pango_layout_get_pixel_extents(l, &ink, &logical);

        bubble_geometry_t g = { .w = logical.width + 2 * pad, .h = logical.height + 2 * pad, .r = 12 * u };
        g.w = fmin(g.w, view_w - 2 * margin);
        double cx = bx + bw / 2;
        double spread = fmin(14 * u, g.w / 4);
        double room_right = view_w - (bx + bw) - tail - margin, room_left = bx - tail - margin;
        bool right = room_right >= room_left;
        if (by - tail - g.h >= margin) {
                /* Above the face, the tail down to the top of the box. */
                g.x = clampd(cx - g.w / 2, margin, view_w - g.w - margin);
                g.y = by - tail - g.h;
                double jx = clampd(cx, g.x + g.r + spread, g.x + g.w - g.r - spread);
                g.b1x = jx - spread, g.b2x = jx + spread, g.b1y = g.b2y = g.y + g.h;
                g.tx = cx, g.ty = by - 2 * u;
        } else if (g.w <= (right ? room_right : room_left) || by + bh + tail + g.h + 30 * u > view_h - margin) {
                /* Beside the face, where there is more room, the tail to the side of the box: it
                 * hides no other face below this one. */
                g.x = right ? fmin(bx + bw + tail, view_w - g.w - margin) : fmax(bx - tail - g.w, margin);
                g.y = clampd(by + bh / 3 - g.h / 2, margin, view_h - g.h - margin);
                double jy = clampd(by + bh / 3, g.y + g.r + spread, g.y + g.h - g.r - spread);
                g.b1y = jy - spread, g.b2y = jy + spread;
                g.b1x = g.b2x = right ? g.x : g.x + g.w;
                g.tx = right ? bx + bw : bx, g.ty = by + bh / 3;
        } else {
                /* Below the face, under its label. */
                g.x = clampd(cx - g.w / 2, margin, view_w - g.w - margin);
                g.y = by + bh + tail + 30 * u;
                double jx = clampd(cx, g.x + g.r + spread, g.x + g.w - g.r - spread);
                g.b1x = jx - spread, g.b2x = jx + spread, g.b1y = g.b2y = g.y;
                g.tx = cx, g.ty = by + bh + 30 * u;
        }

        GdkRGBA border = r->dialogue_kind == 1 ? valence_color(EMO_SAD) : valence_color(EMO_HAPPY);
        double line = 2 * u;
        double x0 = fmin(g.x, g.tx) - line, y0 = fmin(g.y, g.ty) - line;
        double x1 = fmax(g.x + g.w, g.tx) + line, y1 = fmax(g.y + g.h, g.ty) + line;
        graphene_rect_t bounds = GRAPHENE_RECT_INIT((float) floor(x0), (float) floor(y0), (float) ceil(x1 - x0 + 1),
                                                    (float) ceil(y1 - y0 + 1));
        cairo_t *cr = gtk_snapshot_append_cairo(s, &bounds);
        draw_bubble_shape(cr, &g, line, &border);
        cairo_destroy(cr);

        GdkRGBA ink_color = { 0.12f, 0.12f, 0.14f, 1 };
        pango_layout_set_width(l, (int) ((g.w - 2 * pad) * PANGO_SCALE));
        append_layout_at(s, l, g.x + pad, g.y + pad, &ink_color);
        g_object_unref(l);
}

void emo_gtk_overlay_append(GtkSnapshot *s, PangoContext *pc, const emo_gtk_results_t *r, const emo_gtk_fit_t *f,
                            double view_w, double view_h, double ui_scale, ssize_t selected) {
        if (!r)
                return;
        /* The selected face last in each layer, so that its highlight is never under another's. */
        for (layer_t layer = LAYER_FRAME; layer <= LAYER_LABEL; layer++) {
                for (size_t i = 0; i < r->n_faces; i++)
                        if ((ssize_t) i != selected)
                                draw_face(s, pc, &r->faces[i], f, view_w, view_h, ui_scale, false, layer);
                if (selected >= 0 && (size_t) selected < r->n_faces)
                        draw_face(s, pc, &r->faces[selected], f, view_w, view_h, ui_scale, true, layer);
        }
        ssize_t main_face = emo_gtk_results_prominent(r);
        if (main_face >= 0 && r->dialogue_kind != 0 && r->dialogue_text[0])
                draw_bubble(s, pc, r, &r->faces[main_face], f, view_w, view_h, ui_scale);
}

GdkTexture *emo_gtk_overlay_render(GskRenderer *renderer, PangoContext *pc, GdkTexture *image,
                                   const emo_gtk_results_t *r, GError **error) {
        double w = gdk_texture_get_width(image), h = gdk_texture_get_height(image);
        graphene_rect_t all = GRAPHENE_RECT_INIT(0, 0, (float) w, (float) h);
        GtkSnapshot *s = gtk_snapshot_new();
        gtk_snapshot_append_texture(s, image, &all);
        emo_gtk_fit_t f = emo_gtk_fit(r->image_width, r->image_height, w, h);
        /* Text and lines grow with the image, as they would look in a window of about 640 px. */
        double u = fmax(1.0, fmin(w, h) / 480.0);
        emo_gtk_overlay_append(s, pc, r, &f, w, h, u, -1);
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
