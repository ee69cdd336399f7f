#include "emo/labels.h"

#include <errno.h>
#include <stddef.h>
#include <strings.h>

static const struct {
        const char *name;
        const char *emoji;
        emo_valence_t valence;
} table[EMO_EMOTION_COUNT] = {
        [EMO_ANGRY] = { "angry", "\U0001F620", EMO_VALENCE_NEGATIVE },
        [EMO_DISGUST] = { "disgust", "\U0001F922", EMO_VALENCE_NEGATIVE },
        [EMO_FEAR] = { "fear", "\U0001F628", EMO_VALENCE_NEGATIVE },
        [EMO_HAPPY] = { "happy", "\U0001F604", EMO_VALENCE_POSITIVE },
        [EMO_SAD] = { "sad", "\U0001F622", EMO_VALENCE_NEGATIVE },
        [EMO_SURPRISE] = { "surprise", "\U0001F62E", EMO_VALENCE_POSITIVE },
        [EMO_NEUTRAL] = { "neutral", "\U0001F610", EMO_VALENCE_NEUTRAL },
};

const char *emo_emotion_name(int e) {
        return e >= 0 && e < EMO_EMOTION_COUNT ? table[e].name : NULL;
}

const char *emo_emotion_emoji(int e) {
        return e >= 0 && e < EMO_EMOTION_COUNT ? table[e].emoji : NULL;
}

emo_valence_t emo_emotion_valence(int e) {
        return e >= 0 && e < EMO_EMOTION_COUNT ? table[e].valence : EMO_VALENCE_NEUTRAL;
}

int emo_emotion_from_name(const char *name) {
        if (!name)
                return -EINVAL;
        for (int i = 0; i < EMO_EMOTION_COUNT; i++)
                if (strcasecmp(name, table[i].name) == 0)
                        return i;
        return -EINVAL;
}
