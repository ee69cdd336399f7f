/* The wire contract (proto/emotion/v1/emotion.proto) against the real daemon: health, envelopes,
 * and every kind of bad input getting its status, its request_id, and leaving the daemon serving. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "emo/util.h"

static emo_test_daemon_t daemon_;

static void start(void) {
        emo_test_daemon_start(&daemon_, NULL);
}

static void stop(void) {
        emo_test_daemon_cleanup(&daemon_);
}

TestSuite(wire, .init = start, .fini = stop, .timeout = 60);

Test(wire, health) {
        emo_reply_t *r = emo_test_health(daemon_.endpoint);
        emo_health_reply_t *h = r->health;
        cr_assert_eq(r->protocol_version, EMO_PROTOCOL_VERSION);
        cr_assert_str_eq(h->version, PROJECT_VERSION_STRING);
        cr_assert_not_null(h->model);
        cr_assert_str_eq(h->model->name, emo_test_model_name());
        cr_assert_str_eq(h->model->sha256, emo_test_model_sha256());
        cr_assert_str_eq(h->detector, "yunet");
        cr_assert_str_eq(h->device, "cpu");
        cr_assert_eq(h->workers, 2);
        cr_assert_eq(h->queue_capacity, 64);
        cr_assert_eq(h->queue_depth, 0);
        cr_assert_eq(h->n_languages, 2);
        cr_assert_str_eq(h->languages[0], "en");
        cr_assert_str_eq(h->languages[1], "fr");
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

/* requests_served counts every reply, whatever its status. */
Test(wire, health_counts_replies) {
        emo_reply_t *r = emo_test_health(daemon_.endpoint);
        uint64_t before = r->health->requests_served;
        emo_reply_free(r);
        const void *frames[] = { "garbage" };
        size_t lens[] = { 7 };
        emo_reply_free(emo_test_raw(daemon_.endpoint, frames, lens, 1, 10000, NULL));
        r = emo_test_health(daemon_.endpoint);
        cr_assert_eq(r->health->requests_served, before + 2, "served %llu, expected %llu",
                     (unsigned long long) r->health->requests_served, (unsigned long long) before + 2);
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

/* A REQ-style envelope (empty delimiter, then the body) is answered in the same shape. */
Test(wire, delimiter_envelope_is_mirrored) {
        emo_health_request_t hr = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.protocol_version = EMO_PROTOCOL_VERSION;
        req.request_id = 31337;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &hr;
        size_t len;
        _cleanup_free_ uint8_t *body = emo_test_pack(&req, &len);
        const void *frames[] = { "", body };
        size_t lens[] = { 0, len };
        size_t n = 0;
        emo_reply_t *r = emo_test_raw(daemon_.endpoint, frames, lens, 2, 10000, &n);
        cr_assert_eq(n, 2, "reply has %zu frames, expected the delimiter and the body", n);
        cr_assert_eq(r->status, EMO_STATUS_OK);
        cr_assert_eq(r->request_id, 31337);
        emo_reply_free(r);

        /* Without the delimiter, one frame back. */
        r = emo_test_raw(daemon_.endpoint, (const void *[]) { body }, &len, 1, 10000, &n);
        cr_assert_eq(n, 1);
        cr_assert_eq(r->request_id, 31337);
        emo_reply_free(r);
        emo_test_daemon_stop(&daemon_);
}

/* A REQ socket (the simplest client a script can write) works too. */
Test(wire, req_socket_client) {
        zsock_t *s = zsock_new(ZMQ_REQ);
        zsock_set_linger(s, 0);
        cr_assert_eq(zsock_connect(s, "%s", daemon_.endpoint), 0);
        emo_health_request_t hr = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.protocol_version = EMO_PROTOCOL_VERSION;
        req.request_id = 5;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &hr;
        zframe_t *f = emo_request_pack_frame(&req);
        cr_assert_eq(zframe_send(&f, s, 0), 0);
        zsock_set_rcvtimeo(s, 10000);
        zframe_t *got = zframe_recv(s);
        cr_assert_not_null(got, "no reply on a REQ socket");
        emo_reply_t *r = NULL;
        cr_assert_eq(emo_reply_unpack(zframe_data(got), zframe_size(got), &r), 0);
        cr_assert_eq(r->request_id, 5);
        cr_assert_eq(r->status, EMO_STATUS_OK);
        emo_reply_free(r);
        zframe_destroy(&got);
        zsock_destroy(&s);
        emo_test_daemon_stop(&daemon_);
}

/* Whether s is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF),
 * as a strict proto3 parser checks every string field. */
static bool utf8_valid(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        while (*p) {
                unsigned n = *p < 0x80             ? 0
                             : (*p & 0xe0) == 0xc0 ? 1
                             : (*p & 0xf0) == 0xe0 ? 2
                             : (*p & 0xf8) == 0xf0 ? 3
                                                   : 9;
                if (n == 9 || (n == 1 && *p < 0xc2))
                        return false;
                uint32_t cp = n == 0 ? *p : *p & (0x3f >> n);
                for (unsigned i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i] & 0x3f);
                }
                if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
                    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
                        return false;
                p += n + 1;
        }
        return true;
}

/* A language is a short ASCII code (fr, en-GB). A long non-ASCII one gets one INVALID_REQUEST
 * whose message echoes at most a short prefix of it and is valid UTF-8: the daemon's message
 * buffer once cut an echoed "é" in half, and a strict client then rejected the whole reply. */
Test(wire, long_non_ascii_language) {
        static const size_t sizes[] = { 300, 600, 5000 };
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(daemon_.endpoint, &c), 0);
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                size_t len = sizes[k];
                _cleanup_free_ char *lang = malloc(len + 1);
                cr_assert_not_null(lang);
                for (size_t i = 0; i < len; i += 2)
                        memcpy(lang + i, "\xc3\xa9", 2); /* é */
                lang[len] = '\0';
                static uint8_t px[48 * 48];
                emo_test_req_t t;
                emo_test_req_face48(&t, px);
                t.options.language = lang;
                uint64_t id = 0;
                cr_assert_eq(emo_client_send(c, &t.req, 5000, &id), 0);
                emo_reply_t *r = NULL;
                cr_assert_eq(emo_client_recv(c, 20000, &r), 0, "%zu-byte language: no reply", len);
                cr_expect_eq(r->request_id, id);
                cr_expect_eq(r->status, EMO_STATUS_INVALID_REQUEST, "%zu-byte language: got %s (%s)", len,
                             emo_status_name(r->status), r->message);
                cr_expect(utf8_valid(r->message), "%zu-byte language: the reply's message is not valid UTF-8: %s", len,
                          r->message);
                cr_expect_leq(strlen(r->message), 200, "%zu-byte language: the message echoes %zu bytes: %s", len,
                              strlen(r->message), r->message);
                emo_reply_free(r);
                r = NULL;
                cr_expect_eq(emo_client_recv(c, 300, &r), -ETIMEDOUT, "%zu-byte language: a second reply came", len);
                emo_reply_free(r);
        }
        emo_client_free(c);
        emo_test_daemon_stop(&daemon_);
}

/* ---- bad input ----------------------------------------------------------------------------------- */

/* How a bad input is made: its frames, the status it must get, and the request_id it must come back
 * with (0 where the daemon cannot parse the request). */
typedef struct bad_input {
        const char *name;
        int status;
        /* Fills frames (at most 3) and returns how many; *ret_id: the id the reply must carry. */
        size_t (*make)(zframe_t **frames, uint64_t *ret_id);
        bool big_daemon_limit; /* start the daemon with --set max_message_bytes=100000 */
        const char *says;      /* NULL, or what the reply's message must contain */
} bad_input_t;

static zframe_t *pack(emo_request_t *req) {
        zframe_t *f = emo_request_pack_frame(req);
        cr_assert_not_null(f);
        return f;
}

static zframe_t *file_request(const char *fixture, uint64_t id) {
        size_t len;
        void *data = emo_test_read_fixture(fixture, &len);
        emo_test_req_t t;
        emo_test_req_encoded(&t, data, len);
        t.req.protocol_version = EMO_PROTOCOL_VERSION;
        t.req.request_id = id;
        zframe_t *f = pack(&t.req);
        free(data);
        return f;
}

static size_t random_bytes(zframe_t **fr, uint64_t *id) {
        size_t len;
        void *data = emo_test_read_fixture("random.bin", &len);
        emo_request_t *req = NULL;
        cr_assert_neq(emo_request_unpack(data, len, &req), 0, "test bug: random.bin parses as a Request");
        fr[0] = zframe_new(data, len);
        free(data);
        *id = 0;
        return 1;
}

static size_t truncated_protobuf(zframe_t **fr, uint64_t *id) {
        zframe_t *whole = file_request("one_face.jpg", 4242);
        fr[0] = zframe_new(zframe_data(whole), zframe_size(whole) / 2);
        zframe_destroy(&whole);
        *id = 0;
        return 1;
}

static size_t version_7(zframe_t **fr, uint64_t *id) {
        emo_health_request_t h = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.protocol_version = 7;
        req.request_id = *id = 707;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &h;
        fr[0] = pack(&req);
        return 1;
}

static size_t version_missing(zframe_t **fr, uint64_t *id) {
        emo_health_request_t h = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.request_id = *id = 808;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &h;
        fr[0] = pack(&req);
        return 1;
}

static size_t no_body(zframe_t **fr, uint64_t *id) {
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.protocol_version = EMO_PROTOCOL_VERSION;
        req.request_id = *id = 909;
        fr[0] = pack(&req);
        return 1;
}

static size_t analyze_without_image(zframe_t **fr, uint64_t *id) {
        emo_analyze_request_t a = EMOTION__V1__ANALYZE_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.protocol_version = EMO_PROTOCOL_VERSION;
        req.request_id = *id = 910;
        req.body_case = EMOTION__V1__REQUEST__BODY_ANALYZE;
        req.analyze = &a;
        fr[0] = pack(&req);
        return 1;
}

static size_t format_99(zframe_t **fr, uint64_t *id) {
        static uint8_t px[48 * 48];
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.image.format = 99; /* packs as the varint 99, as a newer client would send it */
        t.req.protocol_version = EMO_PROTOCOL_VERSION;
        t.req.request_id = *id = 99;
        fr[0] = pack(&t.req);
        return 1;
}

static size_t format_unspecified(zframe_t **fr, uint64_t *id) {
        static uint8_t px[48 * 48];
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.image.format = EMOTION__V1__IMAGE__FORMAT__FORMAT_UNSPECIFIED;
        t.req.protocol_version = EMO_PROTOCOL_VERSION;
        t.req.request_id = *id = 100;
        fr[0] = pack(&t.req);
        return 1;
}

static size_t text_file(zframe_t **fr, uint64_t *id) {
        fr[0] = file_request("text.txt", *id = 1001);
        return 1;
}

static size_t truncated_jpeg(zframe_t **fr, uint64_t *id) {
        fr[0] = file_request("truncated.jpg", *id = 1002);
        return 1;
}

static size_t huge_png(zframe_t **fr, uint64_t *id) {
        fr[0] = file_request("huge.png", *id = 1003);
        return 1;
}

static size_t gray8_wrong_size(zframe_t **fr, uint64_t *id) {
        static uint8_t px[48 * 48];
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.image.data.len = 48 * 47;
        t.req.protocol_version = EMO_PROTOCOL_VERSION;
        t.req.request_id = *id = 1004;
        fr[0] = pack(&t.req);
        return 1;
}

static size_t empty_message(zframe_t **fr, uint64_t *id) {
        fr[0] = zframe_new_empty();
        *id = 0;
        return 1;
}

static size_t three_frames(zframe_t **fr, uint64_t *id) {
        uint64_t ignored = 5;
        version_7(fr, &ignored);
        fr[1] = zframe_dup(fr[0]);
        fr[2] = zframe_dup(fr[0]);
        *id = 0;
        return 3;
}

static size_t two_frames_without_delimiter(zframe_t **fr, uint64_t *id) {
        uint64_t ignored = 5;
        version_7(fr, &ignored);
        fr[1] = zframe_dup(fr[0]);
        *id = 0;
        return 2;
}

static size_t region_outside(zframe_t **fr, uint64_t *id) {
        static uint8_t px[48 * 48];
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.box[0].x = 48; /* starts just right of the image */
        t.req.protocol_version = EMO_PROTOCOL_VERSION;
        t.req.request_id = *id = 1005;
        fr[0] = pack(&t.req);
        return 1;
}

static size_t region_empty(zframe_t **fr, uint64_t *id) {
        static uint8_t px[48 * 48];
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.box[0].width = 0;
        t.req.protocol_version = EMO_PROTOCOL_VERSION;
        t.req.request_id = *id = 1006;
        fr[0] = pack(&t.req);
        return 1;
}

/* 60000x60000 on a 48x48 image: 3.6 GB had the daemon padded it out before scaling. */
static size_t region_huge(zframe_t **fr, uint64_t *id) {
        static uint8_t px[48 * 48];
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.box[0].width = t.box[0].height = 60000;
        t.req.protocol_version = EMO_PROTOCOL_VERSION;
        t.req.request_id = *id = 1009;
        fr[0] = pack(&t.req);
        return 1;
}

/* Near INT32_MAX, where box arithmetic would overflow. */
static size_t region_int_max(zframe_t **fr, uint64_t *id) {
        static uint8_t px[48 * 48];
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.box[0].x = -2147483647;
        t.box[0].width = 2147483647;
        t.box[0].height = 48;
        t.req.protocol_version = EMO_PROTOCOL_VERSION;
        t.req.request_id = *id = 1010;
        fr[0] = pack(&t.req);
        return 1;
}

static size_t unknown_language(zframe_t **fr, uint64_t *id) {
        static uint8_t px[48 * 48];
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.options.language = "tlh";
        t.req.protocol_version = EMO_PROTOCOL_VERSION;
        t.req.request_id = *id = 1007;
        fr[0] = pack(&t.req);
        return 1;
}

static size_t stream_id_request(zframe_t **fr, uint64_t *id, uint64_t request_id, const char *stream_id) {
        static uint8_t px[48 * 48];
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.analyze.stream_id = (char *) stream_id;
        t.req.protocol_version = EMO_PROTOCOL_VERSION;
        t.req.request_id = *id = request_id;
        fr[0] = pack(&t.req);
        return 1;
}

static size_t stream_id_too_long(zframe_t **fr, uint64_t *id) {
        char sid[EMO_STREAM_ID_MAX + 2];
        memset(sid, 'c', sizeof(sid) - 1);
        sid[sizeof(sid) - 1] = '\0';
        return stream_id_request(fr, id, 1008, sid);
}

static size_t stream_id_not_utf8(zframe_t **fr, uint64_t *id) {
        return stream_id_request(fr, id, 1009, "camera-\xff\xfe-1"); /* would be echoed in the reply */
}

/* 150 kB against --set max_message_bytes=100000 (under twice the limit, where ZeroMQ would drop
 * the connection instead). */
static size_t over_message_limit(zframe_t **fr, uint64_t *id) {
        static uint8_t px[300 * 500];
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.image.width = 300;
        t.image.height = 500;
        t.image.data.len = sizeof(px);
        t.req.protocol_version = EMO_PROTOCOL_VERSION;
        t.req.request_id = 1008;
        fr[0] = pack(&t.req);
        *id = 1008; /* refused, with the id clients match replies by */
        return 1;
}

/* A valid Request whose AnalyzeRequest holds 400,000 empty face boxes: 800 kB on the wire, about
 * 20 MB decoded. Built by hand: tag 0x32 is field 6 (faces), length-delimited. */
static size_t many_empty_boxes(zframe_t **fr, uint64_t *id) {
        enum { N = 400000 };
        size_t inner = 2 * N, n = 0;
        uint8_t *buf = malloc(inner + 32);
        cr_assert_not_null(buf);
        buf[n++] = 0x08; /* protocol_version = 1 */
        buf[n++] = EMO_PROTOCOL_VERSION;
        buf[n++] = 0x52; /* field 10 (analyze), length-delimited */
        for (size_t v = inner; ; v >>= 7) { /* varint length */
                buf[n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                if (v <= 0x7f)
                        break;
        }
        for (size_t i = 0; i < N; i++) {
                buf[n++] = 0x32;
                buf[n++] = 0x00;
        }
        fr[0] = zframe_new(buf, n);
        free(buf);
        *id = 0; /* refused before the id is known */
        return 1;
}

static bad_input_t bad_inputs[] = {
        { "random bytes", EMO_STATUS_INVALID_REQUEST, random_bytes, false, NULL },
        { "truncated protobuf", EMO_STATUS_INVALID_REQUEST, truncated_protobuf, false, NULL },
        { "protocol_version 7", EMO_STATUS_UNSUPPORTED_VERSION, version_7, false, NULL },
        { "protocol_version missing", EMO_STATUS_INVALID_REQUEST, version_missing, false, NULL },
        { "neither analyze nor health", EMO_STATUS_INVALID_REQUEST, no_body, false, NULL },
        { "analyze without image", EMO_STATUS_INVALID_REQUEST, analyze_without_image, false, NULL },
        { "image format 99", EMO_STATUS_UNSUPPORTED_FORMAT, format_99, false, NULL },
        { "image format unspecified", EMO_STATUS_UNSUPPORTED_FORMAT, format_unspecified, false, NULL },
        { "text file as image", EMO_STATUS_DECODE_FAILED, text_file, false, NULL },
        { "truncated JPEG", EMO_STATUS_DECODE_FAILED, truncated_jpeg, false, NULL },
        { "PNG header of 100000x100000", EMO_STATUS_IMAGE_TOO_LARGE, huge_png, false, NULL },
        { "GRAY8 data of the wrong size", EMO_STATUS_INVALID_REQUEST, gray8_wrong_size, false, NULL },
        { "empty message", EMO_STATUS_INVALID_REQUEST, empty_message, false, NULL },
        { "3-frame message", EMO_STATUS_INVALID_REQUEST, three_frames, false, NULL },
        { "2 frames, first not empty", EMO_STATUS_INVALID_REQUEST, two_frames_without_delimiter, false, NULL },
        { "face region outside the image", EMO_STATUS_INVALID_REQUEST, region_outside, false, NULL },
        { "face region without area", EMO_STATUS_INVALID_REQUEST, region_empty, false, NULL },
        { "unknown language", EMO_STATUS_INVALID_REQUEST, unknown_language, false, NULL },
        { "stream_id over 256 bytes", EMO_STATUS_INVALID_REQUEST, stream_id_too_long, false, "stream_id of 257 bytes" },
        { "stream_id not UTF-8", EMO_STATUS_INVALID_REQUEST, stream_id_not_utf8, false, "not valid UTF-8" },
        { "face region 60000x60000 on a 48x48 image", EMO_STATUS_INVALID_REQUEST, region_huge, false, NULL },
        { "face region near INT32_MAX", EMO_STATUS_INVALID_REQUEST, region_int_max, false, NULL },
        { "message over max_message_bytes", EMO_STATUS_IMAGE_TOO_LARGE, over_message_limit, true, NULL },
        { "400,000 empty face boxes", EMO_STATUS_INVALID_REQUEST, many_empty_boxes, false, "decodes to more" },
};

#define N_BAD (sizeof(bad_inputs) / sizeof(bad_inputs[0]))

/* Criterion runs each test in a new process image, where pointers into ours mean nothing: the
 * parameter is an index into bad_inputs. */
ParameterizedTestParameters(bad_input, gets_its_status_and_daemon_keeps_serving) {
        static size_t indices[N_BAD];
        for (size_t i = 0; i < N_BAD; i++)
                indices[i] = i;
        return cr_make_param_array(size_t, indices, N_BAD);
}

ParameterizedTest(size_t *index, bad_input, gets_its_status_and_daemon_keeps_serving, .timeout = 60) {
        const bad_input_t *bad = &bad_inputs[*index];
        static const char *const limit[] = { "--set", "max_message_bytes=100000", NULL };
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, bad->big_daemon_limit ? limit : NULL);

        zframe_t *frames[3] = { 0 };
        uint64_t id = 0;
        size_t n = bad->make(frames, &id);
        const void *data[3];
        size_t lens[3];
        for (size_t i = 0; i < n; i++) {
                data[i] = zframe_data(frames[i]);
                lens[i] = zframe_size(frames[i]);
        }
        emo_reply_t *r = emo_test_raw(d.endpoint, data, lens, n, 20000, NULL);
        cr_expect_eq(r->status, bad->status, "%s: got %s (%s), expected %s", bad->name, emo_status_name(r->status),
                     r->message, emo_status_name(bad->status));
        cr_expect_eq(r->request_id, id, "%s: reply carries request_id %llu, expected %llu", bad->name,
                     (unsigned long long) r->request_id, (unsigned long long) id);
        cr_expect_eq(r->protocol_version, EMO_PROTOCOL_VERSION);
        cr_expect(r->message && r->message[0], "%s: no human-readable message", bad->name);
        if (bad->says)
                cr_expect(r->message && strstr(r->message, bad->says), "%s: the message \"%s\" does not say \"%s\"",
                          bad->name, r->message, bad->says);
        cr_expect_eq(r->body_case, EMOTION__V1__REPLY__BODY__NOT_SET, "%s: an error reply carries a body", bad->name);
        emo_reply_free(r);
        for (size_t i = 0; i < n; i++)
                zframe_destroy(&frames[i]);

        /* Still serving: health and a valid analyze are answered OK. */
        emo_reply_free(emo_test_health(d.endpoint));
        size_t len;
        void *face = emo_test_read_fixture("one_face.jpg", &len);
        emo_test_req_t t;
        emo_test_req_encoded(&t, face, len);
        r = emo_test_call(d.endpoint, &t.req, 20000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "after %s, a valid analyze got %s: %s", bad->name,
                     emo_status_name(r->status), r->message);
        emo_reply_free(r);
        free(face);
        emo_test_daemon_stop(&d);
}

/* The longest stream_id the daemon takes, multi-byte characters included, is echoed whole. */
Test(wire, stream_id_of_the_longest_length_is_echoed) {
        char sid[EMO_STREAM_ID_MAX + 1];
        for (size_t i = 0; i < EMO_STREAM_ID_MAX; i += 2)
                memcpy(sid + i, "\xc3\xa9", 2); /* é */
        sid[EMO_STREAM_ID_MAX] = '\0';
        static uint8_t px[48 * 48];
        emo_test_req_t t;
        emo_test_req_face48(&t, px);
        t.analyze.stream_id = sid;
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(daemon_.endpoint, &c), 0);
        uint64_t id = 0;
        cr_assert_eq(emo_client_send(c, &t.req, 5000, &id), 0);
        emo_reply_t *r = NULL;
        cr_assert_eq(emo_client_recv(c, 20000, &r), 0, "no reply");
        cr_expect_eq(r->request_id, id);
        cr_assert_eq(r->status, EMO_STATUS_OK, "got %s (%s)", emo_status_name(r->status), r->message);
        cr_assert_eq(r->body_case, EMOTION__V1__REPLY__BODY_ANALYZE);
        cr_expect_str_eq(r->analyze->stream_id, sid);
        emo_reply_free(r);
        emo_client_free(c);
        emo_test_daemon_stop(&daemon_);
}
