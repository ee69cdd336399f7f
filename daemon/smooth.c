#include "smooth.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct track {
        uint64_t id;
        int x, y, width, height; /* the box it was last seen with */
        unsigned missed;         /* frames in a row without a face */
        unsigned count, head;    /* frames in the ring, next slot to write */
        unsigned cap;            /* frames the ring has room for: grows to the window as frames come */
        float *ring;             /* cap x EMO_EMOTION_COUNT */
} track_t;

/* A new track's ring holds this many frames, and doubles when full, up to the window: memory
 * follows the frames a face was really seen in, not the window asked for (a daemon keeps tracks
 * for many streams, and a window of 1000 would otherwise cost 28 kB per face at once). */
#define RING_FIRST 8

struct emo_smoother {
        unsigned window;
        uint64_t next_id;
        track_t *tracks;
        size_t n_tracks;
};

int emo_smoother_new(unsigned window, emo_smoother_t **ret) {
        if (window < 1 || window > EMO_SMOOTH_MAX_WINDOW)
                return -EINVAL;
        emo_smoother_t *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->window = window;
        s->next_id = 1;
        *ret = s;
        return 0;
}

emo_smoother_t *emo_smoother_free(emo_smoother_t *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_tracks; i++)
                free(s->tracks[i].ring);
        free(s->tracks);
        free(s);
        return NULL;
}

double emo_box_iou(int ax, int ay, int aw, int ah, int bx, int by, int bw, int bh) {
        if (aw <= 0 || ah <= 0 || bw <= 0 || bh <= 0)
                return 0.0;
        int64_t x0 = ax > bx ? ax : bx, y0 = ay > by ? ay : by;
        int64_t x1 = (int64_t) ax + aw < (int64_t) bx + bw ? (int64_t) ax + aw : (int64_t) bx + bw;
        int64_t y1 = (int64_t) ay + ah < (int64_t) by + bh ? (int64_t) ay + ah : (int64_t) by + bh;
        if (x1 <= x0 || y1 <= y0)
                return 0.0;
        double inter = (double) (x1 - x0) * (double) (y1 - y0);
        return inter / ((double) aw * ah + (double) bw * bh - inter);
}

static void track_push(track_t *t, unsigned window, const emo_smooth_face_t *f) {
        memcpy(t->ring + (size_t) t->head * EMO_EMOTION_COUNT, f->probabilities, sizeof(f->probabilities));
        t->head = (t->head + 1) % window;
        if (t->count < window)
                t->count++;
        t->x = f->x;
        t->y = f->y;
        t->width = f->width;
        t->height = f->height;
        t->missed = 0;
}

static void track_result(const track_t *t, emo_smoothed_t *out) {
        *out = (emo_smoothed_t) { .track = t->id, .frames = t->count };
        for (unsigned k = 0; k < t->count; k++)
                for (int c = 0; c < EMO_EMOTION_COUNT; c++)
                        out->probabilities[c] += t->ring[(size_t) k * EMO_EMOTION_COUNT + c];
        for (int c = 0; c < EMO_EMOTION_COUNT; c++) {
                out->probabilities[c] /= (float) t->count;
                if (out->probabilities[c] > out->probabilities[out->emotion])
                        out->emotion = c;
        }
        out->confidence = out->probabilities[out->emotion];
}

static void free_all(bool *a, bool *b, long *c, float **rings, size_t n_rings) {
        for (size_t k = 0; rings && k < n_rings; k++)
                free(rings[k]);
        free(rings);
        free(a);
        free(b);
        free(c);
}

int emo_smoother_update(emo_smoother_t *s, const emo_smooth_face_t *faces, size_t n, emo_smoothed_t *out) {
        size_t nt = s->n_tracks;
        /* Everything that can fail comes first, before the tracks change: room for one new track
         * per face, the matching's bookkeeping, and the new tracks' rings. */
        track_t *grown = realloc(s->tracks, (nt + n ?: 1) * sizeof(track_t));
        if (!grown)
                return -ENOMEM;
        s->tracks = grown;
        bool *face_done = calloc(n + 1, sizeof(bool)), *track_done = calloc(nt + 1, sizeof(bool));
        long *track_of = malloc((n + 1) * sizeof(long));
        if (!face_done || !track_done || !track_of) {
                free_all(face_done, track_done, track_of, NULL, 0);
                return -ENOMEM;
        }
        /* Room for one more frame in every ring that is full but smaller than the window. A ring
         * that grew and then the update failed only holds more room than it needs. */
        for (size_t j = 0; j < nt; j++) {
                track_t *t = &s->tracks[j];
                if (t->count < t->cap || t->cap >= s->window)
                        continue;
                unsigned cap = t->cap * 2 < s->window ? t->cap * 2 : s->window;
                float *ring = realloc(t->ring, (size_t) cap * EMO_EMOTION_COUNT * sizeof(float));
                if (!ring) {
                        free_all(face_done, track_done, track_of, NULL, 0);
                        return -ENOMEM;
                }
                t->ring = ring;
                t->cap = cap;
        }

        /* Greedy matching, best overlap first: n x nt is small (a few faces per frame). */
        for (size_t i = 0; i < n; i++)
                track_of[i] = -1;
        size_t unmatched = n;
        for (;;) {
                double best = 0.0;
                size_t bi = 0, bj = 0;
                for (size_t i = 0; i < n; i++) {
                        if (face_done[i])
                                continue;
                        for (size_t j = 0; j < nt; j++) {
                                if (track_done[j])
                                        continue;
                                const track_t *t = &s->tracks[j];
                                double iou = emo_box_iou(faces[i].x, faces[i].y, faces[i].width, faces[i].height,
                                                         t->x, t->y, t->width, t->height);
                                if (iou > best) {
                                        best = iou;
                                        bi = i;
                                        bj = j;
                                }
                        }
                }
                if (best < EMO_SMOOTH_MIN_IOU)
                        break;
                face_done[bi] = track_done[bj] = true;
                track_of[bi] = (long) bj;
                unmatched--;
        }

        unsigned first = s->window < RING_FIRST ? s->window : RING_FIRST;
        float **rings = calloc(unmatched + 1, sizeof(float *));
        for (size_t k = 0; rings && k < unmatched; k++)
                if (!(rings[k] = malloc((size_t) first * EMO_EMOTION_COUNT * sizeof(float)))) {
                        free_all(face_done, track_done, track_of, rings, k);
                        return -ENOMEM;
                }
        if (!rings) {
                free_all(face_done, track_done, track_of, NULL, 0);
                return -ENOMEM;
        }

        /* Tracks nobody continued age, and end after EMO_SMOOTH_MAX_GAP missed frames. */
        size_t kept = 0;
        for (size_t j = 0; j < nt; j++) {
                if (!track_done[j] && ++s->tracks[j].missed > EMO_SMOOTH_MAX_GAP) {
                        free(s->tracks[j].ring);
                        continue;
                }
                for (size_t i = 0; i < n; i++)
                        if (track_of[i] == (long) j)
                                track_of[i] = (long) kept;
                s->tracks[kept++] = s->tracks[j];
        }
        /* Faces no track continued start one, in face order. */
        size_t fresh = 0;
        for (size_t i = 0; i < n; i++) {
                if (track_of[i] >= 0)
                        continue;
                s->tracks[kept] = (track_t) { .id = s->next_id++, .cap = first, .ring = rings[fresh++] };
                track_of[i] = (long) kept++;
        }
        s->n_tracks = kept;

        for (size_t i = 0; i < n; i++) {
                track_t *t = &s->tracks[track_of[i]];
                track_push(t, s->window, &faces[i]);
                track_result(t, &out[i]);
        }
        free_all(face_done, track_done, track_of, rings, 0);
        return 0;
}
