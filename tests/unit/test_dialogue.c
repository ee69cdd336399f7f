/* Dialogue lines: what the system says to the most prominent face, from deploy/dialogue, and the
 * errors an administrator gets for a broken dialogue file. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dialogue.h"
#include "emo/labels.h"
#include "fixtures.h"

static emo_dialogue_t *load_shipped(void) {
        char *dir = emo_test_join(emo_test_source_dir(), "deploy/dialogue");
        emo_dialogue_t *d = NULL;
        emo_error_t err = { "" };
        cr_assert_eq(emo_dialogue_load(dir, &d, &err), 0, "%s", err.message);
        free(dir);
        return d;
}

Test(dialogue, shipped_languages) {
        emo_dialogue_t *d = load_shipped();
        cr_assert_str_eq(emo_dialogue_languages(d), "en,fr");
        cr_assert_eq(emo_dialogue_n_languages(d), 2);
        cr_assert_str_eq(emo_dialogue_language(d, 0), "en");
        cr_assert_str_eq(emo_dialogue_language(d, 1), "fr");
        cr_assert_null(emo_dialogue_language(d, 2));
        emo_dialogue_free(d);
}

/* Negative emotions ask, positive ones congratulate, neutral says nothing; the line comes from the
 * right language file and the right section. */
Test(dialogue, kind_follows_valence) {
        emo_dialogue_t *d = load_shipped();
        static const char *const langs[] = { "en", "fr" };
        for (size_t l = 0; l < 2; l++)
                for (int e = 0; e < EMO_EMOTION_COUNT; e++) {
                        emo_dialogue_kind_t kind = 99;
                        const char *text = (const char *) 0x1;
                        cr_assert_eq(emo_dialogue_pick(d, langs[l], "s", e, &kind, &text), 0);
                        emo_valence_t v = emo_emotion_valence(e);
                        if (v == EMO_VALENCE_NEGATIVE)
                                cr_assert_eq(kind, EMO_DIALOGUE_QUESTION, "%s %s", langs[l], emo_emotion_name(e));
                        else if (v == EMO_VALENCE_POSITIVE)
                                cr_assert_eq(kind, EMO_DIALOGUE_CONGRATULATION, "%s %s", langs[l], emo_emotion_name(e));
                        else {
                                cr_assert_eq(kind, EMO_DIALOGUE_NONE, "%s %s", langs[l], emo_emotion_name(e));
                                cr_assert_null(text);
                                continue;
                        }
                        cr_assert_not_null(text);
                        cr_assert(emo_test_dialogue_has_line(langs[l], emo_emotion_name(e), text),
                                  "'%s' is not a [%s] line of %s.ini", text, emo_emotion_name(e), langs[l]);
                }
        emo_dialogue_free(d);
}

Test(dialogue, happy_and_surprise_congratulate_sad_asks) {
        emo_dialogue_t *d = load_shipped();
        emo_dialogue_kind_t kind;
        const char *text;
        cr_assert_eq(emo_dialogue_pick(d, "fr", NULL, EMO_HAPPY, &kind, &text), 0);
        cr_assert_eq(kind, EMO_DIALOGUE_CONGRATULATION);
        cr_assert_eq(emo_dialogue_pick(d, "fr", NULL, EMO_SURPRISE, &kind, &text), 0);
        cr_assert_eq(kind, EMO_DIALOGUE_CONGRATULATION);
        cr_assert_eq(emo_dialogue_pick(d, "fr", NULL, EMO_SAD, &kind, &text), 0);
        cr_assert_eq(kind, EMO_DIALOGUE_QUESTION);
        cr_assert(strchr(text, '?'), "a question ends with a question mark: '%s'", text);
        emo_dialogue_free(d);
}

/* Over many frames of one stream, the same line never comes twice in a row, and every line of the
 * section is used (the choice varies). */
Test(dialogue, never_the_same_line_twice_in_a_row) {
        emo_dialogue_t *d = load_shipped();
        for (int e = 0; e < EMO_EMOTION_COUNT; e++) {
                if (emo_emotion_valence(e) == EMO_VALENCE_NEUTRAL)
                        continue;
                const char *prev = NULL, *seen[16] = { 0 };
                size_t n_seen = 0;
                for (int i = 0; i < 500; i++) {
                        emo_dialogue_kind_t kind;
                        const char *text;
                        cr_assert_eq(emo_dialogue_pick(d, "fr", "camera-1", e, &kind, &text), 0);
                        cr_assert(text != prev, "pick %d for %s repeats '%s'", i, emo_emotion_name(e), text);
                        /* Another stream in between must not disturb camera-1's memory. */
                        const char *other;
                        cr_assert_eq(emo_dialogue_pick(d, "fr", "camera-2", e, &kind, &other), 0);
                        prev = text;
                        bool known = false;
                        for (size_t k = 0; k < n_seen; k++)
                                known |= seen[k] == text;
                        if (!known && n_seen < 16)
                                seen[n_seen++] = text;
                }
                cr_assert_eq(n_seen, 3, "%s: %zu different lines used of the 3 in fr.ini", emo_emotion_name(e), n_seen);
        }
        emo_dialogue_free(d);
}

/* In a smoothed stream a face track's line holds while its emotion does, a calm moment included (a
 * client showing it frame after frame shows the same words); a change brings a new line, never the
 * stream's last for that emotion, and two tracks with one emotion get different lines. */
Test(dialogue, a_track_keeps_its_line_while_its_emotion_holds) {
        emo_dialogue_t *d = load_shipped();
        emo_dialogue_kind_t kind;
        const char *first, *text, *other;
        cr_assert_eq(emo_dialogue_pick_held(d, "en", "cam", 1, EMO_SAD, &kind, &first), 0);
        cr_assert_eq(kind, EMO_DIALOGUE_QUESTION);
        for (int i = 0; i < 50; i++) {
                cr_assert_eq(emo_dialogue_pick_held(d, "en", "cam", 1, EMO_SAD, &kind, &text), 0);
                cr_assert_eq(text, first, "frame %d: '%s' after '%s'", i, text, first);
        }
        /* Another track of the stream, sad too: another line, held as well. */
        cr_assert_eq(emo_dialogue_pick_held(d, "en", "cam", 2, EMO_SAD, &kind, &other), 0);
        cr_assert_neq(other, first);
        cr_assert_eq(emo_dialogue_pick_held(d, "en", "cam", 2, EMO_SAD, &kind, &text), 0);
        cr_assert_eq(text, other);
        /* Track 1 calm for a moment (nothing said), then sad again: its words come back with it. */
        cr_assert_eq(emo_dialogue_pick_held(d, "en", "cam", 1, EMO_NEUTRAL, &kind, &text), 0);
        cr_assert_eq(kind, EMO_DIALOGUE_NONE);
        cr_assert_null(text);
        cr_assert_eq(emo_dialogue_pick_held(d, "en", "cam", 1, EMO_SAD, &kind, &text), 0);
        cr_assert_eq(text, first, "'%s' after a calm frame, '%s' before", text, first);
        /* Turned happy, then sad again: a new line, not the stream's last sad one. */
        cr_assert_eq(emo_dialogue_pick_held(d, "en", "cam", 1, EMO_HAPPY, &kind, &text), 0);
        cr_assert_eq(kind, EMO_DIALOGUE_CONGRATULATION);
        cr_assert_eq(emo_dialogue_pick_held(d, "en", "cam", 1, EMO_SAD, &kind, &text), 0);
        cr_assert_neq(text, other, "the stream's last sad line again");
        const char *now = text;
        cr_assert_eq(emo_dialogue_pick_held(d, "en", "cam", 1, EMO_SAD, &kind, &text), 0);
        cr_assert_eq(text, now);
        /* Another stream's track 1 is another face, and each language holds its own. */
        cr_assert_eq(emo_dialogue_pick_held(d, "en", "cam-2", 1, EMO_HAPPY, &kind, &text), 0);
        cr_assert_eq(kind, EMO_DIALOGUE_CONGRATULATION);
        cr_assert_eq(emo_dialogue_pick_held(d, "fr", "cam", 1, EMO_SAD, &kind, &text), 0);
        cr_assert(emo_test_dialogue_has_line("fr", "sad", text), "%s", text);
        cr_assert_eq(emo_dialogue_pick_held(d, "en", "cam", 1, EMO_SAD, &kind, &text), 0);
        cr_assert_eq(text, now);
        cr_assert_eq(emo_dialogue_pick_held(d, "xx", "cam", 1, EMO_SAD, &kind, &text), -ENOENT);
        cr_assert_eq(emo_dialogue_pick_held(d, "en", "cam", 1, 99, &kind, &text), -EINVAL);
        emo_dialogue_free(d);
}

Test(dialogue, unknown_language) {
        emo_dialogue_t *d = load_shipped();
        emo_dialogue_kind_t kind = 42;
        const char *text = (const char *) 0x1;
        cr_assert_eq(emo_dialogue_pick(d, "de", NULL, EMO_SAD, &kind, &text), -ENOENT);
        cr_assert_eq(emo_dialogue_pick(d, "", NULL, EMO_SAD, &kind, &text), -ENOENT);
        cr_assert_eq(emo_dialogue_pick(d, "FR", NULL, EMO_SAD, &kind, &text), -ENOENT);
        cr_assert_eq(kind, 42, "outputs untouched on failure");
        emo_dialogue_free(d);
}

/* ---- broken dialogue folders ------------------------------------------------------------------ */

static char dir[64];

static void make_dir(void) {
        snprintf(dir, sizeof(dir), "/tmp/emo-dialogue-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (dir[0])
                cr_assert_eq(system(cmd), 0);
}

static char *write_lang(const char *lang, const char *text) {
        char *path = NULL;
        cr_assert(asprintf(&path, "%s/%s.ini", dir, lang) > 0);
        FILE *f = fopen(path, "we");
        cr_assert(f);
        fputs(text, f);
        fclose(f);
        return path;
}

#define ALL_BUT_SAD                                                                   \
        "[angry]\nline = A?\n[disgust]\nline = D?\n[fear]\nline = F?\n"               \
        "[happy]\nline = H!\n[surprise]\nline = S!\n"

TestSuite(dialogue_files, .init = make_dir, .fini = remove_dir);

Test(dialogue_files, minimal_valid_file) {
        write_lang("xx", ALL_BUT_SAD "[sad]\nline = Why so sad?\n[neutral]\nkind = question\nline = How are you?\n");
        emo_dialogue_t *d = NULL;
        emo_error_t err = { "" };
        cr_assert_eq(emo_dialogue_load(dir, &d, &err), 0, "%s", err.message);
        cr_assert_str_eq(emo_dialogue_languages(d), "xx");
        emo_dialogue_kind_t kind;
        const char *text;
        cr_assert_eq(emo_dialogue_pick(d, "xx", NULL, EMO_SAD, &kind, &text), 0);
        cr_assert_str_eq(text, "Why so sad?");
        /* One line only: repeating it is the only choice, and must not fail. */
        cr_assert_eq(emo_dialogue_pick(d, "xx", NULL, EMO_SAD, &kind, &text), 0);
        cr_assert_str_eq(text, "Why so sad?");
        /* Neutral speaks when its section gives a kind and lines. */
        cr_assert_eq(emo_dialogue_pick(d, "xx", NULL, EMO_NEUTRAL, &kind, &text), 0);
        cr_assert_eq(kind, EMO_DIALOGUE_QUESTION);
        cr_assert_str_eq(text, "How are you?");
        emo_dialogue_free(d);
}

static void expect_invalid(const char *text, int line, const char *reason) {
        char *path = write_lang("xx", text);
        emo_dialogue_t *d = NULL;
        emo_error_t err = { "" };
        cr_assert_eq(emo_dialogue_load(dir, &d, &err), -EINVAL, "accepted:\n%s", text);
        cr_assert_null(d);
        char want[256];
        if (line > 0)
                snprintf(want, sizeof(want), "%s:%d:", path, line);
        else
                snprintf(want, sizeof(want), "%s:", path);
        cr_assert_not_null(strstr(err.message, want), "message '%s' should contain '%s'", err.message, want);
        cr_assert_not_null(strstr(err.message, reason), "message '%s' should contain '%s'", err.message, reason);
        free(path);
}

Test(dialogue_files, section_that_is_not_an_emotion) {
        expect_invalid(ALL_BUT_SAD "[sad]\nline = ?\n[joy]\nline = Yay\n", 14, "[joy]");
}

Test(dialogue_files, unknown_key) {
        expect_invalid("[angry]\nline = A?\ntext = B?\n", 3, "text");
}

Test(dialogue_files, empty_line) {
        expect_invalid("[angry]\nline =\n", 2, "empty");
}

Test(dialogue_files, bad_kind) {
        expect_invalid(ALL_BUT_SAD "[sad]\nline = ?\n[neutral]\nkind = shout\n", 14, "kind");
}

Test(dialogue_files, negative_emotion_without_lines) {
        expect_invalid(ALL_BUT_SAD, 0, "sad");
}

Test(dialogue_files, syntax_error) {
        expect_invalid("[angry\nline = A?\n", 1, "");
}

Test(dialogue_files, empty_folder) {
        emo_dialogue_t *d = NULL;
        emo_error_t err = { "" };
        cr_assert_eq(emo_dialogue_load(dir, &d, &err), -ENOENT);
        cr_assert_not_null(strstr(err.message, dir), "%s", err.message);
        cr_assert_eq(emo_dialogue_load("/nonexistent/dialogue", &d, &err), -ENOENT);
        cr_assert_null(d);
}

/* A file's name is the language clients ask for: one that is not a language code (which
 * requests must carry) is refused when loading, naming the file, rather than listed in health
 * and refused in every request. */
Test(dialogue_files, file_name_that_is_not_a_language_code) {
        static const char *const bad[] = { "pt.BR", "a-language-name-of-20", "fr FR" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *path = write_lang(bad[i], ALL_BUT_SAD "[sad]\nline = Why?\n");
                emo_dialogue_t *d = NULL;
                emo_error_t err = { "" };
                cr_expect_eq(emo_dialogue_load(dir, &d, &err), -EINVAL, "%s accepted", bad[i]);
                cr_expect_null(d);
                cr_expect_not_null(strstr(err.message, path), "message '%s' should name %s", err.message, path);
                cr_expect_not_null(strstr(err.message, "not a language code"), "message '%s'", err.message);
                unlink(path);
                free(path);
                emo_dialogue_free(d);
        }
        write_lang("pt-BR", ALL_BUT_SAD "[sad]\nline = Por que?\n");
        emo_dialogue_t *d = NULL;
        emo_error_t err = { "" };
        cr_assert_eq(emo_dialogue_load(dir, &d, &err), 0, "%s", err.message);
        cr_expect_str_eq(emo_dialogue_languages(d), "pt-BR");
        emo_dialogue_free(d);
}
