#include "window.h"

#include <glib/gi18n.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <sys/socket.h>
#ifdef GDK_WINDOWING_X11
#include <gdk/x11/gdkx.h>
#endif

#include "capture/capture.h"

#include "conversation-view.h"
#include "emo/client.h"
#include "emo/labels.h"
#include "emo/protocol.h"
#include "face-bars.h"
#include "health.h"
#include "live-view.h"
#include "overlay.h"
#include "photo-view.h"
#include "results.h"

/* Files over this are refused, as the CLI does: no photo is this big. */
#define MAX_FILE_SIZE (64u * 1024 * 1024)

struct _EmoGtkWindow {
        GtkApplicationWindow parent_instance;

        /* template children */
        EmoPhotoView *view;
        EmoFaceBars *bars;
        EmoConversationView *conversation;
        GtkStack *stack;
        GtkSpinner *spinner;
        GtkWidget *error_banner;
        GtkLabel *error_label;
        GtkLabel *status;
        GtkWidget *daemon_banner;
        int64_t banner_changed_us; /* CLOCK_MONOTONIC when the banner last came or went (for --state) */
        GtkLabel *daemon_label;
        GtkLabel *health_label;
        GtkGrid *tiles_grid;
        GtkMenuButton *add_button;

        emo_gtk_connection_t *connection; /* borrowed from the application */
        char *language;
        GFile *file;                      /* the photo shown */
        GdkTexture *texture;
        emo_gtk_results_t *results;       /* its analysis, once it came */
        uint64_t request_id;              /* in flight, 0 when none */
        GCancellable *loading;
        GtkFileChooserNative *chooser;
        gulong after_paint;               /* pending "analysis-finished" */
        gboolean finished_ok;
        char *error;                      /* the last error shown, NULL once dismissed or replaced */
        const emo_gtk_health_t *health;   /* borrowed from the application; NULL: not shown */
        char *health_endpoint;
        char *unsent;                     /* the photo not sent for want of a daemon, NULL: none */

        /* live mode */
        emo_gtk_connection_t *live_connection; /* borrowed from the application */
        gboolean loop;
        int open_timeout_ms;
        GPtrArray *tiles;                 /* EmoLiveView */
        EmoLiveView *followed;            /* of tiles, the one a face was last clicked in; NULL: the first */
        unsigned tiles_added;             /* for unique stream ids */
        GtkEntry *url_entry;              /* in the Add popover */
        GtkBox *camera_box;
        /* stall measurement */
        guint tick_id, loop_timer;
        int64_t last_tick_us, last_loop_us;
        int64_t max_tick_gap_us, max_loop_gap_us, ticks;
        int64_t tick_delay_ns, loop_delay_ns;      /* schedstat run delays at the last tick, turn */
        int64_t max_tick_stall_us, max_loop_stall_us; /* gaps less the time spent waiting for a CPU */
        pid_t display_server;                      /* the local X server's pid, 0: none known */
};

G_DEFINE_FINAL_TYPE(EmoGtkWindow, emo_gtk_window, GTK_TYPE_APPLICATION_WINDOW)

enum { SIGNAL_ANALYSIS_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void show_error(EmoGtkWindow *self, const char *message) {
        g_free(self->error);
        self->error = g_strdup(message);
        g_clear_pointer(&self->unsent, g_free);
        gtk_label_set_text(self->error_label, message);
        gtk_widget_set_visible(self->error_banner, TRUE);
}

static void hide_error(EmoGtkWindow *self) {
        g_clear_pointer(&self->error, g_free);
        g_clear_pointer(&self->unsent, g_free);
        gtk_widget_set_visible(self->error_banner, FALSE);
}

/* While the daemon's banner says that nobody answers, a photo that could not be sent for that
 * reason gets a short line of its own instead of the same explanation twice (the full one stays
 * what emo_gtk_window_get_error() gives scripts). */
static void shorten_unsent(EmoGtkWindow *self) {
        if (!self->unsent || !self->health || emo_gtk_health_state(self->health) != EMO_GTK_HEALTH_DOWN)
                return;
        g_autofree char *m = g_strdup_printf(_("%s was not analysed: emotiond does not answer (see above)."),
                                             self->unsent);
        gtk_label_set_text(self->error_label, m);
}

static char *display_name(GFile *file);

/* A request for the photo failed with error (< 0). */
static void show_request_error(EmoGtkWindow *self, int error) {
        g_autofree char *m = emo_gtk_connection_explain(self->connection, error);
        show_error(self, m);
        if (error == -ENOENT || error == -ECONNREFUSED || error == -ETIMEDOUT || error == -EACCES || error == -EPERM) {
                self->unsent = display_name(self->file);
                shorten_unsent(self);
        }
}

static void on_dismiss_error(EmoGtkWindow *self) {
        hide_error(self);
}

static void set_busy(EmoGtkWindow *self, gboolean busy) {
        gtk_spinner_set_spinning(self->spinner, busy);
}

static void update_actions(EmoGtkWindow *self) {
        GAction *save = g_action_map_lookup_action(G_ACTION_MAP(self), "save-annotated");
        g_simple_action_set_enabled(G_SIMPLE_ACTION(save), self->results != NULL && self->texture != NULL);
}

/* file: NULL for an image pasted from the clipboard. */
static char *display_name(GFile *file) {
        if (!file)
                return g_strdup(_("pasted image"));
        g_autofree char *base = g_file_get_basename(file);
        return g_strdup(base ? base : _("the file"));
}

static void relayout_tiles(EmoGtkWindow *self);

static void remove_tiles(EmoGtkWindow *self) {
        if (!self->tiles || self->tiles->len == 0)
                return;
        for (guint i = 0; i < self->tiles->len; i++) {
                emo_live_view_stop(self->tiles->pdata[i]);
                gtk_grid_remove(self->tiles_grid, gtk_widget_get_parent(self->tiles->pdata[i]));
        }
        g_ptr_array_set_size(self->tiles, 0);
        self->followed = NULL;
        relayout_tiles(self);
}

/* "analysis-finished" once the frame showing the outcome has been painted. */
static void on_after_paint(GdkFrameClock *clock, gpointer userdata) {
        EmoGtkWindow *self = userdata;
        g_signal_handler_disconnect(clock, self->after_paint);
        self->after_paint = 0;
        g_signal_emit(self, signals[SIGNAL_ANALYSIS_FINISHED], 0, self->finished_ok);
}

static void finish(EmoGtkWindow *self, gboolean ok) {
        self->finished_ok = ok;
        GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(self));
        if (!clock) {
                g_signal_emit(self, signals[SIGNAL_ANALYSIS_FINISHED], 0, ok);
                return;
        }
        if (!self->after_paint)
                self->after_paint = g_signal_connect(clock, "after-paint", G_CALLBACK(on_after_paint), self);
        gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void select_face(EmoGtkWindow *self, ssize_t index) {
        const emo_gtk_results_t *r = self->results;
        emo_photo_view_set_selected(self->view, index);
        if (!r)
                emo_face_bars_clear(self->bars);
        else
                emo_face_bars_set_face(self->bars, index >= 0 ? &r->faces[index] : NULL,
                                       index < 0 ? 0 : (size_t) index, r->n_faces);
}

/* A click picks a face: its bars, and the conversation speaks to it when the daemon gave it a
 * line of its own. */
static void on_face_clicked(EmoGtkWindow *self, int index) {
        select_face(self, index);
        if (self->results)
                emo_conversation_view_observe(self->conversation, self, self->results, index, TRUE);
}

static void show_status(EmoGtkWindow *self) {
        const emo_gtk_results_t *r = self->results;
        g_autofree char *name = display_name(self->file);
        g_autofree char *line = NULL;
        if (r)
                /* The daemon's model and detector are on the health line at the right. */
                line = g_strdup_printf(ngettext("%s · %u×%u · %zu face · %.1f ms in emotiond",
                                                "%s · %u×%u · %zu faces · %.1f ms in emotiond", r->n_faces),
                                       name, r->image_width, r->image_height, r->n_faces, r->total_ms);
        else
                line = g_strdup(""); /* the daemon's own line is at the right */
        gtk_label_set_text(self->status, line);
}

static void on_reply(emo_reply_t *reply, int error, void *userdata) {
        EmoGtkWindow *self = userdata;
        g_autofree char *name = display_name(self->file);
        self->request_id = 0;
        set_busy(self, FALSE);
        if (error < 0) {
                show_request_error(self, error);
                finish(self, FALSE);
                return;
        }
        emo_gtk_results_t *r = NULL;
        int k = emo_gtk_results_from_reply(reply, &r);
        if (k == -EBADMSG) {
                g_autofree char *m = g_strdup_printf(_("emotiond could not analyse %s: %s: %s"), name,
                                                     emo_status_name(reply->status),
                                                     reply->message && *reply->message ? reply->message
                                                                                       : _("no details given"));
                show_error(self, m);
        } else if (k < 0) {
                g_autofree char *m = g_strdup_printf(_("emotiond's reply for %s cannot be shown: %s"), name,
                                                     g_strerror(-k));
                show_error(self, m);
        }
        emo_reply_free(reply);
        if (k < 0) {
                finish(self, FALSE);
                return;
        }
        hide_error(self);
        emo_photo_view_set_results(self->view, NULL);
        emo_gtk_results_free(self->results);
        self->results = r;
        emo_photo_view_set_results(self->view, r);
        /* The main face is selected to begin with: its bars are what a person looks for first. */
        ssize_t main_face = emo_gtk_results_prominent(r);
        select_face(self, main_face);
        emo_conversation_view_observe(self->conversation, self, r, main_face, FALSE);
        show_status(self);
        update_actions(self);
        finish(self, TRUE);
}

static void analyze(EmoGtkWindow *self, GBytes *bytes) {
        gsize len;
        const uint8_t *data = g_bytes_get_data(bytes, &len);
        emo_pb_image_t image = EMOTION__V1__IMAGE__INIT;
        image.format = EMOTION__V1__IMAGE__FORMAT__ENCODED;
        image.data.data = (uint8_t *) data;
        image.data.len = len;
        emo_options_t options = EMOTION__V1__OPTIONS__INIT;
        options.include_probabilities = true;
        options.dialogue_per_face = true; /* a click on a face speaks to it */
        options.language = self->language ? self->language : (char *) "";
        emo_analyze_request_t an = EMOTION__V1__ANALYZE_REQUEST__INIT;
        an.image = &image;
        an.options = &options;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_ANALYZE;
        req.analyze = &an;

        if (self->request_id)
                emo_gtk_connection_cancel(self->connection, self->request_id); /* a newer photo wins */
        self->request_id = 0;
        /* A photo is sent again if its connection drops (a load balancer then finds it another
         * daemon); a live frame is not: the next one replaces it. */
        int r = emo_gtk_connection_send_kept(self->connection, &req, on_reply, self, &self->request_id);
        if (r < 0) {
                show_request_error(self, r);
                finish(self, FALSE);
                return;
        }
        set_busy(self, TRUE);
}

/* The photo as the daemon sees it: OpenCV turns a JPEG upright by its EXIF orientation before
 * detecting faces, so the picture shown must be turned the same way for the boxes to fit. */
static GdkTexture *texture_from_bytes(GBytes *bytes, GError **error) {
        g_autoptr(GdkPixbufLoader) loader = gdk_pixbuf_loader_new();
        if (!gdk_pixbuf_loader_write_bytes(loader, bytes, error)) {
                gdk_pixbuf_loader_close(loader, NULL);
                return NULL;
        }
        if (!gdk_pixbuf_loader_close(loader, error))
                return NULL;
        GdkPixbuf *pixbuf = gdk_pixbuf_loader_get_pixbuf(loader);
        if (!pixbuf) {
                g_set_error(error, GDK_PIXBUF_ERROR, GDK_PIXBUF_ERROR_CORRUPT_IMAGE, _("Not an image"));
                return NULL;
        }
        g_autoptr(GdkPixbuf) upright = gdk_pixbuf_apply_embedded_orientation(pixbuf);
        return gdk_texture_new_for_pixbuf(upright ? upright : pixbuf);
}

typedef struct decode_job {
        GFile *file;
        GBytes *bytes;
} decode_job_t;

static void decode_job_free(gpointer p) {
        decode_job_t *job = p;
        g_object_unref(job->file);
        g_bytes_unref(job->bytes);
        g_free(job);
}

/* Decoding a large photo takes a noticeable time: it runs in a worker thread, the window stays
 * live meanwhile. */
static void decode_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable) {
        (void) source;
        (void) cancellable;
        decode_job_t *job = data;
        GError *error = NULL;
        GdkTexture *texture = texture_from_bytes(job->bytes, &error);
        if (texture)
                g_task_return_pointer(task, texture, g_object_unref);
        else
                g_task_return_error(task, error);
}

/* Show texture (from file, NULL when pasted) and send bytes, its encoded form, to the daemon. */
static void show_and_analyze(EmoGtkWindow *self, GFile *file, GdkTexture *texture, GBytes *bytes) {
        /* A window shows photos or live tiles: the tiles stop rather than go on analysing out of
         * sight (a camera would be analysed with no badge to say so). */
        remove_tiles(self);
        g_autofree char *name = display_name(file);
        if (file)
                g_set_object(&self->file, file);
        else
                g_clear_object(&self->file);
        g_set_object(&self->texture, texture);
        emo_photo_view_set_texture(self->view, texture);
        self->results = emo_gtk_results_free(self->results);
        select_face(self, -1);
        update_actions(self);
        gtk_stack_set_visible_child_name(self->stack, "photo");
        hide_error(self);
        g_autofree char *title = g_strdup_printf(_("%s — Emotions"), name);
        gtk_window_set_title(GTK_WINDOW(self), title);
        show_status(self);
        analyze(self, bytes);
}

static void on_decoded(GObject *source, GAsyncResult *result, gpointer userdata) {
        EmoGtkWindow *self = EMO_GTK_WINDOW(source);
        (void) userdata;
        decode_job_t *job = g_task_get_task_data(G_TASK(result));
        g_autoptr(GError) error = NULL;
        g_autoptr(GdkTexture) texture = g_task_propagate_pointer(G_TASK(result), &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return; /* another file was opened meanwhile, or the window closed */
        g_clear_object(&self->loading);
        g_autofree char *name = display_name(job->file);
        if (!texture) {
                g_autofree char *m = g_strdup_printf(_("Cannot show %s: %s"), name, error->message);
                show_error(self, m);
                finish(self, FALSE);
                return;
        }
        show_and_analyze(self, job->file, texture, job->bytes);
}

static void on_loaded(GObject *source, GAsyncResult *result, gpointer userdata) {
        g_autoptr(EmoGtkWindow) self = userdata; /* the reference taken by on_queried */
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) bytes = g_file_load_bytes_finish(G_FILE(source), result, NULL, &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return; /* another file was opened meanwhile, or the window closed */
        g_autofree char *name = display_name(G_FILE(source));
        const char *problem = NULL;
        g_autofree char *m = NULL;
        if (!bytes)
                problem = error->message;
        else if (g_bytes_get_size(bytes) > MAX_FILE_SIZE)
                problem = _("over 64 MiB: no photo is that big, so it is not sent"); /* it grew meanwhile */
        if (problem) {
                g_clear_object(&self->loading);
                m = g_strdup_printf(_("Cannot open %s: %s"), name, problem);
                show_error(self, m);
                finish(self, FALSE);
                return;
        }
        decode_job_t *job = g_new0(decode_job_t, 1);
        job->file = g_object_ref(G_FILE(source));
        job->bytes = g_bytes_ref(bytes);
        GTask *task = g_task_new(self, self->loading, on_decoded, NULL);
        g_task_set_task_data(task, job, decode_job_free);
        g_task_run_in_thread(task, decode_thread);
        g_object_unref(task);
}

/* The file's size first, so that a huge file (a video, a disk image opened by mistake) is refused
 * before it is read into memory. */
static void on_queried(GObject *source, GAsyncResult *result, gpointer userdata) {
        g_autoptr(EmoGtkWindow) self = userdata;
        g_autoptr(GError) error = NULL;
        g_autoptr(GFileInfo) info = g_file_query_info_finish(G_FILE(source), result, &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        g_autofree char *name = display_name(G_FILE(source));
        if (!info) {
                g_clear_object(&self->loading);
                g_autofree char *m = g_strdup_printf(_("Cannot open %s: %s"), name, error->message);
                show_error(self, m);
                finish(self, FALSE);
                return;
        }
        if (g_file_info_get_file_type(info) == G_FILE_TYPE_REGULAR && g_file_info_get_size(info) > MAX_FILE_SIZE) {
                g_clear_object(&self->loading);
                g_autofree char *m = g_strdup_printf(_("%s is over 64 MiB: no photo is that big, so it is not sent."), name);
                show_error(self, m);
                finish(self, FALSE);
                return;
        }
        g_file_load_bytes_async(G_FILE(source), self->loading, on_loaded, g_object_ref(self));
}

void emo_gtk_window_open(EmoGtkWindow *self, GFile *file) {
        if (self->loading)
                g_cancellable_cancel(self->loading);
        g_clear_object(&self->loading);
        self->loading = g_cancellable_new();
        g_file_query_info_async(file, G_FILE_ATTRIBUTE_STANDARD_SIZE "," G_FILE_ATTRIBUTE_STANDARD_TYPE,
                                G_FILE_QUERY_INFO_NONE, G_PRIORITY_DEFAULT, self->loading, on_queried,
                                g_object_ref(self));
}

gboolean emo_gtk_window_save_annotated(EmoGtkWindow *self, const char *path, GError **error) {
        if (!self->results || !self->texture) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED, _("No analysed photo to save"));
                return FALSE;
        }
        GskRenderer *renderer = gtk_native_get_renderer(GTK_NATIVE(self));
        if (!renderer) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED, _("The window is not shown yet"));
                return FALSE;
        }
        PangoContext *pc = gtk_widget_create_pango_context(GTK_WIDGET(self->view));
        /* As the window shows it: the bubble speaks to the face picked. */
        g_autoptr(GdkTexture) out = emo_gtk_overlay_render(renderer, pc, self->texture, self->results,
                                                           emo_photo_view_get_selected(self->view), error);
        g_object_unref(pc);
        if (!out)
                return FALSE;
        /* Written aside and renamed, so that nobody ever sees half a PNG under path. */
        g_autofree char *tmp = g_strdup_printf("%s.part", path);
        if (!gdk_texture_save_to_png(out, tmp)) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "Failed to write %s", tmp);
                g_unlink(tmp);
                return FALSE;
        }
        if (g_rename(tmp, path) < 0) {
                int e = errno;
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "Failed to rename %s to %s: %s", tmp, path,
                            g_strerror(e));
                g_unlink(tmp);
                return FALSE;
        }
        return TRUE;
}

/* ---- actions --------------------------------------------------------------------------------- */

static void on_open_response(GtkNativeDialog *dialog, int response, gpointer userdata) {
        EmoGtkWindow *self = userdata;
        if (response == GTK_RESPONSE_ACCEPT) {
                g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
                if (file)
                        emo_gtk_window_open(self, file);
        }
        g_clear_object(&self->chooser);
}

static void open_activated(GSimpleAction *action, GVariant *parameter, gpointer userdata) {
        EmoGtkWindow *self = userdata;
        (void) action;
        (void) parameter;
        g_clear_object(&self->chooser);
        self->chooser = gtk_file_chooser_native_new(_("Open a photo"), GTK_WINDOW(self), GTK_FILE_CHOOSER_ACTION_OPEN,
                                                    _("_Open"), _("_Cancel"));
        GtkFileFilter *images = gtk_file_filter_new();
        gtk_file_filter_set_name(images, _("Photos (JPEG, PNG, WebP, BMP, TIFF, PNM)"));
        gtk_file_filter_add_mime_type(images, "image/*");
        gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(self->chooser), images);
        g_object_unref(images);
        g_signal_connect(self->chooser, "response", G_CALLBACK(on_open_response), self);
        gtk_native_dialog_show(GTK_NATIVE_DIALOG(self->chooser));
}

static void on_save_response(GtkNativeDialog *dialog, int response, gpointer userdata) {
        EmoGtkWindow *self = userdata;
        if (response == GTK_RESPONSE_ACCEPT) {
                g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
                g_autofree char *path = file ? g_file_get_path(file) : NULL;
                g_autoptr(GError) error = NULL;
                if (!path)
                        show_error(self, _("Annotated images can only be saved to local files."));
                else if (!emo_gtk_window_save_annotated(self, path, &error)) {
                        g_autofree char *m = g_strdup_printf(_("Failed to save the annotated image: %s"), error->message);
                        show_error(self, m);
                }
        }
        g_clear_object(&self->chooser);
}

static void save_activated(GSimpleAction *action, GVariant *parameter, gpointer userdata) {
        EmoGtkWindow *self = userdata;
        (void) action;
        (void) parameter;
        g_clear_object(&self->chooser);
        self->chooser = gtk_file_chooser_native_new(_("Save the annotated image"), GTK_WINDOW(self),
                                                    GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), _("_Cancel"));
        g_autofree char *base = self->file ? g_file_get_basename(self->file) : g_strdup("photo");
        char *dot = strrchr(base, '.');
        if (dot)
                *dot = '\0';
        g_autofree char *name = g_strdup_printf("%s-emotions.png", base);
        gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(self->chooser), name);
        g_signal_connect(self->chooser, "response", G_CALLBACK(on_save_response), self);
        gtk_native_dialog_show(GTK_NATIVE_DIALOG(self->chooser));
}

static void save_conversation_activated(GSimpleAction *action, GVariant *parameter, gpointer userdata) {
        (void) action;
        (void) parameter;
        emo_conversation_view_save(EMO_GTK_WINDOW(userdata)->conversation);
}

/* Ctrl+V: an image on the clipboard (copied from a browser, an image viewer, a screenshot tool) is
 * shown and analysed as a photo, sent as PNG; a file copied in a file manager is opened. Both are
 * read asynchronously: the clipboard's owner may take its time. */
static void on_pasted_texture(GObject *source, GAsyncResult *result, gpointer userdata) {
        g_autoptr(EmoGtkWindow) self = userdata;
        g_autoptr(GError) error = NULL;
        g_autoptr(GdkTexture) texture = gdk_clipboard_read_texture_finish(GDK_CLIPBOARD(source), result, &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        g_clear_object(&self->loading);
        if (!texture) {
                g_autofree char *m = g_strdup_printf(_("The clipboard holds no image: %s"),
                                                     error ? error->message : _("nothing to paste"));
                show_error(self, m);
                finish(self, FALSE);
                return;
        }
        g_autoptr(GBytes) png = gdk_texture_save_to_png_bytes(texture);
        if (g_bytes_get_size(png) > MAX_FILE_SIZE) {
                show_error(self, _("The pasted image is over 64 MiB as PNG: it is not sent."));
                finish(self, FALSE);
                return;
        }
        show_and_analyze(self, NULL, texture, png);
}

static void on_pasted_file(GObject *source, GAsyncResult *result, gpointer userdata) {
        g_autoptr(EmoGtkWindow) self = userdata;
        g_autoptr(GError) error = NULL;
        const GValue *value = gdk_clipboard_read_value_finish(GDK_CLIPBOARD(source), result, &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        if (value && G_VALUE_HOLDS(value, G_TYPE_FILE) && g_value_get_object(value)) {
                emo_gtk_window_open(self, g_value_get_object(value));
                return;
        }
        /* Not a file after all: perhaps an image. */
        gdk_clipboard_read_texture_async(GDK_CLIPBOARD(source), self->loading, on_pasted_texture, g_object_ref(self));
}

void emo_gtk_window_paste(EmoGtkWindow *self) {
        GdkClipboard *clipboard = gtk_widget_get_clipboard(GTK_WIDGET(self));
        if (self->loading)
                g_cancellable_cancel(self->loading);
        g_clear_object(&self->loading);
        self->loading = g_cancellable_new();
        GdkContentFormats *formats = gdk_clipboard_get_formats(clipboard);
        if (gdk_content_formats_contain_gtype(formats, G_TYPE_FILE))
                gdk_clipboard_read_value_async(clipboard, G_TYPE_FILE, G_PRIORITY_DEFAULT, self->loading, on_pasted_file,
                                               g_object_ref(self));
        else
                gdk_clipboard_read_texture_async(clipboard, self->loading, on_pasted_texture, g_object_ref(self));
}

static void paste_activated(GSimpleAction *action, GVariant *parameter, gpointer userdata) {
        (void) action;
        (void) parameter;
        emo_gtk_window_paste(EMO_GTK_WINDOW(userdata));
}

static gboolean on_drop(GtkDropTarget *target, const GValue *value, double x, double y, gpointer userdata) {
        (void) target;
        (void) x;
        (void) y;
        if (!G_VALUE_HOLDS(value, G_TYPE_FILE))
                return FALSE;
        emo_gtk_window_open(EMO_GTK_WINDOW(userdata), g_value_get_object(value));
        return TRUE;
}

/* ---- live mode --------------------------------------------------------------------------------- */

static void show_live_status(EmoGtkWindow *self) {
        if (!self->live_connection)
                return;
        guint n = self->tiles->len;
        /* The daemon and its endpoint are on the health line at the right. */
        g_autofree char *line = g_strdup_printf(ngettext("%u live source", "%u live sources", n), n);
        gtk_label_set_text(self->status, line);
}

/* The tile the bars and the conversation follow: the one a face was last clicked in, else the
 * first. */
static EmoLiveView *followed_tile(EmoGtkWindow *self) {
        return self->followed ? self->followed : self->tiles->len ? self->tiles->pdata[0] : NULL;
}

/* The bars show the followed tile's face picked by a click, else its main face. */
static void show_tile_face(EmoGtkWindow *self, EmoLiveView *view) {
        const emo_gtk_results_t *r = emo_live_view_get_results(view);
        ssize_t face = emo_live_view_get_selected(view);
        if (face < 0)
                face = emo_gtk_results_prominent(r);
        if (face >= 0)
                emo_face_bars_set_face(self->bars, &r->faces[face], (size_t) face, r->n_faces);
}

/* The followed tile's new analysis: the bars show its face, the conversation speaks to the same
 * one (the face picked by a click, else the main face). */
static void on_tile_results(EmoLiveView *view, gpointer userdata) {
        EmoGtkWindow *self = userdata;
        if (view != followed_tile(self))
                return;
        show_tile_face(self, view);
        emo_conversation_view_observe(self->conversation, view, emo_live_view_get_results(view),
                                      emo_live_view_get_selected(view), FALSE);
}

/* A click on a face of a tile: the bars and the conversation follow that tile from now on. */
static void on_tile_face_selected(EmoLiveView *view, gpointer userdata) {
        EmoGtkWindow *self = userdata;
        EmoLiveView *was = followed_tile(self);
        if (was && was != view)
                emo_live_view_unselect(was); /* one face picked in the window, not one per tile */
        self->followed = view;
        show_tile_face(self, view);
        const emo_gtk_results_t *r = emo_live_view_get_results(view);
        if (r)
                emo_conversation_view_observe(self->conversation, view, r, emo_live_view_get_selected(view), TRUE);
}

/* Tiles in a grid as square as it gets: 1, 2 side by side, 2x2, 3x2... Each tile is its view in an
 * overlay with a close button; the grid holds the only reference to the overlay, so it is kept
 * alive while the grid is rebuilt. */
static void relayout_tiles(EmoGtkWindow *self) {
        g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func(g_object_unref);
        for (guint i = 0; i < self->tiles->len; i++)
                g_ptr_array_add(frames, g_object_ref(gtk_widget_get_parent(self->tiles->pdata[i])));
        GtkWidget *child;
        while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->tiles_grid))))
                gtk_grid_remove(self->tiles_grid, child);
        guint n = frames->len;
        guint cols = n ? (guint) ceil(sqrt((double) n)) : 1;
        for (guint i = 0; i < n; i++)
                gtk_grid_attach(self->tiles_grid, frames->pdata[i], (int) (i % cols), (int) (i / cols), 1, 1);
        show_live_status(self);
}

static void on_tile_close(GtkButton *button, gpointer userdata) {
        EmoGtkWindow *self = userdata;
        EmoLiveView *view = g_object_get_data(G_OBJECT(button), "tile");
        guint index;
        if (!g_ptr_array_find(self->tiles, view, &index))
                return;
        emo_live_view_stop(view); /* now, not whenever the last reference goes */
        if (self->followed == view)
                self->followed = NULL;
        GtkWidget *overlay = gtk_widget_get_parent(GTK_WIDGET(view));
        gtk_grid_remove(self->tiles_grid, overlay);
        g_ptr_array_remove_index(self->tiles, index);
        relayout_tiles(self);
        if (self->tiles->len == 0)
                gtk_stack_set_visible_child_name(self->stack, self->texture ? "photo" : "empty");
}

void emo_gtk_window_set_live(EmoGtkWindow *self, emo_gtk_connection_t *live_connection, gboolean loop,
                             int open_timeout_ms) {
        self->live_connection = live_connection;
        self->loop = loop;
        self->open_timeout_ms = open_timeout_ms;
}

void emo_gtk_window_add_live(EmoGtkWindow *self, const emo_gtk_source_t *source) {
        if (!self->live_connection) {
                show_error(self, _("Live mode is not available: no connection for frames."));
                return;
        }
        /* Each tile is a stream of its own, also two tiles of one source. */
        self->tiles_added++;
        g_autofree char *name = self->tiles_added == 1 ? g_strdup(source->location)
                                                       : g_strdup_printf("%s #%u", source->location, self->tiles_added);
        g_autofree char *source_id = emo_capture_stream_id(name);
        /* Unique to this client too: another one watching the same source has its own smoothing. */
        g_autofree char *stream_id = source_id ? emo_client_stream_id(source_id) : NULL;
        emo_live_view_config_t config = {
                .source = source,
                .stream_id = stream_id ? stream_id : "emotion-gtk",
                .language = self->language,
                .loop = self->loop,
                .open_timeout_ms = self->open_timeout_ms,
        };
        GtkWidget *view = emo_live_view_new(&config, self->live_connection);
        g_signal_connect(view, "results-changed", G_CALLBACK(on_tile_results), self);
        g_signal_connect(view, "face-selected", G_CALLBACK(on_tile_face_selected), self);
        GtkWidget *overlay = gtk_overlay_new();
        gtk_overlay_set_child(GTK_OVERLAY(overlay), view);
        GtkWidget *close = gtk_button_new_from_icon_name("window-close-symbolic");
        gtk_widget_set_halign(close, GTK_ALIGN_END);
        gtk_widget_set_valign(close, GTK_ALIGN_START);
        gtk_widget_set_margin_top(close, 6);
        gtk_widget_set_margin_end(close, 6);
        gtk_widget_set_tooltip_text(close, _("Stop and close this source"));
        gtk_widget_add_css_class(close, "osd");
        gtk_widget_add_css_class(close, "circular");
        g_object_set_data(G_OBJECT(close), "tile", view);
        g_signal_connect(close, "clicked", G_CALLBACK(on_tile_close), self);
        gtk_overlay_add_overlay(GTK_OVERLAY(overlay), close);
        g_ptr_array_add(self->tiles, g_object_ref(view));
        gtk_grid_attach(self->tiles_grid, overlay, 0, 0, 1, 1); /* placed by relayout_tiles */
        relayout_tiles(self);
        gtk_stack_set_visible_child_name(self->stack, "live");
        if (self->tiles->len == 1) {
                g_autofree char *title = g_strdup_printf(_("%s — Emotions, live"), source->label);
                gtk_window_set_title(GTK_WINDOW(self), title);
        }
}

static void add_parsed(EmoGtkWindow *self, const char *arg) {
        g_autoptr(emo_gtk_source_t) source = NULL;
        int r = emo_gtk_source_parse(arg, &source);
        if (r < 0) {
                g_autofree char *m = g_strdup_printf(
                        _("Cannot add “%s”: %s"), arg,
                        r == -EPROTONOSUPPORT ? _("not a video source (use rtsp://, http://, https://, a file or /dev/video…)")
                                              : _("give a file, a camera or a URL with a host"));
                show_error(self, m);
                return;
        }
        emo_gtk_window_add_live(self, source);
}

static void on_camera_clicked(GtkButton *button, gpointer userdata) {
        EmoGtkWindow *self = userdata;
        const emo_gtk_source_t *camera = g_object_get_data(G_OBJECT(button), "source");
        gtk_menu_button_popdown(self->add_button);
        emo_gtk_window_add_live(self, camera);
}

static void source_destroy(gpointer p) {
        emo_gtk_source_free(p);
}

/* The cameras are listed each time the popover opens: one may have been plugged in. */
static void refresh_cameras(EmoGtkWindow *self) {
        GtkWidget *child;
        while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->camera_box))))
                gtk_box_remove(self->camera_box, child);
        g_autoptr(GPtrArray) cameras = emo_gtk_cameras_list("/dev");
        if (cameras->len == 0) {
                GtkWidget *none = gtk_label_new(_("No camera found (/dev/video*)"));
                gtk_widget_add_css_class(none, "dim-label");
                gtk_widget_set_halign(none, GTK_ALIGN_START);
                gtk_box_append(self->camera_box, none);
        }
        for (guint i = 0; i < cameras->len; i++) {
                const emo_gtk_source_t *c = cameras->pdata[i];
                g_autofree char *text = g_strdup_printf("%s (%s)", c->label, c->location);
                GtkWidget *b = gtk_button_new_with_label(text);
                gtk_widget_add_css_class(b, "flat");
                emo_gtk_source_t *copy = emo_gtk_source_new_camera(c->location, c->label);
                g_object_set_data_full(G_OBJECT(b), "source", copy, source_destroy);
                g_signal_connect(b, "clicked", G_CALLBACK(on_camera_clicked), self);
                gtk_box_append(self->camera_box, b);
        }
}

static void on_video_response(GtkNativeDialog *dialog, int response, gpointer userdata) {
        EmoGtkWindow *self = userdata;
        if (response == GTK_RESPONSE_ACCEPT) {
                g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
                g_autofree char *path = file ? g_file_get_path(file) : NULL;
                if (path)
                        add_parsed(self, path);
                else
                        show_error(self, _("Only local video files can be played; give a stream as a URL."));
        }
        g_clear_object(&self->chooser);
}

static void on_video_clicked(GtkButton *button, gpointer userdata) {
        EmoGtkWindow *self = userdata;
        (void) button;
        gtk_menu_button_popdown(self->add_button);
        g_clear_object(&self->chooser);
        self->chooser = gtk_file_chooser_native_new(_("Play a video file live"), GTK_WINDOW(self),
                                                    GTK_FILE_CHOOSER_ACTION_OPEN, _("_Play"), _("_Cancel"));
        GtkFileFilter *videos = gtk_file_filter_new();
        gtk_file_filter_set_name(videos, _("Videos"));
        gtk_file_filter_add_mime_type(videos, "video/*");
        gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(self->chooser), videos);
        g_object_unref(videos);
        g_signal_connect(self->chooser, "response", G_CALLBACK(on_video_response), self);
        gtk_native_dialog_show(GTK_NATIVE_DIALOG(self->chooser));
}

static void on_url_activate(GtkWidget *widget, gpointer userdata) {
        EmoGtkWindow *self = userdata;
        (void) widget;
        const char *url = gtk_editable_get_text(GTK_EDITABLE(self->url_entry));
        if (!*url)
                return;
        g_autofree char *copy = g_strdup(url);
        g_strstrip(copy);
        gtk_menu_button_popdown(self->add_button);
        gtk_editable_set_text(GTK_EDITABLE(self->url_entry), "");
        add_parsed(self, copy);
}

static void add_source_activated(GSimpleAction *action, GVariant *parameter, gpointer userdata) {
        (void) action;
        (void) parameter;
        gtk_menu_button_popup(EMO_GTK_WINDOW(userdata)->add_button);
}

static void build_add_popover(EmoGtkWindow *self) {
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
        GtkWidget *h = gtk_label_new(_("Cameras"));
        gtk_widget_add_css_class(h, "heading");
        gtk_widget_set_halign(h, GTK_ALIGN_START);
        gtk_box_append(GTK_BOX(box), h);
        self->camera_box = GTK_BOX(gtk_box_new(GTK_ORIENTATION_VERTICAL, 2));
        gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->camera_box));
        gtk_box_append(GTK_BOX(box), gtk_separator_new(GTK_ORIENTATION_HORIZONTAL));
        GtkWidget *video = gtk_button_new_with_mnemonic(_("_Video file…"));
        g_signal_connect(video, "clicked", G_CALLBACK(on_video_clicked), self);
        gtk_box_append(GTK_BOX(box), video);
        gtk_box_append(GTK_BOX(box), gtk_separator_new(GTK_ORIENTATION_HORIZONTAL));
        GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        self->url_entry = GTK_ENTRY(gtk_entry_new());
        gtk_entry_set_placeholder_text(self->url_entry, _("rtsp://camera/stream or http://…"));
        gtk_widget_set_hexpand(GTK_WIDGET(self->url_entry), TRUE);
        gtk_widget_set_size_request(GTK_WIDGET(self->url_entry), 280, -1);
        g_signal_connect(self->url_entry, "activate", G_CALLBACK(on_url_activate), self);
        GtkWidget *add = gtk_button_new_with_mnemonic(_("Add _URL"));
        g_signal_connect(add, "clicked", G_CALLBACK(on_url_activate), self);
        gtk_box_append(GTK_BOX(row), GTK_WIDGET(self->url_entry));
        gtk_box_append(GTK_BOX(row), add);
        gtk_box_append(GTK_BOX(box), row);
        GtkWidget *popover = gtk_popover_new();
        gtk_popover_set_child(GTK_POPOVER(popover), box);
        g_signal_connect_swapped(popover, "show", G_CALLBACK(refresh_cameras), self);
        gtk_menu_button_set_popover(self->add_button, popover);
}

/* ---- stall measurement ------------------------------------------------------------------------ */

/* How long a thread has waited for a CPU while runnable (the kernel's schedstat run_delay), ns;
 * -1 where the kernel does not say. */
static int64_t schedstat_delay_ns(const char *path) {
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        long long run = 0, delay = -1;
        if (fscanf(f, "%lld %lld", &run, &delay) != 2)
                delay = -1;
        fclose(f);
        return delay;
}

/* The CPU wait of the calling thread and of the display server's main thread together. On a
 * machine loaded by others a gap between two turns of the main loop is mostly that wait, and so
 * is the time a drawing waits for an X server that waits for a CPU (under Xvfb, the tests' X
 * server, that is most of a gap on a loaded machine): neither is a stall of this program. What
 * is left is its own work and its waits on anything else, the daemon included. -1: unknown. */
static int64_t run_delay_ns(pid_t display_server) {
        int64_t own = schedstat_delay_ns("/proc/thread-self/schedstat");
        if (own < 0 || display_server <= 0)
                return own;
        char path[48];
        snprintf(path, sizeof(path), "/proc/%d/schedstat", (int) display_server);
        int64_t server = schedstat_delay_ns(path);
        return server < 0 ? own : own + server;
}

/* The pid of a local X server this window draws through (the peer of its unix socket), 0 when
 * there is none or it cannot be told (Wayland, a remote display). */
static pid_t display_server_pid(GtkWidget *widget) {
#ifdef GDK_WINDOWING_X11
        GdkDisplay *display = gtk_widget_get_display(widget);
        if (GDK_IS_X11_DISPLAY(display)) {
                struct ucred cred = { 0 };
                socklen_t len = sizeof(cred);
                int fd = ConnectionNumber(gdk_x11_display_get_xdisplay(display));
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0)
                        return cred.pid;
        }
#else
        (void) widget;
#endif
        return 0;
}

/* A gap since last_us (0: none yet): the longest one, and the longest less the CPU waits. */
static void note_gap(pid_t display_server, int64_t now, int64_t *last_us, int64_t *delay_ns, int64_t *max_gap,
                     int64_t *max_stall) {
        int64_t delay = run_delay_ns(display_server);
        if (*last_us) {
                int64_t gap = now - *last_us;
                int64_t stall = delay >= 0 && *delay_ns >= 0 ? gap - (delay - *delay_ns) / 1000 : gap;
                *max_gap = MAX(*max_gap, gap);
                *max_stall = MAX(*max_stall, stall);
        }
        *last_us = now;
        *delay_ns = delay;
}

static gboolean on_tick(GtkWidget *widget, GdkFrameClock *clock, gpointer userdata) {
        EmoGtkWindow *self = EMO_GTK_WINDOW(widget);
        (void) clock;
        (void) userdata;
        note_gap(self->display_server, g_get_monotonic_time(), &self->last_tick_us, &self->tick_delay_ns,
                 &self->max_tick_gap_us, &self->max_tick_stall_us);
        self->ticks++;
        return G_SOURCE_CONTINUE;
}

static gboolean on_loop_timer(gpointer userdata) {
        EmoGtkWindow *self = userdata;
        note_gap(self->display_server, g_get_monotonic_time(), &self->last_loop_us, &self->loop_delay_ns,
                 &self->max_loop_gap_us, &self->max_loop_stall_us);
        return G_SOURCE_CONTINUE;
}

void emo_gtk_window_measure_stalls(EmoGtkWindow *self) {
        self->max_tick_gap_us = self->max_loop_gap_us = 0;
        self->max_tick_stall_us = self->max_loop_stall_us = 0;
        self->last_tick_us = self->last_loop_us = 0;
        self->display_server = display_server_pid(GTK_WIDGET(self));
        if (!self->tick_id)
                self->tick_id = gtk_widget_add_tick_callback(GTK_WIDGET(self), on_tick, NULL, NULL);
        if (!self->loop_timer)
                self->loop_timer = g_timeout_add(10, on_loop_timer, self);
}

static const char *state_name(emo_gtk_live_state_t s) {
        switch (s) {
        case EMO_GTK_LIVE_OPENING:
                return "opening";
        case EMO_GTK_LIVE_PLAYING:
                return "playing";
        case EMO_GTK_LIVE_ENDED:
                return "ended";
        default:
                return "failed";
        }
}

static const char *kind_name(emo_gtk_source_kind_t k) {
        return k == EMO_GTK_SOURCE_CAMERA ? "camera" : k == EMO_GTK_SOURCE_URL ? "url" : "file";
}

static void add_string(json_object *o, const char *key, const char *value) {
        json_object_object_add(o, key, value ? json_object_new_string(value) : NULL);
}

/* A JSON array of n numbers, written as integers when they are. */
static json_object *json_numbers(const double *v, size_t n) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, v[i] == (double) (int64_t) v[i] ? json_object_new_int64((int64_t) v[i])
                                                                          : json_object_new_double(v[i]));
        return a;
}

char *emo_gtk_window_live_state_json(EmoGtkWindow *self) {
        json_object *root = json_object_new_object();
        int64_t now = g_get_monotonic_time();
        json_object_object_add(root, "ticks", json_object_new_int64(self->ticks));
        json_object_object_add(root, "max_tick_gap_ms", json_object_new_double(self->max_tick_gap_us / 1000.0));
        json_object_object_add(root, "max_loop_gap_ms", json_object_new_double(self->max_loop_gap_us / 1000.0));
        json_object_object_add(root, "max_tick_stall_ms", json_object_new_double(self->max_tick_stall_us / 1000.0));
        json_object_object_add(root, "max_loop_stall_ms", json_object_new_double(self->max_loop_stall_us / 1000.0));
        json_object_object_add(root, "display_server_pid", json_object_new_int(self->display_server));
        /* Widget coordinates from the surface's: past the client-side shadow, if any. */
        double surface_x = 0, surface_y = 0;
        gtk_native_get_surface_transform(GTK_NATIVE(self), &surface_x, &surface_y);
        json_object *tiles = json_object_new_array();
        for (guint i = 0; i < self->tiles->len; i++) {
                EmoLiveView *v = self->tiles->pdata[i];
                const emo_gtk_source_t *src = emo_live_view_get_source(v);
                const emo_gtk_live_t *l = emo_live_view_get_model(v);
                emo_gtk_live_counts_t c = emo_gtk_live_counts(l);
                const emo_gtk_results_t *r = emo_live_view_get_results(v);
                json_object *t = json_object_new_object();
                add_string(t, "source", src->location);
                add_string(t, "label", src->label);
                add_string(t, "kind", kind_name(src->kind));
                add_string(t, "stream_id", emo_live_view_get_stream_id(v));
                add_string(t, "state", state_name(emo_gtk_live_state(l)));
                add_string(t, "message", emo_gtk_live_message(l));
                json_object_object_add(t, "frames", json_object_new_int64(c.frames));
                json_object_object_add(t, "sent", json_object_new_int64(c.sent));
                json_object_object_add(t, "replies", json_object_new_int64(c.replies));
                json_object_object_add(t, "refused", json_object_new_int64(c.refused));
                json_object_object_add(t, "errors", json_object_new_int64(c.errors));
                json_object_object_add(t, "recoveries", json_object_new_int64(c.recoveries));
                json_object_object_add(t, "fps", json_object_new_double(emo_gtk_live_fps(l, now)));
                json_object_object_add(t, "latency_ms", json_object_new_double(emo_gtk_live_latency_ms(l)));
                json_object_object_add(t, "mean_latency_ms", json_object_new_double(emo_gtk_live_mean_latency_ms(l)));
                json_object_object_add(t, "mean_daemon_ms", json_object_new_double(emo_live_view_get_mean_daemon_ms(v)));
                json_object_object_add(t, "max_faces", json_object_new_int64((int64_t) emo_live_view_get_max_faces(v)));
                json_object_object_add(t, "faces", json_object_new_int64(r ? (int64_t) r->n_faces : 0));
                ssize_t m = r ? emo_gtk_results_prominent(r) : -1;
                json_object_object_add(t, "main", json_object_new_int64(m));
                add_string(t, "main_emotion", m >= 0 ? emo_emotion_name(r->faces[m].emotion) : NULL);
                add_string(t, "main_emoji", m >= 0 ? r->faces[m].emoji : NULL);
                add_string(t, "dialogue", r && r->dialogue_kind ? r->dialogue_text : NULL);
                json_object_object_add(t, "followed", json_object_new_boolean(v == followed_tile(self)));
                json_object_object_add(t, "selected", json_object_new_int64(emo_live_view_get_selected(v)));
                /* Where the tile is on the window's surface and each face is in it, for a script to
                 * click. */
                graphene_rect_t area;
                if (gtk_widget_compute_bounds(GTK_WIDGET(v), GTK_WIDGET(self), &area))
                        json_object_object_add(t, "area",
                                               json_numbers((const double[]) { area.origin.x + surface_x,
                                                                               area.origin.y + surface_y,
                                                                               area.size.width, area.size.height },
                                                            4));
                json_object *boxes = json_object_new_array();
                for (size_t k = 0; r && k < r->n_faces; k++) {
                        const emo_gtk_face_t *face = &r->faces[k];
                        json_object *b = json_object_new_object();
                        json_object_object_add(b, "box", json_numbers((const double[]) { face->x, face->y, face->width,
                                                                                         face->height },
                                                                      4));
                        add_string(b, "emotion", emo_emotion_name(face->emotion));
                        json_object_array_add(boxes, b);
                }
                json_object_object_add(t, "boxes", boxes);
                json_object_object_add(t, "image", r ? json_numbers((const double[]) { r->image_width, r->image_height }, 2)
                                                     : NULL);
                json_object_array_add(tiles, t);
        }
        json_object_object_add(root, "tiles", tiles);
        add_string(root, "bars", emo_face_bars_get_heading(self->bars));
        const emo_gtk_dialogue_t *d = emo_conversation_view_get_dialogue(self->conversation);
        json_object *conv = json_object_new_array();
        for (size_t i = 0; i < emo_gtk_dialogue_n_lines(d); i++) {
                const emo_gtk_line_t *line = emo_gtk_dialogue_line(d, i);
                json_object *o = json_object_new_object();
                add_string(o, "speaker", line->speaker == EMO_GTK_SPEAKER_DAEMON ? "emotiond" : "person");
                add_string(o, "emotion", emo_emotion_name(line->emotion));
                add_string(o, "text", line->text);
                json_object_array_add(conv, o);
        }
        json_object_object_add(root, "conversation", conv);
        json_object *daemon = json_object_new_object();
        if (self->health) {
                emo_gtk_health_state_t hs = emo_gtk_health_state(self->health);
                add_string(daemon, "state", hs == EMO_GTK_HEALTH_UP ? "up" : hs == EMO_GTK_HEALTH_DOWN ? "down" : "unknown");
                json_object_object_add(daemon, "recoveries",
                                       json_object_new_int64(emo_gtk_health_recoveries(self->health)));
                json_object_object_add(daemon, "losses", json_object_new_int64(emo_gtk_health_losses(self->health)));
        }
        add_string(daemon, "status_line", gtk_label_get_text(self->health_label));
        add_string(daemon, "banner",
                   gtk_widget_get_visible(self->daemon_banner) ? gtk_label_get_text(self->daemon_label) : NULL);
        json_object_object_add(daemon, "banner_changed_us", json_object_new_int64(self->banner_changed_us));
        json_object_object_add(root, "daemon", daemon);
        add_string(root, "title", gtk_window_get_title(GTK_WINDOW(self)));
        add_string(root, "error", self->error);
        add_string(root, "error_shown",
                   gtk_widget_get_visible(self->error_banner) ? gtk_label_get_text(self->error_label) : NULL);
        json_object_object_add(root, "awaiting_answer", json_object_new_boolean(emo_gtk_dialogue_awaiting_answer(d)));
        char *out = g_strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
        return out;
}

/* ---- the object ------------------------------------------------------------------------------ */

static void emo_gtk_window_dispose(GObject *object) {
        EmoGtkWindow *self = EMO_GTK_WINDOW(object);
        if (self->request_id && self->connection)
                emo_gtk_connection_cancel(self->connection, self->request_id);
        self->request_id = 0;
        if (self->loading)
                g_cancellable_cancel(self->loading);
        g_clear_object(&self->loading);
        g_clear_object(&self->chooser);
        if (self->after_paint) {
                GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(self));
                if (clock)
                        g_signal_handler_disconnect(clock, self->after_paint);
                self->after_paint = 0;
        }
        if (self->view)
                emo_photo_view_set_results(self->view, NULL);
        if (self->tick_id)
                gtk_widget_remove_tick_callback(GTK_WIDGET(self), self->tick_id);
        self->tick_id = 0;
        if (self->loop_timer)
                g_source_remove(self->loop_timer);
        self->loop_timer = 0;
        /* The tiles stop reading and cancel their requests now, while the connection exists. */
        if (self->tiles) {
                for (guint i = 0; i < self->tiles->len; i++)
                        emo_live_view_stop(self->tiles->pdata[i]);
                g_ptr_array_set_size(self->tiles, 0);
        }
        gtk_widget_dispose_template(GTK_WIDGET(self), EMO_TYPE_GTK_WINDOW);
        G_OBJECT_CLASS(emo_gtk_window_parent_class)->dispose(object);
}

static void emo_gtk_window_finalize(GObject *object) {
        EmoGtkWindow *self = EMO_GTK_WINDOW(object);
        self->results = emo_gtk_results_free(self->results);
        g_clear_object(&self->file);
        g_clear_object(&self->texture);
        g_free(self->language);
        g_free(self->error);
        g_free(self->health_endpoint);
        g_free(self->unsent);
        g_clear_pointer(&self->tiles, g_ptr_array_unref);
        G_OBJECT_CLASS(emo_gtk_window_parent_class)->finalize(object);
}

static void emo_gtk_window_class_init(EmoGtkWindowClass *klass) {
        GObjectClass *object_class = G_OBJECT_CLASS(klass);
        GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
        object_class->dispose = emo_gtk_window_dispose;
        object_class->finalize = emo_gtk_window_finalize;

        /* The custom widgets the template names must be registered before it is parsed. */
        g_type_ensure(EMO_TYPE_PHOTO_VIEW);
        g_type_ensure(EMO_TYPE_FACE_BARS);
        g_type_ensure(EMO_TYPE_CONVERSATION_VIEW);
        g_type_ensure(EMO_TYPE_LIVE_VIEW);
        gtk_widget_class_set_template_from_resource(widget_class, "/org/emotiond/gtk/window.ui");
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, view);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, bars);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, conversation);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, stack);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, spinner);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, error_banner);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, error_label);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, status);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, daemon_banner);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, daemon_label);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, health_label);
        gtk_widget_class_bind_template_child_full(widget_class, "tiles", FALSE,
                                                  G_STRUCT_OFFSET(EmoGtkWindow, tiles_grid));
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, add_button);
        gtk_widget_class_bind_template_callback(widget_class, on_dismiss_error);
        gtk_widget_class_bind_template_callback(widget_class, on_face_clicked);

        signals[SIGNAL_ANALYSIS_FINISHED] = g_signal_new("analysis-finished", G_TYPE_FROM_CLASS(klass),
                                                         G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                                                         G_TYPE_BOOLEAN);
}

static void emo_gtk_window_init(EmoGtkWindow *self) {
        gtk_widget_init_template(GTK_WIDGET(self));
        static const GActionEntry actions[] = {
                { .name = "open", .activate = open_activated },
                { .name = "save-annotated", .activate = save_activated },
                { .name = "save-conversation", .activate = save_conversation_activated },
                { .name = "add-source", .activate = add_source_activated },
                { .name = "paste", .activate = paste_activated },
        };
        g_action_map_add_action_entries(G_ACTION_MAP(self), actions, G_N_ELEMENTS(actions), self);
        /* Ctrl+V pastes an image in the bubble phase, after the focused widget: in the answer
         * entry it pastes text, as everywhere (an application accelerator would take it first). */
        GtkEventController *keys = gtk_shortcut_controller_new();
        gtk_event_controller_set_propagation_phase(keys, GTK_PHASE_BUBBLE);
        gtk_shortcut_controller_add_shortcut(GTK_SHORTCUT_CONTROLLER(keys),
                                             gtk_shortcut_new(gtk_shortcut_trigger_parse_string("<Control>v"),
                                                              gtk_named_action_new("win.paste")));
        gtk_widget_add_controller(GTK_WIDGET(self), keys);
        GtkDropTarget *drop = gtk_drop_target_new(G_TYPE_FILE, GDK_ACTION_COPY);
        g_signal_connect(drop, "drop", G_CALLBACK(on_drop), self);
        gtk_widget_add_controller(GTK_WIDGET(self), GTK_EVENT_CONTROLLER(drop));
        emo_face_bars_clear(self->bars);
        gtk_stack_set_visible_child_name(self->stack, "empty");
        self->tiles = g_ptr_array_new_with_free_func(g_object_unref);
        self->open_timeout_ms = 10000;
        build_add_popover(self);
}

EmoGtkWindow *emo_gtk_window_new(GtkApplication *app, emo_gtk_connection_t *connection, const char *language) {
        EmoGtkWindow *self = g_object_new(EMO_TYPE_GTK_WINDOW, "application", app, NULL);
        self->connection = connection;
        self->language = g_strdup(language && *language ? language : NULL);
        update_actions(self);
        show_status(self);
        return self;
}

void emo_gtk_window_set_health(EmoGtkWindow *self, const emo_gtk_health_t *health, const char *endpoint) {
        self->health = health;
        if (endpoint != self->health_endpoint) {
                g_free(self->health_endpoint);
                self->health_endpoint = g_strdup(endpoint);
        }
        if (!health) {
                gtk_widget_set_visible(self->daemon_banner, FALSE);
                gtk_label_set_text(self->health_label, "");
                return;
        }
        g_autofree char *line = emo_gtk_health_status_line(health, endpoint);
        g_autofree char *banner = emo_gtk_health_banner(health, endpoint);
        gtk_label_set_text(self->health_label, line);
        gtk_widget_set_tooltip_text(GTK_WIDGET(self->health_label), line);
        gtk_label_set_text(self->daemon_label, banner ? banner : "");
        if (gtk_widget_get_visible(self->daemon_banner) != (banner != NULL))
                self->banner_changed_us = g_get_monotonic_time();
        gtk_widget_set_visible(self->daemon_banner, banner != NULL);
        shorten_unsent(self);
}

void emo_gtk_window_set_language(EmoGtkWindow *self, const char *language) {
        g_free(self->language);
        self->language = g_strdup(language && *language ? language : NULL);
}

const char *emo_gtk_window_get_error(EmoGtkWindow *self) {
        return self->error;
}

char *emo_gtk_window_describe(EmoGtkWindow *self) {
        const emo_gtk_results_t *r = self->results;
        if (!r || !self->file)
                return NULL;
        g_autofree char *name = g_file_get_parse_name(self->file);
        GString *s = g_string_new(NULL);
        g_string_append_printf(s, "%s: %zu face%s", name, r->n_faces, r->n_faces == 1 ? "" : "s");
        ssize_t main_face = emo_gtk_results_prominent(r);
        if (main_face >= 0)
                g_string_append_printf(s, "; main face %zd: %s %.0f %%", main_face + 1,
                                       emo_emotion_name(r->faces[main_face].emotion),
                                       r->faces[main_face].confidence * 100.0);
        if (r->dialogue_kind != 0)
                g_string_append_printf(s, "; dialogue (%s): %s", emo_dialogue_kind_name(r->dialogue_kind),
                                       r->dialogue_text);
        if (emo_gtk_dialogue_awaiting_answer(emo_conversation_view_get_dialogue(self->conversation)))
                g_string_append(s, "; waiting for an answer");
        return g_string_free(s, FALSE);
}
