#include "output.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "emo/labels.h"
#include "emo/protocol.h"
#include "emo/util.h"

void cli_json_setup(void) {
        json_c_set_serialization_double_format("%.6g", JSON_C_OPTION_GLOBAL);
}

int cli_json_print_line(json_object *o) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s || puts(s) == EOF || fflush(stdout) == EOF)
                return -EIO;
        return 0;
}

void cli_json_add_string(json_object *o, const char *key, const char *value) {
        if (!value || emo_utf8_valid(value)) {
                json_object_object_add(o, key, value ? json_object_new_string(value) : NULL);
                return;
        }
        /* A file name in another encoding (Latin-1 on an old disk): json-c would copy its bytes
         * as they are, which strict JSON parsers refuse; each stray byte becomes U+FFFD. */
        _cleanup_free_ char *repaired = emo_utf8_repair(value, "\xef\xbf\xbd");
        json_object_object_add(o, key, repaired ? json_object_new_string(repaired) : NULL);
}

void cli_json_add_int(json_object *o, const char *key, int64_t value) {
        json_object_object_add(o, key, json_object_new_int64(value));
}

void cli_json_add_uint(json_object *o, const char *key, uint64_t value) {
        json_object_object_add(o, key, json_object_new_uint64(value));
}

json_object *cli_json_new_number(double value) {
        /* json-c writes NaN and Infinity as such, which no JSON parser accepts. */
        return isfinite(value) ? json_object_new_double(value) : NULL;
}

void cli_json_add_double(json_object *o, const char *key, double value) {
        json_object_object_add(o, key, cli_json_new_number(value));
}

const char *cli_emotion_name(int e) {
        return emo_emotion_name(e) ?: "unknown";
}

/* The seven probabilities by class name. */
static json_object *json_probabilities(const float *p) {
        json_object *o = json_object_new_object();
        for (int c = 0; o && c < EMO_EMOTION_COUNT; c++)
                cli_json_add_double(o, emo_emotion_name(c), p[c]);
        return o;
}

/* Face.smoothed (Options.smooth_frames): the face's track and its emotion averaged along it. */
static json_object *json_smoothed(const emo_pb_smoothed_t *sm) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        cli_json_add_string(o, "emotion", cli_emotion_name(sm->emotion));
        cli_json_add_double(o, "confidence", sm->confidence);
        cli_json_add_string(o, "emoji", emo_emotion_emoji(sm->emotion) ?: sm->emoji);
        cli_json_add_uint(o, "frames", sm->frames);
        if (sm->n_probabilities == EMO_EMOTION_COUNT)
                json_object_object_add(o, "probabilities", json_probabilities(sm->probabilities));
        return o;
}

static json_object *json_dialogue(const emo_pb_dialogue_t *d);

static json_object *json_face(const emo_pb_face_t *f) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object *box = json_object_new_array_ext(4);
        if (box && f->box) {
                json_object_array_add(box, json_object_new_int(f->box->x));
                json_object_array_add(box, json_object_new_int(f->box->y));
                json_object_array_add(box, json_object_new_int(f->box->width));
                json_object_array_add(box, json_object_new_int(f->box->height));
        }
        json_object_object_add(o, "box", box);
        cli_json_add_double(o, "score", f->detector_score);
        cli_json_add_double(o, "roll", f->roll);
        cli_json_add_string(o, "emotion", cli_emotion_name(f->emotion));
        cli_json_add_double(o, "confidence", f->confidence);
        cli_json_add_string(o, "emoji", emo_emotion_emoji(f->emotion) ?: f->emoji);
        if (f->n_probabilities == EMO_EMOTION_COUNT)
                json_object_object_add(o, "probabilities", json_probabilities(f->probabilities));
        if (f->smoothed) {
                cli_json_add_uint(o, "track", f->smoothed->track);
                json_object_object_add(o, "smoothed", json_smoothed(f->smoothed));
        }
        if (f->dialogue) /* Options.dialogue_per_face */
                json_object_object_add(o, "dialogue", json_dialogue(f->dialogue));
        return o;
}

static json_object *json_dialogue(const emo_pb_dialogue_t *d) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        int kind = d ? (int) d->kind : EMOTION__V1__DIALOGUE__KIND__NONE;
        cli_json_add_string(o, "kind", emo_dialogue_kind_name(kind));
        cli_json_add_string(o, "text", d ? d->text : "");
        if (d && kind != EMOTION__V1__DIALOGUE__KIND__NONE) {
                cli_json_add_string(o, "emotion", cli_emotion_name(d->emotion));
                cli_json_add_string(o, "language", d->language);
                cli_json_add_uint(o, "face_index", d->face_index);
                json_object_object_add(o, "smoothed", json_object_new_boolean(d->smoothed));
        } else
                json_object_object_add(o, "emotion", NULL);
        return o;
}

void cli_json_add_analyze(json_object *o, const emo_analyze_reply_t *a) {
        cli_json_add_uint(o, "width", a->image_width);
        cli_json_add_uint(o, "height", a->image_height);
        cli_json_add_string(o, "model", a->model ? a->model->name : "");
        cli_json_add_string(o, "model_sha256", a->model ? a->model->sha256 : "");
        cli_json_add_string(o, "detector", a->detector);

        json_object *faces = json_object_new_array_ext((int) a->n_faces);
        for (size_t i = 0; faces && i < a->n_faces; i++)
                json_object_array_add(faces, json_face(a->faces[i]));
        json_object_object_add(o, "faces", faces);

        json_object_object_add(o, "dialogue", json_dialogue(a->dialogue));

        const emo_timings_t *t = a->timings;
        json_object *tj = json_object_new_object();
        if (tj) {
                cli_json_add_uint(tj, "queue", t ? t->queue_us : 0);
                cli_json_add_uint(tj, "decode", t ? t->decode_us : 0);
                cli_json_add_uint(tj, "detect", t ? t->detect_us : 0);
                cli_json_add_uint(tj, "classify", t ? t->classify_us : 0);
                cli_json_add_uint(tj, "total", t ? t->total_us : 0);
        }
        json_object_object_add(o, "timing_us", tj);
}

/* "  WHOdialogue (KIND, EMOTION[, smoothed]): TEXT", or "  WHOdialogue: none". */
static void print_dialogue(const char *who, const emo_pb_dialogue_t *d) {
        if (!d || d->kind == EMOTION__V1__DIALOGUE__KIND__NONE)
                printf("  %sdialogue: none\n", who);
        else
                printf("  %sdialogue (%s, %s%s): %s\n", who, emo_dialogue_kind_name(d->kind),
                       cli_emotion_name(d->emotion), d->smoothed ? ", smoothed" : "", d->text);
}

void cli_print_analyze(const char *name, const emo_analyze_reply_t *a) {
        printf("%s: %ux%u, %zu face%s", name, a->image_width, a->image_height, a->n_faces, a->n_faces == 1 ? "" : "s");
        if (a->timings)
                printf(", %.1f ms", a->timings->total_us / 1000.0);
        putchar('\n');

        for (size_t i = 0; i < a->n_faces; i++) {
                const emo_pb_face_t *f = a->faces[i];
                char box[64] = "?";
                if (f->box)
                        snprintf(box, sizeof(box), "%d,%d %dx%d", f->box->x, f->box->y, f->box->width,
                                 f->box->height);
                printf("  face %zu  box %-18s %-8s %5.1f%%  %s\n", i + 1, box, cli_emotion_name(f->emotion),
                       f->confidence * 100.0, emo_emotion_emoji(f->emotion) ?: f->emoji);
        }
        for (size_t i = 0; i < a->n_faces; i++) {
                const emo_pb_smoothed_t *sm = a->faces[i]->smoothed;
                if (sm)
                        printf("  face %zu  smoothed over %u frame%s (track %llu): %s %.1f%%  %s\n", i + 1, sm->frames,
                               sm->frames == 1 ? "" : "s", (unsigned long long) sm->track,
                               cli_emotion_name(sm->emotion), sm->confidence * 100.0,
                               emo_emotion_emoji(sm->emotion) ?: sm->emoji);
        }

        const emo_pb_dialogue_t *d = a->dialogue;
        if (a->n_faces == 0) {
                printf("  no face found, no dialogue\n");
                return;
        }
        print_dialogue("", d);
        /* Options.dialogue_per_face: what would be said to each of the other faces. */
        for (size_t i = 0; i < a->n_faces; i++) {
                const emo_pb_dialogue_t *fd = a->faces[i]->dialogue;
                if (fd && !(d && i == d->face_index)) {
                        char who[32];
                        snprintf(who, sizeof(who), "face %zu ", i + 1);
                        print_dialogue(who, fd);
                }
        }
}

void cli_progress_init(cli_progress_t *p, const char *label, size_t total) {
        *p = (cli_progress_t) {
                .label = label,
                .total = total,
                .enabled = isatty(STDERR_FILENO),
        };
}

void cli_progress_update(cli_progress_t *p, size_t done) {
        if (!p->enabled || p->total == 0)
                return;
        int64_t now = emo_now_us();
        if (done < p->total && now - p->last_us < 100000)
                return;
        p->last_us = now;
        const int width = 40;
        int filled = (int) (done * width / p->total);
        fprintf(stderr, "\r%s [", p->label);
        for (int i = 0; i < width; i++)
                fputc(i < filled ? '#' : '.', stderr);
        fprintf(stderr, "] %zu/%zu %3d%%", done, p->total, (int) (done * 100 / p->total));
        fflush(stderr);
}

void cli_progress_finish(cli_progress_t *p) {
        if (!p->enabled || p->last_us == 0)
                return;
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->last_us = 0;
}
