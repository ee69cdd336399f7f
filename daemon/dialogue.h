/* Dialogue lines: what the system says to the most prominent face. Lines live in data files, one
 * per language (<dir>/<language>.ini), so a deployment can replace them without rebuilding:
 *
 *     [sad]
 *     line = Pourquoi es-tu triste ?
 *     line = Qu'est-ce qui te rend triste ?
 *
 * Sections are emotion names; each `line` adds one line. Negative emotions ask (QUESTION),
 * positive ones congratulate (CONGRATULATION), neutral says nothing unless its section has
 * lines and `kind = question|congratulation`. The same line is never picked twice in a row for
 * one stream; in a smoothed stream a face's line holds while its emotion does (a calm moment in
 * between included). Thread-safe:
 * workers share one instance. */
#pragma once

#include "emo/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct emo_dialogue emo_dialogue_t;

typedef enum emo_dialogue_kind {
        EMO_DIALOGUE_NONE = 0,
        EMO_DIALOGUE_QUESTION = 1,
        EMO_DIALOGUE_CONGRATULATION = 2,
} emo_dialogue_kind_t;

/* Load every *.ini file of dir. -ENOENT when dir holds none; -EINVAL for a bad file, with
 * "FILE:LINE: reason" in err. */
int emo_dialogue_load(const char *dir, emo_dialogue_t **ret, emo_error_t *err);

emo_dialogue_t *emo_dialogue_free(emo_dialogue_t *d);

/* Languages loaded, comma-separated ("en,fr"); owned by d. */
const char *emo_dialogue_languages(const emo_dialogue_t *d);

/* Number of languages loaded, and the i-th one's code (owned by d). */
size_t emo_dialogue_n_languages(const emo_dialogue_t *d);
const char *emo_dialogue_language(const emo_dialogue_t *d, size_t i);

/* Whether lines for language lang are loaded. */
bool emo_dialogue_has_language(const emo_dialogue_t *d, const char *lang);

/* Pick a line for emotion in language lang for stream. -ENOENT for an unknown language. On
 * success *ret_kind is set, and *ret_text points to the line (owned by d, stable for its
 * lifetime), or NULL when the kind is NONE. */
int emo_dialogue_pick(emo_dialogue_t *d, const char *lang, const char *stream, int emotion,
                      emo_dialogue_kind_t *ret_kind, const char **ret_text);

/* The same for face track `track` of a smoothed stream: the track's line is held while its
 * emotion stays the same, and over frames with nothing to say (a calm face) until it comes back,
 * so that a client showing it frame after frame shows the same words; a new one is picked (as
 * emo_dialogue_pick) when the track turns to another emotion that has lines. */
int emo_dialogue_pick_held(emo_dialogue_t *d, const char *lang, const char *stream, uint64_t track, int emotion,
                           emo_dialogue_kind_t *ret_kind, const char **ret_text);
