#include "emo/protocol.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emo/util.h"

const char *emo_status_name(int status) {
        /* Kept in step with the Status enum by tests/unit/test_protocol.c, which compares this
         * table against the generated descriptor. */
        static const char *const names[] = {
                [EMOTION__V1__STATUS__STATUS_UNSPECIFIED] = "unspecified",
                [EMO_STATUS_OK] = "ok",
                [EMO_STATUS_INVALID_REQUEST] = "invalid_request",
                [EMO_STATUS_UNSUPPORTED_VERSION] = "unsupported_version",
                [EMO_STATUS_UNSUPPORTED_FORMAT] = "unsupported_format",
                [EMO_STATUS_DECODE_FAILED] = "decode_failed",
                [EMO_STATUS_IMAGE_TOO_LARGE] = "image_too_large",
                [EMO_STATUS_OVERLOADED] = "overloaded",
                [EMO_STATUS_DEADLINE_EXCEEDED] = "deadline_exceeded",
                [EMO_STATUS_SHUTTING_DOWN] = "shutting_down",
                [EMO_STATUS_INTERNAL] = "internal",
        };
        if (status < 0 || (size_t) status >= sizeof(names) / sizeof(names[0]) || !names[status])
                return "unknown";
        return names[status];
}

const char *emo_dialogue_kind_name(int kind) {
        switch (kind) {
        case EMOTION__V1__DIALOGUE__KIND__NONE:
                return "none";
        case EMOTION__V1__DIALOGUE__KIND__QUESTION:
                return "question";
        case EMOTION__V1__DIALOGUE__KIND__CONGRATULATION:
                return "congratulation";
        default:
                return "unknown";
        }
}

/* protobuf-c allocates every decoded message, repeated element and unknown field on its own: an
 * empty Box costs 2 bytes on the wire and about 50 in memory, so a message of empty boxes would
 * expand 25 times. Decoding through this allocator stops at a budget instead. */
typedef struct budget {
        size_t used, limit;
        bool exceeded;
} budget_t;

static void *budget_alloc(void *data, size_t size) {
        budget_t *b = data;
        if (size > b->limit - b->used) {
                b->exceeded = true;
                return NULL;
        }
        b->used += size;
        return malloc(size);
}

static void budget_free(void *data, void *p) {
        (void) data;
        free(p);
}

int emo_request_unpack(const void *data, size_t len, emo_request_t **ret) {
        budget_t b = { .limit = len > (SIZE_MAX - EMO_UNPACK_SLACK) / 2 ? SIZE_MAX : 2 * len + EMO_UNPACK_SLACK };
        ProtobufCAllocator allocator = { .alloc = budget_alloc, .free = budget_free, .allocator_data = &b };
        emo_request_t *r = emotion__v1__request__unpack(&allocator, len, data);
        if (!r)
                return b.exceeded ? -E2BIG : -EPROTO;
        *ret = r;
        return 0;
}

/* A base-128 varint at *p (at most 10 bytes, as protobuf-c reads one); false when cut short. */
static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret) {
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
                uint8_t b = *(*p)++;
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return true;
                }
        }
        return false;
}

int emo_request_peek(const void *data, size_t len, emo_request_head_t *ret) {
        /* Field numbers of emotion.v1.Request (proto/emotion/v1/emotion.proto). */
        enum { PROTOCOL_VERSION = 1, REQUEST_ID = 2 };
        enum { VARINT = 0, FIXED64 = 1, LENGTH = 2, FIXED32 = 5 };
        const uint8_t *p = data, *end = p + len;
        emo_request_head_t h = { .body_case = EMOTION__V1__REQUEST__BODY__NOT_SET };
        while (p < end) {
                uint64_t key, v, skip;
                if (!read_varint(&p, end, &key) || key >> 3 == 0 || key >> 3 > UINT32_MAX)
                        return -EPROTO;
                uint64_t field = key >> 3;
                unsigned wire = (unsigned) (key & 7);
                bool body = field == EMOTION__V1__REQUEST__BODY_ANALYZE || field == EMOTION__V1__REQUEST__BODY_HEALTH;
                if ((field == PROTOCOL_VERSION || field == REQUEST_ID) && wire != VARINT)
                        return -EPROTO;
                if (body && wire != LENGTH)
                        return -EPROTO;
                switch (wire) {
                case VARINT:
                        if (!read_varint(&p, end, &v))
                                return -EPROTO;
                        if (field == PROTOCOL_VERSION)
                                h.protocol_version = (uint32_t) v; /* as protobuf-c: the low 32 bits */
                        else if (field == REQUEST_ID)
                                h.request_id = v;
                        continue;
                case FIXED64:
                        skip = 8;
                        break;
                case FIXED32:
                        skip = 4;
                        break;
                case LENGTH:
                        if (!read_varint(&p, end, &skip))
                                return -EPROTO;
                        if (body)
                                h.body_case = (Emotion__V1__Request__BodyCase) field;
                        break;
                default: /* groups (3, 4) and wire types protobuf does not define */
                        return -EPROTO;
                }
                if (skip > (uint64_t) (end - p))
                        return -EPROTO;
                p += skip;
        }
        *ret = h;
        return 0;
}

int emo_reply_unpack(const void *data, size_t len, emo_reply_t **ret) {
        emo_reply_t *r = emotion__v1__reply__unpack(NULL, len, data);
        if (!r)
                return -EPROTO;
        *ret = r;
        return 0;
}

emo_request_t *emo_request_free(emo_request_t *req) {
        if (req)
                emotion__v1__request__free_unpacked(req, NULL);
        return NULL;
}

emo_reply_t *emo_reply_free(emo_reply_t *reply) {
        if (reply)
                emotion__v1__reply__free_unpacked(reply, NULL);
        return NULL;
}

zframe_t *emo_request_pack_frame(const emo_request_t *req) {
        size_t n = emotion__v1__request__get_packed_size(req);
        zframe_t *f = zframe_new(NULL, n);
        if (f)
                emotion__v1__request__pack(req, zframe_data(f));
        return f;
}

zframe_t *emo_reply_pack_frame(const emo_reply_t *reply) {
        size_t n = emotion__v1__reply__get_packed_size(reply);
        zframe_t *f = zframe_new(NULL, n);
        if (f)
                emotion__v1__reply__pack(reply, zframe_data(f));
        return f;
}

/* The length of the well-formed UTF-8 character at s (RFC 3629: shortest form, no surrogates, at
 * most U+10FFFF), 0 when there is none; s is NUL-terminated. */
static size_t utf8_char(const unsigned char *s) {
        if (s[0] < 0x80)
                return 1;
        size_t n = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
                   : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                   : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                                  : 0;
        if (n == 0)
                return 0;
        uint32_t c = s[0] & (0x7f >> n);
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
                        return 0;
                c = c << 6 | (s[i] & 0x3f);
        }
        if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (n == 4 && (c < 0x10000 || c > 0x10ffff)))
                return 0;
        return n;
}

bool emo_utf8_valid(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        size_t n;
        while (*p && (n = utf8_char(p)))
                p += n;
        return !*p;
}

char *emo_utf8_repair(const char *s, const char *replacement) {
        size_t bad = 0, n;
        for (const unsigned char *p = (const unsigned char *) s; *p;)
                if ((n = utf8_char(p)))
                        p += n;
                else
                        bad++, p++;
        size_t rlen = strlen(replacement);
        char *out = malloc(strlen(s) + bad * rlen + 1), *q = out;
        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p;)
                if ((n = utf8_char(p))) {
                        memcpy(q, p, n);
                        q += n, p += n;
                } else {
                        memcpy(q, replacement, rlen);
                        q += rlen, p++;
                }
        *q = '\0';
        return out;
}

zframe_t *emo_reply_error_frame(uint64_t request_id, int status, const char *message) {
        emo_reply_t reply = EMOTION__V1__REPLY__INIT;
        reply.protocol_version = EMO_PROTOCOL_VERSION;
        reply.request_id = request_id;
        reply.status = status;
        reply.message = (char *) (message ? message : "");
        if (emo_utf8_valid(reply.message))
                return emo_reply_pack_frame(&reply);
        /* Not valid UTF-8: send a copy with '?' for each stray byte. */
        _cleanup_free_ char *copy = emo_utf8_repair(reply.message, "?");
        if (!copy)
                return NULL;
        reply.message = copy;
        return emo_reply_pack_frame(&reply);
}

bool emo_language_valid(const char *s) {
        size_t n = strlen(s);
        return n >= 1 && n <= EMO_LANGUAGE_MAX &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}
