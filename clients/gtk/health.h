/* The daemon's health as the GTK client shows it: a status line (version, model, detector, device,
 * workers) while emotiond answers, a banner that says it is not there while it does not, and the
 * probes that find out, sent from the GLib main loop over a connection of their own.
 *
 * The state machine is plain data: a health reply (any status but SHUTTING_DOWN: a daemon that
 * says OVERLOADED is there) makes it UP, a failed probe (no socket, nobody listening, no reply within the
 * connection's timeout) makes it DOWN; each change is counted. Probes go every
 * EMO_GTK_HEALTH_DOWN_MS while the daemon is absent, so the banner goes by itself soon after it
 * comes back, and every EMO_GTK_HEALTH_UP_MS while it answers: for an ipc:// daemon that was
 * killed the banner comes within that (the socket file refuses at once), for one that hangs
 * within that and the connection's time-out. One probe at a time; none ever
 * blocks the loop (lib connection.h). Plain C on GLib, no widgets: tested without a display. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "connection.h"
#include "emo/protocol.h"

#define EMO_GTK_HEALTH_UP_MS 500
#define EMO_GTK_HEALTH_DOWN_MS 500

typedef enum emo_gtk_health_state {
        EMO_GTK_HEALTH_UNKNOWN, /* no probe has come back yet */
        EMO_GTK_HEALTH_UP,
        EMO_GTK_HEALTH_DOWN,
} emo_gtk_health_state_t;

typedef struct emo_gtk_health emo_gtk_health_t;

/* Called from the main loop after each probe whose outcome changed what is shown (the state, the
 * health figures, the reason the daemon is absent). */
typedef void (*emo_gtk_health_fn)(emo_gtk_health_t *h, void *userdata);

/* A model without probes (connection NULL: only emo_gtk_health_observe() changes it), or one that
 * probes over connection (borrowed; it must outlive h), the first probe from the next main loop
 * turn. NULL on out-of-memory. */
emo_gtk_health_t *emo_gtk_health_new(emo_gtk_connection_t *connection, emo_gtk_health_fn fn, void *userdata);

/* Stops probing. Accepts NULL, returns NULL. */
emo_gtk_health_t *emo_gtk_health_free(emo_gtk_health_t *h);

/* The outcome of one probe: reply (borrowed, any status; SHUTTING_DOWN counts as absent) or
 * error < 0 (reply NULL). true when what is shown changed. */
bool emo_gtk_health_observe(emo_gtk_health_t *h, const emo_reply_t *reply, int error);

/* Probe now (say after the endpoint changed) instead of at the next tick; no-op while one is in
 * flight or without a connection. */
void emo_gtk_health_probe_now(emo_gtk_health_t *h);

emo_gtk_health_state_t emo_gtk_health_state(const emo_gtk_health_t *h);

/* Times the daemon came back (DOWN to UP) and went away (UP or UNKNOWN to DOWN). */
unsigned emo_gtk_health_recoveries(const emo_gtk_health_t *h);
unsigned emo_gtk_health_losses(const emo_gtk_health_t *h);

/* What the last health report said; NULL unless UP with a report. Owned by h. */
typedef struct emo_gtk_health_info {
        char *version, *model, *detector, *device;
        unsigned workers;
} emo_gtk_health_info_t;
const emo_gtk_health_info_t *emo_gtk_health_info(const emo_gtk_health_t *h);

/* The status line: "emotiond 0.9.0 · model emonet-xs · detector yunet · cpu · 2 workers · at EP"
 * while UP, else where it is looked for. g_free() it. */
char *emo_gtk_health_status_line(const emo_gtk_health_t *h, const char *endpoint);

/* The banner while DOWN: that no daemon answers at endpoint, why, and how to start one; NULL
 * while UP or UNKNOWN. g_free() it. */
char *emo_gtk_health_banner(const emo_gtk_health_t *h, const char *endpoint);
