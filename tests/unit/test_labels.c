/* The emotion table every program shows: names, emoji, valence (which decides the dialogue kind)
 * and the name lookup used by the dialogue files and the CLI. */
#include <criterion/criterion.h>
#include <errno.h>

#include "emo/labels.h"
#include "emo/protocol.h"

static const struct {
        int value;
        const char *name, *emoji;
        emo_valence_t valence;
} expected[] = {
        { EMO_ANGRY, "angry", "\xF0\x9F\x98\xA0", EMO_VALENCE_NEGATIVE },        /* U+1F620 */
        { EMO_DISGUST, "disgust", "\xF0\x9F\xA4\xA2", EMO_VALENCE_NEGATIVE },    /* U+1F922 */
        { EMO_FEAR, "fear", "\xF0\x9F\x98\xA8", EMO_VALENCE_NEGATIVE },          /* U+1F628 */
        { EMO_HAPPY, "happy", "\xF0\x9F\x98\x84", EMO_VALENCE_POSITIVE },        /* U+1F604 */
        { EMO_SAD, "sad", "\xF0\x9F\x98\xA2", EMO_VALENCE_NEGATIVE },            /* U+1F622 */
        { EMO_SURPRISE, "surprise", "\xF0\x9F\x98\xAE", EMO_VALENCE_POSITIVE },  /* U+1F62E */
        { EMO_NEUTRAL, "neutral", "\xF0\x9F\x98\x90", EMO_VALENCE_NEUTRAL },     /* U+1F610 */
};

Test(labels, values_are_fer2013_labels_and_wire_enum) {
        cr_assert_eq(EMO_EMOTION_COUNT, 7);
        /* FER2013's label numbers, and the wire's Emotion enum, are the same numbers. */
        for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
                cr_assert_eq(expected[i].value, (int) i);
        cr_assert_eq(EMOTION__V1__EMOTION__ANGRY, EMO_ANGRY);
        cr_assert_eq(EMOTION__V1__EMOTION__DISGUST, EMO_DISGUST);
        cr_assert_eq(EMOTION__V1__EMOTION__FEAR, EMO_FEAR);
        cr_assert_eq(EMOTION__V1__EMOTION__HAPPY, EMO_HAPPY);
        cr_assert_eq(EMOTION__V1__EMOTION__SAD, EMO_SAD);
        cr_assert_eq(EMOTION__V1__EMOTION__SURPRISE, EMO_SURPRISE);
        cr_assert_eq(EMOTION__V1__EMOTION__NEUTRAL, EMO_NEUTRAL);
}

Test(labels, names_emoji_and_valence) {
        for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
                int e = expected[i].value;
                cr_assert_str_eq(emo_emotion_name(e), expected[i].name);
                cr_assert_str_eq(emo_emotion_emoji(e), expected[i].emoji, "emoji of %s", expected[i].name);
                cr_assert_eq(emo_emotion_valence(e), expected[i].valence, "valence of %s", expected[i].name);
        }
}

Test(labels, names_match_the_wire_enum) {
        const ProtobufCEnumDescriptor *d = &emotion__v1__emotion__descriptor;
        cr_assert_eq(d->n_values, EMO_EMOTION_COUNT);
        for (unsigned i = 0; i < d->n_values; i++) {
                char lower[32];
                size_t k = 0;
                for (const char *p = d->values[i].name; *p && k + 1 < sizeof(lower); p++)
                        lower[k++] = (char) (*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
                lower[k] = '\0';
                cr_assert_str_eq(emo_emotion_name(d->values[i].value), lower);
        }
}

Test(labels, out_of_range) {
        cr_assert_null(emo_emotion_name(-1));
        cr_assert_null(emo_emotion_name(EMO_EMOTION_COUNT));
        cr_assert_null(emo_emotion_emoji(-1));
        cr_assert_null(emo_emotion_emoji(EMO_EMOTION_COUNT));
        cr_assert_eq(emo_emotion_valence(-1), EMO_VALENCE_NEUTRAL);
        cr_assert_eq(emo_emotion_valence(99), EMO_VALENCE_NEUTRAL);
}

Test(labels, from_name) {
        for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
                cr_assert_eq(emo_emotion_from_name(expected[i].name), expected[i].value);
        cr_assert_eq(emo_emotion_from_name("HAPPY"), EMO_HAPPY, "lookup is case-insensitive");
        cr_assert_eq(emo_emotion_from_name("Surprise"), EMO_SURPRISE);
        cr_assert_eq(emo_emotion_from_name("joy"), -EINVAL);
        cr_assert_eq(emo_emotion_from_name(""), -EINVAL);
        cr_assert_eq(emo_emotion_from_name("happy "), -EINVAL);
        cr_assert_eq(emo_emotion_from_name(NULL), -EINVAL);
}
