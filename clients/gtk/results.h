/* The results model of the GTK client: one analysed image as the window shows it, made from an
 * AnalyzeReply, and the questions the window asks of it (which face is under the pointer, which
 * face is the most prominent). Plain C, no widgets: tested without a display. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "emo/labels.h"
#include "emo/protocol.h"

typedef struct emo_gtk_face {
        int x, y, width, height; /* in the pixels of the analysed image */
        int emotion;             /* emo_emotion_t: the smoothed one when the daemon smoothed */
        float confidence;
        float probabilities[EMO_EMOTION_COUNT];
        bool has_probabilities;  /* the reply carried all seven */
        char emoji[16];          /* UTF-8 */
        /* The daemon's line for this face (Options.dialogue_per_face); line_text NULL when it
         * sent none (a daemon older than the option). */
        int line_kind;           /* as dialogue_kind below */
        int line_emotion;
        char *line_text;
} emo_gtk_face_t;

typedef struct emo_gtk_results {
        unsigned image_width, image_height; /* as the daemon decoded the image */
        size_t n_faces;
        emo_gtk_face_t *faces; /* largest first, as the daemon sent them */
        /* The daemon's line for the frame, addressed to faces[dialogue_face]. */
        int dialogue_kind;     /* Emotion__V1__Dialogue__Kind: 0 none, 1 question, 2 congratulation */
        int dialogue_emotion;
        size_t dialogue_face;
        char *dialogue_text;   /* never NULL; "" when there is nothing to say */
        char *model;           /* model name, never NULL */
        char *detector;        /* never NULL */
        double total_ms;       /* the daemon's time for the request, queue included */
} emo_gtk_results_t;

/* Turn a reply into results. 0 with *ret owned by the caller; -EBADMSG when the reply is not an
 * OK analysis (the caller shows its status and message instead); -EPROTO when the analysis does
 * not hold together (an emotion out of range, a dialogue face that does not exist, no image
 * size); -ENOMEM. */
int emo_gtk_results_from_reply(const emo_reply_t *reply, emo_gtk_results_t **ret);

/* Accepts NULL, returns NULL. */
emo_gtk_results_t *emo_gtk_results_free(emo_gtk_results_t *r);

/* The face whose box contains the image point (x, y), the smallest one when boxes overlap (a
 * small face in front of a big one must stay reachable); -1 when none. */
ssize_t emo_gtk_results_face_at(const emo_gtk_results_t *r, double x, double y);

/* The face of r that is the one in box (x, y, width, height, a face of an earlier frame of the
 * same stream): the one overlapping it most, by at least EMO_GTK_FOLLOW_MIN_IOU of their union;
 * -1 when none does (the face left, or moved too far between two analyses). */
#define EMO_GTK_FOLLOW_MIN_IOU 0.3
ssize_t emo_gtk_results_follow(const emo_gtk_results_t *r, int x, int y, int width, int height);

/* The face the dialogue speaks to: the daemon's dialogue face, else the largest box (the first
 * on a tie); -1 when there is no face. */
ssize_t emo_gtk_results_prominent(const emo_gtk_results_t *r);

/* What the window says, and to which face: the selected face's own line when the daemon sent
 * one, else the frame's line for its prominent face (the selection -1 or without a line of its
 * own). face is -1 when there is no face; kind 0 (nothing to say) leaves text "". */
typedef struct emo_gtk_speech {
        ssize_t face;
        int kind;
        int emotion; /* what the line reacts to; the face's emotion when kind is 0 */
        const char *text; /* owned by the results */
} emo_gtk_speech_t;

emo_gtk_speech_t emo_gtk_results_speech(const emo_gtk_results_t *r, ssize_t selected);

/* How an image of iw x ih pixels is shown in a view of vw x vh: scaled to fit whole, aspect
 * kept, centred. Widget = image * scale + offset. */
typedef struct emo_gtk_fit {
        double scale, offset_x, offset_y;
} emo_gtk_fit_t;

emo_gtk_fit_t emo_gtk_fit(double iw, double ih, double vw, double vh);

/* A point of the view as a point of the image. */
void emo_gtk_fit_to_image(const emo_gtk_fit_t *f, double vx, double vy, double *ret_x, double *ret_y);
