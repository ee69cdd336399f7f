#include "results.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_empty(const char *s) {
        return strdup(s ? s : "");
}

int emo_gtk_results_from_reply(const emo_reply_t *reply, emo_gtk_results_t **ret) {
        if (!reply || reply->status != (emo_status_t) EMO_STATUS_OK ||
            reply->body_case != EMOTION__V1__REPLY__BODY_ANALYZE || !reply->analyze)
                return -EBADMSG;
        const emo_analyze_reply_t *ar = reply->analyze;
        if (ar->image_width == 0 || ar->image_height == 0)
                return -EPROTO;

        emo_gtk_results_t *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->image_width = ar->image_width;
        r->image_height = ar->image_height;
        r->model = dup_or_empty(ar->model ? ar->model->name : NULL);
        r->detector = dup_or_empty(ar->detector);
        r->total_ms = ar->timings ? ar->timings->total_us / 1000.0 : 0.0;
        const emo_pb_dialogue_t *d = ar->dialogue;
        r->dialogue_text = dup_or_empty(d ? d->text : NULL);
        if (!r->model || !r->detector || !r->dialogue_text)
                goto nomem;
        r->dialogue_kind = d ? (int) d->kind : 0;
        r->dialogue_emotion = d ? (int) d->emotion : EMO_NEUTRAL;
        r->dialogue_face = d ? d->face_index : 0;

        if (ar->n_faces > 0) {
                r->faces = calloc(ar->n_faces, sizeof(emo_gtk_face_t));
                if (!r->faces)
                        goto nomem;
                r->n_faces = ar->n_faces; /* for emo_gtk_results_free on the way out */
        }
        for (size_t i = 0; i < ar->n_faces; i++) {
                const emo_pb_face_t *pf = ar->faces[i];
                emo_gtk_face_t *f = &r->faces[i];
                if (!pf || !pf->box)
                        goto proto;
                *f = (emo_gtk_face_t) { .x = pf->box->x, .y = pf->box->y, .width = pf->box->width,
                                        .height = pf->box->height };
                /* With smoothing the window shows what the daemon's dialogue reacts to: the
                 * face's average over its last frames, not this frame's flicker. */
                const emo_pb_smoothed_t *s = pf->smoothed;
                int emotion = s ? (int) s->emotion : (int) pf->emotion;
                const char *emoji = s ? s->emoji : pf->emoji;
                size_t n_p = s ? s->n_probabilities : pf->n_probabilities;
                const float *p = s ? s->probabilities : pf->probabilities;
                if (!emo_emotion_name(emotion))
                        goto proto;
                f->emotion = emotion;
                f->confidence = s ? s->confidence : pf->confidence;
                if (n_p == EMO_EMOTION_COUNT) {
                        memcpy(f->probabilities, p, sizeof(f->probabilities));
                        f->has_probabilities = true;
                } else {
                        f->probabilities[emotion] = f->confidence;
                }
                /* Our own table when the daemon's emoji is missing or would not fit. */
                if (!emoji || !*emoji || strlen(emoji) >= sizeof(f->emoji))
                        emoji = emo_emotion_emoji(emotion);
                snprintf(f->emoji, sizeof(f->emoji), "%s", emoji);
                const emo_pb_dialogue_t *line = pf->dialogue;
                if (line) {
                        if (line->kind != 0 && !emo_emotion_name((int) line->emotion))
                                goto proto;
                        f->line_kind = (int) line->kind;
                        f->line_emotion = line->kind != 0 ? (int) line->emotion : emotion;
                        if (!(f->line_text = dup_or_empty(line->text)))
                                goto nomem;
                }
        }
        if (r->n_faces > 0 && r->dialogue_kind != 0 && r->dialogue_face >= r->n_faces)
                goto proto;
        if (r->dialogue_kind != 0 && !emo_emotion_name(r->dialogue_emotion))
                goto proto;
        *ret = r;
        return 0;
proto:
        emo_gtk_results_free(r);
        return -EPROTO;
nomem:
        emo_gtk_results_free(r);
        return -ENOMEM;
}

emo_gtk_results_t *emo_gtk_results_free(emo_gtk_results_t *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; r->faces && i < r->n_faces; i++)
                free(r->faces[i].line_text);
        free(r->faces);
        free(r->dialogue_text);
        free(r->model);
        free(r->detector);
        free(r);
        return NULL;
}

ssize_t emo_gtk_results_face_at(const emo_gtk_results_t *r, double x, double y) {
        ssize_t best = -1;
        double best_area = 0;
        for (size_t i = 0; r && i < r->n_faces; i++) {
                const emo_gtk_face_t *f = &r->faces[i];
                if (x < f->x || y < f->y || x >= (double) f->x + f->width || y >= (double) f->y + f->height)
                        continue;
                double area = (double) f->width * f->height;
                if (best < 0 || area < best_area) {
                        best = (ssize_t) i;
                        best_area = area;
                }
        }
        return best;
}

#define MIN_OF(a, b) ((a) < (b) ? (a) : (b))
#define MAX_OF(a, b) ((a) > (b) ? (a) : (b))

/* The overlap of box (x, y, width, height) with face f's, as a share of their union. */
static double box_iou(int x, int y, int width, int height, const emo_gtk_face_t *f) {
        /* 64 bits: a reply's boxes are whatever the daemon sent. */
        int64_t ix = MIN_OF((int64_t) x + width, (int64_t) f->x + f->width) - MAX_OF(x, f->x);
        int64_t iy = MIN_OF((int64_t) y + height, (int64_t) f->y + f->height) - MAX_OF(y, f->y);
        if (ix <= 0 || iy <= 0)
                return 0;
        double inter = (double) ix * iy;
        return inter / ((double) width * height + (double) f->width * f->height - inter);
}

ssize_t emo_gtk_results_follow(const emo_gtk_results_t *r, int x, int y, int width, int height) {
        ssize_t best = -1;
        double best_iou = EMO_GTK_FOLLOW_MIN_IOU;
        for (size_t i = 0; r && i < r->n_faces; i++) {
                double iou = box_iou(x, y, width, height, &r->faces[i]);
                if (iou >= best_iou) {
                        best = (ssize_t) i;
                        best_iou = iou;
                }
        }
        return best;
}

ssize_t emo_gtk_results_prominent(const emo_gtk_results_t *r) {
        if (!r || r->n_faces == 0)
                return -1;
        if (r->dialogue_kind != 0 && r->dialogue_face < r->n_faces)
                return (ssize_t) r->dialogue_face;
        ssize_t best = 0;
        for (size_t i = 1; i < r->n_faces; i++)
                if ((double) r->faces[i].width * r->faces[i].height >
                    (double) r->faces[best].width * r->faces[best].height)
                        best = (ssize_t) i;
        return best;
}

emo_gtk_speech_t emo_gtk_results_speech(const emo_gtk_results_t *r, ssize_t selected) {
        if (r && selected >= 0 && (size_t) selected < r->n_faces && r->faces[selected].line_text) {
                const emo_gtk_face_t *f = &r->faces[selected];
                return (emo_gtk_speech_t) { .face = selected, .kind = f->line_kind, .emotion = f->line_emotion,
                                            .text = f->line_text };
        }
        ssize_t main_face = emo_gtk_results_prominent(r);
        if (main_face < 0)
                return (emo_gtk_speech_t) { .face = -1, .emotion = EMO_NEUTRAL, .text = "" };
        return (emo_gtk_speech_t) { .face = main_face, .kind = r->dialogue_kind,
                                    .emotion = r->dialogue_kind != 0 ? r->dialogue_emotion : r->faces[main_face].emotion,
                                    .text = r->dialogue_text };
}

emo_gtk_fit_t emo_gtk_fit(double iw, double ih, double vw, double vh) {
        if (iw <= 0 || ih <= 0 || vw <= 0 || vh <= 0)
                return (emo_gtk_fit_t) { .scale = 1.0 };
        double s = vw / iw < vh / ih ? vw / iw : vh / ih;
        return (emo_gtk_fit_t) { .scale = s, .offset_x = (vw - iw * s) / 2, .offset_y = (vh - ih * s) / 2 };
}

void emo_gtk_fit_to_image(const emo_gtk_fit_t *f, double vx, double vy, double *ret_x, double *ret_y) {
        *ret_x = (vx - f->offset_x) / f->scale;
        *ret_y = (vy - f->offset_y) / f->scale;
}
