/* emotion-gtk: the GTK 4 client of emotiond (application.h). */
#include "application.h"

int main(int argc, char **argv) {
        g_autoptr(EmoGtkApplication) app = emo_gtk_application_new();
        int status = g_application_run(G_APPLICATION(app), argc, argv);
        return status != 0 ? status : emo_gtk_application_exit_status(app);
}
