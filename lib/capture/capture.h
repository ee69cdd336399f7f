/* emo_capture: frames of a video file, a camera or a network stream, as BGR24 pixels ready to send
 * to emotiond. Shared by `emotion watch` and emotion-gtk's live mode; FFmpeg stays in here (and
 * out of libemo, which the daemon links).
 *
 * FFmpeg does the reading and decoding (libavformat, libavcodec; cameras through libavdevice's
 * video4linux2 input, IP cameras through rtsp:// and the like), libswscale turns each frame into
 * BGR24, scaled down to max_side when asked.
 *
 * Two ways to read:
 *  - files (live = false): emo_capture_next() decodes the next frame (one in `every`) in the
 *    calling thread; none is dropped.
 *  - live: emo_capture_start() starts a reader thread that decodes at the source's pace, converts
 *    each frame and keeps only the newest one; emo_capture_next() takes it. Frames nobody took
 *    before the next one came are counted as skipped: newest frame wins, there is never a backlog.
 *    With pace, a file is played at its frame rate, as a camera would deliver it; with loop it
 *    starts over at its end (frame numbers go on growing).
 *
 * Nothing waits forever: a source that delivers nothing for timeout_ms fails. Network protocols
 * get it as FFmpeg's rw_timeout (RTSP: its socket timeout); for everything else (a FIFO, a device,
 * a stream that trickles in headers only) FFmpeg's interrupt callback enforces the same deadline,
 * and a thread-directed SIGALRM, armed only while FFmpeg reads, breaks the blocking read() or
 * open() that the callback alone could not. The first emo_capture_open() installs a SIGALRM handler
 * that does nothing (without SA_RESTART) when the program has none; a program that handles SIGALRM
 * itself must install its handler without SA_RESTART too.
 *
 * Errors are negative errno values; what FFmpeg said is kept for emo_capture_error_message().
 * The module never logs; the first emo_capture_open() limits FFmpeg's own log (stderr) to errors. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct emo_capture emo_capture_t;

typedef struct emo_capture_config {
        const char *source;       /* a file, a device (/dev/video0) or a URL; copied */
        const char *input_format; /* FFmpeg input format (video4linux2, x11grab...), NULL: guess */
        int timeout_ms;           /* a source that delivers nothing this long fails (> 0) */
        bool live;                /* read in a thread, newest frame wins */
        bool pace;                /* live: deliver a file's frames at their presentation times */
        bool loop;                /* live, paced: a file starts over at its end */
        unsigned every;           /* files: one frame in N (0 or 1: every frame) */
        unsigned max_side;        /* scale frames down to at most N pixels on their longest side; 0: no */
        /* Live: called from the reader thread after each new frame and once when reading ended,
         * without any lock held. Keep it short (wake a main loop up). May be NULL. */
        void (*notify)(void *userdata);
        void *userdata;
        /* Optional: a flag (a SIGINT handler's) that, once set, acts as emo_capture_interrupt(),
         * also while emo_capture_open() is still opening. */
        const volatile sig_atomic_t *cancel;
} emo_capture_config_t;

typedef struct emo_capture_frame {
        int64_t number;   /* frame number in the source, from 0; goes on growing when a file loops */
        double time_s;    /* presentation time, seconds from the start of the source */
        int width, height; /* after max_side */
        size_t stride;    /* bytes per row: width * 3 */
        uint8_t *pixels;  /* BGR24, owned by the frame */
} emo_capture_frame_t;

/* Whether source is read as a live source by default: a device (/dev/...), a URL (...://...) or
 * any source with an explicit input format. */
bool emo_capture_is_live_source(const char *source, const char *input_format);

/* Open the source and its decoder. Blocks up to about timeout_ms (more while FFmpeg probes a
 * device or an RTSP stream), so a GUI calls it off its main thread. 0 with *ret; else a negative
 * errno (-ENOENT, -ETIMEDOUT for a stalled source, -EINVAL for an unknown input format or
 * something that is no video, -EINTR when interrupted, -EIO...) and, when ret_message is not NULL,
 * a malloc'd sentence without the source's name: "cannot open: No such file or directory". */
int emo_capture_open(const emo_capture_config_t *config, emo_capture_t **ret, char **ret_message);

/* Stop the reader thread (waiting for it, breaking a blocking read), close everything. Accepts
 * NULL, returns NULL. */
emo_capture_t *emo_capture_free(emo_capture_t *c);

/* Live: start the reader thread. 0, or a negative errno. */
int emo_capture_start(emo_capture_t *c);

/* The next frame: 0 with *ret (free with emo_capture_frame_free), 1 when there are no more
 * (the end of the source, an error, an interruption: see emo_capture_error()). Live, it waits at
 * most wait_ms for a frame newer than the last one taken (0: does not wait; < 0: for ever) and
 * returns -EAGAIN when none came. -ENOMEM. */
int emo_capture_next(emo_capture_t *c, int wait_ms, emo_capture_frame_t **ret);

emo_capture_frame_t *emo_capture_frame_free(emo_capture_frame_t *f);

/* Make reading stop as soon as possible: blocking reads give up, emo_capture_next() returns 1.
 * Async-signal-safe (a SIGINT handler may call it). The reason given afterwards is
 * "interrupted". */
void emo_capture_interrupt(emo_capture_t *c);

/* Why reading stopped early: 0 (it did not, or it reached the end), -ETIMEDOUT (nothing came for
 * timeout_ms), -EINTR (interrupted) or another negative errno. */
int emo_capture_error(const emo_capture_t *c);

/* The same as a sentence: "nothing received for 5000 ms", "interrupted", or FFmpeg's message.
 * Into buf, which is returned. */
const char *emo_capture_error_message(const emo_capture_t *c, char *buf, size_t len);

/* Frames decoded so far, and (live) frames dropped because a newer one came before anyone took
 * them. Thread-safe. */
void emo_capture_counts(emo_capture_t *c, int64_t *ret_decoded, int64_t *ret_skipped);

/* The source's nominal frame rate (frames per second), 0 when it does not say. */
double emo_capture_frame_rate(const emo_capture_t *c);

/* The source's duration in seconds (a file's), 0 when it does not say (cameras, streams). */
double emo_capture_duration(const emo_capture_t *c);

/* The stream id for a source, as emotiond takes it (at most EMO_STREAM_ID_MAX bytes of UTF-8):
 * the source itself when it fits; otherwise (a signed URL of 300 bytes, a Latin-1 file name) its
 * UTF-8 repair, cut at a character boundary and followed by a hash of the whole name, so that two
 * long names with the same beginning stay two streams. Malloc'd; NULL on out-of-memory. */
char *emo_capture_stream_id(const char *source);
