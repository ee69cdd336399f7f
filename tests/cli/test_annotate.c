/* `emotion analyze --annotate`, `analyze DIR` and `watch --annotate`, `watch`'s change lines: the
 * real CLI against a real daemon, its output files read back and compared pixel by pixel with the
 * inputs (lib/overlay decodes both, the same way, so pixels the overlay did not touch are equal). */
#include <criterion/criterion.h>
#include <ftw.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/capture.h"
#include "capture/writer.h"
#include "daemon.h"
#include "emo/labels.h"
#include "emo/util.h"
#include "overlay/image.h"

static emo_test_daemon_t daemon_;

static void start(void) {
        emo_test_daemon_start(&daemon_, NULL);
}

static void stop(void) {
        emo_test_daemon_cleanup(&daemon_);
}

TestSuite(annotate, .init = start, .fini = stop, .timeout = 180);

/* Run `emotion --server <daemon> ARGS...` (ARGS ending with NULL), at most timeout_ms. */
#define emotion(r, timeout_ms, ...) \
        emo_test_emotion_run(daemon_.endpoint, (const char *const[]) { __VA_ARGS__ }, timeout_ms, r)

static const char *str(json_object *o, const char *key) {
        return emo_test_json_string(o, key);
}

static char *tmpdir(void) {
        char *d = strdup("/tmp/emo-annotate-XXXXXX");
        cr_assert_not_null(mkdtemp(d));
        return d;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        return remove(path);
}

/* rm -rf dir, at the end of a test. */
static void remove_tree(const char *dir) {
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void copy_fixture(const char *name, const char *dir, const char *as) {
        size_t len;
        void *data = emo_test_read_fixture(name, &len);
        _cleanup_free_ char *path = emo_test_join(dir, as);
        FILE *f = fopen(path, "we");
        cr_assert_not_null(f, "cannot write %s", path);
        cr_assert_eq(fwrite(data, 1, len, f), len);
        cr_assert_eq(fclose(f), 0);
        free(data);
}

static cairo_surface_t *decode_file(const char *path) {
        size_t len;
        void *data = emo_test_read_file(path, &len);
        cairo_surface_t *s = NULL;
        _cleanup_free_ char *why = NULL;
        cr_assert_eq(emo_image_decode(data, len, &s, &why), 0, "cannot decode %s: %s", path, why ? why : "?");
        free(data);
        return s;
}

/* Pixels of a and b (same size) in x0 <= x < x1, y0 <= y < y1 (clipped) that differ by more than
 * 40 in some channel, and how many pixels were compared. */
static long differ(cairo_surface_t *a, cairo_surface_t *b, int x0, int y0, int x1, int y1, long *ret_total) {
        int w = cairo_image_surface_get_width(a), h = cairo_image_surface_get_height(a);
        cr_assert_eq(cairo_image_surface_get_width(b), w);
        cr_assert_eq(cairo_image_surface_get_height(b), h);
        x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0, x1 = x1 > w ? w : x1, y1 = y1 > h ? h : y1;
        const uint8_t *pa = cairo_image_surface_get_data(a), *pb = cairo_image_surface_get_data(b);
        int sa = cairo_image_surface_get_stride(a), sb = cairo_image_surface_get_stride(b);
        long n = 0, total = 0;
        for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++) {
                        const uint8_t *p = pa + (size_t) y * sa + 4 * x, *q = pb + (size_t) y * sb + 4 * x;
                        total++;
                        for (int c = 0; c < 3; c++)
                                if (abs(p[c] - q[c]) > 40) {
                                        n++;
                                        break;
                                }
                }
        if (ret_total)
                *ret_total = total;
        return n;
}

typedef struct box {
        int x, y, w, h;
} box_t;

static size_t boxes_of(json_object *o, box_t *boxes, size_t max) {
        json_object *faces = emo_test_json_get(o, "faces");
        size_t n = json_object_array_length(faces);
        cr_assert_leq(n, max);
        for (size_t i = 0; i < n; i++) {
                json_object *b = emo_test_json_get(json_object_array_get_idx(faces, i), "box");
                boxes[i] = (box_t) { json_object_get_int(json_object_array_get_idx(b, 0)),
                                     json_object_get_int(json_object_array_get_idx(b, 1)),
                                     json_object_get_int(json_object_array_get_idx(b, 2)),
                                     json_object_get_int(json_object_array_get_idx(b, 3)) };
        }
        return n;
}

/* The annotation of an image with the reported boxes: at every box (its frame is drawn along
 * the edge, the emoji over its top-right corner) many pixels changed; below the lowest box and
 * its label nothing did (the bubble of these photos goes above or beside the face). */
static void check_annotated(const char *input, const char *annotated, const box_t *boxes, size_t n) {
        cairo_surface_t *in = decode_file(input), *out = decode_file(annotated);
        int h = cairo_image_surface_get_height(in), w = cairo_image_surface_get_width(in);
        int bottom = 0;
        for (size_t i = 0; i < n; i++) {
                const box_t *b = &boxes[i];
                long total;
                /* The band of 8 pixels outside the box's edge, where its frame is drawn. */
                long around = differ(in, out, b->x - 8, b->y - 8, b->x + b->w + 8, b->y + b->h + 8, &total) -
                              differ(in, out, b->x, b->y, b->x + b->w, b->y + b->h, NULL);
                long band = 2 * (b->w + b->h) * 8;
                cr_expect_gt(around, band / 4, "%s: face %zu at %d,%d %dx%d: only %ld of ~%ld pixels changed along its box",
                             annotated, i + 1, b->x, b->y, b->w, b->h, around, band);
                if (b->y + b->h > bottom)
                        bottom = b->y + b->h;
        }
        long total = 0;
        long far = differ(in, out, 0, bottom + 60, w, h, &total);
        cr_expect_lt(far, 1 + total / 1000, "%s: %ld of %ld pixels changed below the faces", annotated, far, total);
        if (n == 0) {
                far = differ(in, out, 0, 0, w, h, &total);
                cr_expect_eq(far, 0, "%s: no face, yet %ld pixels changed", annotated, far);
        }
        cairo_surface_destroy(in);
        cairo_surface_destroy(out);
}

Test(annotate, images_have_the_overlay_at_the_reported_boxes) {
        _cleanup_free_ char *dir = tmpdir();
        _cleanup_free_ char *out = emo_test_join(dir, "out");
        copy_fixture("one_face.jpg", dir, "one_face.jpg");
        copy_fixture("four_faces.jpg", dir, "four_faces.jpg");
        copy_fixture("no_face.jpg", dir, "no_face.jpg");
        const char *names[] = { "one_face.jpg", "four_faces.jpg", "no_face.jpg" };
        char *paths[3];
        for (size_t i = 0; i < 3; i++)
                paths[i] = emo_test_join(dir, names[i]);

        emo_test_run_t r;
        emotion(&r, 60000, "analyze", "--json", "--annotate", out, paths[0], paths[1], paths[2], NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        cr_assert_eq(emo_test_count_lines(r.out), 3, "%s", r.out);
        size_t faces[] = { 1, 4, 0 };
        for (size_t i = 0; i < 3; i++) {
                json_object *o = emo_test_json_line(r.out, i);
                cr_assert_str_eq(str(o, "file"), paths[i]);
                char want[512];
                snprintf(want, sizeof(want), "%s/%.*s.png", out, (int) (strlen(names[i]) - 4), names[i]);
                cr_assert_str_eq(str(o, "annotated"), want);
                box_t boxes[8];
                size_t n = boxes_of(o, boxes, ELEMENTSOF(boxes));
                cr_assert_eq(n, faces[i], "%s: %zu faces", names[i], n);
                check_annotated(paths[i], want, boxes, n);
                json_object_put(o);
        }
        emo_test_run_done(&r);

        /* The text output names the annotated file; two inputs that would write the same file are
         * refused before anything is sent. */
        emotion(&r, 60000, "analyze", "--annotate", out, paths[0], NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        char want[512];
        snprintf(want, sizeof(want), "  annotated: %s/one_face.png\n", out);
        cr_expect_not_null(strstr(r.out, want), "no '%s' in:\n%s", want, r.out);
        emo_test_run_done(&r);
        _cleanup_free_ char *other = emo_test_join(dir, "one_face.png");
        copy_fixture("one_face.jpg", dir, "one_face.png");
        emotion(&r, 60000, "analyze", "--annotate", out, paths[0], other, NULL);
        cr_expect_eq(r.status, 2, "exit %d; stderr:\n%s", r.status, r.err);
        cr_expect_not_null(strstr(r.err, "would both be written to"), "%s", r.err);
        emo_test_run_done(&r);
        /* Annotating a PNG into its own folder would overwrite it. */
        emotion(&r, 60000, "analyze", "--annotate", dir, other, NULL);
        cr_expect_eq(r.status, 2, "exit %d; stderr:\n%s", r.status, r.err);
        cr_expect_not_null(strstr(r.err, "would be overwritten"), "%s", r.err);
        emo_test_run_done(&r);
        for (size_t i = 0; i < 3; i++)
                free(paths[i]);
        remove_tree(dir);
        emo_test_daemon_stop(&daemon_);
}

/* one_face.jpg with an EXIF Orientation of 6 (shown turned 90 degrees clockwise): an APP1 segment
 * holding a big-endian TIFF of one IFD entry, inserted right after the SOI marker. */
static void write_rotated_jpeg(const char *path) {
        size_t len;
        uint8_t *jpeg = emo_test_read_fixture("one_face.jpg", &len);
        cr_assert(len > 2 && jpeg[0] == 0xff && jpeg[1] == 0xd8);
        static const uint8_t app1[] = {
                0xff, 0xe1, 0x00, 0x22,                   /* APP1, 34 bytes with this length */
                'E', 'x', 'i', 'f', 0, 0,                 /* Exif header */
                'M', 'M', 0x00, 0x2a, 0, 0, 0, 8,         /* TIFF, big-endian, IFD at 8 */
                0x00, 0x01,                               /* one entry */
                0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1,       /* Orientation, SHORT, 1 value */
                0x00, 0x06, 0x00, 0x00,                   /* 6 */
                0, 0, 0, 0,                               /* no next IFD */
        };
        FILE *f = fopen(path, "we");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(jpeg, 1, 2, f), 2);
        cr_assert_eq(fwrite(app1, 1, sizeof(app1), f), sizeof(app1));
        cr_assert_eq(fwrite(jpeg + 2, 1, len - 2, f), len - 2);
        cr_assert_eq(fclose(f), 0);
        free(jpeg);
}

/* A photo taken with the camera turned is annotated upright, as the daemon analysed it: the
 * annotated image has the reply's size (480x640) and the overlay at the reported boxes. */
Test(annotate, exif_orientation_is_applied) {
        _cleanup_free_ char *dir = tmpdir();
        _cleanup_free_ char *photo = emo_test_join(dir, "turned.jpg");
        _cleanup_free_ char *ann = emo_test_join(dir, "out/turned.png");
        _cleanup_free_ char *out = emo_test_join(dir, "out");
        write_rotated_jpeg(photo);
        emo_test_run_t r;
        emotion(&r, 60000, "analyze", "--json", "--annotate", out, photo, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        json_object *o = emo_test_json_line(r.out, 0);
        cr_assert_eq(json_object_get_int(emo_test_json_get(o, "width")), 480, "%s", r.out);
        cr_assert_eq(json_object_get_int(emo_test_json_get(o, "height")), 640, "%s", r.out);
        box_t boxes[4];
        size_t n = boxes_of(o, boxes, ELEMENTSOF(boxes));
        cr_assert_eq(n, 1, "%s", r.out);
        cairo_surface_t *png = decode_file(ann);
        cr_expect_eq(cairo_image_surface_get_width(png), 480);
        cr_expect_eq(cairo_image_surface_get_height(png), 640);
        cairo_surface_destroy(png);
        check_annotated(photo, ann, boxes, n);
        json_object_put(o);
        emo_test_run_done(&r);
        remove_tree(dir);
        emo_test_daemon_stop(&daemon_);
}

/* A folder stands for its image files, subfolders included, in byte order of the names; other
 * files are skipped with a line on stderr, hidden ones silently; annotations keep the tree. */
Test(annotate, folder_walk) {
        _cleanup_free_ char *dir = tmpdir();
        _cleanup_free_ char *sub = emo_test_join(dir, "b_sub");
        _cleanup_free_ char *empty = emo_test_join(dir, "c_empty");
        cr_assert_eq(mkdir(sub, 0700), 0);
        cr_assert_eq(mkdir(empty, 0700), 0);
        copy_fixture("four_faces.jpg", sub, "four.JPG");
        copy_fixture("one_face.jpg", dir, "z_one.jpeg");
        copy_fixture("no_face.jpg", dir, "a_none.jpg");
        copy_fixture("text.txt", dir, "notes.txt");
        copy_fixture("one_face.jpg", dir, ".hidden.jpg");
        _cleanup_free_ char *out = tmpdir();

        emo_test_run_t r;
        emotion(&r, 60000, "analyze", "--json", "--annotate", out, dir, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        const char *want[] = { "a_none.jpg", "b_sub/four.JPG", "z_one.jpeg" };
        const char *want_out[] = { "a_none.png", "b_sub/four.png", "z_one.png" };
        size_t faces[] = { 0, 4, 1 };
        cr_assert_eq(emo_test_count_lines(r.out), 3, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
        for (size_t i = 0; i < 3; i++) {
                json_object *o = emo_test_json_line(r.out, i);
                _cleanup_free_ char *path = emo_test_join(dir, want[i]);
                _cleanup_free_ char *ann = emo_test_join(out, want_out[i]);
                cr_expect_str_eq(str(o, "file"), path);
                cr_expect_str_eq(str(o, "annotated"), ann);
                cr_expect_eq(json_object_array_length(emo_test_json_get(o, "faces")), faces[i]);
                struct stat st;
                cr_expect_eq(stat(ann, &st), 0, "%s not written", ann);
                json_object_put(o);
        }
        _cleanup_free_ char *notes = emo_test_join(dir, "notes.txt");
        char line[512];
        snprintf(line, sizeof(line), "%s: skipped: not an image", notes);
        cr_expect_not_null(strstr(r.err, line), "no '%s' in:\n%s", line, r.err);
        cr_expect_null(strstr(r.err, "hidden"), "%s", r.err);
        cr_expect_eq(emo_test_count_lines(r.err), 1, "one line for notes.txt only:\n%s", r.err);
        emo_test_run_done(&r);

        /* A folder without any image is a failed input. */
        emotion(&r, 60000, "analyze", empty, NULL);
        cr_expect_eq(r.status, 1, "exit %d; stderr:\n%s", r.status, r.err);
        cr_expect_not_null(strstr(r.err, "no image file in this folder"), "%s", r.err);
        emo_test_run_done(&r);
        remove_tree(dir);
        remove_tree(out);
        emo_test_daemon_stop(&daemon_);
}

/* ---- watch ------------------------------------------------------------------------------------ */

/* A BGR24 frame as a cairo RGB24 surface (its own conversion, not the CLI's). */
static cairo_surface_t *surface_of_frame(const emo_capture_frame_t *f) {
        cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, f->width, f->height);
        cr_assert_eq(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
        uint8_t *data = cairo_image_surface_get_data(s);
        int stride = cairo_image_surface_get_stride(s);
        for (int y = 0; y < f->height; y++)
                for (int x = 0; x < f->width; x++) {
                        const uint8_t *p = f->pixels + (size_t) y * f->stride + 3 * x;
                        uint8_t *q = data + (size_t) y * stride + 4 * x;
                        q[0] = p[0], q[1] = p[1], q[2] = p[2], q[3] = 255; /* little-endian B, G, R, X */
                }
        cairo_surface_mark_dirty(s);
        return s;
}

/* Every frame of a video file (lib/capture), as surfaces of cairo's RGB24 layout; *ret_fps. */
static size_t read_video(const char *path, cairo_surface_t **frames, size_t max, double *ret_fps) {
        emo_capture_config_t cc = { .source = path, .timeout_ms = 10000 };
        emo_capture_t *c = NULL;
        _cleanup_free_ char *why = NULL;
        cr_assert_eq(emo_capture_open(&cc, &c, &why), 0, "cannot open %s: %s", path, why ? why : "?");
        if (ret_fps)
                *ret_fps = emo_capture_frame_rate(c);
        size_t n = 0;
        emo_capture_frame_t *f = NULL;
        while (emo_capture_next(c, -1, &f) == 0) {
                cr_assert_lt(n, max, "%s has more than %zu frames", path, max);
                frames[n++] = surface_of_frame(f);
                emo_capture_frame_free(f);
        }
        cr_assert_eq(emo_capture_error(c), 0, "%s: reading failed", path);
        emo_capture_free(c);
        return n;
}

/* The annotated video: one frame per analysed frame, at the source's size and rate, with the
 * overlay at each frame's reported boxes and nothing changed far below the faces (beyond the
 * encoder's own loss). */
Test(annotate, watch_writes_the_annotated_video) {
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        _cleanup_free_ char *dir = tmpdir();
        _cleanup_free_ char *out = emo_test_join(dir, "annotated.mp4");
        emo_test_run_t r;
        emotion(&r, 60000, "watch", "--json", "--annotate", out, video, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        size_t lines = emo_test_count_lines(r.out);

        cairo_surface_t *src[64], *ann[64];
        double src_fps, ann_fps;
        size_t n_src = read_video(video, src, ELEMENTSOF(src), &src_fps);
        size_t n_ann = read_video(out, ann, ELEMENTSOF(ann), &ann_fps);
        cr_assert_eq(lines, n_src, "one JSON object per frame:\n%s", r.out);
        cr_assert_eq(n_ann, n_src, "%zu frames written of %zu", n_ann, n_src);
        cr_expect_float_eq(ann_fps, src_fps, 0.01, "%.3f frames/s written, the source has %.3f", ann_fps, src_fps);
        size_t with_faces = 0;
        for (size_t i = 0; i < n_src; i++) {
                cr_assert_eq(cairo_image_surface_get_width(ann[i]), cairo_image_surface_get_width(src[i]));
                cr_assert_eq(cairo_image_surface_get_height(ann[i]), cairo_image_surface_get_height(src[i]));
                json_object *o = emo_test_json_line(r.out, i);
                box_t boxes[8];
                size_t n = boxes_of(o, boxes, ELEMENTSOF(boxes));
                int bottom = 0;
                for (size_t k = 0; k < n; k++) {
                        const box_t *b = &boxes[k];
                        long around = differ(src[i], ann[i], b->x - 8, b->y - 8, b->x + b->w + 8, b->y + b->h + 8, NULL) -
                                      differ(src[i], ann[i], b->x, b->y, b->x + b->w, b->y + b->h, NULL);
                        long band = 2 * (b->w + b->h) * 8;
                        cr_expect_gt(around, band / 4, "frame %zu, face %zu: only %ld of ~%ld pixels changed along its box",
                                     i, k + 1, around, band);
                        bottom = b->y + b->h > bottom ? b->y + b->h : bottom;
                }
                with_faces += n > 0;
                long total;
                long far = differ(src[i], ann[i], 0, n ? bottom + 60 : 0, 640, 480, &total);
                cr_expect_lt(far, total / 100 + 1, "frame %zu: %ld of %ld pixels changed far from the faces", i, far,
                             total);
                json_object_put(o);
        }
        cr_expect_gt(with_faces, 0);
        for (size_t i = 0; i < n_src; i++) {
                cairo_surface_destroy(src[i]);
                cairo_surface_destroy(ann[i]);
        }
        emo_test_run_done(&r);

        /* A name FFmpeg has no format for is an error that names it. */
        _cleanup_free_ char *bad = emo_test_join(dir, "annotated.nothing");
        emotion(&r, 60000, "watch", "--max-frames", "1", "--annotate", bad, video, NULL);
        cr_expect_eq(r.status, 1, "exit %d; stderr:\n%s", r.status, r.err);
        cr_expect_not_null(strstr(r.err, bad), "%s", r.err);
        emo_test_run_done(&r);
        remove_tree(dir);
        emo_test_daemon_stop(&daemon_);
}

/* The changes a viewer would see between consecutive analysed frames (the --json objects): each
 * face that appears, changes its emotion or leaves; a face is the one of the frame before whose
 * box overlaps it most, if at least 0.3 (IoU). */
static size_t expected_changes(const char *out, size_t lines, size_t *ret_was) {
        box_t prev[16];
        int prev_emotion[16];
        size_t n_prev = 0, changes = 0, was = 0;
        for (size_t i = 0; i < lines; i++) {
                json_object *o = emo_test_json_line(out, i);
                box_t now[16];
                int now_emotion[16];
                size_t n = boxes_of(o, now, ELEMENTSOF(now));
                bool matched[16] = { false };
                for (size_t k = 0; k < n; k++) {
                        json_object *face = json_object_array_get_idx(emo_test_json_get(o, "faces"), k);
                        now_emotion[k] = emo_emotion_from_name(str(face, "emotion"));
                        ssize_t best = -1;
                        double best_iou = 0.3;
                        for (size_t p = 0; p < n_prev; p++) {
                                double v = emo_test_iou(prev[p].x, prev[p].y, prev[p].w, prev[p].h, now[k].x, now[k].y,
                                                        now[k].w, now[k].h);
                                if (!matched[p] && v >= best_iou)
                                        best = (ssize_t) p, best_iou = v;
                        }
                        if (best < 0)
                                changes++;
                        else {
                                matched[best] = true;
                                if (prev_emotion[best] != now_emotion[k])
                                        changes++, was++;
                        }
                }
                for (size_t p = 0; p < n_prev; p++)
                        changes += !matched[p];
                memcpy(prev, now, sizeof(now));
                memcpy(prev_emotion, now_emotion, sizeof(now_emotion));
                n_prev = n;
                json_object_put(o);
        }
        *ret_was = was;
        return changes;
}

/* Lines of text that start with prefix and hold needle. */
static size_t count_matching(const char *text, const char *prefix, const char *needle) {
        size_t n = 0;
        for (const char *p = text; *p;) {
                size_t len = strcspn(p, "\n");
                char *line = strndup(p, len);
                n += strncmp(line, prefix, strlen(prefix)) == 0 && strstr(line, needle);
                free(line);
                p += len + (p[len] == '\n');
        }
        return n;
}

/* A video in which one face changes its emotion where it is: one_face.jpg, then the same photo
 * with an angry face of known_1.jpg pasted over its face, then one_face.jpg again. */
static void make_changing_video(const char *path, size_t *ret_frames) {
        _cleanup_free_ char *a_path = emo_test_fixture("one_face.jpg");
        _cleanup_free_ char *b_path = emo_test_fixture("known_1.jpg");
        cairo_surface_t *a = decode_file(a_path), *other = decode_file(b_path);
        cairo_surface_t *b = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 640, 480);
        cairo_t *cr = cairo_create(b);
        cairo_set_source_surface(cr, a, 0, 0);
        cairo_paint(cr);
        /* known_1.jpg's top-left face (angry, 94,34 132x174) over one_face.jpg's (238,114 176x204). */
        cairo_translate(cr, 238, 114);
        cairo_scale(cr, 176.0 / 132, 204.0 / 174);
        cairo_set_source_surface(cr, other, -94, -34);
        cairo_rectangle(cr, 0, 0, 132, 174);
        cairo_fill(cr);
        cairo_destroy(cr);
        cairo_surface_flush(b);
        emo_video_writer_t *w = NULL;
        _cleanup_free_ char *why = NULL;
        cr_assert_eq(emo_video_writer_open(path, 640, 480, 10, &w, &why), 0, "%s", why ? why : "?");
        cairo_surface_t *seq[] = { a, a, a, b, b, b, a, a };
        for (size_t i = 0; i < ELEMENTSOF(seq); i++) {
                cairo_surface_t *s = seq[i];
                cairo_surface_t *rgb = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 640, 480);
                cairo_t *c2 = cairo_create(rgb);
                cairo_set_source_surface(c2, s, 0, 0);
                cairo_paint(c2);
                cairo_destroy(c2);
                cairo_surface_flush(rgb);
                cr_assert_eq(emo_video_writer_write(w, cairo_image_surface_get_data(rgb),
                                                    (size_t) cairo_image_surface_get_stride(rgb), 640, 480, (int64_t) i),
                             0);
                cairo_surface_destroy(rgb);
        }
        cr_assert_eq(emo_video_writer_close(w, &why), 0, "%s", why ? why : "?");
        *ret_frames = ELEMENTSOF(seq);
        cairo_surface_destroy(a);
        cairo_surface_destroy(b);
        cairo_surface_destroy(other);
}

/* watch prints a line per change (a face appears, changes its emotion, leaves), not a block per
 * frame; --every-frame gives the block of every frame; --json keeps one object per frame. */
Test(annotate, watch_prints_a_line_per_change) {
        _cleanup_free_ char *dir = tmpdir();
        _cleanup_free_ char *changing = emo_test_join(dir, "changing.avi");
        size_t n_frames;
        make_changing_video(changing, &n_frames);
        _cleanup_free_ char *fixture = emo_test_fixture("video.avi");
        const char *videos[] = { changing, fixture };
        size_t total_was = 0;
        for (size_t v = 0; v < ELEMENTSOF(videos); v++) {
                emo_test_run_t r;
                emotion(&r, 60000, "watch", "--json", videos[v], NULL);
                cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
                size_t frames = emo_test_count_lines(r.out), was;
                size_t want = expected_changes(r.out, frames, &was);
                total_was += was;
                emo_test_run_done(&r);

                emotion(&r, 60000, "watch", videos[v], NULL);
                cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
                size_t got = count_matching(r.out, videos[v], ": face ");
                cr_expect_eq(got, want, "%s: %zu change lines, %zu changes in the JSON:\n%s", videos[v], got, want, r.out);
                cr_expect_eq(count_matching(r.out, videos[v], "(was "), was, "%s", r.out);
                char summary[600];
                snprintf(summary, sizeof(summary), "%s: %zu frames analysed of %zu decoded\n", videos[v], frames, frames);
                cr_expect_not_null(strstr(r.out, summary), "no '%s' in:\n%s", summary, r.out);
                emo_test_run_done(&r);

                emotion(&r, 60000, "watch", "--every-frame", videos[v], NULL);
                cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
                cr_expect_eq(count_matching(r.out, videos[v], ": 640x480, "), frames, "a block per frame:\n%s", r.out);
                emo_test_run_done(&r);
        }
        /* The pasted face is classified otherwise than the smiling one (else this test would not
         * see an emotion change at all). */
        cr_expect_geq(total_was, 2, "no emotion change seen in place");
        remove_tree(dir);
        emo_test_daemon_stop(&daemon_);
}

/* `watch FILE` with stderr on a terminal (a pseudo-terminal here): what the terminal got. */
static char *stderr_on_a_terminal(const char *video, int *ret_status) {
        int master, slave;
        cr_assert_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR);
                dup2(null, STDIN_FILENO);
                dup2(null, STDOUT_FILENO);
                dup2(slave, STDERR_FILENO);
                execl(emo_test_emotion(), emo_test_emotion(), "--server", daemon_.endpoint, "watch", video, (char *) NULL);
                _exit(127);
        }
        close(slave);
        size_t len = 0, cap = 1 << 16;
        char *buf = calloc(1, cap);
        for (;;) {
                struct pollfd p = { .fd = master, .events = POLLIN };
                if (poll(&p, 1, 30000) <= 0)
                        break;
                ssize_t k = read(master, buf + len, cap - 1 - len);
                if (k <= 0) /* EIO once the program has exited and the terminal is closed */
                        break;
                len += (size_t) k;
                cr_assert_lt(len, cap - 1);
        }
        close(master);
        cr_assert_eq(waitpid(pid, ret_status, 0), pid);
        return buf;
}

/* A file shows its progress, frames done of the file's, on a terminal only. */
Test(annotate, watch_shows_progress_on_a_terminal_only) {
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        int status;
        _cleanup_free_ char *tty = stderr_on_a_terminal(video, &status);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d; terminal:\n%s", status, tty);
        cr_expect_not_null(strstr(tty, "video.avi ["), "%s", tty);
        cr_expect_not_null(strstr(tty, "12/12 100%"), "no '12/12 100%%' in:\n%s", tty);

        emo_test_run_t r;
        emotion(&r, 60000, "watch", video, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        cr_expect_str_empty(r.err, "stderr is no terminal, yet:\n%s", r.err);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}
