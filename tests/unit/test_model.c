/* The model metadata loader: a model is used only when its metadata is complete, in FER2013 label
 * order, and its ONNX file is the one the metadata was written for. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"

/* sha256("abc"), FIPS 180-2 test vector: the "ONNX file" of these tests holds "abc". */
#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static char dir[64];

static void make_dir(void) {
        snprintf(dir, sizeof(dir), "/tmp/emo-model-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        char path[128];
        snprintf(path, sizeof(path), "%s/m.onnx", dir);
        FILE *f = fopen(path, "we");
        cr_assert(f);
        fputs("abc", f);
        fclose(f);
}

static void remove_dir(void) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        cr_assert_eq(system(cmd), 0);
}

TestSuite(model, .init = make_dir, .fini = remove_dir);

/* A valid metadata file with `replace` swapped for `with` (NULL: unchanged). */
static char *write_meta(const char *replace, const char *with) {
        char text[2048];
        snprintf(text, sizeof(text),
                 "{\"format\": \"emotiond-model/1\", \"name\": \"test-net\", \"onnx\": \"m.onnx\",\n"
                 " \"sha256\": \"%s\",\n"
                 " \"labels\": [\"angry\", \"disgust\", \"fear\", \"happy\", \"sad\", \"surprise\", \"neutral\"],\n"
                 " \"input\": {\"name\": \"input\", \"width\": 48, \"height\": 48, \"channels\": 1},\n"
                 " \"normalization\": {\"scale\": 0.00392156862745098, \"mean\": 0.5077, \"std\": 0.2550},\n"
                 " \"framing\": {\"scale\": 1.0271, \"offset_x\": -0.0032, \"offset_y\": -0.0127},\n"
                 " \"tta\": \"hflip\",\n"
                 " \"evaluation\": {\"split\": \"PublicTest\", \"n\": 3589, \"accuracy\": 0.661}}\n",
                 ABC_SHA256);
        if (replace) {
                char *at = strstr(text, replace);
                cr_assert_not_null(at, "test bug: '%s' not in the template", replace);
                char out[2048];
                snprintf(out, sizeof(out), "%.*s%s%s", (int) (at - text), text, with, at + strlen(replace));
                strcpy(text, out);
        }
        char *path = NULL;
        cr_assert(asprintf(&path, "%s/m.json", dir) > 0);
        FILE *f = fopen(path, "we");
        cr_assert(f);
        fputs(text, f);
        fclose(f);
        return path;
}

Test(model, valid_metadata) {
        char *path = write_meta(NULL, NULL);
        emo_model_t m;
        emo_error_t err = { "" };
        cr_assert_eq(emo_model_load(path, &m, &err), 0, "%s", err.message);
        cr_assert_str_eq(m.name, "test-net");
        cr_assert_str_eq(m.sha256, ABC_SHA256);
        char want[128];
        snprintf(want, sizeof(want), "%s/m.onnx", dir);
        cr_assert_str_eq(m.onnx_path, want, "the ONNX file is found next to the metadata");
        cr_assert_eq(m.width, 48);
        cr_assert_eq(m.height, 48);
        cr_assert_float_eq(m.scale, 1.0 / 255, 1e-12);
        cr_assert_float_eq(m.mean, 0.5077, 1e-12);
        cr_assert_float_eq(m.std, 0.2550, 1e-12);
        cr_assert_float_eq(m.framing_scale, 1.0271, 1e-12);
        cr_assert_float_eq(m.offset_x, -0.0032, 1e-12);
        cr_assert_float_eq(m.offset_y, -0.0127, 1e-12);
        cr_assert(m.tta_hflip);
        cr_assert_float_eq(m.public_test_accuracy, 0.661, 1e-12);
        emo_model_done(&m);
        free(path);
}

/* prior_correction: each class weighs training_prior ** -power; none (all 1) without it, and a
 * correction that is not a distribution and a power within 0..2 is refused. */
#define PRIOR "\"prior_correction\": {\"power\": 0.5, \"training_prior\": [0.14, 0.015, 0.143, 0.251, 0.168, 0.11, 0.173]},\n \"tta\""
Test(model, prior_correction) {
        char *path = write_meta(NULL, NULL);
        emo_model_t m;
        emo_error_t err = { "" };
        cr_assert_eq(emo_model_load(path, &m, &err), 0, "%s", err.message);
        cr_assert_not(m.reweight);
        for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                cr_assert_float_eq(m.class_weight[k], 1.0, 1e-12);
        emo_model_done(&m);
        free(path);

        path = write_meta("\"tta\"", PRIOR);
        cr_assert_eq(emo_model_load(path, &m, &err), 0, "%s", err.message);
        cr_assert(m.reweight);
        cr_assert_float_eq(m.class_weight[EMO_DISGUST], 1 / sqrt(0.015), 1e-9);
        cr_assert_float_eq(m.class_weight[EMO_HAPPY], 1 / sqrt(0.251), 1e-9);
        emo_model_done(&m);
        free(path);

        static const struct {
                const char *replace, *with, *message;
        } bad[] = {
                { "\"power\": 0.5", "\"power\": 2.5", "power" },
                { "\"power\": 0.5", "\"power\": -1", "power" },
                { "\"power\": 0.5, ", "", "power" },
                { "0.14, ", "", "training_prior" },
                { "0.015", "0", "training_prior[1]" },
                { "0.015", "\"x\"", "training_prior[1]" },
                { "0.173", "0.5", "sums to" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char with[512];
                const char *p = strstr(PRIOR, bad[i].replace);
                cr_assert_not_null(p);
                snprintf(with, sizeof(with), "%.*s%s%s", (int) (p - PRIOR), PRIOR, bad[i].with, p + strlen(bad[i].replace));
                path = write_meta("\"tta\"", with);
                emo_model_t b = { 0 };
                cr_assert_eq(emo_model_load(path, &b, &err), -EINVAL, "accepted: %s", with);
                cr_assert_not_null(strstr(err.message, bad[i].message), "'%s' should mention '%s'", err.message,
                                   bad[i].message);
                free(path);
        }
}

Test(model, sha256_of_a_file) {
        char path[128], hex[65];
        snprintf(path, sizeof(path), "%s/m.onnx", dir);
        cr_assert_eq(emo_sha256_file(path, hex), 0);
        cr_assert_str_eq(hex, ABC_SHA256);
        cr_assert_eq(emo_sha256_file("/nonexistent/m.onnx", hex), -ENOENT);
}

Test(model, swapped_onnx_file_is_refused) {
        char *path = write_meta(ABC_SHA256, "0000000000000000000000000000000000000000000000000000000000000000");
        emo_model_t m = { 0 };
        emo_error_t err = { "" };
        cr_assert_eq(emo_model_load(path, &m, &err), -EBADMSG);
        cr_assert_not_null(strstr(err.message, "sha256"), "%s", err.message);
        cr_assert_not_null(strstr(err.message, ABC_SHA256), "message '%s' should give the file's actual sha256", err.message);
        cr_assert_null(m.name, "*ret untouched on failure");
        free(path);
}

Test(model, sha256_is_case_insensitive) {
        char *path = write_meta(ABC_SHA256, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
        emo_model_t m;
        emo_error_t err = { "" };
        cr_assert_eq(emo_model_load(path, &m, &err), 0, "%s", err.message);
        emo_model_done(&m);
        free(path);
}

static void expect_invalid(const char *replace, const char *with, const char *in_message) {
        char *path = write_meta(replace, with);
        emo_model_t m = { 0 };
        emo_error_t err = { "" };
        cr_assert_eq(emo_model_load(path, &m, &err), -EINVAL, "accepted with '%s' -> '%s'", replace, with);
        cr_assert_not_null(strstr(err.message, path), "message '%s' should name the file", err.message);
        cr_assert_not_null(strstr(err.message, in_message), "message '%s' should mention '%s'", err.message, in_message);
        cr_assert_null(m.name);
        free(path);
}

Test(model, missing_fields) {
        expect_invalid("\"name\": \"test-net\", ", "", "name");
        expect_invalid("\"tta\": \"hflip\",", "", "tta");
        expect_invalid("\"mean\": 0.5077, ", "", "normalization.mean");
        expect_invalid("\"framing\": {\"scale\": 1.0271, \"offset_x\": -0.0032, \"offset_y\": -0.0127},",
                       "", "framing.scale");
        expect_invalid("\"width\": 48, ", "", "input.width");
        expect_invalid("\"onnx\": \"m.onnx\",", "", "onnx");
        expect_invalid("\"sha256\": \"" ABC_SHA256 "\",", "", "sha256");
        expect_invalid("\"std\": 0.2550", "\"std\": \"0.2550\"", "normalization.std");
}

Test(model, bad_values) {
        expect_invalid("emotiond-model/1", "emotiond-model/2", "emotiond-model/2");
        expect_invalid("\"channels\": 1", "\"channels\": 3", "grey");
        expect_invalid("\"std\": 0.2550", "\"std\": 0", "std");
        expect_invalid("\"hflip\"", "\"vflip\"", "vflip");
        expect_invalid("\"onnx\": \"m.onnx\"", "\"onnx\": \"../m.onnx\"", "onnx");
}

/* json-c reads NaN and Infinity, which pass every range check made with < and >: each number
 * must be finite, whatever it is. */
Test(model, non_finite_numbers) {
        expect_invalid("\"mean\": 0.5077", "\"mean\": NaN", "normalization.mean");
        expect_invalid("\"std\": 0.2550", "\"std\": Infinity", "normalization.std");
        expect_invalid("\"scale\": 0.00392156862745098", "\"scale\": Infinity", "normalization.scale");
        expect_invalid("\"scale\": 1.0271", "\"scale\": NaN", "framing.scale");
        expect_invalid("\"offset_x\": -0.0032", "\"offset_x\": NaN", "framing.offset_x");
        expect_invalid("\"offset_y\": -0.0127", "\"offset_y\": -Infinity", "framing.offset_y");
        expect_invalid("\"width\": 48", "\"width\": NaN", "input.width");
        expect_invalid("\"accuracy\": 0.661", "\"accuracy\": NaN", "evaluation.accuracy");
}

/* The network's input is a whole number of pixels: 48.5 is a mistake, not 48. */
Test(model, fractional_input_size) {
        expect_invalid("\"width\": 48", "\"width\": 48.5", "input.width");
        expect_invalid("\"height\": 48", "\"height\": 47.999", "input.height");
        char *path = write_meta("\"width\": 48", "\"width\": 48.0");
        emo_model_t m;
        emo_error_t err = { "" };
        cr_assert_eq(emo_model_load(path, &m, &err), 0, "48.0 is a whole number: %s", err.message);
        cr_assert_eq(m.width, 48);
        emo_model_done(&m);
        free(path);
}

/* The crop's centre moves by offset * side (models/README.md, "Framing"): past one side the crop
 * no longer touches the face at all. */
Test(model, framing_offset_bounded) {
        expect_invalid("\"offset_x\": -0.0032", "\"offset_x\": 1.5", "framing.offset_x");
        expect_invalid("\"offset_y\": -0.0127", "\"offset_y\": -2", "framing.offset_y");
        expect_invalid("\"offset_x\": -0.0032", "\"offset_x\": 1e300", "framing.offset_x");
        char *path = write_meta("\"offset_y\": -0.0127", "\"offset_y\": -1");
        emo_model_t m;
        emo_error_t err = { "" };
        cr_assert_eq(emo_model_load(path, &m, &err), 0, "an offset of one whole side is allowed: %s", err.message);
        cr_assert_float_eq(m.offset_y, -1.0, 1e-12);
        emo_model_done(&m);
        free(path);
}

Test(model, wrong_label_order) {
        expect_invalid("\"happy\", \"sad\"", "\"sad\", \"happy\"", "labels[3]");
        expect_invalid("\"surprise\", \"neutral\"]", "\"surprise\"]", "labels");
}

/* A metadata file that is not JSON is -EINVAL, whatever errno an earlier, unrelated call left
 * behind (here ENOENT, as after any failed open in the daemon). */
Test(model, not_json) {
        char *path = write_meta("{\"format\"", "{{\"format\"");
        emo_model_t m;
        emo_error_t err = { "" };
        errno = ENOENT;
        int r = emo_model_load(path, &m, &err);
        cr_assert_eq(r, -EINVAL, "a metadata file that is not JSON gave %d (%s): %s", r, strerror(-r), err.message);
        cr_assert_not_null(strstr(err.message, path), "%s", err.message);
        free(path);
}

Test(model, missing_files) {
        emo_model_t m;
        emo_error_t err = { "" };
        cr_assert_eq(emo_model_load("/nonexistent/model.json", &m, &err), -ENOENT);
        cr_assert_not_null(strstr(err.message, "/nonexistent/model.json"), "%s", err.message);
        char *path = write_meta("\"onnx\": \"m.onnx\"", "\"onnx\": \"gone.onnx\"");
        int r = emo_model_load(path, &m, &err);
        cr_assert_eq(r, -ENOENT, "missing ONNX file: got %d (%s)", r, err.message);
        cr_assert_not_null(strstr(err.message, "gone.onnx"), "%s", err.message);
        free(path);
}
