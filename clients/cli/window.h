/* The request window: pipelined AnalyzeRequests over one connection (not the daemon's inference
 * pipeline, daemon/pipeline.h): at most `window` requests outstanding, replies
 * matched by request_id (they may come in any order), a deadline per request, and retries.
 *
 * A request whose reply does not come within timeout_ms is sent again (a fresh request_id) while
 * replies to others still flow; when the daemon has answered nothing at all since the request went
 * out, the socket is replaced first (lazy pirate, as emo_client_call does) and every outstanding
 * request is sent again. A request that has used all its attempts fails with -ETIMEDOUT when other
 * replies still came meanwhile, and the whole run stops with -ETIMEDOUT when the daemon stayed
 * silent through all of them: the run is bounded by the number of items times attempts times
 * timeout_ms, and by attempts times timeout_ms when the daemon is gone.
 *
 * A request the daemon refuses with OVERLOADED (its queue is full) is, with retry_overloaded,
 * sent again after a short backoff without using up an attempt, and the window sends no more
 * requests at once than the daemon held when it refused (raising that again as replies come),
 * so a window larger than the daemon's queue costs a few refusals, not failures. A refused
 * request is given up (done gets the OVERLOADED reply) only when the daemon has refused for
 * attempts times timeout_ms without answering anything else: the bound above still holds. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "emo/client.h"
#include "request.h"

/* Fill r for item `index` (items are built in index order, each once). 0, or a negative errno for
 * an item that cannot be sent (a missing file...): the window then calls done with it at once.
 * CLI_WINDOW_END: there is no item `index` nor any after it (a stream that ended before the n
 * given to cli_window_run); done is not called for it. CLI_WINDOW_WAIT: whether there is an
 * item `index` depends on replies still to come; build is called for it again after the next
 * one (with nothing in flight, it is taken as CLI_WINDOW_END). */
#define CLI_WINDOW_END 1
#define CLI_WINDOW_WAIT 2
typedef int (*cli_window_build_t)(void *userdata, size_t index, cli_request_t *r);

/* Called exactly once per item, in completion order: with error 0 and the reply (owned by the
 * callee, any status), or with a negative errno and NULL (the build error, or -ETIMEDOUT when no
 * reply came after every attempt). After it returns, r of that item is no longer used. */
typedef void (*cli_window_done_t)(void *userdata, size_t index, int error, emo_reply_t *reply);

typedef struct cli_window_config {
        int timeout_ms;
        int attempts;
        unsigned window;
        /* Send requests refused with OVERLOADED again (see above); false: done gets the refusal,
         * for callers to whom a late answer is worth nothing (a live camera's old frame). */
        bool retry_overloaded;
        /* The items are the frames of a smoothed stream (Options.smooth_frames), which must reach
         * the daemon in index order: it restarts the stream when a sequence number goes back. A
         * refused item is sent again before any new one, and only once no later item is with
         * the daemon; if the daemon took a later one meanwhile, the refused one is sent again
         * with smooth_frames = 0 (analysed on its own, left out of the average). */
        bool ordered;
} cli_window_config_t;

/* Run items 0..n-1 through c (n may be SIZE_MAX when build ends the stream). 0 when done was called for every item; -ETIMEDOUT when the daemon
 * stopped answering (items not yet done were neither failed nor reported: the caller knows which
 * through done); -ENOMEM or a socket error. */
int cli_window_run(emo_client_t *c, const cli_window_config_t *config, size_t n, cli_window_build_t build,
                   cli_window_done_t done, void *userdata);
