/* jpeg: what the daemon reads of a JPEG itself, in plain C, apart from OpenCV's decoder: the size
 * (libjpeg's header reader), the scan count and the EXIF orientation (hand-written walks over the
 * marker segments), whether the end-of-image marker is there, and a region decoded at a DCT scale
 * (libjpeg-turbo). Every function reads only the len bytes given, whatever they hold: they see
 * a client's bytes before any other check. Internal to daemon/vision (emo__ names). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The image's size from its frame header, read by libjpeg. -EBADMSG when libjpeg fails. */
int emo__jpeg_size(const unsigned char *p, size_t len, unsigned *ret_width, unsigned *ret_height);

/* The scans (start-of-scan markers, FF DA) up to the end-of-image marker: each one is a pass of
 * the decoder over the whole image. Marker segments are skipped by their length, so that their
 * payload (an ICC profile, an EXIF thumbnail) is not counted. */
size_t emo__jpeg_scans(const unsigned char *p, size_t len);

/* Whether the end-of-image marker FF D9 is missing from the last kilobyte. OpenCV decodes a
 * truncated JPEG without error (libjpeg only warns and fills the rest with grey). */
bool emo__jpeg_truncated(const unsigned char *p, size_t len);

/* The EXIF orientation as OpenCV applies it: 1 (upright) when the file has no EXIF segment or one
 * without the tag, 1..8 from the first APP1 "Exif" segment's first directory, -1 when that cannot
 * be read plainly (this reader and OpenCV's might then disagree). */
int emo__jpeg_orientation(const unsigned char *p, size_t len);

/* Decode the rows y0..y1 and columns x0..x1 of a JPEG scaled by 1/denom (coordinates in the
 * scaled image) with libjpeg-turbo, which skips the inverse DCT and colour conversion of what lies
 * outside: jpeg_skip_scanlines above, jpeg_crop_scanline to the sides (it widens the columns to
 * whole iMCUs: *ret_x is where they start, *ret_width the row's width). BGR for a YCbCr image,
 * grey for a grey one; -ENOTSUP for other colour spaces (CMYK), -EINVAL for a region outside the
 * image, -EBADMSG when libjpeg fails, -ENOMEM. *ret_buf is malloc'd, rows of *ret_width pixels. */
int emo__jpeg_region(const unsigned char *p, size_t len, unsigned denom, int x0, int y0, int x1, int y1,
                     unsigned char **ret_buf, int *ret_x, int *ret_width, int *ret_height, int *ret_channels);

#ifdef __cplusplus
}
#endif
