/* The annotation drawn over a photo, one function for the window and for the saved image: each
 * face's box (coloured by the emotion's valence), its emoji over the face, a label with the
 * emotion's name and confidence, and the dialogue line as a speech bubble from the face it speaks
 * to. The drawing is lib/overlay's (cairo), the one the CLI's --annotate uses too; this module
 * only hands it the window's results. Emoji are text (Pango), so a colour emoji font must be
 * installed (fonts-noto-color-emoji). */
#pragma once

#include <gtk/gtk.h>
#include <sys/types.h>

#include "results.h"

/* Append the annotation of r to s, for an image shown with fit f inside a view of view_w x
 * view_h (everything, the bubble included, is kept inside it). ui_scale multiplies line widths
 * and text sizes (1 in the window; larger for a big saved image). selected: the face drawn
 * highlighted, -1 for none. addressed: the face picked, whom the bubble speaks to when the daemon
 * gave it a line of its own, else the main face (emo_gtk_results_speech); -1: the main face.
 * pc: the Pango context to lay the text out with. */
void emo_gtk_overlay_append(GtkSnapshot *s, PangoContext *pc, const emo_gtk_results_t *r, const emo_gtk_fit_t *f,
                            double view_w, double view_h, double ui_scale, ssize_t selected, ssize_t addressed);

/* The image with its annotation as a new texture of the image's size, rendered by renderer (a
 * realized one, such as the window's): the bubble speaks to the face addressed as in the window
 * (-1: the main face), and no face is highlighted. NULL with *error set when rendering failed. */
GdkTexture *emo_gtk_overlay_render(GskRenderer *renderer, PangoContext *pc, GdkTexture *image,
                                   const emo_gtk_results_t *r, ssize_t addressed, GError **error);
