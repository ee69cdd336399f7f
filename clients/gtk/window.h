/* EmoGtkWindow: one photo at a time. Opening a file (button, drag and drop, command line) reads
 * it without blocking, shows it and sends it to emotiond through the application's connection;
 * the reply becomes the results model, drawn over the photo (EmoPhotoView), the selected face's
 * probabilities (EmoFaceBars) and the conversation (EmoConversationView). Errors (a file that is
 * no image, a daemon that does not answer or refuses) are shown in a banner at the top. */
#pragma once

#include <gtk/gtk.h>

#include "connection.h"

G_BEGIN_DECLS

#define EMO_TYPE_GTK_WINDOW (emo_gtk_window_get_type())
G_DECLARE_FINAL_TYPE(EmoGtkWindow, emo_gtk_window, EMO, GTK_WINDOW, GtkApplicationWindow)

/* language: the dialogue language to ask for (NULL or "": the daemon's). The connection is
 * borrowed from the application, which outlives its windows. */
EmoGtkWindow *emo_gtk_window_new(GtkApplication *app, emo_gtk_connection_t *connection, const char *language);

/* Show the file and analyse it. */
void emo_gtk_window_open(EmoGtkWindow *self, GFile *file);

/* Save the annotated image as PNG into path. FALSE with *error when there is nothing to save yet
 * or writing failed. */
gboolean emo_gtk_window_save_annotated(EmoGtkWindow *self, const char *path, GError **error);

/* The error the banner shows, NULL when none. Owned by the window. */
const char *emo_gtk_window_get_error(EmoGtkWindow *self);

/* One line about the analysed photo for scripts: its name, faces, main face, the dialogue line and
 * whether the conversation waits for an answer. NULL before a result. g_free() it. */
char *emo_gtk_window_describe(EmoGtkWindow *self);

/* Emitted (signal "analysis-finished", gboolean ok) after each reply or failure has been shown
 * and drawn once: for --save-annotated and --quit-after-result. */

G_END_DECLS
