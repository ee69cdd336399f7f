/* The JPEG readers of jpeg.h. libjpeg reports errors by calling error_exit, which must not
 * return: it jumps back to the setjmp of the call that started the read. Nothing between the
 * two needs cleaning up but the decompressor and the buffer named volatile. */
#include "jpeg.h"

#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

struct quiet_error {
        struct jpeg_error_mgr mgr;
        jmp_buf jump;
};

static void quiet_exit(j_common_ptr cinfo) {
        longjmp(((struct quiet_error *) cinfo->err)->jump, 1);
}

static void quiet_message(j_common_ptr cinfo) {
        (void) cinfo;
}

/* Errors jump to err->jump (set it next) and print nothing. */
static void quiet_errors(struct jpeg_decompress_struct *cinfo, struct quiet_error *err) {
        cinfo->err = jpeg_std_error(&err->mgr);
        err->mgr.error_exit = quiet_exit;
        err->mgr.output_message = quiet_message;
}

int emo__jpeg_size(const unsigned char *p, size_t len, unsigned *ret_width, unsigned *ret_height) {
        struct jpeg_decompress_struct cinfo;
        struct quiet_error err;
        quiet_errors(&cinfo, &err);
        if (setjmp(err.jump)) {
                jpeg_destroy_decompress(&cinfo);
                return -EBADMSG;
        }
        jpeg_create_decompress(&cinfo);
        jpeg_mem_src(&cinfo, p, (unsigned long) len);
        jpeg_read_header(&cinfo, TRUE);
        *ret_width = cinfo.image_width;
        *ret_height = cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return 0;
}

/* A scan's entropy-coded data ends at the first marker that is neither a stuffed FF 00 nor a
 * restart marker. What follows the end of the image is not read. */
size_t emo__jpeg_scans(const unsigned char *p, size_t len) {
        size_t scans = 0, i = 2; /* after the start-of-image marker */
        while (i + 1 < len) {
                if (p[i] != 0xff) { /* entropy-coded data of the last scan */
                        i++;
                        continue;
                }
                unsigned char m = p[i + 1];
                if (m == 0xff) { /* fill byte */
                        i++;
                        continue;
                }
                i += 2;
                if (m == 0x00 || (m >= 0xd0 && m <= 0xd7) || m == 0x01) /* stuffed byte, restart, TEM */
                        continue;
                if (m == 0xd9) /* end of image */
                        break;
                if (m == 0xda)
                        scans++;
                if (i + 1 >= len)
                        break;
                i += (size_t) (p[i] << 8 | p[i + 1]); /* the segment, its length field included */
        }
        return scans;
}

/* Looks for the marker near the end, allowing for trailing padding. */
bool emo__jpeg_truncated(const unsigned char *p, size_t len) {
        size_t window = len < 1024 ? len : 1024;
        for (size_t i = len - window; i + 1 < len; i++)
                if (p[i] == 0xff && p[i + 1] == 0xd9)
                        return false;
        return true;
}

static uint32_t le32(const unsigned char *p) {
        return (uint32_t) p[3] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[1] << 8 | p[0];
}

static uint32_t be32(const unsigned char *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static unsigned tiff16(const unsigned char *t, bool le, size_t o) {
        return le ? (unsigned) (t[o] | t[o + 1] << 8) : (unsigned) (t[o] << 8 | t[o + 1]);
}

/* The orientation tag (0x0112) of the EXIF segment's TIFF directory t of n bytes. */
static int exif_orientation(const unsigned char *t, size_t n) {
        if (n < 8 || (memcmp(t, "II*\0", 4) != 0 && memcmp(t, "MM\0*", 4) != 0))
                return -1;
        bool le = t[0] == 'I';
        size_t ifd = le ? le32(t + 4) : be32(t + 4);
        if (ifd > n || n - ifd < 2)
                return -1;
        size_t count = tiff16(t, le, ifd);
        if ((n - ifd - 2) / 12 < count)
                return -1;
        for (size_t k = 0; k < count; k++) {
                size_t o = ifd + 2 + 12 * k;
                if (tiff16(t, le, o) == 0x0112) {
                        unsigned v = tiff16(t, le, o + 8);
                        return tiff16(t, le, o + 2) == 3 && v >= 1 && v <= 8 ? (int) v : -1;
                }
        }
        return 1;
}

int emo__jpeg_orientation(const unsigned char *p, size_t len) {
        size_t i = 2;
        while (i + 4 <= len && p[i] == 0xff) {
                unsigned char m = p[i + 1];
                if (m == 0xda || m == 0xd9)
                        break; /* the first scan: no more metadata */
                size_t seg = (size_t) (p[i + 2] << 8 | p[i + 3]);
                if (seg < 2 || seg > len - i - 2)
                        return -1;
                const unsigned char *e = p + i + 4;
                size_t n = seg - 2;
                if (m == 0xe1 && n >= 6 && memcmp(e, "Exif\0\0", 6) == 0)
                        return exif_orientation(e + 6, n - 6);
                i += 2 + seg;
        }
        return 1;
}

int emo__jpeg_region(const unsigned char *p, size_t len, unsigned denom, int x0, int y0, int x1, int y1,
                     unsigned char **ret_buf, int *ret_x, int *ret_width, int *ret_height, int *ret_channels) {
        struct jpeg_decompress_struct cinfo;
        struct quiet_error err;
        unsigned char *volatile buf = NULL;
        quiet_errors(&cinfo, &err);
        if (setjmp(err.jump)) {
                jpeg_destroy_decompress(&cinfo);
                free(buf);
                return -EBADMSG;
        }
        jpeg_create_decompress(&cinfo);
        jpeg_mem_src(&cinfo, p, (unsigned long) len);
        jpeg_read_header(&cinfo, TRUE);
        int channels;
        if (cinfo.num_components == 3 && cinfo.jpeg_color_space == JCS_YCbCr) {
                cinfo.out_color_space = JCS_EXT_BGR;
                channels = 3;
        } else if (cinfo.num_components == 1) {
                cinfo.out_color_space = JCS_GRAYSCALE;
                channels = 1;
        } else {
                jpeg_destroy_decompress(&cinfo);
                return -ENOTSUP;
        }
        cinfo.scale_num = 1;
        cinfo.scale_denom = denom;
        jpeg_start_decompress(&cinfo);
        const int left = x0 > 0 ? x0 : 0, top = y0 > 0 ? y0 : 0;
        const int right = (int) cinfo.output_width < x1 ? (int) cinfo.output_width : x1;
        const int bottom = (int) cinfo.output_height < y1 ? (int) cinfo.output_height : y1;
        if (right <= left || bottom <= top) {
                jpeg_destroy_decompress(&cinfo);
                return -EINVAL;
        }
        JDIMENSION xoff = (JDIMENSION) left, width = (JDIMENSION) (right - left);
        if (width < cinfo.output_width)
                jpeg_crop_scanline(&cinfo, &xoff, &width);
        size_t row = (size_t) cinfo.output_width * channels;
        buf = malloc(row * (size_t) (bottom - top));
        if (!buf) {
                jpeg_destroy_decompress(&cinfo);
                return -ENOMEM;
        }
        if (top > 0 && jpeg_skip_scanlines(&cinfo, (JDIMENSION) top) != (JDIMENSION) top) {
                jpeg_destroy_decompress(&cinfo);
                free(buf);
                return -EBADMSG;
        }
        for (int y = top; y < bottom; y++) {
                JSAMPROW r = buf + row * (size_t) (y - top);
                if (jpeg_read_scanlines(&cinfo, &r, 1) != 1) {
                        jpeg_destroy_decompress(&cinfo);
                        free(buf);
                        return -EBADMSG;
                }
        }
        *ret_x = (int) xoff;
        *ret_width = (int) cinfo.output_width;
        *ret_height = bottom - top;
        *ret_channels = channels;
        jpeg_destroy_decompress(&cinfo);
        *ret_buf = buf;
        return 0;
}
