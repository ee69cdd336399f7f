/* Under load: every request gets exactly one reply, however many clients pipeline how many requests;
 * a full queue answers OVERLOADED at once; an expired deadline answers DEADLINE_EXCEEDED. These
 * tests are sensitive to timing, so their CTest entry runs them one at a time. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
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
