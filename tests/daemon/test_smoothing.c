/* Options.smooth_frames against the real daemon (two workers): each face followed across the
 * frames of its stream, its probabilities averaged over its last N frames in frame order even when
 * the frames are pipelined, the dialogue reacting to the averaged emotion (its words held while
 * that emotion holds), streams kept apart and
 * started over, and bad windows refused. Faces are known FER2013 PublicTest faces sent as 48x48
 * client regions, so that each frame's own probabilities are the model's for that face. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "emo/client.h"
#include "emo/labels.h"
#include "emo/protocol.h" /* EMO_SMOOTH_MAX_WINDOW */
#include "emo/util.h"

static emo_test_daemon_t daemon_;

static void start(void) {
        emo_test_daemon_start(&daemon_, NULL);
}

static void stop(void) {
        emo_test_daemon_cleanup(&daemon_);
}

TestSuite(smoothing, .init = start, .fini = stop, .timeout = 120);

/* The 48x48 pixels of the first known face (fixtures.json) with this label. */
static const uint8_t *known_face(int label) {
        size_t n;
        const uint8_t *labels;
        const uint8_t *faces = emo_test_publictest(&n, &labels);
        json_object *known = emo_test_json_get(emo_test_fixtures_json(), "known");
        for (size_t i = 0; i < json_object_array_length(known); i++) {
                json_object *k = json_object_array_get_idx(known, i);
                if (json_object_get_int(emo_test_json_get(k, "label")) == label) {
                        size_t index = (size_t) json_object_get_int(emo_test_json_get(k, "index"));
                        cr_assert_lt(index, n);
                        return faces + index * 48 * 48;
                }
        }
        cr_assert_fail("no known face with label %d in fixtures.json", label);
        return NULL;
}

static void face_request(emo_test_req_t *t, const uint8_t *face, const char *stream, uint64_t sequence,
                         uint32_t window) {
        emo_test_req_face48(t, face);
        t->analyze.stream_id = (char *) stream;
        t->analyze.sequence = sequence;
        t->options.smooth_frames = window;
        t->options.language = "en";
}

/* One face, smoothed or not; asserts OK and one face. */
static emo_reply_t *call_face(const uint8_t *face, const char *stream, uint64_t sequence, uint32_t window) {
        emo_test_req_t t;
        face_request(&t, face, stream, sequence, window);
        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "%s: %s", emo_status_name(r->status), r->message);
        cr_assert_eq(r->analyze->n_faces, 1);
        return r;
}

/* Send one face smoothed over `window` frames and assert how many frames its average covers and,
 * when track is not 0, its track. */
static void expect_smoothed(const uint8_t *face, const char *stream, uint64_t sequence, uint32_t window,
                            unsigned frames, uint64_t track, const char *why) {
        emo_reply_t *r = call_face(face, stream, sequence, window);
        const emo_pb_smoothed_t *sm = r->analyze->faces[0]->smoothed;
        cr_assert_not_null(sm, "%s: no smoothed result", why);
        cr_assert_eq(sm->frames, frames, "%s: %s frame %llu averaged over %u frames, expected %u", why, stream,
                     (unsigned long long) sequence, sm->frames, frames);
        if (track)
                cr_assert_eq(sm->track, track, "%s: track %llu, expected %llu", why, (unsigned long long) sm->track,
                             (unsigned long long) track);
        emo_reply_free(r);
}

static int argmax(const float *p) {
        int best = 0;
        for (int k = 1; k < EMO_EMOTION_COUNT; k++)
                if (p[k] > p[best])
                        best = k;
        return best;
}

/* Ten frames of one stream, alternating a happy and an angry face in the same place, all sent
 * before the first reply is read: the two workers could take them in any order, so the averages
 * prove that the daemon applies a smoothed stream's frames in order. */
Test(smoothing, averages_a_face_over_its_last_frames_in_order) {
        enum { FRAMES = 10, WINDOW = 3 };
        const uint8_t *happy = known_face(3), *angry = known_face(0);
        float raw[2][EMO_EMOTION_COUNT];
        for (int k = 0; k < 2; k++) {
                emo_reply_t *r = call_face(k ? angry : happy, "", 0, 0);
                const emo_pb_face_t *f = r->analyze->faces[0];
                cr_assert_eq(f->n_probabilities, EMO_EMOTION_COUNT);
                cr_assert_null(f->smoothed, "smoothed without smooth_frames");
                cr_assert_not(r->analyze->dialogue->smoothed);
                memcpy(raw[k], f->probabilities, sizeof(raw[k]));
                emo_reply_free(r);
        }
        cr_assert_eq(argmax(raw[0]), 3, "the known happy face is not classified happy");
        cr_assert_eq(argmax(raw[1]), 0, "the known angry face is not classified angry");

        const int which[FRAMES] = { 0, 0, 1, 0, 1, 1, 1, 0, 0, 0 }; /* 0 happy, 1 angry */
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(daemon_.endpoint, &c), 0);
        uint64_t ids[FRAMES];
        for (int i = 0; i < FRAMES; i++) {
                emo_test_req_t t;
                face_request(&t, which[i] ? angry : happy, "desk-7", (uint64_t) i + 1, WINDOW);
                cr_assert_eq(emo_client_send(c, &t.req, 5000, &ids[i]), 0);
        }
        emo_reply_t *replies[FRAMES] = { 0 };
        for (int got = 0; got < FRAMES; got++) {
                emo_reply_t *r = NULL;
                cr_assert_eq(emo_client_recv(c, 30000, &r), 0, "no reply after %d of %d frames", got, FRAMES);
                int i = 0;
                while (i < FRAMES && ids[i] != r->request_id)
                        i++;
                cr_assert_lt(i, FRAMES, "reply to unknown request %llu", (unsigned long long) r->request_id);
                cr_assert_eq(r->status, EMO_STATUS_OK, "frame %d: %s: %s", i + 1, emo_status_name(r->status), r->message);
                replies[i] = r;
        }
        emo_client_free(c);

        int differed = 0, held = 0;
        for (int i = 0; i < FRAMES; i++) {
                const emo_analyze_reply_t *a = replies[i]->analyze;
                cr_assert_eq(a->sequence, (uint64_t) i + 1);
                cr_assert_eq(a->n_faces, 1);
                const emo_pb_face_t *f = a->faces[0];
                for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                        cr_assert_float_eq(f->probabilities[k], raw[which[i]][k], 1e-6, "frame %d is not its own face",
                                           i + 1);
                const emo_pb_smoothed_t *sm = f->smoothed;
                cr_assert_not_null(sm, "frame %d: no smoothed result", i + 1);
                cr_assert_eq(sm->track, 1, "frame %d: the face changed track (%llu)", i + 1,
                             (unsigned long long) sm->track);
                unsigned n = i + 1 < WINDOW ? (unsigned) i + 1 : WINDOW;
                cr_assert_eq(sm->frames, n, "frame %d: averaged over %u frames, expected %u", i + 1, sm->frames, n);
                cr_assert_eq(sm->n_probabilities, EMO_EMOTION_COUNT);
                float mean[EMO_EMOTION_COUNT] = { 0 };
                for (int j = i + 1 - (int) n; j <= i; j++)
                        for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                                mean[k] += raw[which[j]][k] / (float) n;
                for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                        cr_assert_float_eq(sm->probabilities[k], mean[k], 2e-5,
                                           "frame %d, class %d: %.6f is not the mean of frames %u..%d (%.6f)", i + 1,
                                           k, sm->probabilities[k], i + 2 - n, i + 1, mean[k]);
                cr_assert_eq(sm->emotion, argmax(mean), "frame %d: smoothed emotion", i + 1);
                cr_assert_float_eq(sm->confidence, mean[sm->emotion], 2e-5);
                cr_assert_str_eq(sm->emoji, emo_emotion_emoji(sm->emotion));
                /* The dialogue answers the averaged emotion, not the frame's. */
                const emo_pb_dialogue_t *d = a->dialogue;
                cr_assert(d->smoothed, "frame %d: dialogue not marked smoothed", i + 1);
                cr_assert_eq((int) d->emotion, (int) sm->emotion, "frame %d: dialogue reacts to %s, smoothed emotion is %s",
                             i + 1, emo_emotion_name(d->emotion), emo_emotion_name(sm->emotion));
                cr_assert(emo_test_dialogue_has_line("en", emo_emotion_name(sm->emotion), d->text),
                          "frame %d: '%s' is not an en line for %s", i + 1, d->text, emo_emotion_name(sm->emotion));
                if ((int) f->emotion != (int) sm->emotion)
                        differed++;
                /* While the face's averaged emotion holds, its line does: a client showing it frame
                 * after frame shows the same words. */
                if (i > 0 && replies[i - 1]->analyze->faces[0]->smoothed->emotion == sm->emotion) {
                        cr_assert_str_eq(d->text, replies[i - 1]->analyze->dialogue->text,
                                         "frame %d: the line changed while the emotion held", i + 1);
                        held++;
                }
        }
        cr_assert_geq(held, 3, "only %d frames kept the emotion of the one before", held);
        /* Frames 3 and 8 (one angry face after two happy ones, one happy face after three angry
         * ones) are where one frame and the average disagree. */
        cr_assert_geq(differed, 2, "only %d frames where the average and the frame disagree", differed);
        for (int i = 0; i < FRAMES; i++)
                emo_reply_free(replies[i]);
}

Test(smoothing, streams_are_kept_apart_and_start_over) {
        const uint8_t *happy = known_face(3);
        for (unsigned s = 1; s <= 3; s++)
                expect_smoothed(happy, "cam-a", s, 5, s, 0, "one stream");
        expect_smoothed(happy, "cam-b", 1, 5, 1, 1, "another stream has its own tracks");
        expect_smoothed(happy, "cam-a", 4, 5, 4, 0, "cam-b's frame did not reach cam-a's track");
        expect_smoothed(happy, "cam-a", 1, 5, 1, 1, "the sequence going back (a camera restart) starts over");
        expect_smoothed(happy, "cam-a", 2, 5, 2, 0, "after the restart");
        expect_smoothed(happy, "cam-a", 3, 2, 1, 0, "another window starts over");
        /* A frame without a face ages the track; one more keeps it (a missed detection), so the
         * face that comes back continues it. */
        emo_test_req_t t;
        uint8_t blank[48 * 48];
        memset(blank, 128, sizeof(blank));
        emo_test_req_encoded(&t, NULL, 0);
        t.image.format = EMOTION__V1__IMAGE__FORMAT__GRAY8;
        t.image.data = (ProtobufCBinaryData) { sizeof(blank), blank };
        t.image.width = t.image.height = 48;
        t.analyze.stream_id = "cam-a";
        t.analyze.sequence = 4;
        t.options.smooth_frames = 2;
        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "%s", r->message);
        cr_assert_eq(r->analyze->n_faces, 0, "a grey square has a face");
        cr_assert_eq(r->analyze->dialogue->kind, EMOTION__V1__DIALOGUE__KIND__NONE);
        emo_reply_free(r);
        expect_smoothed(happy, "cam-a", 5, 2, 2, 1, "the face back after a missed frame");
}

static uint32_t smoothed_streams(void) {
        emo_reply_t *h = emo_test_health(daemon_.endpoint);
        uint32_t n = h->health->smoothed_streams;
        emo_reply_free(h);
        return n;
}

Test(smoothing, health_counts_the_streams_being_smoothed) {
        const uint8_t *happy = known_face(3);
        cr_assert_eq(smoothed_streams(), 0);
        emo_reply_free(call_face(happy, "cam-a", 1, 0));
        cr_assert_eq(smoothed_streams(), 0, "a frame that does not ask for smoothing keeps no tracks");
        expect_smoothed(happy, "cam-a", 2, 5, 1, 1, "first smoothed frame");
        expect_smoothed(happy, "cam-a", 3, 5, 2, 1, "second smoothed frame");
        expect_smoothed(happy, "cam-b", 1, 5, 1, 1, "another stream");
        cr_assert_eq(smoothed_streams(), 2);
}

Test(smoothing, a_window_over_the_limit_is_refused) {
        const uint8_t *happy = known_face(3);
        emo_test_req_t t;
        face_request(&t, happy, "cam-c", 1, EMO_SMOOTH_MAX_WINDOW + 1);
        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_INVALID_REQUEST, "%s", emo_status_name(r->status));
        cr_assert(strstr(r->message, "smooth_frames 1001"), "message: %s", r->message);
        emo_reply_free(r);
        expect_smoothed(happy, "cam-c", 2, EMO_SMOOTH_MAX_WINDOW, 1, 0,
                        "the refused frame did not touch the stream: the first accepted one starts a track");
}
