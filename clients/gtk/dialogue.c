#include "dialogue.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emo/labels.h"
#include "emo/util.h"

#define KIND_QUESTION 1
#define KIND_CONGRATULATION 2
#define NO_EMOTION (-1)

struct emo_gtk_dialogue {
        emo_gtk_line_t *lines;
        size_t n, cap;
        int last_emotion;  /* the addressed face's emotion in the last frame that had a face */
        bool awaiting;
        bool readdressed;  /* another face is spoken to since the last frame with a face */
};

emo_gtk_dialogue_t *emo_gtk_dialogue_new(void) {
        emo_gtk_dialogue_t *d = calloc(1, sizeof(*d));
        if (d)
                d->last_emotion = NO_EMOTION;
        return d;
}

void emo_gtk_dialogue_clear(emo_gtk_dialogue_t *d) {
        for (size_t i = 0; i < d->n; i++)
                free(d->lines[i].text);
        d->n = 0;
        d->last_emotion = NO_EMOTION;
        d->awaiting = false;
        d->readdressed = false;
}

emo_gtk_dialogue_t *emo_gtk_dialogue_free(emo_gtk_dialogue_t *d) {
        if (!d)
                return NULL;
        emo_gtk_dialogue_clear(d);
        free(d->lines);
        free(d);
        return NULL;
}

static int append(emo_gtk_dialogue_t *d, emo_gtk_speaker_t speaker, int64_t wall_us, int emotion, int kind,
                  const char *text, size_t len) {
        if (d->n == d->cap) {
                size_t cap = d->cap ? d->cap * 2 : 16;
                emo_gtk_line_t *l = realloc(d->lines, cap * sizeof(*l));
                if (!l)
                        return -ENOMEM;
                d->lines = l;
                d->cap = cap;
        }
        char *t = strndup(text, len);
        if (!t)
                return -ENOMEM;
        d->lines[d->n++] = (emo_gtk_line_t) {
                .wall_us = wall_us, .speaker = speaker, .emotion = emotion, .kind = kind, .text = t
        };
        return 0;
}

/* The last line emotiond said, NULL when none. */
static const emo_gtk_line_t *last_said(const emo_gtk_dialogue_t *d) {
        for (size_t i = d->n; i-- > 0;)
                if (d->lines[i].speaker == EMO_GTK_SPEAKER_DAEMON)
                        return &d->lines[i];
        return NULL;
}

int emo_gtk_dialogue_observe(emo_gtk_dialogue_t *d, int emotion, int kind, const char *text) {
        return emo_gtk_dialogue_observe_at(d, emo_wall_us(), emotion, kind, text);
}

int emo_gtk_dialogue_observe_at(emo_gtk_dialogue_t *d, int64_t now_us, int emotion, int kind, const char *text) {
        if (emotion < 0 || !emo_emotion_name(emotion))
                return 0; /* nobody in view: the conversation waits */
        bool readdressed = d->readdressed;
        d->readdressed = false;
        if (emotion == d->last_emotion)
                return 0;
        if (!((kind == KIND_QUESTION || kind == KIND_CONGRATULATION) && text && *text)) {
                /* Calm (or nothing to say): a question left open stays open. */
                d->last_emotion = emotion;
                return 0;
        }
        /* The same face back to the emotion of the last line after a moment of calm: that line
         * still stands (a borderline face flickering between sad and neutral is asked once). */
        const emo_gtk_line_t *said = last_said(d);
        if (!readdressed && said && said->emotion == emotion &&
            now_us - said->wall_us < (int64_t) EMO_GTK_DIALOGUE_REPEAT_S * 1000000) {
                d->last_emotion = emotion;
                return 0;
        }
        int r = append(d, EMO_GTK_SPEAKER_DAEMON, now_us, emotion, kind, text, strlen(text));
        if (r < 0) {
                d->readdressed = readdressed;
                return r; /* the change is seen again with the next frame */
        }
        d->last_emotion = emotion;
        /* A new line replaces any question left unanswered: the person moved on. */
        d->awaiting = kind == KIND_QUESTION;
        return 1;
}

void emo_gtk_dialogue_readdress(emo_gtk_dialogue_t *d) {
        d->last_emotion = NO_EMOTION;
        d->readdressed = true;
}

bool emo_gtk_dialogue_awaiting_answer(const emo_gtk_dialogue_t *d) {
        return d->awaiting;
}

int emo_gtk_dialogue_answer(emo_gtk_dialogue_t *d, const char *text) {
        if (!d->awaiting)
                return -ENOMSG;
        while (*text && isspace((unsigned char) *text))
                text++;
        size_t len = strlen(text);
        while (len > 0 && isspace((unsigned char) text[len - 1]))
                len--;
        if (len == 0)
                return -EINVAL;
        const emo_gtk_line_t *q = &d->lines[d->n - 1];
        int r = append(d, EMO_GTK_SPEAKER_PERSON, emo_wall_us(), q->emotion, q->kind, text, len);
        if (r < 0)
                return r;
        d->awaiting = false;
        return 0;
}

size_t emo_gtk_dialogue_n_lines(const emo_gtk_dialogue_t *d) {
        return d->n;
}

const emo_gtk_line_t *emo_gtk_dialogue_line(const emo_gtk_dialogue_t *d, size_t i) {
        return i < d->n ? &d->lines[i] : NULL;
}

char *emo_gtk_dialogue_to_text(const emo_gtk_dialogue_t *d) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        fputs("# emotion-gtk conversation log\n"
              "# What emotiond said to the person in front of the camera or in the photos (one line per\n"
              "# change of their emotion) and the answers typed in reply, with local time and the\n"
              "# emotion each line reacts to. No image, face or probability is stored here.\n",
              f);
        for (size_t i = 0; i < d->n; i++) {
                const emo_gtk_line_t *l = &d->lines[i];
                time_t t = (time_t) (l->wall_us / 1000000);
                struct tm tm;
                char when[32] = "";
                if (localtime_r(&t, &tm))
                        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
                fprintf(f, "%s\t%s\t%s\t%s\n", when, l->speaker == EMO_GTK_SPEAKER_DAEMON ? "emotiond" : "person",
                        emo_emotion_name(l->emotion) ?: "?", l->text);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
