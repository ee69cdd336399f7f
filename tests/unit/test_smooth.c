/* Per-face smoothing over frames (daemon/smooth.c): which faces are linked into one track, and
 * what each track's average is. */
#include <criterion/criterion.h>
#include <errno.h>

#include "smooth.h"

static emo_smooth_face_t face(int x, int y, int side, int emotion, float p) {
        emo_smooth_face_t f = { .x = x, .y = y, .width = side, .height = side };
        for (int c = 0; c < EMO_EMOTION_COUNT; c++)
                f.probabilities[c] = c == emotion ? p : (1.0f - p) / (EMO_EMOTION_COUNT - 1);
        return f;
}

Test(smooth, iou) {
        cr_expect_float_eq(emo_box_iou(0, 0, 10, 10, 0, 0, 10, 10), 1.0, 1e-12);
        cr_expect_float_eq(emo_box_iou(0, 0, 10, 10, 5, 0, 10, 10), 50.0 / 150.0, 1e-12);
        cr_expect_float_eq(emo_box_iou(0, 0, 10, 10, 10, 0, 10, 10), 0.0, 1e-12); /* touching */
        cr_expect_float_eq(emo_box_iou(0, 0, 0, 10, 0, 0, 10, 10), 0.0, 1e-12);   /* empty */
        cr_expect_float_eq(emo_box_iou(0, 0, 10, 10, 2, 2, 4, 4), 16.0 / 100.0, 1e-12); /* inside */
}

Test(smooth, bad_window) {
        emo_smoother_t *s = NULL;
        cr_expect_eq(emo_smoother_new(0, &s), -EINVAL);
        cr_expect_eq(emo_smoother_new(EMO_SMOOTH_MAX_WINDOW + 1, &s), -EINVAL);
        cr_expect_null(s, "a refused smoother was returned");
        cr_expect_null(emo_smoother_free(NULL));
}

/* One face that moves a little: one track, averaged over at most the window's frames. */
Test(smooth, window_mean_of_one_track) {
        emo_smoother_t *s = NULL;
        cr_assert_eq(emo_smoother_new(3, &s), 0);
        cr_assert_not_null(s);
        const int emotion[] = { EMO_HAPPY, EMO_SAD, EMO_SAD, EMO_HAPPY, EMO_HAPPY };
        const float p[] = { 0.9f, 0.6f, 0.6f, 0.3f, 0.9f };
        emo_smoothed_t out;
        for (int k = 0; k < 5; k++) {
                emo_smooth_face_t f = face(100 + 3 * k, 50, 80, emotion[k], p[k]);
                cr_assert_eq(emo_smoother_update(s, &f, 1, &out), 0);
                cr_expect_eq(out.track, 1);
                cr_expect_eq(out.frames, k < 3 ? (unsigned) k + 1 : 3u);
                if (k == 2) /* happy 0.9, sad 0.6, sad 0.6: sad on average */
                        cr_expect_eq(out.emotion, EMO_SAD);
        }
        /* The last three frames only: sad 0.6 (happy 0.4/6), happy 0.3 (sad 0.7/6), happy 0.9 (sad 0.1/6). */
        float want_happy = (0.4f / 6 + 0.3f + 0.9f) / 3, want_sad = (0.6f + 0.7f / 6 + 0.1f / 6) / 3;
        cr_expect_float_eq(out.probabilities[EMO_HAPPY], want_happy, 1e-6);
        cr_expect_float_eq(out.probabilities[EMO_SAD], want_sad, 1e-6);
        cr_expect_eq(out.emotion, EMO_HAPPY); /* 0.422 against 0.244 */
        cr_expect_float_eq(out.confidence, want_happy, 1e-6);
        float sum = 0;
        for (int c = 0; c < EMO_EMOTION_COUNT; c++)
                sum += out.probabilities[c];
        cr_expect_float_eq(sum, 1.0f, 1e-5);
        emo_smoother_free(s);
}

/* A flicker is voted down: two frames of fear in a row of happy ones do not change the answer. */
Test(smooth, a_flicker_does_not_change_the_answer) {
        emo_smoother_t *s = NULL;
        cr_assert_eq(emo_smoother_new(5, &s), 0);
        emo_smoothed_t out;
        for (int k = 0; k < 8; k++) {
                emo_smooth_face_t f = face(10, 10, 60, k == 4 || k == 5 ? EMO_FEAR : EMO_HAPPY, 0.8f);
                cr_assert_eq(emo_smoother_update(s, &f, 1, &out), 0);
                cr_expect_eq(out.emotion, EMO_HAPPY, "frame %d", k);
        }
        emo_smoother_free(s);
}

/* Two faces that swap places in the face list keep their tracks; each track averages only its own
 * face; a face far from every track starts a new one. */
Test(smooth, faces_keep_their_tracks) {
        emo_smoother_t *s = NULL;
        cr_assert_eq(emo_smoother_new(4, &s), 0);
        emo_smooth_face_t two[2] = { face(0, 0, 100, EMO_HAPPY, 1.0f), face(300, 0, 100, EMO_ANGRY, 1.0f) };
        emo_smoothed_t out[3];
        cr_assert_eq(emo_smoother_update(s, two, 2, out), 0);
        cr_expect_eq(out[0].track, 1);
        cr_expect_eq(out[1].track, 2);
        /* Listed the other way round (the daemon sorts by size), and moved a little. */
        emo_smooth_face_t swapped[3] = { face(310, 5, 100, EMO_ANGRY, 1.0f), face(8, 0, 100, EMO_HAPPY, 1.0f),
                                         face(600, 300, 90, EMO_SAD, 1.0f) };
        cr_assert_eq(emo_smoother_update(s, swapped, 3, out), 0);
        cr_expect_eq(out[0].track, 2);
        cr_expect_eq(out[1].track, 1);
        cr_expect_eq(out[2].track, 3);
        cr_expect_eq(out[0].frames, 2);
        cr_expect_eq(out[2].frames, 1);
        cr_expect_float_eq(out[0].probabilities[EMO_ANGRY], 1.0f, 1e-6);
        cr_expect_float_eq(out[1].probabilities[EMO_HAPPY], 1.0f, 1e-6);
        cr_expect_eq(out[2].emotion, EMO_SAD);
        emo_smoother_free(s);
}

/* Two faces competing for one track: the better overlap wins it, the other starts a new one. */
Test(smooth, best_overlap_wins) {
        emo_smoother_t *s = NULL;
        cr_assert_eq(emo_smoother_new(2, &s), 0);
        emo_smooth_face_t one = face(100, 100, 100, EMO_HAPPY, 1.0f);
        emo_smoothed_t out[2];
        cr_assert_eq(emo_smoother_update(s, &one, 1, out), 0);
        emo_smooth_face_t two[2] = { face(140, 100, 100, EMO_SAD, 1.0f), face(105, 100, 100, EMO_HAPPY, 1.0f) };
        cr_assert_eq(emo_smoother_update(s, two, 2, out), 0);
        cr_expect_eq(out[1].track, 1);
        cr_expect_eq(out[0].track, 2);
        emo_smoother_free(s);
}

/* A face missed for up to EMO_SMOOTH_MAX_GAP frames keeps its track and its history; missed for
 * longer, it comes back as a new track with nothing averaged. */
Test(smooth, gaps) {
        emo_smoother_t *s = NULL;
        cr_assert_eq(emo_smoother_new(10, &s), 0);
        emo_smooth_face_t f = face(50, 50, 80, EMO_SURPRISE, 0.6f);
        emo_smoothed_t out;
        cr_assert_eq(emo_smoother_update(s, &f, 1, &out), 0);
        for (int k = 0; k < EMO_SMOOTH_MAX_GAP; k++)
                cr_assert_eq(emo_smoother_update(s, NULL, 0, NULL), 0);
        cr_assert_eq(emo_smoother_update(s, &f, 1, &out), 0);
        cr_expect_eq(out.track, 1);
        cr_expect_eq(out.frames, 2);
        for (int k = 0; k < EMO_SMOOTH_MAX_GAP + 1; k++)
                cr_assert_eq(emo_smoother_update(s, NULL, 0, NULL), 0);
        cr_assert_eq(emo_smoother_update(s, &f, 1, &out), 0);
        cr_expect_eq(out.track, 2);
        cr_expect_eq(out.frames, 1);
        emo_smoother_free(s);
}

/* Window 1 changes nothing but still numbers the faces. */
Test(smooth, window_one_is_the_frame_itself) {
        emo_smoother_t *s = NULL;
        cr_assert_eq(emo_smoother_new(1, &s), 0);
        emo_smoothed_t out;
        for (int k = 0; k < 3; k++) {
                emo_smooth_face_t f = face(0, 0, 50, k, 0.5f);
                cr_assert_eq(emo_smoother_update(s, &f, 1, &out), 0);
                cr_expect_eq(out.track, 1);
                cr_expect_eq(out.emotion, k);
                cr_expect_float_eq(out.confidence, 0.5f, 1e-6);
        }
        emo_smoother_free(s);
}

/* Long windows: a track's memory grows with the frames it is seen in (8, 16, ... up to the
 * window), and the mean is over exactly the last `window` frames before, at and after each growth
 * and once the ring wraps. Frame k has happy probability (k % 10) / 10, so every window's mean is
 * known in closed form. */
Test(smooth, long_windows_average_exactly_the_last_frames) {
        const unsigned windows[] = { 8, 9, 20, 1000 };
        for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
                unsigned window = windows[w];
                emo_smoother_t *s = NULL;
                cr_assert_eq(emo_smoother_new(window, &s), 0);
                cr_assert_not_null(s);
                for (unsigned k = 0; k < 2 * window + 17; k++) {
                        emo_smooth_face_t f = face(40, 40, 100, EMO_HAPPY, (float) (k % 10) / 10.0f);
                        emo_smoothed_t out;
                        cr_assert_eq(emo_smoother_update(s, &f, 1, &out), 0);
                        unsigned n = k + 1 < window ? k + 1 : window;
                        cr_assert_eq(out.frames, n, "window %u frame %u", window, k);
                        double want = 0;
                        for (unsigned j = k + 1 - n; j <= k; j++)
                                want += (double) (j % 10) / 10.0 / n;
                        cr_assert_float_eq(out.probabilities[EMO_HAPPY], want, 1e-5, "window %u frame %u: %f, want %f",
                                           window, k, out.probabilities[EMO_HAPPY], want);
                }
                emo_smoother_free(s);
        }
}
