/* What the real daemon leaves behind (docs/privacy.md): after analysing photos, raw pixels,
 * 48x48 faces, a smoothed stream of frames and the fixture video watched through the CLI
 * (`emotion watch --smooth`), nothing it wrote (its stderr, any file under the folders it was
 * given: runtime, state, cache, logs, home, temporary, and the folder of its socket) holds an
 * emotion it answered, a face box, a confidence, an emoji, a dialogue line or any piece of the
 * images sent, at normal and at debug verbosity. With log_results on, the same search finds the
 * results (so that it can fail), and still no pixels. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/labels.h"
#include "emo/util.h"

#define CALL_TIMEOUT_MS 30000
/* A piece of an image this long found in a file counts as image bytes written. */
#define WINDOW 16

/* ---- what was sent and answered ------------------------------------------------------------- */

typedef struct sent {
        uint8_t *data[64];
        size_t len[64];
        size_t n;
} sent_t;

/* One face as answered, from a reply or from the CLI's JSON output. */
typedef struct result {
        int box[4];
        const char *emotion, *smoothed; /* static names; smoothed NULL when not smoothed */
        float confidence;               /* < 0: not known to 3 decimals (the CLI's output) */
        char emoji[16];
        const char *from; /* "request N" or "video frame N", for messages */
        char from_buf[32];
} result_t;

typedef struct answered {
        result_t faces[256];
        size_t n;
        char *lines[128]; /* dialogue lines said */
        size_t n_lines;
} answered_t;

static result_t *new_result(answered_t *a, const char *what, size_t index) {
        cr_assert_lt(a->n, ELEMENTSOF(a->faces));
        result_t *r = &a->faces[a->n++];
        *r = (result_t) { .confidence = -1 };
        snprintf(r->from_buf, sizeof(r->from_buf), "%s %zu", what, index);
        r->from = r->from_buf;
        return r;
}

static void remember_line(answered_t *a, const char *text) {
        if (!text || !*text)
                return;
        cr_assert_lt(a->n_lines, ELEMENTSOF(a->lines));
        a->lines[a->n_lines++] = strdup(text);
}

static void remember_image(sent_t *s, const void *data, size_t len) {
        cr_assert_lt(s->n, ELEMENTSOF(s->data));
        s->data[s->n] = malloc(len);
        cr_assert(s->data[s->n]);
        memcpy(s->data[s->n], data, len);
        s->len[s->n++] = len;
}

/* Send one request and keep what its reply says of each face. Returns how many faces were
 * smoothed over more than one frame. */
static size_t call(const char *endpoint, emo_test_req_t *t, answered_t *a) {
        static size_t calls;
        emo_reply_t *reply = emo_test_call(endpoint, &t->req, CALL_TIMEOUT_MS);
        cr_assert_eq(reply->status, EMO_STATUS_OK, "%s: %s", emo_status_name(reply->status), reply->message);
        const emo_analyze_reply_t *an = reply->analyze;
        size_t smoothed = 0;
        calls++;
        for (size_t i = 0; i < an->n_faces; i++) {
                const emo_pb_face_t *f = an->faces[i];
                result_t *r = new_result(a, "request", calls);
                r->box[0] = f->box->x;
                r->box[1] = f->box->y;
                r->box[2] = f->box->width;
                r->box[3] = f->box->height;
                r->emotion = emo_emotion_name(f->emotion);
                r->confidence = f->confidence;
                snprintf(r->emoji, sizeof(r->emoji), "%s", f->emoji ? f->emoji : "");
                if (f->smoothed) {
                        r->smoothed = emo_emotion_name(f->smoothed->emotion);
                        smoothed += f->smoothed->frames > 1;
                }
        }
        remember_line(a, an->dialogue ? an->dialogue->text : NULL);
        emo_reply_free(reply);
        return smoothed;
}

static int json_int(json_object *o, const char *key) {
        json_object *v = NULL;
        cr_assert(json_object_object_get_ex(o, key, &v), "no '%s' in %s", key, json_object_to_json_string(o));
        return json_object_get_int(v);
}

static const char *json_emotion(json_object *o) {
        json_object *v = NULL;
        cr_assert(json_object_object_get_ex(o, "emotion", &v), "no emotion in %s", json_object_to_json_string(o));
        int e = emo_emotion_from_name(json_object_get_string(v));
        cr_assert_geq(e, 0, "unknown emotion in %s", json_object_to_json_string(o));
        return emo_emotion_name(e);
}

/* The fixture video through the real client, as a camera would be watched: `emotion watch
 * --smooth 3`, which decodes it with FFmpeg and sends its frames as one smoothed stream. The
 * faces it prints are results like any other. Returns how many were smoothed over frames. */
static size_t watch_video(const char *endpoint, answered_t *a) {
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        const char *argv[] = { emo_test_emotion(), "--server", endpoint, "watch", "--json", "--smooth", "3", video, NULL };
        emo_test_run_t run;
        emo_test_run(argv, NULL, 60000, &run);
        cr_assert_eq(run.status, 0, "emotion watch exited %d; stderr:\n%s", run.status, run.err);
        size_t smoothed = 0, frame = 0;
        for (char *line = strtok(run.out, "\n"); line; line = strtok(NULL, "\n"), frame++) {
                json_object *o = json_tokener_parse(line);
                cr_assert_not_null(o, "not JSON: %s", line);
                json_object *faces = NULL, *dialogue = NULL, *text = NULL;
                cr_assert(json_object_object_get_ex(o, "faces", &faces), "no faces in %s", line);
                for (size_t i = 0; i < json_object_array_length(faces); i++) {
                        json_object *f = json_object_array_get_idx(faces, i), *box = NULL, *sm = NULL, *emoji = NULL;
                        result_t *r = new_result(a, "video frame", frame);
                        cr_assert(json_object_object_get_ex(f, "box", &box) && json_object_array_length(box) == 4);
                        for (int k = 0; k < 4; k++)
                                r->box[k] = json_object_get_int(json_object_array_get_idx(box, (size_t) k));
                        r->emotion = json_emotion(f);
                        if (json_object_object_get_ex(f, "emoji", &emoji))
                                snprintf(r->emoji, sizeof(r->emoji), "%s", json_object_get_string(emoji));
                        if (json_object_object_get_ex(f, "smoothed", &sm)) {
                                r->smoothed = json_emotion(sm);
                                smoothed += json_int(sm, "frames") > 1;
                        }
                }
                if (json_object_object_get_ex(o, "dialogue", &dialogue) &&
                    json_object_object_get_ex(dialogue, "text", &text))
                        remember_line(a, json_object_get_string(text));
                json_object_put(o);
        }
        cr_assert_gt(frame, 0, "emotion watch printed nothing");
        emo_test_run_done(&run);
        return smoothed;
}

/* Photos (JPEG files), the raw BGR pixels of one, FER2013 faces as 48x48 grey regions, and the
 * frames of the fixture video as one smoothed stream, as a camera client sends them. */
static void send_everything(const char *endpoint, sent_t *s, answered_t *a) {
        static const char *const photos[] = { "one_face.jpg", "four_faces.jpg", "known_1.jpg", "known_2.jpg",
                                              "known_3.jpg",  "known_4.jpg",    "known_5.jpg", "known_6.jpg" };
        for (size_t i = 0; i < ELEMENTSOF(photos); i++) {
                size_t len;
                _cleanup_free_ void *jpeg = emo_test_read_fixture(photos[i], &len);
                emo_test_req_t t;
                emo_test_req_encoded(&t, jpeg, len);
                t.options.language = "en";
                call(endpoint, &t, a);
                remember_image(s, jpeg, len);
        }

        size_t len;
        _cleanup_free_ uint8_t *bgr = emo_test_read_fixture("one_face.bgr", &len);
        cr_assert_eq(len, 640 * 480 * 3);
        emo_test_req_t t;
        emo_test_req_encoded(&t, bgr, len);
        t.image.format = EMOTION__V1__IMAGE__FORMAT__BGR24;
        t.image.width = 640;
        t.image.height = 480;
        call(endpoint, &t, a);
        remember_image(s, bgr, len);

        size_t n_faces;
        const uint8_t *labels;
        const uint8_t *faces = emo_test_publictest(&n_faces, &labels);
        for (size_t i = 0; i < 6 && i < n_faces; i++) {
                emo_test_req_face48(&t, faces + i * 48 * 48);
                call(endpoint, &t, a);
                remember_image(s, faces + i * 48 * 48, 48 * 48);
        }

        /* The video's frames (fixtures.json lists the photo each shows) as one stream, smoothed,
         * sent by hand as JPEG files (so that their bytes are known), then the video itself
         * through the CLI. */
        json_object *frames = emo_test_json_get(emo_test_fixtures_json(), "video.frames");
        size_t smoothed = 0;
        for (size_t i = 0; i < json_object_array_length(frames); i++) {
                const char *name = json_object_get_string(json_object_array_get_idx(frames, i));
                _cleanup_free_ void *jpeg = emo_test_read_fixture(name, &len);
                emo_test_req_encoded(&t, jpeg, len);
                t.analyze.stream_id = "front-desk";
                t.analyze.sequence = i + 1;
                t.options.smooth_frames = 3;
                t.options.language = "en";
                smoothed += call(endpoint, &t, a);
        }
        cr_assert_gt(smoothed, 0, "no face of the stream was smoothed over frames");
        cr_assert_gt(watch_video(endpoint, a), 0, "no face of the watched video was smoothed over frames");
}

/* ---- what was written ------------------------------------------------------------------------ */

typedef struct written {
        char *path[256];
        uint8_t *data[256];
        size_t len[256];
        size_t n;
} written_t;

static written_t *collecting;

static int collect_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) ftw;
        if (type != FTW_F || !S_ISREG(st->st_mode))
                return 0;
        cr_assert_lt(collecting->n, ELEMENTSOF(collecting->path));
        size_t i = collecting->n++;
        collecting->path[i] = strdup(path);
        collecting->data[i] = emo_test_read_file(path, &collecting->len[i]);
        return 0;
}

static void collect(written_t *w, const char *dir) {
        collecting = w;
        cr_assert_eq(nftw(dir, collect_one, 16, FTW_PHYS), 0, "cannot walk %s: %s", dir, strerror(errno));
        collecting = NULL;
}

static bool is_word_char(int c) {
        return isalnum(c) || c == '_';
}

/* needle in haystack as a whole word (case-insensitive for letters): "sad" is not found in
 * "sadness" nor in a random "/tmp/xSADq1" folder name. */
static bool has_word(const uint8_t *hay, size_t len, const char *needle) {
        size_t n = strlen(needle);
        for (size_t i = 0; i + n <= len; i++)
                if (strncasecmp((const char *) hay + i, needle, n) == 0 && (i == 0 || !is_word_char(hay[i - 1])) &&
                    (i + n == len || !is_word_char(hay[i + n])))
                        return true;
        return false;
}

/* A number as printed, not part of a longer one: "0.731" is not found in "0.7312" or "10.731". */
static bool has_number(const uint8_t *hay, size_t len, const char *number) {
        size_t n = strlen(number);
        for (size_t i = 0; i + n <= len; i++)
                if (memcmp(hay + i, number, n) == 0 && (i == 0 || (!isdigit(hay[i - 1]) && hay[i - 1] != '.')) &&
                    (i + n == len || !isdigit(hay[i + n])))
                        return true;
        return false;
}

/* The four numbers of a box in order, separated by 1 to 4 non-digits, whatever the wording around
 * them: "120,80 64x64", "x=120 y=80 w=64 h=64", "[120, 80, 64, 64]". */
static bool has_box(const uint8_t *hay, size_t len, const emo_pb_box_t *b) {
        char pattern[256];
        snprintf(pattern, sizeof(pattern), "(^|[^0-9.])%d[^0-9]{1,4}%d[^0-9]{1,4}%d[^0-9]{1,4}%d([^0-9]|$)", b->x, b->y,
                 b->width, b->height);
        regex_t re;
        cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE), 0);
        _cleanup_free_ char *text = malloc(len + 1);
        cr_assert(text);
        /* regexec stops at a NUL: a binary file is searched with its NULs made newlines. */
        for (size_t i = 0; i < len; i++)
                text[i] = hay[i] ? (char) hay[i] : '\n';
        text[len] = '\0';
        bool found = regexec(&re, text, 0, NULL, 0) == 0;
        regfree(&re);
        return found;
}

/* Whether some WINDOW-byte piece of the image, taken every WINDOW bytes, is in hay as raw bytes or
 * as hex. Pieces of fewer than 4 distinct byte values (a flat grey area, runs of JPEG padding)
 * could match anything and are skipped. */
static bool has_image_piece(const uint8_t *hay, size_t len, const uint8_t *img, size_t img_len, size_t *ret_at) {
        for (size_t off = 0; off + WINDOW <= img_len; off += WINDOW) {
                const uint8_t *w = img + off;
                bool seen[256] = { false };
                int distinct = 0;
                for (size_t k = 0; k < WINDOW; k++)
                        if (!seen[w[k]]) {
                                seen[w[k]] = true;
                                distinct++;
                        }
                if (distinct < 4)
                        continue;
                char lower[2 * WINDOW + 1], upper[2 * WINDOW + 1];
                for (size_t k = 0; k < WINDOW; k++) {
                        snprintf(lower + 2 * k, 3, "%02x", w[k]);
                        snprintf(upper + 2 * k, 3, "%02X", w[k]);
                }
                if (memmem(hay, len, w, WINDOW) || memmem(hay, len, lower, 2 * WINDOW) ||
                    memmem(hay, len, upper, 2 * WINDOW)) {
                        *ret_at = off;
                        return true;
                }
        }
        return false;
}

/* ---- one session ----------------------------------------------------------------------------- */

/* The folders the daemon is given through its environment, as systemd and a user session give
 * them: it must write to none of them (its stderr log sits in the test daemon's own folder). */
static const char *const dir_vars[] = { "HOME", "XDG_RUNTIME_DIR", "RUNTIME_DIRECTORY", "STATE_DIRECTORY",
                                        "CACHE_DIRECTORY", "LOGS_DIRECTORY", "XDG_CACHE_HOME", "XDG_STATE_HOME",
                                        "TMPDIR" };

static char root[64];

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st;
        (void) type;
        (void) ftw;
        remove(path);
        return 0;
}

static void remove_root(void) {
        if (root[0])
                nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        root[0] = '\0';
}

TestSuite(privacy, .fini = remove_root, .timeout = 180);

/* Start the daemon with extra arguments and its folders in a fresh tree, send everything, stop it
 * and gather every file under its folders, its stderr included. */
static void session(const char *const *extra, written_t *w, sent_t *s, answered_t *a) {
        snprintf(root, sizeof(root), "/tmp/emotiond-privacy.XXXXXX");
        cr_assert(mkdtemp(root), "mkdtemp: %s", strerror(errno));
        for (size_t i = 0; i < ELEMENTSOF(dir_vars); i++) {
                _cleanup_free_ char *dir = emo_test_join(root, dir_vars[i]);
                cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s: %s", dir, strerror(errno));
                cr_assert_eq(setenv(dir_vars[i], dir, 1), 0);
        }
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, extra);
        send_everything(d.endpoint, s, a);
        /* Stopped before looking, so that whatever it writes at exit is looked at too. */
        emo_test_daemon_signal(&d, SIGTERM);
        int status = emo_test_daemon_wait(&d, 30000);
        collect(w, root);
        size_t ours = w->n;
        collect(w, d.dir);
        _cleanup_free_ char *log = emo_test_daemon_log(&d);
        emo_test_daemon_cleanup(&d);
        cr_assert_eq(status, 0, "emotiond exited with status %d; its stderr:\n%s", status, log);
        /* Nothing at all under the folders it was given: it makes no file. */
        for (size_t i = 0; i < ours; i++)
                cr_expect_fail("emotiond wrote %s (%zu bytes)", w->path[i], w->len[i]);
        cr_assert_eq(ours, 0);
        /* Its own folder (where its socket is, as /run/emotiond under systemd) holds the socket
         * and the stderr log the test made for it, nothing else. */
        bool has_log = false;
        for (size_t i = ours; i < w->n; i++) {
                bool is_log = strcmp(w->path[i], d.log) == 0;
                has_log |= is_log;
                cr_expect(is_log, "emotiond wrote %s (%zu bytes)", w->path[i], w->len[i]);
        }
        cr_assert(has_log, "the daemon's stderr (%s) was not collected", d.log);
        cr_assert_eq(w->n, ours + 1);
}

static void free_all(written_t *w, sent_t *s, answered_t *a) {
        for (size_t i = 0; i < w->n; i++) {
                free(w->path[i]);
                free(w->data[i]);
        }
        for (size_t i = 0; i < s->n; i++)
                free(s->data[i]);
        for (size_t i = 0; i < a->n_lines; i++)
                free(a->lines[i]);
}

/* No piece of any image in any file, with or without log_results. */
static void expect_no_pixels(const written_t *w, const sent_t *s) {
        for (size_t f = 0; f < w->n; f++)
                for (size_t i = 0; i < s->n; i++) {
                        size_t at;
                        cr_expect_not(has_image_piece(w->data[f], w->len[f], s->data[i], s->len[i], &at),
                                      "%s holds bytes %zu..%zu of image %zu", w->path[f], at, at + WINDOW, i);
                }
}

/* Every result: absent from every file (want_found false), or present in the files taken together
 * (want_found true). Dialogue lines say the emotion in words: never written, log_results or not.
 * Returns how many faces were looked for. */
static size_t check_results(const written_t *w, const answered_t *a, bool want_found) {
        for (size_t i = 0; i < a->n; i++) {
                const result_t *r = &a->faces[i];
                const emo_pb_box_t box = { .x = r->box[0], .y = r->box[1], .width = r->box[2], .height = r->box[3] };
                const char *what[2] = { r->emotion, r->smoothed };
                char confidence[32];
                snprintf(confidence, sizeof(confidence), "%.3f", r->confidence);
                /* Below 0.1 a confidence printed as 0.0xx could match too much to mean anything. */
                bool conf_known = r->confidence >= 0.1f;
                bool found_box = false, found_conf = false, found_name[2] = { false, false };
                for (size_t f = 0; f < w->n; f++) {
                        const uint8_t *data = w->data[f];
                        size_t len = w->len[f];
                        bool has[5] = { has_box(data, len, &box), conf_known && has_number(data, len, confidence),
                                        r->emoji[0] && memmem(data, len, r->emoji, strlen(r->emoji)),
                                        what[0] && has_word(data, len, what[0]), what[1] && has_word(data, len, what[1]) };
                        found_box |= has[0];
                        found_conf |= has[1];
                        found_name[0] |= has[3];
                        found_name[1] |= has[4];
                        if (want_found)
                                continue;
                        cr_expect_not(has[0], "%s holds the box %d,%d %dx%d of %s", w->path[f], box.x, box.y, box.width,
                                      box.height, r->from);
                        cr_expect_not(has[1], "%s holds the confidence %s of %s", w->path[f], confidence, r->from);
                        cr_expect_not(has[2], "%s holds the emoji of %s", w->path[f], r->from);
                        cr_expect_not(has[3], "%s holds the emotion '%s' of %s", w->path[f], what[0], r->from);
                        cr_expect_not(has[4], "%s holds the smoothed emotion '%s' of %s", w->path[f], what[1], r->from);
                }
                if (!want_found)
                        continue;
                cr_expect(found_box, "box %d,%d %dx%d of %s not logged", box.x, box.y, box.width, box.height, r->from);
                cr_expect(!conf_known || found_conf, "confidence %s of %s not logged", confidence, r->from);
                for (int k = 0; k < 2; k++)
                        cr_expect(!what[k] || found_name[k], "emotion '%s' of %s not logged", what[k], r->from);
        }
        for (size_t i = 0; i < a->n_lines; i++)
                for (size_t f = 0; f < w->n; f++)
                        cr_expect_null(memmem(w->data[f], w->len[f], a->lines[i], strlen(a->lines[i])),
                                       "%s holds the dialogue line '%s'", w->path[f], a->lines[i]);
        return a->n;
}

static void no_trace(const char *const *extra) {
        written_t w = { 0 };
        sent_t s = { 0 };
        answered_t a = { 0 };
        session(extra, &w, &s, &a);
        size_t faces = check_results(&w, &a, false);
        cr_assert_gt(faces, 30, "only %zu faces answered: the check would prove little", faces);
        expect_no_pixels(&w, &s);
        free_all(&w, &s, &a);
}

Test(privacy, no_trace_by_default) {
        no_trace(NULL);
}

Test(privacy, no_trace_when_verbose) {
        const char *const extra[] = { "--verbose", NULL };
        no_trace(extra);
}

/* The same search finds the results once the operator asks for them, which also proves that it
 * can find them; the log says at start that it will hold them. Pixels stay out. */
Test(privacy, results_logged_only_with_log_results) {
        const char *const extra[] = { "--verbose", "--log-results", NULL };
        written_t w = { 0 };
        sent_t s = { 0 };
        answered_t a = { 0 };
        session(extra, &w, &s, &a);
        size_t faces = check_results(&w, &a, true);
        cr_assert_gt(faces, 30);
        expect_no_pixels(&w, &s);
        bool warned = false;
        for (size_t f = 0; f < w.n; f++)
                warned |= memmem(w.data[f], w.len[f], "log_results is on", 17) != NULL;
        cr_expect(warned, "no warning at start that results will be logged");
        free_all(&w, &s, &a);
}
