/* The conversation of the GTK client: the daemon answers every frame with a line for its most
 * prominent face (and one for each other face, which the window asks for so that a person can
 * pick the face spoken to), but a person is spoken to once per change of their emotion, not once
 * per frame. This model turns the stream of per-frame lines into a conversation: a line is added
 * when the addressed face's emotion differs from the last one seen, or when another face is
 * picked; a question (negative emotion) waits for the person's answer, congratulations
 * (positive) do not; a neutral face says nothing, and a question left open stays open. A face
 * back within EMO_GTK_DIALOGUE_REPEAT_S to the emotion of the last line, after a calm moment, is
 * not spoken to again: a borderline face that flickers between sad and neutral is asked once.
 * Frames without a face change nothing, so a person who looks away for a moment is not greeted
 * again. The log lives in memory only; emo_gtk_dialogue_to_text() is for an explicit "save" and
 * says what the text contains. Plain C, no widgets. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum emo_gtk_speaker {
        EMO_GTK_SPEAKER_DAEMON = 0, /* emotiond's line (a question or congratulations) */
        EMO_GTK_SPEAKER_PERSON = 1, /* the person's typed answer */
} emo_gtk_speaker_t;

typedef struct emo_gtk_line {
        int64_t wall_us;       /* when it was added, microseconds since the Unix epoch */
        emo_gtk_speaker_t speaker;
        int emotion;           /* the emotion the line reacts to (the person's: that of the question) */
        int kind;              /* the daemon's Dialogue.Kind (1 question, 2 congratulation) */
        char *text;
} emo_gtk_line_t;

typedef struct emo_gtk_dialogue emo_gtk_dialogue_t;

/* NULL on out-of-memory. */
emo_gtk_dialogue_t *emo_gtk_dialogue_new(void);
/* Accepts NULL, returns NULL. */
emo_gtk_dialogue_t *emo_gtk_dialogue_free(emo_gtk_dialogue_t *d);

/* One analysed frame: emotion is the addressed face's (the main face's, or the one a person
 * picked; -1: no face in the frame), kind and text the daemon's line for it. 1 when a line was
 * added to the log, 0 when nothing was said (same emotion as before, a neutral face, no face, no
 * line from the daemon, or the emotion of the last line again within EMO_GTK_DIALOGUE_REPEAT_S),
 * -ENOMEM. */
int emo_gtk_dialogue_observe(emo_gtk_dialogue_t *d, int emotion, int kind, const char *text);
/* The same at wall-clock time now_us (microseconds since the Unix epoch), for tests. */
int emo_gtk_dialogue_observe_at(emo_gtk_dialogue_t *d, int64_t now_us, int emotion, int kind, const char *text);

/* How long the last line stands for a face that comes back to its emotion after a calm moment. */
#define EMO_GTK_DIALOGUE_REPEAT_S 30

/* Another face is spoken to from now on (a person picked it with a click): the next
 * emo_gtk_dialogue_observe() speaks to it even when its emotion is the one seen last. */
void emo_gtk_dialogue_readdress(emo_gtk_dialogue_t *d);

/* Whether the last line is a question still waiting for the person's answer. */
bool emo_gtk_dialogue_awaiting_answer(const emo_gtk_dialogue_t *d);

/* The person's answer to the pending question (surrounding blanks dropped). 0; -EINVAL for an
 * empty answer; -ENOMSG when no question is pending; -ENOMEM. */
int emo_gtk_dialogue_answer(emo_gtk_dialogue_t *d, const char *text);

size_t emo_gtk_dialogue_n_lines(const emo_gtk_dialogue_t *d);
/* The i-th line, owned by the model (valid until the next change). NULL when out of range. */
const emo_gtk_line_t *emo_gtk_dialogue_line(const emo_gtk_dialogue_t *d, size_t i);

/* Forget every line and the last emotion seen. */
void emo_gtk_dialogue_clear(emo_gtk_dialogue_t *d);

/* The log as UTF-8 text for saving: a header that says what the file holds (the lines emotiond
 * said and the answers typed, with their time and the emotion they react to; no image), then
 * one line per entry. Malloc'd; NULL on out-of-memory. */
char *emo_gtk_dialogue_to_text(const emo_gtk_dialogue_t *d);
