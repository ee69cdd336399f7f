/* EmoConversationView: the conversation with the person in the photos or in front of the camera
 * (dialogue.h): the log, an entry for the answer while a question waits for one, and explicit
 * Save and Clear buttons; the log is never written anywhere else. */
#pragma once

#include <gtk/gtk.h>

#include "dialogue.h"
#include "results.h"

G_BEGIN_DECLS

#define EMO_TYPE_CONVERSATION_VIEW (emo_conversation_view_get_type())
G_DECLARE_FINAL_TYPE(EmoConversationView, emo_conversation_view, EMO, CONVERSATION_VIEW, GtkBox)

/* One analysed image or frame (NULL results: nothing to react to), from source (the window for
 * photos, a tile for its stream). The conversation speaks to the face selected when the daemon
 * gave it a line of its own, else to the main face (emo_gtk_results_speech). picked: called for a
 * click that may have picked another face in results, rather than for a new analysis; when the
 * face spoken to is then another one, it gets its line even with the emotion said last. */
void emo_conversation_view_observe(EmoConversationView *self, gconstpointer source,
                                   const emo_gtk_results_t *results, ssize_t selected, gboolean picked);

/* Ask where to save the log (a file chooser) and write it there; nothing happens for an empty
 * log. The only way the log is ever written. */
void emo_conversation_view_save(EmoConversationView *self);

/* The model, owned by the view. */
emo_gtk_dialogue_t *emo_conversation_view_get_dialogue(EmoConversationView *self);

G_END_DECLS
