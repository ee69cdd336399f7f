#include "window.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "emo/util.h"

/* A refused request waits 10 ms, then twice as long after each refusal in a row, at most 0.5 s.
 * Short: the in-flight limit below, not the backoff, is what keeps the queue from overflowing. */
#define OVERLOAD_BACKOFF_MIN_US 10000
#define OVERLOAD_BACKOFF_MAX_US 500000

typedef enum slot_state {
        SLOT_FREE,
        SLOT_SENT,    /* awaiting its reply until deadline_us */
        SLOT_WAITING, /* refused with OVERLOADED: sent again from retry_us on */
} slot_state_t;

typedef struct slot {
        slot_state_t state;
        size_t index;
        uint64_t id;     /* of the latest send; replies to earlier sends are dropped */
        int64_t sent_us; /* monotonic */
        int64_t deadline_us;
        int attempts;         /* sends so far that could time out (refused ones do not count) */
        int64_t retry_us;     /* WAITING: not sent again before */
        int64_t refused_us;   /* WAITING: the first refusal of this run of them */
        unsigned refusals;    /* refusals in a row, for the backoff */
        bool unordered;       /* sent without smoothing, out of the stream's order (see demote_overtaken) */
        emo_reply_t *refusal; /* WAITING: the last OVERLOADED reply, the result if it is given up */
        cli_request_t r;
} slot_t;

typedef struct run {
        emo_client_t *c;
        const cli_window_config_t *config;
        cli_window_done_t done;
        void *userdata;
        slot_t *slots;
        slot_t **resend; /* window entries: the slots sent again after a timeout, in item order */
        unsigned window;
        unsigned limit;           /* requests sent at once; below window after refusals */
        unsigned grow;            /* replies since limit last changed, to raise it again */
        unsigned sent;            /* slots SENT */
        unsigned used;            /* slots SENT or WAITING */
        unsigned waiting;         /* slots WAITING */
        unsigned held;            /* of those, the ones that keep the order: no new item goes before them */
        size_t accepted_end;      /* ordered: 1 + the highest index the daemon took in order (any reply but
                               * OVERLOADED) */
        int64_t last_reply_us;    /* any reply: the daemon is there */
        uint64_t drops;           /* the client's count of dropped connections, last seen */
        int64_t last_progress_us; /* a reply other than OVERLOADED: the run moves on */
} run_t;

static int send_slot(emo_client_t *c, const cli_window_config_t *config, slot_t *s) {
        int r = emo_client_send(c, &s->r.request, config->timeout_ms, &s->id);
        if (r < 0)
                return r;
        s->attempts++;
        s->sent_us = emo_now_us();
        s->deadline_us = s->sent_us + (int64_t) config->timeout_ms * 1000;
        return 0;
}

/* How long refusals may go on while nothing else comes back: as long as a request may wait
 * for its replies. */
static int64_t refusal_budget_us(const run_t *run) {
        return (int64_t) run->config->attempts * run->config->timeout_ms * 1000;
}

static int64_t give_up_us(const run_t *run, const slot_t *s) {
        int64_t since = s->refused_us > run->last_progress_us ? s->refused_us : run->last_progress_us;
        return since + refusal_budget_us(run);
}

static bool keeps_order(const run_t *run, const slot_t *s) {
        return run->config->ordered && !s->unordered;
}

/* The refused request to send again now, if any, oldest first. One that keeps the order goes
 * only once no later item is with the daemon (its fate decides whether this one can still go
 * before it, see demote_overtaken), and the others of its kind wait behind it. */
static slot_t *next_retry(const run_t *run, int64_t now) {
        const slot_t *first = NULL, *due = NULL;
        for (unsigned i = 0; i < run->window; i++) {
                const slot_t *s = &run->slots[i];
                if (s->state != SLOT_WAITING)
                        continue;
                if (keeps_order(run, s)) {
                        if (!first || s->index < first->index)
                                first = s;
                } else if (s->retry_us <= now && (!due || s->index < due->index))
                        due = s;
        }
        if (first && first->retry_us <= now && (!due || first->index < due->index)) {
                bool later_out = false;
                for (unsigned i = 0; i < run->window && !later_out; i++)
                        later_out = run->slots[i].state == SLOT_SENT && run->slots[i].index > first->index;
                if (!later_out)
                        due = first;
        }
        return (slot_t *) due;
}

static void finish(run_t *run, slot_t *s, int error, emo_reply_t *reply) {
        if (s->state == SLOT_SENT)
                run->sent--;
        if (s->state == SLOT_WAITING) {
                run->waiting--;
                if (keeps_order(run, s))
                        run->held--;
        }
        run->used--;
        s->state = SLOT_FREE;
        run->done(run->userdata, s->index, error, reply);
}

/* Refused requests that a later one has overtaken (the daemon took the later one) can no longer
 * reach the smoothed stream in order, and the daemon would restart the stream for them: they go
 * again without smoothing, analysed on their own, and the average goes on without them. */
static void demote_overtaken(run_t *run) {
        for (unsigned i = 0; i < run->window; i++) {
                slot_t *s = &run->slots[i];
                if (s->state == SLOT_WAITING && keeps_order(run, s) && s->index < run->accepted_end) {
                        s->unordered = true;
                        s->r.options.smooth_frames = 0;
                        run->held--;
                }
        }
}

/* The refused requests that will not be sent again: those whose budget is spent. Their result
 * is the refusal. */
static void give_up(run_t *run, int64_t now) {
        for (unsigned i = 0; i < run->window; i++) {
                slot_t *s = &run->slots[i];
                if (s->state != SLOT_WAITING)
                        continue;
                if (now >= give_up_us(run, s)) {
                        emo_reply_t *reply = TAKE_PTR(s->refusal);
                        finish(run, s, 0, reply);
                }
        }
}

/* A reply to slot s. */
static void on_reply(run_t *run, slot_t *s, emo_reply_t *reply) {
        int64_t now = emo_now_us();
        if (run->config->retry_overloaded && (int) reply->status == EMO_STATUS_OVERLOADED) {
                /* The daemon's queue is full: what we have with it now is what it holds. Send no
                 * more than that until replies come back, and this one again after a while. */
                s->state = SLOT_WAITING;
                run->sent--;
                run->waiting++;
                if (keeps_order(run, s))
                        run->held++;
                emo_reply_free(s->refusal);
                s->refusal = reply;
                if (s->refusals++ == 0)
                        s->refused_us = now;
                unsigned shift = s->refusals - 1 < 6 ? s->refusals - 1 : 6;
                int64_t backoff = (int64_t) OVERLOAD_BACKOFF_MIN_US << shift;
                s->retry_us = now + (backoff < OVERLOAD_BACKOFF_MAX_US ? backoff : OVERLOAD_BACKOFF_MAX_US);
                unsigned holding = run->sent ?: 1;
                if (holding < run->limit)
                        run->limit = holding;
                run->grow = 0;
                demote_overtaken(run);
                return;
        }
        run->last_progress_us = now;
        if (keeps_order(run, s) && s->index + 1 > run->accepted_end) {
                run->accepted_end = s->index + 1;
                demote_overtaken(run);
        }
        /* Raise the limit again by one per limit replies (as TCP's congestion window grows):
         * another client may have gone, and a refusal now and then finds the new bound. */
        if (run->limit < run->window && ++run->grow >= run->limit) {
                run->limit++;
                run->grow = 0;
        }
        finish(run, s, 0, reply);
}

static int resend(run_t *run, bool reconnect, int64_t now);

/* Take the next reply if one comes within timeout_ms: 1 when something came (a reply, or bytes
 * that are not one, dropped: their request times out and goes again), 0 when nothing did, or a
 * socket error. When the connection the requests went out on closes (tcp://: the daemon was
 * killed; behind a load balancer, the next connection reaches another), everything outstanding
 * goes again at once on a fresh socket, rather than at its deadline; that counts as 1. */
static int receive(run_t *run, int timeout_ms) {
        emo_reply_t *reply = NULL;
        int r = emo_client_recv_or_drop(run->c, timeout_ms, &run->drops, &reply);
        if (r == -ECONNABORTED) {
                if (run->sent == 0)
                        return 1;
                r = emo_client_reconnect(run->c);
                if (r >= 0)
                        r = resend(run, true, emo_now_us());
                return r < 0 ? r : 1;
        }
        if (r == -ETIMEDOUT)
                return 0;
        if (r == -EPROTO || r == -EINTR) /* SIGINT and SIGTERM kill us; others only interrupt */
                return 1;
        if (r < 0)
                return r;
        run->last_reply_us = emo_now_us();
        for (unsigned i = 0; i < run->window; i++)
                if (run->slots[i].state == SLOT_SENT && run->slots[i].id == reply->request_id) {
                        on_reply(run, &run->slots[i], reply);
                        return 1;
                }
        emo_reply_free(reply); /* late reply to a request sent again since */
        return 1;
}

/* Take the replies already there before sending more: a refusal lowers the limit (and, when the
 * order matters, holds new items back) before the next request goes out rather than after a
 * whole window of them. */
static int drain(run_t *run) {
        int r = 0;
        while (run->sent > 0 && (r = receive(run, 0)) > 0)
                ;
        return r < 0 ? r : 0;
}

static int by_index(const void *a, const void *b) {
        const slot_t *x = *(slot_t *const *) a, *y = *(slot_t *const *) b;
        return (x->index > y->index) - (x->index < y->index);
}

/* Whether a frame about to be sent again would reach the daemon after a later one of its stream:
 * the daemon already took a later one, or a later one is out and not being sent again with it
 * (after a reconnect everything outstanding goes again, in order). */
static bool overtaken(const run_t *run, const slot_t *s, bool reconnect, int64_t now) {
        if (s->index < run->accepted_end)
                return true;
        if (reconnect)
                return false;
        for (unsigned i = 0; i < run->window; i++) {
                const slot_t *o = &run->slots[i];
                if (o->state == SLOT_SENT && o->index > s->index && o->deadline_us > now)
                        return true;
        }
        return false;
}

static slot_t *free_slot(const run_t *run) {
        for (unsigned i = 0; i < run->window; i++)
                if (run->slots[i].state == SLOT_FREE)
                        return &run->slots[i];
        return NULL;
}

/* Refused requests go again first, oldest first, as far as the limit allows. */
static int send_retries(run_t *run, int64_t now) {
        for (slot_t *s;;) {
                int r = drain(run);
                if (r < 0)
                        return r;
                if (run->sent >= run->limit || !(s = next_retry(run, now)))
                        return 0;
                emo_reply_free(TAKE_PTR(s->refusal));
                int attempts = s->attempts;
                r = send_slot(run->c, run->config, s);
                if (r < 0)
                        return r;
                s->attempts = attempts; /* a refusal uses up no attempt */
                if (keeps_order(run, s))
                        run->held--;
                s->state = SLOT_SENT;
                run->waiting--;
                run->sent++;
        }
}

/* Then new items, from *next on, in item order; when the order matters, not past a refused one.
 * Lowers *n to the end of the stream when build says it has ended. */
static int send_new(run_t *run, cli_window_build_t build, size_t *next, size_t *n) {
        for (slot_t *s;;) {
                int r = drain(run);
                if (r < 0)
                        return r;
                if (*next >= *n || run->sent >= run->limit || run->held > 0 || !(s = free_slot(run)))
                        return 0;
                memset(s, 0, sizeof(*s));
                size_t index = (*next)++;
                r = build(run->userdata, index, &s->r);
                if (r == CLI_WINDOW_END || (r == CLI_WINDOW_WAIT && run->used == 0)) {
                        *n = *next = index;
                        return 0;
                }
                if (r == CLI_WINDOW_WAIT) {
                        *next = index;
                        return 0;
                }
                if (r < 0) {
                        run->done(run->userdata, index, r, NULL);
                        continue;
                }
                s->index = index;
                r = send_slot(run->c, run->config, s);
                if (r < 0)
                        return r; /* -ETIMEDOUT: the send queue stays full, nobody reads it */
                s->state = SLOT_SENT;
                run->used++;
                run->sent++;
        }
}

/* How long to wait for a reply: until the first deadline, or the first refused request that
 * could be sent (the others are woken by the replies they wait for). In ms. */
static int wait_ms(const run_t *run) {
        int64_t wake = INT64_MAX;
        bool can_send = run->sent < run->limit;
        const slot_t *retry = can_send ? next_retry(run, INT64_MAX) : NULL;
        for (unsigned i = 0; i < run->window; i++) {
                const slot_t *s = &run->slots[i];
                int64_t t = INT64_MAX;
                if (s->state == SLOT_SENT)
                        t = s->deadline_us;
                else if (s->state == SLOT_WAITING) {
                        t = give_up_us(run, s);
                        if ((keeps_order(run, s) ? s == retry : can_send) && s->retry_us < t)
                                t = s->retry_us;
                }
                wake = t < wake ? t : wake;
        }
        int64_t wait_us = wake - emo_now_us();
        return wait_us <= 0 ? 0 : (int) ((wait_us + 999) / 1000);
}

/* The requests whose deadline has passed: those out of attempts fail, or end the run with
 * -ETIMEDOUT when the daemon answered nothing since they went out. 1 when one of the others went
 * unanswered by a silent daemon (the socket is to be replaced), else 0. */
static int expire(run_t *run, int64_t now) {
        bool reconnect = false;
        for (unsigned i = 0; i < run->window; i++) {
                slot_t *s = &run->slots[i];
                if (s->state != SLOT_SENT || s->deadline_us > now)
                        continue;
                bool silent = run->last_reply_us < s->sent_us;
                if (s->attempts >= run->config->attempts) {
                        if (silent)
                                return -ETIMEDOUT;
                        finish(run, s, -ETIMEDOUT, NULL);
                        continue;
                }
                if (silent)
                        reconnect = true;
        }
        return reconnect;
}

/* Send again the requests whose deadline has passed, or, after a reconnect, everything
 * outstanding: a fresh socket drops whatever the old one still queued. In item order, so that a
 * smoothed stream's frames reach the daemon in order (the expired sends were dropped there, at
 * their deadline). */
static int resend(run_t *run, bool reconnect, int64_t now) {
        unsigned n_resend = 0;
        for (unsigned i = 0; i < run->window; i++) {
                slot_t *s = &run->slots[i];
                if (s->state == SLOT_SENT && (reconnect || s->deadline_us <= now))
                        run->resend[n_resend++] = s;
        }
        qsort(run->resend, n_resend, sizeof(run->resend[0]), by_index);
        for (unsigned k = 0; k < n_resend; k++) {
                slot_t *s = run->resend[k];
                if (keeps_order(run, s) && overtaken(run, s, reconnect, now)) {
                        /* A later frame is already with the daemon: this one would go back in the
                         * stream and restart it. On its own, as in demote_overtaken. */
                        s->unordered = true;
                        s->r.options.smooth_frames = 0;
                }
                bool expired = s->deadline_us <= now;
                int attempts = s->attempts;
                int r = send_slot(run->c, run->config, s);
                if (r < 0)
                        return r;
                /* Only a request that timed out itself uses up an attempt. */
                if (!expired)
                        s->attempts = attempts;
        }
        return 0;
}

static int run_loop(run_t *run, size_t n, cli_window_build_t build) {
        size_t next = 0;
        while (next < n || run->used > 0) {
                int64_t now = emo_now_us();
                give_up(run, now);
                int r = send_retries(run, now);
                if (r >= 0)
                        r = send_new(run, build, &next, &n);
                if (r < 0)
                        return r;
                if (run->used == 0)
                        continue;

                r = receive(run, wait_ms(run));
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;

                /* Nothing came: some deadlines may have passed. */
                now = emo_now_us();
                int reconnect = expire(run, now);
                if (reconnect < 0)
                        return reconnect;
                /* Nothing came back since these went out: the daemon may have restarted. */
                if (reconnect > 0 && (r = emo_client_reconnect(run->c)) < 0)
                        return r;
                r = resend(run, reconnect > 0, now);
                if (r < 0)
                        return r;
        }
        return 0;
}

int cli_window_run(emo_client_t *c, const cli_window_config_t *config, size_t n, cli_window_build_t build,
                   cli_window_done_t done, void *userdata) {
        run_t run = {
                .c = c,
                .config = config,
                .done = done,
                .userdata = userdata,
                .window = config->window ?: 1,
                .last_progress_us = emo_now_us(),
        };
        run.limit = run.window;
        run.slots = calloc(run.window, sizeof(slot_t));
        run.resend = calloc(run.window, sizeof(slot_t *));
        if (!run.slots || !run.resend) {
                free(run.slots);
                free(run.resend);
                return -ENOMEM;
        }
        int r = run_loop(&run, n, build);
        for (unsigned i = 0; i < run.window; i++)
                emo_reply_free(run.slots[i].refusal);
        free(run.slots);
        free(run.resend);
        return r;
}
