/* Stream ids: the daemon keeps smoothing state per stream id, so two clients watching the same
 * source must not share one unless the user says so (--stream). */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <string.h>

#include "daemon.h"
#include "emo/client.h"
#include "emo/protocol.h"
#include "emo/util.h"

TestSuite(stream_id, .timeout = 180);

Test(stream_id, unique_per_client_and_bounded) {
        _cleanup_free_ char *a = emo_client_stream_id("/dev/video0");
        _cleanup_free_ char *b = emo_client_stream_id("/dev/video0");
        cr_assert(a && b);
        cr_expect_str_neq(a, b, "two clients of one source got the same stream id %s", a);
        cr_expect(strncmp(a, "/dev/video0#", 12) == 0 && strlen(a) == 20, "%s", a);
        /* A name at the limit is cut on a character boundary so that the id still fits. */
        char longname[EMO_STREAM_ID_MAX + 1];
        memset(longname, 'x', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        memcpy(longname + EMO_STREAM_ID_MAX - 10, "\xc3\xa9", 2); /* é across the cut */
        _cleanup_free_ char *c = emo_client_stream_id(longname);
        cr_assert_not_null(c);
        cr_expect_leq(strlen(c), EMO_STREAM_ID_MAX);
        cr_expect(emo_utf8_valid(c), "the cut id is not UTF-8: %s", c);
}

/* How many smoothed streams the daemon follows now (HealthReply.smoothed_streams). */
static unsigned smoothed_streams(const char *endpoint) {
        emo_reply_t *h = emo_test_health(endpoint);
        unsigned n = h->health->smoothed_streams;
        emo_reply_free(h);
        return n;
}

static void watch(const char *endpoint, const char *video, const char *stream) {
        const char *argv[16] = { emo_test_emotion(), "--server", endpoint, "watch", "--json", "--smooth", "2",
                                 "--max-frames", "3" };
        size_t n = 9;
        if (stream) {
                argv[n++] = "--stream";
                argv[n++] = stream;
        }
        argv[n++] = video;
        argv[n] = NULL;
        emo_test_run_t r;
        emo_test_run(argv, (const char *const[]) { "EMOTIOND_ENDPOINT=", NULL }, 60000, &r);
        cr_assert_eq(r.status, 0, "emotion watch exited %d: %s", r.status, r.err);
        emo_test_run_done(&r);
}

/* Two runs of `emotion watch` on the same file are two streams to the daemon; the same --stream
 * twice is one. (Within EMO_STREAM_IDLE_US, 10 s, both count as active.) */
Test(stream_id, two_watchers_of_one_source_do_not_share_smoothing) {
        _cleanup_free_ char *video = emo_test_fixture("video.avi");
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        cr_assert_eq(smoothed_streams(d.endpoint), 0);
        watch(d.endpoint, video, NULL);
        watch(d.endpoint, video, NULL);
        cr_expect_eq(smoothed_streams(d.endpoint), 2, "two watchers of %s should be two streams", video);
        watch(d.endpoint, video, "shared-by-choice");
        watch(d.endpoint, video, "shared-by-choice");
        cr_expect_eq(smoothed_streams(d.endpoint), 3, "the same --stream twice should be one stream");
        emo_test_daemon_stop(&d);
}
