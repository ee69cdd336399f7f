/* emo_overlay: the annotation drawn over an analysed image, one renderer for every client (the
 * GTK window and its --save-annotated, `emotion analyze --annotate`, `emotion watch --annotate`).
 * For each face: its box coloured by the emotion's valence, its emoji straddling the box's
 * top-right corner, a label with the emotion's name and confidence under the box; and the
 * dialogue line as a speech bubble from the face it speaks to.
 *
 * Drawn with cairo, text laid out by Pango (pangocairo). Emoji are text, so a colour emoji font
 * must be installed (Debian fonts-noto-color-emoji) or they come out as empty boxes.
 *
 * The module never logs and keeps no state; it is safe to use from any one thread at a time per
 * cairo context. */
#pragma once

#include <cairo.h>
#include <pango/pango.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* One face, in the pixels of the analysed image. */
typedef struct emo_overlay_face {
        double x, y, width, height;
        int emotion;       /* emo_emotion_t */
        double confidence; /* 0-1 */
        const char *emoji; /* UTF-8; NULL: the emoji of emotion */
        const char *label; /* the emotion's name as shown, UTF-8; NULL: the protocol's (English) */
} emo_overlay_face_t;

typedef struct emo_overlay {
        const emo_overlay_face_t *faces;
        size_t n_faces;
        ssize_t selected;          /* the face drawn highlighted, -1 for none */
        ssize_t speaker;           /* the face the bubble points at, -1: no bubble */
        const char *dialogue_text; /* the bubble's text; NULL or "": no bubble */
        int dialogue_kind;         /* 1 question (drawn in a negative colour), else congratulation */
} emo_overlay_t;

/* Where the image is shown: a point of the image is at (x * scale + offset_x, y * scale +
 * offset_y) in a view of width x height, which holds everything drawn (a label or a bubble near
 * an edge is moved inside). ui_scale multiplies line widths and text sizes: 1 in a window,
 * emo_overlay_ui_scale() for an image saved at its own size. */
typedef struct emo_overlay_view {
        double scale, offset_x, offset_y;
        double width, height;
        double ui_scale;
} emo_overlay_view_t;

/* The ui_scale for an image of w x h drawn at its own size: text and lines as they would look on
 * the image shown about 640 pixels wide, never smaller than 1. */
double emo_overlay_ui_scale(double w, double h);

/* Draw o on cr under view v. pc: the Pango context to lay text out with (a widget's, for its
 * font options), or NULL for one made for cr. cr's state is saved and restored. */
void emo_overlay_draw(cairo_t *cr, PangoContext *pc, const emo_overlay_t *o, const emo_overlay_view_t *v);

/* Draw o over image, a cairo image surface that shows the analysed image (of image_width x
 * image_height pixels; the surface may be that size or another, the boxes are scaled to it).
 * 0, -EINVAL (no image size), or -ENOMEM (cairo failed). */
int emo_overlay_draw_on_image(cairo_surface_t *image, unsigned image_width, unsigned image_height,
                              const emo_overlay_t *o);
