/* The seven FER2013 emotions: names, emoji and valence. This is the one table the daemon and
 * every client use; the numeric values are FER2013's labels and the wire's Emotion enum. */
#pragma once

typedef enum emo_emotion {
        EMO_ANGRY = 0,
        EMO_DISGUST = 1,
        EMO_FEAR = 2,
        EMO_HAPPY = 3,
        EMO_SAD = 4,
        EMO_SURPRISE = 5,
        EMO_NEUTRAL = 6,
        EMO_EMOTION_COUNT = 7,
} emo_emotion_t;

typedef enum emo_valence {
        EMO_VALENCE_NEGATIVE = -1,
        EMO_VALENCE_NEUTRAL = 0,
        EMO_VALENCE_POSITIVE = 1,
} emo_valence_t;

/* Lower-case English name ("angry"), or NULL when e is out of range. Static storage. */
const char *emo_emotion_name(int e);

/* The emoji as UTF-8 ("😠"), or NULL when e is out of range. Static storage. */
const char *emo_emotion_emoji(int e);

/* Negative for angry, disgust, fear and sad; positive for happy and surprise; neutral for
 * neutral (and for out-of-range values). Decides whether the dialogue asks or congratulates. */
emo_valence_t emo_emotion_valence(int e);

/* The emotion named name (case-insensitive), or -EINVAL. */
int emo_emotion_from_name(const char *name);
