/* Protocol helpers: the status names scripts and the CLI print, and packing/unpacking of the wire
 * messages with errno-style results. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "emo/protocol.h"

static void lower(char *dst, size_t n, const char *src) {
        size_t k = 0;
        for (; *src && k + 1 < n; src++)
                dst[k++] = (char) tolower((unsigned char) *src);
        dst[k] = '\0';
}

/* Every value of the generated Status enum has its name, lower-cased; STATUS_UNSPECIFIED drops the
 * prefix that proto3 style puts on the zero value ("unspecified", as docs/cli.md lists it). */
Test(protocol, status_names_follow_the_descriptor) {
        const ProtobufCEnumDescriptor *d = &emotion__v1__status__descriptor;
        cr_assert_geq(d->n_values, 11);
        for (unsigned i = 0; i < d->n_values; i++) {
                char want[64];
                const char *name = d->values[i].name;
                if (strncmp(name, "STATUS_", 7) == 0)
                        name += 7;
                lower(want, sizeof(want), name);
                cr_assert_str_eq(emo_status_name(d->values[i].value), want, "status %d (%s)", d->values[i].value,
                                 d->values[i].name);
        }
        cr_assert_str_eq(emo_status_name((int) d->n_values), "unknown");
        cr_assert_str_eq(emo_status_name(-1), "unknown");
        cr_assert_str_eq(emo_status_name(1000), "unknown");
}

Test(protocol, dialogue_kind_names_follow_the_descriptor) {
        const ProtobufCEnumDescriptor *d = &emotion__v1__dialogue__kind__descriptor;
        for (unsigned i = 0; i < d->n_values; i++) {
                char want[64];
                lower(want, sizeof(want), d->values[i].name);
                cr_assert_str_eq(emo_dialogue_kind_name(d->values[i].value), want);
        }
        cr_assert_str_eq(emo_dialogue_kind_name(3), "unknown");
        cr_assert_str_eq(emo_dialogue_kind_name(-1), "unknown");
}

/* An analyze request with every kind of field set. */
static uint8_t pixels[6] = { 1, 2, 3, 250, 251, 252 };

static void sample_request(emo_request_t *req, emo_analyze_request_t *a, emo_pb_image_t *im, emo_options_t *o,
                           emo_pb_box_t *b, emo_pb_box_t **bp) {
        emotion__v1__request__init(req);
        emotion__v1__analyze_request__init(a);
        emotion__v1__image__init(im);
        emotion__v1__options__init(o);
        emotion__v1__box__init(b);
        req->protocol_version = EMO_PROTOCOL_VERSION;
        req->request_id = 0x123456789abcULL;
        req->body_case = EMOTION__V1__REQUEST__BODY_ANALYZE;
        req->analyze = a;
        a->stream_id = "desk-3";
        a->sequence = 77;
        a->capture_time_us = -5;
        a->deadline_ms = 250;
        a->image = im;
        im->format = EMOTION__V1__IMAGE__FORMAT__GRAY8;
        im->data.data = pixels;
        im->data.len = sizeof(pixels);
        im->width = 3;
        im->height = 2;
        a->options = o;
        o->language = "en";
        o->max_faces = 4;
        o->include_probabilities = true;
        b->x = -3;
        b->y = 1;
        b->width = 2;
        b->height = 2;
        bp[0] = b;
        a->n_faces = 1;
        a->faces = bp;
        a->exact_crop = true;
}

Test(protocol, request_round_trip) {
        emo_request_t req;
        emo_analyze_request_t a;
        emo_pb_image_t im;
        emo_options_t o;
        emo_pb_box_t b, *bp[1];
        sample_request(&req, &a, &im, &o, &b, bp);
        zframe_t *f = emo_request_pack_frame(&req);
        cr_assert_not_null(f);
        emo_request_t *got = NULL;
        cr_assert_eq(emo_request_unpack(zframe_data(f), zframe_size(f), &got), 0);
        cr_assert_eq(got->protocol_version, 1);
        cr_assert_eq(got->request_id, 0x123456789abcULL);
        cr_assert_eq(got->body_case, EMOTION__V1__REQUEST__BODY_ANALYZE);
        cr_assert_str_eq(got->analyze->stream_id, "desk-3");
        cr_assert_eq(got->analyze->sequence, 77);
        cr_assert_eq(got->analyze->capture_time_us, -5);
        cr_assert_eq(got->analyze->deadline_ms, 250);
        cr_assert_eq(got->analyze->image->format, EMOTION__V1__IMAGE__FORMAT__GRAY8);
        cr_assert_eq(got->analyze->image->data.len, sizeof(pixels));
        cr_assert_arr_eq(got->analyze->image->data.data, pixels, sizeof(pixels));
        cr_assert_eq(got->analyze->image->width, 3);
        cr_assert_eq(got->analyze->image->height, 2);
        cr_assert_str_eq(got->analyze->options->language, "en");
        cr_assert_eq(got->analyze->options->max_faces, 4);
        cr_assert(got->analyze->options->include_probabilities);
        cr_assert_eq(got->analyze->n_faces, 1);
        cr_assert_eq(got->analyze->faces[0]->x, -3);
        cr_assert_eq(got->analyze->faces[0]->height, 2);
        cr_assert(got->analyze->exact_crop);
        emo_request_free(got);
        zframe_destroy(&f);
}

Test(protocol, reply_round_trip) {
        float probs[7] = { 0.1f, 0.0f, 0.0f, 0.7f, 0.1f, 0.05f, 0.05f };
        emo_pb_box_t box = EMOTION__V1__BOX__INIT;
        box.x = 10;
        box.width = 100;
        emo_pb_face_t face = EMOTION__V1__FACE__INIT, *faces[1] = { &face };
        face.box = &box;
        face.n_probabilities = 7;
        face.probabilities = probs;
        face.emotion = EMOTION__V1__EMOTION__HAPPY;
        face.confidence = 0.7f;
        face.emoji = "\xF0\x9F\x98\x84";
        emo_pb_dialogue_t dlg = EMOTION__V1__DIALOGUE__INIT;
        dlg.kind = EMOTION__V1__DIALOGUE__KIND__CONGRATULATION;
        dlg.text = "Bravo, quel beau sourire !";
        dlg.language = "fr";
        emo_analyze_reply_t ar = EMOTION__V1__ANALYZE_REPLY__INIT;
        ar.n_faces = 1;
        ar.faces = faces;
        ar.dialogue = &dlg;
        emo_reply_t reply = EMOTION__V1__REPLY__INIT;
        reply.protocol_version = EMO_PROTOCOL_VERSION;
        reply.request_id = 9;
        reply.status = EMO_STATUS_OK;
        reply.body_case = EMOTION__V1__REPLY__BODY_ANALYZE;
        reply.analyze = &ar;
        zframe_t *f = emo_reply_pack_frame(&reply);
        cr_assert_not_null(f);
        emo_reply_t *got = NULL;
        cr_assert_eq(emo_reply_unpack(zframe_data(f), zframe_size(f), &got), 0);
        cr_assert_eq(got->request_id, 9);
        cr_assert_eq(got->status, EMO_STATUS_OK);
        cr_assert_eq(got->analyze->n_faces, 1);
        cr_assert_eq(got->analyze->faces[0]->n_probabilities, 7);
        cr_assert_float_eq(got->analyze->faces[0]->probabilities[3], 0.7f, 1e-7);
        cr_assert_str_eq(got->analyze->faces[0]->emoji, "\xF0\x9F\x98\x84");
        cr_assert_str_eq(got->analyze->dialogue->text, "Bravo, quel beau sourire !");
        emo_reply_free(got);
        zframe_destroy(&f);
}

Test(protocol, truncated_bytes_are_eproto) {
        emo_request_t req;
        emo_analyze_request_t a;
        emo_pb_image_t im;
        emo_options_t o;
        emo_pb_box_t b, *bp[1];
        sample_request(&req, &a, &im, &o, &b, bp);
        zframe_t *f = emo_request_pack_frame(&req);
        size_t n = zframe_size(f);
        emo_request_t *got = (emo_request_t *) 0x1;
        /* Every cut inside the analyze submessage leaves its length pointing past the end. */
        for (size_t cut = n / 2; cut < n; cut++) {
                cr_assert_eq(emo_request_unpack(zframe_data(f), cut, &got), -EPROTO, "cut at %zu of %zu bytes", cut, n);
                cr_assert_eq(got, (emo_request_t *) 0x1, "*ret untouched on failure");
        }
        emo_reply_t *rgot = NULL;
        cr_assert_eq(emo_reply_unpack("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11, &rgot), -EPROTO);
        cr_assert_null(rgot);
        zframe_destroy(&f);
}

/* The head of a request (what a refusal needs) reads as the full decoding reads it, for an analyze
 * and a health request, without looking into the body: a body whose content is no message at all
 * still gives its request_id. A top level cut short or of the wrong wire type is -EPROTO. */
Test(protocol, request_head_without_decoding_the_body) {
        emo_request_t req;
        emo_analyze_request_t a;
        emo_pb_image_t im;
        emo_options_t o;
        emo_pb_box_t b, *bp[1];
        sample_request(&req, &a, &im, &o, &b, bp);
        zframe_t *f = emo_request_pack_frame(&req);
        emo_request_head_t h = { 0 };
        cr_assert_eq(emo_request_peek(zframe_data(f), zframe_size(f), &h), 0);
        cr_expect_eq(h.protocol_version, 1);
        cr_expect_eq(h.request_id, 0x123456789abcULL);
        cr_expect_eq(h.body_case, EMOTION__V1__REQUEST__BODY_ANALYZE);
        /* Every cut inside the analyze submessage leaves its length pointing past the end. */
        size_t n = zframe_size(f);
        for (size_t cut = n / 2; cut < n; cut++) {
                emo_request_head_t untouched = { 9, 9, 9 };
                cr_expect_eq(emo_request_peek(zframe_data(f), cut, &untouched), -EPROTO, "cut at %zu of %zu", cut, n);
                cr_expect_eq(untouched.request_id, 9, "outputs untouched on failure");
        }
        zframe_destroy(&f);

        emo_health_request_t hr = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t health = EMOTION__V1__REQUEST__INIT;
        health.protocol_version = 3;
        health.request_id = UINT64_MAX;
        health.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        health.health = &hr;
        f = emo_request_pack_frame(&health);
        cr_assert_eq(emo_request_peek(zframe_data(f), zframe_size(f), &h), 0);
        cr_expect_eq(h.protocol_version, 3);
        cr_expect_eq(h.request_id, UINT64_MAX);
        cr_expect_eq(h.body_case, EMOTION__V1__REQUEST__BODY_HEALTH);
        zframe_destroy(&f);

        /* version 1, id 300 (twice: the last counts, 7), an unknown fixed32 field 99, then an
         * analyze body of 16 bytes that decode to nothing: protobuf-c refuses the message. */
        uint8_t garbage[] = { 0x08, 0x01, 0x10, 0xac, 0x02, 0x10, 0x07, 0x9d, 0x06, 1, 2, 3, 4, 0x52, 16,
                              0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                              0xff };
        emo_request_t *got = NULL;
        cr_expect_eq(emo_request_unpack(garbage, sizeof(garbage), &got), -EPROTO);
        cr_assert_eq(emo_request_peek(garbage, sizeof(garbage), &h), 0);
        cr_expect_eq(h.protocol_version, 1);
        cr_expect_eq(h.request_id, 7);
        cr_expect_eq(h.body_case, EMOTION__V1__REQUEST__BODY_ANALYZE);
        /* The same with the garbage cut off: a body of 16 bytes with 15 there. */
        cr_expect_eq(emo_request_peek(garbage, sizeof(garbage) - 1, &h), -EPROTO);
        /* request_id as a length-delimited field (wire type 2): not the .proto's, refused. */
        static const uint8_t wrong_type[] = { 0x08, 0x01, 0x12, 0x01, 0x07 };
        cr_expect_eq(emo_request_peek(wrong_type, sizeof(wrong_type), &h), -EPROTO);
        /* A group (wire type 3) and a varint of 11 bytes. */
        static const uint8_t group[] = { 0x08, 0x01, 0x1b };
        cr_expect_eq(emo_request_peek(group, sizeof(group), &h), -EPROTO);
        static const uint8_t long_varint[] = { 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
        cr_expect_eq(emo_request_peek(long_varint, sizeof(long_varint), &h), -EPROTO);
        cr_expect_eq(emo_request_unpack(long_varint, sizeof(long_varint), &got), -EPROTO);
        /* An empty message is a request with nothing set, as protobuf-c reads it. */
        cr_assert_eq(emo_request_peek("", 0, &h), 0);
        cr_expect(h.protocol_version == 0 && h.request_id == 0 && h.body_case == EMOTION__V1__REQUEST__BODY__NOT_SET);
}

Test(protocol, error_frame) {
        zframe_t *f = emo_reply_error_frame(42, EMO_STATUS_DECODE_FAILED, "truncated JPEG");
        cr_assert_not_null(f);
        emo_reply_t *got = NULL;
        cr_assert_eq(emo_reply_unpack(zframe_data(f), zframe_size(f), &got), 0);
        cr_assert_eq(got->protocol_version, EMO_PROTOCOL_VERSION);
        cr_assert_eq(got->request_id, 42);
        cr_assert_eq(got->status, EMO_STATUS_DECODE_FAILED);
        cr_assert_str_eq(got->message, "truncated JPEG");
        cr_assert_eq(got->body_case, EMOTION__V1__REPLY__BODY__NOT_SET, "an error reply has no body");
        emo_reply_free(got);
        zframe_destroy(&f);

        f = emo_reply_error_frame(0, EMO_STATUS_INVALID_REQUEST, NULL);
        cr_assert_eq(emo_reply_unpack(zframe_data(f), zframe_size(f), &got), 0);
        cr_assert_eq(got->request_id, 0);
        cr_assert_eq(got->status, EMO_STATUS_INVALID_REQUEST);
        cr_assert_str_eq(got->message, "");
        emo_reply_free(got);
        zframe_destroy(&f);
}

/* A message cut by a fixed-size buffer in the middle of a character, or holding raw client bytes,
 * still goes out as valid UTF-8 (strict proto3 parsers reject a whole reply otherwise): each stray
 * byte becomes '?', whole characters are kept. */
Test(protocol, error_frame_message_is_valid_utf8) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "langue '\xc3\xa9t\xc3\xa9'", "langue '\xc3\xa9t\xc3\xa9'" }, /* whole: unchanged */
                { "cut \xc3", "cut ?" },                                             /* é cut in half */
                { "cut \xe2\x82", "cut ??" },                                       /* € cut after 2 of 3 */
                { "raw \xff\xfe x", "raw ?? x" },
                { "overlong \xc0\xaf", "overlong ??" },
                { "surrogate \xed\xa0\x80", "surrogate ???" },
                { "emoji \xf0\x9f\x98\x80 ok", "emoji \xf0\x9f\x98\x80 ok" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                zframe_t *f = emo_reply_error_frame(7, EMO_STATUS_INVALID_REQUEST, cases[i].in);
                cr_assert_not_null(f);
                emo_reply_t *got = NULL;
                cr_assert_eq(emo_reply_unpack(zframe_data(f), zframe_size(f), &got), 0);
                cr_assert_str_eq(got->message, cases[i].out, "case %zu", i);
                emo_reply_free(got);
                zframe_destroy(&f);
        }
}

Test(protocol, language_codes) {
        static const char *const good[] = { "fr", "en", "en-GB", "pt_BR", "es-419", "abcdefghijklmnop" };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                cr_assert(emo_language_valid(good[i]), "'%s' refused", good[i]);
        static const char *const bad[] = { "",      "fr FR", "fr\n", "fran\xc3\xa7" "ais", "abcdefghijklmnopq",
                                           "../fr", "fr.ini" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_not(emo_language_valid(bad[i]), "'%s' accepted", bad[i]);
}
