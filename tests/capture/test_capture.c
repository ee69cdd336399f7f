/* lib/capture on real files (the fixture video, made by make_fixtures.py: 640x480 Motion-JPEG at
 * 10 frames/s) and real failures: every frame of a file in order, one in N, scaled down; a live
 * file played at its frame rate with the newest frame winning; a file that loops; sources that
 * cannot be read, with the sentence a person reads; a FIFO that delivers nothing; interruption. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/capture.h"
#include "emo/protocol.h"
#include "emo/util.h"
#include "fixtures.h"

TestSuite(capture, .timeout = 60);

/* The number of frames of the fixture video and its rate (fixtures.json). */
static size_t video_n_frames(void) {
        json_object *frames = emo_test_json_get(emo_test_json_get(emo_test_fixtures_json(), "video"), "frames");
        return json_object_array_length(frames);
}

static double video_fps(void) {
        return json_object_get_double(emo_test_json_get(emo_test_json_get(emo_test_fixtures_json(), "video"), "fps"));
}

static emo_capture_t *open_video(emo_capture_config_t config) {
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        config.source = video;
        if (!config.timeout_ms)
                config.timeout_ms = 5000;
        emo_capture_t *c = NULL;
        char *message = NULL;
        int r = emo_capture_open(&config, &c, &message);
        cr_assert_eq(r, 0, "cannot open %s: %d %s", video, r, message);
        return c;
}

Test(capture, file_gives_every_frame_in_order) {
        emo_capture_t *c = open_video((emo_capture_config_t) { 0 });
        cr_assert_float_eq(emo_capture_frame_rate(c), video_fps(), 0.01);
        size_t n = 0;
        emo_capture_frame_t *f;
        int r;
        while ((r = emo_capture_next(c, -1, &f)) == 0) {
                cr_assert_eq(f->number, (int64_t) n);
                cr_assert_float_eq(f->time_s, n / video_fps(), 0.001);
                cr_assert_eq(f->width, 640);
                cr_assert_eq(f->height, 480);
                cr_assert_eq(f->stride, 640u * 3);
                /* BGR24 of a real picture: not all one value. */
                uint8_t lo = 255, hi = 0;
                for (size_t i = 0; i < f->stride * 480; i += 997) {
                        lo = f->pixels[i] < lo ? f->pixels[i] : lo;
                        hi = f->pixels[i] > hi ? f->pixels[i] : hi;
                }
                cr_assert_gt(hi - lo, 50, "frame %zu is flat", n);
                emo_capture_frame_free(f);
                n++;
        }
        cr_assert_eq(r, 1);
        cr_assert_eq(n, video_n_frames());
        cr_assert_eq(emo_capture_error(c), 0, "the end of a file is no error");
        int64_t decoded, skipped;
        emo_capture_counts(c, &decoded, &skipped);
        cr_assert_eq(decoded, (int64_t) n);
        cr_assert_eq(skipped, 0);
        cr_assert_eq(emo_capture_next(c, -1, &f), 1, "still the end");
        emo_capture_free(c);
}

Test(capture, every_and_max_side) {
        emo_capture_t *c = open_video((emo_capture_config_t) { .every = 5, .max_side = 320 });
        emo_capture_frame_t *f;
        int64_t want = 0;
        while (emo_capture_next(c, -1, &f) == 0) {
                cr_assert_eq(f->number, want);
                cr_assert_eq(f->width, 320);
                cr_assert_eq(f->height, 240);
                cr_assert_eq(f->stride, 320u * 3);
                emo_capture_frame_free(f);
                want += 5;
        }
        cr_assert_eq(want, ((int64_t) video_n_frames() + 4) / 5 * 5);
        emo_capture_free(c);
}

static void on_notify(void *userdata) {
        __atomic_add_fetch((int *) userdata, 1, __ATOMIC_SEQ_CST);
}

/* Played at its frame rate: taking only now and then, the newest frame is given and the ones in
 * between are counted as skipped; the whole takes the video's duration; the reader says so to
 * the notify callback once per frame and once at the end. */
Test(capture, live_file_is_paced_and_newest_wins) {
        int notified = 0;
        int64_t t0 = emo_now_us();
        emo_capture_t *c = open_video((emo_capture_config_t) { .live = true, .pace = true, .notify = on_notify,
                                                               .userdata = &notified });
        cr_assert_eq(emo_capture_start(c), 0);
        int64_t last = -1, taken = 0;
        emo_capture_frame_t *f;
        int r;
        while ((r = emo_capture_next(c, -1, &f)) == 0) {
                cr_assert_gt(f->number, last, "frame numbers only grow");
                last = f->number;
                taken++;
                emo_capture_frame_free(f);
                usleep(250000); /* a slow consumer: 2.5 frame times */
        }
        double seconds = (emo_now_us() - t0) / 1e6;
        size_t n = video_n_frames();
        cr_assert_eq(r, 1);
        cr_assert_eq(last, (int64_t) n - 1, "the last frame is always given");
        cr_assert_lt(taken, (int64_t) n, "a slow consumer gets fewer frames than the video has");
        int64_t decoded, skipped;
        emo_capture_counts(c, &decoded, &skipped);
        cr_assert_eq(decoded, (int64_t) n);
        cr_assert_eq(skipped + taken, (int64_t) n, "%lld skipped, %lld taken", (long long) skipped, (long long) taken);
        cr_assert_geq(seconds, (n - 1) / video_fps() - 0.05, "played in %.2f s, faster than the video", seconds);
        cr_assert_eq(__atomic_load_n(&notified, __ATOMIC_SEQ_CST), (int) n + 1);
        emo_capture_free(c);
}

/* Nothing waiting: next() with a 0 ms wait says so at once, and a frame comes within a frame time. */
Test(capture, live_next_does_not_wait_when_told) {
        emo_capture_t *c = open_video((emo_capture_config_t) { .live = true, .pace = true });
        emo_capture_frame_t *f = NULL;
        cr_assert_eq(emo_capture_next(c, 0, &f), -EAGAIN, "not started: nothing yet");
        cr_assert_eq(emo_capture_start(c), 0);
        cr_assert_eq(emo_capture_next(c, 2000, &f), 0);
        emo_capture_frame_free(f);
        int64_t t0 = emo_now_us();
        int r = emo_capture_next(c, 0, &f);
        cr_assert_lt(emo_now_us() - t0, 20000, "a 0 ms wait took %lld us", (long long) (emo_now_us() - t0));
        if (r == 0)
                emo_capture_frame_free(f);
        else
                cr_assert_eq(r, -EAGAIN);
        emo_capture_free(c); /* stops the reader in the middle of the video */
}

/* A looping file goes on past its end, its frame numbers and times growing. */
Test(capture, live_file_loops) {
        emo_capture_t *c = open_video((emo_capture_config_t) { .live = true, .pace = true, .loop = true });
        cr_assert_eq(emo_capture_start(c), 0);
        size_t n = video_n_frames();
        int64_t deadline = emo_now_us() + (int64_t) ((n * 2 + 4) / video_fps() * 1e6) + 3000000;
        emo_capture_frame_t *f = NULL;
        int64_t last = -1;
        double last_time = -1;
        while (last < (int64_t) n + 3 && emo_now_us() < deadline) {
                int r = emo_capture_next(c, 500, &f);
                if (r == -EAGAIN)
                        continue;
                cr_assert_eq(r, 0, "the file ended at frame %lld although it loops", (long long) last);
                cr_assert_gt(f->number, last);
                cr_assert_gt(f->time_s, last_time);
                last = f->number;
                last_time = f->time_s;
                emo_capture_frame_free(f);
        }
        cr_assert_geq(last, (int64_t) n + 3, "no frame past the end after %zu frames", n);
        cr_assert_gt(last_time, (n - 1) / video_fps());
        emo_capture_free(c);
}

static void expect_open_fails(const char *source, int want, const char *message) {
        emo_capture_t *c = NULL;
        char *m = NULL;
        int r = emo_capture_open(&(emo_capture_config_t) { .source = source, .timeout_ms = 3000 }, &c, &m);
        cr_expect_eq(r, want, "%s: %d (%s), expected %d", source, r, m, want);
        cr_expect_null(c);
        cr_assert_not_null(m, "%s: no message", source);
        cr_expect(strstr(m, message), "%s: '%s' does not say '%s'", source, m, message);
        free(m);
}

Test(capture, unreadable_sources_are_explained) {
        _cleanup_free_ char *text = emo_test_fixture("text.txt");
        _cleanup_free_ char *photo = emo_test_fixture("one_face.jpg");
        expect_open_fails("/nonexistent/video.mp4", -ENOENT, "cannot open: No such file or directory");
        expect_open_fails("/dev/video-nonexistent", -ENOENT, "cannot open: ");
        expect_open_fails(text, -EINVAL, "a text file, not a video");
        emo_capture_t *c = NULL;
        char *m = NULL;
        cr_expect_eq(emo_capture_open(&(emo_capture_config_t) { .source = photo, .timeout_ms = 3000,
                                                                .input_format = "no-such-format" },
                                      &c, &m),
                     -EINVAL);
        cr_expect(m && strstr(m, "unknown input format 'no-such-format'"), "%s", m);
        free(m);
        cr_expect_eq(emo_capture_open(&(emo_capture_config_t) { .source = photo }, &c, NULL), -EINVAL,
                     "a timeout is required");
}

/* A FIFO nobody writes to: opening blocks in open(2) until the deadline breaks it. */
Test(capture, silent_source_times_out) {
        char dir[] = "/tmp/emo-capture.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char fifo[128];
        snprintf(fifo, sizeof(fifo), "%s/silent", dir);
        cr_assert_eq(mkfifo(fifo, 0600), 0);
        int keep = open(fifo, O_RDWR | O_NONBLOCK); /* a writer that never writes */
        cr_assert_geq(keep, 0);
        emo_capture_t *c = NULL;
        char *m = NULL;
        int64_t t0 = emo_now_us();
        int r = emo_capture_open(&(emo_capture_config_t) { .source = fifo, .timeout_ms = 500 }, &c, &m);
        double s = (emo_now_us() - t0) / 1e6;
        cr_expect_eq(r, -ETIMEDOUT, "%d: %s", r, m);
        cr_expect(m && strstr(m, "nothing received for 500 ms"), "%s", m);
        cr_expect_lt(s, 4.0, "gave up after %.1f s", s);
        free(m);
        close(keep);
        unlink(fifo);
        rmdir(dir);
}

static void *interrupt_later(void *userdata) {
        usleep(300000);
        emo_capture_interrupt(userdata);
        return NULL;
}

Test(capture, interrupt_ends_reading) {
        emo_capture_t *c = open_video((emo_capture_config_t) { .live = true, .pace = true, .loop = true });
        cr_assert_eq(emo_capture_start(c), 0);
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, interrupt_later, c), 0);
        emo_capture_frame_t *f;
        int r;
        int64_t t0 = emo_now_us();
        while ((r = emo_capture_next(c, -1, &f)) == 0)
                emo_capture_frame_free(f);
        pthread_join(t, NULL);
        cr_assert_eq(r, 1);
        cr_assert_lt(emo_now_us() - t0, 2000000);
        cr_assert_eq(emo_capture_error(c), -EINTR);
        char buf[64];
        cr_assert_str_eq(emo_capture_error_message(c, buf, sizeof(buf)), "interrupted");
        emo_capture_free(c);
}

Test(capture, stream_ids) {
        _cleanup_free_ char *plain = emo_capture_stream_id("/dev/video0");
        cr_assert_str_eq(plain, "/dev/video0");
        char long_a[400], long_b[400];
        memset(long_a, 'a', sizeof(long_a) - 1);
        long_a[sizeof(long_a) - 1] = '\0';
        memcpy(long_b, long_a, sizeof(long_b));
        long_b[sizeof(long_b) - 2] = 'b';
        _cleanup_free_ char *a = emo_capture_stream_id(long_a);
        _cleanup_free_ char *b = emo_capture_stream_id(long_b);
        cr_assert_leq(strlen(a), EMO_STREAM_ID_MAX);
        cr_assert_str_neq(a, b, "two long names with one beginning stay two streams");
        _cleanup_free_ char *latin1 = emo_capture_stream_id("caf\xe9.avi");
        cr_assert(emo_utf8_valid(latin1), "%s", latin1);
        cr_assert(emo_capture_is_live_source("/dev/video0", NULL));
        cr_assert(emo_capture_is_live_source("rtsp://cam/1", NULL));
        cr_assert(emo_capture_is_live_source(":0.0", "x11grab"));
        cr_assert(!emo_capture_is_live_source("clip.mp4", NULL));
}

static volatile sig_atomic_t cancel_flag;

static void on_signal(int sig) {
        (void) sig;
        cancel_flag = 1;
}

/* As Ctrl-C reaches emotion watch: a signal, whose handler sets the flag, lands on the thread that
 * is blocked in open(2). */
static void *cancel_later(void *userdata) {
        usleep(300000);
        pthread_kill(*(pthread_t *) userdata, SIGUSR1);
        return NULL;
}

/* The caller's flag (emotion watch's SIGINT handler sets it) ends an open that blocks on a silent
 * FIFO long before its 20 s deadline. */
Test(capture, cancel_flag_ends_a_blocked_open) {
        char dir[] = "/tmp/emo-capture.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char fifo[128];
        snprintf(fifo, sizeof(fifo), "%s/silent", dir);
        cr_assert_eq(mkfifo(fifo, 0600), 0);
        int keep = open(fifo, O_RDWR | O_NONBLOCK);
        cr_assert_geq(keep, 0);
        struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART, as watch's SIGINT */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
        pthread_t self = pthread_self(), t;
        cr_assert_eq(pthread_create(&t, NULL, cancel_later, &self), 0);
        emo_capture_t *c = NULL;
        char *m = NULL;
        int64_t t0 = emo_now_us();
        int r = emo_capture_open(&(emo_capture_config_t) { .source = fifo, .timeout_ms = 20000, .cancel = &cancel_flag },
                                 &c, &m);
        double s = (emo_now_us() - t0) / 1e6;
        pthread_join(t, NULL);
        cr_expect_eq(r, -EINTR, "%d: %s", r, m);
        cr_expect(m && strstr(m, "interrupted"), "%s", m);
        cr_expect_lt(s, 3.0, "gave up after %.1f s", s);
        free(m);
        close(keep);
        unlink(fifo);
        rmdir(dir);
}
