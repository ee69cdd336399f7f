#include "overlay.h"

#include <errno.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <stdlib.h>

#include "emo/labels.h"

#define EMOJI_FONT "Noto Color Emoji"

typedef struct rgba {
        double r, g, b, a;
} rgba_t;

static rgba_t valence_color(int emotion) {
        switch (emo_emotion_valence(emotion)) {
        case EMO_VALENCE_NEGATIVE:
                return (rgba_t) { 0.91, 0.33, 0.20, 1.0 };
        case EMO_VALENCE_POSITIVE:
                return (rgba_t) { 0.16, 0.70, 0.42, 1.0 };
        default:
                return (rgba_t) { 0.22, 0.52, 0.89, 1.0 };
        }
}

static void set_color(cairo_t *cr, rgba_t c) {
        cairo_set_source_rgba(cr, c.r, c.g, c.b, c.a);
}

static double clampd(double v, double lo, double hi) {
        return v < lo ? lo : v > hi ? hi : v;
}

double emo_overlay_ui_scale(double w, double h) {
        return fmax(1.0, fmin(w, h) / 480.0);
}

/* A layout of text in font (family and weight; the size is set here in device pixels). */
static PangoLayout *make_layout(cairo_t *cr, PangoContext *pc, const char *font, double px, const char *text) {
        PangoLayout *l = pc ? pango_layout_new(pc) : pango_cairo_create_layout(cr);
        PangoFontDescription *fd = pango_font_description_from_string(font);
        pango_font_description_set_absolute_size(fd, px * PANGO_SCALE);
        pango_layout_set_font_description(l, fd);
        pango_font_description_free(fd);
        pango_layout_set_text(l, text, -1);
        return l;
}

static void show_layout_at(cairo_t *cr, PangoLayout *l, double x, double y, rgba_t color) {
        cairo_save(cr);
        cairo_move_to(cr, x, y);
        set_color(cr, color);
        pango_cairo_show_layout(cr, l);
        cairo_restore(cr);
}

static void rounded_rect(cairo_t *cr, double x, double y, double w, double h, double r) {
        r = fmin(r, fmin(w, h) / 2);
        cairo_new_sub_path(cr);
        cairo_arc(cr, x + w - r, y + r, r, -M_PI / 2, 0);
        cairo_arc(cr, x + w - r, y + h - r, r, 0, M_PI / 2);
        cairo_arc(cr, x + r, y + h - r, r, M_PI / 2, M_PI);
        cairo_arc(cr, x + r, y + r, r, M_PI, 3 * M_PI / 2);
        cairo_close_path(cr);
}

/* A frame of the given width inside the rounded rectangle x, y, w, h (as a CSS border is). */
static void frame(cairo_t *cr, double x, double y, double w, double h, double radius, double width, rgba_t color) {
        cairo_new_path(cr);
        rounded_rect(cr, x, y, w, h, radius);
        rounded_rect(cr, x + width, y + width, w - 2 * width, h - 2 * width, fmax(0, radius - width));
        cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
        set_color(cr, color);
        cairo_fill(cr);
        cairo_set_fill_rule(cr, CAIRO_FILL_RULE_WINDING);
}

/* A face's box where it is drawn, in the view's pixels. */
typedef struct box {
        double x, y, w, h;
} box_t;

static box_t box_in_view(const emo_overlay_face_t *f, const emo_overlay_view_t *v) {
        return (box_t) { v->offset_x + f->x * v->scale, v->offset_y + f->y * v->scale, f->width * v->scale,
                         f->height * v->scale };
}

/* The band under a box that its label takes, which the bubble leaves visible. */
static double label_band(double ui_scale) {
        return 30 * ui_scale;
}

/* A face is drawn in layers, each for every face before the next: frames, then emoji; the labels
 * come after both (draw_labels), so that no face's frame or emoji hides a neighbour's label. */
typedef enum layer { LAYER_FRAME, LAYER_EMOJI, N_FACE_LAYERS } layer_t;

static void draw_face(cairo_t *cr, PangoContext *pc, const emo_overlay_face_t *face, const emo_overlay_view_t *v,
                      bool selected, layer_t layer) {
        double u = v->ui_scale;
        box_t b = box_in_view(face, v);
        double bx = b.x, by = b.y, bw = b.w, bh = b.h;
        rgba_t color = valence_color(face->emotion);
        rgba_t shade = { 0, 0, 0, 0.45 };
        rgba_t white = { 1, 1, 1, 1 };
        double line = (selected ? 5 : 3) * u;
        PangoRectangle ink, logical;

        if (layer == LAYER_FRAME) {
                /* A dark rim outside the coloured frame keeps it visible on any background. */
                frame(cr, bx - line - u, by - line - u, bw + 2 * (line + u), bh + 2 * (line + u), 8 * u, u, shade);
                frame(cr, bx - line, by - line, bw + 2 * line, bh + 2 * line, 7 * u, line, selected ? white : color);
                if (selected)
                        frame(cr, bx - 2 * u, by - 2 * u, bw + 4 * u, bh + 4 * u, 5 * u, 2 * u, color);
        } else if (layer == LAYER_EMOJI) {
                /* The emoji straddles the box's top-right corner: on the face, without hiding its
                 * eyes. */
                const char *emoji = face->emoji && face->emoji[0] ? face->emoji : emo_emotion_emoji(face->emotion);
                if (!emoji)
                        return;
                double es = clampd(fmin(bw, bh) * 0.30, 22 * u, 110 * u);
                PangoLayout *el = make_layout(cr, pc, EMOJI_FONT, es, emoji);
                pango_layout_get_pixel_extents(el, &ink, &logical);
                double ex = clampd(bx + bw - logical.width * 0.6, 0, v->width - logical.width);
                double ey = clampd(by - logical.height * 0.4, 0, v->height - logical.height);
                show_layout_at(cr, el, ex, ey, white);
                g_object_unref(el);
        }
}

/* A face's label, "happy 87 %" on a pill of the valence colour: its layout and where it goes. */
typedef struct label {
        PangoLayout *layout;
        double x, y, w, h;
} label_t;

/* The label of face, under its box (inside the box at the bottom of the view). */
static label_t label_of(cairo_t *cr, PangoContext *pc, const emo_overlay_face_t *face, const emo_overlay_view_t *v,
                        bool selected) {
        double u = v->ui_scale, line = (selected ? 5 : 3) * u;
        box_t b = box_in_view(face, v);
        double bx = b.x, by = b.y, bw = b.w, bh = b.h;
        char text[64];
        const char *name = face->label ? face->label : emo_emotion_name(face->emotion);
        snprintf(text, sizeof(text), "%s %.0f %%", name ? name : "?", face->confidence * 100.0);
        label_t l = { .layout = make_layout(cr, pc, "Sans Bold", 14 * u, text) };
        PangoRectangle ink, logical;
        pango_layout_get_pixel_extents(l.layout, &ink, &logical);
        l.w = logical.width + 16 * u, l.h = logical.height + 6 * u;
        l.x = clampd(bx + bw / 2 - l.w / 2, 0, v->width - l.w);
        l.y = by + bh + line + 4 * u;
        if (l.y + l.h > v->height)
                l.y = by + bh - l.h - 4 * u;
        return l;
}

static bool labels_overlap(const label_t *a, const label_t *b, double gap) {
        return a->x < b->x + b->w + gap && b->x < a->x + a->w + gap && a->y < b->y + b->h + gap &&
               b->y < a->y + a->h + gap;
}

/* Moves labels that would overlap one placed before them (the higher ones first) down under
 * it, so that neighbours' labels stay readable. order: the faces' indexes, sorted here. */
static void separate_labels(label_t *labels, size_t *order, size_t n, const emo_overlay_view_t *v) {
        for (size_t i = 1; i < n; i++) /* insertion sort by the label's top: n is small */
                for (size_t j = i; j > 0 && labels[order[j]].y < labels[order[j - 1]].y; j--) {
                        size_t t = order[j];
                        order[j] = order[j - 1], order[j - 1] = t;
                }
        double gap = 2 * v->ui_scale;
        for (size_t i = 1; i < n; i++) {
                label_t *l = &labels[order[i]];
                for (bool moved = true; moved;) {
                        moved = false;
                        for (size_t j = 0; j < i; j++) {
                                const label_t *placed = &labels[order[j]];
                                if (labels_overlap(l, placed, gap) && l->y + l->h + gap <= v->height) {
                                        l->y = placed->y + placed->h + gap;
                                        moved = l->y + l->h <= v->height;
                                        if (!moved)
                                                l->y = v->height - l->h;
                                        break;
                                }
                        }
                }
        }
}

static void draw_label(cairo_t *cr, const label_t *l, const emo_overlay_face_t *face, const emo_overlay_view_t *v) {
        double u = v->ui_scale;
        cairo_new_path(cr);
        rounded_rect(cr, l->x, l->y, l->w, l->h, l->h / 2);
        set_color(cr, valence_color(face->emotion));
        cairo_fill(cr);
        show_layout_at(cr, l->layout, l->x + 8 * u, l->y + 3 * u, (rgba_t) { 1, 1, 1, 1 });
}

/* The labels of all faces, kept apart, the selected one last (on top). */
static void draw_labels(cairo_t *cr, PangoContext *pc, const emo_overlay_t *o, const emo_overlay_view_t *v,
                        ssize_t selected) {
        label_t *labels = calloc(o->n_faces, sizeof(*labels));
        size_t *order = calloc(o->n_faces, sizeof(*order));
        if (!labels || !order) {
                free(labels);
                free(order);
                return;
        }
        for (size_t i = 0; i < o->n_faces; i++) {
                labels[i] = label_of(cr, pc, &o->faces[i], v, (ssize_t) i == selected);
                order[i] = i;
        }
        separate_labels(labels, order, o->n_faces, v);
        for (size_t i = 0; i < o->n_faces; i++)
                if ((ssize_t) i != selected)
                        draw_label(cr, &labels[i], &o->faces[i], v);
        if (selected >= 0)
                draw_label(cr, &labels[selected], &o->faces[selected], v);
        for (size_t i = 0; i < o->n_faces; i++)
                g_object_unref(labels[i].layout);
        free(labels);
        free(order);
}

typedef struct bubble_geometry {
        double x, y, w, h, r;      /* the rounded body */
        double b1x, b1y, b2x, b2y; /* where the tail leaves the body */
        double tx, ty;             /* the tail's tip, at the face */
} bubble_geometry_t;

static void body_path(cairo_t *cr, const bubble_geometry_t *g) {
        cairo_new_path(cr);
        rounded_rect(cr, g->x, g->y, g->w, g->h, g->r);
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
static void draw_bubble_shape(cairo_t *cr, const bubble_geometry_t *g, double line, rgba_t border) {
        cairo_set_line_width(cr, 2 * line);
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
        set_color(cr, border);
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

/* Where a bubble can go around the speaker's box. */
typedef enum bubble_side { SIDE_ABOVE, SIDE_RIGHT, SIDE_LEFT, SIDE_BELOW, N_SIDES } bubble_side_t;

/* The bubble g (its w, h and r set) on side s of the box (bx, by, bw, bh), in a view of view_w x
 * view_h; false when it does not fit there without being pushed onto the box. */
static bool bubble_on(bubble_geometry_t *g, bubble_side_t s, double bx, double by, double bw, double bh,
                      double view_w, double view_h, double u) {
        double margin = 6 * u, tail = 22 * u, below = label_band(u);
        double cx = bx + bw / 2, spread = fmin(14 * u, g->w / 4);
        switch (s) {
        case SIDE_ABOVE:
        case SIDE_BELOW: {
                bool above = s == SIDE_ABOVE;
                g->x = clampd(cx - g->w / 2, margin, view_w - g->w - margin);
                g->y = above ? by - tail - g->h : by + bh + tail + below;
                double jx = clampd(cx, g->x + g->r + spread, g->x + g->w - g->r - spread);
                g->b1x = jx - spread, g->b2x = jx + spread, g->b1y = g->b2y = above ? g->y + g->h : g->y;
                g->tx = cx, g->ty = above ? by - 2 * u : by + bh + below;
                return above ? g->y >= margin : g->y + g->h <= view_h - margin;
        }
        case SIDE_RIGHT:
        case SIDE_LEFT: {
                bool right = s == SIDE_RIGHT;
                g->x = right ? bx + bw + tail : bx - tail - g->w;
                g->y = clampd(by + bh / 3 - g->h / 2, margin, view_h - g->h - margin);
                double jy = clampd(by + bh / 3, g->y + g->r + spread, g->y + g->h - g->r - spread);
                g->b1y = jy - spread, g->b2y = jy + spread;
                g->b1x = g->b2x = right ? g->x : g->x + g->w;
                g->tx = right ? bx + bw : bx, g->ty = by + bh / 3;
                bool fits = right ? g->x + g->w <= view_w - margin : g->x >= margin;
                g->x = clampd(g->x, margin, view_w - g->w - margin);
                return fits;
        }
        default:
                return false;
        }
}

static double overlap(double ax, double ay, double aw, double ah, double bx, double by, double bw, double bh) {
        double w = fmin(ax + aw, bx + bw) - fmax(ax, bx), h = fmin(ay + ah, by + bh) - fmax(ay, by);
        return w > 0 && h > 0 ? w * h : 0;
}

/* How much of the other faces (their boxes and the labels under them) the bubble g would hide. */
static double bubble_cost(const bubble_geometry_t *g, const emo_overlay_t *o, size_t speaker,
                          const emo_overlay_view_t *v) {
        double cost = 0;
        for (size_t i = 0; i < o->n_faces; i++) {
                if (i == speaker)
                        continue;
                box_t b = box_in_view(&o->faces[i], v);
                cost += overlap(g->x, g->y, g->w, g->h, b.x, b.y, b.w, b.h + label_band(v->ui_scale));
        }
        return cost;
}

static void draw_bubble(cairo_t *cr, PangoContext *pc, const emo_overlay_t *o, size_t speaker,
                        const emo_overlay_view_t *v) {
        const emo_overlay_face_t *face = &o->faces[speaker];
        double u = v->ui_scale, view_w = v->width, view_h = v->height;
        box_t b = box_in_view(face, v);
        double bx = b.x, by = b.y, bw = b.w, bh = b.h;
        double margin = 6 * u, pad = 10 * u;

        PangoLayout *l = make_layout(cr, pc, "Sans", 16 * u, o->dialogue_text);
        double max_w = fmin(fmax(view_w * 0.55, 160 * u), 380 * u);
        pango_layout_set_width(l, (int) (max_w * PANGO_SCALE));
        pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
        PangoRectangle ink, logical;
        pango_layout_get_pixel_extents(l, &ink, &logical);

        /* Above the face if there is room, else beside it on the roomier side, else below its
         * label; but of the places where it fits, the first that hides least of the other
         * faces; where it fits nowhere, beside the face, moved into the view. */
        bubble_geometry_t g = { .w = logical.width + 2 * pad, .h = logical.height + 2 * pad, .r = 12 * u };
        g.w = fmin(g.w, view_w - 2 * margin);
        bool right_first = view_w - (bx + bw) >= bx;
        const bubble_side_t order[N_SIDES] = { SIDE_ABOVE, right_first ? SIDE_RIGHT : SIDE_LEFT,
                                               right_first ? SIDE_LEFT : SIDE_RIGHT, SIDE_BELOW };
        bubble_geometry_t best = g;
        double best_cost = INFINITY;
        bool best_fits = false;
        for (size_t i = 0; i < N_SIDES; i++) {
                bubble_geometry_t c = g;
                bool fits = bubble_on(&c, order[i], bx, by, bw, bh, view_w, view_h, u);
                if (!fits && (order[i] == SIDE_ABOVE || order[i] == SIDE_BELOW))
                        continue; /* out of the view; a side bubble is moved inside it */
                double cost = bubble_cost(&c, o, speaker, v);
                if ((fits && !best_fits) || (fits == best_fits && cost < best_cost))
                        best = c, best_cost = cost, best_fits = fits;
        }
        g = best;

        rgba_t border = o->dialogue_kind == 1 ? valence_color(EMO_SAD) : valence_color(EMO_HAPPY);
        draw_bubble_shape(cr, &g, 2 * u, border);

        pango_layout_set_width(l, (int) ((g.w - 2 * pad) * PANGO_SCALE));
        show_layout_at(cr, l, g.x + pad, g.y + pad, (rgba_t) { 0.12, 0.12, 0.14, 1 });
        g_object_unref(l);
}

void emo_overlay_draw(cairo_t *cr, PangoContext *pc, const emo_overlay_t *o, const emo_overlay_view_t *v) {
        if (!o || !v || v->scale <= 0)
                return;
        cairo_save(cr);
        /* The selected face last in each layer, so that its highlight is never under another's. */
        ssize_t selected = o->selected >= 0 && (size_t) o->selected < o->n_faces ? o->selected : -1;
        for (layer_t layer = LAYER_FRAME; layer < N_FACE_LAYERS; layer++) {
                for (size_t i = 0; i < o->n_faces; i++)
                        if ((ssize_t) i != selected)
                                draw_face(cr, pc, &o->faces[i], v, false, layer);
                if (selected >= 0)
                        draw_face(cr, pc, &o->faces[selected], v, true, layer);
        }
        draw_labels(cr, pc, o, v, selected);
        if (o->speaker >= 0 && (size_t) o->speaker < o->n_faces && o->dialogue_text && o->dialogue_text[0])
                draw_bubble(cr, pc, o, (size_t) o->speaker, v);
        cairo_restore(cr);
}

int emo_overlay_draw_on_image(cairo_surface_t *image, unsigned image_width, unsigned image_height,
                              const emo_overlay_t *o) {
        if (image_width == 0 || image_height == 0)
                return -EINVAL;
        double w = cairo_image_surface_get_width(image), h = cairo_image_surface_get_height(image);
        emo_overlay_view_t v = {
                .scale = fmin(w / image_width, h / image_height),
                .width = w,
                .height = h,
                .ui_scale = emo_overlay_ui_scale(w, h),
        };
        cairo_t *cr = cairo_create(image);
        emo_overlay_draw(cr, NULL, o, &v);
        cairo_surface_flush(image);
        int r = cairo_status(cr) == CAIRO_STATUS_SUCCESS ? 0 : -ENOMEM;
        cairo_destroy(cr);
        return r;
}
