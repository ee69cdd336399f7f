/* EmoFaceBars: one face's seven emotion probabilities as bars, with the emoji and name of each
 * emotion, the top one first in the heading. */
#pragma once

#include <gtk/gtk.h>

#include "emo/labels.h"
#include "results.h"

G_BEGIN_DECLS

#define EMO_TYPE_FACE_BARS (emo_face_bars_get_type())
G_DECLARE_FINAL_TYPE(EmoFaceBars, emo_face_bars, EMO, FACE_BARS, GtkBox)

/* Show face (copied; NULL: none selected, with a hint), face number index of n_faces. */
void emo_face_bars_set_face(EmoFaceBars *self, const emo_gtk_face_t *face, size_t index, size_t n_faces);

/* The emotion's name in the window's language (lib/emo's names are the protocol's, English): the
 * bars, and the labels drawn over faces in the window and its saved image. */
const char *emo_gtk_emotion_name(emo_emotion_t e);

/* Nothing to show: no photo analysed yet, or its analysis failed. */
void emo_face_bars_clear(EmoFaceBars *self);

/* The heading shown ("😄 Face 2 of 4: happy, 87 %"), for --state. */
const char *emo_face_bars_get_heading(EmoFaceBars *self);

G_END_DECLS
