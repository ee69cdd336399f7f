/* Images for annotation: an encoded file (JPEG, PNG, TIFF, BMP, PNM, WebP...) decoded upright
 * into a cairo surface, and a surface written as PNG. Decoding is gdk-pixbuf's (WebP through
 * libwebp, which gdk-pixbuf reads only with an extra loader); the EXIF orientation is applied, as
 * emotiond applies it before it finds faces, so that the boxes it reports fit the surface. PNG is
 * written with libpng, tuned for speed (see image.c). */
#pragma once

#include <cairo.h>
#include <stddef.h>
#include <stdint.h>

/* Decode data (size bytes of an encoded image) into a new CAIRO_FORMAT_ARGB32 surface, shown
 * upright. 0 with *ret (cairo_surface_destroy() it); -EINVAL for data that is no image this
 * module reads, -ENOMEM. ret_message (may be NULL): malloc'd reason on -EINVAL. */
int emo_image_decode(const uint8_t *data, size_t size, cairo_surface_t **ret, char **ret_message);

/* A new CAIRO_FORMAT_RGB24 surface holding a BGR24 frame (lib/capture's, OpenCV's order), or
 * NULL on out-of-memory. */
cairo_surface_t *emo_image_surface_from_bgr24(const uint8_t *pixels, int width, int height, size_t stride);

/* Write surface as PNG to path, through path.part renamed into place (nobody sees half a file).
 * 0 or a negative errno (-EIO when cairo gives no reason). */
int emo_image_write_png(cairo_surface_t *surface, const char *path);
