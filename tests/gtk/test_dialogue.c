/* The conversation model without a display: one line per change of the addressed face's emotion
 * (not one per flicker through neutral), a question waits for an answer, a face picked by a click
 * is spoken to, and the saved text says what it holds. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "dialogue.h"
#include "emo/labels.h"

#define QUESTION 1
#define CONGRATULATION 2

static emo_gtk_dialogue_t *d;

static void setup(void) {
        d = emo_gtk_dialogue_new();
        cr_assert_not_null(d);
}

static void teardown(void) {
        d = emo_gtk_dialogue_free(d);
}

TestSuite(dialogue, .init = setup, .fini = teardown);

Test(dialogue, one_line_per_change_not_per_frame) {
        for (int i = 0; i < 5; i++)
                cr_assert_eq(emo_gtk_dialogue_observe(d, EMO_SAD, QUESTION, "Why are you sad?"), i == 0 ? 1 : 0);
        cr_assert_eq(emo_gtk_dialogue_n_lines(d), 1);
        cr_assert(emo_gtk_dialogue_awaiting_answer(d));
        /* The daemon varies its wording frame to frame: still the same emotion, still one line. */
        cr_assert_eq(emo_gtk_dialogue_observe(d, EMO_SAD, QUESTION, "What makes you sad?"), 0);
        for (int i = 0; i < 3; i++)
                emo_gtk_dialogue_observe(d, EMO_HAPPY, CONGRATULATION, "Great, keep it up!");
        cr_assert_eq(emo_gtk_dialogue_n_lines(d), 2);
        cr_assert_not(emo_gtk_dialogue_awaiting_answer(d), "congratulations wait for no answer");
        cr_assert_eq(emo_gtk_dialogue_observe(d, EMO_SAD, QUESTION, "Why are you sad?"), 1);
        cr_assert_eq(emo_gtk_dialogue_n_lines(d), 3);
        const emo_gtk_line_t *l = emo_gtk_dialogue_line(d, 1);
        cr_assert_eq(l->speaker, EMO_GTK_SPEAKER_DAEMON);
        cr_assert_eq(l->emotion, EMO_HAPPY);
        cr_assert_eq(l->kind, CONGRATULATION);
        cr_assert_str_eq(l->text, "Great, keep it up!");
        cr_assert_null(emo_gtk_dialogue_line(d, 3));
}

/* A calm moment says nothing and leaves the question open; the face back to the emotion of the
 * last line within EMO_GTK_DIALOGUE_REPEAT_S is not asked again (a borderline face flickering
 * between sad and neutral is asked once), later it is. */
Test(dialogue, a_calm_moment_is_not_a_new_question) {
        const int64_t t0 = 1700000000000000, s = 1000000;
        cr_assert_eq(emo_gtk_dialogue_observe_at(d, t0, EMO_SAD, QUESTION, "Why are you sad?"), 1);
        for (int i = 1; i <= 10; i++) {
                cr_assert_eq(emo_gtk_dialogue_observe_at(d, t0 + i * s, EMO_NEUTRAL, 0, ""), 0);
                cr_assert(emo_gtk_dialogue_awaiting_answer(d), "the question lapsed after a calm frame");
                cr_assert_eq(emo_gtk_dialogue_observe_at(d, t0 + i * s + s / 2, EMO_SAD, QUESTION, "What makes you sad?"),
                             0, "asked again after a calm frame, %d s after the question", i);
        }
        cr_assert_eq(emo_gtk_dialogue_n_lines(d), 1);
        cr_assert_eq(emo_gtk_dialogue_answer(d, "Rain."), 0);
        emo_gtk_dialogue_observe_at(d, t0 + 20 * s, EMO_NEUTRAL, 0, "");
        cr_assert_eq(emo_gtk_dialogue_observe_at(d, t0 + 21 * s, EMO_SAD, QUESTION, "Why are you sad?"), 0,
                     "asked again right after answering");
        cr_assert_not(emo_gtk_dialogue_awaiting_answer(d));
        /* Long after the question: a new one. */
        emo_gtk_dialogue_observe_at(d, t0 + 40 * s, EMO_NEUTRAL, 0, "");
        cr_assert_eq(emo_gtk_dialogue_observe_at(d, t0 + (EMO_GTK_DIALOGUE_REPEAT_S + 1) * s, EMO_SAD, QUESTION,
                                                 "Why are you sad?"),
                     1);
        cr_assert_eq(emo_gtk_dialogue_n_lines(d), 3);
        cr_assert(emo_gtk_dialogue_awaiting_answer(d));
        /* Another emotion between two of the same is a change worth a line at once. */
        emo_gtk_dialogue_observe_at(d, t0 + 42 * s, EMO_HAPPY, CONGRATULATION, "Great!");
        cr_assert_eq(emo_gtk_dialogue_observe_at(d, t0 + 43 * s, EMO_SAD, QUESTION, "Why are you sad?"), 1);
        cr_assert_eq(emo_gtk_dialogue_n_lines(d), 5);
}

Test(dialogue, frames_without_a_face_change_nothing) {
        emo_gtk_dialogue_observe(d, EMO_ANGRY, QUESTION, "What makes you angry?");
        for (int i = 0; i < 4; i++)
                cr_assert_eq(emo_gtk_dialogue_observe(d, -1, 0, ""), 0);
        cr_assert(emo_gtk_dialogue_awaiting_answer(d));
        cr_assert_eq(emo_gtk_dialogue_observe(d, EMO_ANGRY, QUESTION, "What makes you angry?"), 0);
        cr_assert_eq(emo_gtk_dialogue_n_lines(d), 1);
}

Test(dialogue, a_change_without_a_line_from_the_daemon_adds_none) {
        cr_assert_eq(emo_gtk_dialogue_observe(d, EMO_FEAR, 0, ""), 0);
        cr_assert_eq(emo_gtk_dialogue_observe(d, EMO_FEAR, QUESTION, "What frightens you?"), 0,
                     "the change was already seen");
        cr_assert_eq(emo_gtk_dialogue_n_lines(d), 0);
}

Test(dialogue, answers) {
        cr_assert_eq(emo_gtk_dialogue_answer(d, "hello"), -ENOMSG, "no question yet");
        emo_gtk_dialogue_observe(d, EMO_SAD, QUESTION, "Why are you sad?");
        cr_assert_eq(emo_gtk_dialogue_answer(d, "  \t "), -EINVAL);
        cr_assert(emo_gtk_dialogue_awaiting_answer(d));
        cr_assert_eq(emo_gtk_dialogue_answer(d, "  My cat is ill. "), 0);
        cr_assert_not(emo_gtk_dialogue_awaiting_answer(d));
        cr_assert_eq(emo_gtk_dialogue_n_lines(d), 2);
        const emo_gtk_line_t *l = emo_gtk_dialogue_line(d, 1);
        cr_assert_eq(l->speaker, EMO_GTK_SPEAKER_PERSON);
        cr_assert_str_eq(l->text, "My cat is ill.");
        cr_assert_eq(l->emotion, EMO_SAD);
        cr_assert_eq(emo_gtk_dialogue_answer(d, "again"), -ENOMSG, "one answer per question");
        emo_gtk_dialogue_observe(d, EMO_HAPPY, CONGRATULATION, "Great!");
        cr_assert_eq(emo_gtk_dialogue_answer(d, "thanks"), -ENOMSG, "congratulations ask nothing");
}

Test(dialogue, a_new_line_replaces_an_unanswered_question) {
        emo_gtk_dialogue_observe(d, EMO_SAD, QUESTION, "Why are you sad?");
        emo_gtk_dialogue_observe(d, EMO_ANGRY, QUESTION, "What makes you angry?");
        cr_assert(emo_gtk_dialogue_awaiting_answer(d));
        cr_assert_eq(emo_gtk_dialogue_answer(d, "traffic"), 0);
        cr_assert_eq(emo_gtk_dialogue_line(d, 2)->emotion, EMO_ANGRY, "the answer goes with the last question");
}

Test(dialogue, saved_text_says_what_it_holds) {
        emo_gtk_dialogue_observe(d, EMO_SAD, QUESTION, "Why are you sad?");
        emo_gtk_dialogue_answer(d, "Rain.");
        char *text = emo_gtk_dialogue_to_text(d);
        cr_assert_not_null(text);
        cr_assert(strstr(text, "# emotion-gtk conversation log"), "%s", text);
        cr_assert(strstr(text, "No image, face or probability is stored here."), "%s", text);
        cr_assert(strstr(text, "\temotiond\tsad\tWhy are you sad?\n"), "%s", text);
        cr_assert(strstr(text, "\tperson\tsad\tRain.\n"), "%s", text);
        free(text);
        emo_gtk_dialogue_clear(d);
        cr_assert_eq(emo_gtk_dialogue_n_lines(d), 0);
        cr_assert_not(emo_gtk_dialogue_awaiting_answer(d));
        cr_assert_eq(emo_gtk_dialogue_observe(d, EMO_SAD, QUESTION, "Why are you sad?"), 1,
                     "after Clear the same emotion is news again");
}

/* A face picked by a click is another person: it hears its line even with the emotion said last,
 * and then once per change like anyone. */
Test(dialogue, another_face_picked_is_spoken_to) {
        cr_assert_eq(emo_gtk_dialogue_observe(d, EMO_SAD, QUESTION, "Why are you sad?"), 1);
        emo_gtk_dialogue_readdress(d);
        cr_assert_eq(emo_gtk_dialogue_observe(d, EMO_SAD, QUESTION, "What makes you sad?"), 1);
        cr_assert_eq(emo_gtk_dialogue_observe(d, EMO_SAD, QUESTION, "Why are you sad?"), 0);
        cr_assert_eq(emo_gtk_dialogue_n_lines(d), 2);
        cr_assert(emo_gtk_dialogue_awaiting_answer(d));
        /* A picked neutral face: nothing is said, the question stays open. */
        emo_gtk_dialogue_readdress(d);
        cr_assert_eq(emo_gtk_dialogue_observe(d, EMO_NEUTRAL, 0, ""), 0);
        cr_assert_eq(emo_gtk_dialogue_n_lines(d), 2);
        /* Back to a sad face once the pick is over: the last line stands for it. */
        cr_assert_eq(emo_gtk_dialogue_observe(d, EMO_SAD, QUESTION, "Why are you sad?"), 0);
}
