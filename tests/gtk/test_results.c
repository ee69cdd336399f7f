/* The GTK client's results model without a display: an AnalyzeReply as the window shows it, the
 * face under a click, and the face the dialogue speaks to. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "results.h"

/* A reply with n faces (boxes given as x, y, w, h) and their emotions; probabilities put most of
 * the mass on the emotion. The dialogue speaks to face dialogue_face with kind. */
typedef struct fake_reply {
        emo_reply_t reply;
        emo_analyze_reply_t analyze;
        emo_pb_face_t faces[4];
        emo_pb_face_t *face_ptrs[4];
        emo_pb_box_t boxes[4];
        float probs[4][7];
        emo_pb_dialogue_t dialogue;
        emo_pb_dialogue_t lines[4]; /* each face's own line (Options.dialogue_per_face), when given */
        emo_timings_t timings;
        emo_model_info_t model;
} fake_reply_t;

static void fake(fake_reply_t *f, size_t n, const int (*boxes)[4], const int *emotions, int dialogue_kind,
                 unsigned dialogue_face) {
        memset(f, 0, sizeof(*f));
        f->reply = (emo_reply_t) EMOTION__V1__REPLY__INIT;
        f->analyze = (emo_analyze_reply_t) EMOTION__V1__ANALYZE_REPLY__INIT;
        f->reply.status = EMO_STATUS_OK;
        f->reply.body_case = EMOTION__V1__REPLY__BODY_ANALYZE;
        f->reply.analyze = &f->analyze;
        f->analyze.image_width = 640;
        f->analyze.image_height = 480;
        f->analyze.detector = "yunet";
        f->model = (emo_model_info_t) EMOTION__V1__MODEL_INFO__INIT;
        f->model.name = "emonet-xs";
        f->analyze.model = &f->model;
        f->timings = (emo_timings_t) EMOTION__V1__TIMINGS__INIT;
        f->timings.total_us = 12500;
        f->analyze.timings = &f->timings;
        for (size_t i = 0; i < n; i++) {
                f->boxes[i] = (emo_pb_box_t) EMOTION__V1__BOX__INIT;
                f->boxes[i].x = boxes[i][0];
                f->boxes[i].y = boxes[i][1];
                f->boxes[i].width = boxes[i][2];
                f->boxes[i].height = boxes[i][3];
                f->faces[i] = (emo_pb_face_t) EMOTION__V1__FACE__INIT;
                f->faces[i].box = &f->boxes[i];
                for (int e = 0; e < 7; e++)
                        f->probs[i][e] = e == emotions[i] ? 0.7f : 0.05f;
                f->faces[i].probabilities = f->probs[i];
                f->faces[i].n_probabilities = 7;
                f->faces[i].emotion = emotions[i];
                f->faces[i].confidence = 0.7f;
                f->faces[i].emoji = (char *) emo_emotion_emoji(emotions[i]);
                f->face_ptrs[i] = &f->faces[i];
        }
        f->analyze.faces = f->face_ptrs;
        f->analyze.n_faces = n;
        f->dialogue = (emo_pb_dialogue_t) EMOTION__V1__DIALOGUE__INIT;
        f->dialogue.kind = dialogue_kind;
        f->dialogue.text = dialogue_kind ? "Why are you sad?" : "";
        f->dialogue.face_index = dialogue_face;
        f->dialogue.emotion = n > dialogue_face ? emotions[dialogue_face] : 0;
        f->analyze.dialogue = &f->dialogue;
}

static const int two_boxes[][4] = { { 100, 80, 200, 220 }, { 400, 100, 120, 130 } };

Test(results, reply_becomes_the_model) {
        fake_reply_t f;
        fake(&f, 2, two_boxes, (const int[]) { EMO_SAD, EMO_HAPPY }, 1, 0);
        emo_gtk_results_t *r = NULL;
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        cr_assert_eq(r->image_width, 640);
        cr_assert_eq(r->n_faces, 2);
        cr_assert_eq(r->faces[1].x, 400);
        cr_assert_eq(r->faces[1].height, 130);
        cr_assert_eq(r->faces[0].emotion, EMO_SAD);
        cr_assert(r->faces[0].has_probabilities);
        cr_assert_float_eq(r->faces[0].probabilities[EMO_SAD], 0.7f, 1e-6);
        cr_assert_str_eq(r->faces[1].emoji, emo_emotion_emoji(EMO_HAPPY));
        cr_assert_eq(r->dialogue_kind, 1);
        cr_assert_str_eq(r->dialogue_text, "Why are you sad?");
        cr_assert_str_eq(r->model, "emonet-xs");
        cr_assert_str_eq(r->detector, "yunet");
        cr_assert_float_eq(r->total_ms, 12.5, 1e-9);
        emo_gtk_results_free(r);
}

Test(results, error_status_is_not_an_analysis) {
        fake_reply_t f;
        fake(&f, 0, NULL, NULL, 0, 0);
        f.reply.status = EMO_STATUS_DECODE_FAILED;
        f.reply.body_case = EMOTION__V1__REPLY__BODY__NOT_SET;
        emo_gtk_results_t *r = NULL;
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), -EBADMSG);
        cr_assert_null(r);
        cr_assert_eq(emo_gtk_results_from_reply(NULL, &r), -EBADMSG);
}

Test(results, inconsistent_replies_are_refused) {
        fake_reply_t f;
        emo_gtk_results_t *r = NULL;
        fake(&f, 2, two_boxes, (const int[]) { EMO_SAD, EMO_HAPPY }, 1, 0);
        f.faces[1].emotion = 9; /* no such emotion */
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), -EPROTO);
        fake(&f, 2, two_boxes, (const int[]) { EMO_SAD, EMO_HAPPY }, 1, 5); /* speaks to face 6 of 2 */
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), -EPROTO);
        fake(&f, 2, two_boxes, (const int[]) { EMO_SAD, EMO_HAPPY }, 0, 0);
        f.faces[0].box = NULL;
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), -EPROTO);
        fake(&f, 0, NULL, NULL, 0, 0);
        f.analyze.image_width = 0;
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), -EPROTO);
        cr_assert_null(r);
}

Test(results, smoothed_emotion_is_what_is_shown) {
        fake_reply_t f;
        fake(&f, 1, two_boxes, (const int[]) { EMO_SAD }, 0, 0);
        float avg[7] = { 0.1f, 0, 0, 0.6f, 0.1f, 0.1f, 0.1f };
        emo_pb_smoothed_t s = EMOTION__V1__SMOOTHED__INIT;
        s.emotion = (Emotion__V1__Emotion) EMO_HAPPY;
        s.confidence = 0.6f;
        s.emoji = "😄";
        s.probabilities = avg;
        s.n_probabilities = 7;
        f.faces[0].smoothed = &s;
        emo_gtk_results_t *r = NULL;
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        cr_assert_eq(r->faces[0].emotion, EMO_HAPPY);
        cr_assert_float_eq(r->faces[0].probabilities[EMO_HAPPY], 0.6f, 1e-6);
        cr_assert_str_eq(r->faces[0].emoji, "😄");
        emo_gtk_results_free(r);
}

Test(results, missing_emoji_and_probabilities_are_filled) {
        fake_reply_t f;
        fake(&f, 1, two_boxes, (const int[]) { EMO_FEAR }, 0, 0);
        f.faces[0].emoji = "";
        f.faces[0].n_probabilities = 0;
        emo_gtk_results_t *r = NULL;
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        cr_assert_str_eq(r->faces[0].emoji, emo_emotion_emoji(EMO_FEAR));
        cr_assert_not(r->faces[0].has_probabilities);
        cr_assert_float_eq(r->faces[0].probabilities[EMO_FEAR], 0.7f, 1e-6);
        emo_gtk_results_free(r);
}

Test(results, click_picks_the_smallest_face_under_it) {
        /* A small face in front of a big one: both contain (420, 150). */
        static const int boxes[][4] = { { 300, 50, 300, 300 }, { 400, 120, 60, 60 }, { 20, 20, 50, 50 } };
        fake_reply_t f;
        fake(&f, 3, boxes, (const int[]) { EMO_HAPPY, EMO_SAD, EMO_ANGRY }, 0, 0);
        emo_gtk_results_t *r = NULL;
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        cr_assert_eq(emo_gtk_results_face_at(r, 420, 150), 1);
        cr_assert_eq(emo_gtk_results_face_at(r, 310, 60), 0);
        cr_assert_eq(emo_gtk_results_face_at(r, 20, 20), 2);   /* the top-left corner is inside */
        cr_assert_eq(emo_gtk_results_face_at(r, 70, 70), -1);  /* x + width is outside */
        cr_assert_eq(emo_gtk_results_face_at(r, 200, 400), -1);
        cr_assert_eq(emo_gtk_results_face_at(NULL, 1, 1), -1);
        emo_gtk_results_free(r);
}

Test(results, click_in_a_scaled_view_maps_to_the_image) {
        /* 640x480 shown in 1000x500: scale 500/480, centred with bars left and right. */
        emo_gtk_fit_t fit = emo_gtk_fit(640, 480, 1000, 500);
        cr_assert_float_eq(fit.scale, 500.0 / 480.0, 1e-9);
        cr_assert_float_eq(fit.offset_x, (1000 - 640 * 500.0 / 480.0) / 2, 1e-9);
        cr_assert_float_eq(fit.offset_y, 0, 1e-9);
        fake_reply_t f;
        fake(&f, 2, two_boxes, (const int[]) { EMO_SAD, EMO_HAPPY }, 0, 0);
        emo_gtk_results_t *r = NULL;
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        /* The centre of face 1 (460, 165) on screen. */
        double vx = fit.offset_x + 460 * fit.scale, vy = fit.offset_y + 165 * fit.scale;
        double ix, iy;
        emo_gtk_fit_to_image(&fit, vx, vy, &ix, &iy);
        cr_assert_float_eq(ix, 460, 1e-9);
        cr_assert_eq(emo_gtk_results_face_at(r, ix, iy), 1);
        /* A click on the bar left of the image is no face, even at a face's height. */
        emo_gtk_fit_to_image(&fit, 10, 100 * fit.scale, &ix, &iy);
        cr_assert_lt(ix, 0);
        cr_assert_eq(emo_gtk_results_face_at(r, ix, iy), -1);
        /* A view taller than wide: bars above and below. */
        emo_gtk_fit_t tall = emo_gtk_fit(640, 480, 320, 800);
        cr_assert_float_eq(tall.scale, 0.5, 1e-9);
        cr_assert_float_eq(tall.offset_y, (800 - 240) / 2.0, 1e-9);
        emo_gtk_results_free(r);
}

Test(results, a_face_is_followed_to_the_next_frame) {
        /* Two people; in the next frame both moved a little and a third came in. */
        static const int next[][4] = { { 330, 60, 300, 300 }, { 10, 20, 50, 50 }, { 410, 115, 60, 60 } };
        fake_reply_t f;
        fake(&f, 3, next, (const int[]) { EMO_HAPPY, EMO_ANGRY, EMO_SAD }, 0, 0);
        emo_gtk_results_t *r = NULL;
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        /* The big face, 30 px to the right and 10 down: overlap 0.77. */
        cr_assert_eq(emo_gtk_results_follow(r, 300, 50, 300, 300), 0);
        /* The small face in front of it (0.62), not the big one behind it (0.04). */
        cr_assert_eq(emo_gtk_results_follow(r, 400, 120, 60, 60), 2);
        /* A face that moved its width away (overlap 0) or is now a third of its size (overlap 0.11) is not
         * taken for the same one. */
        cr_assert_eq(emo_gtk_results_follow(r, 60, 20, 50, 50), -1);
        cr_assert_eq(emo_gtk_results_follow(r, 0, 0, 150, 150), -1);
        cr_assert_eq(emo_gtk_results_follow(NULL, 0, 0, 10, 10), -1);
        emo_gtk_results_free(r);
}

Test(results, most_prominent_face) {
        static const int boxes[][4] = { { 0, 0, 100, 100 }, { 200, 0, 150, 150 }, { 400, 0, 150, 150 } };
        fake_reply_t f;
        emo_gtk_results_t *r = NULL;
        /* The daemon's dialogue face wins, whatever the sizes. */
        fake(&f, 3, boxes, (const int[]) { EMO_HAPPY, EMO_SAD, EMO_ANGRY }, 1, 2);
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        cr_assert_eq(emo_gtk_results_prominent(r), 2);
        r = emo_gtk_results_free(r);
        /* No line (neutral face): the largest box, the first of equals. */
        fake(&f, 3, boxes, (const int[]) { EMO_HAPPY, EMO_NEUTRAL, EMO_NEUTRAL }, 0, 0);
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        cr_assert_eq(emo_gtk_results_prominent(r), 1);
        r = emo_gtk_results_free(r);
        fake(&f, 0, NULL, NULL, 0, 0);
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        cr_assert_eq(emo_gtk_results_prominent(r), -1);
        emo_gtk_results_free(r);
}

/* Face i of f gets a line of its own (Options.dialogue_per_face). */
static void give_line(fake_reply_t *f, size_t i, int kind, int emotion, const char *text) {
        f->lines[i] = (emo_pb_dialogue_t) EMOTION__V1__DIALOGUE__INIT;
        f->lines[i].kind = (Emotion__V1__Dialogue__Kind) kind;
        f->lines[i].emotion = (Emotion__V1__Emotion) emotion;
        f->lines[i].text = (char *) text;
        f->lines[i].face_index = (uint32_t) i;
        f->faces[i].dialogue = &f->lines[i];
}

/* Each face's own line (Options.dialogue_per_face): what is said to a face picked by a click; the
 * main face's line when none is picked, when the picked face has no line of its own (an older
 * daemon), or when nothing is picked. */
Test(results, the_picked_face_is_spoken_to_when_it_has_a_line) {
        fake_reply_t f;
        emo_gtk_results_t *r = NULL;
        fake(&f, 2, two_boxes, (const int[]) { EMO_HAPPY, EMO_ANGRY }, 2, 0);
        f.dialogue.text = "Well done!";
        /* The older daemon: no lines of their own. */
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        cr_assert_null(r->faces[1].line_text);
        emo_gtk_speech_t s = emo_gtk_results_speech(r, 1);
        cr_assert_eq(s.face, 0);
        cr_assert_str_eq(s.text, "Well done!");
        cr_assert_eq(s.emotion, EMO_HAPPY);
        r = emo_gtk_results_free(r);

        give_line(&f, 0, 2, EMO_HAPPY, "Well done!");
        give_line(&f, 1, 1, EMO_ANGRY, "What makes you angry?");
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        s = emo_gtk_results_speech(r, 1);
        cr_assert_eq(s.face, 1);
        cr_assert_eq(s.kind, 1);
        cr_assert_eq(s.emotion, EMO_ANGRY);
        cr_assert_str_eq(s.text, "What makes you angry?");
        s = emo_gtk_results_speech(r, -1);
        cr_assert_eq(s.face, 0);
        cr_assert_eq(s.kind, 2);
        cr_assert_str_eq(s.text, "Well done!");
        r = emo_gtk_results_free(r);

        /* A neutral face picked: nothing to say to it, and no bubble for the main face either. */
        f.faces[1].emotion = (Emotion__V1__Emotion) EMO_NEUTRAL;
        give_line(&f, 1, 0, EMO_NEUTRAL, "");
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        s = emo_gtk_results_speech(r, 1);
        cr_assert_eq(s.face, 1);
        cr_assert_eq(s.kind, 0);
        cr_assert_str_eq(s.text, "");
        r = emo_gtk_results_free(r);

        /* A line for an emotion that does not exist is no reply to show. */
        give_line(&f, 1, 1, 42, "What makes you angry?");
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), -EPROTO);
        cr_assert_null(r);

        fake(&f, 0, NULL, NULL, 0, 0);
        cr_assert_eq(emo_gtk_results_from_reply(&f.reply, &r), 0);
        cr_assert_eq(emo_gtk_results_speech(r, 0).face, -1);
        emo_gtk_results_free(r);
}
