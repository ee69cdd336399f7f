#include "live.h"

#include <glib/gi18n.h>

#include <stdlib.h>
#include <string.h>

#define FPS_WINDOW_US 2000000
#define FPS_RING 128
#define LATENCY_WEIGHT 0.25 /* of the newest round trip in the average */

struct emo_gtk_live {
        emo_gtk_live_state_t state;
        char *source_message; /* FAILED: why */
        char *daemon_message; /* the last request failed: why; NULL once an analysis came */
        bool in_flight;
        bool waiting;         /* a frame came while in flight */
        int64_t sent_us;
        double latency_ms, last_latency_ms;
        double latency_sum_ms;
        int64_t n_latencies;
        int64_t shown[FPS_RING]; /* when the last frames were shown, a ring */
        size_t n_shown;
        emo_gtk_live_counts_t counts;
};

emo_gtk_live_t *emo_gtk_live_new(void) {
        emo_gtk_live_t *l = calloc(1, sizeof(*l));
        if (l)
                l->latency_ms = l->last_latency_ms = -1;
        return l;
}

emo_gtk_live_t *emo_gtk_live_free(emo_gtk_live_t *l) {
        if (l) {
                free(l->source_message);
                free(l->daemon_message);
                free(l);
        }
        return NULL;
}

emo_gtk_live_state_t emo_gtk_live_state(const emo_gtk_live_t *l) {
        return l->state;
}

void emo_gtk_live_opened(emo_gtk_live_t *l) {
        l->state = EMO_GTK_LIVE_PLAYING;
}

static void set_message(char **dst, const char *message) {
        free(*dst);
        *dst = message ? strdup(message) : NULL;
}

void emo_gtk_live_source_stopped(emo_gtk_live_t *l, const char *message) {
        l->state = message ? EMO_GTK_LIVE_FAILED : EMO_GTK_LIVE_ENDED;
        set_message(&l->source_message, message);
        l->waiting = false;
}

bool emo_gtk_live_frame(emo_gtk_live_t *l, int64_t now_us) {
        l->shown[l->n_shown++ % FPS_RING] = now_us;
        l->counts.frames++;
        if (l->in_flight) {
                l->waiting = true;
                return false;
        }
        return true;
}

void emo_gtk_live_sent(emo_gtk_live_t *l, int64_t now_us) {
        l->in_flight = true;
        l->waiting = false;
        l->sent_us = now_us;
        l->counts.sent++;
}

void emo_gtk_live_send_failed(emo_gtk_live_t *l, const char *message) {
        l->in_flight = false;
        l->counts.errors++;
        set_message(&l->daemon_message, message ? message : "the request could not be sent");
}

bool emo_gtk_live_replied(emo_gtk_live_t *l, int64_t now_us, bool ok, bool refused, const char *message) {
        if (!l->in_flight)
                return false;
        l->in_flight = false;
        if (ok || refused) {
                double ms = (double) (now_us - l->sent_us) / 1000.0;
                l->last_latency_ms = ms;
                l->latency_sum_ms += ms;
                l->n_latencies++;
                l->latency_ms = l->latency_ms < 0 ? ms : (1 - LATENCY_WEIGHT) * l->latency_ms + LATENCY_WEIGHT * ms;
        }
        if (ok) {
                l->counts.replies++;
                if (l->daemon_message)
                        l->counts.recoveries++;
                set_message(&l->daemon_message, NULL);
        } else if (refused) {
                l->counts.refused++;
        } else {
                l->counts.errors++;
                set_message(&l->daemon_message, message ? message : "the analysis failed");
        }
        bool send = l->waiting && l->state == EMO_GTK_LIVE_PLAYING;
        l->waiting = false;
        return send;
}

bool emo_gtk_live_in_flight(const emo_gtk_live_t *l) {
        return l->in_flight;
}

double emo_gtk_live_fps(const emo_gtk_live_t *l, int64_t now_us) {
        size_t n = l->n_shown < FPS_RING ? l->n_shown : FPS_RING;
        if (n < 2)
                return 0;
        int64_t newest = l->shown[(l->n_shown - 1) % FPS_RING];
        if (now_us - newest > FPS_WINDOW_US)
                return 0; /* nothing shown lately: the source stopped */
        size_t k = 1;
        int64_t oldest = newest;
        while (k < n) {
                int64_t t = l->shown[(l->n_shown - 1 - k) % FPS_RING];
                if (now_us - t > FPS_WINDOW_US)
                        break;
                oldest = t;
                k++;
        }
        if (k < 2 || newest == oldest)
                return 0;
        return (double) (k - 1) * 1e6 / (double) (newest - oldest);
}

double emo_gtk_live_latency_ms(const emo_gtk_live_t *l) {
        return l->latency_ms;
}

double emo_gtk_live_mean_latency_ms(const emo_gtk_live_t *l) {
        return l->n_latencies ? l->latency_sum_ms / (double) l->n_latencies : -1;
}

double emo_gtk_live_last_latency_ms(const emo_gtk_live_t *l) {
        return l->last_latency_ms;
}

const char *emo_gtk_live_message(const emo_gtk_live_t *l) {
        if (l->state == EMO_GTK_LIVE_FAILED)
                return l->source_message;
        if (l->daemon_message)
                return l->daemon_message;
        if (l->state == EMO_GTK_LIVE_ENDED)
                return _("End of the video");
        return NULL;
}

bool emo_gtk_live_daemon_failing(const emo_gtk_live_t *l) {
        return l->daemon_message != NULL;
}

emo_gtk_live_counts_t emo_gtk_live_counts(const emo_gtk_live_t *l) {
        return l->counts;
}
