#include "pipeline.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "emo/util.h"

typedef struct slot {
        bool used;
        size_t index;
        uint64_t id;        /* of the latest send; replies to earlier sends are dropped */
        int64_t sent_us;    /* monotonic */
        int64_t deadline_us;
        int attempts;       /* sends so far */
        cli_request_t r;
} slot_t;

void cli_request_init(cli_request_t *r, int format, const void *data, size_t size, int timeout_ms) {
        emotion__v1__request__init(&r->request);
        emotion__v1__analyze_request__init(&r->analyze);
        emotion__v1__image__init(&r->image);
        emotion__v1__options__init(&r->options);
        emotion__v1__box__init(&r->box);
        r->image.format = format;
        r->image.data.data = (uint8_t *) data;
        r->image.data.len = size;
        r->analyze.image = &r->image;
        r->analyze.options = &r->options;
        /* Past our own timeout the reply is useless: let the daemon drop it unprocessed. */
        r->analyze.deadline_ms = timeout_ms > 0 ? (uint32_t) timeout_ms : 0;
        r->request.body_case = EMOTION__V1__REQUEST__BODY_ANALYZE;
        r->request.analyze = &r->analyze;
}

void cli_request_set_face(cli_request_t *r, int x, int y, int width, int height, bool exact_crop) {
        r->box.x = x;
        r->box.y = y;
        r->box.width = width;
        r->box.height = height;
        r->boxes[0] = &r->box;
        r->analyze.faces = r->boxes;
        r->analyze.n_faces = 1;
        r->analyze.exact_crop = exact_crop;
}

static int send_slot(emo_client_t *c, const cli_pipeline_config_t *config, slot_t *s) {
        int r = emo_client_send(c, &s->r.request, config->timeout_ms, &s->id);
        if (r < 0)
                return r;
        s->attempts++;
        s->sent_us = emo_now_us();
        s->deadline_us = s->sent_us + (int64_t) config->timeout_ms * 1000;
        return 0;
}

int cli_pipeline_run(emo_client_t *c, const cli_pipeline_config_t *config, size_t n, cli_pipeline_build_t build,
                     cli_pipeline_done_t done, void *userdata) {
        unsigned window = config->window ?: 1;
        _cleanup_free_ slot_t *slots = calloc(window, sizeof(slot_t));
        if (!slots)
                return -ENOMEM;

        size_t next = 0;
        unsigned outstanding = 0;
        int64_t last_reply_us = 0;

        while (next < n || outstanding > 0) {
                /* Fill the window, in item order. */
                for (unsigned i = 0; i < window && next < n; i++) {
                        slot_t *s = &slots[i];
                        if (s->used)
                                continue;
                        memset(s, 0, sizeof(*s));
                        size_t index = next++;
                        int r = build(userdata, index, &s->r);
                        if (r == CLI_PIPELINE_END) {
                                n = next = index;
                                break;
                        }
                        if (r < 0) {
                                done(userdata, index, r, NULL);
                                continue;
                        }
                        s->index = index;
                        r = send_slot(c, config, s);
                        if (r < 0)
                                return r; /* -ETIMEDOUT: the send queue stays full, nobody reads it */
                        s->used = true;
                        outstanding++;
                }
                if (outstanding == 0)
                        continue;

                int64_t earliest = INT64_MAX;
                for (unsigned i = 0; i < window; i++)
                        if (slots[i].used && slots[i].deadline_us < earliest)
                                earliest = slots[i].deadline_us;
                int64_t wait_us = earliest - emo_now_us();
                int wait_ms = wait_us <= 0 ? 0 : (int) ((wait_us + 999) / 1000);

                emo_reply_t *reply = NULL;
                int r = emo_client_recv(c, wait_ms, &reply);
                if (r == 0) {
                        last_reply_us = emo_now_us();
                        slot_t *s = NULL;
                        for (unsigned i = 0; i < window && !s; i++)
                                if (slots[i].used && slots[i].id == reply->request_id)
                                        s = &slots[i];
                        if (!s) {
                                emo_reply_free(reply); /* late reply to a request sent again since */
                                continue;
                        }
                        s->used = false;
                        outstanding--;
                        done(userdata, s->index, 0, reply);
                        continue;
                }
                if (r == -EPROTO)
                        continue; /* not a Reply: its request will time out and be sent again */
                if (r == -EINTR)
                        continue; /* SIGINT and SIGTERM kill us; others (SIGCONT) only interrupt */
                if (r != -ETIMEDOUT)
                        return r;

                /* Some deadlines have passed. */
                int64_t now = emo_now_us();
                bool reconnect = false;
                for (unsigned i = 0; i < window; i++) {
                        slot_t *s = &slots[i];
                        if (!s->used || s->deadline_us > now)
                                continue;
                        bool silent = last_reply_us < s->sent_us;
                        if (s->attempts >= config->attempts) {
                                if (silent)
                                        return -ETIMEDOUT;
                                s->used = false;
                                outstanding--;
                                done(userdata, s->index, -ETIMEDOUT, NULL);
                                continue;
                        }
                        if (silent)
                                reconnect = true;
                }

                if (reconnect) {
                        /* Nothing came back since these went out: the daemon may have restarted.
                         * A fresh socket drops whatever the old one still queued, so everything
                         * outstanding goes again. */
                        r = emo_client_reconnect(c);
                        if (r < 0)
                                return r;
                }
                for (unsigned i = 0; i < window; i++) {
                        slot_t *s = &slots[i];
                        if (!s->used || (!reconnect && s->deadline_us > now))
                                continue;
                        bool expired = s->deadline_us <= now;
                        int attempts = s->attempts;
                        r = send_slot(c, config, s);
                        if (r < 0)
                                return r;
                        /* Only a request that timed out itself uses up an attempt. */
                        if (!expired)
                                s->attempts = attempts;
                }
        }
        return 0;
}
