#include "live-view.h"

#include <glib/gi18n.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "capture/capture.h"
#include "emo/labels.h"
#include "emo/protocol.h"
#include "emo/util.h"
#include "face-bars.h"
#include "overlay.h"

/* Between the capture's reader thread and the main loop: the reader asks for one wake-up at a
 * time (queued), the main loop takes the newest frame then. view is cleared when the widget goes
 * away, so a wake-up already queued finds nothing to do. */
typedef struct shared {
        gint refs;
        GMutex lock;
        gboolean queued;
        EmoLiveView *view;
} shared_t;

struct _EmoLiveView {
        GtkWidget parent_instance;
        emo_gtk_source_t *source;
        char *stream_id;
        char *language;
        gboolean loop;
        int open_timeout_ms;
        emo_gtk_connection_t *connection; /* borrowed */

        shared_t *shared;
        GCancellable *opening;
        emo_capture_t *capture;
        emo_gtk_live_t *live;

        GdkTexture *texture;  /* the frame shown */
        GBytes *pixels;       /* its BGR24 pixels, for the request */
        int width, height;
        int64_t number;
        gboolean frame_waiting; /* the frame shown is newer than the one in flight: send it next */
        uint64_t request_id;  /* in flight, 0 when none */
        emo_gtk_results_t *results;
        ssize_t selected; /* the face of results a click picked, followed from frame to frame; -1: none */
        size_t max_faces;
        double daemon_ms_sum;
        int64_t n_daemon_ms;
};

G_DEFINE_FINAL_TYPE(EmoLiveView, emo_live_view, GTK_TYPE_WIDGET)

enum { SIGNAL_RESULTS_CHANGED, SIGNAL_FACE_SELECTED, N_SIGNALS };
static guint signals[N_SIGNALS];

static shared_t *shared_ref(shared_t *s) {
        g_atomic_int_inc(&s->refs);
        return s;
}

static void shared_unref(gpointer p) {
        shared_t *s = p;
        if (g_atomic_int_dec_and_test(&s->refs)) {
                g_mutex_clear(&s->lock);
                g_free(s);
        }
}

static void take_frames(EmoLiveView *self);

static gboolean on_wakeup(gpointer userdata) {
        shared_t *s = userdata;
        g_mutex_lock(&s->lock);
        s->queued = FALSE;
        EmoLiveView *view = s->view;
        g_mutex_unlock(&s->lock);
        if (view)
                take_frames(view);
        return G_SOURCE_REMOVE;
}

/* The reader thread has a new frame, or has stopped. */
static void on_capture_notify(void *userdata) {
        shared_t *s = userdata;
        g_mutex_lock(&s->lock);
        gboolean queue = !s->queued && s->view;
        s->queued = s->queued || queue;
        g_mutex_unlock(&s->lock);
        if (queue)
                g_idle_add_full(G_PRIORITY_DEFAULT, on_wakeup, shared_ref(s), shared_unref);
}

/* ---- requests ---------------------------------------------------------------------------------- */

static void send_frame(EmoLiveView *self);

/* What a screen reader says for the tile: the source, then the faces of the last analysis. */
static void update_description(EmoLiveView *self) {
        const emo_gtk_results_t *r = self->results;
        GString *s = g_string_new(self->source->label);
        if (r) {
                g_string_append_printf(s, ngettext(", live: %zu face", ", live: %zu faces", r->n_faces), r->n_faces);
                for (size_t i = 0; i < r->n_faces; i++)
                        g_string_append_printf(s, "%s%s %.0f %%", i == 0 ? ": " : ", ",
                                               emo_gtk_emotion_name(r->faces[i].emotion), r->faces[i].confidence * 100.0);
        }
        gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, s->str, -1);
        g_string_free(s, TRUE);
}

static void on_reply(emo_reply_t *reply, int error, void *userdata) {
        EmoLiveView *self = userdata;
        self->request_id = 0;
        int64_t now = g_get_monotonic_time();
        gboolean next;
        if (error < 0) {
                g_autofree char *m = emo_gtk_connection_explain(self->connection, error);
                next = emo_gtk_live_replied(self->live, now, false, false, m);
        } else if ((int) reply->status == EMO_STATUS_OVERLOADED) {
                next = emo_gtk_live_replied(self->live, now, false, true, NULL);
        } else {
                emo_gtk_results_t *r = NULL;
                int k = emo_gtk_results_from_reply(reply, &r);
                if (k < 0) {
                        g_autofree char *m =
                                k == -EBADMSG ? g_strdup_printf(_("emotiond could not analyse the frame: %s: %s"),
                                                                emo_status_name(reply->status),
                                                                reply->message && *reply->message ? reply->message
                                                                                                  : _("no details given"))
                                              : g_strdup_printf(_("emotiond's reply cannot be shown: %s"), g_strerror(-k));
                        next = emo_gtk_live_replied(self->live, now, false, false, m);
                } else {
                        if (self->selected >= 0) {
                                const emo_gtk_face_t *was = &self->results->faces[self->selected];
                                self->selected = emo_gtk_results_follow(r, was->x, was->y, was->width, was->height);
                        }
                        emo_gtk_results_free(self->results);
                        self->results = r;
                        self->daemon_ms_sum += r->total_ms;
                        self->n_daemon_ms++;
                        if (r->n_faces > self->max_faces)
                                self->max_faces = r->n_faces;
                        next = emo_gtk_live_replied(self->live, now, true, false, NULL);
                        update_description(self);
                        g_signal_emit(self, signals[SIGNAL_RESULTS_CHANGED], 0);
                }
        }
        emo_reply_free(reply);
        if (next && self->frame_waiting)
                send_frame(self);
        gtk_widget_queue_draw(GTK_WIDGET(self));
}

/* The frame shown goes to the daemon as raw BGR24 pixels, with the tile's stream id and its frame
 * number as sequence (numbers only grow, also when a file loops, so the daemon's tracks go on). */
static void send_frame(EmoLiveView *self) {
        gsize len;
        const uint8_t *data = g_bytes_get_data(self->pixels, &len);
        emo_pb_image_t image = EMOTION__V1__IMAGE__INIT;
        image.format = EMOTION__V1__IMAGE__FORMAT__BGR24;
        image.data.data = (uint8_t *) data;
        image.data.len = len;
        image.width = (uint32_t) self->width;
        image.height = (uint32_t) self->height;
        image.stride = (uint32_t) self->width * 3;
        emo_options_t options = EMOTION__V1__OPTIONS__INIT;
        options.include_probabilities = true;
        options.dialogue_per_face = true; /* the face a click picks is spoken to */
        options.language = self->language ? self->language : (char *) "";
        options.smooth_frames = EMO_LIVE_SMOOTH_FRAMES;
        emo_analyze_request_t an = EMOTION__V1__ANALYZE_REQUEST__INIT;
        an.image = &image;
        an.options = &options;
        an.stream_id = self->stream_id;
        an.sequence = (uint64_t) self->number;
        an.capture_time_us = emo_wall_us();
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_ANALYZE;
        req.analyze = &an;
        self->frame_waiting = FALSE;
        int r = emo_gtk_connection_send(self->connection, &req, on_reply, self, &self->request_id);
        if (r < 0) {
                self->request_id = 0;
                g_autofree char *m = emo_gtk_connection_explain(self->connection, r);
                emo_gtk_live_send_failed(self->live, m);
                return;
        }
        emo_gtk_live_sent(self->live, g_get_monotonic_time());
}

/* ---- frames ------------------------------------------------------------------------------------ */

/* Everything the reader has for us: the newest frame (one that came meanwhile replaces it), and
 * whether reading ended (its notification may have been folded into a frame's wake-up). */
static void take_frames(EmoLiveView *self) {
        if (!self->capture || !self->connection)
                return;
        emo_capture_frame_t *f = NULL, *newer;
        int r;
        while ((r = emo_capture_next(self->capture, 0, &newer)) == 0) {
                emo_capture_frame_free(f);
                f = newer;
        }
        if (f) {
                size_t len = f->stride * (size_t) f->height;
                g_clear_pointer(&self->pixels, g_bytes_unref);
                self->pixels = g_bytes_new_with_free_func(f->pixels, len, free, f->pixels);
                f->pixels = NULL;
                self->width = f->width;
                self->height = f->height;
                self->number = f->number;
                g_clear_object(&self->texture);
                self->texture = gdk_memory_texture_new(f->width, f->height, GDK_MEMORY_B8G8R8, self->pixels, f->stride);
                emo_capture_frame_free(f);
                self->frame_waiting = TRUE;
                if (emo_gtk_live_frame(self->live, g_get_monotonic_time()))
                        send_frame(self);
        }
        if (r == 1 && emo_gtk_live_state(self->live) == EMO_GTK_LIVE_PLAYING) {
                char msg[256];
                int e = emo_capture_error(self->capture);
                g_autofree char *m = e < 0 ? g_strdup_printf(_("Reading %s stopped: %s"), self->source->label,
                                                             emo_capture_error_message(self->capture, msg, sizeof(msg)))
                                           : NULL;
                emo_gtk_live_source_stopped(self->live, m);
        }
        gtk_widget_queue_draw(GTK_WIDGET(self));
}

typedef struct open_job {
        char *location;
        int timeout_ms;
        gboolean pace, loop;
        shared_t *shared;
} open_job_t;

static void open_job_free(gpointer p) {
        open_job_t *job = p;
        g_free(job->location);
        shared_unref(job->shared);
        g_free(job);
}

static void capture_destroy(gpointer p) {
        emo_capture_free(p);
}

/* Opening a camera or a URL can take seconds (probing, a host that does not answer). */
static void open_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable) {
        (void) source;
        (void) cancellable;
        open_job_t *job = data;
        emo_capture_config_t config = {
                .source = job->location,
                .timeout_ms = job->timeout_ms,
                .live = true,
                .pace = job->pace,
                .loop = job->loop,
                .max_side = EMO_LIVE_MAX_SIDE,
                .notify = on_capture_notify,
                .userdata = job->shared,
        };
        emo_capture_t *c = NULL;
        char *message = NULL;
        int r = emo_capture_open(&config, &c, &message);
        if (r < 0) {
                g_task_return_new_error(task, G_IO_ERROR, g_io_error_from_errno(-r), "%s",
                                        message ? message : g_strerror(-r));
                free(message);
                return;
        }
        g_task_return_pointer(task, c, capture_destroy);
}

static void on_opened(GObject *source, GAsyncResult *result, gpointer userdata) {
        (void) userdata;
        EmoLiveView *self = EMO_LIVE_VIEW(source);
        g_autoptr(GError) error = NULL;
        emo_capture_t *c = g_task_propagate_pointer(G_TASK(result), &error);
        if (g_task_get_cancellable(G_TASK(result)) && g_cancellable_is_cancelled(g_task_get_cancellable(G_TASK(result)))) {
                emo_capture_free(c); /* the tile was closed meanwhile */
                return;
        }
        g_clear_object(&self->opening);
        if (!c) {
                g_autofree char *m = g_strdup_printf("%s: %s", self->source->label, error->message);
                emo_gtk_live_opened(self->live);
                emo_gtk_live_source_stopped(self->live, m);
                gtk_widget_queue_draw(GTK_WIDGET(self));
                return;
        }
        self->capture = c;
        emo_gtk_live_opened(self->live);
        int r = emo_capture_start(c);
        if (r < 0) {
                g_autofree char *m = g_strdup_printf(_("Failed to start reading %s: %s"), self->source->label, g_strerror(-r));
                emo_gtk_live_source_stopped(self->live, m);
        }
        gtk_widget_queue_draw(GTK_WIDGET(self));
}

/* ---- drawing ----------------------------------------------------------------------------------- */

static PangoLayout *hud_layout(EmoLiveView *self, const char *text, double px, gboolean bold) {
        PangoLayout *l = gtk_widget_create_pango_layout(GTK_WIDGET(self), text);
        PangoFontDescription *fd = pango_font_description_from_string(bold ? "Sans Bold" : "Sans");
        pango_font_description_set_absolute_size(fd, px * PANGO_SCALE);
        pango_layout_set_font_description(l, fd);
        pango_font_description_free(fd);
        return l;
}

/* Text on a rounded pill at x, y; returns the pill's width. */
static double pill(GtkSnapshot *s, PangoLayout *l, double x, double y, const GdkRGBA *bg, const GdkRGBA *fg) {
        PangoRectangle ink, logical;
        pango_layout_get_pixel_extents(l, &ink, &logical);
        double pad_x = 8, pad_y = 3, w = logical.width + 2 * pad_x, h = logical.height + 2 * pad_y;
        graphene_rect_t r = GRAPHENE_RECT_INIT((float) x, (float) y, (float) w, (float) h);
        GskRoundedRect rr;
        gsk_rounded_rect_init_from_rect(&rr, &r, (float) (h / 2));
        gtk_snapshot_push_rounded_clip(s, &rr);
        gtk_snapshot_append_color(s, bg, &r);
        gtk_snapshot_pop(s);
        gtk_snapshot_save(s);
        gtk_snapshot_translate(s, &GRAPHENE_POINT_INIT((float) (x + pad_x), (float) (y + pad_y)));
        gtk_snapshot_append_layout(s, l, fg);
        gtk_snapshot_restore(s);
        return w;
}

static void draw_message(EmoLiveView *self, GtkSnapshot *s, const char *text, double w, double h) {
        PangoLayout *l = hud_layout(self, text, 15, FALSE);
        double max_w = fmax(120, fmin(w - 40, 520));
        pango_layout_set_width(l, (int) (max_w * PANGO_SCALE));
        pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
        pango_layout_set_alignment(l, PANGO_ALIGN_CENTER);
        PangoRectangle ink, logical;
        pango_layout_get_pixel_extents(l, &ink, &logical);
        double bw = max_w + 24, bh = logical.height + 20;
        double x = (w - bw) / 2, y = fmax(8, (h - bh) / 2);
        graphene_rect_t r = GRAPHENE_RECT_INIT((float) x, (float) y, (float) bw, (float) bh);
        GskRoundedRect rr;
        gsk_rounded_rect_init_from_rect(&rr, &r, 10);
        gtk_snapshot_push_rounded_clip(s, &rr);
        gtk_snapshot_append_color(s, &(GdkRGBA) { 0, 0, 0, 0.72f }, &r);
        gtk_snapshot_pop(s);
        gtk_snapshot_save(s);
        gtk_snapshot_translate(s, &GRAPHENE_POINT_INIT((float) (x + 12), (float) (y + 10)));
        gtk_snapshot_append_layout(s, l, &(GdkRGBA) { 1, 1, 1, 1 });
        gtk_snapshot_restore(s);
        g_object_unref(l);
}

/* Where the frame is shown in the tile (w x h), and how the last analysis maps onto it: it may be
 * of a smaller or larger frame, so by its own size onto the same rectangle. */
static emo_gtk_fit_t frame_fit(EmoLiveView *self, double w, double h, emo_gtk_fit_t *ret_results) {
        emo_gtk_fit_t t = emo_gtk_fit(self->width, self->height, w, h);
        if (ret_results)
                *ret_results = (emo_gtk_fit_t) {
                        .scale = self->results && self->results->image_width > 0
                                         ? self->width * t.scale / self->results->image_width
                                         : t.scale,
                        .offset_x = t.offset_x,
                        .offset_y = t.offset_y,
                };
        return t;
}

/* A click on a face picks it: the window shows its bars and follows this tile. A click beside
 * every face goes back to the main one. Nothing while the analysis shown is stale. */
static void on_click(GtkGestureClick *gesture, int n_press, double x, double y, gpointer userdata) {
        EmoLiveView *self = userdata;
        (void) gesture;
        (void) n_press;
        if (!self->texture || !self->results || emo_gtk_live_daemon_failing(self->live))
                return;
        emo_gtk_fit_t f;
        frame_fit(self, gtk_widget_get_width(GTK_WIDGET(self)), gtk_widget_get_height(GTK_WIDGET(self)), &f);
        double ix, iy;
        emo_gtk_fit_to_image(&f, x, y, &ix, &iy);
        self->selected = emo_gtk_results_face_at(self->results, ix, iy);
        g_signal_emit(self, signals[SIGNAL_FACE_SELECTED], 0);
        gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void emo_live_view_snapshot(GtkWidget *widget, GtkSnapshot *s) {
        EmoLiveView *self = EMO_LIVE_VIEW(widget);
        double w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
        graphene_rect_t all = GRAPHENE_RECT_INIT(0, 0, (float) w, (float) h);
        gtk_snapshot_append_color(s, &(GdkRGBA) { 0.13f, 0.13f, 0.14f, 1 }, &all);
        emo_gtk_live_state_t state = emo_gtk_live_state(self->live);
        if (self->texture) {
                emo_gtk_fit_t f, t = frame_fit(self, w, h, &f);
                graphene_rect_t shown = GRAPHENE_RECT_INIT((float) t.offset_x, (float) t.offset_y,
                                                           (float) (self->width * t.scale),
                                                           (float) (self->height * t.scale));
                gtk_snapshot_append_texture(s, self->texture, &shown);
                /* While the daemon does not answer, the last analysis is of a scene long gone. */
                if (self->results && self->results->image_width > 0 && !emo_gtk_live_daemon_failing(self->live))
                        emo_gtk_overlay_append(s, gtk_widget_get_pango_context(widget), self->results, &f, w, h, 1.0,
                                               self->selected, self->selected);
        }

        /* The badges along the top: what is analysed, and the source's name. */
        double x = 8;
        static const GdkRGBA shade = { 0, 0, 0, 0.6f }, white = { 1, 1, 1, 1 };
        if (state == EMO_GTK_LIVE_PLAYING && self->texture) {
                static const GdkRGBA red = { 0.80f, 0.11f, 0.16f, 0.95f };
                PangoLayout *l = hud_layout(self,
                                            self->source->kind == EMO_GTK_SOURCE_CAMERA ? _("● Analysing camera")
                                                                                        : _("● Analysing"),
                                            13, TRUE);
                x += pill(s, l, x, 8, &red, &white) + 6;
                g_object_unref(l);
        }
        PangoLayout *name = hud_layout(self, self->source->label, 13, FALSE);
        pango_layout_set_width(name, (int) (fmax(60, w - x - 16) * PANGO_SCALE));
        pango_layout_set_ellipsize(name, PANGO_ELLIPSIZE_MIDDLE);
        pill(s, name, x, 8, &shade, &white);
        g_object_unref(name);

        /* The figures along the bottom: frames per second shown, the daemon's round trip. */
        if (state == EMO_GTK_LIVE_PLAYING || self->texture) {
                double fps = emo_gtk_live_fps(self->live, g_get_monotonic_time());
                double ms = emo_gtk_live_latency_ms(self->live);
                size_t faces = self->results ? self->results->n_faces : 0;
                g_autofree char *text = emo_gtk_live_daemon_failing(self->live)
                                                ? g_strdup_printf(_("%.1f fps · emotiond does not answer"), fps)
                                        : ms >= 0 ? g_strdup_printf(ngettext("%.1f fps · %.0f ms round trip · %zu face",
                                                                             "%.1f fps · %.0f ms round trip · %zu faces", faces),
                                                                    fps, ms, faces)
                                                : g_strdup_printf(_("%.1f fps · waiting for emotiond"), fps);
                PangoLayout *l = hud_layout(self, text, 12, FALSE);
                PangoRectangle ink, logical;
                pango_layout_get_pixel_extents(l, &ink, &logical);
                pill(s, l, 8, h - logical.height - 6 - 8, &shade, &white);
                g_object_unref(l);
        }

        const char *message = emo_gtk_live_message(self->live);
        g_autofree char *opening = NULL;
        if (state == EMO_GTK_LIVE_OPENING)
                message = opening = g_strdup_printf(_("Opening %s…"), self->source->label);
        if (message)
                draw_message(self, s, message, w, h);
}

static void emo_live_view_measure(GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum,
                                  int *natural, int *minimum_baseline, int *natural_baseline) {
        (void) widget;
        (void) for_size;
        *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 200 : 150;
        *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 640 : 480;
        *minimum_baseline = *natural_baseline = -1;
}

/* ---- the object -------------------------------------------------------------------------------- */

void emo_live_view_stop(EmoLiveView *self) {
        if (self->opening)
                g_cancellable_cancel(self->opening);
        g_clear_object(&self->opening);
        if (self->shared) {
                g_mutex_lock(&self->shared->lock);
                self->shared->view = NULL;
                g_mutex_unlock(&self->shared->lock);
        }
        /* Joins the reader thread: no notification comes after this. */
        self->capture = emo_capture_free(self->capture);
        g_clear_pointer(&self->shared, shared_unref);
        if (self->request_id && self->connection)
                emo_gtk_connection_cancel(self->connection, self->request_id);
        self->request_id = 0;
        self->connection = NULL;
}

static void emo_live_view_dispose(GObject *object) {
        EmoLiveView *self = EMO_LIVE_VIEW(object);
        emo_live_view_stop(self);
        g_clear_object(&self->texture);
        g_clear_pointer(&self->pixels, g_bytes_unref);
        G_OBJECT_CLASS(emo_live_view_parent_class)->dispose(object);
}

static void emo_live_view_finalize(GObject *object) {
        EmoLiveView *self = EMO_LIVE_VIEW(object);
        self->results = emo_gtk_results_free(self->results);
        self->live = emo_gtk_live_free(self->live);
        self->source = emo_gtk_source_free(self->source);
        g_free(self->stream_id);
        g_free(self->language);
        G_OBJECT_CLASS(emo_live_view_parent_class)->finalize(object);
}

static void emo_live_view_class_init(EmoLiveViewClass *klass) {
        GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
        G_OBJECT_CLASS(klass)->dispose = emo_live_view_dispose;
        G_OBJECT_CLASS(klass)->finalize = emo_live_view_finalize;
        widget_class->snapshot = emo_live_view_snapshot;
        widget_class->measure = emo_live_view_measure;
        signals[SIGNAL_RESULTS_CHANGED] = g_signal_new("results-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                                       0, NULL, NULL, NULL, G_TYPE_NONE, 0);
        signals[SIGNAL_FACE_SELECTED] = g_signal_new("face-selected", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                                     NULL, NULL, NULL, G_TYPE_NONE, 0);
        gtk_widget_class_set_css_name(widget_class, "liveview");
        gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void emo_live_view_init(EmoLiveView *self) {
        self->live = emo_gtk_live_new();
        self->shared = g_new0(shared_t, 1);
        self->shared->refs = 1;
        g_mutex_init(&self->shared->lock);
        self->shared->view = self;
        self->selected = -1;
        GtkGesture *click = gtk_gesture_click_new();
        g_signal_connect(click, "released", G_CALLBACK(on_click), self);
        gtk_widget_add_controller(GTK_WIDGET(self), GTK_EVENT_CONTROLLER(click));
        gtk_widget_set_hexpand(GTK_WIDGET(self), TRUE);
        gtk_widget_set_vexpand(GTK_WIDGET(self), TRUE);
}

GtkWidget *emo_live_view_new(const emo_live_view_config_t *config, emo_gtk_connection_t *connection) {
        EmoLiveView *self = g_object_new(EMO_TYPE_LIVE_VIEW, NULL);
        const emo_gtk_source_t *src = config->source;
        self->source = g_new0(emo_gtk_source_t, 1);
        self->source->kind = src->kind;
        self->source->location = g_strdup(src->location);
        self->source->label = g_strdup(src->label);
        self->stream_id = g_strdup(config->stream_id);
        self->language = config->language && *config->language ? g_strdup(config->language) : NULL;
        self->loop = config->loop;
        self->open_timeout_ms = config->open_timeout_ms;
        self->connection = connection;
        update_description(self);

        open_job_t *job = g_new0(open_job_t, 1);
        job->location = g_strdup(src->location);
        job->timeout_ms = config->open_timeout_ms;
        /* Files are played at their frame rate, as a camera would deliver them. */
        job->pace = src->kind == EMO_GTK_SOURCE_FILE;
        job->loop = config->loop && src->kind == EMO_GTK_SOURCE_FILE;
        job->shared = shared_ref(self->shared);
        self->opening = g_cancellable_new();
        GTask *task = g_task_new(self, self->opening, on_opened, NULL);
        g_task_set_task_data(task, job, open_job_free);
        g_task_run_in_thread(task, open_thread);
        g_object_unref(task);
        return GTK_WIDGET(self);
}

const emo_gtk_source_t *emo_live_view_get_source(EmoLiveView *self) {
        return self->source;
}

const char *emo_live_view_get_stream_id(EmoLiveView *self) {
        return self->stream_id;
}

const emo_gtk_live_t *emo_live_view_get_model(EmoLiveView *self) {
        return self->live;
}

const emo_gtk_results_t *emo_live_view_get_results(EmoLiveView *self) {
        return self->results;
}

double emo_live_view_get_mean_daemon_ms(EmoLiveView *self) {
        return self->n_daemon_ms ? self->daemon_ms_sum / (double) self->n_daemon_ms : -1;
}

ssize_t emo_live_view_get_selected(EmoLiveView *self) {
        return self->selected;
}

void emo_live_view_unselect(EmoLiveView *self) {
        self->selected = -1;
        gtk_widget_queue_draw(GTK_WIDGET(self));
}

size_t emo_live_view_get_max_faces(EmoLiveView *self) {
        return self->max_faces;
}
