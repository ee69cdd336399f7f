/* EmoPreferencesDialog: the endpoint of emotiond and the language (of the dialogue and of the
 * window), edited over a copy of the preferences. "Save" checks them, writes gtk.ini and emits
 * "saved" with the new preferences for the application to apply; "Cancel" and closing forget the
 * edit. A plain GtkWindow (GTK 4.8, no libadwaita). */
#pragma once

#include <gtk/gtk.h>

#include "prefs.h"

G_BEGIN_DECLS

#define EMO_TYPE_PREFERENCES_DIALOG (emo_preferences_dialog_get_type())
G_DECLARE_FINAL_TYPE(EmoPreferencesDialog, emo_preferences_dialog, EMO, PREFERENCES_DIALOG, GtkWindow)

/* prefs: copied. default_endpoint: what an empty endpoint means (shown as the placeholder).
 * overridden: the endpoint given by --server for this run, NULL when none (the dialog says that
 * it wins until the program is started without it). */
EmoPreferencesDialog *emo_preferences_dialog_new(GtkWindow *parent, const emo_gtk_prefs_t *prefs,
                                                 const char *default_endpoint, const char *overridden);

/* Signal "saved" (gpointer prefs: an emo_gtk_prefs_t owned by the dialog, valid during the
 * emission), after the file was written. */

G_END_DECLS
