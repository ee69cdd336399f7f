/* The header probes of probe.h. Each refusal says which field and why, in ret->why; the caller
 * (image.cpp) hands it on in the caller's emo_error_t. */
#include "probe.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <webp/decode.h>

#include "jpeg.h"

#include "vision.h"

/* Keep why for the caller and return r. */
__attribute__((format(printf, 3, 4))) static int refuse(emo__probe_info_t *ret, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ret->why, sizeof(ret->why), fmt, ap);
        va_end(ap);
        return r;
}

static uint32_t be32(const unsigned char *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint32_t le32(const unsigned char *p) {
        return (uint32_t) p[3] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[1] << 8 | p[0];
}

static unsigned clamp_u32(int64_t v) {
        return v > (int64_t) UINT32_MAX ? UINT32_MAX : (unsigned) v;
}

/* JPEG: the size from libjpeg's header reader, and the scans. Each scan of a progressive JPEG is a
 * pass over the whole image, and one a few bytes long can cover every block (an end-of-band run),
 * so a small file of thousands of scans can keep a worker busy for minutes, past the watchdog,
 * and libjpeg has no limit of its own that OpenCV exposes. Encoders write 1 (baseline) to about
 * 10 (libjpeg's progressive script). jpeg_read_header has checked the segments before the first
 * scan. */
static int probe_jpeg(const unsigned char *p, size_t len, emo__probe_info_t *ret) {
        if (emo__jpeg_size(p, len, &ret->width, &ret->height) < 0)
                return refuse(ret, -EBADMSG, "broken JPEG header");
        size_t scans = emo__jpeg_scans(p, len);
        if (scans > EMO_JPEG_MAX_SCANS)
                return refuse(ret, -EBADMSG, "JPEG of %zu scans (progressive passes); this daemon decodes at most %d",
                              scans, EMO_JPEG_MAX_SCANS);
        ret->scans = scans;
        return 0;
}

/* PNG: the specification fixes IHDR as the first chunk: width and height are the big-endian words
 * at offsets 16 and 20. */
static int probe_png(const unsigned char *p, size_t len, emo__probe_info_t *ret) {
        if (len < 24 || memcmp(p + 12, "IHDR", 4) != 0)
                return refuse(ret, -EBADMSG, "truncated or broken PNG header");
        ret->width = be32(p + 16);
        ret->height = be32(p + 20);
        return 0;
}

static int probe_webp(const unsigned char *p, size_t len, emo__probe_info_t *ret) {
        int w, h;
        if (!WebPGetInfo(p, len, &w, &h))
                return refuse(ret, -EBADMSG, "broken WebP header");
        ret->width = (unsigned) w;
        ret->height = (unsigned) h;
        return 0;
}

/* BMP: the BITMAPCOREHEADER (12 bytes) has 16-bit sizes, every later header 32-bit signed ones at
 * offsets 18 and 22 of the file; a negative height means rows stored top-down. The bit count
 * (offset 24 or 28) sizes OpenCV's row buffer, width x bits, before OpenCV looks at it, and
 * biClrUsed (offset 46) the palette it reads into a table of 256: both are held to what OpenCV
 * decodes (1, 4, 8, 16, 24 or 32 bits; at most 256 colours), so a header cannot size a buffer. */
static int probe_bmp(const unsigned char *p, size_t len, emo__probe_info_t *ret) {
        if (len < 26)
                return refuse(ret, -EBADMSG, "truncated BMP header");
        uint32_t dib = le32(p + 14);
        int64_t width, height;
        unsigned bits, colours = 0;
        if (dib == 12) {
                width = p[18] | p[19] << 8;
                height = p[20] | p[21] << 8;
                bits = p[24] | p[25] << 8;
        } else if (dib >= 40) {
                if (len < 50)
                        return refuse(ret, -EBADMSG, "truncated BMP header");
                width = (int32_t) le32(p + 18);
                height = (int32_t) le32(p + 22);
                bits = p[28] | p[29] << 8;
                colours = le32(p + 46);
        } else
                return refuse(ret, -EBADMSG, "broken BMP header");
        if (height < 0)
                height = -height;
        if (width <= 0 || height <= 0)
                return refuse(ret, -EBADMSG, "BMP header without pixels");
        if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
                return refuse(ret, -EBADMSG, "BMP of %u bits per pixel (biBitCount); this daemon decodes 1, 4, 8, 16, "
                              "24 or 32", bits);
        if (bits <= 8 && colours > 256)
                return refuse(ret, -EBADMSG, "BMP palette of %u colours (biClrUsed); at most 256", colours);
        ret->width = clamp_u32(width);
        ret->height = clamp_u32(height);
        return 0;
}

/* A TIFF file in its byte order. */
struct tiff {
        const unsigned char *p;
        size_t len;
        bool le;
};

static uint32_t tiff16(const struct tiff *t, size_t o) {
        return t->le ? (uint32_t) (t->p[o] | t->p[o + 1] << 8) : (uint32_t) (t->p[o] << 8 | t->p[o + 1]);
}

static uint32_t tiff32(const struct tiff *t, size_t o) {
        return t->le ? le32(t->p + o) : be32(t->p + o);
}

/* BitsPerSample, at its directory entry e: one value for all samples, or one per sample, all alike
 * (libtiff refuses differing ones); SHORTs or LONGs, inline when they fit the entry's 4 bytes,
 * else at an offset in the file. */
static int tiff_bits(const struct tiff *t, size_t e, int64_t samples, emo__probe_info_t *ret) {
        uint32_t type = tiff16(t, e + 2), count = tiff32(t, e + 4), size = type == 3 ? 2 : 4;
        if ((type != 3 && type != 4) || (count != 1 && count != samples))
                return refuse(ret, -EBADMSG, "TIFF BitsPerSample is not one SHORT or LONG or one per sample (type %u, "
                              "count %u)", type, count);
        size_t at = e + 8;
        if (count * size > 4) {
                at = tiff32(t, e + 8);
                if (at > t->len || (t->len - at) / size < count)
                        return refuse(ret, -EBADMSG, "TIFF BitsPerSample outside the file");
        }
        for (uint32_t s = 0; s < count; s++) {
                uint32_t bits = size == 2 ? tiff16(t, at + 2 * s) : tiff32(t, at + 4 * s);
                if (bits != 1 && bits != 2 && bits != 4 && bits != 8 && bits != 16)
                        return refuse(ret, -EBADMSG, "TIFF of %u BitsPerSample; this daemon decodes 1, 2, 4, 8 or 16",
                                      bits);
        }
        return 0;
}

/* TIFF: the first image file directory, the page OpenCV decodes, in the file's byte order.
 * libtiff, which decodes it, keeps the first of a tag listed twice and reads sizes from any
 * integer type; this reads one SHORT or LONG each. A directory where the two readings could
 * differ (a tag twice, of another type or count) is refused, so that what is checked is what is
 * decoded. Besides ImageWidth and ImageLength, these fields size OpenCV's and libtiff's buffers:
 * - TileWidth x TileLength (322, 323): OpenCV allocates one tile as 32-bit RGBA and libtiff
 *   fills all of it, whatever the image's size: a 198-byte file of 64 x 64 pixels declaring
 *   16384 x 16368 tiles cost over 1 GB and seconds. libtiff takes a directory with either field as
 *   tiled and fills a missing one from RowsPerStrip when that comes first (a 210-byte file with
 *   TileWidth 64, no TileLength and 16,776,960 rows per strip cost 4.3 GB), so a tiled directory
 *   must give both, non-zero, as TIFF 6.0 requires (section 15).
 * - ImageWidth x RowsPerStrip (278) for strips: OpenCV allocates a strip of RowsPerStrip rows even
 *   past the image's end (only 2^32 - 1, "one strip", and 0 are taken as the image's height).
 * - SamplesPerPixel (277) and BitsPerSample (258): libtiff's own tile or strip buffer holds
 *   samples x bits per pixel. OpenCV decodes to BGR through libtiff's RGBA reader, which takes
 *   1, 2, 4, 8 or 16 bits and OpenCV at most 4 samples; others are refused here.
 * BigTIFF is not probed (-ENOTSUP). */
static int probe_tiff(const unsigned char *p, size_t len, emo__probe_info_t *ret) {
        const struct tiff t = { p, len, p[0] == 'I' };
        if (len < 8)
                return refuse(ret, -EBADMSG, "truncated TIFF header");
        size_t ifd = tiff32(&t, 4);
        if (ifd > len || len - ifd < 2)
                return refuse(ret, -EBADMSG, "TIFF directory outside the file");
        size_t n = tiff16(&t, ifd);
        if ((len - ifd - 2) / 12 < n)
                return refuse(ret, -EBADMSG, "truncated TIFF directory");
        static const struct {
                uint32_t tag;
                const char *name;
        } sizes[] = { { 256, "ImageWidth" }, { 257, "ImageLength" }, { 277, "SamplesPerPixel" },
                      { 278, "RowsPerStrip" }, { 322, "TileWidth" },  { 323, "TileLength" } };
        enum { WIDTH, LENGTH, SAMPLES, ROWS, TILE_W, TILE_L, N_SIZES };
        int64_t v[N_SIZES] = { -1, -1, -1, -1, -1, -1 };
        size_t bits_entry = 0; /* BitsPerSample's entry, 0: none */
        for (size_t i = 0; i < n; i++) {
                size_t e = ifd + 2 + 12 * i;
                uint32_t tag = tiff16(&t, e), type = tiff16(&t, e + 2), count = tiff32(&t, e + 4);
                if (tag == 258) {
                        if (bits_entry)
                                return refuse(ret, -EBADMSG, "TIFF directory lists BitsPerSample twice");
                        bits_entry = e;
                        continue;
                }
                size_t k = 0;
                while (k < N_SIZES && sizes[k].tag != tag)
                        k++;
                if (k == N_SIZES)
                        continue;
                if (v[k] >= 0)
                        return refuse(ret, -EBADMSG, "TIFF directory lists %s twice", sizes[k].name);
                if (count != 1 || (type != 3 && type != 4))
                        return refuse(ret, -EBADMSG, "TIFF %s is not one SHORT or LONG (type %u, count %u)",
                                      sizes[k].name, type, count);
                v[k] = type == 3 ? tiff16(&t, e + 8) : tiff32(&t, e + 8);
        }
        if (v[WIDTH] <= 0 || v[LENGTH] <= 0)
                return refuse(ret, -EBADMSG, "TIFF directory without image width and length");
        int64_t samples = v[SAMPLES] < 0 ? 1 : v[SAMPLES]; /* libtiff's default */
        if (samples < 1 || samples > 4)
                return refuse(ret, -EBADMSG, "TIFF of %lld SamplesPerPixel; this daemon decodes 1 to 4",
                              (long long) samples);
        int r;
        if (bits_entry && (r = tiff_bits(&t, bits_entry, samples, ret)) < 0)
                return r;
        ret->width = clamp_u32(v[WIDTH]);
        ret->height = clamp_u32(v[LENGTH]);
        /* libtiff takes a directory with either tile field as tiled. */
        if (v[TILE_W] >= 0 || v[TILE_L] >= 0) {
                if (v[TILE_W] <= 0 || v[TILE_L] <= 0)
                        return refuse(ret, -EBADMSG, "TIFF tiles without both TileWidth and TileLength (%lldx%lld)",
                                      (long long) (v[TILE_W] > 0 ? v[TILE_W] : 0),
                                      (long long) (v[TILE_L] > 0 ? v[TILE_L] : 0));
                ret->block_width = (uint64_t) v[TILE_W];
                ret->block_height = (uint64_t) v[TILE_L];
                ret->block_what = "TIFF tiles (TileWidth x TileLength)";
        } else {
                ret->block_width = (uint64_t) v[WIDTH];
                ret->block_height = (uint64_t) (v[ROWS] > 0 && v[ROWS] != UINT32_MAX ? v[ROWS] : v[LENGTH]);
                ret->block_what = "TIFF strips (ImageWidth x RowsPerStrip)";
        }
        return 0;
}

/* PNM (P1-P6): the magic number and whitespace, then width and height as decimal text, with
 * whitespace and '#' comments between the fields. OpenCV's reader ends a number at whatever byte
 * follows it and reads on from the next, so a '#' right after the width starts no comment there:
 * "30000#30000\n1" is 30000 x 30000 to OpenCV, 30000 x 1 here. Such a header is refused. */
static int probe_pnm(const unsigned char *p, size_t len, emo__probe_info_t *ret) {
        size_t i = 2;
        uint64_t v[2];
        for (int k = 0; k < 2; k++) {
                for (;;) {
                        while (i < len && isspace(p[i]))
                                i++;
                        if (i < len && p[i] == '#') {
                                while (i < len && p[i] != '\n' && p[i] != '\r')
                                        i++;
                                continue;
                        }
                        break;
                }
                if (i >= len || !isdigit(p[i]))
                        return refuse(ret, -EBADMSG, "broken PNM header");
                v[k] = 0;
                while (i < len && isdigit(p[i]) && v[k] <= UINT32_MAX)
                        v[k] = v[k] * 10 + (uint64_t) (p[i++] - '0');
                if (k == 0 && i < len && p[i] == '#')
                        return refuse(ret, -EBADMSG, "PNM header with a comment right after the width, "
                                                     "which decoders read as different sizes");
        }
        if (v[0] == 0 || v[1] == 0)
                return refuse(ret, -EBADMSG, "PNM header without pixels");
        ret->width = v[0] > UINT32_MAX ? UINT32_MAX : (unsigned) v[0];
        ret->height = v[1] > UINT32_MAX ? UINT32_MAX : (unsigned) v[1];
        return 0;
}

/* A file taken here that this decoder does not take goes on to OpenCV's other decoders, whose
 * sizes nobody read first: the last of them, GDAL, opens a file with "DTED" at offset 140 from a
 * temporary file with any of its drivers (a VRT naming other files and URLs, among others). */
int emo__probe(const void *data, size_t len, emo__probe_info_t *ret) {
        const unsigned char *p = data;
        static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
        *ret = (emo__probe_info_t) { .scans = 1 };
        if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
                return probe_jpeg(p, len, ret);
        if (len >= 8 && memcmp(p, png_sig, 8) == 0)
                return probe_png(p, len, ret);
        if (len >= 2 && p[0] == 'B' && p[1] == 'M')
                return probe_bmp(p, len, ret);
        if (len >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0))
                return probe_tiff(p, len, ret);
        if (len >= 3 && p[0] == 'P' && p[1] >= '1' && p[1] <= '6' && isspace(p[2]))
                return probe_pnm(p, len, ret);
        if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
                return probe_webp(p, len, ret);
        return -ENOTSUP;
}
