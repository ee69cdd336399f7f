/* EmoLiveView: one live tile. It opens its source with lib/capture off the main thread, shows
 * every frame at the source's pace (the capture's reader thread decodes and converts; the main
 * loop only wraps the pixels in a GdkTexture), sends frames to emotiond under its own stream id
 * with smoothing on, newest frame wins (live.h), and draws over the picture the overlay of the
 * last analysis (overlay.h), the frame rate and the daemon's round trip, a red "Analysing"
 * badge while frames go to the daemon, and any error (the source's or the daemon's) as a message
 * in the tile. A click on a face picks it (drawn highlighted, followed from frame to frame by the
 * overlap of its boxes: emo_gtk_results_follow). Nothing here blocks the main loop. */
#pragma once

#include <gtk/gtk.h>

#include "connection.h"
#include "live.h"
#include "results.h"
#include "sources.h"

G_BEGIN_DECLS

#define EMO_TYPE_LIVE_VIEW (emo_live_view_get_type())
G_DECLARE_FINAL_TYPE(EmoLiveView, emo_live_view, EMO, LIVE_VIEW, GtkWidget)

/* Frames are smoothed by the daemon over this many analysed frames (Options.smooth_frames). */
#define EMO_LIVE_SMOOTH_FRAMES 5
/* Frames larger than this on their longest side are scaled down before they are shown and sent. */
#define EMO_LIVE_MAX_SIDE 1280

typedef struct emo_live_view_config {
        const emo_gtk_source_t *source; /* copied */
        const char *stream_id;          /* copied */
        const char *language;           /* NULL: the daemon's */
        gboolean loop;                  /* files start over at their end */
        int open_timeout_ms;            /* a source that delivers nothing this long fails */
} emo_live_view_config_t;

/* Start opening the source at once. connection is borrowed: it must outlive the view. */
GtkWidget *emo_live_view_new(const emo_live_view_config_t *config, emo_gtk_connection_t *connection);

/* Stop reading and analysing now (the reader thread is joined, the request in flight cancelled);
 * the last frame stays shown. After this the connection is no longer used. */
void emo_live_view_stop(EmoLiveView *self);

const emo_gtk_source_t *emo_live_view_get_source(EmoLiveView *self);
const char *emo_live_view_get_stream_id(EmoLiveView *self);
const emo_gtk_live_t *emo_live_view_get_model(EmoLiveView *self);
/* The last analysis, NULL before the first. Valid until the next "results-changed". */
const emo_gtk_results_t *emo_live_view_get_results(EmoLiveView *self);
/* The mean of the daemon's own time (queue included) over the analyses so far, ms; -1 before the
 * first. */
double emo_live_view_get_mean_daemon_ms(EmoLiveView *self);

/* The face of the last analysis a click picked (followed from frame to frame while the daemon
 * finds it again), -1 when none was or it was lost. */
ssize_t emo_live_view_get_selected(EmoLiveView *self);

/* Drop the face picked, if any: the main face counts again. Emits nothing. */
void emo_live_view_unselect(EmoLiveView *self);

/* The most faces one analysis found so far. */
size_t emo_live_view_get_max_faces(EmoLiveView *self);

/* Signal "results-changed" (no arguments): a new analysis is shown.
 * Signal "face-selected" (no arguments): a click picked a face, or none (beside every face). */

G_END_DECLS
