/* How the CLI shows results: the JSON objects of the documented schema (docs/cli.md), the human
 * blocks of `analyze`, and a progress bar that only appears when stderr is a terminal.
 * Names, emoji and status names come from libemo; nothing here keeps its own table. */
#pragma once

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "emo/protocol.h"

/* Serialize doubles with 6 significant digits (0.923456, not 0.92345601320266724). Call once. */
void cli_json_setup(void);

/* Write o as one line of JSON on stdout and flush it (JSON Lines). 0 or -EIO. Does not free o. */
int cli_json_print_line(json_object *o);

/* A JSON number, or NULL (JSON null) for NaN and the infinities, which JSON cannot write and which
 * stand for undefined figures (a mean of nothing). */
json_object *cli_json_new_number(double value);

/* Shorthands that cope with out-of-memory by producing JSON null; cli_json_add_double() also
 * writes null for a value that is not finite. */
void cli_json_add_string(json_object *o, const char *key, const char *value);
void cli_json_add_int(json_object *o, const char *key, int64_t value);
void cli_json_add_uint(json_object *o, const char *key, uint64_t value);
void cli_json_add_double(json_object *o, const char *key, double value);

/* Add the fields of an AnalyzeReply to o: width, height, model, model_sha256, detector, faces,
 * dialogue, timing_us. */
void cli_json_add_analyze(json_object *o, const emo_analyze_reply_t *a);

/* "happy", or "unknown" for a value outside the seven classes. */
const char *cli_emotion_name(int e);

/* Print the human block of one analysed image on stdout: the name line, one line per face, the
 * dialogue line. */
void cli_print_analyze(const char *name, const emo_analyze_reply_t *a);

typedef struct cli_progress {
        const char *label;
        size_t total;
        int64_t last_us;
        int enabled;
} cli_progress_t;

/* A progress bar for `total` steps on stderr, enabled only when stderr is a terminal. */
void cli_progress_init(cli_progress_t *p, const char *label, size_t total);
/* Redraw with `done` steps finished, at most ten times a second. */
void cli_progress_update(cli_progress_t *p, size_t done);
/* Erase the bar. */
void cli_progress_finish(cli_progress_t *p);
