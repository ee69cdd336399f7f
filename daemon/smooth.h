/* Per-face smoothing over a stream of analysed frames. One frame's emotion flickers (a blink, a
 * half-turned head, a compression artefact); what a driver-attention monitor or a robot should
 * react to is the expression held over a few frames. The faces of consecutive frames are linked
 * into tracks by the overlap of their boxes, and each track's class probabilities are averaged
 * over its last `window` frames.
 *
 * Linking is greedy by intersection over union: the best-overlapping (face, track) pair first,
 * then the next among those left, as long as the overlap is at least EMO_SMOOTH_MIN_IOU. A face
 * that overlaps no track starts a new one (ids count from 1 and are never reused); a track that
 * no face continues for more than EMO_SMOOTH_MAX_GAP frames in a row ends, so that a missed
 * detection does not restart the average but a face that left does not haunt the next one. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "emo/labels.h"
#include "emo/protocol.h" /* EMO_SMOOTH_MAX_WINDOW */

#define EMO_SMOOTH_MIN_IOU 0.3
#define EMO_SMOOTH_MAX_GAP 2

typedef struct emo_smooth_face {
        int x, y, width, height;              /* the detector's box, in the frame's pixels */
        float probabilities[EMO_EMOTION_COUNT];
} emo_smooth_face_t;

typedef struct emo_smoothed {
        uint64_t track;  /* 1, 2, ...: the same number for the same face across frames */
        unsigned frames; /* frames averaged: 1 for a new track, at most the window */
        float probabilities[EMO_EMOTION_COUNT]; /* mean over those frames */
        int emotion;     /* argmax of the mean (the lower label on a tie) */
        float confidence; /* its mean probability */
} emo_smoothed_t;

typedef struct emo_smoother emo_smoother_t;

/* A smoother averaging over the last `window` frames of each face (1..EMO_SMOOTH_MAX_WINDOW;
 * 1 leaves the probabilities as they are but still numbers the tracks). 0 with *ret, -EINVAL for
 * a window out of range, -ENOMEM. */
int emo_smoother_new(unsigned window, emo_smoother_t **ret);

/* Accepts NULL, returns NULL. */
emo_smoother_t *emo_smoother_free(emo_smoother_t *s);

/* Feed the faces of the next analysed frame (n may be 0: nobody in view) and get, for face i,
 * its track and smoothed result in out[i]. 0, or -ENOMEM (the smoother is then as before). */
int emo_smoother_update(emo_smoother_t *s, const emo_smooth_face_t *faces, size_t n, emo_smoothed_t *out);

/* Intersection over union of two boxes (0 when either is empty). */
double emo_box_iou(int ax, int ay, int aw, int ah, int bx, int by, int bw, int bh);
