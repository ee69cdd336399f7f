#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "emo/endpoint.h"
#include "emo/labels.h"
#include "auth.h"
#include "connguard.h"
#include "listen.h"
#include "metrics.h"
#include "emo/util.h"
#include "log.h"
#include "queue.h"
#include "signals.h"

#define STATUS_INTERVAL_US (5 * 1000000LL)
/* After SIGTERM the daemon answers what arrives with SHUTTING_DOWN until 200 ms pass without a
 * request, so that clients get that answer instead of a dropped connection; but at most 2 s, or
 * one camera that keeps sending would hold the stop until systemd's SIGKILL. */
#define DRAIN_QUIET_US (200 * 1000LL)
#define DRAIN_MAX_US (2 * 1000 * 1000LL)

/* Where a reply goes: the client's identity frame, and whether its request came after an empty
 * delimiter frame (REQ sockets send one; the reply must then have one too). */
typedef struct envelope {
        zframe_t *identity;
        bool delimiter;
} envelope_t;

typedef struct job {
        envelope_t env;
        emo_request_t *req;
        char *stream;
        int64_t received_us;
        int64_t deadline_us; /* 0: none */
        bool ordered;        /* smoothed: the stream's frames go to the workers one at a time */
        zframe_t *reply;     /* set by the worker */
} job_t;

typedef struct worker {
        zactor_t *actor;
        emo_pipeline_t *pipeline; /* owned by the actor thread while it runs */
        bool busy;
        int64_t busy_since; /* when the current job was handed over */
} worker_t;

struct emo_server {
        const emo_config_t *config;
        emo_pipeline_shared_t shared;
        zsock_t *router;
        emo_connguard_t *guard;
        uint64_t refused_logged; /* connections refused as of the last warning */
        uint64_t shed_logged, episodes_logged; /* connections shed, times over budget, likewise */
        uint64_t memory_budget; /* bytes */
        worker_t *workers;
        unsigned n_workers, n_busy, n_alloc; /* started, busy, allocated slots */
        emo_queue_t *queue;
        bool draining;
        int64_t drain_started_us;
        int64_t last_request_us; /* when the last request was read */
        uint64_t served;
        int64_t started_us;
        char *endpoints; /* configured; once bound, what is served (emo_listeners_describe) */
        emo_listeners_t *listeners;
        emo_metrics_t *metrics; /* NULL unless metrics_listen is set */
        emo_auth_t *auth;       /* NULL unless tcp:// is served with CURVE */
};

static job_t *job_free(job_t *j) {
        if (!j)
                return NULL;
        zframe_destroy(&j->env.identity);
        emo_request_free(j->req);
        free(j->stream);
        zframe_destroy(&j->reply);
        free(j);
        return NULL;
}

DEFINE_FREEP(job_t, job_free);

static void envelope_done(envelope_t *env) {
        zframe_destroy(&env->identity);
}

static void request_freep(emo_request_t **req) {
        emo_request_free(*req);
}

/* Runs in its own thread: take a job, run the pipeline, hand the job back with its reply. */
static void worker_actor(zsock_t *pipe, void *arg) {
        emo_pipeline_t *pipeline = arg;
        zsock_signal(pipe, 0);
        for (;;) {
                char *cmd = NULL;
                job_t *job = NULL;
                if (zsock_recv(pipe, "sp", &cmd, &job) < 0)
                        break;
                bool term = !cmd || streq(cmd, "$TERM");
                free(cmd);
                if (term)
                        break;
                job->reply = emo_pipeline_analyze(pipeline, job->req, job->stream, job->received_us);
                zsock_send(pipe, "p", job);
        }
}

/* Send one reply with the envelope the request came with. Takes ownership of body. */
static void send_reply(emo_server_t *s, const envelope_t *env, zframe_t *body) {
        if (!body) {
                log_error("Failed to build a reply: out of memory, dropping it");
                return;
        }
        zframe_t *id = zframe_dup(env->identity);
        if (zframe_send(&id, s->router, ZFRAME_MORE) < 0 ||
            (env->delimiter && zmq_send(zsock_resolve(s->router), "", 0, ZMQ_SNDMORE) < 0) ||
            zframe_send(&body, s->router, 0) < 0)
                log_debug("Failed to send a reply: %s, ignoring", zmq_strerror(zmq_errno()));
        zframe_destroy(&id);
        zframe_destroy(&body);
        s->served++;
}

/* The error reply to request id, its message formatted here, counted in the metrics. */
__attribute__((format(printf, 5, 6))) static void reply_error(emo_server_t *s, const envelope_t *env, uint64_t id,
                                                              int status, const char *fmt, ...) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        emo_metrics_reply(s->metrics, status);
        send_reply(s, env, emo_reply_error_frame(id, status, msg));
}

static void reply_health(emo_server_t *s, const envelope_t *env, uint64_t id) {
        emo_model_info_t model = EMOTION__V1__MODEL_INFO__INIT;
        model.name = s->shared.model->name;
        model.sha256 = s->shared.model->sha256;
        size_t n_lang = emo_dialogue_n_languages(s->shared.dialogue);
        char *langs[n_lang ? n_lang : 1];
        for (size_t i = 0; i < n_lang; i++)
                langs[i] = (char *) emo_dialogue_language(s->shared.dialogue, i);
        emo_health_reply_t h = EMOTION__V1__HEALTH_REPLY__INIT;
        h.version = (char *) PROJECT_VERSION;
        h.model = &model;
        h.detector = (char *) emo_detector_kind_name(s->shared.detector);
        h.device = (char *) emo_device_name(s->shared.device);
        h.workers = s->n_workers;
        h.queue_depth = (uint32_t) emo_queue_size(s->queue);
        h.queue_capacity = (uint32_t) emo_queue_capacity(s->queue);
        h.requests_served = s->served;
        h.uptime_s = (uint64_t) ((emo_now_us() - s->started_us) / 1000000);
        h.smoothed_streams = s->shared.streams ? (uint32_t) emo_streams_active(s->shared.streams, emo_now_us()) : 0;
        h.connections = emo_connguard_open(s->guard);
        h.connections_refused = emo_connguard_refused(s->guard);
        h.connections_shed = emo_connguard_shed(s->guard, NULL);
        h.n_languages = n_lang;
        h.languages = langs;
        emo_reply_t reply = EMOTION__V1__REPLY__INIT;
        reply.protocol_version = EMO_PROTOCOL_VERSION;
        reply.request_id = id;
        reply.status = EMO_STATUS_OK;
        reply.body_case = EMOTION__V1__REPLY__BODY_HEALTH;
        reply.health = &h;
        emo_metrics_reply(s->metrics, EMO_STATUS_OK);
        send_reply(s, env, emo_reply_pack_frame(&reply));
}

static char *stream_key(const emo_analyze_request_t *a, zframe_t *identity) {
        char *key = NULL;
        if (a->stream_id && *a->stream_id) {
                if (asprintf(&key, "s:%s", a->stream_id) < 0)
                        return NULL;
                return key;
        }
        char *hex = zframe_strhex(identity);
        if (hex && asprintf(&key, "c:%s", hex) < 0)
                key = NULL;
        free(hex);
        return key;
}

/* Hand queued jobs to idle workers; expired ones are answered here. */
static void dispatch(emo_server_t *s) {
        while (s->n_busy < s->n_workers && emo_queue_size(s->queue) > 0) {
                job_t *job = emo_queue_pop(s->queue);
                if (!job)
                        break; /* what is queued belongs to streams on hold */
                if (job->deadline_us && emo_now_us() > job->deadline_us) {
                        reply_error(s, &job->env, job->req->request_id, EMO_STATUS_DEADLINE_EXCEEDED,
                                    "deadline of %u ms passed while queued", job->req->analyze->deadline_ms);
                        job_free(job);
                        continue;
                }
                worker_t *w = NULL;
                for (unsigned i = 0; i < s->n_workers && !w; i++)
                        if (!s->workers[i].busy)
                                w = &s->workers[i];
                if (zsock_send(w->actor, "sp", "JOB", job) < 0) {
                        reply_error(s, &job->env, job->req->request_id, EMO_STATUS_INTERNAL,
                                    "worker unavailable");
                        job_free(job);
                        continue;
                }
                /* A smoothed frame updates its stream's tracks: the stream's next frame waits
                 * until this one is done, so the tracks see the frames in order. */
                if (job->ordered && emo_queue_hold(s->queue, job->stream) < 0)
                        log_error("Out of memory holding stream %s; its frames may be smoothed out of order",
                                  job->stream);
                w->busy = true;
                w->busy_since = emo_now_us();
                s->n_busy++;
        }
}

/* Read one message from the router: its identity frame by hand, since ZMQ_SRCFD names the
 * connection it came from, which the guard needs to tell the connections that deliver from those
 * that only fill memory; then the rest, there already (messages arrive whole). 0 with env's
 * identity and *ret_msg, or -errno (nothing to reply to). */
static int receive(emo_server_t *s, envelope_t *env, zmsg_t **ret_msg, int64_t *ret_now) {
        zmq_msg_t first_part;
        zmq_msg_init(&first_part);
        if (zmq_msg_recv(&first_part, zsock_resolve(s->router), ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&first_part);
                return -EAGAIN;
        }
        int64_t now = emo_now_us();
        emo_connguard_seen(s->guard, zmq_msg_get(&first_part, ZMQ_SRCFD), now);
        _cleanup_(zframe_destroy) zframe_t *identity = zframe_new(zmq_msg_data(&first_part),
                                                                 zmq_msg_size(&first_part));
        zmsg_t *msg = zmq_msg_more(&first_part) ? zmsg_recv(s->router) : zmsg_new();
        zmq_msg_close(&first_part);
        if (!msg)
                return -EIO;
        s->last_request_us = now;
        if (!identity) {
                zmsg_destroy(&msg);
                return -ENOMEM;
        }
        env->identity = TAKE_PTR(identity);
        *ret_msg = msg;
        *ret_now = now;
        return 0;
}

/* The protobuf frame of msg: the only one, or the second after an empty delimiter (then
 * env->delimiter). NULL, answered, for any other shape. */
static zframe_t *request_frame(emo_server_t *s, envelope_t *env, zmsg_t *msg) {
        size_t frames = zmsg_size(msg);
        env->delimiter = frames == 2 && zframe_size(zmsg_first(msg)) == 0;
        if (frames == 0 || frames > 2 || (frames == 2 && !env->delimiter)) {
                env->delimiter = false;
                reply_error(s, env, 0, EMO_STATUS_INVALID_REQUEST,
                            "expected one protobuf frame, optionally after an empty delimiter; got %zu frames", frames);
                return NULL;
        }
        return zmsg_last(msg);
}

/* A full queue refuses every analyze request, whatever its body holds: the refusal needs the
 * request_id only, read from the top level of the message without decoding the image (under
 * overload nearly every reply is this one, and decoding them all cost a seventh of the useful
 * throughput). Anything else (health, a stopping daemon, a malformed or oversized message) is left
 * to parse_request. Whether it answered. */
static bool refuse_overloaded(emo_server_t *s, const envelope_t *env, zframe_t *body) {
        emo_request_head_t head;
        if (s->draining || emo_queue_size(s->queue) < emo_queue_capacity(s->queue) ||
            zframe_size(body) > s->config->max_message_bytes ||
            emo_request_peek(zframe_data(body), zframe_size(body), &head) != 0 ||
            head.protocol_version != EMO_PROTOCOL_VERSION || head.body_case != EMOTION__V1__REQUEST__BODY_ANALYZE)
                return false;
        reply_error(s, env, head.request_id, EMO_STATUS_OVERLOADED, "queue full (%zu requests waiting), retry later",
                    emo_queue_size(s->queue));
        return true;
}

/* Decode body into a Request this daemon serves now: 0 with *ret, or -EINVAL when it was
 * answered with an error (size, shape, version, a draining daemon). */
static int parse_request(emo_server_t *s, const envelope_t *env, zframe_t *body, emo_request_t **ret) {
        _cleanup_(request_freep) emo_request_t *req = NULL;
        int r = emo_request_unpack(zframe_data(body), zframe_size(body), &req);
        if (zframe_size(body) > s->config->max_message_bytes) {
                /* Refused, but parsed first (libzmq lets through at most twice the limit, and the
                 * decoding is bounded by its budget): clients match replies by request_id, so a
                 * reply without it would leave theirs waiting until it times out. */
                reply_error(s, env, r == 0 ? req->request_id : 0, EMO_STATUS_IMAGE_TOO_LARGE,
                            "message of %zu bytes is over the limit of %llu bytes", zframe_size(body),
                            (unsigned long long) s->config->max_message_bytes);
                return -EINVAL;
        }
        if (r == -E2BIG)
                reply_error(s, env, 0, EMO_STATUS_INVALID_REQUEST,
                            "message of %zu bytes decodes to more than twice its size (too many fields)",
                            zframe_size(body));
        else if (r < 0)
                reply_error(s, env, 0, EMO_STATUS_INVALID_REQUEST, "not an emotion.v1.Request message");
        else if (req->protocol_version == 0)
                reply_error(s, env, req->request_id, EMO_STATUS_INVALID_REQUEST,
                            "protocol_version is missing (this daemon speaks %d)", EMO_PROTOCOL_VERSION);
        else if (req->protocol_version != EMO_PROTOCOL_VERSION)
                reply_error(s, env, req->request_id, EMO_STATUS_UNSUPPORTED_VERSION,
                            "protocol_version %u is not supported (this daemon speaks %d)", req->protocol_version,
                            EMO_PROTOCOL_VERSION);
        /* A stopping daemon says so to everyone, health probes included: a load balancer must stop
         * sending here, not read OK. */
        else if (s->draining)
                reply_error(s, env, req->request_id, EMO_STATUS_SHUTTING_DOWN, "emotiond is shutting down");
        else {
                *ret = TAKE_PTR(req);
                return 0;
        }
        return -EINVAL;
}

/* What the dispatcher checks of an analyze request before it queues it; the worker checks the
 * options and the image itself. Whether it is fit (else answered). */
static bool check_analyze(emo_server_t *s, const envelope_t *env, const emo_request_t *req) {
        if (!req->analyze->image) {
                reply_error(s, env, req->request_id, EMO_STATUS_INVALID_REQUEST, "analyze request without an image");
                return false;
        }
        /* The stream id keys the queue and the smoothing state and is echoed in the reply: bounded,
         * and valid UTF-8, or a strict proto3 parser would reject the reply that echoes it. */
        const char *stream_id = req->analyze->stream_id ? req->analyze->stream_id : "";
        size_t stream_id_len = strlen(stream_id);
        if (stream_id_len > EMO_STREAM_ID_MAX) {
                reply_error(s, env, req->request_id, EMO_STATUS_INVALID_REQUEST,
                            "stream_id of %zu bytes is over the limit of %d", stream_id_len, EMO_STREAM_ID_MAX);
                return false;
        }
        if (!emo_utf8_valid(stream_id)) {
                reply_error(s, env, req->request_id, EMO_STATUS_INVALID_REQUEST, "stream_id is not valid UTF-8");
                return false;
        }
        return true;
}

/* Queue an analyze request as a job (taking env's identity and req) and dispatch; a full queue or
 * out of memory is answered here. */
static void enqueue(emo_server_t *s, envelope_t *env, emo_request_t **req, int64_t now) {
        uint64_t id = (*req)->request_id;
        _cleanup_(job_freep) job_t *job = calloc(1, sizeof(*job));
        if (!job || !(job->stream = stream_key((*req)->analyze, env->identity))) {
                reply_error(s, env, id, EMO_STATUS_INTERNAL, "out of memory");
                return;
        }
        job->env = (envelope_t) { TAKE_PTR(env->identity), env->delimiter };
        job->req = TAKE_PTR(*req);
        job->received_us = now;
        /* smooth_frames is checked with the other options, by the worker. */
        job->ordered = job->req->analyze->options && job->req->analyze->options->smooth_frames > 0;
        job->deadline_us = job->req->analyze->deadline_ms ? now + (int64_t) job->req->analyze->deadline_ms * 1000 : 0;
        int r = emo_queue_push(s->queue, job->stream, job);
        if (r == -ENOBUFS)
                reply_error(s, &job->env, id, EMO_STATUS_OVERLOADED, "queue full (%zu requests waiting), retry later",
                            emo_queue_size(s->queue));
        else if (r < 0)
                reply_error(s, &job->env, id, EMO_STATUS_INTERNAL, "out of memory");
        else {
                TAKE_PTR(job);
                dispatch(s);
        }
}

/* One message from the router, answered or queued: the first steps of docs/architecture.md's
 * "One request". */
static void handle_request(emo_server_t *s) {
        _cleanup_(envelope_done) envelope_t env = { 0 };
        _cleanup_(zmsg_destroy) zmsg_t *msg = NULL;
        _cleanup_(request_freep) emo_request_t *req = NULL;
        int64_t now;
        if (receive(s, &env, &msg, &now) < 0)
                return;
        zframe_t *body = request_frame(s, &env, msg);
        if (!body || refuse_overloaded(s, &env, body) || parse_request(s, &env, body, &req) < 0)
                return;
        if (req->body_case == EMOTION__V1__REQUEST__BODY_HEALTH)
                reply_health(s, &env, req->request_id);
        else if (req->body_case != EMOTION__V1__REQUEST__BODY_ANALYZE)
                reply_error(s, &env, req->request_id, EMO_STATUS_INVALID_REQUEST,
                            "request has neither analyze nor health");
        else if (check_analyze(s, &env, req))
                enqueue(s, &env, &req, now);
}

/* log_results: one line per face of an OK analyze reply, read back from the reply as sent. Off
 * by default, and the only place where the daemon writes what it found: results of faces are
 * personal data (docs/privacy.md). The stream_id is left out: the client chose it, and it could
 * be anything, a person's name included. */
static void log_results(zframe_t *reply_frame) {
        emo_reply_t *reply = NULL;
        if (emo_reply_unpack(zframe_data(reply_frame), zframe_size(reply_frame), &reply) < 0) {
                log_warning("Failed to read back a reply for log_results, ignoring");
                return;
        }
        const emo_analyze_reply_t *a = reply->analyze;
        if (reply->status != EMO_STATUS_OK || !a)
                goto out;
        log_info("Result of request %llu (frame %llu): %ux%u image, %zu face(s)", (unsigned long long) reply->request_id,
                 (unsigned long long) a->sequence, a->image_width, a->image_height, a->n_faces);
        for (size_t i = 0; i < a->n_faces; i++) {
                const emo_pb_face_t *f = a->faces[i];
                const emo_pb_box_t *b = f->box;
                char probs[EMO_EMOTION_COUNT * 8 + 32] = "", smoothed[128] = "";
                for (size_t k = 0; k < f->n_probabilities && k < EMO_EMOTION_COUNT; k++)
                        snprintf(probs + strlen(probs), sizeof(probs) - strlen(probs), "%s%.3f",
                                 k ? "," : ", probabilities ", f->probabilities[k]);
                if (f->smoothed)
                        snprintf(smoothed, sizeof(smoothed), ", smoothed over %u frame(s) of track %llu: %s %.3f",
                                 f->smoothed->frames, (unsigned long long) f->smoothed->track,
                                 emo_emotion_name(f->smoothed->emotion) ?: "?", f->smoothed->confidence);
                log_info("Result of request %llu face %zu: box %d,%d %dx%d, %s %.3f%s%s",
                         (unsigned long long) reply->request_id, i, b ? b->x : 0, b ? b->y : 0, b ? b->width : 0,
                         b ? b->height : 0, emo_emotion_name(f->emotion) ?: "?", f->confidence, probs, smoothed);
        }
out:
        emo_reply_free(reply);
}

static void handle_done(emo_server_t *s, worker_t *w) {
        job_t *job = NULL;
        if (zsock_recv(w->actor, "p", &job) < 0 || !job)
                return;
        w->busy = false;
        s->n_busy--;
        if (job->ordered)
                emo_queue_release(s->queue, job->stream);
        if (job->reply && s->metrics) {
                /* The worker's reply says how it went: status, stage timings, faces. */
                emo_reply_t *r = NULL;
                if (emo_reply_unpack(zframe_data(job->reply), zframe_size(job->reply), &r) == 0) {
                        emo_metrics_reply(s->metrics, r->status);
                        if ((int) r->status == EMO_STATUS_OK && r->analyze)
                                emo_metrics_analysis(s->metrics, r->analyze->timings, r->analyze->n_faces);
                        emo_reply_free(r);
                }
        }
        if (job->reply && s->config->log_results)
                log_results(job->reply);
        if (job->reply)
                send_reply(s, &job->env, TAKE_PTR(job->reply));
        else
                reply_error(s, &job->env, job->req->request_id, EMO_STATUS_INTERNAL,
                            "out of memory while building the reply");
        job_free(job);
        dispatch(s);
}

static void start_draining(emo_server_t *s, const char *why) {
        if (s->draining)
                return;
        s->draining = true;
        s->drain_started_us = s->last_request_us = emo_now_us();
        size_t queued = emo_queue_size(s->queue);
        log_info("Received %s, finishing %u request(s) in progress, refusing %zu queued", why, s->n_busy, queued);
        sd_notifyf(0, "STOPPING=1\nSTATUS=Stopping: finishing %u request(s)", s->n_busy);
        job_t *job;
        while ((job = emo_queue_pop_any(s->queue))) {
                reply_error(s, &job->env, job->req->request_id, EMO_STATUS_SHUTTING_DOWN,
                            "emotiond is shutting down");
                job_free(job);
        }
}

static void notify_status(emo_server_t *s) {
        sd_notifyf(0, "STATUS=Serving on %s: %llu replies, queue %zu/%zu, %u/%u workers busy, %u/%u connections",
                   s->endpoints, (unsigned long long) s->served, emo_queue_size(s->queue),
                   emo_queue_capacity(s->queue), s->n_busy, s->n_workers, emo_connguard_open(s->guard),
                   s->config->max_connections);
        /* One line per status period at most: a flood must not flood the journal too. */
        uint64_t refused = emo_connguard_refused(s->guard);
        if (refused > s->refused_logged) {
                log_warning("Refused %llu connection(s) in the last %lld s: max_connections=%u were open",
                            (unsigned long long) (refused - s->refused_logged), STATUS_INTERVAL_US / 1000000,
                            s->config->max_connections);
                s->refused_logged = refused;
        }
        uint64_t episodes, shed = emo_connguard_shed(s->guard, &episodes);
        if (shed > s->shed_logged || episodes > s->episodes_logged) {
                log_warning("Memory went over memory_budget_mb=%llu %llu time(s) in the last %lld s: closed %llu "
                            "connection(s) that had delivered no complete message for the longest",
                            (unsigned long long) (s->memory_budget >> 20),
                            (unsigned long long) (episodes - s->episodes_logged), STATUS_INTERVAL_US / 1000000,
                            (unsigned long long) (shed - s->shed_logged));
                s->shed_logged = shed;
                s->episodes_logged = episodes;
        }
}

/* The most memory this configuration lets clients make the daemon take, in bytes: what libzmq
 * may hold per connection before the daemon sees anything (a partial message of up to twice
 * max_message_bytes), the requests waiting in the queue and in the workers, and what each worker
 * needs to decode an image of max_pixels (measured: about 230 MB for a 40 MP progressive JPEG,
 * 6 bytes a pixel), over the daemon at rest (about 100 MB with its models loaded). Complete
 * messages between libzmq and the dispatcher are not counted: the dispatcher takes them as fast
 * as it parses them and refuses what the queue cannot hold. */
static uint64_t memory_worst_case(const emo_config_t *c, unsigned workers) {
        return (uint64_t) c->max_connections * 2 * c->max_message_bytes +
               ((uint64_t) c->queue_capacity + workers) * c->max_message_bytes + (uint64_t) workers * 6 * c->max_pixels +
               (100ull << 20);
}

/* The loop's timers: systemd's watchdog (keep-alives every half period) and STATUS= lines. */
typedef struct timers {
        bool watchdog;
        uint64_t watchdog_usec;
        int64_t next_watchdog, next_status;
} timers_t;

/* Keep-alives vouch for the workers too: one stuck on a request for a whole watchdog period stops
 * them, so systemd restarts a wedged daemon. */
static void feed_watchdog(emo_server_t *s, timers_t *t, int64_t now) {
        const worker_t *stuck = NULL;
        for (unsigned i = 0; i < s->n_workers && !stuck; i++)
                if (s->workers[i].busy && now - s->workers[i].busy_since > (int64_t) t->watchdog_usec)
                        stuck = &s->workers[i];
        if (!stuck)
                sd_notify(0, "WATCHDOG=1");
        else
                log_error("Worker %u has been on one request for %lld ms, withholding the watchdog keep-alive",
                          (unsigned) (stuck - s->workers), (long long) ((now - stuck->busy_since) / 1000));
        t->next_watchdog = now + (int64_t) t->watchdog_usec / 2;
}

/* How long the next zmq_poll may wait, in ms: until the next timer, or the end of the drain. */
static long poll_timeout_ms(const emo_server_t *s, const timers_t *t, int64_t now) {
        int64_t wake = t->next_status;
        if (t->watchdog && t->next_watchdog < wake)
                wake = t->next_watchdog;
        if (s->draining) {
                int64_t end = s->last_request_us + DRAIN_QUIET_US;
                if (s->drain_started_us + DRAIN_MAX_US < end)
                        end = s->drain_started_us + DRAIN_MAX_US;
                if (end < wake)
                        wake = end;
        }
        return wake > now ? (long) ((wake - now) / 1000) + 1 : 0;
}

/* Whether a drain is over: nothing in the workers, and no request for DRAIN_QUIET_US or the drain
 * at its DRAIN_MAX_US. */
static bool drained(const emo_server_t *s, int64_t now) {
        return s->draining && s->n_busy == 0 &&
               (now - s->last_request_us >= DRAIN_QUIET_US || now - s->drain_started_us >= DRAIN_MAX_US);
}

static void handle_signals(emo_server_t *s, int signal_fd) {
        int sig;
        while ((sig = emo_signals_next(signal_fd)) > 0) {
                if (sig == SIGTERM || sig == SIGINT)
                        start_draining(s, strsignal(sig));
                else if (sig == SIGHUP && s->auth) {
                        int n = emo_auth_reload(s->auth);
                        if (n < 0)
                                log_error("Failed to reload clients_dir %s: %s", s->config->clients_dir, strerror(-n));
                        else
                                log_info("Received SIGHUP: %d CURVE client key(s) allowed from %s; connections already "
                                         "open are kept", n, s->config->clients_dir);
                } else
                        log_info("Received %s, ignoring", strsignal(sig));
        }
}

static void set_gauges(emo_server_t *s, int64_t now) {
        if (!s->metrics)
                return;
        emo_metrics_set_gauges(s->metrics, &(emo_metrics_gauges_t) {
                .queue_depth = emo_queue_size(s->queue),
                .queue_capacity = emo_queue_capacity(s->queue),
                .workers = s->n_workers,
                .workers_busy = s->n_busy,
                .connections = emo_connguard_open(s->guard),
                .connections_refused = emo_connguard_refused(s->guard),
                .connections_shed = emo_connguard_shed(s->guard, NULL),
                .smoothed_streams = s->shared.streams ? emo_streams_active(s->shared.streams, now) : 0,
                .stopping = s->draining,
        });
}

static void announce_ready(emo_server_t *s) {
        sd_notifyf(0, "READY=1\nSTATUS=Serving on %s with %u workers", s->endpoints, s->n_workers);
        log_info("Serving on %s with %u workers (%s, %s detector, model %s)", s->endpoints, s->n_workers,
                 emo_device_name(s->shared.device), emo_detector_kind_name(s->shared.detector), s->shared.model->name);
        log_info("At most %u connections; clients can make the daemon take up to about %llu MiB; over "
                 "memory_budget_mb=%llu it closes silent connections (MemoryMax= in emotiond.service must be above "
                 "both)", s->config->max_connections,
                 (unsigned long long) (memory_worst_case(s->config, s->n_workers) >> 20),
                 (unsigned long long) (s->memory_budget >> 20));
}

int emo_server_run(emo_server_t *s, int signal_fd) {
        timers_t t = { .next_status = emo_now_us() + STATUS_INTERVAL_US };
        t.watchdog = sd_watchdog_enabled(0, &t.watchdog_usec) > 0 && t.watchdog_usec > 0;
        unsigned n_items = s->n_workers + 2;
        zmq_pollitem_t items[n_items];
        items[0] = (zmq_pollitem_t) { .socket = zsock_resolve(s->router), .events = ZMQ_POLLIN };
        items[1] = (zmq_pollitem_t) { .fd = signal_fd, .events = ZMQ_POLLIN };
        for (unsigned i = 0; i < s->n_workers; i++)
                items[2 + i] = (zmq_pollitem_t) { .socket = zsock_resolve(zactor_sock(s->workers[i].actor)),
                                                  .events = ZMQ_POLLIN };

        /* The workers and libzmq's threads have started with the signals blocked: from here on this
         * thread takes them when no library thread does (a signal sent during start-up was kept
         * pending and arrives now). */
        emo_signals_unblock();
        announce_ready(s);
        for (;;) {
                int64_t now = emo_now_us();
                if (drained(s, now))
                        break;
                if (t.watchdog && now >= t.next_watchdog)
                        feed_watchdog(s, &t, now);
                if (now >= t.next_status) {
                        notify_status(s);
                        t.next_status = now + STATUS_INTERVAL_US;
                }
                if (zmq_poll(items, (int) n_items, poll_timeout_ms(s, &t, now)) < 0) {
                        if (zmq_errno() == EINTR)
                                continue;
                        log_error("Failed to poll sockets: %s", zmq_strerror(zmq_errno()));
                        return -zmq_errno();
                }
                if (items[1].revents & ZMQ_POLLIN)
                        handle_signals(s, signal_fd);
                for (unsigned i = 0; i < s->n_workers; i++)
                        if (items[2 + i].revents & ZMQ_POLLIN)
                                handle_done(s, &s->workers[i]);
                /* A bounded batch per wake-up keeps worker results flowing under a flood. */
                for (int k = 0; k < 64 && (zsock_events(s->router) & ZMQ_POLLIN); k++)
                        handle_request(s);
                set_gauges(s, now);
        }
        log_info("All requests answered (%llu replies in all), exiting", (unsigned long long) s->served);
        return 0;
}

DEFINE_FREEP(emo_server_t, emo_server_free);

/* The ROUTER's limits: message size, queues, and how long a client may take. */
static void configure_router(zsock_t *router, const emo_config_t *config) {
        /* Hard ceiling: libzmq drops the connection for a larger message. Between the soft limit
         * and this, the client gets IMAGE_TOO_LARGE. */
        uint64_t hard = config->max_message_bytes * 2;
        zsock_set_maxmsgsize(router, hard > INT32_MAX ? INT32_MAX : (int) hard);
        zsock_set_linger(router, 1000);
        zsock_set_rcvhwm(router, 10000);
        zsock_set_sndhwm(router, 10000);
        /* A client must finish the ZMTP handshake within client_timeout_ms, and finish any frame
         * it is sending (or answer the PING) within client_timeout_ms of a heartbeat, sent every
         * half of it: libzmq cancels the heartbeat's timeout only when a whole frame has come in,
         * not on every byte. So a silent or dribbling connection, or one that stalls in the
         * middle of a large message, gives back its slot and its buffer; libzmq clients answer
         * PINGs by themselves, so an idle client stays connected. */
        zsock_set_handshake_ivl(router, (int) config->client_timeout_ms);
        zsock_set_heartbeat_ivl(router, (int) (config->client_timeout_ms / 2));
        zsock_set_heartbeat_timeout(router, (int) config->client_timeout_ms);
}

/* Each connection is a descriptor; keep room for the process's own (models, threads' sockets and
 * pipes, the journal), or libzmq aborts on EMFILE. */
static int check_fd_limit(const emo_config_t *config, unsigned workers, emo_error_t *err) {
        struct rlimit rl;
        uint64_t fds_needed = (uint64_t) config->max_connections + 256 + 16ull * workers;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < fds_needed)
                return emo_error_set(err, -EMFILE,
                                     "max_connections = %u needs about %llu file descriptors, but the limit is "
                                     "%llu: raise LimitNOFILE= (ulimit -n) or lower max_connections",
                                     config->max_connections, (unsigned long long) fds_needed,
                                     (unsigned long long) rl.rlim_cur);
        return 0;
}

static int start_workers(emo_server_t *s, unsigned workers, emo_error_t *err) {
        for (unsigned i = 0; i < workers; i++) {
                int r = emo_pipeline_new(&s->shared, &s->workers[i].pipeline, err);
                if (r < 0)
                        return r;
                s->workers[i].actor = zactor_new(worker_actor, s->workers[i].pipeline);
                if (!s->workers[i].actor)
                        return emo_error_set(err, -ENOMEM, "Failed to start worker thread %u", i);
                s->n_workers++;
        }
        return 0;
}

/* The handler must listen before the first CURVE client arrives: without one, libzmq 4.3 admits
 * every client key. */
static int start_auth(emo_server_t *s, const emo_tcp_security_t *sec, emo_error_t *err) {
        if (!sec || !sec->cert)
                return 0;
        int r = emo_auth_new(s->config->clients_dir, &s->auth);
        if (r < 0)
                return emo_error_set(err, r, "Failed to start the CURVE authenticator: %s", strerror(-r));
        log_info("CURVE on tcp:// endpoints with server key %s; %d client key(s) allowed from %s",
                 zcert_public_txt(sec->cert), emo_auth_count(s->auth), s->config->clients_dir);
        return 0;
}

static int start_metrics(emo_server_t *s, emo_error_t *err) {
        const char *listen_on = s->config->metrics_listen;
        if (!listen_on || !*listen_on)
                return 0;
        s->metrics = emo_metrics_new(&(emo_metrics_info_t) {
                .version = PROJECT_VERSION,
                .model = s->shared.model->name,
                .model_sha256 = s->shared.model->sha256,
                .detector = emo_detector_kind_name(s->shared.detector),
                .device = emo_device_name(s->shared.device),
        });
        if (!s->metrics)
                return emo_error_set(err, -ENOMEM, "Failed to set up the metrics: out of memory");
        return emo_metrics_serve(s->metrics, listen_on, err);
}

int emo_server_new(const emo_config_t *config, const emo_pipeline_shared_t *shared, unsigned workers,
                   const emo_tcp_security_t *sec, emo_server_t **ret, emo_error_t *err) {
        _cleanup_(emo_server_freep) emo_server_t *s = calloc(1, sizeof(*s));
        if (!s)
                return emo_error_set(err, -ENOMEM, "Failed to set up the server: out of memory");
        s->config = config;
        s->shared = *shared;
        s->started_us = emo_now_us();
        s->queue = emo_queue_new(config->queue_capacity);
        s->workers = calloc(workers, sizeof(*s->workers));
        s->n_alloc = workers;
        s->router = zsock_new(ZMQ_ROUTER);
        s->endpoints = config->endpoints ? strdup(config->endpoints) : emo_endpoint_default_bind();
        if (!s->queue || !s->workers || !s->router || !s->endpoints)
                return emo_error_set(err, -ENOMEM, "Failed to set up the server: out of memory");
        configure_router(s->router, config);
        int r = check_fd_limit(config, workers, err);
        if (r < 0)
                return r;
        s->memory_budget = config->memory_budget_mb ? (uint64_t) config->memory_budget_mb << 20
                                                    : memory_worst_case(config, workers);
        if ((r = emo_connguard_new(s->router, config->max_connections, s->memory_budget, &s->guard)) < 0)
                return emo_error_set(err, r, "Failed to watch the socket's connections: %s", zmq_strerror(-r));
        if ((r = start_workers(s, workers, err)) < 0 || (r = start_auth(s, sec, err)) < 0 ||
            (r = emo_listeners_bind(s->router, s->endpoints, sec, &s->listeners, err)) < 0 ||
            (r = start_metrics(s, err)) < 0)
                return r;
        /* From here on the logs and STATUS= name what is served, systemd's sockets included. */
        char *served = strdup(emo_listeners_describe(s->listeners));
        if (!served)
                return emo_error_set(err, -ENOMEM, "Failed to set up the server: out of memory");
        free(s->endpoints);
        s->endpoints = served;
        *ret = TAKE_PTR(s);
        return 0;
}

emo_server_t *emo_server_free(emo_server_t *s) {
        if (!s)
                return NULL;
        for (unsigned i = 0; i < s->n_workers; i++)
                zactor_destroy(&s->workers[i].actor);
        /* Actors have stopped, so their pipelines are ours again. */
        for (unsigned i = 0; s->workers && i < s->n_alloc; i++)
                s->workers[i].pipeline = emo_pipeline_free(s->workers[i].pipeline);
        free(s->workers);
        job_t *job;
        while (s->queue && (job = emo_queue_pop_any(s->queue)))
                job_free(job);
        emo_queue_free(s->queue);
        s->metrics = emo_metrics_free(s->metrics); /* stops its HTTP thread */
        s->guard = emo_connguard_free(s->guard);
        zsock_destroy(&s->router);
        s->auth = emo_auth_free(s->auth);
        s->listeners = emo_listeners_free(s->listeners); /* removes our ipc socket files */
        free(s->endpoints);
        free(s);
        return NULL;
}
