/* EmoGtkWindow: one photo at a time. Opening a file (button, drag and drop, command line) reads
 * it without blocking, shows it and sends it to emotiond through the application's connection;
 * the reply becomes the results model, drawn over the photo (EmoPhotoView), the selected face's
 * probabilities (EmoFaceBars) and the conversation (EmoConversationView). Errors (a file that is
 * no image, a daemon that does not answer or refuses) are shown in a banner at the top. */
#pragma once

#include <gtk/gtk.h>

#include "connection.h"
#include "health.h"
#include "sources.h"

G_BEGIN_DECLS

#define EMO_TYPE_GTK_WINDOW (emo_gtk_window_get_type())
G_DECLARE_FINAL_TYPE(EmoGtkWindow, emo_gtk_window, EMO, GTK_WINDOW, GtkApplicationWindow)

/* language: the dialogue language to ask for (NULL or "": the daemon's). The connection is
 * borrowed from the application, which outlives its windows. */
EmoGtkWindow *emo_gtk_window_new(GtkApplication *app, emo_gtk_connection_t *connection, const char *language);

/* Live mode: the connection for frames (its timeout is a frame's: short), whether video files
 * loop, and how long a source may deliver nothing. Call before adding sources. */
void emo_gtk_window_set_live(EmoGtkWindow *self, emo_gtk_connection_t *live_connection, gboolean loop,
                             int open_timeout_ms);

/* Add a live tile for source (copied) and show the tiles. The first tile is the main one: the
 * conversation follows its main face. */
void emo_gtk_window_add_live(EmoGtkWindow *self, const emo_gtk_source_t *source);

/* From now on, measure how regularly the window's frame clock ticks and the main loop runs (for
 * --state: the UI must never stall); called again, start afresh. */
void emo_gtk_window_measure_stalls(EmoGtkWindow *self);

/* The live state as a JSON object for scripts: per tile its source, stream id, state, message,
 * counts, fps, round trip and last analysis; the conversation; the longest gaps between frame
 * clock ticks and between main loop turns, as measured (max_*_gap_ms) and less the time the main
 * thread waited for a CPU (max_*_stall_ms: what this program itself held up, which a machine
 * loaded by others does not inflate). g_free() it. */
char *emo_gtk_window_live_state_json(EmoGtkWindow *self);

/* The daemon's health as the status line and, while it is absent, the banner; called again on
 * each change. health is borrowed from the application (NULL: show nothing). */
void emo_gtk_window_set_health(EmoGtkWindow *self, const emo_gtk_health_t *health, const char *endpoint);

/* The dialogue language of the next requests (NULL or "": the daemon's). */
void emo_gtk_window_set_language(EmoGtkWindow *self, const char *language);

/* Paste (Ctrl+V): the clipboard's image, or the file copied to it, shown and analysed like an
 * opened photo; a clipboard without either is said in the error banner. */
void emo_gtk_window_paste(EmoGtkWindow *self);

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
