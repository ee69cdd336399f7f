/* The state of one live tile, apart from its widget: what the source is doing (opening, playing,
 * ended, failed), frame pacing towards the daemon, and the figures the tile shows. Plain C, no
 * widgets, no clock of its own (the caller passes the time): tested without a display.
 *
 * Newest frame wins: every frame the source delivers is shown, but at most one request per tile is
 * in flight. A frame that comes while one is in flight is not queued; the tile keeps only the
 * newest such frame, and sends it when the reply comes. The daemon's answers therefore follow the
 * scene with one round trip of latency, never a backlog, however slow the daemon is. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum emo_gtk_live_state {
        EMO_GTK_LIVE_OPENING, /* the source is being opened (off the main thread) */
        EMO_GTK_LIVE_PLAYING,
        EMO_GTK_LIVE_ENDED,   /* a file reached its end */
        EMO_GTK_LIVE_FAILED,  /* the source could not be opened or stopped with an error */
} emo_gtk_live_state_t;

typedef struct emo_gtk_live_counts {
        int64_t frames;     /* frames shown */
        int64_t sent;       /* requests sent */
        int64_t replies;    /* analyses received */
        int64_t refused;    /* frames the daemon had no room for (OVERLOADED) */
        int64_t errors;     /* requests that failed (no answer in time, an error status) */
        int64_t recoveries; /* analyses received after a failure: the daemon came back */
} emo_gtk_live_counts_t;

typedef struct emo_gtk_live emo_gtk_live_t;

/* NULL on out-of-memory. */
emo_gtk_live_t *emo_gtk_live_new(void);
/* Accepts NULL, returns NULL. */
emo_gtk_live_t *emo_gtk_live_free(emo_gtk_live_t *l);

emo_gtk_live_state_t emo_gtk_live_state(const emo_gtk_live_t *l);
void emo_gtk_live_opened(emo_gtk_live_t *l);
/* The source ended: message NULL for the end of a file, else why it failed (copied). */
void emo_gtk_live_source_stopped(emo_gtk_live_t *l, const char *message);

/* A frame was shown at now_us. true: send it now (nothing in flight); false: it waits, replacing
 * any frame that waited before (the caller keeps only the newest). */
bool emo_gtk_live_frame(emo_gtk_live_t *l, int64_t now_us);
/* The frame was sent at now_us. */
void emo_gtk_live_sent(emo_gtk_live_t *l, int64_t now_us);
/* The request could not be sent at all (message copied): nothing is in flight. */
void emo_gtk_live_send_failed(emo_gtk_live_t *l, const char *message);
/* The request in flight ended at now_us: analysed (error 0, message NULL), refused for lack of room
 * (refused true: not a failure, the next frame goes), or failed (error < 0 or an error status;
 * message copied, shown until an analysis comes again). true when a frame waits: send it now. */
bool emo_gtk_live_replied(emo_gtk_live_t *l, int64_t now_us, bool ok, bool refused, const char *message);

bool emo_gtk_live_in_flight(const emo_gtk_live_t *l);

/* Frames shown per second over about the last two seconds, at now_us; 0 before two frames. */
double emo_gtk_live_fps(const emo_gtk_live_t *l, int64_t now_us);
/* The daemon's round trip for the last analyses (averaged, ms); -1 before the first. */
double emo_gtk_live_latency_ms(const emo_gtk_live_t *l);
/* The mean round trip of all analyses so far (ms); -1 before the first. */
double emo_gtk_live_mean_latency_ms(const emo_gtk_live_t *l);
/* The last round trip alone (ms); -1 before the first. */
double emo_gtk_live_last_latency_ms(const emo_gtk_live_t *l);

/* What the tile says over the picture: the source's failure, else the daemon's failure, else
 * "End of the video", else NULL. Owned by the model. */
const char *emo_gtk_live_message(const emo_gtk_live_t *l);
/* Whether the daemon's last answer was a failure (the message is the daemon's). */
bool emo_gtk_live_daemon_failing(const emo_gtk_live_t *l);

emo_gtk_live_counts_t emo_gtk_live_counts(const emo_gtk_live_t *l);
