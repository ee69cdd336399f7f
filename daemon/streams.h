/* The face tracks of each stream that asks for smoothing (Options.smooth_frames): one smoother
 * (libemo's emo_smoother_t) per stream key, shared by the workers. The server hands a stream's
 * smoothed frames to the workers one at a time (emo_queue_hold), so each smoother sees its
 * frames in arrival order; the lock here only guards the table.
 *
 * A stream starts over (new tracks, numbered from 1 again) when its sequence goes back (a camera
 * or client restarted), when it asks for another window, or after EMO_STREAM_IDLE_US without a
 * smoothed frame. At most `capacity` streams are kept; a new one beyond that replaces the one
 * idle longest. Thread-safe.
 *
 * A stream also keeps the face boxes of its last frame and how many frames ago the detector last
 * ran, so that the detector need only run on every Nth frame (detect_every) and the faces be
 * followed in between (emo_detector_track). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smooth.h"
#include "vision/vision.h"

#define EMO_STREAM_IDLE_US (10 * 1000000LL)
#define EMO_STREAMS_DEFAULT_CAPACITY 1024

typedef struct emo_streams emo_streams_t;

/* A table of at most capacity streams. 0 with *ret, -EINVAL for capacity 0, -ENOMEM. */
int emo_streams_new(size_t capacity, emo_streams_t **ret);

/* Accepts NULL, returns NULL. */
emo_streams_t *emo_streams_free(emo_streams_t *s);

/* Feed the faces of frame `sequence` of stream `key` (now_us: monotonic microseconds) to its
 * smoother averaging over `window` frames (1..EMO_SMOOTH_MAX_WINDOW), and get each face's track
 * and smoothed result in out[i]. 0, -EINVAL for a bad window, -ENOMEM (nothing changed). */
int emo_streams_smooth(emo_streams_t *s, const char *key, unsigned window, uint64_t sequence, int64_t now_us,
                       const emo_smooth_face_t *faces, size_t n, emo_smoothed_t *out);

/* Streams currently kept. */
size_t emo_streams_size(emo_streams_t *s);

/* Streams fed within EMO_STREAM_IDLE_US of now_us. The others are dropped here, freeing their
 * tracks: their next frame would start them over anyway. */
size_t emo_streams_active(emo_streams_t *s, int64_t now_us);

/* Whether frame `sequence` of stream `key` may follow the faces of the stream's last frame instead
 * of running the detector: 1, with their boxes (at most max) in boxes and their number in *ret_n,
 * when the stream goes on (known, same window, sequence not back, not idle) and fewer than
 * `every` frames have passed since the detector last ran; else 0. Call before
 * emo_streams_smooth. */
int emo_streams_track_from(emo_streams_t *s, const char *key, unsigned window, uint64_t sequence, int64_t now_us,
                           unsigned every, emo_face_box_t *boxes, size_t max, size_t *ret_n);

/* Keep the boxes of the frame just given to emo_streams_smooth for the stream's next frame;
 * detected: the detector found them (the count of frames since detection starts again), else they
 * were followed. 0, -ENOENT for an unknown stream, -ENOMEM (the stream then detects next time). */
int emo_streams_keep_boxes(emo_streams_t *s, const char *key, const emo_face_box_t *boxes, size_t n, bool detected);
