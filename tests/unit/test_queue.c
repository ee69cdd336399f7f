/* The daemon's job queue: bounded (so a flood gets OVERLOADED instead of growing the daemon) and
 * fair (a camera sending a burst does not starve the others). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "queue.h"

#define JOB(key, i) ((void *) (uintptr_t) ((key) * 1000 + (i) + 1))

Test(queue, bounded) {
        emo_queue_t *q = emo_queue_new(3);
        cr_assert_not_null(q);
        cr_assert_eq(emo_queue_capacity(q), 3);
        cr_assert_eq(emo_queue_size(q), 0);
        cr_assert_null(emo_queue_pop(q), "empty queue pops NULL");
        cr_assert_eq(emo_queue_push(q, "a", JOB(0, 0)), 0);
        cr_assert_eq(emo_queue_push(q, "b", JOB(1, 0)), 0);
        cr_assert_eq(emo_queue_push(q, "a", JOB(0, 1)), 0);
        cr_assert_eq(emo_queue_size(q), 3);
        cr_assert_eq(emo_queue_push(q, "a", JOB(0, 2)), -ENOBUFS);
        cr_assert_eq(emo_queue_push(q, "c", JOB(2, 0)), -ENOBUFS, "a new key does not get around the bound");
        cr_assert_eq(emo_queue_size(q), 3, "a refused push leaves the queue as it was");
        cr_assert_not_null(emo_queue_pop(q));
        cr_assert_eq(emo_queue_push(q, "c", JOB(2, 0)), 0, "room again after a pop");
        cr_assert_eq(emo_queue_push(q, "c", JOB(2, 1)), -ENOBUFS);
        int n = 0;
        while (emo_queue_pop(q))
                n++;
        cr_assert_eq(n, 3);
        cr_assert_eq(emo_queue_size(q), 0);
        emo_queue_free(q);
}

/* Camera A sends a burst of 50 frames, then camera B sends 2: B's frames come out among the first
 * four pops instead of after A's 50. */
Test(queue, round_robin_across_keys) {
        emo_queue_t *q = emo_queue_new(100);
        for (int i = 0; i < 50; i++)
                cr_assert_eq(emo_queue_push(q, "camera-a", JOB(0, i)), 0);
        cr_assert_eq(emo_queue_push(q, "camera-b", JOB(1, 0)), 0);
        cr_assert_eq(emo_queue_push(q, "camera-b", JOB(1, 1)), 0);
        int b_seen = 0;
        for (int k = 0; k < 4; k++) {
                uintptr_t j = (uintptr_t) emo_queue_pop(q);
                cr_assert_neq(j, 0);
                if (j > 1000)
                        b_seen++;
        }
        cr_assert_eq(b_seen, 2, "only %d of camera-b's 2 jobs in the first 4 pops", b_seen);
        /* The rest is camera A's, in order. */
        int expect = 2;
        void *j;
        while ((j = emo_queue_pop(q))) {
                cr_assert_eq(j, JOB(0, expect), "camera-a job %d out of order", expect);
                expect++;
        }
        cr_assert_eq(expect, 50);
        emo_queue_free(q);
}

Test(queue, fifo_within_a_key_and_keys_alternate) {
        emo_queue_t *q = emo_queue_new(64);
        static const char *const keys[] = { "a", "b", "c" };
        for (int i = 0; i < 10; i++)
                for (int k = 0; k < 3; k++)
                        if (k != 2 || i < 3) /* c has only 3 jobs */
                                cr_assert_eq(emo_queue_push(q, keys[k], JOB(k, i)), 0);
        int next[3] = { 0, 0, 0 }, last_key = -1, total = 0;
        void *j;
        while ((j = emo_queue_pop(q))) {
                int k = (int) (((uintptr_t) j - 1) / 1000), i = (int) (((uintptr_t) j - 1) % 1000);
                cr_assert_eq(i, next[k], "key %s: job %d came before job %d", keys[k], i, next[k]);
                next[k]++;
                /* While more than one key has work, the same key is never served twice in a row. */
                bool others_waiting = false;
                for (int o = 0; o < 3; o++)
                        others_waiting |= o != k && next[o] < (o == 2 ? 3 : 10);
                if (others_waiting)
                        cr_assert_neq(k, last_key, "key %s served twice in a row while others wait", keys[k]);
                last_key = k;
                total++;
        }
        cr_assert_eq(total, 23);
        emo_queue_free(q);
}

/* A key whose jobs all left, then comes back, is served again. */
Test(queue, key_returns_after_emptying) {
        emo_queue_t *q = emo_queue_new(8);
        cr_assert_eq(emo_queue_push(q, "a", JOB(0, 0)), 0);
        cr_assert_eq(emo_queue_pop(q), JOB(0, 0));
        cr_assert_null(emo_queue_pop(q));
        cr_assert_eq(emo_queue_push(q, "a", JOB(0, 1)), 0);
        cr_assert_eq(emo_queue_push(q, "b", JOB(1, 0)), 0);
        cr_assert_eq(emo_queue_pop(q), JOB(0, 1));
        cr_assert_eq(emo_queue_pop(q), JOB(1, 0));
        cr_assert_null(emo_queue_pop(q));
        emo_queue_free(q);
}

Test(queue, free_accepts_null) {
        cr_assert_null(emo_queue_free(NULL));
}

/* A stream whose frame is with a worker for smoothing is on hold: its next jobs wait, in order,
 * while other streams are served; released, it is served again. Draining ignores holds. */
Test(queue, held_keys_wait_their_turn) {
        emo_queue_t *q = emo_queue_new(10);
        for (int i = 0; i < 3; i++)
                cr_assert_eq(emo_queue_push(q, "a", JOB(0, i)), 0);
        cr_assert_eq(emo_queue_push(q, "b", JOB(1, 0)), 0);
        cr_assert_eq(emo_queue_pop(q), JOB(0, 0));
        cr_assert_eq(emo_queue_hold(q, "a"), 0);
        cr_assert_eq(emo_queue_hold(q, "a"), 0, "holding twice is harmless");
        cr_assert_eq(emo_queue_pop(q), JOB(1, 0), "b is served while a is held");
        cr_assert_null(emo_queue_pop(q), "only a's jobs are left, and a is held");
        cr_assert_eq(emo_queue_size(q), 2, "held jobs still count against the bound");
        emo_queue_release(q, "a");
        emo_queue_release(q, "a");
        cr_assert_eq(emo_queue_pop(q), JOB(0, 1), "a resumes in order");
        cr_assert_eq(emo_queue_hold(q, "a"), 0);
        cr_assert_eq(emo_queue_pop_any(q), JOB(0, 2), "draining takes held jobs too");
        cr_assert_null(emo_queue_pop_any(q));
        /* The hold outlives the key's jobs: a job pushed later under a held key waits too. */
        cr_assert_eq(emo_queue_push(q, "a", JOB(0, 3)), 0);
        cr_assert_null(emo_queue_pop(q));
        emo_queue_release(q, "a");
        cr_assert_eq(emo_queue_pop(q), JOB(0, 3));
        emo_queue_free(q);
}
