/* detect_every on a smoothed stream, against the real daemon: the detector runs on every third
 * frame and the faces are followed in between, yet every frame reports its face with a box close
 * to what the detector finds on that frame alone; a face that jumps away is found at once (the
 * lost track makes the detector run); a face entering the picture waits for the next detection.
 * Frames are the fixture's one-face photo moved about, sent as raw BGR24. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "emo/util.h"

enum { W = 640, H = 480 };

static emo_test_daemon_t daemon_;
static uint8_t *photo; /* one_face.bgr */

static void start(void) {
        size_t len;
        photo = emo_test_read_fixture("one_face.bgr", &len);
        cr_assert_eq(len, (size_t) W * H * 3);
        const char *extra[] = { "--set", "detect_every=3", NULL };
        emo_test_daemon_start(&daemon_, extra);
}

static void stop(void) {
        emo_test_daemon_cleanup(&daemon_);
        free(photo);
}

TestSuite(tracking, .init = start, .fini = stop, .timeout = 120);

/* The photo moved by (dx, dy) on a grey ground; with face false, the ground alone. */
static void frame(uint8_t *out, int dx, int dy, bool face) {
        memset(out, 128, (size_t) W * H * 3);
        if (!face)
                return;
        for (int y = 0; y < H; y++) {
                int sy = y - dy;
                if (sy < 0 || sy >= H)
                        continue;
                for (int x = 0; x < W; x++) {
                        int sx = x - dx;
                        if (sx >= 0 && sx < W)
                                memcpy(out + ((size_t) y * W + x) * 3, photo + ((size_t) sy * W + sx) * 3, 3);
                }
        }
}

/* Analyse px, as frame `sequence` of a stream smoothed over 3 frames or (stream NULL) alone. */
static emo_reply_t *analyze(const uint8_t *px, const char *stream, uint64_t sequence) {
        emo_test_req_t t;
        emo_test_req_encoded(&t, px, (size_t) W * H * 3);
        t.image.format = EMOTION__V1__IMAGE__FORMAT__BGR24;
        t.image.width = W;
        t.image.height = H;
        if (stream) {
                t.analyze.stream_id = (char *) stream;
                t.analyze.sequence = sequence;
                t.options.smooth_frames = 3;
        }
        emo_reply_t *r = emo_test_call(daemon_.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "%s", r->message);
        return r;
}

static double iou(const emo_pb_box_t *a, const emo_pb_box_t *b) {
        double x0 = a->x > b->x ? a->x : b->x, y0 = a->y > b->y ? a->y : b->y;
        double x1 = a->x + a->width < b->x + b->width ? a->x + a->width : b->x + b->width;
        double y1 = a->y + a->height < b->y + b->height ? a->y + a->height : b->y + b->height;
        double inter = x1 > x0 && y1 > y0 ? (x1 - x0) * (y1 - y0) : 0;
        return inter / ((double) a->width * a->height + (double) b->width * b->height - inter);
}

/* Frames 1-9 move the face a few pixels a frame; frame 5, followed, jumps it 200 px left and 120
 * down, out of its search window. Every frame reports the face, its box within IoU 0.75 of the
 * detector's on that frame alone, and one smoothed track across the small moves. */
Test(tracking, every_frame_reports_its_face_near_where_detection_puts_it) {
        uint8_t *px = malloc((size_t) W * H * 3);
        for (int i = 1; i <= 9; i++) {
                int dx = 5 * i, dy = 3 * i;
                if (i >= 5)
                        dx -= 200, dy += 120;
                frame(px, dx, dy, true);
                emo_reply_t *alone = analyze(px, NULL, 0), *r = analyze(px, "cam-1", (uint64_t) i);
                cr_assert_eq(alone->analyze->n_faces, 1, "frame %d: the detector does not find the face", i);
                cr_assert_eq(r->analyze->n_faces, 1, "frame %d of the stream: %zu faces", i, r->analyze->n_faces);
                const emo_pb_box_t *a = alone->analyze->faces[0]->box, *b = r->analyze->faces[0]->box;
                cr_assert_geq(iou(a, b), 0.75, "frame %d: box %d,%d %dx%d, the detector's %d,%d %dx%d (IoU %.2f)", i,
                              b->x, b->y, b->width, b->height, a->x, a->y, a->width, a->height, iou(a, b));
                cr_assert_not_null(r->analyze->faces[0]->smoothed);
                emo_reply_free(alone);
                emo_reply_free(r);
        }
        free(px);
}

/* Frame 1 (detected) is empty; the face enters on frame 2. Frames 2 and 3 follow frame 1's
 * nothing, so the face is reported from frame 4, the next detection, on. This is what detect_every
 * trades: a newcomer waits up to two frames (with every frame detected it would show at once, as
 * the stream-less requests do). */
Test(tracking, a_face_entering_waits_for_the_next_detection) {
        uint8_t *px = malloc((size_t) W * H * 3);
        const size_t expect[] = { 0, 0, 0, 0, 1, 1, 1 }; /* by frame number, from 1 */
        for (int i = 1; i <= 6; i++) {
                frame(px, 0, 0, i >= 2);
                emo_reply_t *alone = analyze(px, NULL, 0), *r = analyze(px, "cam-2", (uint64_t) i);
                cr_assert_eq(alone->analyze->n_faces, i >= 2 ? 1 : 0, "frame %d alone", i);
                cr_assert_eq(r->analyze->n_faces, expect[i], "frame %d of the stream: %zu faces, expected %zu", i,
                             r->analyze->n_faces, expect[i]);
                emo_reply_free(alone);
                emo_reply_free(r);
        }
        free(px);
}
