/* The daemon's per-stream face tracks (Options.smooth_frames): one smoother per stream, started
 * over when a stream restarts, changes its window or goes quiet, and a bounded table. */
#include <criterion/criterion.h>
#include <errno.h>

#include "streams.h"

static emo_smooth_face_t face(float happy) {
        emo_smooth_face_t f = { .x = 10, .y = 10, .width = 50, .height = 50 };
        f.probabilities[3] = happy;
        f.probabilities[6] = 1.0f - happy;
        return f;
}

/* Feed one face; returns how many frames its average covers, and its track in *track. */
static unsigned feed(emo_streams_t *s, const char *key, unsigned window, uint64_t seq, int64_t now, float happy,
                     uint64_t *track) {
        emo_smooth_face_t f = face(happy);
        emo_smoothed_t out;
        cr_assert_eq(emo_streams_smooth(s, key, window, seq, now, &f, 1, &out), 0);
        if (track)
                *track = out.track;
        return out.frames;
}

Test(streams, each_stream_has_its_own_tracks) {
        emo_streams_t *s = NULL;
        cr_assert_eq(emo_streams_new(8, &s), 0);
        cr_assert_not_null(s);
        int64_t t = 1000000;
        cr_assert_eq(feed(s, "a", 3, 1, t, 1.0f, NULL), 1);
        cr_assert_eq(feed(s, "a", 3, 2, t + 1, 0.0f, NULL), 2);
        cr_assert_eq(feed(s, "b", 3, 1, t + 2, 0.5f, NULL), 1, "b does not continue a's track");
        emo_smooth_face_t f = face(0.5f);
        emo_smoothed_t out;
        cr_assert_eq(emo_streams_smooth(s, "a", 3, 3, t + 3, &f, 1, &out), 0);
        cr_assert_eq(out.frames, 3);
        cr_assert_eq(out.track, 1);
        cr_assert_float_eq(out.probabilities[3], 0.5f, 1e-6, "mean of 1, 0 and 0.5");
        cr_assert_eq(emo_streams_size(s), 2);
        emo_streams_free(s);
}

Test(streams, start_over_on_restart_new_window_or_silence) {
        emo_streams_t *s = NULL;
        cr_assert_eq(emo_streams_new(8, &s), 0);
        int64_t t = 5000000;
        uint64_t track;
        feed(s, "cam", 4, 10, t, 1.0f, NULL);
        cr_assert_eq(feed(s, "cam", 4, 11, t, 1.0f, NULL), 2);
        cr_assert_eq(feed(s, "cam", 4, 11, t, 1.0f, NULL), 3, "a repeated sequence number is not a restart");
        cr_assert_eq(feed(s, "cam", 4, 3, t, 1.0f, &track), 1, "the sequence went back");
        cr_assert_eq(track, 1, "a fresh start numbers tracks from 1 again");
        cr_assert_eq(feed(s, "cam", 4, 4, t, 1.0f, NULL), 2);
        cr_assert_eq(feed(s, "cam", 2, 5, t, 1.0f, NULL), 1, "another window");
        cr_assert_eq(feed(s, "cam", 2, 6, t + EMO_STREAM_IDLE_US, 1.0f, NULL), 2, "exactly the idle limit is not silence");
        cr_assert_eq(feed(s, "cam", 2, 7, t + 2 * EMO_STREAM_IDLE_US + 1, 1.0f, NULL), 1, "silence");
        emo_streams_free(s);
}

Test(streams, bounded_by_dropping_the_quietest) {
        emo_streams_t *s = NULL;
        cr_assert_eq(emo_streams_new(2, &s), 0);
        feed(s, "old", 5, 1, 100, 1.0f, NULL);
        feed(s, "new", 5, 1, 200, 1.0f, NULL);
        feed(s, "old", 5, 2, 300, 1.0f, NULL); /* old is now the most recent */
        feed(s, "third", 5, 1, 400, 1.0f, NULL);
        cr_assert_eq(emo_streams_size(s), 2);
        cr_assert_eq(feed(s, "old", 5, 3, 500, 1.0f, NULL), 3, "the recently fed stream was kept");
        cr_assert_eq(feed(s, "new", 5, 2, 600, 1.0f, NULL), 1, "the quietest stream was dropped");
        emo_streams_free(s);
}

Test(streams, only_streams_fed_lately_are_active) {
        emo_streams_t *s = NULL;
        cr_assert_eq(emo_streams_new(8, &s), 0);
        int64_t t = 1000000;
        cr_assert_eq(emo_streams_active(s, t), 0);
        feed(s, "quiet", 5, 1, t, 1.0f, NULL);
        feed(s, "busy", 5, 1, t + 1, 1.0f, NULL);
        cr_assert_eq(emo_streams_active(s, t + EMO_STREAM_IDLE_US), 2, "exactly the idle limit is not silence");
        feed(s, "busy", 5, 2, t + EMO_STREAM_IDLE_US, 1.0f, NULL);
        cr_assert_eq(emo_streams_active(s, t + EMO_STREAM_IDLE_US + 1), 1, "quiet went silent");
        cr_assert_eq(emo_streams_size(s), 1, "the silent stream was dropped, not just left out of the count");
        cr_assert_eq(feed(s, "quiet", 5, 2, t + EMO_STREAM_IDLE_US + 2, 1.0f, NULL), 1, "and comes back as a new one");
        cr_assert_eq(feed(s, "busy", 5, 3, t + EMO_STREAM_IDLE_US + 3, 1.0f, NULL), 3, "busy kept its tracks");
        cr_assert_eq(emo_streams_active(s, t + 10 * EMO_STREAM_IDLE_US), 0);
        cr_assert_eq(emo_streams_size(s), 0);
        emo_streams_free(s);
}

Test(streams, bad_arguments) {
        emo_streams_t *none = NULL;
        cr_assert_eq(emo_streams_new(0, &none), -EINVAL);
        cr_assert_null(none);
        emo_streams_t *s = NULL;
        cr_assert_eq(emo_streams_new(1, &s), 0);
        emo_smooth_face_t f = face(1.0f);
        emo_smoothed_t out;
        cr_assert_eq(emo_streams_smooth(s, "a", 0, 1, 1, &f, 1, &out), -EINVAL);
        cr_assert_eq(emo_streams_smooth(s, "a", EMO_SMOOTH_MAX_WINDOW + 1, 1, 1, &f, 1, &out), -EINVAL);
        cr_assert_eq(emo_streams_size(s), 0, "a refused call adds no stream");
        cr_assert_null(emo_streams_free(NULL));
        emo_streams_free(s);
}

/* Whether frame seq may follow the last frame's boxes (detect_every 3), and how many it got. */
static int follows(emo_streams_t *s, const char *key, unsigned window, uint64_t seq, int64_t now, size_t *n) {
        emo_face_box_t boxes[4];
        *n = 99;
        return emo_streams_track_from(s, key, window, seq, now, 3, boxes, 4, n);
}

/* The detector runs on every third frame: the frames between follow the boxes kept; a stream
 * that starts over (new, sequence back, another window, silence) detects at once, and so does a
 * frame after one that detected because it lost a face. */
Test(streams, detect_every_third_frame_and_follow_in_between) {
        emo_streams_t *s = NULL;
        cr_assert_eq(emo_streams_new(8, &s), 0);
        int64_t t = 1000000;
        size_t n;
        emo_face_box_t box = { 10, 10, 50, 50, 0.9f, 0 };
        cr_assert_eq(follows(s, "cam", 4, 1, t, &n), 0, "an unknown stream detects");
        cr_assert_eq(emo_streams_keep_boxes(s, "cam", &box, 1, true), -ENOENT, "only after smoothing");
        feed(s, "cam", 4, 1, t, 1.0f, NULL);
        cr_assert_eq(follows(s, "cam", 4, 2, t, &n), 0, "no boxes kept yet");
        cr_assert_eq(emo_streams_keep_boxes(s, "cam", &box, 1, true), 0);
        cr_assert_eq(follows(s, "cam", 4, 2, t, &n), 1);
        cr_assert_eq(n, 1);
        feed(s, "cam", 4, 2, t, 1.0f, NULL);
        emo_streams_keep_boxes(s, "cam", &box, 1, false);
        cr_assert_eq(follows(s, "cam", 4, 3, t, &n), 1, "second frame after detection");
        feed(s, "cam", 4, 3, t, 1.0f, NULL);
        emo_streams_keep_boxes(s, "cam", &box, 1, false);
        cr_assert_eq(follows(s, "cam", 4, 4, t, &n), 0, "third frame: detect");
        feed(s, "cam", 4, 4, t, 1.0f, NULL);
        emo_streams_keep_boxes(s, "cam", &box, 1, true);
        cr_assert_eq(follows(s, "cam", 4, 5, t, &n), 1);
        cr_assert_eq(follows(s, "cam", 4, 3, t, &n), 0, "sequence back");
        cr_assert_eq(follows(s, "cam", 2, 5, t, &n), 0, "another window");
        cr_assert_eq(follows(s, "cam", 4, 5, t + EMO_STREAM_IDLE_US + 1, &n), 0, "silence");
        cr_assert_eq(follows(s, "other", 4, 5, t, &n), 0, "another stream");
        /* No face found: nothing to follow is still followed (an empty room costs no detection on
         * two frames of three). */
        feed(s, "cam", 4, 5, t, 1.0f, NULL);
        emo_streams_keep_boxes(s, "cam", NULL, 0, true);
        cr_assert_eq(follows(s, "cam", 4, 6, t, &n), 1);
        cr_assert_eq(n, 0);
        /* A stream whose first frames had no face has never kept a box (UBSan checks the copy). */
        feed(s, "empty", 4, 1, t, 1.0f, NULL);
        cr_assert_eq(emo_streams_keep_boxes(s, "empty", NULL, 0, true), 0);
        cr_assert_eq(follows(s, "empty", 4, 2, t, &n), 1);
        cr_assert_eq(n, 0);
        /* A restart drops the boxes. */
        feed(s, "cam", 2, 6, t, 1.0f, NULL);
        cr_assert_eq(follows(s, "cam", 2, 7, t, &n), 0, "boxes of before the restart");
        emo_streams_free(s);
}
