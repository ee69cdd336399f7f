/* The shipped model on posed faces from other people and another camera than FER2013's: the CK+48
 * crops (../shared/data/ckplus48, evaluation only, see its SOURCE.md), through the real daemon and
 * `emotion eval`, as docs/benchmarks.md and the model card report them. A model change that loses
 * accuracy there fails here, however well it does on FER2013.
 *
 * The file is not shipped: a checkout without it skips this suite (and says so). Another path can
 * be given in EMO_TEST_CKPLUS48. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/util.h"
#include "fixtures.h"

/* Measured for emonet-xs with its prior correction (docs/REPORT.md): 77.1 % of 927 faces (72.2 %
 * without it). The floors sit just under the measured figures, so that only a real loss fails (a
 * face or two of noise does not: the daemon's classification is deterministic on one machine, the
 * floors allow other CPUs' float rounding). */
#define CKPLUS48_FACES 927
#define CKPLUS48_ACCURACY_FLOOR 0.76
static const struct {
        const char *emotion;
        double floor; /* measured recall, less about two faces of the class */
} recall_floors[] = {
        { "angry", 0.48 },    /* 0.504 of 135 */
        { "disgust", 0.62 },  /* 0.638 of 177 (0.356 without the prior correction) */
        { "fear", 0.38 },     /* 0.413 of 75 */
        { "happy", 0.98 },    /* 1.000 of 207 */
        { "sad", 0.69 },      /* 0.714 of 84 */
        { "surprise", 0.93 }, /* 0.948 of 249 */
};

static emo_test_daemon_t daemon_;

static const char *ckplus48(void) {
        const char *env = getenv("EMO_TEST_CKPLUS48");
        return env && *env ? env : EMO_TEST_CKPLUS48;
}

static void start(void) {
        if (access(ckplus48(), R_OK) == 0)
                emo_test_daemon_start(&daemon_, NULL);
}

static void stop(void) {
        emo_test_daemon_cleanup(&daemon_);
}

TestSuite(crossdataset, .init = start, .fini = stop, .timeout = 240);

Test(crossdataset, shipped_model_on_ckplus48_holds_its_floor) {
        if (access(ckplus48(), R_OK) < 0)
                cr_skip_test("%s is not here: the cross-dataset check is skipped", ckplus48());
        if (strcmp(emo_test_model_name(), "emonet-xs") != 0)
                cr_skip_test("the floors are emonet-xs's; the tests run %s", emo_test_model_name());
        const char *argv[] = { emo_test_emotion(), "--server", daemon_.endpoint, "eval", "--usage", "PrivateTest",
                               "--json", ckplus48(), NULL };
        emo_test_run_t r;
        emo_test_run(argv, (const char *const[]) { "EMOTIOND_ENDPOINT=", NULL }, 200000, &r);
        cr_assert_eq(r.status, 0, "emotion eval exited %d:\n%s", r.status, r.err);
        json_object *o = json_tokener_parse(r.out);
        cr_assert_not_null(o, "not JSON:\n%s", r.out);
        cr_assert_eq(json_object_get_int(emo_test_json_get(o, "n")), CKPLUS48_FACES);
        cr_assert_eq(json_object_get_int(emo_test_json_get(o, "failed")), 0);
        double accuracy = json_object_get_double(emo_test_json_get(o, "accuracy"));
        cr_log_info("CK+48: accuracy %.4f over %d faces", accuracy, CKPLUS48_FACES);
        cr_expect_geq(accuracy, CKPLUS48_ACCURACY_FLOOR, "CK+48 accuracy %.4f, under the floor %.2f", accuracy,
                      CKPLUS48_ACCURACY_FLOOR);
        json_object *per_class = emo_test_json_get(o, "per_class");
        for (size_t i = 0; i < ELEMENTSOF(recall_floors); i++) {
                json_object *c = emo_test_json_get(per_class, recall_floors[i].emotion);
                double recall = json_object_get_double(emo_test_json_get(c, "recall"));
                cr_log_info("CK+48: %s recall %.3f", recall_floors[i].emotion, recall);
                cr_expect_geq(recall, recall_floors[i].floor, "CK+48 %s recall %.3f, under the floor %.2f",
                              recall_floors[i].emotion, recall, recall_floors[i].floor);
        }
        json_object_put(o);
        emo_test_run_done(&r);
}
