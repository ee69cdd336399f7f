/* A real emotiond as a child process on a private ipc:// endpoint, programs run to completion
 * with a time limit, and helpers to build requests and to send raw bytes. Nothing is mocked: the
 * tests talk to the daemon and the CLI the build produced. Every function asserts (Criterion)
 * instead of returning errors: a fixture that cannot do its job fails the test and says why. */
#pragma once

#include <sys/types.h>

#include "emo/client.h"
#include "emo/protocol.h"
#include "fixtures.h"

/* 1 when this build runs under AddressSanitizer (EMO_SANITIZE, EMO_FUZZ). The daemon and CLI the
 * tests start are built the same way, so a test that measures their memory sees ASan's own too. */
#if defined(__SANITIZE_ADDRESS__)
#define EMO_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMO_TEST_ASAN 1
#endif
#endif
#ifndef EMO_TEST_ASAN
#define EMO_TEST_ASAN 0
#endif

/* ---- processes -------------------------------------------------------------------------------- */

typedef struct emo_test_run {
        int status;     /* exit code; 128 + signal when killed by one; -1 when it ran past the limit */
        char *out, *err; /* everything written to stdout and stderr, NUL-terminated */
        double seconds; /* wall time */
} emo_test_run_t;

/* Run argv (argv[0] a path) with stdin from /dev/null, wait at most timeout_ms, then SIGKILL it.
 * extra_env: NULL or NULL-terminated "NAME=value" entries added to the environment. */
void emo_test_run(const char *const *argv, const char *const *extra_env, int timeout_ms, emo_test_run_t *ret);
void emo_test_run_done(emo_test_run_t *r);

/* Run `emotion --server ENDPOINT ARGS...` (args NULL-terminated) with $EMOTIOND_ENDPOINT empty, at
 * most timeout_ms; asserts that it finished in time. */
void emo_test_emotion_run(const char *endpoint, const char *const *args, int timeout_ms, emo_test_run_t *ret);

typedef struct emo_test_daemon {
        pid_t pid;         /* 0 when not running */
        char dir[64];      /* private folder (mkdtemp): socket and stderr log */
        char endpoint[128];
        char log[128];     /* the daemon's stderr */
} emo_test_daemon_t;

/* Start emotiond on ipc://<dir>/emotiond.sock with --model EMO_TEST_MODEL, --detector yunet
 * --yunet-model EMO_TEST_YUNET, --dialogue-dir <source>/deploy/dialogue, --device cpu, -w 2 and
 * the NULL-terminated extra arguments (NULL for none; a later -w wins), and wait until a health
 * request is answered (at most 30 s). Fails the test with the daemon's stderr when it exits or
 * does not answer. The daemon is killed when the test process dies. */
void emo_test_daemon_start(emo_test_daemon_t *d, const char *const *extra);

/* SIGTERM, wait at most 30 s and assert that the daemon exited with status 0. */
void emo_test_daemon_stop(emo_test_daemon_t *d);

/* Send SIGTERM only (for drain tests), and wait for the exit, returning the exit status as
 * emo_test_run's status (-1: still running after timeout_ms, then killed). */
void emo_test_daemon_signal(emo_test_daemon_t *d, int sig);
int emo_test_daemon_wait(emo_test_daemon_t *d, int timeout_ms);

/* SIGKILL if still running and remove the folder; for .fini and error paths. Idempotent. */
void emo_test_daemon_cleanup(emo_test_daemon_t *d);

/* The daemon's stderr so far (malloc'd). */
char *emo_test_daemon_log(const emo_test_daemon_t *d);

/* A TCP port on 127.0.0.1 that nobody uses now (the kernel's pick, released again): for a daemon
 * on tcp://, or for an endpoint where nothing listens. */
unsigned emo_test_free_port(void);

/* ---- requests --------------------------------------------------------------------------------- */

/* An AnalyzeRequest with all its parts in one place, ready for emo_client_send. */
typedef struct emo_test_req {
        emo_request_t req;
        emo_analyze_request_t analyze;
        emo_pb_image_t image;
        emo_options_t options;
        emo_pb_box_t box[4];
        emo_pb_box_t *boxes[4];
} emo_test_req_t;

/* An ENCODED image (data not copied), with include_probabilities. */
void emo_test_req_encoded(emo_test_req_t *t, const void *data, size_t len);

/* A 48x48 GRAY8 face as one client region {0,0,48,48} with exact_crop, the FER2013 way, with
 * include_probabilities. */
void emo_test_req_face48(emo_test_req_t *t, const uint8_t *pixels);

/* Send req on a fresh client and wait for its reply (at most timeout_ms, one attempt); asserts a
 * reply came. */
emo_reply_t *emo_test_call(const char *endpoint, emo_request_t *req, int timeout_ms);

/* A HealthRequest; asserts an OK reply with a health body. */
emo_reply_t *emo_test_health(const char *endpoint);

/* One HealthRequest on a fresh client, one attempt of at most timeout_ms: the OK reply with its
 * health body, or NULL when none came in time or it was not OK (a daemon still starting, or busy
 * refusing connections). Asserts nothing about the daemon; the caller decides. */
emo_reply_t *emo_test_try_health(const char *endpoint, int timeout_ms);

/* Send one ZeroMQ message of n frames from a fresh DEALER socket and wait for the one reply (at
 * most timeout_ms). Asserts it came and unpacks the last frame; *ret_frames: how many frames the
 * reply had (NULL: not wanted). */
emo_reply_t *emo_test_raw(const char *endpoint, const void *const *frames, const size_t *lens, size_t n, int timeout_ms,
                          size_t *ret_frames);

/* Pack req into a malloc'd buffer; *ret_len its size. */
uint8_t *emo_test_pack(const emo_request_t *req, size_t *ret_len);
