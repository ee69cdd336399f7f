/* The live mode's models without a display: what a source argument names (sources.h), the camera
 * list on a folder without cameras, and a tile's pacing (live.h): newest frame wins with at most
 * one request in flight, the frame rate and round trip shown, the messages a tile shows and how
 * it recovers when the daemon comes back. */
#include <criterion/criterion.h>
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "live.h"
#include "sources.h"

TestSuite(sources, .timeout = 30);
TestSuite(live, .timeout = 30);

static emo_gtk_source_t *parse_ok(const char *arg, emo_gtk_source_kind_t kind) {
        emo_gtk_source_t *s = NULL;
        int r = emo_gtk_source_parse(arg, &s);
        cr_assert_eq(r, 0, "%s: %d", arg, r);
        cr_assert_eq(s->kind, kind, "%s: kind %d", arg, s->kind);
        return s;
}

Test(sources, arguments_name_cameras_files_and_urls) {
        g_autoptr(emo_gtk_source_t) cam = parse_ok("/dev/video2", EMO_GTK_SOURCE_CAMERA);
        cr_assert_str_eq(cam->location, "/dev/video2");
        g_autoptr(emo_gtk_source_t) file = parse_ok("clips/office day.mp4", EMO_GTK_SOURCE_FILE);
        cr_assert_str_eq(file->location, "clips/office day.mp4");
        cr_assert_str_eq(file->label, "office day.mp4");
        g_autoptr(emo_gtk_source_t) uri = parse_ok("file:///tmp/a%20b.avi", EMO_GTK_SOURCE_FILE);
        cr_assert_str_eq(uri->location, "/tmp/a b.avi");
        g_autoptr(emo_gtk_source_t) rtsp = parse_ok("rtsp://cam.local:554/stream1", EMO_GTK_SOURCE_URL);
        cr_assert_str_eq(rtsp->location, "rtsp://cam.local:554/stream1");
        cr_assert_str_eq(rtsp->label, "rtsp://cam.local:554/stream1");
        g_autoptr(emo_gtk_source_t) upper = parse_ok("HTTP://cam/video.mjpg", EMO_GTK_SOURCE_URL);
        /* A password in the URL is used, never shown (tiles end up on screenshots). */
        g_autoptr(emo_gtk_source_t) secret = parse_ok("rtsp://admin:hunter2@10.0.0.7/live", EMO_GTK_SOURCE_URL);
        cr_assert_str_eq(secret->location, "rtsp://admin:hunter2@10.0.0.7/live");
        cr_assert_null(strstr(secret->label, "hunter2"), "%s", secret->label);
        cr_assert(strstr(secret->label, "admin:") && strstr(secret->label, "@10.0.0.7/live"), "%s", secret->label);
        g_autoptr(emo_gtk_source_t) user = parse_ok("rtsp://viewer@10.0.0.7/live", EMO_GTK_SOURCE_URL);
        cr_assert_str_eq(user->label, "rtsp://viewer@10.0.0.7/live");
}

Test(sources, bad_arguments_are_refused) {
        emo_gtk_source_t *s = NULL;
        cr_assert_eq(emo_gtk_source_parse("", &s), -EINVAL);
        cr_assert_eq(emo_gtk_source_parse("rtsp://", &s), -EINVAL);
        cr_assert_eq(emo_gtk_source_parse("http:///path", &s), -EINVAL);
        cr_assert_eq(emo_gtk_source_parse("ftp://host/file.mp4", &s), -EPROTONOSUPPORT);
        cr_assert_eq(emo_gtk_source_parse("mailto:someone@example.org", &s), -EPROTONOSUPPORT);
        cr_assert_null(s);
}

/* No camera here: a folder of ordinary files and a character device that is no camera
 * (/dev/null's twin) gives an empty list, not an error; a missing folder too. */
Test(sources, camera_list_keeps_only_capture_devices) {
        char dir[] = "/tmp/emo-cams.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        g_autofree char *plain = g_build_filename(dir, "video0", NULL);
        cr_assert(g_file_set_contents(plain, "not a device", -1, NULL));
        g_autofree char *null_link = g_build_filename(dir, "video1", NULL);
        cr_assert_eq(symlink("/dev/null", null_link), 0);
        g_autoptr(GPtrArray) none = emo_gtk_cameras_list(dir);
        cr_assert_eq(none->len, 0);
        g_autoptr(GPtrArray) missing = emo_gtk_cameras_list("/nonexistent-dev");
        cr_assert_eq(missing->len, 0);
        /* And the real /dev: whatever is there is a capture device with a name. */
        g_autoptr(GPtrArray) real = emo_gtk_cameras_list("/dev");
        for (guint i = 0; i < real->len; i++) {
                const emo_gtk_source_t *c = real->pdata[i];
                cr_assert(g_str_has_prefix(c->location, "/dev/video"), "%s", c->location);
                cr_assert(c->label && *c->label);
        }
        g_unlink(plain);
        g_unlink(null_link);
        g_rmdir(dir);
}

#define MS 1000

/* Frames at 10 per second, a daemon that takes 250 ms: one request in flight at a time, the frames
 * that come meanwhile are not queued, and the newest of them goes when the reply comes. */
Test(live, newest_frame_wins_with_one_request_in_flight) {
        emo_gtk_live_t *l = emo_gtk_live_new();
        emo_gtk_live_opened(l);
        int64_t t = 0, reply_at = -1;
        int sent = 0, shown = 0;
        for (int i = 0; i < 50; i++, t += 100 * MS) {
                if (reply_at >= 0 && t >= reply_at) {
                        reply_at = -1;
                        /* The reply comes; a frame waits (the ones shown meanwhile): it goes at once. */
                        if (emo_gtk_live_replied(l, t, true, false, NULL)) {
                                emo_gtk_live_sent(l, t);
                                sent++;
                                reply_at = t + 250 * MS;
                        }
                }
                shown++;
                if (emo_gtk_live_frame(l, t)) {
                        cr_assert(!emo_gtk_live_in_flight(l), "frame %d: told to send with a request in flight", i);
                        emo_gtk_live_sent(l, t);
                        sent++;
                        reply_at = t + 250 * MS;
                }
                cr_assert(emo_gtk_live_in_flight(l), "frame %d: nothing in flight", i);
        }
        emo_gtk_live_counts_t c = emo_gtk_live_counts(l);
        cr_assert_eq(c.frames, shown);
        cr_assert_eq(c.sent, sent);
        /* 250 ms each, replies handled on the next frame: one every 300 ms. */
        cr_assert(sent >= 15 && sent <= 18, "%d of %d frames sent", sent, shown);
        cr_assert_float_eq(emo_gtk_live_fps(l, t - 100 * MS), 10.0, 0.01);
        cr_assert_eq(emo_gtk_live_message(l), NULL);
        emo_gtk_live_free(l);
}

/* With nothing new shown meanwhile, a reply sends nothing: no frame goes twice. */
Test(live, no_frame_is_sent_twice) {
        emo_gtk_live_t *l = emo_gtk_live_new();
        emo_gtk_live_opened(l);
        cr_assert(emo_gtk_live_frame(l, 0));
        emo_gtk_live_sent(l, 0);
        cr_assert_not(emo_gtk_live_replied(l, 40 * MS, true, false, NULL));
        cr_assert_not(emo_gtk_live_in_flight(l));
        cr_assert_not(emo_gtk_live_replied(l, 50 * MS, true, false, NULL), "a reply without a request");
        cr_assert_eq(emo_gtk_live_counts(l).replies, 1);
        emo_gtk_live_free(l);
}

Test(live, round_trip_and_frame_rate) {
        emo_gtk_live_t *l = emo_gtk_live_new();
        emo_gtk_live_opened(l);
        cr_assert_eq(emo_gtk_live_latency_ms(l), -1);
        cr_assert_eq(emo_gtk_live_fps(l, 0), 0);
        emo_gtk_live_frame(l, 0);
        emo_gtk_live_sent(l, 0);
        emo_gtk_live_replied(l, 80 * MS, true, false, NULL);
        cr_assert_float_eq(emo_gtk_live_latency_ms(l), 80, 1e-9);
        emo_gtk_live_frame(l, 40 * MS);
        emo_gtk_live_sent(l, 100 * MS);
        emo_gtk_live_replied(l, 260 * MS, true, false, NULL);
        cr_assert_float_eq(emo_gtk_live_last_latency_ms(l), 160, 1e-9);
        cr_assert_float_eq(emo_gtk_live_mean_latency_ms(l), 120, 1e-9);
        double avg = emo_gtk_live_latency_ms(l);
        cr_assert(avg > 80 && avg < 160, "%f", avg);
        /* 25 frames per second for three seconds: the rate is over the last two. */
        for (int i = 0; i < 75; i++)
                emo_gtk_live_frame(l, 1000 * MS + i * 40 * MS);
        cr_assert_float_eq(emo_gtk_live_fps(l, 3960 * MS), 25.0, 0.01);
        cr_assert_eq(emo_gtk_live_fps(l, 7000 * MS), 0, "nothing shown for 3 s: no rate");
        emo_gtk_live_free(l);
}

/* The daemon stops answering: the tile says why (the connection's explanation) until an analysis
 * comes again, which counts as a recovery; a refusal for lack of room is no failure. */
Test(live, daemon_failure_is_shown_until_it_answers_again) {
        emo_gtk_live_t *l = emo_gtk_live_new();
        emo_gtk_live_opened(l);
        cr_assert(emo_gtk_live_frame(l, 0));
        emo_gtk_live_sent(l, 0);
        cr_assert_not(emo_gtk_live_frame(l, 100 * MS));
        cr_assert(emo_gtk_live_replied(l, 2000 * MS, false, false, "emotiond did not answer"),
                  "after a failure the waiting frame goes at once (on a fresh socket)");
        cr_assert_str_eq(emo_gtk_live_message(l), "emotiond did not answer");
        cr_assert(emo_gtk_live_daemon_failing(l));
        cr_assert_eq(emo_gtk_live_latency_ms(l), -1, "a failure has no round trip");
        emo_gtk_live_sent(l, 2000 * MS);
        emo_gtk_live_replied(l, 2100 * MS, false, true, NULL);
        cr_assert_str_eq(emo_gtk_live_message(l), "emotiond did not answer", "a refusal says nothing new");
        emo_gtk_live_frame(l, 2200 * MS);
        emo_gtk_live_sent(l, 2200 * MS);
        emo_gtk_live_replied(l, 2300 * MS, true, false, NULL);
        cr_assert_null(emo_gtk_live_message(l));
        emo_gtk_live_counts_t c = emo_gtk_live_counts(l);
        cr_assert_eq(c.errors, 1);
        cr_assert_eq(c.refused, 1);
        cr_assert_eq(c.replies, 1);
        cr_assert_eq(c.recoveries, 1);
        emo_gtk_live_send_failed(l, NULL);
        cr_assert_not(emo_gtk_live_in_flight(l));
        cr_assert(emo_gtk_live_daemon_failing(l));
        emo_gtk_live_free(l);
}

/* The source's own end: a file that ends says so; a failure names its cause and wins over the
 * daemon's message; after the end, a late reply sends nothing more. */
Test(live, source_end_and_failure) {
        emo_gtk_live_t *l = emo_gtk_live_new();
        cr_assert_eq(emo_gtk_live_state(l), EMO_GTK_LIVE_OPENING);
        emo_gtk_live_opened(l);
        cr_assert_eq(emo_gtk_live_state(l), EMO_GTK_LIVE_PLAYING);
        emo_gtk_live_frame(l, 0);
        emo_gtk_live_sent(l, 0);
        emo_gtk_live_frame(l, 100 * MS);
        emo_gtk_live_source_stopped(l, NULL);
        cr_assert_eq(emo_gtk_live_state(l), EMO_GTK_LIVE_ENDED);
        cr_assert_str_eq(emo_gtk_live_message(l), "End of the video");
        cr_assert_not(emo_gtk_live_replied(l, 200 * MS, true, false, NULL));
        emo_gtk_live_free(l);

        l = emo_gtk_live_new();
        emo_gtk_live_opened(l);
        emo_gtk_live_send_failed(l, "daemon gone");
        emo_gtk_live_source_stopped(l, "Cannot open /dev/video7: No such file or directory");
        cr_assert_eq(emo_gtk_live_state(l), EMO_GTK_LIVE_FAILED);
        cr_assert_str_eq(emo_gtk_live_message(l), "Cannot open /dev/video7: No such file or directory");
        emo_gtk_live_free(l);
}
