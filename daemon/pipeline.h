/* The per-request work of a worker: decode -> detect (or take the client's regions) -> crop and
 * classify all faces in one batch -> emoji and dialogue -> packed Reply. Each worker owns one
 * pipeline (its own detector and network); the dialogue state and the streams' face tracks
 * (Options.smooth_frames) are shared. */
#pragma once

#include <czmq.h>
#include <stdint.h>

#include "emo/error.h"
#include "config.h"
#include "dialogue.h"
#include "emo/protocol.h"
#include "model.h"
#include "streams.h"
#include "vision/vision.h"

typedef struct emo_pipeline_shared {
        const emo_config_t *config;
        const emo_model_t *model;
        emo_dialogue_t *dialogue;
        emo_streams_t *streams;         /* face tracks of the streams that ask for smoothing */
        emo_device_t device;            /* resolved */
        emo_detector_kind_t detector;   /* resolved */
        const char *detector_path;
        const char *lean_path;          /* YuNet's lean check: the BlazeFace file, or NULL */
} emo_pipeline_shared_t;

typedef struct emo_pipeline emo_pipeline_t;

/* Load a detector and a network for one worker. -errno with a message in err. */
int emo_pipeline_new(const emo_pipeline_shared_t *shared, emo_pipeline_t **ret, emo_error_t *err);

emo_pipeline_t *emo_pipeline_free(emo_pipeline_t *p);

/* Answer one AnalyzeRequest. Always returns the packed Reply (OK or an error status with its
 * message), NULL only on out-of-memory. received_us is when the daemon got the request
 * (monotonic), for the queue and total timings; stream is the fairness/dialogue key. */
zframe_t *emo_pipeline_analyze(emo_pipeline_t *p, const emo_request_t *req, const char *stream, int64_t received_us);
