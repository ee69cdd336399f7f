/* The storage of one AnalyzeRequest as the CLI sends it: the protobuf-c structs of a request, an
 * image, its options and one face box, in one piece. The request window (window.h) holds one per
 * request in flight; `bench` keeps one per thread and sends it again and again. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "emo/protocol.h"

/* It points into itself once initialised: fill it in place, never copy it. */
typedef struct cli_request {
        emo_request_t request;
        emo_analyze_request_t analyze;
        emo_pb_image_t image;
        emo_options_t options;
        emo_pb_box_t box;
        emo_pb_box_t *boxes[1];
} cli_request_t;

/* Initialise r as an AnalyzeRequest for an image of `format` whose bytes are data/size (borrowed:
 * they must outlive the request), with deadline_ms set to timeout_ms. Callers then set
 * r->image.width etc., r->options.* or cli_request_set_face(). */
void cli_request_init(cli_request_t *r, int format, const void *data, size_t size, int timeout_ms);

/* What every command that shows faces asks for: the probabilities, and o's --lang, --max-faces and
 * --smooth (Options.smooth_frames; the caller sets the stream id and sequence that go with it).
 * r keeps a pointer to o->language. */
void cli_request_set_options(cli_request_t *r, const cli_options_t *o);

/* Give the request one client-supplied face region. */
void cli_request_set_face(cli_request_t *r, int x, int y, int width, int height, bool exact_crop);
