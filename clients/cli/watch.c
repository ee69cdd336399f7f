/* emotion watch: the faces of a video file, a camera or a network stream, frame after frame.
 *
 * FFmpeg does the reading and decoding (libavformat, libavcodec; cameras through libavdevice's
 * video4linux2 input, IP cameras through rtsp:// and the like), libswscale turns each frame into
 * BGR24, and the frames go to emotiond as raw pixels through the same pipelined connection as
 * `analyze`, with the source as stream id and the frame number as sequence.
 *
 * Two ways to read:
 *  - files: every frame is decoded and every --every'th is analysed, none dropped; the pipeline
 *    keeps WATCH_FILE_WINDOW requests in flight, so a file is analysed as fast as the daemon goes.
 *  - live sources (devices, URLs, --live): a reader thread decodes at the source's pace and keeps
 *    only the newest frame; each request takes the newest one, so the answers follow the scene
 *    with the daemon's latency instead of falling behind. Skipped frames are counted. A file read
 *    with --live is played at its frame rate, as a camera would deliver it (how cameras are
 *    tested without one).
 *
 * --smooth N asks the daemon to link the faces of consecutive analysed frames into tracks and to
 * average each track's probabilities over its last N frames (Options.smooth_frames); the daemon's
 * dialogue then follows the smoothed emotion.
 *
 * Nothing waits forever: a source that delivers nothing for --timeout ms ends the reading with an
 * error. Network protocols get it as FFmpeg's rw_timeout; for everything else (a FIFO, a device, a
 * stream that trickles in headers only) the interrupt callback enforces the same deadline, and a
 * thread-directed SIGALRM, armed only while FFmpeg reads, breaks the blocking read() or open() that
 * the callback alone could not (FFmpeg's file protocol checks it only between reads). */
#include "watch.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "emo/smooth.h" /* EMO_SMOOTH_MAX_WINDOW */
#include "emo/util.h"
#include "output.h"
#include "pipeline.h"

#define WATCH_FILE_WINDOW 8
#define WATCH_LIVE_WINDOW 2 /* one frame being analysed, one waiting: no backlog */
/* Once the deadline has passed, SIGALRM comes again this often until FFmpeg gives up: the first
 * one may land between two system calls. */
#define WATCH_STALL_REPEAT_NS (100 * 1000 * 1000)

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

enum {
        ARG_LANG = CLI_ARG_FIRST,
        ARG_MAX_FACES,
        ARG_EVERY,
        ARG_MAX_FRAMES,
        ARG_STREAM,
        ARG_LIVE,
        ARG_INPUT_FORMAT,
        ARG_MAX_SIDE,
        ARG_SMOOTH,
};

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
        cli_options_t o;
        const char *source;
        const char *stream;
        const char *language;
        const char *input_format;
        unsigned max_faces, every, max_side;
        bool every_given;
        uint64_t max_frames;
        bool live;
        bool pace; /* live, but a file: deliver frames at their presentation times */

        AVFormatContext *fmt;
        AVCodecContext *dec;
        AVStream *st;
        struct SwsContext *sws;
        AVPacket *pkt;
        AVFrame *frame; /* the decoder's output (the reader thread's, when live) */
        AVFrame *work;  /* live: the frame taken from `latest` for the request being built */
        int64_t decoded; /* frames decoded */
        bool eof;
        int read_error;  /* AVERROR that ended the source early, 0 if none */

        /* The stall deadline, kept by the thread that reads (the main one while opening and for
         * files, the reader for live sources): 0 while FFmpeg is not reading. */
        int64_t stall_deadline_us;
        int64_t stall_bytes; /* fmt->pb->bytes_read when the deadline was last set */
        bool stalled;        /* reading failed because nothing came for --timeout ms */
        timer_t stall_timer; /* SIGALRM to the reading thread at the deadline */
        bool stall_timer_ok;

        /* live: the reader thread's newest frame */
        pthread_t reader;
        bool reader_started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        AVFrame *latest;
        bool latest_fresh;
        bool ended; /* the reader has stopped */
        int64_t latest_number;
        int64_t skipped;
        volatile sig_atomic_t stop;
        int64_t refused; /* live frames the daemon refused (OVERLOADED): skipped too */

        /* items from `printed` on, in pipeline order */
        item_t *items;
        size_t n_items, cap_items, printed;
        size_t analysed; /* items shown with their result (refused live frames are not) */
        size_t settled;  /* items done (done() called), shown or not */
        size_t blocks;
        unsigned failed;
        bool hinted; /* the --max-side advice was given */

        unsigned smooth; /* --smooth N, else 0 */
} watch_t;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
        (void) sig;
        interrupted = 1;
}

/* SIGALRM only breaks a blocking system call of the reading thread (no SA_RESTART); FFmpeg then
 * asks interrupt_cb whether to go on. */
static void on_sigalrm(int sig) {
        (void) sig;
}

static void help(void) {
        printf("Usage: %s watch [OPTION]... SOURCE\n"
               "Analyse the faces of a video, frame after frame, and show each analysed frame as\n"
               "`analyze` shows an image. SOURCE is a video file (any format FFmpeg reads), a\n"
               "camera (/dev/video0) or a stream URL (rtsp://..., http://...).\n"
               "\n"
               "      --json           one JSON object per analysed frame and line, in frame order\n"
               "      --every N        files: analyse one frame in N (default 1: every frame);\n"
               "                       not for live sources\n"
               "      --max-frames N   stop after analysing N frames (default: to the end)\n"
               "      --live           read SOURCE as a live source even if it is a file: always\n"
               "                       analyse the newest frame, skipping those the daemon has no\n"
               "                       time for (the default for devices and URLs)\n"
               "      --input-format F FFmpeg input format, e.g. video4linux2 or x11grab\n"
               "      --max-side N     scale frames down to at most N pixels on their longest side\n"
               "                       before sending them (default 0: send them as decoded)\n"
               "      --stream NAME    stream id the daemon sees (default: SOURCE)\n"
               "      --lang LANG      dialogue language, e.g. fr or en (default: the daemon's)\n"
               "      --max-faces N    at most N faces per frame, largest first\n"
               "      --smooth N       follow each face from frame to frame and also give its\n"
               "                       emotion averaged over its last N analysed frames (1-%d);\n"
               "                       the dialogue then follows the averaged emotion\n"
               CLI_COMMON_HELP
               "  -h, --help           show this help and exit\n"
               "\n"
               "A SOURCE that delivers nothing for --timeout ms is an error. Ctrl-C stops reading,\n"
               "waits for the frames in flight and exits (twice: at once).\n"
               "Exit status: 0 every analysed frame succeeded, 1 SOURCE could not be read, stalled or\n"
               "some frame failed (each failure is reported), 2 usage error, 3 the daemon did not answer.\n",
               cli_program_name, EMO_SMOOTH_MAX_WINDOW);
}

static const char *av_message(int err, char *buf, size_t len) {
        if (av_strerror(err, buf, len) < 0)
                snprintf(buf, len, "error %d", err);
        return buf;
}

static void stall_timer_set(watch_t *w, int64_t first_ns, int64_t repeat_ns) {
        if (!w->stall_timer_ok)
                return;
        struct itimerspec t = {
                .it_value = { first_ns / 1000000000, first_ns % 1000000000 },
                .it_interval = { repeat_ns / 1000000000, repeat_ns % 1000000000 },
        };
        timer_settime(w->stall_timer, 0, &t, NULL);
}

/* Aim the stall timer at the calling thread, the one that reads from now on. Without a timer
 * (timer_create failed), blocking reads of local FIFOs cannot be broken; the rest still works. */
static void stall_timer_take(watch_t *w) {
        if (w->stall_timer_ok)
                timer_delete(w->stall_timer);
        struct sigevent ev = {
                .sigev_notify = SIGEV_THREAD_ID,
                .sigev_signo = SIGALRM,
        };
        ev.sigev_notify_thread_id = gettid();
        w->stall_timer_ok = timer_create(CLOCK_MONOTONIC, &ev, &w->stall_timer) == 0;
}

static int64_t stall_bytes(const watch_t *w) {
        return w->fmt && w->fmt->pb ? w->fmt->pb->bytes_read : 0;
}

/* FFmpeg is about to read (or has just received bytes): it has --timeout ms, and extra_us more,
 * for the next ones. */
static void stall_arm_longer(watch_t *w, int64_t extra_us) {
        int64_t us = (int64_t) w->o.timeout_ms * 1000 + extra_us;
        w->stall_deadline_us = emo_now_us() + us;
        w->stall_bytes = stall_bytes(w);
        stall_timer_set(w, us * 1000, WATCH_STALL_REPEAT_NS);
}

static void stall_arm(watch_t *w) {
        stall_arm_longer(w, 0);
}

/* FFmpeg returned r: note whether it failed because the deadline passed, and stop the clock. */
static int stall_disarm(watch_t *w, int r) {
        if (r < 0 && w->stall_deadline_us && emo_now_us() >= w->stall_deadline_us && !w->stop && !interrupted)
                w->stalled = true;
        w->stall_deadline_us = 0;
        stall_timer_set(w, 0, 0);
        return r;
}

/* FFmpeg calls this while it reads and between reads (network, devices, files): returning 1
 * makes it give up. */
static int interrupt_cb(void *userdata) {
        watch_t *w = userdata;
        if (w->stop || interrupted)
                return 1;
        if (!w->stall_deadline_us)
                return 0;
        /* Bytes coming in are progress: a slow source is not a stalled one. (Sources without an
         * AVIOContext, RTSP and devices, show progress as packets, see decode_next.) */
        if (stall_bytes(w) != w->stall_bytes) {
                stall_arm(w);
                return 0;
        }
        if (emo_now_us() < w->stall_deadline_us)
                return 0;
        /* Noted here: the AVIOContext keeps the error, and later reads fail at once with it. */
        w->stalled = true;
        return 1;
}

/* What ended a read: "nothing received for N ms" for a stall, "interrupted" for Ctrl-C, else
 * FFmpeg's message. */
static const char *read_message(const watch_t *w, int err, char *buf, size_t len) {
        if (interrupted) {
                snprintf(buf, len, "interrupted");
                return buf;
        }
        if (w->stalled) {
                snprintf(buf, len, "nothing received for %d ms", w->o.timeout_ms);
                return buf;
        }
        return av_message(err, buf, len);
}

/* Options for FFmpeg's network protocols: give up on a connection that delivers nothing for
 * --timeout ms (rw_timeout for those read through AVIO, http among them; RTSP reads its own
 * sockets with its "timeout"). Microseconds. Other inputs ignore them. */
static int network_options(const watch_t *w, AVDictionary **ret) {
        if (!strstr(w->source, "://"))
                return 0;
        char us[32];
        snprintf(us, sizeof(us), "%lld", (long long) w->o.timeout_ms * 1000);
        if (av_dict_set(ret, "rw_timeout", us, 0) < 0)
                return -ENOMEM;
        if ((strncmp(w->source, "rtsp://", 7) == 0 || strncmp(w->source, "rtsps://", 8) == 0) &&
            av_dict_set(ret, "timeout", us, 0) < 0)
                return -ENOMEM;
        return 0;
}

static int open_source(watch_t *w) {
        char msg[256];
        const AVInputFormat *ifmt = NULL;
        avdevice_register_all();
        if (w->input_format) {
                ifmt = av_find_input_format(w->input_format);
                if (!ifmt) {
                        cli_error("%s: unknown input format '%s'", w->source, w->input_format);
                        return -EINVAL;
                }
        } else if (strncmp(w->source, "/dev/video", 10) == 0) {
                ifmt = av_find_input_format("video4linux2");
        }
        AVDictionary *opts = NULL;
        if (network_options(w, &opts) < 0) {
                av_dict_free(&opts);
                return -ENOMEM;
        }
        w->fmt = avformat_alloc_context();
        if (!w->fmt) {
                av_dict_free(&opts);
                return -ENOMEM;
        }
        w->fmt->interrupt_callback = (AVIOInterruptCB) { interrupt_cb, w };
        stall_timer_take(w);
        stall_arm(w);
        int r = stall_disarm(w, avformat_open_input(&w->fmt, w->source, ifmt, &opts));
        av_dict_free(&opts);
        if (r < 0) {
                cli_error("%s: cannot open: %s", w->source, read_message(w, r, msg, sizeof(msg)));
                return r;
        }
        /* Probing reads up to max_analyze_duration of the stream (5 s unless set) before it
         * returns. Sources without an AVIOContext (RTSP, devices) show the callback no bytes
         * coming in meanwhile, so a camera that is delivering video but, say, announces an audio
         * track it never sends would look stalled: their probe gets that long on top of
         * --timeout. (RTSP's own socket timeout still catches a dead connection.) */
        stall_arm_longer(w, w->fmt->pb ? 0 : w->fmt->max_analyze_duration > 0 ? w->fmt->max_analyze_duration : 5 * AV_TIME_BASE);
        r = stall_disarm(w, avformat_find_stream_info(w->fmt, NULL));
        if (r < 0) {
                cli_error("%s: cannot read the stream information: %s", w->source,
                          read_message(w, r, msg, sizeof(msg)));
                return r;
        }
        const AVCodec *codec = NULL;
        int si = av_find_best_stream(w->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
        if (si < 0 || !codec) {
                cli_error("%s: no video stream that this FFmpeg can decode", w->source);
                return si < 0 ? si : AVERROR_DECODER_NOT_FOUND;
        }
        if (codec->id == AV_CODEC_ID_ANSI) {
                /* FFmpeg renders any text file as ANSI art: a mistake, not a video. */
                cli_error("%s: a text file, not a video", w->source);
                return AVERROR_INVALIDDATA;
        }
        w->st = w->fmt->streams[si];
        w->dec = avcodec_alloc_context3(codec);
        if (!w->dec)
                return -ENOMEM;
        if ((r = avcodec_parameters_to_context(w->dec, w->st->codecpar)) < 0 ||
            (r = avcodec_open2(w->dec, codec, NULL)) < 0) {
                cli_error("%s: cannot open the %s decoder: %s", w->source, codec->name, av_message(r, msg, sizeof(msg)));
                return r;
        }
        w->pkt = av_packet_alloc();
        w->frame = av_frame_alloc();
        w->latest = av_frame_alloc();
        w->work = av_frame_alloc();
        if (!w->pkt || !w->frame || !w->latest || !w->work)
                return -ENOMEM;
        return 0;
}

/* The next decoded frame of the video stream into w->frame: 0, 1 at the end, or an AVERROR. */
static int decode_next(watch_t *w) {
        for (;;) {
                int r = avcodec_receive_frame(w->dec, w->frame);
                if (r == 0) {
                        w->decoded++;
                        return 0;
                }
                if (r == AVERROR_EOF)
                        return 1;
                if (r != AVERROR(EAGAIN))
                        return r;
                if (w->eof)
                        return 1;
                /* Armed per packet: decoding time is not the source's, and a packet is progress. */
                stall_arm(w);
                r = stall_disarm(w, av_read_frame(w->fmt, w->pkt));
                if (r == AVERROR_EOF) {
                        w->eof = true;
                        avcodec_send_packet(w->dec, NULL); /* drain the decoder */
                        continue;
                }
                if (r < 0)
                        return r;
                if (w->pkt->stream_index == w->st->index)
                        r = avcodec_send_packet(w->dec, w->pkt);
                av_packet_unref(w->pkt);
                /* A damaged packet is skipped, as players do; a real I/O error ends above. */
                if (r < 0 && r != AVERROR(EAGAIN) && r != AVERROR_INVALIDDATA)
                        return r;
        }
}

static int64_t monotonic_us(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (int64_t) t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void *reader_main(void *userdata) {
        watch_t *w = userdata;
        stall_timer_take(w);
        int64_t start_us = monotonic_us();
        for (;;) {
                int r = decode_next(w);
                if (r == 0 && w->pace) {
                        /* Wait for the frame's time, in slices short enough to notice a stop. */
                        int64_t pts = w->frame->best_effort_timestamp;
                        int64_t first = w->st->start_time != AV_NOPTS_VALUE ? w->st->start_time : 0;
                        double t = pts != AV_NOPTS_VALUE ? (double) (pts - first) * av_q2d(w->st->time_base) : 0;
                        int64_t due = start_us + (int64_t) (t * 1e6);
                        for (int64_t now = monotonic_us(); now < due && !w->stop && !interrupted; now = monotonic_us()) {
                                int64_t left = due - now;
                                struct timespec d = { 0, (long) ((left < 50000 ? left : 50000) * 1000) };
                                nanosleep(&d, NULL);
                        }
                }
                pthread_mutex_lock(&w->lock);
                if (r != 0) {
                        w->ended = true;
                        if (r < 0 && !w->stop && !interrupted)
                                w->read_error = r;
                        pthread_cond_broadcast(&w->cond);
                        pthread_mutex_unlock(&w->lock);
                        return NULL;
                }
                if (w->latest_fresh)
                        w->skipped++;
                av_frame_unref(w->latest);
                av_frame_move_ref(w->latest, w->frame);
                w->latest_number = w->decoded - 1;
                w->latest_fresh = true;
                pthread_cond_broadcast(&w->cond);
                bool stop = w->stop;
                pthread_mutex_unlock(&w->lock);
                if (stop)
                        return NULL;
        }
}

/* The next frame to analyse and its number: 0, 1 when there is none, or an AVERROR. The frame
 * belongs to w; unref it when done. */
static int next_frame(watch_t *w, AVFrame **ret_frame, int64_t *ret_number) {
        if (!w->live) {
                for (;;) {
                        if (interrupted)
                                return 1;
                        int r = decode_next(w);
                        if (r != 0)
                                return r;
                        if ((w->decoded - 1) % w->every == 0) {
                                *ret_frame = w->frame;
                                *ret_number = w->decoded - 1;
                                return 0;
                        }
                        av_frame_unref(w->frame);
                }
        }
        pthread_mutex_lock(&w->lock);
        while (!w->latest_fresh && !w->ended && !interrupted) {
                struct timespec t;
                clock_gettime(CLOCK_REALTIME, &t);
                t.tv_nsec += 100 * 1000 * 1000; /* wake up now and then to notice Ctrl-C */
                if (t.tv_nsec >= 1000000000) {
                        t.tv_sec++;
                        t.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&w->cond, &w->lock, &t);
        }
        int r = 1;
        if (w->latest_fresh && !interrupted) {
                av_frame_unref(w->work);
                av_frame_move_ref(w->work, w->latest);
                w->latest_fresh = false;
                *ret_frame = w->work;
                *ret_number = w->latest_number;
                r = 0;
        } else if (w->read_error) {
                r = w->read_error;
        }
        pthread_mutex_unlock(&w->lock);
        return r;
}

static item_t *item_at(watch_t *w, size_t index) {
        return &w->items[index - w->printed];
}

static int build(void *userdata, size_t index, cli_request_t *r) {
        watch_t *w = userdata;
        /* Refused live frames were not analysed: others take their place. Frames still in
         * flight may yet be refused, so with --max-frames reached the last word waits for them. */
        if (w->max_frames && index - (size_t) w->refused >= w->max_frames)
                return index > w->settled ? CLI_PIPELINE_WAIT : CLI_PIPELINE_END;
        int64_t number;
        AVFrame *f;
        int k = next_frame(w, &f, &number);
        if (k != 0) {
                if (k < 0 && !w->read_error)
                        w->read_error = k;
                return CLI_PIPELINE_END;
        }
        if (w->n_items == w->cap_items) {
                size_t cap = w->cap_items ? 2 * w->cap_items : 16;
                item_t *p = realloc(w->items, cap * sizeof(item_t));
                if (!p)
                        return CLI_PIPELINE_END;
                w->items = p;
                w->cap_items = cap;
        }
        item_t *it = &w->items[w->n_items++];
        *it = (item_t) { .frame = number };
        int64_t pts = f->best_effort_timestamp;
        int64_t start = w->st->start_time != AV_NOPTS_VALUE ? w->st->start_time : 0;
        if (pts != AV_NOPTS_VALUE)
                it->time_s = (double) (pts - start) * av_q2d(w->st->time_base);
        else if (w->st->avg_frame_rate.num > 0)
                it->time_s = (double) number / av_q2d(w->st->avg_frame_rate);

        int width = f->width, height = f->height;
        int longest = width > height ? width : height;
        if (w->max_side && longest > (int) w->max_side) {
                width = (int) ((int64_t) width * w->max_side / longest);
                height = (int) ((int64_t) height * w->max_side / longest);
                width = width ? width : 1;
                height = height ? height : 1;
        }
        it->width = width;
        it->height = height;
        w->sws = sws_getCachedContext(w->sws, f->width, f->height, f->format, width, height, AV_PIX_FMT_BGR24,
                                      SWS_AREA, NULL, NULL, NULL);
        size_t stride = (size_t) width * 3;
        it->pixels = w->sws ? malloc(stride * (size_t) height) : NULL;
        if (!it->pixels) {
                av_frame_unref(f);
                return -ENOMEM;
        }
        uint8_t *dst[4] = { it->pixels };
        int dst_stride[4] = { (int) stride };
        sws_scale(w->sws, (const uint8_t *const *) f->data, f->linesize, 0, f->height, dst, dst_stride);
        av_frame_unref(f);

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
        r->options.include_probabilities = true;
        r->options.max_faces = w->max_faces;
        r->options.language = (char *) (w->language ?: "");
        r->options.smooth_frames = w->smooth;
        return 0;
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
        } else if (ar) {
                char name[512];
                snprintf(name, sizeof(name), "%s frame %lld at %.2f s", w->source, (long long) it->frame, it->time_s);
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
        free(it->pixels);
        it->pixels = NULL;
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
        }
        if (k > 0) {
                memmove(w->items, w->items + k, (w->n_items - k) * sizeof(item_t));
                w->n_items -= k;
                w->printed += k;
        }
}

/* Stop the reader thread and wait for it, breaking a blocking read if it is in one. After this,
 * w->decoded, w->read_error and w->skipped are final. */
static void stop_reader(watch_t *w) {
        if (!w->reader_started)
                return;
        pthread_mutex_lock(&w->lock);
        w->stop = 1;
        pthread_mutex_unlock(&w->lock);
        for (;;) {
                struct timespec t;
                clock_gettime(CLOCK_REALTIME, &t);
                t.tv_nsec += WATCH_STALL_REPEAT_NS;
                if (t.tv_nsec >= 1000000000) {
                        t.tv_sec++;
                        t.tv_nsec -= 1000000000;
                }
                if (pthread_timedjoin_np(w->reader, NULL, &t) != ETIMEDOUT)
                        break;
                pthread_kill(w->reader, SIGALRM);
        }
        w->reader_started = false;
}

static void watch_done(watch_t *w) {
        stop_reader(w);
        if (w->stall_timer_ok)
                timer_delete(w->stall_timer);
        for (size_t i = 0; i < w->n_items; i++) {
                free(w->items[i].pixels);
                emo_reply_free(w->items[i].reply);
        }
        free(w->items);
        sws_freeContext(w->sws);
        av_frame_free(&w->frame);
        av_frame_free(&w->latest);
        av_frame_free(&w->work);
        av_packet_free(&w->pkt);
        avcodec_free_context(&w->dec);
        avformat_close_input(&w->fmt);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
}


/* The stream id for SOURCE: SOURCE itself when the daemon takes it (at most EMO_STREAM_ID_MAX
 * bytes of UTF-8). Otherwise (a signed URL of 300 bytes, a Latin-1 file name) its UTF-8 repair,
 * cut at a character boundary and followed by a hash of the whole name, so that two long names
 * with the same beginning stay two streams. NULL on out-of-memory. */
static char *stream_id_of(const char *source) {
        if (strlen(source) <= EMO_STREAM_ID_MAX && emo_utf8_valid(source))
                return strdup(source);
        _cleanup_free_ char *repaired = emo_utf8_repair(source, "?");
        if (!repaired)
                return NULL;
        uint64_t hash = 0xcbf29ce484222325u; /* FNV-1a, of the name as given */
        for (const unsigned char *p = (const unsigned char *) source; *p; p++)
                hash = (hash ^ *p) * 0x100000001b3u;
        char suffix[20];
        int n = snprintf(suffix, sizeof(suffix), "~%016llx", (unsigned long long) hash);
        size_t keep = strlen(repaired);
        if (keep > EMO_STREAM_ID_MAX - (size_t) n)
                keep = EMO_STREAM_ID_MAX - (size_t) n;
        while (keep > 0 && ((unsigned char) repaired[keep] & 0xc0) == 0x80) /* not inside a character */
                keep--;
        char *id = NULL;
        if (asprintf(&id, "%.*s%s", (int) keep, repaired, suffix) < 0)
                return NULL;
        return id;
}

int cli_watch_main(const cli_options_t *defaults, int argc, char **argv) {
        static const struct option options[] = {
                CLI_COMMON_LONG_OPTIONS,
                { "lang", required_argument, NULL, ARG_LANG },
                { "max-faces", required_argument, NULL, ARG_MAX_FACES },
                { "every", required_argument, NULL, ARG_EVERY },
                { "max-frames", required_argument, NULL, ARG_MAX_FRAMES },
                { "stream", required_argument, NULL, ARG_STREAM },
                { "live", no_argument, NULL, ARG_LIVE },
                { "input-format", required_argument, NULL, ARG_INPUT_FORMAT },
                { "max-side", required_argument, NULL, ARG_MAX_SIDE },
                { "smooth", required_argument, NULL, ARG_SMOOTH },
                {},
        };
        watch_t w = { .o = *defaults, .every = 1 };
        uint64_t v;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                int r = cli_common_option(&w.o, "watch", c, optarg);
                if (r < 0)
                        return CLI_EXIT_USAGE;
                if (r > 0)
                        continue;
                switch (c) {
                case 'h':
                        help();
                        return CLI_EXIT_OK;
                case ARG_LANG:
                        if (!emo_language_valid(optarg))
                                return cli_usage_error("watch", "invalid language '%s' (expected a code such as fr)",
                                                       optarg);
                        w.language = optarg;
                        break;
                case ARG_MAX_FACES:
                        if (cli_parse_option_uint("watch", "--max-faces", optarg, 0, 100000, &v) < 0)
                                return CLI_EXIT_USAGE;
                        w.max_faces = (unsigned) v;
                        break;
                case ARG_EVERY:
                        if (cli_parse_option_uint("watch", "--every", optarg, 1, 1000000, &v) < 0)
                                return CLI_EXIT_USAGE;
                        w.every = (unsigned) v;
                        w.every_given = true;
                        break;
                case ARG_MAX_FRAMES:
                        if (cli_parse_option_uint("watch", "--max-frames", optarg, 1, UINT64_MAX / 2, &v) < 0)
                                return CLI_EXIT_USAGE;
                        w.max_frames = v;
                        break;
                case ARG_MAX_SIDE:
                        if (cli_parse_option_uint("watch", "--max-side", optarg, 0, 100000, &v) < 0)
                                return CLI_EXIT_USAGE;
                        w.max_side = (unsigned) v;
                        break;
                case ARG_SMOOTH:
                        if (cli_parse_option_uint("watch", "--smooth", optarg, 1, EMO_SMOOTH_MAX_WINDOW, &v) < 0)
                                return CLI_EXIT_USAGE;
                        w.smooth = (unsigned) v;
                        break;
                case ARG_STREAM:
                        if (!*optarg || strlen(optarg) > EMO_STREAM_ID_MAX || !emo_utf8_valid(optarg))
                                return cli_usage_error("watch", "--stream needs a name of 1 to %d bytes of UTF-8",
                                                       EMO_STREAM_ID_MAX);
                        w.stream = optarg;
                        break;
                case ARG_LIVE:
                        w.live = true;
                        break;
                case ARG_INPUT_FORMAT:
                        w.input_format = optarg;
                        break;
                default:
                        return cli_usage_hint("watch");
                }
        }
        if (optind >= argc)
                return cli_usage_error("watch", "no SOURCE given");
        if (optind + 1 < argc)
                return cli_usage_error("watch", "one SOURCE at a time (got %d)", argc - optind);
        w.source = argv[optind];
        _cleanup_free_ char *source_id = NULL;
        if (!w.stream) {
                if (!(source_id = stream_id_of(w.source))) {
                        cli_error("%s", strerror(ENOMEM));
                        return 1;
                }
                w.stream = source_id;
        }
        if (strncmp(w.source, "/dev/", 5) == 0 || strstr(w.source, "://") || w.input_format)
                w.live = true;
        else
                w.pace = w.live;
        /* A live source is analysed at the daemon's pace, the newest frame each time: there is no
         * "one frame in N" to pick. Better said than silently ignored. */
        if (w.live && w.every_given)
                return cli_usage_error("watch", "--every is for files; %s is read as a live source, analysed at "
                                                "the daemon's pace (the newest frame each time)",
                                       w.source);
        pthread_mutex_init(&w.lock, NULL);
        pthread_cond_init(&w.cond, NULL);
        av_log_set_level(AV_LOG_ERROR);

        /* Ctrl-C: stop reading, finish the frames in flight. A second one kills (SA_RESETHAND). */
        struct sigaction sa = { .sa_handler = on_sigint, .sa_flags = SA_RESETHAND };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        struct sigaction sa_alarm = { .sa_handler = on_sigalrm }; /* no SA_RESTART: see the top */
        sigemptyset(&sa_alarm.sa_mask);
        sigaction(SIGALRM, &sa_alarm, NULL);

        emo_client_t *client = NULL;
        int ret = CLI_EXIT_FAILED;
        int r = open_source(&w);
        if (r < 0)
                goto out;
        r = cli_client_open(&w.o, "watch", &client);
        if (r < 0) {
                ret = cli_open_exit(r);
                goto out;
        }
        if (w.live) {
                r = pthread_create(&w.reader, NULL, reader_main, &w);
                if (r != 0) {
                        cli_error("Failed to start the reader thread: %s", strerror(r));
                        goto out;
                }
                w.reader_started = true;
        }

        cli_pipeline_config_t config = {
                .timeout_ms = w.o.timeout_ms,
                .attempts = w.o.attempts,
                .window = w.live ? WATCH_LIVE_WINDOW : WATCH_FILE_WINDOW,
                /* Files: every frame is wanted, late or not. Live: see done(). */
                .retry_overloaded = !w.live,
                /* A smoothed stream restarts when a frame number goes back. */
                .ordered = w.smooth > 0,
        };
        r = cli_pipeline_run(client, &config, SIZE_MAX, build, done, &w);
        /* The reader may still be running (--max-frames, Ctrl-C, the daemon gone): the summary
         * below reads what it counts. */
        stop_reader(&w);
        ret = w.failed > 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
        if (r == -ETIMEDOUT) {
                ret = cli_report_unreachable(&w.o, client);
                /* Frames answered but waiting behind one that never was are shown as they are; the
                 * ones in flight get "unreachable" lines in JSON. */
                for (size_t k = 0; k < w.n_items; k++)
                        print_item(&w, &w.items[k]);
        } else if (r < 0) {
                cli_error("Failed to talk to emotiond at %s: %s", emo_client_endpoint(client), strerror(-r));
                ret = CLI_EXIT_UNREACHABLE;
        }
        if (w.read_error) {
                char msg[256];
                cli_error("%s: reading stopped after %lld frames: %s", w.source, (long long) w.decoded,
                          read_message(&w, w.read_error, msg, sizeof(msg)));
                if (ret == CLI_EXIT_OK)
                        ret = CLI_EXIT_FAILED;
        }
        if (!w.o.json) {
                char skipped[128] = "";
                if (w.live && w.refused > 0)
                        snprintf(skipped, sizeof(skipped), ", %lld skipped to keep up (%lld of them refused by a busy daemon)",
                                 (long long) (w.skipped + w.refused), (long long) w.refused);
                else if (w.live)
                        snprintf(skipped, sizeof(skipped), ", %lld skipped to keep up", (long long) w.skipped);
                printf("%s%s: %zu frame%s analysed of %lld decoded%s%s\n", w.blocks ? "\n" : "", w.source, w.analysed,
                       w.analysed == 1 ? "" : "s", (long long) w.decoded, skipped, interrupted ? " (interrupted)" : "");
        }
out:
        watch_done(&w);
        emo_client_free(client);
        signal(SIGINT, SIG_DFL);
        return ret;
}
