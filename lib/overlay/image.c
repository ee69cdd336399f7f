#include "image.h"

#include <errno.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <webp/decode.h>

/* A new cairo image surface of format, flushed for writing its data, or NULL. */
static cairo_surface_t *new_surface(cairo_format_t format, int width, int height, uint8_t **data, int *stride) {
        cairo_surface_t *s = cairo_image_surface_create(format, width, height);
        if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
                cairo_surface_destroy(s);
                return NULL;
        }
        cairo_surface_flush(s);
        *data = cairo_image_surface_get_data(s);
        *stride = cairo_image_surface_get_stride(s);
        return s;
}

/* Pixbuf rows (RGB or RGBA, not premultiplied) into a cairo ARGB32 surface (native-endian
 * 0xAARRGGBB, premultiplied). */
static cairo_surface_t *surface_from_rgba(const uint8_t *pixels, int width, int height, int stride, int channels) {
        uint8_t *out;
        int out_stride;
        cairo_surface_t *s = new_surface(CAIRO_FORMAT_ARGB32, width, height, &out, &out_stride);
        if (!s)
                return NULL;
        for (int y = 0; y < height; y++) {
                const uint8_t *p = pixels + (size_t) y * stride;
                uint32_t *q = (uint32_t *) (out + (size_t) y * out_stride);
                for (int x = 0; x < width; x++, p += channels) {
                        uint32_t a = channels == 4 ? p[3] : 255;
                        uint32_t r = p[0] * a / 255, g = p[1] * a / 255, b = p[2] * a / 255;
                        q[x] = a << 24 | r << 16 | g << 8 | b;
                }
        }
        cairo_surface_mark_dirty(s);
        return s;
}

cairo_surface_t *emo_image_surface_from_bgr24(const uint8_t *pixels, int width, int height, size_t stride) {
        uint8_t *out;
        int out_stride;
        cairo_surface_t *s = new_surface(CAIRO_FORMAT_RGB24, width, height, &out, &out_stride);
        if (!s)
                return NULL;
        for (int y = 0; y < height; y++) {
                const uint8_t *p = pixels + (size_t) y * stride;
                uint32_t *q = (uint32_t *) (out + (size_t) y * out_stride);
                for (int x = 0; x < width; x++, p += 3)
                        q[x] = 0xff000000u | (uint32_t) p[2] << 16 | (uint32_t) p[1] << 8 | p[0];
        }
        cairo_surface_mark_dirty(s);
        return s;
}

static int set_message(char **ret_message, const char *text) {
        if (ret_message)
                *ret_message = strdup(text);
        return -EINVAL;
}

static int decode_webp(const uint8_t *data, size_t size, cairo_surface_t **ret) {
        int w, h;
        uint8_t *rgba = WebPDecodeRGBA(data, size, &w, &h);
        if (!rgba)
                return -EINVAL;
        cairo_surface_t *s = surface_from_rgba(rgba, w, h, w * 4, 4);
        WebPFree(rgba);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int emo_image_decode(const uint8_t *data, size_t size, cairo_surface_t **ret, char **ret_message) {
        if (ret_message)
                *ret_message = NULL;
        /* gdk-pixbuf reads WebP only with a loader Debian ships apart (webp-pixbuf-loader). */
        if (size >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0) {
                int r = decode_webp(data, size, ret);
                return r == -EINVAL ? set_message(ret_message, "not a WebP image this build can read") : r;
        }

        GError *error = NULL;
        GdkPixbufLoader *loader = gdk_pixbuf_loader_new();
        if (!gdk_pixbuf_loader_write(loader, data, size, &error) || !gdk_pixbuf_loader_close(loader, &error)) {
                int r = set_message(ret_message, error ? error->message : "not an image");
                g_clear_error(&error);
                g_object_unref(loader);
                return r;
        }
        GdkPixbuf *pb = gdk_pixbuf_loader_get_pixbuf(loader);
        if (!pb) {
                g_object_unref(loader);
                return set_message(ret_message, "not an image");
        }
        /* Upright, as the daemon turns it before it finds faces (EXIF Orientation). */
        GdkPixbuf *upright = gdk_pixbuf_apply_embedded_orientation(pb);
        g_object_unref(loader);
        if (!upright)
                return -ENOMEM;
        int channels = gdk_pixbuf_get_n_channels(upright);
        if (gdk_pixbuf_get_bits_per_sample(upright) != 8 || (channels != 3 && channels != 4)) {
                g_object_unref(upright);
                return set_message(ret_message, "unsupported pixel layout");
        }
        cairo_surface_t *s = surface_from_rgba(gdk_pixbuf_read_pixels(upright), gdk_pixbuf_get_width(upright),
                                               gdk_pixbuf_get_height(upright), gdk_pixbuf_get_rowstride(upright),
                                               channels);
        g_object_unref(upright);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* One row of the surface (ARGB32 or RGB24, premultiplied, native-endian) as RGBA or RGB bytes,
 * not premultiplied, as PNG stores them. */
static void row_to_png(const uint32_t *p, int width, bool alpha, uint8_t *q) {
        for (int x = 0; x < width; x++) {
                uint32_t v = p[x], a = alpha ? v >> 24 : 255;
                uint32_t r = v >> 16 & 0xff, g = v >> 8 & 0xff, b = v & 0xff;
                if (a > 0 && a < 255)
                        r = (r * 255 + a / 2) / a, g = (g * 255 + a / 2) / a, b = (b * 255 + a / 2) / a;
                *q++ = (uint8_t) r, *q++ = (uint8_t) g, *q++ = (uint8_t) b;
                if (alpha)
                        *q++ = (uint8_t) a;
        }
}

/* Write the PNG to f with libpng. 0, -ENOMEM or -EIO. */
static int write_png(cairo_surface_t *surface, FILE *f) {
        cairo_surface_flush(surface);
        int w = cairo_image_surface_get_width(surface), h = cairo_image_surface_get_height(surface);
        int stride = cairo_image_surface_get_stride(surface);
        bool alpha = cairo_image_surface_get_format(surface) == CAIRO_FORMAT_ARGB32;
        const uint8_t *data = cairo_image_surface_get_data(surface);
        uint8_t *row = malloc((size_t) w * 4);
        if (!row)
                return -ENOMEM;
        png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = png ? png_create_info_struct(png) : NULL;
        if (!info) {
                png_destroy_write_struct(&png, NULL);
                free(row);
                return -ENOMEM;
        }
        if (setjmp(png_jmpbuf(png))) {
                png_destroy_write_struct(&png, &info);
                free(row);
                return -EIO;
        }
        png_init_io(png, f);
        /* Fast rather than small: zlib level 1 and the Sub filter write a 640x480 photo several
         * times faster than cairo's writer (level 6, every filter tried), for files about 1.5
         * times as large (docs/benchmarks.md). An annotated copy is for looking at. */
        png_set_compression_level(png, 1);
        png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
        png_set_IHDR(png, info, (png_uint_32) w, (png_uint_32) h, 8,
                     alpha ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
        png_write_info(png, info);
        for (int y = 0; y < h; y++) {
                row_to_png((const uint32_t *) (data + (size_t) y * stride), w, alpha, row);
                png_write_row(png, row);
        }
        png_write_end(png, info);
        png_destroy_write_struct(&png, &info);
        free(row);
        return 0;
}

int emo_image_write_png(cairo_surface_t *surface, const char *path) {
        char *tmp = NULL;
        if (asprintf(&tmp, "%s.part", path) < 0)
                return -ENOMEM;
        int r = 0;
        FILE *f = fopen(tmp, "we");
        if (!f) {
                r = -errno;
                goto out;
        }
        r = write_png(surface, f);
        errno = 0;
        if (fclose(f) != 0 && r == 0)
                r = errno ? -errno : -EIO;
        if (r < 0) {
                unlink(tmp);
                goto out;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                unlink(tmp);
        }
out:
        free(tmp);
        return r;
}
