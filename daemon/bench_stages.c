/* emo_bench_stages: what each stage of the daemon's work on a photo costs in CPU time of the
 * calling thread (CLOCK_THREAD_CPUTIME_ID), so that other processes on a shared machine do not
 * count, with the medians of many repetitions. Not installed; scripts/bench_stages.sh runs it.
 *
 *   emo_bench_stages --model M.json --yunet Y.onnx [--reps N] FILE.jpg...
 *       per photo and decoding mode (full: as before scaled decoding; scaled: the daemon's way),
 *       the median decode, detect and classify times, the faces found, and how far the scaled
 *       mode's boxes and probabilities are from the full mode's
 *   emo_bench_stages --model M.json --yunet Y.onnx --stream --every K FRAME.jpg...
 *       the frames as one camera stream, the daemon's way (scaled decoding; the detector on every
 *       Kth frame, the faces followed in between, the detector at once when one is lost): the
 *       median and mean cost of a frame, and how often the detector ran
 *   emo_bench_stages --model M.json --yunet Y.onnx --mixed [--reps N] FILE...
 *       the photos in turn, as a daemon serving cameras or photos of several sizes and face counts
 *       sees them (scaled decoding): each photo's median stage times over N rounds, then the mean
 *       over the photos
 *   --lean B.onnx, with any of them: YuNet with its lean check by that BlazeFace model, as the
 *       daemon runs it when BlazeFace is installed (lean_check) */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emo/util.h"
#include "model.h"
#include "vision/vision.h"

/* What the last failing vision call said (vision.h: each takes an emo_error_t). */
static emo_error_t verr;

#define MAX_FACES 32

static double cpu_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The whole file, malloc'd; NULL (said on stderr) when it cannot be read. */
static void *read_file(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "Failed to read %s\n", path);
                return NULL;
        }
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        void *buf = len > 0 ? malloc((size_t) len) : NULL;
        if (buf && fread(buf, 1, (size_t) len, f) != (size_t) len) {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        if (!buf)
                fprintf(stderr, "Failed to read %s\n", path);
        *ret_len = (size_t) len;
        return buf;
}

typedef struct result {
        size_t n;
        emo_face_box_t boxes[MAX_FACES];
        float probs[MAX_FACES][EMO_EMOTION_COUNT];
} result_t;

/* One photo the daemon's way: decode (scaled or not), detect, classify; stage times added to t. */
static int run_once(emo_detector_t *det, emo_classifier_t *cls, const void *data, size_t len, bool scaled,
                    double t[3], result_t *res) {
        emo_image_t *img = NULL;
        double t0 = cpu_ms();
        int r = scaled ? emo_image_decode_scaled(data, len, 40000000, emo_detector_input_side(det), &img, &verr)
                       : emo_image_decode(data, len, 40000000, &img, &verr);
        if (r < 0)
                return r;
        double t1 = cpu_ms();
        r = emo_detector_detect(det, img, res->boxes, MAX_FACES, &res->n, &verr);
        double t2 = cpu_ms();
        if (r >= 0 && res->n > 0)
                r = emo_classifier_classify(cls, img, res->boxes, res->n, false, res->probs, &verr);
        double t3 = cpu_ms();
        emo_image_free(img);
        t[0] = t1 - t0, t[1] = t2 - t1, t[2] = t3 - t2;
        return r;
}

static int argmax(const float *p) {
        int best = 0;
        for (int k = 1; k < EMO_EMOTION_COUNT; k++)
                if (p[k] > p[best])
                        best = k;
        return best;
}

static int bench_photos(emo_detector_t *det, emo_classifier_t *cls, char **files, int nfiles, int reps) {
        printf("file\tmode\tscale\tfaces\tdecode_ms\tdetect_ms\tclassify_ms\ttotal_ms\tmax_box_diff_px\t"
               "max_prob_diff\tsame_emotion\n");
        double *v[4];
        for (int k = 0; k < 4; k++)
                v[k] = calloc((size_t) reps, sizeof(double));
        for (int f = 0; f < nfiles; f++) {
                size_t len;
                _cleanup_free_ void *data = read_file(files[f], &len);
                if (!data)
                        return 1;
                result_t full, res;
                for (int mode = 0; mode < 2; mode++) {
                        double t[3];
                        result_t *out = mode ? &res : &full;
                        if (run_once(det, cls, data, len, mode, t, out) < 0) { /* warm-up */
                                fprintf(stderr, "Failed on %s: %s\n", files[f], verr.message);
                                return 1;
                        }
                        for (int i = 0; i < reps; i++) {
                                run_once(det, cls, data, len, mode, t, out);
                                v[0][i] = t[0], v[1][i] = t[1], v[2][i] = t[2], v[3][i] = t[0] + t[1] + t[2];
                        }
                        emo_image_t *img = NULL;
                        unsigned scale = 1;
                        if (mode && emo_image_decode_scaled(data, len, 40000000, emo_detector_input_side(det), &img,
                                                            &verr) >= 0)
                                scale = emo_image_scale(img);
                        emo_image_free(img);
                        /* The scaled mode against the full one, face by face (both largest first). */
                        int box_diff = 0, same = 0;
                        double prob_diff = 0;
                        if (mode && res.n == full.n)
                                for (size_t i = 0; i < res.n; i++) {
                                        const emo_face_box_t *a = &res.boxes[i], *b = &full.boxes[i];
                                        int d[] = { abs(a->x - b->x), abs(a->y - b->y), abs(a->width - b->width),
                                                    abs(a->height - b->height) };
                                        for (int k = 0; k < 4; k++)
                                                box_diff = d[k] > box_diff ? d[k] : box_diff;
                                        for (int k = 0; k < EMO_EMOTION_COUNT; k++)
                                                prob_diff = fmax(prob_diff, fabs(res.probs[i][k] - full.probs[i][k]));
                                        same += argmax(res.probs[i]) == argmax(full.probs[i]);
                                }
                        printf("%s\t%s\t1/%u\t%zu\t%.2f\t%.2f\t%.2f\t%.2f\t", files[f], mode ? "scaled" : "full", scale,
                               out->n, median(v[0], reps), median(v[1], reps), median(v[2], reps), median(v[3], reps));
                        if (!mode)
                                printf("-\t-\t-\n");
                        else if (res.n != full.n)
                                printf("faces differ\t-\t-\n");
                        else
                                printf("%d\t%.4f\t%d/%zu\n", box_diff, prob_diff, same, res.n);
                }
        }
        for (int k = 0; k < 4; k++)
                free(v[k]);
        return 0;
}

static int bench_mixed(emo_detector_t *det, emo_classifier_t *cls, char **files, int nfiles, int reps) {
        void **data = calloc((size_t) nfiles, sizeof(*data));
        size_t *len = calloc((size_t) nfiles, sizeof(*len));
        double *v = calloc((size_t) nfiles * 4 * reps, sizeof(double)); /* [file][stage][rep] */
        size_t *faces = calloc((size_t) nfiles, sizeof(*faces));
        int r = 1;
        if (!data || !len || !v || !faces)
                goto out;
        for (int f = 0; f < nfiles; f++)
                if (!(data[f] = read_file(files[f], &len[f])))
                        goto out;
        for (int i = -1; i < reps; i++) /* round -1 warms up */
                for (int f = 0; f < nfiles; f++) {
                        double t[3];
                        result_t res;
                        if (run_once(det, cls, data[f], len[f], true, t, &res) < 0) {
                                fprintf(stderr, "Failed on %s: %s\n", files[f], verr.message);
                                goto out;
                        }
                        faces[f] = res.n;
                        if (i >= 0)
                                for (int k = 0; k < 4; k++)
                                        v[((size_t) f * 4 + k) * reps + i] = k < 3 ? t[k] : t[0] + t[1] + t[2];
                }
        printf("file\tfaces\tdecode_ms\tdetect_ms\tclassify_ms\ttotal_ms\n");
        double mean[4] = { 0 };
        for (int f = 0; f < nfiles; f++) {
                printf("%s\t%zu", files[f], faces[f]);
                for (int k = 0; k < 4; k++) {
                        double m = median(v + ((size_t) f * 4 + k) * reps, (size_t) reps);
                        mean[k] += m / nfiles;
                        printf("\t%.2f", m);
                }
                printf("\n");
        }
        printf("mean of %d photos\t-\t%.2f\t%.2f\t%.2f\t%.2f\n", nfiles, mean[0], mean[1], mean[2], mean[3]);
        r = 0;
out:
        for (int f = 0; data && f < nfiles; f++)
                free(data[f]);
        free(data);
        free(len);
        free(v);
        free(faces);
        return r;
}

static int bench_stream(emo_detector_t *det, emo_classifier_t *cls, char **files, int nfiles, unsigned every, bool scaled) {
        double *cost = calloc((size_t) nfiles, sizeof(double)), sum = 0;
        emo_face_box_t prev[MAX_FACES], boxes[MAX_FACES];
        float probs[MAX_FACES][EMO_EMOTION_COUNT];
        size_t n_prev = 0, n = 0, faces = 0;
        unsigned since = every; /* detect on the first frame */
        int detections = 0;
        for (int f = 0; f < nfiles; f++) {
                size_t len;
                _cleanup_free_ void *data = read_file(files[f], &len);
                if (!data)
                        return 1;
                double t0 = cpu_ms();
                emo_image_t *img = NULL;
                int r = scaled ? emo_image_decode_scaled(data, len, 40000000, emo_detector_input_side(det), &img, &verr)
                               : emo_image_decode(data, len, 40000000, &img, &verr);
                if (r < 0) {
                        fprintf(stderr, "Failed to decode %s: %s\n", files[f], verr.message);
                        return 1;
                }
                /* As daemon/pipeline.c does for a smoothed stream. */
                if (since + 1 < every && (n_prev == 0 || emo_detector_track(det, img, prev, n_prev, boxes) > 0)) {
                        n = n_prev;
                        since++;
                } else {
                        emo_detector_detect(det, img, boxes, MAX_FACES, &n, &verr);
                        since = 0;
                        detections++;
                }
                if (n > 0)
                        emo_classifier_classify(cls, img, boxes, n, false, probs, &verr);
                emo_image_free(img);
                cost[f] = cpu_ms() - t0;
                sum += cost[f];
                faces += n;
                memcpy(prev, boxes, n * sizeof(*boxes));
                n_prev = n;
        }
        double mean = sum / nfiles;
        printf("frames\tevery\tdecode\tdetector_runs\tfaces_per_frame\tmedian_ms\tmean_ms\tcpu_share_at_15fps\n");
        printf("%d\t%u\t%s\t%d\t%.2f\t%.2f\t%.2f\t%.1f%%\n", nfiles, every, scaled ? "scaled" : "full", detections,
               (double) faces / nfiles, median(cost, (size_t) nfiles), mean, mean * 15 / 10);
        free(cost);
        return 0;
}

int main(int argc, char **argv) {
        const char *model_path = NULL, *yunet = NULL, *lean = NULL;
        int reps = 30;
        unsigned every = 1;
        bool stream = false, full = false, mixed = false;
        static const struct option opts[] = {
                { "model", required_argument, NULL, 'm' }, { "yunet", required_argument, NULL, 'y' },
                { "reps", required_argument, NULL, 'r' },  { "stream", no_argument, NULL, 's' },
                { "every", required_argument, NULL, 'k' }, { "full", no_argument, NULL, 'f' },
                { "mixed", no_argument, NULL, 'x' },       { "lean", required_argument, NULL, 'l' },
                {},
        };
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;)
                switch (c) {
                case 'm':
                        model_path = optarg;
                        break;
                case 'y':
                        yunet = optarg;
                        break;
                case 'r':
                        reps = atoi(optarg);
                        break;
                case 's':
                        stream = true;
                        break;
                case 'k':
                        every = (unsigned) atoi(optarg);
                        break;
                case 'f':
                        full = true;
                        break;
                case 'x':
                        mixed = true;
                        break;
                case 'l':
                        lean = optarg;
                        break;
                default:
                        return 2;
                }
        if (!model_path || !yunet || optind >= argc || reps < 1 || every < 1) {
                fprintf(stderr, "usage: %s --model M.json --yunet Y.onnx [--lean B.onnx] [--reps N] FILE...\n"
                                "       %s --model M.json --yunet Y.onnx --stream [--every K] [--full] FRAME...\n"
                                "       %s --model M.json --yunet Y.onnx --mixed [--reps N] FILE...\n",
                        argv[0], argv[0], argv[0]);
                return 2;
        }
        emo_vision_init(1);
        emo_model_t m;
        emo_error_t err = { "" };
        if (emo_model_load(model_path, &m, &err) < 0) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
        }
        emo_detector_params_t dp = { .kind = EMO_DETECTOR_YUNET, .model_path = yunet, .score_threshold = 0.6f,
                                     .max_side = 320, .min_face = 20, .device = EMO_DEVICE_CPU,
                                     .lean_model_path = lean };
        emo_classifier_params_t cp = { .onnx_path = m.onnx_path, .width = m.width, .height = m.height,
                                       .scale = m.scale, .mean = m.mean, .std = m.std,
                                       .framing_scale = m.framing_scale, .offset_x = m.offset_x,
                                       .offset_y = m.offset_y, .tta_hflip = m.tta_hflip, .reweight = m.reweight,
                                       .device = EMO_DEVICE_CPU };
        memcpy(cp.class_weight, m.class_weight, sizeof(cp.class_weight));
        emo_detector_t *det = NULL;
        emo_classifier_t *cls = NULL;
        if (emo_detector_new(&dp, &det, &verr) < 0 || emo_classifier_new(&cp, &cls, &verr) < 0) {
                fprintf(stderr, "Failed to load the detector or the model: %s\n", verr.message);
                return 1;
        }
        int r = stream  ? bench_stream(det, cls, argv + optind, argc - optind, every, !full)
                : mixed ? bench_mixed(det, cls, argv + optind, argc - optind, reps)
                        : bench_photos(det, cls, argv + optind, argc - optind, reps);
        emo_detector_free(det);
        emo_classifier_free(cls);
        emo_model_done(&m);
        return r;
}
