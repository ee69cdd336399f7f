#include "request.h"

void cli_request_init(cli_request_t *r, int format, const void *data, size_t size, int timeout_ms) {
        emotion__v1__request__init(&r->request);
        emotion__v1__analyze_request__init(&r->analyze);
        emotion__v1__image__init(&r->image);
        emotion__v1__options__init(&r->options);
        emotion__v1__box__init(&r->box);
        r->image.format = format;
        r->image.data.data = (uint8_t *) data;
        r->image.data.len = size;
        r->analyze.image = &r->image;
        r->analyze.options = &r->options;
        /* Past our own timeout the reply is useless: let the daemon drop it unprocessed. */
        r->analyze.deadline_ms = timeout_ms > 0 ? (uint32_t) timeout_ms : 0;
        r->request.body_case = EMOTION__V1__REQUEST__BODY_ANALYZE;
        r->request.analyze = &r->analyze;
}

void cli_request_set_face(cli_request_t *r, int x, int y, int width, int height, bool exact_crop) {
        r->box.x = x;
        r->box.y = y;
        r->box.width = width;
        r->box.height = height;
        r->boxes[0] = &r->box;
        r->analyze.faces = r->boxes;
        r->analyze.n_faces = 1;
        r->analyze.exact_crop = exact_crop;
}

void cli_request_set_options(cli_request_t *r, const cli_options_t *o) {
        r->options.include_probabilities = true;
        r->options.max_faces = o->max_faces;
        r->options.language = (char *) (o->language ?: "");
        r->options.smooth_frames = o->smooth;
}
