/* Under load: every request gets exactly one reply, however many clients pipeline how many requests;
 * a full queue answers OVERLOADED at once; an expired deadline answers DEADLINE_EXCEEDED. In memory:
 * a request the daemon accepts costs about what its pixels cost, whatever its face regions claim.
 * These tests are sensitive to timing or to the daemon's peak memory, so their CTest entries run
 * them one at a time. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "daemon.h"
#include "emo/labels.h"
#include "emo/util.h"

TestSuite(load, .timeout = 180);

/* Collect replies on c until `expected` came or timeout_ms passed without any, then wait
 * linger_ms more for duplicates. ids[i]: the id of request i; counts[i] how often it was answered;
 * statuses[i] its (last) status. Returns the number of replies that matched no request. */
static size_t collect(emo_client_t *c, const uint64_t *ids, size_t n, int *counts, int *statuses, size_t expected,
                      int timeout_ms, int linger_ms, emo_reply_t **keep) {
        size_t got = 0, strangers = 0;
        for (;;) {
                emo_reply_t *r = NULL;
                int e = emo_client_recv(c, got < expected ? timeout_ms : linger_ms, &r);
                if (e == -ETIMEDOUT)
                        break;
                cr_assert_eq(e, 0, "recv: %s", strerror(-e));
                size_t i = 0;
                while (i < n && ids[i] != r->request_id)
                        i++;
                if (i == n) {
                        strangers++;
                        emo_reply_free(r);
                        continue;
                }
                counts[i]++;
                statuses[i] = r->status;
                got++;
                if (keep && !keep[i])
                        keep[i] = r;
                else
                        emo_reply_free(r);
        }
        return strangers;
}

/* ---- 8 clients x 100 requests ------------------------------------------------------------------- */

#define CLIENTS 8
#define PER_CLIENT 100
#define WINDOW 4 /* in flight per client: 8 x 4 stays under the queue capacity of 64 */

typedef struct client_result {
        const char *endpoint;
        const uint8_t *face;
        int index;
        int answered_once, missing, duplicates, strangers, not_ok, wrong_echo;
        char first_problem[256];
} client_result_t;

static void *client_thread(void *arg) {
        client_result_t *res = arg;
        emo_client_t *c = NULL;
        if (emo_client_new(res->endpoint, &c) < 0) {
                snprintf(res->first_problem, sizeof(res->first_problem), "cannot create a client");
                return NULL;
        }
        char stream[32];
        snprintf(stream, sizeof(stream), "client-%d", res->index);
        uint64_t ids[PER_CLIENT];
        int counts[PER_CLIENT] = { 0 };
        size_t sent = 0, done = 0;
        while (done < PER_CLIENT) {
                while (sent < PER_CLIENT && sent - done < WINDOW) {
                        emo_test_req_t t;
                        emo_test_req_face48(&t, res->face);
                        t.options.include_probabilities = false;
                        t.analyze.stream_id = stream;
                        t.analyze.sequence = sent;
                        if (emo_client_send(c, &t.req, 5000, &ids[sent]) < 0)
                                break;
                        sent++;
                }
                emo_reply_t *r = NULL;
                if (emo_client_recv(c, 30000, &r) < 0)
                        break;
                size_t i = 0;
                while (i < sent && ids[i] != r->request_id)
                        i++;
                if (i == sent)
                        res->strangers++;
                else {
                        if (counts[i]++ == 0)
                                done++;
                        if (r->status != EMO_STATUS_OK) {
                                res->not_ok++;
                                if (!res->first_problem[0])
                                        snprintf(res->first_problem, sizeof(res->first_problem), "%s: %s",
                                                 emo_status_name(r->status), r->message);
                        } else if (strcmp(r->analyze->stream_id, stream) != 0 || r->analyze->sequence != i) {
                                /* Someone else's answer under our id. */
                                res->wrong_echo++;
                        }
                }
                emo_reply_free(r);
        }
        /* Late duplicates would arrive now. */
        emo_reply_t *r = NULL;
        while (emo_client_recv(c, 300, &r) == 0) {
                size_t i = 0;
                while (i < sent && ids[i] != r->request_id)
                        i++;
                if (i == sent)
                        res->strangers++;
                else
                        counts[i]++;
                emo_reply_free(r);
        }
        for (size_t i = 0; i < PER_CLIENT; i++) {
                if (i >= sent || counts[i] == 0)
                        res->missing++;
                else if (counts[i] == 1)
                        res->answered_once++;
                else
                        res->duplicates++;
        }
        emo_client_free(c);
        return NULL;
}

Test(load, concurrent_clients_get_exactly_one_reply_each) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        size_t np;
        const uint8_t *labels, *faces = emo_test_publictest(&np, &labels);
        pthread_t threads[CLIENTS];
        client_result_t res[CLIENTS];
        for (int k = 0; k < CLIENTS; k++) {
                res[k] = (client_result_t) { .endpoint = d.endpoint, .face = faces + (size_t) k * 48 * 48, .index = k };
                cr_assert_eq(pthread_create(&threads[k], NULL, client_thread, &res[k]), 0);
        }
        for (int k = 0; k < CLIENTS; k++)
                pthread_join(threads[k], NULL);
        for (int k = 0; k < CLIENTS; k++) {
                client_result_t *r = &res[k];
                cr_expect_eq(r->answered_once, PER_CLIENT,
                             "client %d: %d answered once, %d missing, %d answered twice or more, %d strange ids (%s)",
                             k, r->answered_once, r->missing, r->duplicates, r->strangers, r->first_problem);
                cr_expect_eq(r->strangers, 0, "client %d got %d replies to ids it never sent", k, r->strangers);
                cr_expect_eq(r->not_ok, 0, "client %d: %d replies not OK, first %s", k, r->not_ok, r->first_problem);
                cr_expect_eq(r->wrong_echo, 0, "client %d: %d replies echo another request's stream or sequence", k,
                             r->wrong_echo);
        }
        emo_reply_t *h = emo_test_health(d.endpoint);
        cr_expect_geq(h->health->requests_served, CLIENTS * PER_CLIENT);
        emo_reply_free(h);
        emo_test_daemon_stop(&d);
}

/* ---- overload and deadlines ---------------------------------------------------------------------- */

static void send_file(emo_client_t *c, const void *data, size_t len, uint32_t deadline_ms, uint64_t *ret_id) {
        emo_test_req_t t;
        emo_test_req_encoded(&t, data, len);
        t.analyze.deadline_ms = deadline_ms;
        cr_assert_eq(emo_client_send(c, &t.req, 5000, ret_id), 0);
}

/* One worker, room for two waiting: 40 photos pipelined at once overflow the queue. */
Test(load, full_queue_answers_overloaded) {
        static const char *const args[] = { "-w", "1", "--set", "queue_capacity=2", NULL };
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, args);
        emo_reply_t *h = emo_test_health(d.endpoint);
        cr_assert_eq(h->health->workers, 1);
        cr_assert_eq(h->health->queue_capacity, 2);
        emo_reply_free(h);
        size_t len;
        _cleanup_free_ void *data = emo_test_read_fixture("four_faces.jpg", &len);
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(d.endpoint, &c), 0);
        enum { N = 40 };
        uint64_t ids[N];
        int counts[N] = { 0 }, statuses[N] = { 0 };
        for (int i = 0; i < N; i++)
                send_file(c, data, len, 0, &ids[i]);
        size_t strangers = collect(c, ids, N, counts, statuses, N, 60000, 500, NULL);
        int ok = 0, overloaded = 0, other = 0, once = 0;
        for (int i = 0; i < N; i++) {
                once += counts[i] == 1;
                if (statuses[i] == EMO_STATUS_OK)
                        ok++;
                else if (statuses[i] == EMO_STATUS_OVERLOADED)
                        overloaded++;
                else
                        other++;
        }
        cr_expect_eq(once, N, "only %d of %d requests answered exactly once", once, N);
        cr_expect_eq(strangers, 0);
        cr_expect_eq(other, 0, "%d replies neither OK nor OVERLOADED", other);
        cr_expect_geq(overloaded, 1, "a queue of 2 behind 1 worker took %d requests at once without OVERLOADED", N);
        cr_expect_geq(ok, 3, "only %d OK: the worker and the 2 queue places should have served at least 3", ok);
        cr_expect_eq(ok + overloaded, N);
        cr_log_info("overload: %d OK, %d OVERLOADED of %d", ok, overloaded, N);
        emo_client_free(c);
        emo_test_daemon_stop(&d);
}

/* A full queue answers OVERLOADED from the request's top-level fields without decoding its body,
 * and still answers each request exactly once with its request_id. Pipelined on one connection
 * behind one worker and one queue place: photos, and analyze requests whose body holds no message
 * at all. A photo gets OK or OVERLOADED with its id. The broken request gets OVERLOADED with its id
 * while the queue is full (the refusal did not need the body: decoding it fails and loses the id)
 * and INVALID_REQUEST once there is room, when the daemon does decode it (id 0: "could not be
 * parsed"). A message that is broken at the top level is decoded, full queue or not. */
Test(load, full_queue_refuses_without_decoding_the_body) {
        static const char *const args[] = { "-w", "1", "--set", "queue_capacity=1", NULL };
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, args);
        size_t len;
        _cleanup_free_ void *photo = emo_test_read_fixture("four_faces.jpg", &len);
        zsock_t *s = zsock_new(ZMQ_DEALER);
        cr_assert(s);
        zsock_set_linger(s, 0);
        cr_assert(zsock_connect(s, "%s", d.endpoint) == 0);
        enum { N = 40, BASE = 1000 };
        for (uint64_t i = 0; i < N; i++) {
                uint64_t id = BASE + i;
                zmsg_t *msg = zmsg_new();
                if (i % 2 == 0) {
                        emo_test_req_t t;
                        emo_test_req_encoded(&t, photo, len);
                        t.req.protocol_version = EMO_PROTOCOL_VERSION; /* emo_client_send sets it */
                        t.req.request_id = id;
                        size_t n;
                        _cleanup_free_ uint8_t *buf = emo_test_pack(&t.req, &n);
                        zmsg_addmem(msg, buf, n);
                } else {
                        /* protocol_version 1, request_id (two varint bytes), analyze: 8 bytes of 0xff */
                        uint8_t broken[] = { 0x08, 0x01, 0x10, (uint8_t) (0x80 | (id & 0x7f)), (uint8_t) (id >> 7),
                                             0x52, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
                        zmsg_addmem(msg, broken, sizeof(broken));
                }
                cr_assert(zmsg_send(&msg, s) == 0);
        }
        int counts[N] = { 0 }, statuses[N] = { 0 }, invalid_without_id = 0, strangers = 0;
        for (int got = 0; got < N;) {
                zmq_pollitem_t item = { .socket = zsock_resolve(s), .events = ZMQ_POLLIN };
                cr_assert_eq(zmq_poll(&item, 1, 60000), 1, "%d of %d replies came", got, N);
                zmsg_t *m = zmsg_recv(s);
                zframe_t *body = zmsg_last(m);
                emo_reply_t *r = NULL;
                cr_assert_eq(emo_reply_unpack(zframe_data(body), zframe_size(body), &r), 0);
                if (r->request_id == 0 && r->status == EMO_STATUS_INVALID_REQUEST)
                        invalid_without_id++;
                else if (r->request_id >= BASE && r->request_id < BASE + N) {
                        counts[r->request_id - BASE]++;
                        statuses[r->request_id - BASE] = r->status;
                        if (r->status == EMO_STATUS_OVERLOADED)
                                cr_expect_not_null(strstr(r->message, "queue full"), "%s", r->message);
                } else
                        strangers++;
                emo_reply_free(r);
                zmsg_destroy(&m);
                got++;
        }
        int photos_ok = 0, broken_overloaded = 0, broken_with_id = 0;
        for (int i = 0; i < N; i++) {
                if (i % 2 == 0) {
                        cr_expect_eq(counts[i], 1, "photo %d answered %d times", i, counts[i]);
                        cr_expect(statuses[i] == EMO_STATUS_OK || statuses[i] == EMO_STATUS_OVERLOADED, "photo %d: %s", i,
                                  emo_status_name(statuses[i]));
                        photos_ok += statuses[i] == EMO_STATUS_OK;
                } else {
                        cr_expect_leq(counts[i], 1, "broken request %d answered %d times", i, counts[i]);
                        broken_with_id += counts[i];
                        broken_overloaded += counts[i] == 1 && statuses[i] == EMO_STATUS_OVERLOADED;
                        cr_expect(counts[i] == 0 || statuses[i] == EMO_STATUS_OVERLOADED, "broken request %d: %s", i,
                                  emo_status_name(statuses[i]));
                }
        }
        cr_expect_eq(strangers, 0);
        cr_expect_eq(broken_with_id + invalid_without_id, N / 2, "%d broken requests answered with their id, %d without",
                     broken_with_id, invalid_without_id);
        cr_expect_geq(photos_ok, 1);
        cr_expect_geq(broken_overloaded, 1, "no broken request was refused OVERLOADED behind a full queue");
        cr_log_info("full queue: %d photos OK, %d broken requests OVERLOADED, %d INVALID_REQUEST", photos_ok,
                    broken_overloaded, invalid_without_id);

        /* The queue is empty now: the same broken request is decoded and refused as broken. */
        uint8_t broken[] = { 0x08, 0x01, 0x10, 0x05, 0x52, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
        const void *frames[] = { broken };
        size_t lens[] = { sizeof(broken) };
        emo_reply_t *r = emo_test_raw(d.endpoint, frames, lens, 1, 10000, NULL);
        cr_expect_eq(r->status, EMO_STATUS_INVALID_REQUEST, "%s", emo_status_name(r->status));
        emo_reply_free(r);
        zsock_destroy(&s);
        emo_test_daemon_stop(&d);
}

/* With one worker busy on photos, requests with deadline_ms = 1 that wait behind them expire in the
 * queue; requests with a generous deadline do not. */
Test(load, expired_deadline_answers_deadline_exceeded) {
        static const char *const args[] = { "-w", "1", NULL };
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, args);
        size_t len;
        _cleanup_free_ void *data = emo_test_read_fixture("four_faces.jpg", &len);
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(d.endpoint, &c), 0);
        enum { SLOW = 3, RUSHED = 5, PATIENT = 2, N = SLOW + RUSHED + PATIENT };
        uint64_t ids[N];
        int counts[N] = { 0 }, statuses[N] = { 0 };
        int i = 0;
        for (int k = 0; k < SLOW; k++)
                send_file(c, data, len, 0, &ids[i++]);
        for (int k = 0; k < RUSHED; k++)
                send_file(c, data, len, 1, &ids[i++]);
        for (int k = 0; k < PATIENT; k++)
                send_file(c, data, len, 60000, &ids[i++]);
        size_t strangers = collect(c, ids, N, counts, statuses, N, 60000, 500, NULL);
        for (i = 0; i < N; i++)
                cr_expect_eq(counts[i], 1, "request %d answered %d times", i, counts[i]);
        cr_expect_eq(strangers, 0);
        for (i = 0; i < SLOW; i++)
                cr_expect_eq(statuses[i], EMO_STATUS_OK, "photo %d without deadline: %s", i, emo_status_name(statuses[i]));
        int expired = 0;
        for (i = SLOW; i < SLOW + RUSHED; i++) {
                cr_expect(statuses[i] == EMO_STATUS_DEADLINE_EXCEEDED || statuses[i] == EMO_STATUS_OK,
                          "request %d with deadline 1 ms: %s", i, emo_status_name(statuses[i]));
                expired += statuses[i] == EMO_STATUS_DEADLINE_EXCEEDED;
        }
        /* They wait behind three photos of several milliseconds each: all must have expired. */
        cr_expect_eq(expired, RUSHED, "only %d of %d requests with a 1 ms deadline expired behind %d photos", expired,
                     RUSHED, SLOW);
        for (i = SLOW + RUSHED; i < N; i++)
                cr_expect_eq(statuses[i], EMO_STATUS_OK, "request %d with a 60 s deadline: %s", i,
                             emo_status_name(statuses[i]));
        emo_client_free(c);
        emo_test_daemon_stop(&d);
}

/* A camera flooding the daemon does not starve another: with one worker, camera B's single frame,
 * sent after camera A's 20, is answered before most of A's. */
Test(load, fair_between_streams) {
        static const char *const args[] = { "-w", "1", NULL };
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, args);
        size_t len;
        _cleanup_free_ void *data = emo_test_read_fixture("four_faces.jpg", &len);
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(d.endpoint, &c), 0);
        enum { N = 21 };
        uint64_t ids[N];
        for (int i = 0; i < N; i++) {
                emo_test_req_t t;
                emo_test_req_encoded(&t, data, len);
                t.analyze.stream_id = i < N - 1 ? "camera-a" : "camera-b";
                cr_assert_eq(emo_client_send(c, &t.req, 5000, &ids[i]), 0);
        }
        int position = -1;
        for (int k = 0; k < N; k++) {
                emo_reply_t *r = NULL;
                cr_assert_eq(emo_client_recv(c, 60000, &r), 0, "reply %d of %d missing", k, N);
                cr_assert_eq(r->status, EMO_STATUS_OK, "%s", r->message);
                if (r->request_id == ids[N - 1])
                        position = k;
                emo_reply_free(r);
        }
        cr_assert_geq(position, 0, "camera-b's frame was never answered");
        cr_assert_leq(position, 3, "camera-b's frame came back as reply %d of %d, behind camera-a's burst", position + 1, N);
        emo_client_free(c);
        emo_test_daemon_stop(&d);
}

/* ---- memory ----------------------------------------------------------------------------------------- */

TestSuite(memory, .timeout = 180);

/* The peak resident size (VmHWM) of process pid so far, in KiB. */
static uint64_t peak_kib(pid_t pid) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "cannot read %s", path);
        unsigned long long kib = 0;
        bool found = false;
        while (!found && fgets(line, sizeof(line), f))
                found = sscanf(line, "VmHWM: %llu kB", &kib) == 1;
        fclose(f);
        cr_assert(found, "no VmHWM in %s", path);
        return kib;
}

/* Send req on a fresh client and return its reply, asserting that exactly one came. */
static emo_reply_t *call_once(const char *endpoint, emo_request_t *req, int timeout_ms) {
        emo_client_t *c = NULL;
        cr_assert_eq(emo_client_new(endpoint, &c), 0);
        uint64_t id;
        cr_assert_eq(emo_client_send(c, req, 5000, &id), 0);
        emo_reply_t *r = NULL, *extra = NULL;
        int e = emo_client_recv(c, timeout_ms, &r);
        cr_assert_eq(e, 0, "no reply within %d ms: %s", timeout_ms, strerror(-e));
        cr_assert_eq(r->request_id, id, "a reply to another request");
        e = emo_client_recv(c, 500, &extra);
        cr_assert_eq(e, -ETIMEDOUT, "a second reply came (%s)", extra ? emo_status_name(extra->status) : strerror(-e));
        emo_client_free(c);
        return r;
}

/* The TIFF tile bomb of issue 22: 198 bytes declaring a 64 x 64 image in one 16384 x 16368 tile,
 * for which OpenCV allocated and filled 1 GB (four at once: 4 GB). Refused IMAGE_TOO_LARGE naming
 * the tile fields, in both byte orders, and the daemon's peak memory does not move. */
Test(memory, tiff_tile_bomb_is_refused_before_allocation) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        for (int be = 0; be < 2; be++) {
                size_t len;
                _cleanup_free_ unsigned char *bomb = emo_test_tiff_tile_bomb(be, &len);
                cr_assert_eq(len, 198);
                emo_test_req_t t;
                emo_test_req_encoded(&t, bomb, len);
                uint64_t before = peak_kib(d.pid);
                emo_reply_t *r = call_once(d.endpoint, &t.req, 30000);
                uint64_t after = peak_kib(d.pid);
                cr_expect_eq(r->status, EMO_STATUS_IMAGE_TOO_LARGE, "%s: %s", emo_status_name(r->status), r->message);
                cr_expect_not_null(strstr(r->message, "TileWidth x TileLength"), "message: %s", r->message);
                cr_expect_lt(after - before, 50 * 1024, "the daemon's peak memory grew by %llu KiB",
                             (unsigned long long) (after - before));
                cr_log_info("tile bomb (%s): %s, peak memory +%llu KiB", be ? "MM" : "II", r->message,
                            (unsigned long long) (after - before));
                emo_reply_free(r);
        }
        emo_test_daemon_stop(&d);
}

/* A grey image of width x 1 pixels of value 128 with one exact-crop region {0, 0, side, side}. The
 * region reaches 4 times the image's length below and to the right of it, which the daemon takes
 * (a face at the edge), and pads by replicating the border: the model must see 48 x 48 pixels of
 * 128, so the answer is that for such a face. The first region's area, 48000^2, is over INT_MAX
 * (wrapping negative, it sent the region to be padded whole: 2.3 GB); the second's margin, two of
 * the model's pixels as rows of the image, was 20000 rows of 140000 pixels (2.8 GB). */
Test(memory, huge_region_of_a_thin_image_costs_its_pixels) {
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, NULL);
        static uint8_t grey[48 * 48];
        memset(grey, 128, sizeof(grey));
        emo_test_req_t t;
        emo_test_req_face48(&t, grey);
        emo_reply_t *r = call_once(d.endpoint, &t.req, 30000);
        cr_assert_eq(r->status, EMO_STATUS_OK, "%s: %s", emo_status_name(r->status), r->message);
        cr_assert(r->analyze->n_faces == 1 && r->analyze->faces[0]->n_probabilities == EMO_EMOTION_COUNT);
        float want[EMO_EMOTION_COUNT];
        memcpy(want, r->analyze->faces[0]->probabilities, sizeof(want));
        emo_reply_free(r);

        static const struct {
                unsigned width;
                int side;
        } cases[] = { { 12000, 48000 }, { 120000, 480000 } };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                unsigned w = cases[i].width;
                uint8_t *px = malloc(w);
                cr_assert_not_null(px);
                memset(px, 128, w);
                emo_test_req_face48(&t, px);
                t.image.width = w;
                t.image.height = 1;
                t.image.data.len = w;
                t.box[0].width = t.box[0].height = cases[i].side;
                uint64_t before = peak_kib(d.pid);
                r = call_once(d.endpoint, &t.req, 60000);
                uint64_t after = peak_kib(d.pid);
                cr_expect_eq(r->status, EMO_STATUS_OK, "%ux1 image, region %d: %s: %s", w, cases[i].side,
                             emo_status_name(r->status), r->message);
                if (r->status == EMO_STATUS_OK) {
                        cr_expect_eq(r->analyze->n_faces, 1);
                        const emo_pb_face_t *f = r->analyze->faces[0];
                        cr_expect_eq(f->box->width, cases[i].side, "the region comes back as given");
                        cr_expect_eq(f->n_probabilities, EMO_EMOTION_COUNT);
                        for (int k = 0; k < EMO_EMOTION_COUNT && f->n_probabilities == EMO_EMOTION_COUNT; k++)
                                cr_expect_float_eq(f->probabilities[k], want[k], 1e-5,
                                                   "%ux1 image, p[%d]: %g, %g for a 48x48 face of the same grey", w,
                                                   k, f->probabilities[k], want[k]);
                }
                cr_expect_lt(after - before, 512 * 1024,
                             "%ux1 image, region %d: the daemon's peak memory grew by %llu MiB", w, cases[i].side,
                             (unsigned long long) (after - before) / 1024);
                cr_log_info("%ux1 image, region %d: peak memory +%llu KiB", w, cases[i].side,
                            (unsigned long long) (after - before));
                emo_reply_free(r);
                free(px);
        }

        /* And it goes on serving faces. */
        size_t np;
        const uint8_t *labels, *faces = emo_test_publictest(&np, &labels);
        emo_test_req_face48(&t, faces);
        r = call_once(d.endpoint, &t.req, 30000);
        cr_expect_eq(r->status, EMO_STATUS_OK, "%s: %s", emo_status_name(r->status), r->message);
        emo_reply_free(r);
        emo_test_daemon_stop(&d);
}
