#include "capture.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
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

#include "emo/protocol.h" /* EMO_STREAM_ID_MAX, UTF-8 helpers */
#include "emo/util.h"

/* Once the deadline has passed, SIGALRM comes again this often until FFmpeg gives up: the first
 * one may land between two system calls. */
#define STALL_REPEAT_NS (100 * 1000 * 1000)

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

struct emo_capture {
        char *source;
        char *input_format;
        int timeout_ms;
        bool live, pace, loop;
        unsigned every, max_side;
        void (*notify)(void *userdata);
        void *userdata;

        AVFormatContext *fmt;
        AVCodecContext *dec;
        AVStream *st;
        struct SwsContext *sws;
        AVPacket *pkt;
        AVFrame *frame; /* the decoder's output (the reader thread's, when live) */
        bool eof;
        int read_error; /* AVERROR that ended the source early, 0 if none */
        int64_t loop_offset; /* frames of the earlier rounds of a looping file */
        int64_t round_start_us; /* live, paced: when the current round began */

        /* The stall deadline, kept by the thread that reads (the opener, the caller of next() for
         * files, the reader for live sources): 0 while FFmpeg is not reading. */
        int64_t stall_deadline_us;
        int64_t stall_bytes; /* fmt->pb->bytes_read when the deadline was last set */
        bool stalled;        /* reading failed because nothing came for timeout_ms */
        timer_t stall_timer; /* SIGALRM to the reading thread at the deadline */
        bool stall_timer_ok;

        volatile sig_atomic_t stop;        /* emo_capture_free: the reader must end */
        volatile sig_atomic_t interrupted; /* emo_capture_interrupt */
        const volatile sig_atomic_t *cancel; /* the caller's flag, from its config */

        /* live: the reader thread's newest frame */
        pthread_t reader;
        bool reader_started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        emo_capture_frame_t *latest;
        bool ended; /* the reader has stopped */
        int64_t decoded;
        int64_t skipped;
};

/* emo_capture_interrupt() was called, or the caller's cancel flag is set. */
static bool is_interrupted(const emo_capture_t *c) {
        return c->interrupted || (c->cancel && *c->cancel);
}

static void on_sigalrm(int sig) {
        (void) sig;
}

/* SIGALRM only has to break a blocking system call of the reading thread (no SA_RESTART); FFmpeg
 * then asks interrupt_cb whether to go on. Without a handler it would kill the process. */
static void install_sigalrm(void) {
        struct sigaction old;
        if (sigaction(SIGALRM, NULL, &old) < 0)
                return;
        if (!(old.sa_flags & SA_SIGINFO) && (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
                struct sigaction sa = { .sa_handler = on_sigalrm };
                sigemptyset(&sa.sa_mask);
                sigaction(SIGALRM, &sa, NULL);
        }
}

static void init_once(void) {
        install_sigalrm();
        /* FFmpeg's own log, on stderr, says what goes wrong (a damaged packet) and nothing else. */
        av_log_set_level(AV_LOG_ERROR);
}

static int errno_of(int averror) {
        if (averror >= 0)
                return 0;
        if (averror > -4096) /* AVERROR(errno) */
                return averror;
        if (averror == AVERROR_EXIT)
                return -EINTR;
        if (averror == AVERROR_INVALIDDATA || averror == AVERROR_DECODER_NOT_FOUND ||
            averror == AVERROR_STREAM_NOT_FOUND || averror == AVERROR_DEMUXER_NOT_FOUND)
                return -EINVAL;
        return -EIO;
}

static void stall_timer_set(emo_capture_t *c, int64_t first_ns, int64_t repeat_ns) {
        if (!c->stall_timer_ok)
                return;
        struct itimerspec t = {
                .it_value = { first_ns / 1000000000, first_ns % 1000000000 },
                .it_interval = { repeat_ns / 1000000000, repeat_ns % 1000000000 },
        };
        timer_settime(c->stall_timer, 0, &t, NULL);
}

/* Aim the stall timer at the calling thread, the one that reads from now on. Without a timer
 * (timer_create failed), blocking reads of local FIFOs cannot be broken; the rest still works. */
static void stall_timer_take(emo_capture_t *c) {
        if (c->stall_timer_ok)
                timer_delete(c->stall_timer);
        struct sigevent ev = {
                .sigev_notify = SIGEV_THREAD_ID,
                .sigev_signo = SIGALRM,
        };
        ev.sigev_notify_thread_id = gettid();
        c->stall_timer_ok = timer_create(CLOCK_MONOTONIC, &ev, &c->stall_timer) == 0;
}

static int64_t stall_bytes(const emo_capture_t *c) {
        return c->fmt && c->fmt->pb ? c->fmt->pb->bytes_read : 0;
}

/* FFmpeg is about to read (or has just received bytes): it has timeout_ms, and extra_us more, for
 * the next ones. */
static void stall_arm_longer(emo_capture_t *c, int64_t extra_us) {
        int64_t us = (int64_t) c->timeout_ms * 1000 + extra_us;
        c->stall_deadline_us = emo_now_us() + us;
        c->stall_bytes = stall_bytes(c);
        stall_timer_set(c, us * 1000, STALL_REPEAT_NS);
}

static void stall_arm(emo_capture_t *c) {
        stall_arm_longer(c, 0);
}

/* FFmpeg returned r: note whether it failed because the deadline passed, and stop the clock. */
static int stall_disarm(emo_capture_t *c, int r) {
        if (r < 0 && c->stall_deadline_us && emo_now_us() >= c->stall_deadline_us && !c->stop && !is_interrupted(c))
                c->stalled = true;
        c->stall_deadline_us = 0;
        stall_timer_set(c, 0, 0);
        return r;
}

/* FFmpeg calls this while it reads and between reads (network, devices, files): returning 1
 * makes it give up. */
static int interrupt_cb(void *userdata) {
        emo_capture_t *c = userdata;
        if (c->stop || is_interrupted(c))
                return 1;
        if (!c->stall_deadline_us)
                return 0;
        /* Bytes coming in are progress: a slow source is not a stalled one. (Sources without an
         * AVIOContext, RTSP and devices, show progress as packets, see decode_next.) */
        if (stall_bytes(c) != c->stall_bytes) {
                stall_arm(c);
                return 0;
        }
        if (emo_now_us() < c->stall_deadline_us)
                return 0;
        /* Noted here: the AVIOContext keeps the error, and later reads fail at once with it. */
        c->stalled = true;
        return 1;
}

static const char *av_message(int err, char *buf, size_t len) {
        if (av_strerror(err, buf, len) < 0)
                snprintf(buf, len, "error %d", err);
        return buf;
}

static const char *read_message(const emo_capture_t *c, int err, char *buf, size_t len) {
        if (is_interrupted(c))
                snprintf(buf, len, "interrupted");
        else if (c->stalled)
                snprintf(buf, len, "nothing received for %d ms", c->timeout_ms);
        else
                av_message(err, buf, len);
        return buf;
}

/* Options for FFmpeg's network protocols: give up on a connection that delivers nothing for
 * timeout_ms (rw_timeout for those read through AVIO, http among them; RTSP reads its own sockets
 * with its "timeout"). Microseconds. Other inputs ignore them. */
static int network_options(const emo_capture_t *c, AVDictionary **ret) {
        if (!strstr(c->source, "://"))
                return 0;
        char us[32];
        snprintf(us, sizeof(us), "%lld", (long long) c->timeout_ms * 1000);
        if (av_dict_set(ret, "rw_timeout", us, 0) < 0)
                return -ENOMEM;
        if ((strncmp(c->source, "rtsp://", 7) == 0 || strncmp(c->source, "rtsps://", 8) == 0) &&
            av_dict_set(ret, "timeout", us, 0) < 0)
                return -ENOMEM;
        return 0;
}

static void set_message(char **ret_message, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void set_message(char **ret_message, const char *format, ...) {
        if (!ret_message)
                return;
        va_list ap;
        va_start(ap, format);
        if (vasprintf(ret_message, format, ap) < 0)
                *ret_message = NULL;
        va_end(ap);
}

static int open_source(emo_capture_t *c, char **ret_message) {
        char msg[256];
        const AVInputFormat *ifmt = NULL;
        avdevice_register_all();
        if (c->input_format) {
                ifmt = av_find_input_format(c->input_format);
                if (!ifmt) {
                        set_message(ret_message, "unknown input format '%s'", c->input_format);
                        return -EINVAL;
                }
        } else if (strncmp(c->source, "/dev/video", 10) == 0) {
                ifmt = av_find_input_format("video4linux2");
        }
        AVDictionary *opts = NULL;
        if (network_options(c, &opts) < 0) {
                av_dict_free(&opts);
                return -ENOMEM;
        }
        c->fmt = avformat_alloc_context();
        if (!c->fmt) {
                av_dict_free(&opts);
                return -ENOMEM;
        }
        c->fmt->interrupt_callback = (AVIOInterruptCB) { interrupt_cb, c };
        stall_timer_take(c);
        stall_arm(c);
        int r = stall_disarm(c, avformat_open_input(&c->fmt, c->source, ifmt, &opts));
        av_dict_free(&opts);
        if (r < 0) {
                set_message(ret_message, "cannot open: %s", read_message(c, r, msg, sizeof(msg)));
                return r;
        }
        /* Probing reads up to max_analyze_duration of the stream (5 s unless set) before it
         * returns. Sources without an AVIOContext (RTSP, devices) show the callback no bytes
         * coming in meanwhile, so a camera that is delivering video but, say, announces an audio
         * track it never sends would look stalled: their probe gets that long on top of
         * timeout_ms. (RTSP's own socket timeout still catches a dead connection.) */
        stall_arm_longer(c, c->fmt->pb                           ? 0
                            : c->fmt->max_analyze_duration > 0 ? c->fmt->max_analyze_duration
                                                               : 5 * AV_TIME_BASE);
        r = stall_disarm(c, avformat_find_stream_info(c->fmt, NULL));
        if (r < 0) {
                set_message(ret_message, "cannot read the stream information: %s", read_message(c, r, msg, sizeof(msg)));
                return r;
        }
        const AVCodec *codec = NULL;
        int si = av_find_best_stream(c->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
        if (si < 0 || !codec) {
                set_message(ret_message, "no video stream that this FFmpeg can decode");
                return si < 0 ? si : AVERROR_DECODER_NOT_FOUND;
        }
        if (codec->id == AV_CODEC_ID_ANSI) {
                /* FFmpeg renders any text file as ANSI art: a mistake, not a video. */
                set_message(ret_message, "a text file, not a video");
                return AVERROR_INVALIDDATA;
        }
        c->st = c->fmt->streams[si];
        c->dec = avcodec_alloc_context3(codec);
        if (!c->dec)
                return -ENOMEM;
        if ((r = avcodec_parameters_to_context(c->dec, c->st->codecpar)) < 0 ||
            (r = avcodec_open2(c->dec, codec, NULL)) < 0) {
                set_message(ret_message, "cannot open the %s decoder: %s", codec->name, av_message(r, msg, sizeof(msg)));
                return r;
        }
        c->pkt = av_packet_alloc();
        c->frame = av_frame_alloc();
        if (!c->pkt || !c->frame)
                return -ENOMEM;
        return 0;
}

/* A looping file starts over: back to its first packet, the decoder emptied. */
static int rewind_source(emo_capture_t *c) {
        int r = av_seek_frame(c->fmt, c->st->index, c->st->start_time != AV_NOPTS_VALUE ? c->st->start_time : 0,
                              AVSEEK_FLAG_BACKWARD);
        if (r < 0)
                r = avformat_seek_file(c->fmt, -1, INT64_MIN, 0, 0, 0);
        if (r < 0)
                return r;
        avcodec_flush_buffers(c->dec);
        c->eof = false;
        c->loop_offset = c->decoded;
        c->round_start_us = emo_now_us();
        return 0;
}

/* The next decoded frame of the video stream into c->frame: 0, 1 at the end, or an AVERROR. */
static int decode_next(emo_capture_t *c) {
        for (;;) {
                if (c->stop || is_interrupted(c))
                        return AVERROR_EXIT;
                int r = avcodec_receive_frame(c->dec, c->frame);
                if (r == 0) {
                        pthread_mutex_lock(&c->lock);
                        c->decoded++;
                        pthread_mutex_unlock(&c->lock);
                        return 0;
                }
                if (r == AVERROR_EOF || (r == AVERROR(EAGAIN) && c->eof)) {
                        /* A file that loops needs at least one frame per round, or it would spin. */
                        if (c->loop && c->decoded > c->loop_offset && rewind_source(c) == 0)
                                continue;
                        return 1;
                }
                if (r != AVERROR(EAGAIN))
                        return r;
                /* Armed per packet: decoding time is not the source's, and a packet is progress. */
                stall_arm(c);
                r = stall_disarm(c, av_read_frame(c->fmt, c->pkt));
                if (r == AVERROR_EOF) {
                        c->eof = true;
                        avcodec_send_packet(c->dec, NULL); /* drain the decoder */
                        continue;
                }
                if (r < 0)
                        return r;
                if (c->pkt->stream_index == c->st->index)
                        r = avcodec_send_packet(c->dec, c->pkt);
                av_packet_unref(c->pkt);
                /* A damaged packet is skipped, as players do; a real I/O error ends above. */
                if (r < 0 && r != AVERROR(EAGAIN) && r != AVERROR_INVALIDDATA)
                        return r;
        }
}

/* Seconds from the start of the current round of c->frame. */
static double frame_time(const emo_capture_t *c, int64_t number_in_round) {
        int64_t pts = c->frame->best_effort_timestamp;
        int64_t start = c->st->start_time != AV_NOPTS_VALUE ? c->st->start_time : 0;
        if (pts != AV_NOPTS_VALUE)
                return (double) (pts - start) * av_q2d(c->st->time_base);
        if (c->st->avg_frame_rate.num > 0)
                return (double) number_in_round / av_q2d(c->st->avg_frame_rate);
        return 0;
}

emo_capture_frame_t *emo_capture_frame_free(emo_capture_frame_t *f) {
        if (f) {
                free(f->pixels);
                free(f);
        }
        return NULL;
}

/* c->frame as a BGR24 frame of at most max_side; c->frame is unreferenced. */
static int convert(emo_capture_t *c, emo_capture_frame_t **ret) {
        AVFrame *f = c->frame;
        int width = f->width, height = f->height;
        int longest = width > height ? width : height;
        if (c->max_side && longest > (int) c->max_side) {
                width = (int) ((int64_t) width * c->max_side / longest);
                height = (int) ((int64_t) height * c->max_side / longest);
                width = width ? width : 1;
                height = height ? height : 1;
        }
        emo_capture_frame_t *out = calloc(1, sizeof(*out));
        if (!out) {
                av_frame_unref(f);
                return -ENOMEM;
        }
        int64_t number = c->decoded - 1;
        out->number = number;
        double round_s = 0;
        if (c->loop_offset > 0 && c->st->avg_frame_rate.num > 0)
                round_s = (double) c->loop_offset / av_q2d(c->st->avg_frame_rate);
        out->time_s = round_s + frame_time(c, number - c->loop_offset);
        out->width = width;
        out->height = height;
        out->stride = (size_t) width * 3;
        c->sws = sws_getCachedContext(c->sws, f->width, f->height, f->format, width, height, AV_PIX_FMT_BGR24,
                                      SWS_AREA, NULL, NULL, NULL);
        out->pixels = c->sws ? malloc(out->stride * (size_t) height) : NULL;
        if (!out->pixels) {
                av_frame_unref(f);
                emo_capture_frame_free(out);
                return -ENOMEM;
        }
        uint8_t *dst[4] = { out->pixels };
        int dst_stride[4] = { (int) out->stride };
        sws_scale(c->sws, (const uint8_t *const *) f->data, f->linesize, 0, f->height, dst, dst_stride);
        av_frame_unref(f);
        *ret = out;
        return 0;
}

static void *reader_main(void *userdata) {
        emo_capture_t *c = userdata;
        stall_timer_take(c);
        c->round_start_us = emo_now_us();
        for (;;) {
                int r = decode_next(c);
                if (r == 0 && c->pace) {
                        /* Wait for the frame's time, in slices short enough to notice a stop. */
                        double t = frame_time(c, c->decoded - 1 - c->loop_offset);
                        int64_t due = c->round_start_us + (int64_t) (t * 1e6);
                        for (int64_t now = emo_now_us(); now < due && !c->stop && !is_interrupted(c); now = emo_now_us()) {
                                int64_t left = due - now;
                                struct timespec d = { 0, (long) ((left < 50000 ? left : 50000) * 1000) };
                                nanosleep(&d, NULL);
                        }
                }
                emo_capture_frame_t *f = NULL;
                if (r == 0) {
                        r = convert(c, &f);
                        if (r < 0)
                                r = AVERROR(ENOMEM);
                }
                pthread_mutex_lock(&c->lock);
                if (r != 0) {
                        c->ended = true;
                        if (r < 0 && !c->stop && !is_interrupted(c))
                                c->read_error = r;
                        pthread_cond_broadcast(&c->cond);
                        pthread_mutex_unlock(&c->lock);
                        if (c->notify)
                                c->notify(c->userdata);
                        return NULL;
                }
                if (c->latest)
                        c->skipped++;
                emo_capture_frame_free(c->latest);
                c->latest = f;
                pthread_cond_broadcast(&c->cond);
                bool stop = c->stop;
                pthread_mutex_unlock(&c->lock);
                if (stop)
                        return NULL;
                if (c->notify)
                        c->notify(c->userdata);
        }
}

bool emo_capture_is_live_source(const char *source, const char *input_format) {
        return strncmp(source, "/dev/", 5) == 0 || strstr(source, "://") || (input_format && *input_format);
}

int emo_capture_open(const emo_capture_config_t *config, emo_capture_t **ret, char **ret_message) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        if (ret_message)
                *ret_message = NULL;
        if (!config->source || config->timeout_ms <= 0)
                return -EINVAL;
        pthread_once(&once, init_once);
        emo_capture_t *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->cond, NULL);
        c->source = strdup(config->source);
        c->input_format = config->input_format ? strdup(config->input_format) : NULL;
        c->timeout_ms = config->timeout_ms;
        c->live = config->live;
        c->pace = config->live && config->pace;
        c->loop = c->pace && config->loop;
        c->every = config->every ? config->every : 1;
        c->max_side = config->max_side;
        c->notify = config->notify;
        c->userdata = config->userdata;
        c->cancel = config->cancel;
        if (!c->source || (config->input_format && !c->input_format)) {
                emo_capture_free(c);
                return -ENOMEM;
        }
        int r = open_source(c, ret_message);
        if (r < 0) {
                int e = c->stalled ? -ETIMEDOUT : is_interrupted(c) ? -EINTR : errno_of(r);
                if (ret_message && !*ret_message)
                        set_message(ret_message, "%s", strerror(-e));
                emo_capture_free(c);
                return e;
        }
        *ret = c;
        return 0;
}

int emo_capture_start(emo_capture_t *c) {
        if (!c->live || c->reader_started)
                return -EINVAL;
        int r = pthread_create(&c->reader, NULL, reader_main, c);
        if (r != 0)
                return -r;
        c->reader_started = true;
        return 0;
}

/* Stop the reader thread and wait for it, breaking a blocking read if it is in one. */
static void stop_reader(emo_capture_t *c) {
        if (!c->reader_started)
                return;
        pthread_mutex_lock(&c->lock);
        c->stop = 1;
        pthread_mutex_unlock(&c->lock);
        for (;;) {
                struct timespec t;
                clock_gettime(CLOCK_REALTIME, &t);
                t.tv_nsec += STALL_REPEAT_NS;
                if (t.tv_nsec >= 1000000000) {
                        t.tv_sec++;
                        t.tv_nsec -= 1000000000;
                }
                if (pthread_timedjoin_np(c->reader, NULL, &t) != ETIMEDOUT)
                        break;
                pthread_kill(c->reader, SIGALRM);
        }
        c->reader_started = false;
}

emo_capture_t *emo_capture_free(emo_capture_t *c) {
        if (!c)
                return NULL;
        stop_reader(c);
        if (c->stall_timer_ok)
                timer_delete(c->stall_timer);
        emo_capture_frame_free(c->latest);
        sws_freeContext(c->sws);
        av_frame_free(&c->frame);
        av_packet_free(&c->pkt);
        avcodec_free_context(&c->dec);
        avformat_close_input(&c->fmt);
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        free(c->source);
        free(c->input_format);
        free(c);
        return NULL;
}

static int next_file_frame(emo_capture_t *c, emo_capture_frame_t **ret) {
        for (;;) {
                int r = decode_next(c);
                if (r != 0) {
                        if (r < 0 && !is_interrupted(c))
                                c->read_error = r;
                        return 1;
                }
                if ((c->decoded - 1) % c->every == 0) {
                        r = convert(c, ret);
                        return r;
                }
                av_frame_unref(c->frame);
        }
}

int emo_capture_next(emo_capture_t *c, int wait_ms, emo_capture_frame_t **ret) {
        if (!c->live)
                return next_file_frame(c, ret);
        int64_t deadline = wait_ms >= 0 ? emo_now_us() + (int64_t) wait_ms * 1000 : INT64_MAX;
        pthread_mutex_lock(&c->lock);
        while (!c->latest && !c->ended && !is_interrupted(c)) {
                int64_t now = emo_now_us();
                if (now >= deadline)
                        break;
                /* Wake up now and then to notice emo_capture_interrupt() from a signal handler. */
                int64_t slice = deadline - now < 100000 ? deadline - now : 100000;
                struct timespec t;
                clock_gettime(CLOCK_REALTIME, &t);
                t.tv_nsec += (long) (slice * 1000);
                while (t.tv_nsec >= 1000000000) {
                        t.tv_sec++;
                        t.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&c->cond, &c->lock, &t);
        }
        int r;
        if (c->latest && !is_interrupted(c)) {
                *ret = TAKE_PTR(c->latest);
                r = 0;
        } else if (c->ended || is_interrupted(c)) {
                r = 1;
        } else {
                r = -EAGAIN;
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

void emo_capture_interrupt(emo_capture_t *c) {
        c->interrupted = 1;
}

int emo_capture_error(const emo_capture_t *c) {
        if (is_interrupted(c))
                return -EINTR;
        if (!c->read_error)
                return 0;
        if (c->stalled)
                return -ETIMEDOUT;
        return errno_of(c->read_error);
}

const char *emo_capture_error_message(const emo_capture_t *c, char *buf, size_t len) {
        return read_message(c, c->read_error, buf, len);
}

void emo_capture_counts(emo_capture_t *c, int64_t *ret_decoded, int64_t *ret_skipped) {
        pthread_mutex_lock(&c->lock);
        if (ret_decoded)
                *ret_decoded = c->decoded;
        if (ret_skipped)
                *ret_skipped = c->skipped;
        pthread_mutex_unlock(&c->lock);
}

double emo_capture_frame_rate(const emo_capture_t *c) {
        AVRational r = c->st->avg_frame_rate.num > 0 ? c->st->avg_frame_rate : c->st->r_frame_rate;
        return r.num > 0 && r.den > 0 ? av_q2d(r) : 0;
}

char *emo_capture_stream_id(const char *source) {
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

double emo_capture_duration(const emo_capture_t *c) {
        if (c->st->duration > 0 && c->st->time_base.den > 0)
                return (double) c->st->duration * av_q2d(c->st->time_base);
        if (c->fmt->duration > 0)
                return (double) c->fmt->duration / AV_TIME_BASE;
        return 0;
}
