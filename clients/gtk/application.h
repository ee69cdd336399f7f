/* EmoGtkApplication: the command line (--server, --lang, --timeout; photos to open, or with
 * --live the sources to show as tiles, --loop), the connections to emotiond that every window
 * shares (one for photos; one for live frames, whose timeout is a frame's: at most 2 s), and the
 * scripted modes the end-to-end test uses: --save-annotated FILE writes the first analysed photo's
 * annotated PNG once its window has shown it, and --quit-after-result then quits (exit status 0
 * saved, 1 failed); --state FILE writes the live state as JSON when quitting and on SIGUSR1, and
 * --quit-after SECONDS quits. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define EMO_TYPE_GTK_APPLICATION (emo_gtk_application_get_type())
G_DECLARE_FINAL_TYPE(EmoGtkApplication, emo_gtk_application, EMO, GTK_APPLICATION, GtkApplication)

EmoGtkApplication *emo_gtk_application_new(void);

/* The exit status g_application_run() cannot give: 1 when --quit-after-result ended on a
 * failure, else 0. */
int emo_gtk_application_exit_status(EmoGtkApplication *self);

G_END_DECLS
