#include "model.h"

#include <errno.h>
#include <json-c/json.h>
#include <libgen.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emo/labels.h"
#include "emo/util.h"

static json_object *json_object_put_null(json_object *o) {
        json_object_put(o);
        return NULL;
}
DEFINE_FREEP(json_object, json_object_put_null)

int emo_sha256_file(const char *path, char hex[65]) {
        FILE *f = fopen(path, "rbe");
        if (!f)
                return -errno;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int r = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ? 0 : -ENOMEM;
        unsigned char buf[1 << 16], md[32];
        size_t n;
        while (r == 0 && (n = fread(buf, 1, sizeof(buf), f)) > 0)
                if (!EVP_DigestUpdate(ctx, buf, n))
                        r = -EIO;
        if (r == 0 && ferror(f))
                r = -EIO;
        unsigned len = 0;
        if (r == 0 && !EVP_DigestFinal_ex(ctx, md, &len))
                r = -EIO;
        EVP_MD_CTX_free(ctx);
        fclose(f);
        for (unsigned i = 0; r == 0 && i < len; i++)
                sprintf(hex + 2 * i, "%02x", md[i]);
        return r;
}

/* Look up a dotted path ("input.width") in o. */
static json_object *get(json_object *o, const char *path) {
        char key[64];
        while (o && *path) {
                size_t n = strcspn(path, ".");
                if (n >= sizeof(key))
                        return NULL;
                memcpy(key, path, n);
                key[n] = '\0';
                if (!json_object_object_get_ex(o, key, &o))
                        return NULL;
                path += n + (path[n] == '.');
        }
        return o;
}

static int get_number(json_object *root, const char *path, double *ret, emo_error_t *err) {
        json_object *v = get(root, path);
        if (!v || !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
                return emo_error_set(err, -EINVAL, "'%s' is missing or not a number", path);
        /* json-c reads NaN and Infinity, which every range check with < and > lets through. */
        double d = json_object_get_double(v);
        if (!isfinite(d))
                return emo_error_set(err, -EINVAL, "'%s' is %g, not a finite number", path, d);
        *ret = d;
        return 0;
}

static int get_string(json_object *root, const char *path, char **ret, emo_error_t *err) {
        json_object *v = get(root, path);
        if (!v || !json_object_is_type(v, json_type_string))
                return emo_error_set(err, -EINVAL, "'%s' is missing or not a string", path);
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

/* The optional prior_correction: {"power": P, "training_prior": [7 class shares]}. The shares
 * must be positive and sum to 1 (they are a distribution), the power within 0..2 (1 undoes the
 * prior entirely; more would favour the rare classes beyond it). */
static int parse_prior_correction(json_object *root, emo_model_t *m, emo_error_t *err) {
        for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                m->class_weight[k] = 1;
        m->reweight = false;
        json_object *pc = get(root, "prior_correction");
        if (!pc)
                return 0;
        double power;
        int r = get_number(root, "prior_correction.power", &power, err);
        if (r < 0)
                return r;
        if (power < 0 || power > 2)
                return emo_error_set(err, -EINVAL, "prior_correction.power must be within 0..2, not %g", power);
        json_object *prior = get(root, "prior_correction.training_prior");
        if (!prior || !json_object_is_type(prior, json_type_array) ||
            json_object_array_length(prior) != EMO_EMOTION_COUNT)
                return emo_error_set(err, -EINVAL, "prior_correction.training_prior must list %d class shares",
                                     EMO_EMOTION_COUNT);
        double sum = 0, share[EMO_EMOTION_COUNT];
        for (int k = 0; k < EMO_EMOTION_COUNT; k++) {
                json_object *v = json_object_array_get_idx(prior, k);
                share[k] = v && (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))
                                 ? json_object_get_double(v)
                                 : NAN;
                if (!(share[k] > 0 && share[k] <= 1))
                        return emo_error_set(err, -EINVAL,
                                             "prior_correction.training_prior[%d] is not a class share in (0, 1]", k);
                sum += share[k];
        }
        if (fabs(sum - 1) > 1e-3)
                return emo_error_set(err, -EINVAL, "prior_correction.training_prior sums to %g, not 1", sum);
        for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                m->class_weight[k] = pow(share[k], -power);
        m->reweight = power > 0;
        return 0;
}

static int parse(json_object *root, const char *dir, emo_model_t *m, emo_error_t *err) {
        _cleanup_free_ char *format = NULL, *onnx = NULL, *tta = NULL;
        double w, h, ch;
        int r;
        if ((r = get_string(root, "format", &format, err)) < 0)
                return r;
        if (strcmp(format, "emotiond-model/1") != 0)
                return emo_error_set(err, -EINVAL, "format '%s' is not emotiond-model/1", format);
        if ((r = get_string(root, "name", &m->name, err)) < 0 ||
            (r = get_string(root, "sha256", &m->sha256, err)) < 0 ||
            (r = get_string(root, "onnx", &onnx, err)) < 0 ||
            (r = get_number(root, "input.width", &w, err)) < 0 ||
            (r = get_number(root, "input.height", &h, err)) < 0 ||
            (r = get_number(root, "input.channels", &ch, err)) < 0 ||
            (r = get_number(root, "normalization.scale", &m->scale, err)) < 0 ||
            (r = get_number(root, "normalization.mean", &m->mean, err)) < 0 ||
            (r = get_number(root, "normalization.std", &m->std, err)) < 0 ||
            (r = get_number(root, "framing.scale", &m->framing_scale, err)) < 0 ||
            (r = get_number(root, "framing.offset_x", &m->offset_x, err)) < 0 ||
            (r = get_number(root, "framing.offset_y", &m->offset_y, err)) < 0 ||
            (r = get_string(root, "tta", &tta, err)) < 0)
                return r;
        if (w < 8 || h < 8 || w > 1024 || h > 1024 || ch != 1)
                return emo_error_set(err, -EINVAL, "input must be one grey channel of 8..1024 pixels a side");
        if (w != (double) (unsigned) w || h != (double) (unsigned) h)
                return emo_error_set(err, -EINVAL,
                                     "input.width and input.height must be whole numbers of pixels, not %g and %g", w,
                                     h);
        if (m->scale <= 0 || m->std <= 0 || m->framing_scale <= 0 || m->framing_scale > 10)
                return emo_error_set(err, -EINVAL,
                                     "normalization.scale, normalization.std and framing.scale must be positive");
        /* The crop's centre moves by offset * side (models/README.md, "Framing"): a shift of more
         * than a whole side moves the crop off the face, so such a value is a mistake in the file. */
        if (fabs(m->offset_x) > 1 || fabs(m->offset_y) > 1)
                return emo_error_set(err, -EINVAL,
                                     "framing.offset_x and framing.offset_y must be within -1..1 (of the crop side), "
                                     "not %g and %g",
                                     m->offset_x, m->offset_y);
        if (strcmp(tta, "none") != 0 && strcmp(tta, "hflip") != 0)
                return emo_error_set(err, -EINVAL, "tta '%s' is not none or hflip", tta);
        m->width = (unsigned) w;
        m->height = (unsigned) h;
        m->tta_hflip = strcmp(tta, "hflip") == 0;
        json_object *labels = get(root, "labels");
        if (!labels || !json_object_is_type(labels, json_type_array) ||
            json_object_array_length(labels) != EMO_EMOTION_COUNT)
                return emo_error_set(err, -EINVAL, "'labels' must list the %d FER2013 classes", EMO_EMOTION_COUNT);
        for (int i = 0; i < EMO_EMOTION_COUNT; i++) {
                const char *l = json_object_get_string(json_object_array_get_idx(labels, i));
                if (!l || strcmp(l, emo_emotion_name(i)) != 0)
                        return emo_error_set(err, -EINVAL,
                                             "labels[%d] is '%s', expected '%s' (FER2013 order)", i, l ? l : "",
                                             emo_emotion_name(i));
        }
        if ((r = parse_prior_correction(root, m, err)) < 0)
                return r;
        m->public_test_accuracy = 0;
        if (get(root, "evaluation.accuracy") && (r = get_number(root, "evaluation.accuracy", &m->public_test_accuracy,
                                                                 err)) < 0)
                return r;
        if (strchr(onnx, '/'))
                return emo_error_set(err, -EINVAL, "'onnx' must be a file name next to the metadata, not a path");
        if (asprintf(&m->onnx_path, "%s/%s", dir, onnx) < 0) {
                m->onnx_path = NULL;
                return -ENOMEM;
        }
        return 0;
}

int emo_model_load(const char *path, emo_model_t *ret, emo_error_t *err) {
        emo_model_t m = { 0 };
        if (access(path, R_OK) < 0) {
                int r = -errno;
                return emo_error_set(err, r, "%s: %s", path, strerror(errno));
        }
        _cleanup_(json_object_put_nullp) json_object *root = json_object_from_file(path);
        if (!root) {
                emo_error_set(err, -EINVAL, "%s: not valid JSON: %s", path, json_util_get_last_err() ?: "");
                if (err)
                        err->message[strcspn(err->message, "\n")] = '\0';
                return -EINVAL;
        }
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        emo_error_t detail = { "" };
        int r = parse(root, dirname(copy), &m, &detail);
        if (r < 0) {
                emo_error_set(err, r, "%s: %s", path, detail.message);
                emo_model_done(&m);
                return r;
        }
        char hex[65];
        r = emo_sha256_file(m.onnx_path, hex);
        if (r < 0) {
                emo_error_set(err, r, "%s: %s", m.onnx_path, strerror(-r));
        } else if (strcasecmp(hex, m.sha256) != 0) {
                r = emo_error_set(err, -EBADMSG, "%s: sha256 %s does not match %s recorded in %s", m.onnx_path, hex,
                                  m.sha256, path);
        }
        if (r < 0) {
                emo_model_done(&m);
                return r;
        }
        *ret = m;
        return 0;
}

void emo_model_done(emo_model_t *m) {
        free(m->name);
        free(m->sha256);
        free(m->onnx_path);
        *m = (emo_model_t) { 0 };
}
