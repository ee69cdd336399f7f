/* The emotion model's metadata file (written by models/train's exporter, schema in
 * models/README.md): everything the daemon needs to feed the network exactly as in training.
 * No preprocessing number is written in C; they all come from here. */
#pragma once

#include "emo/error.h"
#include "emo/labels.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct emo_model {
        char *name;
        char *sha256;      /* recorded; checked against the ONNX file at load */
        char *onnx_path;   /* resolved next to the metadata file */
        unsigned width, height;
        double scale, mean, std;
        double framing_scale, offset_x, offset_y;
        bool tta_hflip;
        /* prior_correction (models/README.md): each probability is multiplied by
         * class_weight[k] = training_prior[k]^-power and the seven renormalised, so that the
         * training set's class shares (disgust 1.5 % of FER2013) weigh less in the decision.
         * reweight false: none (class_weight all 1). */
        bool reweight;
        double class_weight[EMO_EMOTION_COUNT];
        double public_test_accuracy; /* as recorded by the exporter; 0 when absent */
} emo_model_t;

/* Parse and check the metadata at path, and verify the ONNX file's sha256. On failure a message
 * is written to err: -ENOENT (missing file), -EINVAL (bad metadata), -EBADMSG (checksum
 * mismatch). On success *ret is filled; release with emo_model_done. */
int emo_model_load(const char *path, emo_model_t *ret, emo_error_t *err);

void emo_model_done(emo_model_t *m);

/* sha256 of a file as 64 lower-case hex digits into hex[65]. -errno. */
int emo_sha256_file(const char *path, char hex[65]);
