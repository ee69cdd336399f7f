/* emotion watch: the faces of a video file, a camera or a network stream, frame after frame.
 *
 * The frames come from lib/capture (FFmpeg: files, cameras, network streams, as BGR24) and go to
 * emotiond as raw pixels through the same pipelined connection as `analyze`, with the source as
 * stream id and the frame number as sequence.
 *
 * Two ways to read:
 *  - files: every frame is decoded and every --every'th is analysed, none dropped; the window
 *    keeps WATCH_FILE_WINDOW requests in flight, so a file is analysed as fast as the daemon goes.
 *  - live sources (devices, URLs, --live): the capture's reader thread decodes at the source's
 *    pace and keeps only the newest frame; each request takes the newest one, so the answers
 *    follow the scene with the daemon's latency instead of falling behind. Skipped frames are
 *    counted. A file read with --live is played at its frame rate, as a camera would deliver it
 *    (how cameras are tested without one).
 *
 * --smooth N asks the daemon to link the faces of consecutive analysed frames into tracks and to
 * average each track's probabilities over its last N frames (Options.smooth_frames); the daemon's
 * dialogue then follows the smoothed emotion.
 *
 * Nothing waits forever: a source that delivers nothing for --timeout ms ends the reading with an
 * error (lib/capture/capture.h says how).
 *
 * The text output says what changed, not every frame: a line when a face appears, changes its
 * emotion or leaves, with the dialogue line said to that face (Options.dialogue_per_face)
 * (--every-frame: the block of each frame, as `analyze` shows an image). Faces are followed by
 * the daemon's track when it smooths, else by their boxes' overlap from one analysed frame to the
 * next. JSON keeps one object per frame, for scripts; --every-face adds each face's line there
 * and to the --every-frame blocks. --annotate OUT writes the analysed frames with lib/overlay's
 * annotation to a video file (lib/capture/writer.h). */
#include "watch.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "annotate.h"
#include "capture/capture.h"
#include "capture/writer.h"
#include "emo/labels.h"
#include "emo/protocol.h" /* EMO_SMOOTH_MAX_WINDOW */
#include "emo/util.h"
#include "output.h"
#include "overlay/image.h"
#include "window.h"

#define WATCH_FILE_WINDOW 8
#define WATCH_LIVE_WINDOW 2 /* one frame being analysed, one waiting: no backlog */
enum {
        ARG_EVERY = CLI_ARG_FIRST,
        ARG_MAX_FRAMES,
        ARG_STREAM,
        ARG_LIVE,
        ARG_INPUT_FORMAT,
        ARG_MAX_SIDE,
        ARG_ANNOTATE,
        ARG_EVERY_FRAME,
        ARG_EVERY_FACE,
};

/* A face of the last analysed frame, for the change lines. */
typedef struct seen {
        int x, y, width, height;
        uint64_t track; /* the daemon's, 0 without --smooth */
        int emotion;
        unsigned number; /* "face N" in the lines: 1, 2, ... in order of appearance */
} seen_t;

#define WATCH_MAX_SEEN 64

typedef struct item {
        int64_t frame;  /* number of the frame in the source, from 0 */
        double time_s;  /* its presentation time, seconds from the start */
        int width, height; /* as sent, after --max-side */
        uint8_t *pixels;
        bool done;
        bool refused;       /* live: the daemon had no room for it (OVERLOADED); skipped, not shown */
        int error;          /* local or transport failure, negative errno */
        emo_reply_t *reply; /* when error == 0 */
} item_t;

typedef struct watch {
        cli_options_t o; /* o.smooth: --smooth N, else 0 */
        const char *source;
        const char *stream;
        char *own_stream; /* the stream id made for this run, without --stream */
        const char *input_format;
        unsigned every, max_side;
        bool every_given;
        uint64_t max_frames;
        bool live;
        bool pace; /* live, but a file: deliver frames at their presentation times */

        emo_capture_t *capture;
        int64_t decoded; /* final counts, once reading is over */
        int64_t skipped;
        int64_t refused; /* live frames the daemon refused (OVERLOADED): skipped too */

        /* items from `printed` on, in the window's order */
        item_t *items;
        size_t n_items, cap_items, printed;
        size_t analysed; /* items shown with their result (refused live frames are not) */
        size_t settled;  /* items done (done() called), shown or not */
        size_t blocks;
        unsigned failed;
        bool hinted; /* the --max-side advice was given */

        bool every_frame;     /* --every-frame: a block per frame instead of the changes */
        bool every_face;      /* --every-face: each face's line in JSON and --every-frame too */
        seen_t seen[WATCH_MAX_SEEN];
        size_t n_seen;
        unsigned next_number;
        size_t changes;       /* change lines printed */

        const char *annotate; /* --annotate OUT */
        emo_video_writer_t *writer;
        bool writer_failed;
        double fps;

        cli_progress_t progress; /* files, on a terminal */
} watch_t;

static volatile sig_atomic_t interrupted; /* the capture watches it too (its config's cancel) */

static void on_sigint(int sig) {
        (void) sig;
        interrupted = 1;
}

static void help(void) {
        printf("Usage: %s watch [OPTION]... SOURCE\n"
               "Analyse the faces of a video, frame after frame, and show each analysed frame as\n"
               "`analyze` shows an image. SOURCE is a video file (any format FFmpeg reads), a\n"
               "camera (/dev/video0) or a stream URL (rtsp://..., http://...).\n"
               "\n"
               "      --json           one JSON object per analysed frame and line, in frame order\n"
               "      --every-frame    show every analysed frame as `analyze` shows an image, instead\n"
               "                       of a line when a face appears, changes its emotion or leaves\n"
               "      --every-face     with --json or --every-frame, also give the dialogue line\n"
               "                       emotiond would say to each face, as `analyze --every-face`\n"
               "                       (the change lines always speak to the face that changed)\n"
               "      --annotate OUT   also write the analysed frames, with a box, the emoji and the\n"
               "                       emotion over every face, to the video file OUT (.mp4, .mkv,\n"
               "                       .avi...; the source's frame rate)\n"
               "      --every N        files: analyse one frame in N (default 1: every frame);\n"
               "                       not for live sources\n"
               "      --max-frames N   stop after analysing N frames (default: to the end)\n"
               "      --live           read SOURCE as a live source even if it is a file: always\n"
               "                       analyse the newest frame, skipping those the daemon has no\n"
               "                       time for (the default for devices and URLs)\n"
               "      --input-format F FFmpeg input format, e.g. video4linux2 or x11grab\n"
               "      --max-side N     scale frames down to at most N pixels on their longest side\n"
               "                       before sending them (default 0: send them as decoded)\n"
               "      --stream NAME    stream id the daemon sees (default: SOURCE#RANDOM, unique to\n"
               "                       this run; give the same NAME to continue a stream's smoothing)\n"
               "      --lang LANG      dialogue language, e.g. fr or en (default: the daemon's)\n"
               "      --max-faces N    at most N faces per frame, largest first\n"
               "      --smooth N       follow each face from frame to frame and also give its\n"
               "                       emotion averaged over its last N analysed frames (1-%d);\n"
               "                       the dialogue then follows the averaged emotion\n"
               CLI_COMMON_HELP
               "  -h, --help           show this help and exit\n"
               "\n"
               "Files show their progress on standard error when it is a terminal.\n"
               "A SOURCE that delivers nothing for --timeout ms is an error. Ctrl-C stops reading,\n"
               "waits for the frames in flight and exits (twice: at once).\n"
               "Exit status: 0 every analysed frame succeeded, 1 SOURCE could not be read, stalled or\n"
               "some frame failed (each failure is reported), 2 usage error, 3 the daemon did not answer.\n",
               cli_program_name, EMO_SMOOTH_MAX_WINDOW);
}

static item_t *item_at(watch_t *w, size_t index) {
        return &w->items[index - w->printed];
}

static int build(void *userdata, size_t index, cli_request_t *r) {
        watch_t *w = userdata;
        /* Refused live frames were not analysed: others take their place. Frames still in
         * flight may yet be refused, so with --max-frames reached the last word waits for them. */
        if (w->max_frames && index - (size_t) w->refused >= w->max_frames)
                return index > w->settled ? CLI_WINDOW_WAIT : CLI_WINDOW_END;
        emo_capture_frame_t *f = NULL;
        int k = emo_capture_next(w->capture, -1, &f);
        if (k != 0)
                return k == -ENOMEM ? -ENOMEM : CLI_WINDOW_END;
        if (w->n_items == w->cap_items) {
                size_t cap = w->cap_items ? 2 * w->cap_items : 16;
                item_t *p = realloc(w->items, cap * sizeof(item_t));
                if (!p) {
                        emo_capture_frame_free(f);
                        return CLI_WINDOW_END;
                }
                w->items = p;
                w->cap_items = cap;
        }
        item_t *it = &w->items[w->n_items++];
        *it = (item_t) { .frame = f->number, .time_s = f->time_s, .width = f->width, .height = f->height };
        it->pixels = TAKE_PTR(f->pixels);
        int64_t number = f->number;
        int width = f->width, height = f->height;
        size_t stride = f->stride;
        emo_capture_frame_free(f);

        cli_request_init(r, EMOTION__V1__IMAGE__FORMAT__BGR24, it->pixels, stride * (size_t) height, w->o.timeout_ms);
        r->image.width = (uint32_t) width;
        r->image.height = (uint32_t) height;
        r->image.stride = (uint32_t) stride;
        r->analyze.stream_id = (char *) w->stream;
        r->analyze.sequence = (uint64_t) number;
        if (w->live) {
                struct timespec now;
                clock_gettime(CLOCK_REALTIME, &now);
                r->analyze.capture_time_us = (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
        }
        cli_request_set_options(r, &w->o);
        /* The change lines speak to each face that changed, not to the largest one. */
        r->options.dialogue_per_face = w->every_face || (!w->o.json && !w->every_frame);
        return 0;
}

static double iou(const seen_t *a, const emo_pb_box_t *b) {
        double x0 = fmax(a->x, b->x), y0 = fmax(a->y, b->y);
        double x1 = fmin(a->x + a->width, b->x + b->width), y1 = fmin(a->y + a->height, b->y + b->height);
        if (x1 <= x0 || y1 <= y0)
                return 0;
        double inter = (x1 - x0) * (y1 - y0);
        return inter / ((double) a->width * a->height + (double) b->width * b->height - inter);
}

/* A dialogue line, indented under the change it answers; nothing when there is nothing to say. */
static void print_line(const emo_pb_dialogue_t *d) {
        if (d && d->kind != EMOTION__V1__DIALOGUE__KIND__NONE && d->text && d->text[0])
                printf("  dialogue (%s, %s): %s\n", emo_dialogue_kind_name(d->kind), cli_emotion_name(d->emotion),
                       d->text);
}

/* The line the daemon says to face f; false when it sent none (a daemon without
 * Options.dialogue_per_face: the frame's line is printed instead). */
static bool print_face_line(const emo_pb_face_t *f) {
        print_line(f->dialogue);
        return f->dialogue != NULL;
}

/* The lines of a frame whose faces differ from the last analysed frame's: each face that appears,
 * changes its emotion (the smoothed one under --smooth) or leaves, with the line said to it. A
 * face is the same as one of the last frame when the daemon gives it the same track, else when
 * their boxes overlap most (IoU at least 0.3, largest faces first). */
static void print_changes(watch_t *w, const item_t *it, const emo_analyze_reply_t *ar) {
        seen_t now[WATCH_MAX_SEEN];
        bool matched[WATCH_MAX_SEEN] = { false };
        size_t n = 0;
        char head[600];
        snprintf(head, sizeof(head), "%s frame %lld at %.2f s", w->source, (long long) it->frame, it->time_s);
        bool printed = false, own_lines = false;
        for (size_t i = 0; i < ar->n_faces && n < WATCH_MAX_SEEN; i++) {
                const emo_pb_face_t *f = ar->faces[i];
                if (!f->box)
                        continue;
                const emo_pb_smoothed_t *sm = f->smoothed;
                seen_t s = { .x = f->box->x, .y = f->box->y, .width = f->box->width, .height = f->box->height,
                             .track = sm ? sm->track : 0, .emotion = sm ? (int) sm->emotion : (int) f->emotion };
                ssize_t best = -1;
                double best_iou = 0.3;
                for (size_t k = 0; k < w->n_seen; k++) {
                        if (matched[k])
                                continue;
                        if (s.track) {
                                if (w->seen[k].track == s.track) {
                                        best = (ssize_t) k;
                                        break;
                                }
                                continue;
                        }
                        double o = iou(&w->seen[k], f->box);
                        if (o >= best_iou)
                                best = (ssize_t) k, best_iou = o;
                }
                double confidence = sm ? sm->confidence : f->confidence;
                if (best >= 0) {
                        matched[best] = true;
                        s.number = w->seen[best].number;
                        if (w->seen[best].emotion != s.emotion) {
                                cli_progress_finish(&w->progress);
                                printf("%s: face %u %s %.1f%% %s (was %s)\n", head, s.number,
                                       cli_emotion_name(s.emotion), confidence * 100.0,
                                       emo_emotion_emoji(s.emotion) ?: "", cli_emotion_name(w->seen[best].emotion));
                                own_lines |= print_face_line(f);
                                w->changes++;
                                printed = true;
                        }
                } else {
                        s.number = ++w->next_number;
                        cli_progress_finish(&w->progress);
                        printf("%s: face %u %s %.1f%% %s (new)\n", head, s.number, cli_emotion_name(s.emotion),
                               confidence * 100.0, emo_emotion_emoji(s.emotion) ?: "");
                        own_lines |= print_face_line(f);
                        w->changes++;
                        printed = true;
                }
                now[n++] = s;
        }
        for (size_t k = 0; k < w->n_seen; k++)
                if (!matched[k]) {
                        cli_progress_finish(&w->progress);
                        printf("%s: face %u gone\n", head, w->seen[k].number);
                        w->changes++;
                        printed = true;
                }
        if (printed && !own_lines)
                print_line(ar->dialogue);
        memcpy(w->seen, now, n * sizeof(seen_t));
        w->n_seen = n;
        if (printed)
                fflush(stdout);
}

/* --annotate: write the item's frame, with the overlay of ar when there is one. The first frame
 * opens the file at its size. */
static void write_annotated(watch_t *w, const item_t *it, const emo_analyze_reply_t *ar) {
        if (w->writer_failed || !it->pixels)
                return;
        _cleanup_free_ char *message = NULL;
        int r = 0;
        if (!w->writer) {
                r = emo_video_writer_open(w->annotate, it->width, it->height, w->fps, &w->writer, &message);
                if (r < 0) {
                        w->writer_failed = true;
                        w->failed++;
                        cli_error("%s: %s", w->annotate, message ? message : strerror(-r));
                        return;
                }
        }
        cairo_surface_t *s = emo_image_surface_from_bgr24(it->pixels, it->width, it->height, (size_t) it->width * 3);
        if (!s)
                r = -ENOMEM;
        if (r >= 0 && ar)
                r = cli_annotate_surface(s, ar);
        /* Files: the frame's own number; live: its time, so that the video plays at the pace the
         * frames came in. */
        int64_t number = w->live ? llround(it->time_s * (w->fps > 0 ? w->fps : 25)) : it->frame;
        if (r >= 0)
                r = emo_video_writer_write(w->writer, cairo_image_surface_get_data(s),
                                           (size_t) cairo_image_surface_get_stride(s), it->width, it->height, number);
        cairo_surface_destroy(s);
        if (r < 0) {
                w->writer_failed = true;
                w->failed++;
                cli_error("%s: cannot write frame %lld: %s", w->annotate, (long long) it->frame, strerror(-r));
        }
}

/* Show an item: its result, or, not done, as a frame in flight when the daemon stopped answering
 * (cli_report_unreachable() has said so; JSON gets a line for it, as `analyze` gives one per file). */
static void print_item(watch_t *w, item_t *it) {
        if (it->refused)
                return;
        const emo_analyze_reply_t *ar = it->done && it->error == 0 ? cli_reply_analyze(it->reply) : NULL;
        const char *status = "ok";
        char msg[512] = "";
        if (!it->done) {
                status = "unreachable";
                snprintf(msg, sizeof(msg), "no reply from the daemon");
        } else if (!ar) {
                status = cli_describe_failure(&w->o, it->error, it->reply, msg, sizeof(msg));
                w->failed++;
                cli_error("%s frame %lld: %s: %s", w->source, (long long) it->frame, status, msg);
                /* Raw frames are width x height x 3 bytes: an 8K frame is 100 MB, over the daemon's
                 * default message limit of 32 MiB. Every frame of the source will be refused the same
                 * way, so say once what to do about it. */
                if (it->error == 0 && it->reply && it->reply->status == EMO_STATUS_IMAGE_TOO_LARGE && !w->hinted) {
                        w->hinted = true;
                        cli_error("%s: frames of %dx%d (%zu bytes raw) are over emotiond's limits; scale them down "
                                  "with --max-side N",
                                  w->source, it->width, it->height, (size_t) it->width * (size_t) it->height * 3);
                }
        }
        if (it->done)
                w->analysed++;
        if (w->annotate && it->done)
                write_annotated(w, it, ar);
        if (!w->live && it->done) {
                /* The frame count is duration x rate, an estimate: never past 100 %. */
                size_t frames = (size_t) it->frame + 1;
                cli_progress_update(&w->progress, frames < w->progress.total ? frames : w->progress.total);
        }
        if (w->o.json) {
                json_object *o = json_object_new_object();
                if (!o)
                        return;
                cli_json_add_string(o, "file", w->source);
                cli_json_add_int(o, "frame", it->frame);
                cli_json_add_double(o, "time_s", it->time_s);
                cli_json_add_string(o, "status", status);
                if (ar)
                        cli_json_add_analyze(o, ar);
                else
                        cli_json_add_string(o, "error", msg);
                cli_json_print_line(o);
                json_object_put(o);
        } else if (ar && !w->every_frame) {
                print_changes(w, it, ar);
        } else if (ar) {
                char name[512];
                snprintf(name, sizeof(name), "%s frame %lld at %.2f s", w->source, (long long) it->frame, it->time_s);
                cli_progress_finish(&w->progress);
                if (w->blocks++ > 0)
                        putchar('\n');
                cli_print_analyze(name, ar);
                fflush(stdout);
        }
}

static void done(void *userdata, size_t index, int error, emo_reply_t *reply) {
        watch_t *w = userdata;
        item_t *it = item_at(w, index);
        w->settled++;
        it->done = true;
        it->error = error;
        it->reply = reply;
        if (!w->annotate) { /* --annotate draws on it when it is shown */
                free(it->pixels);
                it->pixels = NULL;
        }
        /* Live: a frame the daemon had no room for is one it had no time for. It is skipped,
         * as the reader skips frames, and the next request takes the newest frame; sending it
         * again later would show an old scene. */
        if (w->live && error == 0 && (int) reply->status == EMO_STATUS_OVERLOADED) {
                it->refused = true;
                w->refused++;
        }

        /* Print in frame order, then forget what was printed. */
        size_t k = 0;
        for (; k < w->n_items && w->items[k].done; k++) {
                print_item(w, &w->items[k]);
                emo_reply_free(w->items[k].reply);
                free(w->items[k].pixels);
        }
        if (k > 0) {
                memmove(w->items, w->items + k, (w->n_items - k) * sizeof(item_t));
                w->n_items -= k;
                w->printed += k;
        }
}

/* Stop reading (the capture's reader thread, for live sources) and keep its final counts. */
static void stop_capture(watch_t *w) {
        if (!w->capture)
                return;
        emo_capture_counts(w->capture, &w->decoded, &w->skipped);
}

static void watch_done(watch_t *w) {
        stop_capture(w);
        w->writer = emo_video_writer_free(w->writer);
        w->capture = emo_capture_free(w->capture);
        for (size_t i = 0; i < w->n_items; i++) {
                free(w->items[i].pixels);
                emo_reply_free(w->items[i].reply);
        }
        free(w->items);
        free(w->own_stream);
}

static int option(void *userdata, int c, const char *arg) {
        watch_t *w = userdata;
        uint64_t v;
        switch (c) {
        case ARG_EVERY:
                if (cli_parse_option_uint("watch", "--every", arg, 1, 1000000, &v) < 0)
                        return CLI_EXIT_USAGE;
                w->every = (unsigned) v;
                w->every_given = true;
                return CLI_EXIT_OK;
        case ARG_MAX_FRAMES:
                if (cli_parse_option_uint("watch", "--max-frames", arg, 1, UINT64_MAX / 2, &v) < 0)
                        return CLI_EXIT_USAGE;
                w->max_frames = v;
                return CLI_EXIT_OK;
        case ARG_MAX_SIDE:
                if (cli_parse_option_uint("watch", "--max-side", arg, 0, 100000, &v) < 0)
                        return CLI_EXIT_USAGE;
                w->max_side = (unsigned) v;
                return CLI_EXIT_OK;
        case ARG_STREAM:
                if (!*arg || strlen(arg) > EMO_STREAM_ID_MAX || !emo_utf8_valid(arg))
                        return cli_usage_error("watch", "--stream needs a name of 1 to %d bytes of UTF-8",
                                               EMO_STREAM_ID_MAX);
                w->stream = arg;
                return CLI_EXIT_OK;
        case ARG_LIVE:
                w->live = true;
                return CLI_EXIT_OK;
        case ARG_ANNOTATE:
                if (!*arg)
                        return cli_usage_error("watch", "--annotate needs a file name");
                w->annotate = arg;
                return CLI_EXIT_OK;
        case ARG_EVERY_FRAME:
                w->every_frame = true;
                return CLI_EXIT_OK;
        case ARG_EVERY_FACE:
                w->every_face = true;
                return CLI_EXIT_OK;
        case ARG_INPUT_FORMAT:
                w->input_format = arg;
                return CLI_EXIT_OK;
        default:
                return cli_usage_hint("watch");
        }
}

/* The stream id and whether SOURCE is read live. An exit code. */
static int choose_stream(watch_t *w) {
        if (!w->stream) {
                /* Unique to this run: two clients watching one source must not share smoothing. */
                _cleanup_free_ char *name = emo_capture_stream_id(w->source);
                if (!name || !(w->own_stream = emo_client_stream_id(name))) {
                        cli_error("%s", strerror(ENOMEM));
                        return CLI_EXIT_FAILED;
                }
                w->stream = w->own_stream;
        }
        if (emo_capture_is_live_source(w->source, w->input_format))
                w->live = true;
        else
                w->pace = w->live;
        /* A live source is analysed at the daemon's pace, the newest frame each time: there is no
         * "one frame in N" to pick. Better said than silently ignored. */
        if (w->live && w->every_given)
                return cli_usage_error("watch", "--every is for files; %s is read as a live source, analysed at "
                                                "the daemon's pace (the newest frame each time)",
                                       w->source);
        return CLI_EXIT_OK;
}

/* Open SOURCE with lib/capture. An exit code. */
static int open_source(watch_t *w) {
        emo_capture_config_t cc = {
                .source = w->source,
                .input_format = w->input_format,
                .timeout_ms = w->o.timeout_ms,
                .live = w->live,
                .pace = w->pace,
                .every = w->every,
                .max_side = w->max_side,
                .cancel = &interrupted,
        };
        _cleanup_free_ char *message = NULL;
        int r = emo_capture_open(&cc, &w->capture, &message);
        if (r < 0) {
                cli_error("%s: %s", w->source, message ? message : strerror(-r));
                return CLI_EXIT_FAILED;
        }
        return CLI_EXIT_OK;
}

/* Once the daemon is there: the progress of a file, the reader thread of a live source. An exit
 * code. */
static int start_reading(watch_t *w) {
        w->fps = emo_capture_frame_rate(w->capture);
        if (!w->live && !w->o.json) {
                /* Progress in frames of the file: duration x rate, when the file says both. */
                double frames = emo_capture_duration(w->capture) * w->fps;
                const char *slash = strrchr(w->source, '/');
                cli_progress_init(&w->progress, slash && slash[1] ? slash + 1 : w->source,
                                  frames >= 1 ? (size_t) llround(frames) : 0);
        }
        if (w->live) {
                int r = emo_capture_start(w->capture);
                if (r < 0) {
                        cli_error("Failed to start the reader thread: %s", strerror(-r));
                        return CLI_EXIT_FAILED;
                }
        }
        return CLI_EXIT_OK;
}

/* Send the frames through the request window and show the results as they come. An exit code. */
static int analyse_frames(watch_t *w, emo_client_t *client) {
        cli_window_config_t config = {
                .timeout_ms = w->o.timeout_ms,
                .attempts = w->o.attempts,
                .window = w->live ? WATCH_LIVE_WINDOW : WATCH_FILE_WINDOW,
                /* Files: every frame is wanted, late or not. Live: see done(). */
                .retry_overloaded = !w->live,
                /* A smoothed stream restarts when a frame number goes back. */
                .ordered = w->o.smooth > 0,
        };
        int r = cli_window_run(client, &config, SIZE_MAX, build, done, w);
        /* The reader may still be running (--max-frames, Ctrl-C, the daemon gone): the summary
         * reads what it counts. */
        stop_capture(w);

        if (r == -ETIMEDOUT) {
                int ret = cli_report_unreachable(&w->o, client);
                /* Frames answered but waiting behind one that never was are shown as they are; the
                 * ones in flight get "unreachable" lines in JSON. */
                for (size_t k = 0; k < w->n_items; k++)
                        print_item(w, &w->items[k]);
                return ret;
        }
        if (r < 0) {
                cli_error("Failed to talk to emotiond at %s: %s", emo_client_endpoint(client), emo_client_strerror(r));
                return CLI_EXIT_UNREACHABLE;
        }
        return w->failed > 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* --annotate: close the video file (or say why there is none). The frames written. */
static int64_t close_annotation(watch_t *w) {
        int64_t frames = w->writer ? emo_video_writer_frames(w->writer) : 0;
        if (w->writer) {
                _cleanup_free_ char *why = NULL;
                int k = emo_video_writer_close(TAKE_PTR(w->writer), &why);
                if (k < 0) {
                        w->failed++;
                        cli_error("%s: %s", w->annotate, why ? why : strerror(-k));
                }
        } else if (w->annotate && !w->writer_failed) {
                w->failed++;
                cli_error("%s: not written: no frame was analysed", w->annotate);
        }
        return frames;
}

/* The last lines of the text output: frames analysed, skipped and written. */
static void print_summary(const watch_t *w, int64_t annotated_frames) {
        if (w->o.json)
                return;
        char skipped[128] = "";
        if (w->live && w->refused > 0)
                snprintf(skipped, sizeof(skipped), ", %lld skipped to keep up (%lld of them refused by a busy daemon)",
                         (long long) (w->skipped + w->refused), (long long) w->refused);
        else if (w->live)
                snprintf(skipped, sizeof(skipped), ", %lld skipped to keep up", (long long) w->skipped);
        printf("%s%s: %zu frame%s analysed of %lld decoded%s%s\n", w->blocks ? "\n" : "", w->source, w->analysed,
               w->analysed == 1 ? "" : "s", (long long) w->decoded, skipped, interrupted ? " (interrupted)" : "");
        if (w->annotate && annotated_frames > 0 && !w->writer_failed)
                printf("%s: %lld annotated frame%s written\n", w->annotate, (long long) annotated_frames,
                       annotated_frames == 1 ? "" : "s");
}

/* Open SOURCE and the daemon, analyse the frames, and sum up. An exit code. */
static int watch_source(watch_t *w) {
        int ret = open_source(w);
        if (ret != CLI_EXIT_OK)
                return ret;
        _cleanup_(cli_client_freep) emo_client_t *client = NULL;
        int r = cli_client_open(&w->o, "watch", &client);
        if (r < 0)
                return cli_open_exit(r);
        ret = start_reading(w);
        if (ret != CLI_EXIT_OK)
                return ret;

        ret = analyse_frames(w, client);
        cli_progress_finish(&w->progress);
        int64_t annotated_frames = close_annotation(w);
        if (ret == CLI_EXIT_OK && w->failed > 0)
                ret = CLI_EXIT_FAILED;
        if (emo_capture_error(w->capture) < 0 && !interrupted) {
                char msg[256];
                cli_error("%s: reading stopped after %lld frames: %s", w->source, (long long) w->decoded,
                          emo_capture_error_message(w->capture, msg, sizeof(msg)));
                if (ret == CLI_EXIT_OK)
                        ret = CLI_EXIT_FAILED;
        }
        print_summary(w, annotated_frames);
        return ret;
}

int cli_watch_main(const cli_options_t *defaults, int argc, char **argv) {
        static const struct option options[] = {
                { "every", required_argument, NULL, ARG_EVERY },
                { "max-frames", required_argument, NULL, ARG_MAX_FRAMES },
                { "stream", required_argument, NULL, ARG_STREAM },
                { "live", no_argument, NULL, ARG_LIVE },
                { "input-format", required_argument, NULL, ARG_INPUT_FORMAT },
                { "max-side", required_argument, NULL, ARG_MAX_SIDE },
                { "annotate", required_argument, NULL, ARG_ANNOTATE },
                { "every-frame", no_argument, NULL, ARG_EVERY_FRAME },
                { "every-face", no_argument, NULL, ARG_EVERY_FACE },
                {},
        };
        _cleanup_(watch_done) watch_t w = { .o = *defaults, .every = 1 };
        const cli_command_t cmd = {
                .name = "watch",
                .help = help,
                .takes = CLI_TAKES_CONNECTION | CLI_TAKES_ANALYSIS,
                .options = options,
                .option = option,
                .userdata = &w,
                .operand = "SOURCE",
        };
        int ret;
        if (!cli_parse_command(&cmd, &w.o, argc, argv, &ret))
                return ret;
        if (optind + 1 < argc)
                return cli_usage_error("watch", "one SOURCE at a time (got %d)", argc - optind);
        w.source = argv[optind];
        ret = choose_stream(&w);
        if (ret != CLI_EXIT_OK)
                return ret;

        /* Ctrl-C: stop reading, finish the frames in flight. A second one kills (SA_RESETHAND). */
        struct sigaction sa = { .sa_handler = on_sigint, .sa_flags = SA_RESETHAND };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        ret = watch_source(&w);
        signal(SIGINT, SIG_DFL);
        return ret;
}
