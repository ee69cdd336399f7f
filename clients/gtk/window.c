#include "window.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "conversation-view.h"
#include "emo/labels.h"
#include "emo/protocol.h"
#include "face-bars.h"
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
};

G_DEFINE_FINAL_TYPE(EmoGtkWindow, emo_gtk_window, GTK_TYPE_APPLICATION_WINDOW)

enum { SIGNAL_ANALYSIS_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void show_error(EmoGtkWindow *self, const char *message) {
        g_free(self->error);
        self->error = g_strdup(message);
        gtk_label_set_text(self->error_label, message);
        gtk_widget_set_visible(self->error_banner, TRUE);
}

static void hide_error(EmoGtkWindow *self) {
        g_clear_pointer(&self->error, g_free);
        gtk_widget_set_visible(self->error_banner, FALSE);
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

static char *display_name(GFile *file) {
        g_autofree char *base = g_file_get_basename(file);
        return g_strdup(base ? base : "the file");
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

static void on_face_clicked(EmoGtkWindow *self, int index) {
        select_face(self, index);
}

static void show_status(EmoGtkWindow *self) {
        const emo_gtk_results_t *r = self->results;
        g_autofree char *name = self->file ? display_name(self->file) : g_strdup("");
        g_autofree char *line = NULL;
        if (r)
                line = g_strdup_printf("%s · %u×%u · %zu face%s · %.1f ms in emotiond · model %s, detector %s · %s",
                                       name, r->image_width, r->image_height, r->n_faces, r->n_faces == 1 ? "" : "s",
                                       r->total_ms, r->model, r->detector,
                                       emo_gtk_connection_endpoint(self->connection));
        else
                line = g_strdup_printf("emotiond at %s", emo_gtk_connection_endpoint(self->connection));
        gtk_label_set_text(self->status, line);
}

static void on_reply(emo_reply_t *reply, int error, void *userdata) {
        EmoGtkWindow *self = userdata;
        g_autofree char *name = display_name(self->file);
        self->request_id = 0;
        set_busy(self, FALSE);
        if (error < 0) {
                g_autofree char *m = emo_gtk_connection_explain(self->connection, error);
                show_error(self, m);
                finish(self, FALSE);
                return;
        }
        emo_gtk_results_t *r = NULL;
        int k = emo_gtk_results_from_reply(reply, &r);
        if (k == -EBADMSG) {
                g_autofree char *m = g_strdup_printf("emotiond could not analyse %s: %s: %s", name,
                                                     emo_status_name(reply->status),
                                                     reply->message && *reply->message ? reply->message
                                                                                       : "no details given");
                show_error(self, m);
        } else if (k < 0) {
                g_autofree char *m = g_strdup_printf("emotiond's reply for %s cannot be shown: %s", name,
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
        select_face(self, emo_gtk_results_prominent(r));
        emo_conversation_view_observe(self->conversation, r);
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
        int r = emo_gtk_connection_send(self->connection, &req, on_reply, self, &self->request_id);
        if (r < 0) {
                g_autofree char *m = emo_gtk_connection_explain(self->connection, r);
                show_error(self, m);
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
                g_set_error(error, GDK_PIXBUF_ERROR, GDK_PIXBUF_ERROR_CORRUPT_IMAGE, "Not an image");
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
                g_autofree char *m = g_strdup_printf("Cannot show %s: %s", name, error->message);
                show_error(self, m);
                finish(self, FALSE);
                return;
        }
        g_set_object(&self->file, job->file);
        g_set_object(&self->texture, texture);
        emo_photo_view_set_texture(self->view, texture);
        self->results = emo_gtk_results_free(self->results);
        select_face(self, -1);
        update_actions(self);
        gtk_stack_set_visible_child_name(self->stack, "photo");
        hide_error(self);
        g_autofree char *title = g_strdup_printf("%s — Emotions", name);
        gtk_window_set_title(GTK_WINDOW(self), title);
        show_status(self);
        analyze(self, job->bytes);
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
                problem = "over 64 MiB: no photo is that big, so it is not sent"; /* it grew meanwhile */
        if (problem) {
                g_clear_object(&self->loading);
                m = g_strdup_printf("Cannot open %s: %s", name, problem);
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
                g_autofree char *m = g_strdup_printf("Cannot open %s: %s", name, error->message);
                show_error(self, m);
                finish(self, FALSE);
                return;
        }
        if (g_file_info_get_file_type(info) == G_FILE_TYPE_REGULAR && g_file_info_get_size(info) > MAX_FILE_SIZE) {
                g_clear_object(&self->loading);
                g_autofree char *m = g_strdup_printf("%s is over 64 MiB: no photo is that big, so it is not sent.", name);
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
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED, "No analysed photo to save");
                return FALSE;
        }
        GskRenderer *renderer = gtk_native_get_renderer(GTK_NATIVE(self));
        if (!renderer) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED, "The window is not shown yet");
                return FALSE;
        }
        PangoContext *pc = gtk_widget_create_pango_context(GTK_WIDGET(self->view));
        g_autoptr(GdkTexture) out = emo_gtk_overlay_render(renderer, pc, self->texture, self->results, error);
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
        self->chooser = gtk_file_chooser_native_new("Open a photo", GTK_WINDOW(self), GTK_FILE_CHOOSER_ACTION_OPEN,
                                                    "_Open", "_Cancel");
        GtkFileFilter *images = gtk_file_filter_new();
        gtk_file_filter_set_name(images, "Photos (JPEG, PNG, WebP, BMP, TIFF, PNM)");
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
                        show_error(self, "Annotated images can only be saved to local files.");
                else if (!emo_gtk_window_save_annotated(self, path, &error)) {
                        g_autofree char *m = g_strdup_printf("Failed to save the annotated image: %s", error->message);
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
        self->chooser = gtk_file_chooser_native_new("Save the annotated image", GTK_WINDOW(self),
                                                    GTK_FILE_CHOOSER_ACTION_SAVE, "_Save", "_Cancel");
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

static gboolean on_drop(GtkDropTarget *target, const GValue *value, double x, double y, gpointer userdata) {
        (void) target;
        (void) x;
        (void) y;
        if (!G_VALUE_HOLDS(value, G_TYPE_FILE))
                return FALSE;
        emo_gtk_window_open(EMO_GTK_WINDOW(userdata), g_value_get_object(value));
        return TRUE;
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
        gtk_widget_class_set_template_from_resource(widget_class, "/org/emotiond/gtk/window.ui");
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, view);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, bars);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, conversation);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, stack);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, spinner);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, error_banner);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, error_label);
        gtk_widget_class_bind_template_child(widget_class, EmoGtkWindow, status);
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
        };
        g_action_map_add_action_entries(G_ACTION_MAP(self), actions, G_N_ELEMENTS(actions), self);
        GtkDropTarget *drop = gtk_drop_target_new(G_TYPE_FILE, GDK_ACTION_COPY);
        g_signal_connect(drop, "drop", G_CALLBACK(on_drop), self);
        gtk_widget_add_controller(GTK_WIDGET(self), GTK_EVENT_CONTROLLER(drop));
        emo_face_bars_clear(self->bars);
        gtk_stack_set_visible_child_name(self->stack, "empty");
}

EmoGtkWindow *emo_gtk_window_new(GtkApplication *app, emo_gtk_connection_t *connection, const char *language) {
        EmoGtkWindow *self = g_object_new(EMO_TYPE_GTK_WINDOW, "application", app, NULL);
        self->connection = connection;
        self->language = g_strdup(language && *language ? language : NULL);
        update_actions(self);
        show_status(self);
        return self;
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
