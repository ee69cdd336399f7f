/* emo_video_writer: a video file made of frames the caller drew, through FFmpeg (libavformat
 * muxes, libavcodec encodes, libswscale converts). Used by `emotion watch --annotate`.
 *
 * The container follows the file name's extension (.mp4, .mkv, .avi, .mov...), and the encoder
 * is the container's default in this FFmpeg (Debian 12's libavcodec59: H.264 through libx264 for
 * .mp4 and .mkv, MPEG-4 part 2 for .avi), in yuv420p, so that any player reads the result. Frames
 * are timed in units of the frame rate given at open: frame n at n / fps seconds.
 *
 * Errors are negative errno values with a malloc'd sentence (FFmpeg's words) where asked for. The
 * module never logs. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct emo_video_writer emo_video_writer_t;

/* Create path for frames of width x height (odd sizes lose their last column or row: yuv420p
 * needs even ones) at fps frames per second (<= 0: 25). 0 with *ret, or a negative errno
 * (-EINVAL: no container for that name, no encoder) with *ret_message when not NULL. */
int emo_video_writer_open(const char *path, int width, int height, double fps, emo_video_writer_t **ret,
                          char **ret_message);

/* Encode one frame of 32-bit pixels as cairo stores CAIRO_FORMAT_RGB24/ARGB32 on this machine
 * (B, G, R, X bytes on little-endian), of the size given at open (another size is scaled to
 * it), shown at number / fps seconds; numbers must grow (one that does not is moved just after
 * the last). 0 or a negative errno. */
int emo_video_writer_write(emo_video_writer_t *w, const uint8_t *pixels, size_t stride, int width, int height,
                           int64_t number);

/* Flush the encoder, finish the file and free w. 0 or a negative errno (*ret_message as for
 * open). The file is complete only after this returned 0. */
int emo_video_writer_close(emo_video_writer_t *w, char **ret_message);

/* Frames written so far. */
int64_t emo_video_writer_frames(const emo_video_writer_t *w);

/* Give up: free everything, leaving whatever was written. Accepts NULL, returns NULL. */
emo_video_writer_t *emo_video_writer_free(emo_video_writer_t *w);
