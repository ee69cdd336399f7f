/* build/bin/emotion-gtk as a person sees it, under Xvfb (CTest runs this suite in xvfb-run) and
 * against the real daemon: the window opens a photo given on the command line, the daemon's
 * answer is drawn, the annotated PNG is saved; in live mode it plays the fixture video as a camera
 * and is checked through its --state JSON. Screenshots are kept in build/tests/gtk-screenshots/
 * for a person to look at. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/util.h"
#include "restart.h"
#include "results.h"

static emo_test_daemon_t daemon_;

static void clipboard_set(const char *type, const char *file);
static const char *text_of(json_object *o, const char *key);

static char config_home[64];

static void start(void) {
        cr_assert_not_null(getenv("DISPLAY"), "no X display: run this suite under xvfb-run (ctest does)");
        /* The preferences of whoever runs the tests stay out: each test has an empty config. */
        snprintf(config_home, sizeof(config_home), "/tmp/emo-gtk-config.XXXXXX");
        cr_assert_not_null(mkdtemp(config_home));
        setenv("XDG_CONFIG_HOME", config_home, 1);
        emo_test_daemon_start(&daemon_, NULL);
        mkdir(EMO_TEST_SCREENSHOTS, 0755);
}

static void stop(void) {
        emo_test_daemon_cleanup(&daemon_);
        char ini[128], dir[96];
        snprintf(dir, sizeof(dir), "%s/emotiond", config_home);
        snprintf(ini, sizeof(ini), "%s/gtk.ini", dir);
        unlink(ini);
        rmdir(dir);
        rmdir(config_home);
}

TestSuite(e2e, .init = start, .fini = stop, .timeout = 90);

typedef struct gui {
        pid_t pid;
        char log[256];
} gui_t;

static json_object *live_state(gui_t *g, const char *path);

/* Start emotion-gtk with args (NULL-terminated) in the background, stdout and stderr to a file. */
static void gui_start(gui_t *g, const char *tag, const char *const *args) {
        snprintf(g->log, sizeof(g->log), "%s/%s.log", EMO_TEST_SCREENSHOTS, tag);
        const char *argv[32] = { EMO_TEST_EMOTION_GTK };
        size_t n = 1;
        for (; *args; args++)
                argv[n++] = *args;
        argv[n] = NULL;
        g->pid = fork();
        cr_assert_geq(g->pid, 0);
        if (g->pid == 0) {
                int fd = open(g->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                dup2(fd, 1);
                dup2(fd, 2);
                /* The cairo renderer: the same pixels on any machine, no GL needed under Xvfb. */
                setenv("GSK_RENDERER", "cairo", 1);
                setenv("GTK_A11Y", "none", 1);
                setenv("LANG", "C.UTF-8", 1);
                unsetenv("EMOTIOND_ENDPOINT");
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
}

/* Wait at most timeout_ms for the program to exit; its exit code, -1 when still running. */
static int gui_wait(gui_t *g, int timeout_ms) {
        int64_t deadline = emo_now_us() + (int64_t) timeout_ms * 1000;
        for (;;) {
                int ws;
                pid_t r = waitpid(g->pid, &ws, WNOHANG);
                if (r == g->pid) {
                        g->pid = 0;
                        return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
                }
                if (emo_now_us() > deadline)
                        return -1;
                usleep(20000);
        }
}

static char *gui_log(gui_t *g) {
        return emo_test_read_file(g->log, NULL);
}

/* SIGTERM (the program quits as from its Quit action) and assert a clean exit. */
static void gui_stop(gui_t *g) {
        kill(g->pid, SIGTERM);
        int status = gui_wait(g, 10000);
        if (status < 0) {
                kill(g->pid, SIGKILL);
                waitpid(g->pid, NULL, 0);
        }
        _cleanup_free_ char *log = gui_log(g);
        cr_assert_eq(status, 0, "emotion-gtk exit status %d after SIGTERM; its output:\n%s", status, log);
}

static bool wait_for_file(const char *path, int timeout_ms) {
        int64_t deadline = emo_now_us() + (int64_t) timeout_ms * 1000;
        while (access(path, F_OK) != 0) {
                if (emo_now_us() > deadline)
                        return false;
                usleep(50000);
        }
        return true;
}

/* A screenshot of the whole X screen, as a person would see it. */
static void screenshot(const char *path) {
        emo_test_run_t r;
        emo_test_run((const char *const[]) { EMO_TEST_IMPORT, "-window", "root", path, NULL }, NULL, 20000, &r);
        cr_assert_eq(r.status, 0, "import failed: %s", r.err);
        emo_test_run_done(&r);
        cr_assert_eq(access(path, F_OK), 0);
}

/* Pixels of a colour emoji face: saturated yellow. The test photos are tinted grey faces, and the
 * boxes and labels are green, orange, blue and white, so these come from the emoji only (an emoji
 * drawn as an empty box or in black and white has none). */
static bool emoji_yellow(const guchar *p) {
        return p[0] > 200 && p[1] > 150 && p[2] < 110 && p[0] - p[2] > 120;
}

typedef struct pixel_stats {
        long yellow;
        long differ; /* pixels that differ from the other image by more than 40 in some channel */
} pixel_stats_t;

/* Over the rectangle x, y, w, h (clipped): emoji-yellow pixels of a, and pixels where a and b
 * (NULL: none) differ. */
static pixel_stats_t stats(GdkPixbuf *a, GdkPixbuf *b, int x, int y, int w, int h) {
        pixel_stats_t s = { 0 };
        int W = gdk_pixbuf_get_width(a), H = gdk_pixbuf_get_height(a);
        int na = gdk_pixbuf_get_n_channels(a), ra = gdk_pixbuf_get_rowstride(a);
        const guchar *pa = gdk_pixbuf_read_pixels(a);
        const guchar *pb = b ? gdk_pixbuf_read_pixels(b) : NULL;
        int nb = b ? gdk_pixbuf_get_n_channels(b) : 0, rb = b ? gdk_pixbuf_get_rowstride(b) : 0;
        for (int j = y < 0 ? 0 : y; j < y + h && j < H; j++)
                for (int i = x < 0 ? 0 : x; i < x + w && i < W; i++) {
                        const guchar *q = pa + (size_t) j * ra + (size_t) i * na;
                        if (emoji_yellow(q))
                                s.yellow++;
                        if (pb) {
                                const guchar *o = pb + (size_t) j * rb + (size_t) i * nb;
                                for (int c = 0; c < 3; c++)
                                        if (abs((int) q[c] - (int) o[c]) > 40) {
                                                s.differ++;
                                                break;
                                        }
                        }
                }
        return s;
}

static GdkPixbuf *load(const char *path) {
        GError *error = NULL;
        GdkPixbuf *p = gdk_pixbuf_new_from_file(path, &error);
        cr_assert_not_null(p, "cannot read %s: %s", path, error ? error->message : "?");
        return p;
}

/* The frame colour of a face with a negative emotion (overlay.c), as the screen shows it. */
static bool negative_frame(const guchar *p) {
        return abs(p[0] - 232) < 12 && abs(p[1] - 84) < 12 && abs(p[2] - 51) < 12;
}

/* Pixels of the negative colour in the whole image. */
static long negative_pixels(GdkPixbuf *p) {
        int W = gdk_pixbuf_get_width(p), H = gdk_pixbuf_get_height(p), n = gdk_pixbuf_get_n_channels(p);
        int rs = gdk_pixbuf_get_rowstride(p);
        const guchar *px = gdk_pixbuf_read_pixels(p);
        long count = 0;
        for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                        count += negative_frame(px + (size_t) y * rs + (size_t) x * n);
        return count;
}

/* Click the middle of the topmost negative face's frame found in the screenshot `before` (the
 * main face, happy, is selected at first), and check that the side panel (the right third of the
 * window) changed: the bars now show that face. The new screen goes to `after`. Only the rows from
 * the first one with the frame colour down to the first without it count: a second negative face
 * further down (a borderline face of four_faces.jpg is neutral or sad by a hair) would otherwise
 * put the click between the two. */
static bool click_negative_face(const char *before, const char *after) {
        if (access(EMO_TEST_XDOTOOL, X_OK) != 0) {
                cr_log_warn("xdotool not installed: the click on a face is not tested");
                return false;
        }
        GdkPixbuf *a = load(before);
        int W = gdk_pixbuf_get_width(a), H = gdk_pixbuf_get_height(a), n = gdk_pixbuf_get_n_channels(a);
        int rs = gdk_pixbuf_get_rowstride(a);
        const guchar *px = gdk_pixbuf_read_pixels(a);
        int x0 = W, y0 = H, x1 = -1, y1 = -1;
        for (int y = 0; y < H; y++) {
                bool row = false;
                for (int x = 0; x < W * 2 / 3; x++)
                        if (negative_frame(px + (size_t) y * rs + (size_t) x * n)) {
                                x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                                y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
                                row = true;
                        }
                if (!row && y1 >= 0)
                        break; /* below the first frame */
        }
        cr_assert(x1 - x0 > 50 && y1 - y0 > 50, "no frame of a negative face on the screen (%d,%d %d,%d)", x0, y0, x1,
                  y1);
        char cx[16], cy[16];
        snprintf(cx, sizeof(cx), "%d", (x0 + x1) / 2);
        snprintf(cy, sizeof(cy), "%d", (y0 + y1) / 2);
        emo_test_run_t r;
        emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "mousemove", cx, cy, "click", "1", NULL }, NULL, 10000,
                     &r);
        cr_assert_eq(r.status, 0, "xdotool: %s", r.err);
        emo_test_run_done(&r);
        usleep(700000);
        screenshot(after);
        GdkPixbuf *b = load(after);
        /* The side panel: right of the photo, from its heading to the last bar. */
        int px0 = x1 + (W - x1) / 3;
        pixel_stats_t side = stats(b, a, px0, y0, W - px0, 250);
        cr_assert_gt(side.differ, 300, "the side panel did not change after a click on the face at %s,%s", cx, cy);
        g_object_unref(a);
        g_object_unref(b);
        return true;
}

Test(e2e, photo_is_annotated_shown_and_saved) {
        _cleanup_free_ char *photo = emo_test_fixture("one_face.jpg");
        const char *out = EMO_TEST_SCREENSHOTS "/one_face-annotated.png";
        const char *shot = EMO_TEST_SCREENSHOTS "/one_face-window.png";
        unlink(out);
        unlink(shot);
        gui_t g;
        gui_start(&g, "one_face", (const char *const[]) { "--server", daemon_.endpoint, "--lang", "en",
                                                          "--save-annotated", out, photo, NULL });
        bool saved = wait_for_file(out, 30000);
        if (!saved) {
                kill(g.pid, SIGKILL);
                _cleanup_free_ char *log = gui_log(&g);
                cr_assert_fail("no annotated image after 30 s; emotion-gtk said:\n%s", log);
        }
        usleep(500000); /* the window has painted the result already; let the spinner stop too */
        screenshot(shot);
        gui_stop(&g);

        GdkPixbuf *in = load(photo), *ann = load(out), *scr = load(shot);
        cr_assert_eq(gdk_pixbuf_get_width(ann), gdk_pixbuf_get_width(in), "the annotated image keeps the photo's size");
        cr_assert_eq(gdk_pixbuf_get_height(ann), gdk_pixbuf_get_height(in));
        /* The face of one_face.jpg is at 210,110 220x220 (make_fixtures.py), a happy face. */
        pixel_stats_t face = stats(ann, in, 180, 80, 280, 280);
        pixel_stats_t far = stats(ann, in, 0, 420, 120, 60); /* bottom-left: no face, no label */
        pixel_stats_t in_face = stats(in, NULL, 0, 0, 640, 480);
        cr_assert_gt(face.differ, 2000, "the overlay changed only %ld pixels around the face", face.differ);
        cr_assert_lt(far.differ, 50, "%ld pixels changed far from the face", far.differ);
        cr_assert_eq(in_face.yellow, 0, "the photo itself has no emoji yellow");
        cr_assert_gt(face.yellow, 150, "no colour emoji over the face (%ld yellow pixels): is fonts-noto-color-emoji "
                                       "installed?", face.yellow);
        /* The window shows the same: a colour emoji somewhere on the screen. */
        pixel_stats_t screen = stats(scr, NULL, 0, 0, gdk_pixbuf_get_width(scr), gdk_pixbuf_get_height(scr));
        cr_assert_gt(screen.yellow, 150, "no colour emoji in the window (%ld yellow pixels)", screen.yellow);
        g_object_unref(in);
        g_object_unref(ann);
        g_object_unref(scr);
}

/* Four faces: each framed in the saved image; a click on a negative face shows its bars and the
 * conversation speaks to it, with the question for its emotion after the main face's line, and
 * the image saved then has the question's bubble. */
Test(e2e, four_faces_window) {
        _cleanup_free_ char *photo = emo_test_fixture("four_faces.jpg");
        const char *out = EMO_TEST_SCREENSHOTS "/four_faces-annotated.png";
        const char *shot = EMO_TEST_SCREENSHOTS "/four_faces-window.png";
        const char *path = EMO_TEST_SCREENSHOTS "/four_faces-state.json";
        unlink(out);
        unlink(path);
        gui_t g;
        gui_start(&g, "four_faces", (const char *const[]) { "--server", daemon_.endpoint, "--lang", "en",
                                                            "--save-annotated", out, "--state", path, photo, NULL });
        cr_assert(wait_for_file(out, 30000), "no annotated image after 30 s");
        usleep(500000);
        screenshot(shot);
        if (click_negative_face(shot, EMO_TEST_SCREENSHOTS "/four_faces-clicked.png")) {
                json_object *st = live_state(&g, path);
                /* "😠 Face 2 of 4: angry, 38 %": the face clicked and its emotion. */
                const char *bars = text_of(st, "bars");
                const char *colon = bars ? strstr(bars, ": ") : NULL, *comma = colon ? strchr(colon, ',') : NULL;
                cr_assert(colon && comma, "bars: %s", bars ? bars : "(none)");
                char picked[16];
                snprintf(picked, sizeof(picked), "%.*s", (int) (comma - colon - 2), colon + 2);
                cr_assert(strstr(bars, "Face 1 of") == NULL, "the main face is still shown: %s", bars);
                json_object *conv = emo_test_json_get(st, "conversation");
                size_t n = json_object_array_length(conv);
                cr_assert_eq(n, 2, "%zu lines, not the main face's and the picked face's: %s", n,
                             json_object_to_json_string(conv));
                json_object *last = json_object_array_get_idx(conv, 1);
                cr_assert_str_eq(text_of(last, "speaker"), "emotiond");
                cr_assert_str_eq(text_of(last, "emotion"), picked, "the line is not for the picked face: %s",
                                 json_object_to_json_string(conv));
                cr_assert(emo_test_dialogue_has_line("en", picked, text_of(last, "text")),
                          "'%s' is not an English line for %s", text_of(last, "text"), picked);
                cr_assert(json_object_get_boolean(emo_test_json_get(st, "awaiting_answer")),
                          "the question to the picked face waits for no answer");
                json_object_put(st);

                /* Saved now (Ctrl+S, a path typed in the chooser), the image is what the window
                 * shows: the question's bubble, drawn in the negative colour, instead of the main
                 * face's congratulation. */
                const char *picked_out = EMO_TEST_SCREENSHOTS "/four_faces-picked-annotated.png";
                unlink(picked_out);
                emo_test_run_t r;
                emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "mousemove", "300", "300", "key", "ctrl+s",
                                                     "sleep", "1.5", "key", "ctrl+a", "type", "--delay", "10",
                                                     picked_out, NULL },
                             NULL, 20000, &r);
                emo_test_run_done(&r);
                emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "key", "Return", NULL }, NULL, 10000, &r);
                emo_test_run_done(&r);
                cr_assert(wait_for_file(picked_out, 10000), "the annotated image was not saved to %s", picked_out);
                GdkPixbuf *first = load(out), *picked_img = load(picked_out);
                long before = negative_pixels(first), after = negative_pixels(picked_img);
                cr_assert_gt(after, before + 300,
                             "the saved image has %ld pixels of the negative colour, %ld before the click: no "
                             "question bubble",
                             after, before);
                g_object_unref(first);
                g_object_unref(picked_img);
        }
        gui_stop(&g);
        GdkPixbuf *in = load(photo), *ann = load(out);
        /* Every one of the four faces is framed (their places: make_fixtures.py FOUR_FACES). */
        static const int at[][3] = { { 40, 30, 200 }, { 390, 40, 180 }, { 60, 285, 165 }, { 410, 300, 150 } };
        for (size_t i = 0; i < 4; i++) {
                pixel_stats_t s = stats(ann, in, at[i][0], at[i][1], at[i][2], at[i][2]);
                cr_assert_gt(s.differ, 500, "face %zu is not annotated (%ld pixels changed)", i + 1, s.differ);
        }
        g_object_unref(in);
        g_object_unref(ann);
}

Test(e2e, absent_daemon_is_explained_and_fails_the_script) {
        _cleanup_free_ char *photo = emo_test_fixture("one_face.jpg");
        char dir[] = "/tmp/emo-gtk-e2e.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char ep[128], out[128];
        snprintf(ep, sizeof(ep), "ipc://%s/none.sock", dir);
        snprintf(out, sizeof(out), "%s/out.png", dir);
        /* Shown first, for the screenshot of the error banner. */
        gui_t g;
        char state[128];
        snprintf(state, sizeof(state), "%s/state.json", dir);
        gui_start(&g, "absent", (const char *const[]) { "--server", ep, "--lang", "en", "--timeout", "500", "--state",
                                                        state, photo, NULL });
        usleep(2500000);
        screenshot(EMO_TEST_SCREENSHOTS "/absent-daemon-window.png");
        /* The daemon's banner explains; the photo's own line says only that it was not sent. */
        json_object *s = live_state(&g, state);
        const char *banner = text_of(emo_test_json_get(s, "daemon"), "banner");
        const char *shown = text_of(s, "error_shown");
        cr_assert(banner && strstr(banner, "there is no socket file"), "%s", banner);
        cr_assert(shown && strcmp(shown, "one_face.jpg was not analysed: emotiond does not answer (see above).") == 0,
                  "%s", shown);
        json_object_put(s);
        gui_stop(&g);
        unlink(state);
        /* Scripted: exit status 1, the reason on stderr, no image. */
        gui_start(&g, "absent-scripted", (const char *const[]) { "--server", ep, "--lang", "en", "--timeout", "500",
                                                                 "--save-annotated", out, "--quit-after-result", photo,
                                                                 NULL });
        int status = gui_wait(&g, 20000);
        _cleanup_free_ char *log = gui_log(&g);
        if (status < 0)
                kill(g.pid, SIGKILL);
        cr_assert_eq(status, 1, "exit status %d; output:\n%s", status, log);
        cr_assert(strstr(log, "emotiond is not running at") && strstr(log, "there is no socket file"), "%s", log);
        cr_assert_neq(access(out, F_OK), 0, "an image was saved without an analysis");
        rmdir(dir);
}

Test(e2e, bad_options_are_usage_errors) {
        emo_test_run_t r;
        emo_test_run((const char *const[]) { EMO_TEST_EMOTION_GTK, "--server", "http://nowhere/", NULL }, NULL, 20000,
                     &r);
        cr_assert_eq(r.status, 2, "status %d: %s", r.status, r.err);
        cr_assert(strstr(r.err, "invalid endpoint"), "%s", r.err);
        emo_test_run_done(&r);
        emo_test_run((const char *const[]) { EMO_TEST_EMOTION_GTK, "--lang", "f r", NULL }, NULL, 20000, &r);
        cr_assert_eq(r.status, 2, "status %d: %s", r.status, r.err);
        cr_assert(strstr(r.err, "invalid language"), "%s", r.err);
        emo_test_run_done(&r);
}

/* known_4.jpg's main face is sad (tests/data/known_faces.csv): the conversation asks why and waits
 * for an answer, in the window (the screenshot shows the entry) and in the scripted report. */
Test(e2e, negative_face_gets_a_question) {
        _cleanup_free_ char *photo = emo_test_fixture("known_4.jpg");
        const char *out = EMO_TEST_SCREENSHOTS "/question-annotated.png";
        unlink(out);
        gui_t g;
        gui_start(&g, "question", (const char *const[]) { "--server", daemon_.endpoint, "--lang", "en",
                                                          "--save-annotated", out, photo, NULL });
        cr_assert(wait_for_file(out, 30000), "no annotated image after 30 s");
        usleep(500000);
        screenshot(EMO_TEST_SCREENSHOTS "/question-window.png");
        if (access(EMO_TEST_XDOTOOL, X_OK) == 0) {
                /* Answer: the entry has the keyboard focus once the question is asked; without a
                 * window manager the X focus follows the pointer, so the pointer goes over the
                 * window first. */
                emo_test_run_t r;
                bool paste = access(EMO_TEST_XCLIP, X_OK) == 0;
                emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "mousemove", "300", "300", "type", "--delay",
                                                     "30", paste ? "The " : "The rain.", NULL },
                             NULL, 20000, &r);
                cr_assert_eq(r.status, 0, "xdotool: %s", r.err);
                emo_test_run_done(&r);
                if (paste) {
                        /* Ctrl+V in the entry pastes text there: the window's own Ctrl+V (an
                         * image) does not take it away. */
                        const char *clip = EMO_TEST_SCREENSHOTS "/answer.txt";
                        FILE *f = fopen(clip, "w");
                        cr_assert_not_null(f);
                        fputs("rain.", f);
                        fclose(f);
                        clipboard_set("UTF8_STRING", clip);
                        emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "key", "ctrl+v", NULL }, NULL, 10000, &r);
                        emo_test_run_done(&r);
                        usleep(300000);
                }
                emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "key", "Return", NULL }, NULL, 10000, &r);
                emo_test_run_done(&r);
                usleep(700000);
                screenshot(EMO_TEST_SCREENSHOTS "/question-answered.png");
                GdkPixbuf *a = load(EMO_TEST_SCREENSHOTS "/question-window.png");
                GdkPixbuf *b = load(EMO_TEST_SCREENSHOTS "/question-answered.png");
                int w = gdk_pixbuf_get_width(a);
                /* The conversation: the right part of the window, below the bars. */
                pixel_stats_t conv = stats(b, a, w / 2 + 100, 330, w / 2 - 100, 330);
                cr_assert_gt(conv.differ, 200, "the conversation did not change after typing an answer");
                g_object_unref(a);
                g_object_unref(b);

                /* Save it (Shift+Ctrl+S, the file chooser, a path typed in its name field). */
                char saved[] = EMO_TEST_SCREENSHOTS "/conversation.txt";
                unlink(saved);
                emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "key", "ctrl+shift+s", "sleep", "1.5", "key",
                                                     "ctrl+a", "type", "--delay", "10", saved, NULL },
                             NULL, 20000, &r);
                emo_test_run_done(&r);
                emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "key", "Return", NULL }, NULL, 10000, &r);
                emo_test_run_done(&r);
                cr_assert(wait_for_file(saved, 5000), "the conversation was not saved to %s", saved);
                usleep(300000);
                _cleanup_free_ char *text = emo_test_read_file(saved, NULL);
                cr_assert(strstr(text, "# emotion-gtk conversation log\n"), "%s", text);
                cr_assert(strstr(text, "\temotiond\tsad\t"), "%s", text);
                cr_assert(strstr(text, "\tperson\tsad\tThe rain.\n"), "%s", text);
        }
        gui_stop(&g);
        _cleanup_free_ char *log = gui_log(&g);
        cr_assert(strstr(log, "main face 1: sad"), "%s", log);
        cr_assert(strstr(log, "dialogue (question): "), "%s", log);
        cr_assert(strstr(log, "; waiting for an answer"), "%s", log);
}

/* A JPEG whose EXIF orientation says "turn 90° clockwise" (as phones write them): the daemon
 * analyses it upright, so the window must show it upright too for the boxes to land on the face. */
Test(e2e, exif_orientation_is_honoured) {
        size_t len;
        uint8_t *jpeg = emo_test_read_fixture("one_face.jpg", &len);
        cr_assert(len > 2 && jpeg[0] == 0xff && jpeg[1] == 0xd8);
        static const uint8_t app1[] = {
                0xff, 0xe1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,              /* APP1, 34 bytes */
                'M', 'M', 0x00, 0x2a, 0x00, 0x00, 0x00, 0x08,                  /* TIFF, IFD at 8 */
                0x00, 0x01,                                                    /* one entry */
                0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00, /* Orientation 6 */
                0x00, 0x00, 0x00, 0x00,                                        /* no next IFD */
        };
        char dir[] = "/tmp/emo-gtk-exif.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char path[128];
        snprintf(path, sizeof(path), "%s/rotated.jpg", dir);
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f);
        fwrite(jpeg, 1, 2, f);
        fwrite(app1, 1, sizeof(app1), f);
        fwrite(jpeg + 2, 1, len - 2, f);
        cr_assert_eq(fclose(f), 0);
        free(jpeg);

        const char *out = EMO_TEST_SCREENSHOTS "/rotated-annotated.png";
        unlink(out);
        emo_test_run_t r;
        emo_test_run((const char *const[]) { EMO_TEST_EMOTION_GTK, "--server", daemon_.endpoint, "--save-annotated",
                                             out, "--quit-after-result", path, NULL },
                     (const char *const[]) { "GSK_RENDERER=cairo", "GTK_A11Y=none", NULL }, 30000, &r);
        cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
        cr_assert(strstr(r.out, ": 1 face;"), "%s", r.out);
        emo_test_run_done(&r);
        GdkPixbuf *ann = load(out);
        cr_assert_eq(gdk_pixbuf_get_width(ann), 480, "the annotated image is upright");
        cr_assert_eq(gdk_pixbuf_get_height(ann), 640);
        /* Upright, the face at 210,110 220x220 of the 640x480 file is at 150,210 220x220: the
         * emoji is there, and nothing is drawn where the face would be without turning. */
        pixel_stats_t face = stats(ann, NULL, 120, 140, 300, 320);
        cr_assert_gt(face.yellow, 150, "no emoji on the upright face (%ld yellow pixels)", face.yellow);
        g_object_unref(ann);
        unlink(path);
        rmdir(dir);
}

/* A file that is no image is refused in the window before anything is sent; an image the daemon
 * refuses (here: over a small max_pixels) shows the daemon's status and message. */
Test(e2e, refusals_are_explained) {
        _cleanup_free_ char *text = emo_test_fixture("text.txt");
        _cleanup_free_ char *photo = emo_test_fixture("one_face.jpg");
        emo_test_run_t r;
        const char *const env[] = { "GSK_RENDERER=cairo", "GTK_A11Y=none", NULL };
        emo_test_run((const char *const[]) { EMO_TEST_EMOTION_GTK, "--server", daemon_.endpoint, "--lang", "en",
                                             "--quit-after-result", text, NULL },
                     env, 30000, &r);
        cr_assert_eq(r.status, 1, "status %d: %s", r.status, r.err);
        cr_assert(strstr(r.err, "Cannot show text.txt"), "%s", r.err);
        emo_test_run_done(&r);

        emo_test_daemon_t small;
        emo_test_daemon_start(&small, (const char *const[]) { "--set", "max_pixels=10000", NULL });
        emo_test_run((const char *const[]) { EMO_TEST_EMOTION_GTK, "--server", small.endpoint, "--lang", "en",
                                             "--quit-after-result", photo, NULL },
                     env, 30000, &r);
        emo_test_daemon_cleanup(&small);
        cr_assert_eq(r.status, 1, "status %d: %s", r.status, r.err);
        cr_assert(strstr(r.err, "emotiond could not analyse one_face.jpg: image_too_large: "), "%s", r.err);
        emo_test_run_done(&r);
}

/* A file over 64 MiB is refused, not sent (a sparse file: no disk used). The window checks the
 * size before reading the file, which this test cannot tell apart from after. */
Test(e2e, huge_file_is_refused) {
        char dir[] = "/tmp/emo-gtk-huge.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char path[128];
        snprintf(path, sizeof(path), "%s/huge.jpg", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        cr_assert_geq(fd, 0);
        cr_assert_eq(ftruncate(fd, (off_t) 65 * 1024 * 1024), 0);
        close(fd);
        emo_test_run_t r;
        emo_test_run((const char *const[]) { EMO_TEST_EMOTION_GTK, "--server", daemon_.endpoint, "--lang", "en",
                                             "--quit-after-result", path, NULL },
                     (const char *const[]) { "GSK_RENDERER=cairo", "GTK_A11Y=none", NULL }, 30000, &r);
        unlink(path);
        rmdir(dir);
        cr_assert_eq(r.status, 1, "status %d: %s", r.status, r.err);
        cr_assert(strstr(r.err, "huge.jpg is over 64 MiB"), "%s", r.err);
        emo_test_run_done(&r);
}

/* Without --server the daemon is found as the CLI finds it: $EMOTIOND_ENDPOINT first. */
Test(e2e, endpoint_from_the_environment) {
        _cleanup_free_ char *photo = emo_test_fixture("one_face.jpg");
        char env_ep[160];
        snprintf(env_ep, sizeof(env_ep), "EMOTIOND_ENDPOINT=%s", daemon_.endpoint);
        emo_test_run_t r;
        emo_test_run((const char *const[]) { EMO_TEST_EMOTION_GTK, "--quit-after-result", photo, NULL },
                     (const char *const[]) { env_ep, "GSK_RENDERER=cairo", "GTK_A11Y=none", NULL }, 30000, &r);
        cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
        cr_assert(strstr(r.out, "one_face.jpg: 1 face; main face 1: happy"), "%s", r.out);
        emo_test_run_done(&r);
}

/* ---- live mode ---------------------------------------------------------------------------------- */

/* Ask the running program for its state (SIGUSR1 writes --state FILE anew and restarts the stall
 * measurement) and read it. */
static json_object *live_state(gui_t *g, const char *path) {
        struct stat before = { 0 };
        stat(path, &before);
        kill(g->pid, SIGUSR1);
        int64_t deadline = emo_now_us() + 10000000;
        for (;;) {
                struct stat now;
                if (stat(path, &now) == 0 && (now.st_mtim.tv_sec != before.st_mtim.tv_sec ||
                                              now.st_mtim.tv_nsec != before.st_mtim.tv_nsec || now.st_ino != before.st_ino))
                        break;
                cr_assert_lt(emo_now_us(), deadline, "no state written to %s after SIGUSR1", path);
                usleep(20000);
        }
        _cleanup_free_ char *text = emo_test_read_file(path, NULL);
        json_object *o = json_tokener_parse(text);
        cr_assert_not_null(o, "not JSON: %s", text);
        return o;
}

static json_object *tile0(json_object *state) {
        json_object *tiles = emo_test_json_get(state, "tiles");
        cr_assert_eq(json_object_array_length(tiles), 1);
        return json_object_array_get_idx(tiles, 0);
}

static json_object *tile_at(json_object *state, size_t i) {
        return json_object_array_get_idx(emo_test_json_get(state, "tiles"), i);
}

static int64_t num(json_object *o, const char *key) {
        return json_object_get_int64(emo_test_json_get(o, key));
}

static double dbl(json_object *o, const char *key) {
        return json_object_get_double(emo_test_json_get(o, key));
}

static const char *text_of(json_object *o, const char *key) {
        json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : NULL;
}

/* The UI never held itself up for 100 ms: neither the frame clock nor the main loop. The raw gaps
 * are logged; on a machine loaded by other work they include the time the program and the X
 * server (Xvfb, which it waits on to draw) spent waiting for a CPU, which the *_stall_ms figures
 * leave out. Other waits of a machine loaded more than twice over (the development machine,
 * shared, often is) still show: there the bound is 500 ms, which still catches any wait on the
 * stopped daemon (its requests time out after 1.5 s), and the test's log says that it did not
 * check 100 ms (as information: Criterion counts a warning as a failure). */
static void expect_no_stall(json_object *state, const char *phase) {
        double load = 0;
        FILE *f = fopen("/proc/loadavg", "r");
        if (f) {
                if (fscanf(f, "%lf", &load) != 1)
                        load = 0;
                fclose(f);
        }
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        double bound = load > 2.0 * (double) (cpus > 0 ? cpus : 1) ? 500 : 100;
        cr_log_info("%s: max gaps tick %.0f ms, loop %.0f ms; own stalls tick %.0f ms, loop %.0f ms; %lld ticks; "
                    "load %.1f on %ld CPUs; X server pid %lld",
                    phase, dbl(state, "max_tick_gap_ms"), dbl(state, "max_loop_gap_ms"), dbl(state, "max_tick_stall_ms"),
                    dbl(state, "max_loop_stall_ms"), (long long) num(state, "ticks"), load, cpus,
                    (long long) num(state, "display_server_pid"));
        cr_expect_gt(num(state, "display_server_pid"), 0, "%s: the X server's CPU wait was not accounted for", phase);
        if (bound > 100)
                cr_log_info("%s: load average %.1f on %ld CPUs: stalls checked against %.0f ms, not 100 ms", phase, load,
                            cpus, bound);
        cr_expect_gt(num(state, "ticks"), 10, "%s: the frame clock did not run", phase);
        cr_expect_lt(dbl(state, "max_tick_stall_ms"), bound, "%s: the frame clock stalled for %.0f ms", phase,
                     dbl(state, "max_tick_stall_ms"));
        cr_expect_lt(dbl(state, "max_loop_stall_ms"), bound, "%s: the main loop stalled for %.0f ms", phase,
                     dbl(state, "max_loop_stall_ms"));
}

/* The fixture video (10 frames/s, made from the test images at build time) played as a live
 * source: frames are shown at the video's rate and analysed, the overlay draws colour emoji, the
 * conversation reacts to the main face. Then the daemon stops answering (SIGSTOP) for 4 s: the
 * preview goes on, the tile says the daemon does not answer, the UI never stalls; and once the
 * daemon goes on (SIGCONT) the tile finds it again by itself. */
Test(e2e, live_video_is_analysed_and_survives_a_stalled_daemon, .timeout = 150) {
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        const char *path = EMO_TEST_SCREENSHOTS "/live-state.json";
        unlink(path);
        gui_t g;
        gui_start(&g, "live", (const char *const[]) { "--server", daemon_.endpoint, "--lang", "en", "--timeout", "1500",
                                                      "--live", "--loop", "--state", path, video, NULL });
        sleep(6);
        /* Screenshots first: import holds the X server while it reads the screen, which would
         * count as a stall of the next phase. */
        screenshot(EMO_TEST_SCREENSHOTS "/live-window.png");
        json_object *s1 = live_state(&g, path);
        json_object *t1 = tile0(s1);
        _cleanup_free_ char *log = gui_log(&g);
        cr_assert_str_eq(text_of(t1, "state"), "playing", "%s\n%s", json_object_to_json_string(s1), log);
        cr_assert_str_eq(text_of(t1, "kind"), "file");
        /* The health line is there while tiles keep the main loop busy (its probes must not wait
         * for an idle moment that never comes). */
        cr_assert_str_eq(text_of(emo_test_json_get(s1, "daemon"), "state"), "up", "%s", json_object_to_json_string(s1));
        cr_assert_null(text_of(t1, "message"), "%s", text_of(t1, "message"));
        cr_assert_geq(num(t1, "frames"), 25, "%s", json_object_to_json_string(t1));
        cr_assert_geq(num(t1, "replies"), 3, "%s", json_object_to_json_string(t1));
        cr_assert_geq(num(t1, "max_faces"), 4, "the video's frames with four faces: %s", json_object_to_json_string(t1));
        /* One request at a time: never more sent than answered plus the one in flight. */
        cr_assert_leq(num(t1, "sent"), num(t1, "replies") + num(t1, "refused") + num(t1, "errors") + 1);
        /* Newest frame wins: a frame that comes while a request is in flight replaces the one
         * waiting. When the daemon answers within the 100 ms between frames (tracking on smoothed
         * streams makes it that fast on an idle machine) every frame may be sent; when its round
         * trips are clearly longer, frames must have been left for newer ones. */
        cr_assert_leq(num(t1, "sent"), num(t1, "frames"));
        if (dbl(t1, "latency_ms") > 150)
                cr_assert_lt(num(t1, "sent"), num(t1, "frames"),
                             "round trips of %.0f ms, over the 100 ms between frames, yet every frame was sent",
                             dbl(t1, "latency_ms"));
        double fps = dbl(t1, "fps");
        cr_assert(fps > 6 && fps < 12, "%.1f frames per second shown of a 10 fps video", fps);
        cr_assert_gt(dbl(t1, "latency_ms"), 0);
        json_object *conv = emo_test_json_get(s1, "conversation");
        cr_assert_geq(json_object_array_length(conv), 1, "the conversation did not react: %s",
                      json_object_to_json_string(s1));
        cr_assert_str_eq(text_of(json_object_array_get_idx(conv, 0), "speaker"), "emotiond");
        GdkPixbuf *shot = load(EMO_TEST_SCREENSHOTS "/live-window.png");
        pixel_stats_t tile = stats(shot, NULL, 0, 0, gdk_pixbuf_get_width(shot) * 2 / 3, gdk_pixbuf_get_height(shot));
        cr_assert_gt(tile.yellow, 150, "no colour emoji in the live tile (%ld yellow pixels)", tile.yellow);
        g_object_unref(shot);

        /* The daemon stops answering. */
        kill(daemon_.pid, SIGSTOP);
        sleep(4);
        json_object *s2 = live_state(&g, path);
        screenshot(EMO_TEST_SCREENSHOTS "/live-daemon-stopped.png");
        kill(daemon_.pid, SIGCONT);
        json_object *t2 = tile0(s2);
        cr_assert_str_eq(text_of(t2, "state"), "playing");
        const char *m = text_of(t2, "message");
        cr_assert(m && strstr(m, "did not answer"), "the tile does not say the daemon is gone: %s", m);
        cr_assert_str_eq(text_of(emo_test_json_get(s2, "daemon"), "state"), "down",
                         "no banner for a daemon that stopped answering 4 s ago: %s", json_object_to_json_string(s2));
        cr_assert_geq(num(t2, "errors"), 1);
        cr_assert_geq(num(t2, "frames") - num(t1, "frames"), 20, "the preview did not go on: %lld then %lld frames",
                      (long long) num(t1, "frames"), (long long) num(t2, "frames"));
        expect_no_stall(s2, "daemon stopped");

        /* It goes on: within a few timeouts the tile analyses again. */
        json_object *s3 = NULL;
        for (int i = 0; i < 15; i++) {
                sleep(1);
                json_object_put(s3);
                s3 = live_state(&g, path);
                if (num(tile0(s3), "recoveries") >= 1)
                        break;
        }
        json_object *t3 = tile0(s3);
        cr_assert_geq(num(t3, "recoveries"), 1, "the tile did not find the daemon again: %s",
                      json_object_to_json_string(t3));
        cr_assert_gt(num(t3, "replies"), num(t2, "replies"));
        gui_stop(&g);
        json_object_put(s1);
        json_object_put(s2);
        json_object_put(s3);
}

/* Sources that cannot be read are a message in their tile, and the program goes on: the other
 * tile plays. The URL is a server that accepts the connection and never answers (a listening
 * socket nobody accepts from): the tile gives up after --timeout. */
Test(e2e, live_bad_sources_are_explained_in_their_tiles) {
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        const char *path = EMO_TEST_SCREENSHOTS "/live-bad-state.json";
        unlink(path);
        int silent = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t addr_len = sizeof(addr);
        cr_assert_eq(bind(silent, (struct sockaddr *) &addr, sizeof(addr)), 0);
        cr_assert_eq(listen(silent, 4), 0);
        cr_assert_eq(getsockname(silent, (struct sockaddr *) &addr, &addr_len), 0);
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/camera.mjpg", ntohs(addr.sin_port));
        gui_t g;
        gui_start(&g, "live-bad", (const char *const[]) { "--server", daemon_.endpoint, "--lang", "en", "--live",
                                                          "--timeout", "1500", "--quit-after", "8", "--state", path,
                                                          "/dev/video-none", video, url, NULL });
        int status = gui_wait(&g, 60000);
        close(silent);
        _cleanup_free_ char *log = gui_log(&g);
        cr_assert_eq(status, 0, "exit %d: %s", status, log);
        _cleanup_free_ char *text = emo_test_read_file(path, NULL);
        json_object *s = json_tokener_parse(text);
        json_object *tiles = emo_test_json_get(s, "tiles");
        cr_assert_eq(json_object_array_length(tiles), 3);
        json_object *stream = json_object_array_get_idx(tiles, 2);
        cr_assert_str_eq(text_of(stream, "kind"), "url");
        cr_assert_str_eq(text_of(stream, "state"), "failed", "%s", text);
        const char *sm = text_of(stream, "message");
        cr_assert(sm && strstr(sm, "/camera.mjpg: cannot open: "), "%s", sm);
        json_object *bad = json_object_array_get_idx(tiles, 0), *good = json_object_array_get_idx(tiles, 1);
        cr_assert_str_eq(text_of(bad, "state"), "failed");
        cr_assert_str_eq(text_of(bad, "kind"), "camera");
        const char *m = text_of(bad, "message");
        cr_assert(m && strstr(m, "/dev/video-none: cannot open: "), "%s", m);
        /* 12 frames at 10 fps: over by now, and said so. */
        cr_assert_str_eq(text_of(good, "state"), "ended", "%s", text);
        cr_assert_str_eq(text_of(good, "message"), "End of the video");
        cr_assert_geq(num(good, "replies"), 1);
        cr_assert_str_neq(text_of(good, "stream_id"), text_of(bad, "stream_id"));
        json_object_put(s);

        emo_test_run_t r;
        emo_test_run((const char *const[]) { EMO_TEST_EMOTION_GTK, "--live", "ftp://host/x.mp4", NULL }, NULL, 20000,
                     &r);
        cr_assert_eq(r.status, 2, "status %d: %s", r.status, r.err);
        cr_assert(strstr(r.err, "not a video source"), "%s", r.err);
        emo_test_run_done(&r);
}

/* Two tiles side by side; the first one's close button (its top right corner, where the
 * screenshots show it) closes it: the other goes on alone. */
Test(e2e, live_tile_is_closed_by_its_button) {
        if (access(EMO_TEST_XDOTOOL, X_OK) != 0) {
                cr_log_warn("xdotool not installed: closing a tile is not tested");
                return;
        }
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        const char *path = EMO_TEST_SCREENSHOTS "/live-close-state.json";
        unlink(path);
        gui_t g;
        gui_start(&g, "live-close", (const char *const[]) { "--server", daemon_.endpoint, "--lang", "en", "--live",
                                                            "--loop", "--state", path, video, video, NULL });
        sleep(5);
        json_object *before = live_state(&g, path);
        cr_assert_eq(json_object_array_length(emo_test_json_get(before, "tiles")), 2);
        screenshot(EMO_TEST_SCREENSHOTS "/live-two-tiles.png");
        /* The window is at 0,0 (no window manager); the first tile spans x 5..372 from y 51. */
        emo_test_run_t r;
        emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "mousemove", "352", "72", "click", "1", NULL }, NULL,
                     10000, &r);
        cr_assert_eq(r.status, 0, "xdotool: %s", r.err);
        emo_test_run_done(&r);
        usleep(800000);
        json_object *after = live_state(&g, path);
        json_object *tiles = emo_test_json_get(after, "tiles");
        cr_assert_eq(json_object_array_length(tiles), 1, "%s", json_object_to_json_string(after));
        cr_assert_str_eq(text_of(json_object_array_get_idx(tiles, 0), "stream_id"), text_of(tile_at(before, 1), "stream_id"),
                         "the second tile is the one left");
        gui_stop(&g);
        json_object_put(before);
        json_object_put(after);
}

/* Click the point of tile's image (ix, iy), through where --state says the tile and its image are
 * (the window's surface is at 0,0 on the screen: no window manager). */
static void click_in_tile(json_object *tile, double ix, double iy) {
        json_object *area = emo_test_json_get(tile, "area"), *image = emo_test_json_get(tile, "image");
        double ax = json_object_get_double(json_object_array_get_idx(area, 0));
        double ay = json_object_get_double(json_object_array_get_idx(area, 1));
        emo_gtk_fit_t fit = emo_gtk_fit((double) json_object_get_int64(json_object_array_get_idx(image, 0)),
                                        (double) json_object_get_int64(json_object_array_get_idx(image, 1)),
                                        json_object_get_double(json_object_array_get_idx(area, 2)),
                                        json_object_get_double(json_object_array_get_idx(area, 3)));
        char cx[16], cy[16];
        snprintf(cx, sizeof(cx), "%.0f", ax + fit.offset_x + ix * fit.scale);
        snprintf(cy, sizeof(cy), "%.0f", ay + fit.offset_y + iy * fit.scale);
        emo_test_run_t r;
        emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "mousemove", cx, cy, "click", "1", NULL }, NULL, 10000,
                     &r);
        cr_assert_eq(r.status, 0, "xdotool: %s", r.err);
        emo_test_run_done(&r);
}

/* The state once tile i shows an analysis with n faces; fails after 20 s. */
static json_object *tile_faces_until(gui_t *g, const char *path, size_t i, int64_t n) {
        int64_t deadline = emo_now_us() + 20000000;
        for (;;) {
                json_object *s = live_state(g, path);
                json_object *tiles = emo_test_json_get(s, "tiles");
                if (json_object_array_length(tiles) > i && num(tile_at(s, i), "faces") == n)
                        return s;
                cr_assert_lt(emo_now_us(), deadline, "tile %zu never showed %lld faces: %s", i, (long long) n,
                             json_object_to_json_string(s));
                json_object_put(s);
                usleep(200000);
        }
}

/* A still scene of four faces as the second tile (a video, looped, so analysed again and again): a click
 * on a face that is not its main one makes the window follow that tile, the bars and the
 * conversation show that face and keep to it over the next analyses; a click beside every face
 * goes back to the main face. */
Test(e2e, live_face_clicked_in_a_tile_is_followed, .timeout = 90) {
        if (access(EMO_TEST_XDOTOOL, X_OK) != 0) {
                cr_log_warn("xdotool not installed: clicking a face in a live tile is not tested");
                return;
        }
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        _cleanup_free_ char *still = emo_test_fixture("still.avi");
        const char *path = EMO_TEST_SCREENSHOTS "/live-click-state.json";
        unlink(path);
        gui_t g;
        gui_start(&g, "live-click", (const char *const[]) { "--server", daemon_.endpoint, "--lang", "en", "--live",
                                                            "--loop", "--state", path, video, still, NULL });
        sleep(2); /* SIGUSR1 before the program handles it would end it */
        json_object *before = tile_faces_until(&g, path, 1, 4);
        cr_assert(json_object_get_boolean(emo_test_json_get(tile_at(before, 0), "followed")), "the first tile is followed");
        cr_assert_not(json_object_get_boolean(emo_test_json_get(tile_at(before, 1), "followed")));
        /* The smallest face that is not the tile's main one (the daemon's dialogue face). */
        json_object *tile = tile_at(before, 1), *boxes = emo_test_json_get(tile, "boxes");
        int64_t main_face = num(tile, "main");
        cr_assert_geq(main_face, 0);
        int pick = -1;
        int64_t pick_area = 0;
        for (size_t k = 0; k < json_object_array_length(boxes); k++) {
                if ((int64_t) k == main_face)
                        continue;
                json_object *box = emo_test_json_get(json_object_array_get_idx(boxes, k), "box");
                int64_t area = json_object_get_int64(json_object_array_get_idx(box, 2)) *
                               json_object_get_int64(json_object_array_get_idx(box, 3));
                if (pick < 0 || area < pick_area) {
                        pick = (int) k;
                        pick_area = area;
                }
        }
        json_object *box = emo_test_json_get(json_object_array_get_idx(boxes, (size_t) pick), "box");
        double bx = (double) json_object_get_int64(json_object_array_get_idx(box, 0)),
               by = (double) json_object_get_int64(json_object_array_get_idx(box, 1)),
               bw = (double) json_object_get_int64(json_object_array_get_idx(box, 2)),
               bh = (double) json_object_get_int64(json_object_array_get_idx(box, 3));
        click_in_tile(tile, bx + bw / 2, by + bh / 2);
        usleep(800000);
        screenshot(EMO_TEST_SCREENSHOTS "/live-face-clicked.png");
        /* Two analyses later the face is still the one picked. */
        usleep(1000000);
        json_object *after = live_state(&g, path);
        cr_assert(json_object_get_boolean(emo_test_json_get(tile_at(after, 1), "followed")),
                  "the clicked tile is not followed: %s", json_object_to_json_string(after));
        cr_assert_not(json_object_get_boolean(emo_test_json_get(tile_at(after, 0), "followed")));
        cr_assert_eq(num(tile_at(after, 1), "selected"), pick, "%s", json_object_to_json_string(after));
        cr_assert_gt(num(tile_at(after, 1), "replies"), num(tile_at(before, 1), "replies") + 1, "no new analysis");
        char want[32];
        snprintf(want, sizeof(want), "Face %d of 4", pick + 1);
        cr_assert(strstr(text_of(after, "bars"), want), "bars: %s, not %s", text_of(after, "bars"), want);
        /* The conversation speaks to the face picked: its last line is for that face's emotion as
         * this analysis has it (the line of the last change), unless the face is neutral. */
        const char *picked = text_of(
                json_object_array_get_idx(emo_test_json_get(tile_at(after, 1), "boxes"), (size_t) pick), "emotion");
        json_object *conv = emo_test_json_get(after, "conversation");
        size_t lines = json_object_array_length(conv);
        if (strcmp(picked, "neutral") != 0) {
                cr_assert_geq(lines, 1, "nothing said to the picked %s face", picked);
                json_object *last = json_object_array_get_idx(conv, lines - 1);
                cr_assert_str_eq(text_of(last, "emotion"), picked, "the last line is not for the picked face: %s",
                                 json_object_to_json_string(conv));
                cr_assert(emo_test_dialogue_has_line("en", picked, text_of(last, "text")),
                          "'%s' is not an English line for %s", text_of(last, "text"), picked);
        }
        /* Beside every face (the middle of the photo, between its four): the main face again, the
         * tile still followed. */
        click_in_tile(tile_at(after, 1), 320, 260);
        usleep(800000);
        json_object *beside = live_state(&g, path);
        cr_assert(json_object_get_boolean(emo_test_json_get(tile_at(beside, 1), "followed")));
        cr_assert_eq(num(tile_at(beside, 1), "selected"), -1, "%s", json_object_to_json_string(beside));
        snprintf(want, sizeof(want), "Face %lld of 4", (long long) num(tile_at(beside, 1), "main") + 1);
        cr_assert(strstr(text_of(beside, "bars"), want), "bars: %s, not %s", text_of(beside, "bars"), want);
        /* The face picked again, then a click in the first tile: that tile followed, and the face
         * picked in the second one dropped (one face picked in the window). */
        click_in_tile(tile_at(beside, 1), bx + bw / 2, by + bh / 2);
        usleep(800000);
        json_object *again = live_state(&g, path);
        cr_assert_eq(num(tile_at(again, 1), "selected"), pick, "%s", json_object_to_json_string(again));
        click_in_tile(tile_at(again, 0), 320, 240);
        usleep(800000);
        json_object *first = live_state(&g, path);
        cr_assert(json_object_get_boolean(emo_test_json_get(tile_at(first, 0), "followed")), "%s",
                  json_object_to_json_string(first));
        cr_assert_not(json_object_get_boolean(emo_test_json_get(tile_at(first, 1), "followed")));
        cr_assert_eq(num(tile_at(first, 1), "selected"), -1, "%s", json_object_to_json_string(first));
        gui_stop(&g);
        json_object_put(before);
        json_object_put(after);
        json_object_put(beside);
        json_object_put(again);
        json_object_put(first);
}

/* ---- the daemon's health ------------------------------------------------------------------------- */

/* The state (SIGUSR1) until its daemon.state is want; NULL after timeout_ms. */
static json_object *state_until(gui_t *g, const char *path, const char *want, int timeout_ms) {
        int64_t deadline = emo_now_us() + (int64_t) timeout_ms * 1000;
        for (;;) {
                json_object *s = live_state(g, path);
                const char *state = text_of(emo_test_json_get(s, "daemon"), "state");
                if (state && strcmp(state, want) == 0)
                        return s;
                json_object_put(s);
                if (emo_now_us() > deadline)
                        return NULL;
                usleep(50000);
        }
}

/* Pixels of the banner that says the daemon is absent (style.css .daemon-banner), in the top
 * 150 rows of the screen. */
static long banner_pixels(const char *shot) {
        GdkPixbuf *p = load(shot);
        int W = gdk_pixbuf_get_width(p), n = gdk_pixbuf_get_n_channels(p), rs = gdk_pixbuf_get_rowstride(p);
        const guchar *px = gdk_pixbuf_read_pixels(p);
        long count = 0;
        for (int y = 0; y < 150; y++)
                for (int x = 0; x < W; x++) {
                        const guchar *q = px + (size_t) y * rs + (size_t) x * n;
                        if (abs(q[0] - 0xe5) < 10 && abs(q[1] - 0xa5) < 10 && abs(q[2] - 0x0a) < 10)
                                count++;
                }
        g_object_unref(p);
        return count;
}

/* The status line names the daemon's version and model as its health request reports them; the
 * daemon is killed: the banner says so within about a second (one health probe), naming the
 * endpoint and how to start it; the daemon is started again on the same endpoint: the banner goes
 * by itself and the status line is back. The UI never stalls meanwhile. */
Test(e2e, daemon_health_status_line_and_banner, .timeout = 150) {
        const char *path = EMO_TEST_SCREENSHOTS "/health-state.json";
        unlink(path);
        gui_t g;
        gui_start(&g, "health", (const char *const[]) { "--server", daemon_.endpoint, "--lang", "en", "--state", path,
                                                        NULL });
        sleep(2); /* SIGUSR1 before the program handles it would end it */
        json_object *up = state_until(&g, path, "up", 15000);
        _cleanup_free_ char *log = gui_log(&g);
        cr_assert_not_null(up, "the window never saw the daemon up; its output:\n%s", log);
        json_object *d = emo_test_json_get(up, "daemon");
        emo_reply_t *real = emo_test_health(daemon_.endpoint);
        const char *line = text_of(d, "status_line");
        cr_assert(line && strstr(line, real->health->version) && strstr(line, emo_test_model_name()) &&
                          strstr(line, "yunet") && strstr(line, "cpu") && strstr(line, "2 workers"),
                  "status line: %s (the daemon says version %s)", line, real->health->version);
        emo_reply_free(real);
        cr_assert_null(text_of(d, "banner"));
        usleep(300000);
        screenshot(EMO_TEST_SCREENSHOTS "/health-up.png");
        cr_assert_lt(banner_pixels(EMO_TEST_SCREENSHOTS "/health-up.png"), 100, "a banner while the daemon answers");

        /* Killed: its socket file stays behind, nobody listens. */
        int64_t t0 = emo_now_us();
        emo_test_daemon_signal(&daemon_, SIGKILL);
        emo_test_daemon_wait(&daemon_, 10000);
        json_object *down = state_until(&g, path, "down", 10000);
        cr_assert_not_null(down, "no banner 10 s after the daemon was killed");
        /* When the window showed it (its own monotonic clock, the same as ours), not when the state
         * file said so: the file's round trip through a signal is the test's, and took most of a
         * second when other tests loaded the machine. One probe interval (EMO_GTK_HEALTH_UP_MS,
         * 500 ms) and the probe: within a second. */
        double ms = (json_object_get_int64(emo_test_json_get(emo_test_json_get(down, "daemon"), "banner_changed_us")) -
                     t0) /
                    1000.0;
        cr_log_info("banner %.0f ms after the kill (the state file said so %.0f ms after it)", ms,
                    (emo_now_us() - t0) / 1000.0);
        cr_assert(ms > 0 && ms < 1000, "the banner came %.0f ms after the daemon was killed", ms);
        const char *banner = text_of(emo_test_json_get(down, "daemon"), "banner");
        cr_assert(banner && strstr(banner, daemon_.endpoint) && strstr(banner, "systemctl start emotiond"), "%s",
                  banner);
        usleep(300000);
        screenshot(EMO_TEST_SCREENSHOTS "/health-down.png");
        cr_assert_gt(banner_pixels(EMO_TEST_SCREENSHOTS "/health-down.png"), 5000, "no banner on the screen");

        /* Back where it was: the banner goes by itself. */
        char dlog[160];
        snprintf(dlog, sizeof(dlog), "%s/restarted.log", EMO_TEST_SCREENSHOTS);
        pid_t pid = emo_gtk_test_start_at(daemon_.endpoint, dlog);
        t0 = emo_now_us();
        json_object *back = state_until(&g, path, "up", 10000);
        ms = (emo_now_us() - t0) / 1000.0;
        cr_assert_not_null(back, "the banner stayed 10 s after the daemon came back");
        cr_log_info("banner gone %.0f ms after the daemon answered again", ms);
        cr_assert_lt(ms, 2000);
        json_object *db = emo_test_json_get(back, "daemon");
        cr_assert_null(text_of(db, "banner"));
        cr_assert_geq(json_object_get_int64(emo_test_json_get(db, "recoveries")), 1);
        cr_assert(strstr(text_of(db, "status_line"), "1 worker"), "%s", text_of(db, "status_line"));
        expect_no_stall(back, "daemon killed and restarted");
        usleep(300000);
        screenshot(EMO_TEST_SCREENSHOTS "/health-back.png");
        cr_assert_lt(banner_pixels(EMO_TEST_SCREENSHOTS "/health-back.png"), 100, "the banner stayed on the screen");
        gui_stop(&g);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        json_object_put(up);
        json_object_put(down);
        json_object_put(back);
}

/* The preferences (gtk.ini under $XDG_CONFIG_HOME) name the daemon when --server does not; the
 * dialog (Ctrl+,) shows them. */
Test(e2e, preferences_name_the_daemon, .timeout = 120) {
        char dir[96], ini[128];
        snprintf(dir, sizeof(dir), "%s/emotiond", config_home);
        snprintf(ini, sizeof(ini), "%s/gtk.ini", dir);
        mkdir(dir, 0700);
        FILE *f = fopen(ini, "w");
        cr_assert_not_null(f);
        fprintf(f, "[emotion-gtk]\nendpoint=%s\nlanguage=en\n", daemon_.endpoint);
        cr_assert_eq(fclose(f), 0);
        const char *path = EMO_TEST_SCREENSHOTS "/prefs-state.json";
        unlink(path);
        gui_t g;
        gui_start(&g, "prefs", (const char *const[]) { "--state", path, NULL });
        sleep(2);
        json_object *up = state_until(&g, path, "up", 15000);
        _cleanup_free_ char *log = gui_log(&g);
        cr_assert_not_null(up, "the daemon of the preferences was not found; output:\n%s", log);
        const char *line = text_of(emo_test_json_get(up, "daemon"), "status_line");
        cr_assert(strstr(line, daemon_.endpoint), "%s", line);
        json_object_put(up);
        if (access(EMO_TEST_XDOTOOL, X_OK) == 0) {
                emo_test_run_t r;
                emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "mousemove", "300", "300", "key", "ctrl+comma",
                                                     NULL },
                             NULL, 10000, &r);
                emo_test_run_done(&r);
                usleep(800000);
                screenshot(EMO_TEST_SCREENSHOTS "/preferences.png");
                /* Another endpoint, typed into the focused entry and saved with Return: written to
                 * the file, and applied at once: nobody listens there, the banner says so. */
                const char *other = "ipc:///tmp/emo-gtk-e2e-nobody/emotiond.sock";
                emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "key", "ctrl+a", "type", "--delay", "10", other,
                                                     NULL },
                             NULL, 20000, &r);
                emo_test_run_done(&r);
                emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "key", "Return", NULL }, NULL, 10000, &r);
                emo_test_run_done(&r);
                json_object *down = state_until(&g, path, "down", 10000);
                cr_assert_not_null(down, "the new endpoint was not applied");
                const char *banner = text_of(emo_test_json_get(down, "daemon"), "banner");
                cr_assert(banner && strstr(banner, other), "%s", banner);
                json_object_put(down);
                gui_stop(&g);
                _cleanup_free_ char *text = emo_test_read_file(ini, NULL);
                cr_assert(strstr(text, "endpoint=ipc:///tmp/emo-gtk-e2e-nobody/emotiond.sock\n") &&
                                  strstr(text, "language=en\n"),
                          "%s", text);
                return;
        }
        gui_stop(&g);
}

/* ---- language ----------------------------------------------------------------------------------- */

/* Without --lang and without preferences the window speaks French (its gettext catalogue, built
 * into share/locale of the build tree) and so does the dialogue the daemon sends. */
Test(e2e, french_by_default, .timeout = 120) {
        _cleanup_free_ char *photo = emo_test_fixture("one_face.jpg");
        const char *out = EMO_TEST_SCREENSHOTS "/french-annotated.png";
        const char *path = EMO_TEST_SCREENSHOTS "/french-state.json";
        unlink(out);
        unlink(path);
        gui_t g;
        gui_start(&g, "french", (const char *const[]) { "--server", daemon_.endpoint, "--save-annotated", out, "--state",
                                                        path, photo, NULL });
        cr_assert(wait_for_file(out, 30000), "no annotated image after 30 s");
        json_object *s = state_until(&g, path, "up", 10000);
        cr_assert_not_null(s);
        usleep(300000);
        screenshot(EMO_TEST_SCREENSHOTS "/french-window.png");
        gui_stop(&g);
        cr_assert_str_eq(text_of(s, "title"), "one_face.jpg — Émotions");
        const char *line = text_of(emo_test_json_get(s, "daemon"), "status_line");
        cr_assert(strstr(line, "· modèle ") && strstr(line, "· détecteur yunet"), "%s", line);
        json_object *conv = emo_test_json_get(s, "conversation");
        cr_assert_geq(json_object_array_length(conv), 1);
        const char *said = text_of(json_object_array_get_idx(conv, 0), "text");
        cr_assert(emo_test_dialogue_has_line("fr", "happy", said), "not a French line for a happy face: %s", said);
        json_object_put(s);

        /* --lang en: English, window and dialogue. */
        unlink(out);
        unlink(path);
        gui_start(&g, "english", (const char *const[]) { "--server", daemon_.endpoint, "--lang", "en", "--save-annotated",
                                                         out, "--state", path, photo, NULL });
        cr_assert(wait_for_file(out, 30000), "no annotated image after 30 s");
        s = state_until(&g, path, "up", 10000);
        cr_assert_not_null(s);
        gui_stop(&g);
        cr_assert_str_eq(text_of(s, "title"), "one_face.jpg — Emotions");
        said = text_of(json_object_array_get_idx(emo_test_json_get(s, "conversation"), 0), "text");
        cr_assert(emo_test_dialogue_has_line("en", "happy", said), "not an English line for a happy face: %s", said);
        json_object_put(s);
}

/* ---- paste ------------------------------------------------------------------------------------- */

/* Put file on the X clipboard as type (xclip serves it from the background until another owner
 * takes the clipboard). */
static void clipboard_set(const char *type, const char *file) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "'%s' -selection clipboard -t '%s' -i '%s' </dev/null >/dev/null 2>&1", EMO_TEST_XCLIP,
                 type, file);
        cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* Ctrl+V with a PNG on the clipboard (as a browser or a screenshot tool puts one there): the image
 * is shown and analysed like an opened photo, and its annotation saved; text on the clipboard is
 * no image, said in the window. */
Test(e2e, image_pasted_from_the_clipboard_is_analysed, .timeout = 120) {
        if (access(EMO_TEST_XDOTOOL, X_OK) != 0 || access(EMO_TEST_XCLIP, X_OK) != 0) {
                cr_log_warn("xdotool or xclip not installed: pasting is not tested");
                return;
        }
        _cleanup_free_ char *photo = emo_test_fixture("one_face.jpg");
        const char *png = EMO_TEST_SCREENSHOTS "/to-paste.png";
        GdkPixbuf *in = load(photo);
        cr_assert(gdk_pixbuf_save(in, png, "png", NULL, NULL));
        const char *out = EMO_TEST_SCREENSHOTS "/pasted-annotated.png";
        const char *path = EMO_TEST_SCREENSHOTS "/paste-state.json";
        unlink(out);
        unlink(path);
        gui_t g;
        gui_start(&g, "paste", (const char *const[]) { "--server", daemon_.endpoint, "--lang", "en", "--save-annotated",
                                                       out, "--state", path, NULL });
        sleep(2);
        clipboard_set("image/png", png);
        emo_test_run_t r;
        emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "mousemove", "300", "300", "key", "ctrl+v", NULL }, NULL,
                     10000, &r);
        cr_assert_eq(r.status, 0, "xdotool: %s", r.err);
        emo_test_run_done(&r);
        if (!wait_for_file(out, 20000)) {
                kill(g.pid, SIGKILL);
                _cleanup_free_ char *log = gui_log(&g);
                cr_assert_fail("nothing analysed 20 s after Ctrl+V; emotion-gtk said:\n%s", log);
        }
        usleep(300000);
        screenshot(EMO_TEST_SCREENSHOTS "/pasted-window.png");
        json_object *s = live_state(&g, path);
        cr_assert_str_eq(text_of(s, "title"), "pasted image — Emotions");
        json_object *conv = emo_test_json_get(s, "conversation");
        cr_assert_geq(json_object_array_length(conv), 1, "%s", json_object_to_json_string(s));
        cr_assert_str_eq(text_of(json_object_array_get_idx(conv, 0), "emotion"), "happy");
        json_object_put(s);
        GdkPixbuf *ann = load(out);
        cr_assert_eq(gdk_pixbuf_get_width(ann), gdk_pixbuf_get_width(in));
        pixel_stats_t face = stats(ann, in, 180, 80, 280, 280);
        cr_assert_gt(face.yellow, 150, "no emoji over the pasted face (%ld yellow pixels)", face.yellow);
        g_object_unref(ann);
        g_object_unref(in);

        /* Text is no image. */
        _cleanup_free_ char *text = emo_test_fixture("text.txt");
        clipboard_set("text/plain", text);
        emo_test_run((const char *const[]) { EMO_TEST_XDOTOOL, "key", "ctrl+v", NULL }, NULL, 10000, &r);
        emo_test_run_done(&r);
        usleep(1000000);
        s = live_state(&g, path);
        const char *error = text_of(s, "error");
        cr_assert(error && strstr(error, "The clipboard holds no image"), "%s", error ? error : "(no error shown)");
        json_object_put(s);
        gui_stop(&g);
}
