/* Fuzz target: one client message, as the daemon handles it. The bytes are a Request frame,
 * decoded with the daemon's bounded decoder (emo_request_unpack); an AnalyzeRequest then goes
 * through a worker's whole pipeline (emo_pipeline_analyze: options, decoding or raw pixels, the
 * client's face regions or the detector, cropping and the network, smoothing, dialogue, the
 * packed reply) with the shipped model, YuNet (Haar when YuNet is missing) and the shipped
 * dialogue lines. EMO_FUZZ_VERBOSE=1 prints the status of each reply.
 *
 * The server's own checks before the pipeline (protocol_version, the image's presence, stream_id's
 * length and UTF-8) sit in its receive loop, which needs a socket; this target skips them and
 * hands the pipeline every analyze request, a superset of what the server lets through. Smoothing
 * and dialogue state carry over from one input to the next, as in the daemon.
 *
 * Oracles, besides the sanitizers: the pipeline always answers (NULL is out-of-memory only), the
 * reply decodes, echoes the request_id and has a known status, an OK reply has its body and at most
 * max_faces faces, and every string of the reply is valid UTF-8 when the request's stream_id is
 * (the one string of the request the server checks, and the pipeline echoes). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dialogue.h"
#include "emo/protocol.h"
#include "emo/util.h"
#include "model.h"
#include "pipeline.h"
#include "streams.h"
#include "vision/vision.h"

#define MAX_PIXELS 4000000
#define MAX_FACES 8

static emo_config_t config;
static emo_model_t model;
static emo_pipeline_shared_t shared;
static emo_pipeline_t *pipeline;
static bool verbose; /* EMO_FUZZ_VERBOSE: print each reply's status, to see what an input does */

static const char *setting(const char *env, const char *fallback) {
        const char *v = getenv(env);
        return v && *v ? v : fallback;
}

static void die(const char *what, const char *why) {
        fprintf(stderr, "fuzz_request: %s: %s\n", what, why);
        exit(1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc, (void) argv;
        emo_error_t err = { "" };
        if (emo_config_init(&config) < 0)
                die("configuration", "out of memory");
        /* Small limits, so that one input costs milliseconds (the checks are the same at any limit). */
        config.max_pixels = MAX_PIXELS;
        config.max_faces = MAX_FACES;
        emo_vision_init(1);
        verbose = getenv("EMO_FUZZ_VERBOSE");
        const char *path = setting("EMO_FUZZ_MODEL", EMO_FUZZ_MODEL);
        if (emo_model_load(path, &model, &err) < 0)
                die("model", err.message);
        emo_dialogue_t *dialogue = NULL;
        if (emo_dialogue_load(setting("EMO_FUZZ_DIALOGUE", EMO_FUZZ_DIALOGUE), &dialogue, &err) < 0)
                die("dialogue", err.message);
        emo_streams_t *streams = NULL;
        int r = emo_streams_new(EMO_STREAMS_DEFAULT_CAPACITY, &streams);
        if (r < 0)
                die("streams", strerror(-r));
        shared = (emo_pipeline_shared_t) {
                .config = &config,
                .model = &model,
                .dialogue = dialogue,
                .streams = streams,
                .device = EMO_DEVICE_CPU,
                .detector = EMO_DETECTOR_YUNET,
                .detector_path = setting("EMO_FUZZ_YUNET", EMO_FUZZ_YUNET),
        };
        if (access(shared.detector_path, R_OK) < 0) {
                shared.detector = EMO_DETECTOR_HAAR;
                shared.detector_path = setting("EMO_FUZZ_HAAR", EMO_FUZZ_HAAR);
        }
        if (emo_pipeline_new(&shared, &pipeline, &err) < 0)
                die("pipeline", err.message);
        fprintf(stderr, "fuzz_request: model %s, %s detector %s\n", model.name, emo_detector_kind_name(shared.detector),
                shared.detector_path);
        return 0;
}

static void check(bool ok, const char *what) {
        if (!ok) {
                fprintf(stderr, "fuzz_request: %s\n", what);
                abort();
        }
}

static void check_reply(const emo_request_t *req, zframe_t *frame) {
        check(frame, "emo_pipeline_analyze returned no reply");
        emo_reply_t *reply = NULL;
        check(emo_reply_unpack(zframe_data(frame), zframe_size(frame), &reply) == 0, "reply does not decode");
        if (verbose)
                fprintf(stderr, "fuzz_request: %s: %s (%zu faces)\n", emo_status_name(reply->status),
                        reply->message ? reply->message : "", reply->analyze ? reply->analyze->n_faces : 0);
        check(reply->request_id == req->request_id, "reply does not echo the request_id");
        check(reply->status > EMOTION__V1__STATUS__STATUS_UNSPECIFIED && reply->status <= EMO_STATUS_INTERNAL,
              "reply has an unknown status");
        const emo_analyze_reply_t *a = reply->analyze;
        if (reply->status == EMO_STATUS_OK) {
                check(reply->body_case == EMOTION__V1__REPLY__BODY_ANALYZE && a && a->dialogue,
                      "OK reply without its body");
                check(a->n_faces <= MAX_FACES, "more faces than max_faces");
        } else
                check(reply->message && *reply->message, "error reply without a message");
        const char *stream_id = req->analyze->stream_id ? req->analyze->stream_id : "";
        if (emo_utf8_valid(stream_id)) {
                check(emo_utf8_valid(reply->message ? reply->message : ""), "reply message is not UTF-8");
                if (a) {
                        check(emo_utf8_valid(a->stream_id) && emo_utf8_valid(a->detector) &&
                                      emo_utf8_valid(a->dialogue->text) && emo_utf8_valid(a->dialogue->language),
                              "reply string is not UTF-8");
                        for (size_t i = 0; i < a->n_faces; i++)
                                check(emo_utf8_valid(a->faces[i]->emoji), "emoji is not UTF-8");
                }
        }
        emo_reply_free(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        emo_request_t *req = NULL;
        int r = emo_request_unpack(data, size, &req);
        if (r < 0) {
                check(r == -EPROTO || r == -E2BIG, "emo_request_unpack: unexpected error");
                return 0;
        }
        if (req->body_case == EMOTION__V1__REQUEST__BODY_ANALYZE) {
                /* The server's stream key (server.c, stream_key). */
                char *stream = NULL;
                const char *id = req->analyze->stream_id;
                if (asprintf(&stream, id && *id ? "s:%s" : "c:%s", id && *id ? id : "0011223344") < 0)
                        abort();
                zframe_t *reply = emo_pipeline_analyze(pipeline, req, stream, emo_now_us());
                check_reply(req, reply);
                zframe_destroy(&reply);
                free(stream);
        }
        emo_request_free(req);
        return 0;
}
