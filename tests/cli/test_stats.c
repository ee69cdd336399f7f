/* `emotion stats` against the real daemon's metrics endpoint: the numbers of what was just asked,
 * in JSON and for a terminal, and a clear failure where nothing serves metrics. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/util.h"

TestSuite(stats, .timeout = 120);

static json_object *at(json_object *o, const char *path) {
        json_object *v = emo_test_json_get(o, path);
        cr_assert_not_null(v, "no %s in %s", path, json_object_to_json_string(o));
        return v;
}

Test(stats, shows_what_the_daemon_did) {
        unsigned port = emo_test_free_port();
        char set[64], url[64];
        snprintf(set, sizeof(set), "metrics_listen=127.0.0.1:%u", port);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", port);
        emo_test_daemon_t d;
        emo_test_daemon_start(&d, (const char *const[]) { "--set", set, "-w", "1", NULL });
        _cleanup_free_ char *one = emo_test_fixture("one_face.jpg"), *four = emo_test_fixture("four_faces.jpg");
        const char *analyze[] = { emo_test_emotion(), "analyze", "--server", d.endpoint, one, four, NULL };
        emo_test_run_t r;
        emo_test_run(analyze, NULL, 60000, &r);
        cr_assert_eq(r.status, 0, "analyze: %s", r.err);
        emo_test_run_done(&r);

        const char *json[] = { emo_test_emotion(), "stats", "--json", "--metrics", url, NULL };
        emo_test_run(json, NULL, 30000, &r);
        cr_assert_eq(r.status, 0, "stats --json exited %d: %s", r.status, r.err);
        json_object *o = json_tokener_parse(r.out);
        cr_assert_not_null(o, "not JSON: %s", r.out);
        cr_assert_str_eq(json_object_get_string(at(o, "model")), emo_test_model_name());
        cr_assert_str_eq(json_object_get_string(at(o, "detector")), "yunet");
        cr_assert_eq(json_object_get_int(at(o, "workers")), 1);
        cr_assert_eq(json_object_get_int(at(o, "images")), 2);
        cr_assert_eq(json_object_get_int(at(o, "faces")), 5, "one face and four: %s", r.out);
        cr_assert_eq(json_object_get_int(at(o, "stages.total.count")), 2);
        double mean = json_object_get_double(at(o, "stages.total.mean_ms"));
        double p95 = json_object_get_double(at(o, "stages.total.p95_ms"));
        cr_assert(mean > 0 && p95 > 0 && p95 <= 10000, "total: mean %g ms, p95 %g ms", mean, p95);
        /* The health probes of the start and the two analyses, all OK. */
        cr_assert_geq(json_object_get_int(at(o, "replies.ok")), 3);
        cr_assert_eq(json_object_get_int(at(o, "replies.invalid_request")), 0);
        json_object_put(o);
        emo_test_run_done(&r);

        const char *human[] = { emo_test_emotion(), "stats", "--metrics", url, NULL };
        emo_test_run(human, NULL, 30000, &r);
        cr_assert_eq(r.status, 0, "stats exited %d: %s", r.status, r.err);
        cr_assert(strstr(r.out, "faces:       5 in 2 images (2.50 per image)"), "%s", r.out);
        cr_assert(strstr(r.out, "detect ") && strstr(r.out, "p95 ms"), "%s", r.out);
        emo_test_run_done(&r);
        emo_test_daemon_stop(&d);
}

Test(stats, nothing_serves_metrics) {
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", emo_test_free_port());
        const char *argv[] = { emo_test_emotion(), "stats", "--metrics", url, NULL };
        emo_test_run_t r;
        emo_test_run(argv, NULL, 30000, &r);
        cr_assert_eq(r.status, 3, "exit %d: %s", r.status, r.err);
        cr_assert(strstr(r.err, url) && strstr(r.err, "metrics_listen"), "%s", r.err);
        emo_test_run_done(&r);
}
