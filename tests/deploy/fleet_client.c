/* Camera clients for the fleet check (scripts/fleet-check.sh): CLIENTS threads, each one camera
 * with its own connection and stream id, sending one JPEG as frames at FPS (the next frame once the
 * reply to the last has come, as `emotion watch --live` does; FPS 0: at once, so that every client
 * always has a request in flight, as fast as the daemons answer) through emo_client_call with
 * smoothing on, for SECONDS. Every frame must get its reply: a call that ends without one (every
 * attempt used) is a lost reply.
 *
 *   fleet_client ENDPOINT IMAGE CLIENTS SECONDS FPS
 *   (CURVE from $EMOTIOND_SERVER_KEY and $EMOTIOND_CERT, as every client takes it)
 *
 * Prints one line per client and a last line of totals, `key=value` separated by spaces:
 * replies (OK), non_ok (answered with another status), lost, longest_gap_ms (the longest time
 * between two consecutive replies of one client), recovery_ms (the gap that spans the moment of
 * SIGUSR1, which the script sends when it kills a daemon: how long the client went without a reply
 * across the failover; the longest over all clients in the totals), spanning_ms (the call that was
 * in progress at SIGUSR1, from its send to its reply, retries included: for a client whose daemon
 * was killed, the failover itself), rps. Exit
 * status 0 when it ran (the script judges the figures), 2 on a usage or setup error. */
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emo/client.h"
#include "emo/util.h"

/* A reply may wait behind the whole fleet's queue on a loaded machine: a short timeout would send
 * requests again while their first copies still wait, and feed the overload. A daemon that dies
 * is not waited for: emo_client_call resends as soon as the connection drops. */
#define CALL_TIMEOUT_MS 5000
#define CALL_ATTEMPTS 3

typedef struct camera {
        pthread_t thread;
        unsigned index;
        const char *endpoint;
        const uint8_t *jpeg;
        size_t jpeg_len;
        int64_t end_us, frame_us;
        uint64_t replies, non_ok, lost;
        int64_t longest_gap_us, gap_end_us; /* gap_end_us: when the longest gap ended */
        int64_t recovery_us;                /* the gap between replies that spans the event */
        int64_t spanning_us;                /* the call in progress at the event, send to reply */
        int error;                          /* a setup error or a handshake error, which ends it */
} camera_t;

static int64_t started_us;
static _Atomic int64_t event_us = INT64_MAX; /* when SIGUSR1 came */

static void on_event(int sig) {
        (void) sig;
        event_us = emo_now_us();
}

static void *camera_run(void *arg) {
        camera_t *cam = arg;
        emo_client_t *c = NULL;
        char name[32];
        snprintf(name, sizeof(name), "camera-%u", cam->index);
        _cleanup_free_ char *stream = emo_client_stream_id(name);
        int r = stream ? emo_client_new(cam->endpoint, &c) : -ENOMEM;
        if (r < 0) {
                cam->error = r;
                return NULL;
        }
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        emo_analyze_request_t analyze = EMOTION__V1__ANALYZE_REQUEST__INIT;
        emo_pb_image_t image = EMOTION__V1__IMAGE__INIT;
        emo_options_t options = EMOTION__V1__OPTIONS__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_ANALYZE;
        req.analyze = &analyze;
        analyze.image = &image;
        analyze.options = &options;
        analyze.stream_id = stream;
        options.smooth_frames = 5;
        image.format = EMOTION__V1__IMAGE__FORMAT__ENCODED;
        image.data.data = (uint8_t *) cam->jpeg;
        image.data.len = cam->jpeg_len;

        int64_t last_us = emo_now_us(), next_us = last_us;
        for (uint64_t seq = 1;; seq++) {
                int64_t now = emo_now_us();
                if (now >= cam->end_us)
                        break;
                if (next_us > now) {
                        struct timespec ts = { .tv_sec = (next_us - now) / 1000000, .tv_nsec = (next_us - now) % 1000000 * 1000 };
                        nanosleep(&ts, NULL);
                }
                next_us += cam->frame_us;
                analyze.sequence = seq;
                emo_reply_t *reply = NULL;
                int64_t call_us = emo_now_us();
                r = emo_client_call(c, &req, CALL_TIMEOUT_MS, CALL_ATTEMPTS, &reply);
                now = emo_now_us();
                if (r == -ETIMEDOUT) {
                        cam->lost++;
                        fprintf(stderr, "camera %u: frame %llu got no reply (%d attempts of %d ms) at %.1f s\n",
                                cam->index, (unsigned long long) seq, CALL_ATTEMPTS, CALL_TIMEOUT_MS,
                                (now - started_us) / 1e6);
                        continue;
                }
                if (r < 0) {
                        cam->lost++;
                        cam->error = r;
                        fprintf(stderr, "camera %u: %s at %.1f s\n", cam->index, emo_client_strerror(r),
                                (now - started_us) / 1e6);
                        break;
                }
                if (reply->status == EMO_STATUS_OK)
                        cam->replies++;
                else
                        cam->non_ok++;
                emo_reply_free(reply);
                int64_t event = event_us;
                if (last_us <= event && now > event)
                        cam->recovery_us = now - last_us;
                if (call_us <= event && now > event)
                        cam->spanning_us = now - call_us;
                if (now - last_us > cam->longest_gap_us) {
                        cam->longest_gap_us = now - last_us;
                        cam->gap_end_us = now;
                }
                last_us = now;
                if (next_us < now - cam->frame_us)
                        next_us = now; /* late: the newest frame, no backlog (a live camera) */
        }
        /* The time since the last reply counts too: a client still waiting at the end has a gap. */
        if (!cam->error && last_us <= event_us && cam->end_us > event_us)
                cam->recovery_us = cam->end_us - last_us;
        if (!cam->error && cam->end_us - last_us > cam->longest_gap_us) {
                cam->longest_gap_us = cam->end_us - last_us;
                cam->gap_end_us = cam->end_us;
        }
        emo_client_free(c);
        return NULL;
}

int main(int argc, char **argv) {
        if (argc != 6) {
                fprintf(stderr, "usage: %s ENDPOINT IMAGE CLIENTS SECONDS FPS\n", argv[0]);
                return 2;
        }
        unsigned n = (unsigned) atoi(argv[3]);
        double seconds = atof(argv[4]), fps = atof(argv[5]);
        signal(SIGUSR1, on_event);
        FILE *f = fopen(argv[2], "rb");
        if (!f || n == 0 || n > 256 || seconds <= 0 || fps < 0) {
                fprintf(stderr, "%s: bad arguments (%s)\n", argv[0], f ? "numbers" : strerror(errno));
                return 2;
        }
        static uint8_t jpeg[4 << 20];
        size_t len = fread(jpeg, 1, sizeof(jpeg), f);
        fclose(f);
        camera_t *cams = calloc(n, sizeof(*cams));
        if (!cams || len == 0)
                return 2;
        /* CZMQ's global state is set up by the first socket; not by 16 threads at once. */
        zsys_init();
        started_us = emo_now_us();
        for (unsigned i = 0; i < n; i++) {
                cams[i] = (camera_t) { .index = i, .endpoint = argv[1], .jpeg = jpeg, .jpeg_len = len, .end_us = started_us + (int64_t) (seconds * 1e6), .frame_us = fps > 0 ? (int64_t) (1e6 / fps) : 0 };
                if (pthread_create(&cams[i].thread, NULL, camera_run, &cams[i]) != 0)
                        return 2;
        }
        uint64_t replies = 0, non_ok = 0, lost = 0;
        int64_t longest = 0, recovery = 0, spanning = 0;
        int errors = 0;
        for (unsigned i = 0; i < n; i++) {
                pthread_join(cams[i].thread, NULL);
                camera_t *c = &cams[i];
                printf("client=%u replies=%llu non_ok=%llu lost=%llu recovery_ms=%.0f spanning_ms=%.0f "
                       "longest_gap_ms=%.0f gap_ended_s=%.1f%s%s\n",
                       i, (unsigned long long) c->replies,
                       (unsigned long long) c->non_ok, (unsigned long long) c->lost, c->recovery_us / 1e3,
                       c->spanning_us / 1e3, c->longest_gap_us / 1e3,
                       (c->gap_end_us - started_us) / 1e6, c->error ? " error=" : "",
                       c->error ? emo_client_strerror(c->error) : "");
                replies += c->replies;
                non_ok += c->non_ok;
                lost += c->lost;
                errors += c->error != 0;
                if (c->longest_gap_us > longest)
                        longest = c->longest_gap_us;
                if (c->recovery_us > recovery)
                        recovery = c->recovery_us;
                if (c->spanning_us > spanning)
                        spanning = c->spanning_us;
        }
        double elapsed = (emo_now_us() - started_us) / 1e6;
        printf("total clients=%u replies=%llu non_ok=%llu lost=%llu errors=%d recovery_ms=%.0f spanning_ms=%.0f "
               "longest_gap_ms=%.0f rps=%.1f\n",
               n, (unsigned long long) replies, (unsigned long long) non_ok,
               (unsigned long long) lost, errors, recovery / 1e3, spanning / 1e3, longest / 1e3, replies / elapsed);
        free(cams);
        return 0;
}
