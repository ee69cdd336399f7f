/* Wire protocol helpers around the protobuf-c code generated from proto/emotion/v1/emotion.proto:
 * short names for the generated types and enums, and packing/unpacking with errno-style results.
 * The .proto file is the contract; this header only makes it pleasant to use from C. */
#pragma once

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emotion/v1/emotion.pb-c.h"

#define EMO_PROTOCOL_VERSION EMOTION__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1

/* The most frames a request may ask a stream to be smoothed over (Options.smooth_frames): the
 * daemon refuses more, and the clients check their option against it. */
#define EMO_SMOOTH_MAX_WINDOW 1000

typedef Emotion__V1__Request emo_request_t;
typedef Emotion__V1__AnalyzeRequest emo_analyze_request_t;
typedef Emotion__V1__HealthRequest emo_health_request_t;
typedef Emotion__V1__Image emo_pb_image_t;
typedef Emotion__V1__Box emo_pb_box_t;
typedef Emotion__V1__Options emo_options_t;
typedef Emotion__V1__Reply emo_reply_t;
typedef Emotion__V1__AnalyzeReply emo_analyze_reply_t;
typedef Emotion__V1__HealthReply emo_health_reply_t;
typedef Emotion__V1__Face emo_pb_face_t;
typedef Emotion__V1__Dialogue emo_pb_dialogue_t;
typedef Emotion__V1__Smoothed emo_pb_smoothed_t;
typedef Emotion__V1__Timings emo_timings_t;
typedef Emotion__V1__ModelInfo emo_model_info_t;

typedef Emotion__V1__Status emo_status_t;
#define EMO_STATUS_OK EMOTION__V1__STATUS__OK
#define EMO_STATUS_INVALID_REQUEST EMOTION__V1__STATUS__INVALID_REQUEST
#define EMO_STATUS_UNSUPPORTED_VERSION EMOTION__V1__STATUS__UNSUPPORTED_VERSION
#define EMO_STATUS_UNSUPPORTED_FORMAT EMOTION__V1__STATUS__UNSUPPORTED_FORMAT
#define EMO_STATUS_DECODE_FAILED EMOTION__V1__STATUS__DECODE_FAILED
#define EMO_STATUS_IMAGE_TOO_LARGE EMOTION__V1__STATUS__IMAGE_TOO_LARGE
#define EMO_STATUS_OVERLOADED EMOTION__V1__STATUS__OVERLOADED
#define EMO_STATUS_DEADLINE_EXCEEDED EMOTION__V1__STATUS__DEADLINE_EXCEEDED
#define EMO_STATUS_SHUTTING_DOWN EMOTION__V1__STATUS__SHUTTING_DOWN
#define EMO_STATUS_INTERNAL EMOTION__V1__STATUS__INTERNAL

/* Lower-case status name as scripts see it ("ok", "invalid_request"), "unknown" for a value this
 * build does not know. Static storage. */
const char *emo_status_name(int status);

/* Lower-case dialogue kind ("none", "question", "congratulation"), "unknown" otherwise. */
const char *emo_dialogue_kind_name(int kind);

/* Decode a Request/Reply from len bytes. On success *ret owns the message (free with
 * emo_request_free/emo_reply_free). -EPROTO when the bytes are not a valid message. A Request
 * may take at most 2 * len + EMO_UNPACK_SLACK bytes once decoded (its image bytes are copied
 * once); one that needs more, such as a message of millions of empty fields, is -E2BIG. */
#define EMO_UNPACK_SLACK (256 * 1024)
int emo_request_unpack(const void *data, size_t len, emo_request_t **ret);
int emo_reply_unpack(const void *data, size_t len, emo_reply_t **ret);
/* What a reply refusing a Request at once needs, read without decoding it: protocol_version,
 * request_id and which body is set, as emo_request_unpack gives them for a message it takes (the
 * last value of a field listed twice, the last body). Only the top-level fields are read; a body's content (an
 * image of megabytes) is skipped by its length, unread. -EPROTO when the top level is not well
 * formed (a field cut short or of a wire type other than the .proto's, a group): then only
 * emo_request_unpack can say what to answer. Outputs untouched on failure. */
typedef struct emo_request_head {
        uint32_t protocol_version;
        uint64_t request_id;
        Emotion__V1__Request__BodyCase body_case;
} emo_request_head_t;
int emo_request_peek(const void *data, size_t len, emo_request_head_t *ret);
/* Free an unpacked message (NULL is fine); NULL, for `r = emo_reply_free(r)`. */
emo_request_t *emo_request_free(emo_request_t *req);
emo_reply_t *emo_reply_free(emo_reply_t *reply);

/* Serialize into a new ZeroMQ frame; NULL on out-of-memory. */
zframe_t *emo_request_pack_frame(const emo_request_t *req);
zframe_t *emo_reply_pack_frame(const emo_reply_t *reply);

/* A complete error Reply (no body) as a frame: for every path that must answer without
 * processing. message is sent as valid UTF-8 whatever it holds (proto3 parsers that check
 * strings reject the whole reply otherwise): a byte that does not belong to a well-formed
 * character, such as the half of a character a fixed-size buffer cut off, becomes '?'. NULL on
 * out-of-memory. */
zframe_t *emo_reply_error_frame(uint64_t request_id, int status, const char *message);

/* Whether the NUL-terminated s is well-formed UTF-8 (RFC 3629: shortest forms, no surrogates, at
 * most U+10FFFF), as proto3 requires of a string field; protobuf-c does not check it. */
bool emo_utf8_valid(const char *s);

/* A copy of s in which every byte that does not belong to a well-formed UTF-8 character is
 * replaced by replacement (a string that is itself valid UTF-8, such as "\xef\xbf\xbd", U+FFFD).
 * NULL on out-of-memory. */
char *emo_utf8_repair(const char *s, const char *replacement);

/* The longest AnalyzeRequest.stream_id, in bytes. */
#define EMO_STREAM_ID_MAX 256

/* Whether s is a language code as the daemon accepts one in Options.language and its `language`
 * setting: 1 to EMO_LANGUAGE_MAX ASCII letters, digits, '-' and '_' (BCP 47 style: "fr",
 * "en-GB", "es-419"). Short and ASCII, so an error message can quote it whole. */
#define EMO_LANGUAGE_MAX 16
bool emo_language_valid(const char *s);
