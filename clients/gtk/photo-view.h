/* EmoPhotoView: a photo scaled to fit the widget, with the annotation of its analysis drawn over
 * it (overlay.h). The snapshot vfunc appends the texture, then the overlay. A click on a face
 * emits "face-clicked" with the face's index in the results. */
#pragma once

#include <gtk/gtk.h>

#include "results.h"

G_BEGIN_DECLS

#define EMO_TYPE_PHOTO_VIEW (emo_photo_view_get_type())
G_DECLARE_FINAL_TYPE(EmoPhotoView, emo_photo_view, EMO, PHOTO_VIEW, GtkWidget)

GtkWidget *emo_photo_view_new(void);

/* The photo (a reference is taken; NULL: none). Clears the results. */
void emo_photo_view_set_texture(EmoPhotoView *self, GdkTexture *texture);

/* The analysis of the photo, borrowed: the caller keeps it alive until it sets another (or NULL). */
void emo_photo_view_set_results(EmoPhotoView *self, const emo_gtk_results_t *results);

/* The face drawn highlighted, -1 for none. */
void emo_photo_view_set_selected(EmoPhotoView *self, ssize_t index);
/* The face picked, -1 for none. */
ssize_t emo_photo_view_get_selected(EmoPhotoView *self);

G_END_DECLS
