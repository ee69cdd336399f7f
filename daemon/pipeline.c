#include "pipeline.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/param.h>

#include "emo/labels.h"
#include "emo/util.h"

/* A client's face region may be at most this many times the image's longer side, in each direction. */
#define REGION_MAX_FACTOR 4

struct emo_pipeline {
        emo_pipeline_shared_t shared;
        emo_detector_t *detector;
        emo_classifier_t *classifier;
        /* Per-request scratch, sized for config->max_faces and reused. */
        emo_face_box_t *boxes;
        emo_face_box_t *prev; /* a stream's boxes of its last frame, to follow */
        float (*probs)[EMO_EMOTION_COUNT];
        emo_pb_face_t *faces;
        emo_pb_face_t **face_ptrs;
        emo_pb_box_t *pb_boxes;
        emo_smooth_face_t *smooth_in;
        emo_smoothed_t *smooth_out;
        emo_pb_smoothed_t *pb_smoothed;
        emo_pb_dialogue_t *pb_dialogues; /* Options.dialogue_per_face */
};

emo_pipeline_t *emo_pipeline_free(emo_pipeline_t *p) {
        if (!p)
                return NULL;
        emo_detector_free(p->detector);
        emo_classifier_free(p->classifier);
        free(p->boxes);
        free(p->prev);
        free(p->probs);
        free(p->faces);
        free(p->face_ptrs);
        free(p->pb_boxes);
        free(p->smooth_in);
        free(p->smooth_out);
        free(p->pb_smoothed);
        free(p->pb_dialogues);
        free(p);
        return NULL;
}

/* One pass over a grey VGA frame, so that OpenCV sizes its buffers for a common camera frame now
 * and not during the first client's request (which otherwise took ~0.4 s), and so that a network
 * that loads but cannot run is a startup error. */
static int warm_up(emo_pipeline_t *p, emo_error_t *err) {
        enum { W = 640, H = 480 };
        _cleanup_free_ uint8_t *grey = malloc((size_t) W * H);
        if (!grey)
                return emo_error_set(err, -ENOMEM, "out of memory");
        memset(grey, 128, (size_t) W * H);
        emo_image_t *img = NULL;
        int r = emo_image_from_raw(EMO_PIXEL_GRAY8, grey, (size_t) W * H, W, H, 0, (uint64_t) W * H, &img, err);
        if (r < 0)
                return r;
        size_t n = 0;
        r = emo_detector_detect(p->detector, img, p->boxes, 1, &n, err);
        if (r >= 0) {
                emo_face_box_t box = { W / 2 - 60, H / 2 - 60, 120, 120, 1.0f, 0 };
                r = emo_classifier_classify(p->classifier, img, &box, 1, false, p->probs, err);
        }
        emo_image_free(img);
        return r;
}

DEFINE_FREEP(emo_pipeline_t, emo_pipeline_free);

/* The per-request scratch arrays, each sized for config->max_faces. */
static int alloc_scratch(emo_pipeline_t *p, size_t n) {
        p->boxes = calloc(n, sizeof(*p->boxes));
        p->prev = calloc(n, sizeof(*p->prev));
        p->probs = calloc(n, sizeof(*p->probs));
        p->faces = calloc(n, sizeof(*p->faces));
        p->face_ptrs = calloc(n, sizeof(*p->face_ptrs));
        p->pb_boxes = calloc(n, sizeof(*p->pb_boxes));
        p->smooth_in = calloc(n, sizeof(*p->smooth_in));
        p->smooth_out = calloc(n, sizeof(*p->smooth_out));
        p->pb_smoothed = calloc(n, sizeof(*p->pb_smoothed));
        p->pb_dialogues = calloc(n, sizeof(*p->pb_dialogues));
        if (!p->boxes || !p->prev || !p->probs || !p->faces || !p->face_ptrs || !p->pb_boxes || !p->smooth_in ||
            !p->smooth_out || !p->pb_smoothed || !p->pb_dialogues)
                return -ENOMEM;
        return 0;
}

static int load_detector(emo_pipeline_t *p, emo_error_t *err) {
        emo_error_t verr = { "" };
        const emo_config_t *c = p->shared.config;
        emo_detector_params_t dp = {
                .kind = p->shared.detector,
                .model_path = p->shared.detector_path,
                .score_threshold = (float) c->score_threshold,
                .max_side = c->detect_max_side,
                .min_face = c->min_face,
                .device = p->shared.device,
                .lean_model_path = p->shared.lean_path,
        };
        int r = emo_detector_new(&dp, &p->detector, &verr);
        if (r < 0)
                return emo_error_set(err, r, "Failed to load %s detector %s: %s", emo_detector_kind_name(dp.kind),
                                     dp.model_path, verr.message);
        return 0;
}

static int load_classifier(emo_pipeline_t *p, emo_error_t *err) {
        emo_error_t verr = { "" };
        const emo_model_t *m = p->shared.model;
        emo_classifier_params_t cp = {
                .onnx_path = m->onnx_path,
                .width = m->width,
                .height = m->height,
                .scale = m->scale,
                .mean = m->mean,
                .std = m->std,
                .framing_scale = m->framing_scale,
                .offset_x = m->offset_x,
                .offset_y = m->offset_y,
                .tta_hflip = m->tta_hflip,
                .reweight = m->reweight,
                .device = p->shared.device,
        };
        memcpy(cp.class_weight, m->class_weight, sizeof(cp.class_weight));
        int r = emo_classifier_new(&cp, &p->classifier, &verr);
        if (r < 0)
                return emo_error_set(err, r, "Failed to load model %s: %s", m->onnx_path, verr.message);
        return 0;
}

int emo_pipeline_new(const emo_pipeline_shared_t *shared, emo_pipeline_t **ret, emo_error_t *err) {
        _cleanup_(emo_pipeline_freep) emo_pipeline_t *p = calloc(1, sizeof(*p));
        if (!p)
                return emo_error_set(err, -ENOMEM, "Failed to set up a worker: out of memory");
        p->shared = *shared;
        int r;
        if ((r = alloc_scratch(p, shared->config->max_faces)) < 0)
                return emo_error_set(err, r, "Failed to set up a worker: out of memory");
        if ((r = load_detector(p, err)) < 0 || (r = load_classifier(p, err)) < 0)
                return r;
        emo_error_t verr = { "" };
        if ((r = warm_up(p, &verr)) < 0)
                return emo_error_set(err, r, "The detector or model fails on a test frame: %s", verr.message);
        *ret = TAKE_PTR(p);
        return 0;
}

/* One request on its way through emo_pipeline_analyze's steps. A step returns 0 to go on, or
 * the status of the error reply, its message in why. */
typedef struct analysis {
        const emo_request_t *req;
        const emo_analyze_request_t *a;
        const char *stream;
        /* The options, checked. */
        const char *lang;
        size_t max_faces;
        unsigned smooth;
        /* The image, and the faces in p->boxes (client regions or the detector's). */
        emo_image_t *img;
        unsigned width, height;
        size_t n;
        bool exact;           /* client regions framed already */
        bool detected;        /* the detector ran (else the faces were followed) */
        bool follow;          /* a smoothed stream that may follow its faces between detections */
        const char *detector; /* for the reply: the detector's name, or "client" */
        size_t prominent;     /* the face with the largest box */
        emo_timings_t timings;
        char why[512];
} analysis_t;

__attribute__((format(printf, 3, 4))) static int refuse(analysis_t *an, int status, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(an->why, sizeof(an->why), fmt, ap);
        va_end(ap);
        return status;
}

static int status_of_image_error(int r) {
        switch (r) {
        case -E2BIG:
                return EMO_STATUS_IMAGE_TOO_LARGE;
        case -EBADMSG:
                return EMO_STATUS_DECODE_FAILED;
        case -EINVAL:
                return EMO_STATUS_INVALID_REQUEST;
        default:
                return EMO_STATUS_INTERNAL;
        }
}

static uint32_t us_since(int64_t t) {
        int64_t d = emo_now_us() - t;
        return d < 0 ? 0 : d > UINT32_MAX ? UINT32_MAX : (uint32_t) d;
}

/* The language, the number of faces and the smoothing window the request asks for. */
static int read_options(const emo_pipeline_t *p, analysis_t *an) {
        const emo_config_t *cfg = p->shared.config;
        const emo_analyze_request_t *a = an->a;
        an->lang = cfg->language;
        if (a->options && a->options->language && *a->options->language) {
                an->lang = a->options->language;
                /* Only a short ASCII code is echoed whole; of anything else, a prefix no longer than
                 * one (the reply's message is made valid UTF-8 where that prefix cuts a character). */
                if (!emo_language_valid(an->lang))
                        return refuse(an, EMO_STATUS_INVALID_REQUEST,
                                      "language '%.*s%s' is not a language code (1 to %d ASCII letters, digits, "
                                      "'-' or '_', such as fr or en-GB)",
                                      EMO_LANGUAGE_MAX, an->lang, strlen(an->lang) > EMO_LANGUAGE_MAX ? "..." : "",
                                      EMO_LANGUAGE_MAX);
        }
        if (!emo_dialogue_has_language(p->shared.dialogue, an->lang))
                return refuse(an, EMO_STATUS_INVALID_REQUEST, "language '%s' is not available (have %s)", an->lang,
                              emo_dialogue_languages(p->shared.dialogue));
        an->max_faces = cfg->max_faces;
        if (a->options && a->options->max_faces && a->options->max_faces < an->max_faces)
                an->max_faces = a->options->max_faces;
        an->smooth = a->options ? a->options->smooth_frames : 0;
        if (an->smooth > EMO_SMOOTH_MAX_WINDOW)
                return refuse(an, EMO_STATUS_INVALID_REQUEST, "smooth_frames %u is over the limit of %d", an->smooth,
                              EMO_SMOOTH_MAX_WINDOW);
        return 0;
}

static int decode_image(const emo_pipeline_t *p, analysis_t *an) {
        emo_error_t verr = { "" };
        const emo_config_t *cfg = p->shared.config;
        const emo_pb_image_t *im = an->a->image;
        int r;
        if (!im)
                return refuse(an, EMO_STATUS_INVALID_REQUEST, "analyze request without an image");
        switch (im->format) {
        case EMOTION__V1__IMAGE__FORMAT__ENCODED:
                /* For the detector, a JPEG need not be decoded beyond its input size; the
                 * classifier decodes finer what it needs of small faces. Client regions get the
                 * full image. */
                if (an->a->n_faces == 0)
                        r = emo_image_decode_scaled(im->data.data, im->data.len, cfg->max_pixels,
                                                    emo_detector_input_side(p->detector), &an->img, &verr);
                else
                        r = emo_image_decode(im->data.data, im->data.len, cfg->max_pixels, &an->img, &verr);
                break;
        case EMOTION__V1__IMAGE__FORMAT__GRAY8:
        case EMOTION__V1__IMAGE__FORMAT__BGR24:
        case EMOTION__V1__IMAGE__FORMAT__RGB24:
                r = emo_image_from_raw(im->format == EMOTION__V1__IMAGE__FORMAT__GRAY8   ? EMO_PIXEL_GRAY8
                                       : im->format == EMOTION__V1__IMAGE__FORMAT__BGR24 ? EMO_PIXEL_BGR24
                                                                                         : EMO_PIXEL_RGB24,
                                       im->data.data, im->data.len, im->width, im->height, im->stride,
                                       cfg->max_pixels, &an->img, &verr);
                break;
        default:
                return refuse(an, EMO_STATUS_UNSUPPORTED_FORMAT, "image format %d is not supported", (int) im->format);
        }
        if (r < 0)
                return refuse(an, status_of_image_error(r), "%s", verr.message);
        an->width = emo_image_width(an->img);
        an->height = emo_image_height(an->img);
        return 0;
}

/* The client's face regions, checked against the image, into p->boxes. */
static int take_regions(emo_pipeline_t *p, analysis_t *an) {
        const emo_analyze_request_t *a = an->a;
        if (a->n_faces > an->max_faces)
                return refuse(an, EMO_STATUS_INVALID_REQUEST, "%zu face regions, the limit is %zu", a->n_faces,
                              an->max_faces);
        int64_t longest = an->width > an->height ? an->width : an->height;
        for (size_t i = 0; i < a->n_faces; i++) {
                const emo_pb_box_t *b = a->faces[i];
                if (b->width <= 0 || b->height <= 0 || b->x >= (int64_t) an->width || b->y >= (int64_t) an->height ||
                    (int64_t) b->x + b->width <= 0 || (int64_t) b->y + b->height <= 0)
                        return refuse(an, EMO_STATUS_INVALID_REQUEST,
                                      "face region %zu (%d,%d %dx%d) does not overlap the %ux%u image", i, b->x, b->y,
                                      b->width, b->height, an->width, an->height);
                /* Some margin past the border is fine (a face at the edge); a region many times the
                 * image is a mistake, and its size would reach the arithmetic. */
                if ((int64_t) b->width > REGION_MAX_FACTOR * longest || (int64_t) b->height > REGION_MAX_FACTOR * longest)
                        return refuse(an, EMO_STATUS_INVALID_REQUEST,
                                      "face region %zu (%dx%d) is more than %d times the %ux%u image", i, b->width,
                                      b->height, REGION_MAX_FACTOR, an->width, an->height);
                p->boxes[i] = (emo_face_box_t) { b->x, b->y, b->width, b->height, 1.0f, 0 };
        }
        an->n = a->n_faces;
        an->exact = a->exact_crop;
        an->detector = "client";
        return 0;
}

/* The detector's faces into p->boxes. A smoothed stream runs the detector on every
 * detect_every-th frame and follows its faces in between; a face lost on the way makes it run at
 * once. */
static int find_faces(emo_pipeline_t *p, analysis_t *an) {
        emo_error_t verr = { "" };
        const emo_config_t *cfg = p->shared.config;
        size_t m = 0;
        if (an->follow &&
            emo_streams_track_from(p->shared.streams, an->stream, an->smooth, an->a->sequence, emo_now_us(),
                                   cfg->detect_every, p->prev, an->max_faces, &m) > 0 &&
            (m == 0 || emo_detector_track(p->detector, an->img, p->prev, m, p->boxes) > 0)) {
                an->n = m;
                an->detected = false;
                return 0;
        }
        if (emo_detector_detect(p->detector, an->img, p->boxes, an->max_faces, &an->n, &verr) < 0)
                return refuse(an, EMO_STATUS_INTERNAL, "face detection failed: %s", verr.message);
        return 0;
}

/* The reply's faces (p->faces) from the boxes and probabilities; picks the most prominent face. */
static void fill_faces(emo_pipeline_t *p, analysis_t *an) {
        bool with_probs = an->a->options && an->a->options->include_probabilities;
        an->prominent = 0;
        for (size_t i = 0; i < an->n; i++) {
                emo_pb_face_t *f = &p->faces[i];
                emotion__v1__face__init(f);
                emotion__v1__box__init(&p->pb_boxes[i]);
                emo_face_box_t b = p->boxes[i];
                if (an->a->n_faces == 0) {
                        /* A detector box may reach past the border for a face at the edge; the
                         * classifier used it as is (its crop is padded), the client gets the part
                         * inside the image. Client regions come back as given. */
                        int x1 = MIN(b.x + b.width, (int) an->width), y1 = MIN(b.y + b.height, (int) an->height);
                        b.x = MAX(b.x, 0), b.y = MAX(b.y, 0);
                        b.width = MAX(x1 - b.x, 1), b.height = MAX(y1 - b.y, 1);
                }
                p->pb_boxes[i].x = b.x;
                p->pb_boxes[i].y = b.y;
                p->pb_boxes[i].width = b.width;
                p->pb_boxes[i].height = b.height;
                f->box = &p->pb_boxes[i];
                f->detector_score = p->boxes[i].score;
                f->roll = p->boxes[i].roll;
                int best = 0;
                for (int k = 1; k < EMO_EMOTION_COUNT; k++)
                        if (p->probs[i][k] > p->probs[i][best])
                                best = k;
                f->emotion = best;
                f->confidence = p->probs[i][best];
                f->emoji = (char *) emo_emotion_emoji(best);
                if (with_probs) {
                        f->n_probabilities = EMO_EMOTION_COUNT;
                        f->probabilities = p->probs[i];
                }
                p->face_ptrs[i] = f;
                if ((int64_t) p->boxes[i].width * p->boxes[i].height >
                    (int64_t) p->boxes[an->prominent].width * p->boxes[an->prominent].height)
                        an->prominent = i;
        }
}

/* Smoothing: each face joins its track in this stream (Face.smoothed); the dialogue follows the
 * track. */
static int smooth_faces(emo_pipeline_t *p, analysis_t *an) {
        bool with_probs = an->a->options && an->a->options->include_probabilities;
        for (size_t i = 0; i < an->n; i++) {
                const emo_pb_box_t *b = &p->pb_boxes[i];
                p->smooth_in[i] = (emo_smooth_face_t) { .x = b->x, .y = b->y, .width = b->width, .height = b->height };
                memcpy(p->smooth_in[i].probabilities, p->probs[i], sizeof(p->probs[i]));
        }
        if (emo_streams_smooth(p->shared.streams, an->stream, an->smooth, an->a->sequence, emo_now_us(), p->smooth_in,
                               an->n, p->smooth_out) < 0)
                return refuse(an, EMO_STATUS_INTERNAL, "out of memory while smoothing");
        /* Without memory for them the stream's next frame runs the detector: no harm. */
        if (an->follow)
                (void) emo_streams_keep_boxes(p->shared.streams, an->stream, p->boxes, an->n, an->detected);
        for (size_t i = 0; i < an->n; i++) {
                const emo_smoothed_t *o = &p->smooth_out[i];
                emo_pb_smoothed_t *sm = &p->pb_smoothed[i];
                emotion__v1__smoothed__init(sm);
                sm->track = o->track;
                sm->frames = o->frames;
                sm->emotion = o->emotion;
                sm->confidence = o->confidence;
                sm->emoji = (char *) emo_emotion_emoji(o->emotion);
                if (with_probs) {
                        sm->n_probabilities = EMO_EMOTION_COUNT;
                        sm->probabilities = p->smooth_out[i].probabilities;
                }
                p->faces[i].smoothed = sm;
        }
        return 0;
}

/* The line for face i: for its smoothed emotion when smoothing (held while that emotion holds, a
 * calm moment included, so that a stream's client shows the same words frame after frame), else
 * for this frame's. The
 * language was checked by read_options. */
static void pick_line(emo_pipeline_t *p, const analysis_t *an, size_t i, emo_pb_dialogue_t *d) {
        emotion__v1__dialogue__init(d);
        d->language = (char *) an->lang;
        int e = an->smooth ? p->smooth_out[i].emotion : (int) p->faces[i].emotion;
        emo_dialogue_kind_t kind;
        const char *text;
        if (an->smooth)
                (void) emo_dialogue_pick_held(p->shared.dialogue, an->lang, an->stream, p->smooth_out[i].track, e,
                                              &kind, &text);
        else
                (void) emo_dialogue_pick(p->shared.dialogue, an->lang, an->stream, e, &kind, &text);
        d->kind = (Emotion__V1__Dialogue__Kind) kind;
        d->text = (char *) (text ? text : "");
        d->emotion = e;
        d->face_index = (uint32_t) i;
        d->smoothed = an->smooth > 0;
}

/* The OK reply: the faces, a dialogue line for the most prominent one (and, when asked, for each
 * of the others, picked after it), the model, the timings. */
static zframe_t *pack_reply(emo_pipeline_t *p, analysis_t *an, int64_t received_us) {
        const emo_analyze_request_t *a = an->a;
        emo_pb_dialogue_t dialogue = EMOTION__V1__DIALOGUE__INIT;
        dialogue.language = (char *) an->lang;
        if (an->n > 0) {
                pick_line(p, an, an->prominent, &dialogue);
                if (a->options && a->options->dialogue_per_face)
                        for (size_t i = 0; i < an->n; i++) {
                                if (i == an->prominent)
                                        p->pb_dialogues[i] = dialogue;
                                else
                                        pick_line(p, an, i, &p->pb_dialogues[i]);
                                p->faces[i].dialogue = &p->pb_dialogues[i];
                        }
        }
        emo_model_info_t model = EMOTION__V1__MODEL_INFO__INIT;
        model.name = p->shared.model->name;
        model.sha256 = p->shared.model->sha256;

        emo_analyze_reply_t ar = EMOTION__V1__ANALYZE_REPLY__INIT;
        ar.stream_id = a->stream_id;
        ar.sequence = a->sequence;
        ar.capture_time_us = a->capture_time_us;
        ar.image_width = an->width;
        ar.image_height = an->height;
        ar.n_faces = an->n;
        ar.faces = p->face_ptrs;
        ar.dialogue = &dialogue;
        ar.timings = &an->timings;
        ar.model = &model;
        ar.detector = (char *) an->detector;

        emo_reply_t reply = EMOTION__V1__REPLY__INIT;
        reply.protocol_version = EMO_PROTOCOL_VERSION;
        reply.request_id = an->req->request_id;
        reply.status = EMO_STATUS_OK;
        reply.body_case = EMOTION__V1__REPLY__BODY_ANALYZE;
        reply.analyze = &ar;
        an->timings.total_us = us_since(received_us);
        return emo_reply_pack_frame(&reply);
}

/* The steps, each timed: options, decode, faces, classify, then the reply. */
static int analyze(emo_pipeline_t *p, analysis_t *an, int64_t received_us) {
        emo_error_t verr = { "" };
        int64_t t0 = emo_now_us();
        an->timings.queue_us = (uint32_t) (t0 - received_us);
        int r;
        if ((r = read_options(p, an)) != 0 || (r = decode_image(p, an)) != 0)
                return r;
        int64_t t1 = emo_now_us();
        an->timings.decode_us = (uint32_t) (t1 - t0);

        an->detector = emo_detector_kind_name(p->shared.detector);
        an->detected = true;
        an->follow = an->smooth && p->shared.config->detect_every > 1 && an->a->n_faces == 0;
        if ((r = an->a->n_faces > 0 ? take_regions(p, an) : find_faces(p, an)) != 0)
                return r;
        int64_t t2 = emo_now_us();
        an->timings.detect_us = (uint32_t) (t2 - t1);

        if (an->n > 0 &&
            (r = emo_classifier_classify(p->classifier, an->img, p->boxes, an->n, an->exact, p->probs, &verr)) < 0)
                return refuse(an, r == -EINVAL ? EMO_STATUS_INVALID_REQUEST : EMO_STATUS_INTERNAL,
                              "classification failed: %s", verr.message);
        an->timings.classify_us = (uint32_t) (emo_now_us() - t2);

        fill_faces(p, an);
        return an->smooth ? smooth_faces(p, an) : 0;
}

zframe_t *emo_pipeline_analyze(emo_pipeline_t *p, const emo_request_t *req, const char *stream, int64_t received_us) {
        analysis_t an = {
                .req = req,
                .a = req->analyze,
                .stream = stream,
                .timings = EMOTION__V1__TIMINGS__INIT,
        };
        int status = analyze(p, &an, received_us);
        zframe_t *reply = status ? emo_reply_error_frame(req->request_id, status, an.why)
                                 : pack_reply(p, &an, received_us);
        emo_image_free(an.img);
        return reply;
}
