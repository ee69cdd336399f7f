#include "eval.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "emo/labels.h"
#include "emo/util.h"
#include "fer_csv.h"
#include "output.h"
#include "window.h"

#define EVAL_DEFAULT_WINDOW 32
#define EVAL_MAX_WINDOW 1000 /* below ZeroMQ's default send high-water mark */
#define EVAL_MAX_FAILURE_LINES 10

enum {
        ARG_USAGE = CLI_ARG_FIRST,
        ARG_LIMIT,
        ARG_WINDOW,
};

typedef struct eval {
        cli_options_t o;
        const cli_fer_set_t *set;
        unsigned confusion[EMO_EMOTION_COUNT][EMO_EMOTION_COUNT];
        size_t completed;
        size_t failed;
        char *model;
        char *model_sha256;
        cli_progress_t progress;
} eval_t;

static void help(void) {
        printf("Usage: %s eval [OPTION]... FILE.csv\n"
               "Evaluate the daemon's emotion classifier on a FER2013 CSV (header emotion,pixels,Usage, or\n"
               "emotion,pixels for a face set without splits; plain or gzip-compressed). Each 48x48 face\n"
               "of the chosen split is sent as a GRAY8 image with the whole image as its face box (no\n"
               "detection), pipelined.\n"
               "\n"
               "      --usage SPLIT    the rows whose Usage is SPLIT: PublicTest (default), PrivateTest,\n"
               "                       Training or a split another file names; 'all' for every row\n"
               "      --limit N        only the first N rows of that split (default: all)\n"
               "      --window N       at most N requests in flight (default %d, at most %d)\n"
               "      --json           print one JSON object instead of the tables\n"
               CLI_COMMON_HELP
               "  -h, --help           show this help and exit\n"
               "\n"
               "Prints the accuracy, precision, recall and support per class, and the confusion matrix\n"
               "(rows: true label, columns: predicted, FER2013 order). Exit status: 0 every face got an\n"
               "OK reply, 1 some did not or FILE is unreadable or malformed, 2 usage error, 3 the daemon\n"
               "did not answer.\n",
               cli_program_name, EVAL_DEFAULT_WINDOW, EVAL_MAX_WINDOW);
}

static int build(void *userdata, size_t index, cli_request_t *r) {
        eval_t *e = userdata;
        cli_request_init(r, EMOTION__V1__IMAGE__FORMAT__GRAY8, e->set->pixels + index * CLI_FER_PIXELS,
                         CLI_FER_PIXELS, e->o.timeout_ms);
        r->image.width = CLI_FER_SIDE;
        r->image.height = CLI_FER_SIDE;
        cli_request_set_face(r, 0, 0, CLI_FER_SIDE, CLI_FER_SIDE, true);
        return 0;
}

static void report_failure(eval_t *e, size_t index, const char *status, const char *message) {
        e->failed++;
        if (e->failed > EVAL_MAX_FAILURE_LINES)
                return; /* counted, and summed up at the end */
        cli_progress_finish(&e->progress);
        cli_error("row %zu (line %u): %s: %s", index + 1, e->set->lines[index], status, message);
}

static void done(void *userdata, size_t index, int error, emo_reply_t *reply) {
        eval_t *e = userdata;
        e->completed++;
        cli_progress_update(&e->progress, e->completed);

        if (error < 0) {
                char msg[128];
                snprintf(msg, sizeof(msg), "no reply after %d attempt%s of %d ms", e->o.attempts,
                         e->o.attempts == 1 ? "" : "s", e->o.timeout_ms);
                report_failure(e, index, error == -ETIMEDOUT ? "timeout" : "error",
                               error == -ETIMEDOUT ? msg : strerror(-error));
                return;
        }
        const emo_analyze_reply_t *a = cli_reply_analyze(reply);
        if (!cli_reply_ok(reply))
                report_failure(e, index, emo_status_name(reply->status), reply->message);
        else if (!a || a->n_faces != 1 || !emo_emotion_name(a->faces[0]->emotion))
                report_failure(e, index, "protocol_error", "expected exactly one classified face");
        else {
                e->confusion[e->set->labels[index]][a->faces[0]->emotion]++;
                if (!e->model && a->model) {
                        e->model = strdup(a->model->name);
                        e->model_sha256 = strdup(a->model->sha256);
                }
        }
        emo_reply_free(reply);
}

typedef struct stats {
        unsigned n, correct;
        unsigned support[EMO_EMOTION_COUNT];
        unsigned predicted[EMO_EMOTION_COUNT];
} stats_t;

static stats_t compute(const eval_t *e) {
        stats_t s = {};
        for (int t = 0; t < EMO_EMOTION_COUNT; t++)
                for (int p = 0; p < EMO_EMOTION_COUNT; p++) {
                        unsigned k = e->confusion[t][p];
                        s.n += k;
                        s.support[t] += k;
                        s.predicted[p] += k;
                        if (t == p)
                                s.correct += k;
                }
        return s;
}

/* A ratio that is undefined (null in JSON, "-" in text) when its denominator is 0. */
static json_object *json_ratio(unsigned num, unsigned den) {
        return den ? cli_json_new_number((double) num / den) : NULL;
}

static void print_ratio(unsigned num, unsigned den, int width) {
        if (den)
                printf("%*.1f%%", width - 1, 100.0 * num / den);
        else
                printf("%*s", width, "-");
}

static void print_json(const eval_t *e, const char *file, const char *usage, double elapsed_s) {
        stats_t s = compute(e);
        json_object *o = json_object_new_object();
        if (!o)
                return;
        cli_json_add_string(o, "file", file);
        cli_json_add_string(o, "usage", usage);
        cli_json_add_uint(o, "n", s.n);
        json_object_object_add(o, "accuracy", json_ratio(s.correct, s.n));
        json_object *pc = json_object_new_object();
        for (int c = 0; pc && c < EMO_EMOTION_COUNT; c++) {
                json_object *k = json_object_new_object();
                if (k) {
                        json_object_object_add(k, "precision", json_ratio(e->confusion[c][c], s.predicted[c]));
                        json_object_object_add(k, "recall", json_ratio(e->confusion[c][c], s.support[c]));
                        cli_json_add_uint(k, "support", s.support[c]);
                }
                json_object_object_add(pc, emo_emotion_name(c), k);
        }
        json_object_object_add(o, "per_class", pc);
        json_object *m = json_object_new_array_ext(EMO_EMOTION_COUNT);
        for (int t = 0; m && t < EMO_EMOTION_COUNT; t++) {
                json_object *row = json_object_new_array_ext(EMO_EMOTION_COUNT);
                for (int p = 0; row && p < EMO_EMOTION_COUNT; p++)
                        json_object_array_add(row, json_object_new_uint64(e->confusion[t][p]));
                json_object_array_add(m, row);
        }
        json_object_object_add(o, "confusion", m);
        cli_json_add_uint(o, "failed", e->failed);
        cli_json_add_string(o, "model", e->model ?: "");
        cli_json_add_string(o, "model_sha256", e->model_sha256 ?: "");
        cli_json_add_double(o, "elapsed_s", elapsed_s);
        cli_json_print_line(o);
        json_object_put(o);
}

static void print_human(const eval_t *e, const char *file, const char *usage, double elapsed_s) {
        stats_t s = compute(e);
        printf("%s (%s rows): %u faces classified by %s in %.1f s (%.0f faces/s)\n", file, usage, s.n, e->model && *e->model ? e->model : "(unknown model)", elapsed_s,
               elapsed_s > 0 ? s.n / elapsed_s : 0.0);
        printf("accuracy: ");
        print_ratio(s.correct, s.n, 6);
        printf(" (%u/%u)\n\n", s.correct, s.n);

        printf("%-10s %9s %9s %9s\n", "class", "precision", "recall", "support");
        for (int c = 0; c < EMO_EMOTION_COUNT; c++) {
                printf("%-10s ", emo_emotion_name(c));
                print_ratio(e->confusion[c][c], s.predicted[c], 9);
                putchar(' ');
                print_ratio(e->confusion[c][c], s.support[c], 9);
                printf(" %9u\n", s.support[c]);
        }

        printf("\nconfusion matrix (rows: true label, columns: predicted)\n%-10s", "");
        for (int p = 0; p < EMO_EMOTION_COUNT; p++)
                printf(" %8s", emo_emotion_name(p));
        putchar('\n');
        for (int t = 0; t < EMO_EMOTION_COUNT; t++) {
                printf("%-10s", emo_emotion_name(t));
                for (int p = 0; p < EMO_EMOTION_COUNT; p++)
                        printf(" %8u", e->confusion[t][p]);
                putchar('\n');
        }
        printf("\nfailed: %zu\n", e->failed);
}

/* The command line of eval, apart from the shared options. */
typedef struct eval_args {
        const char *usage; /* "all": every row */
        bool usage_given;
        uint64_t limit, window;
} eval_args_t;

static int option(void *userdata, int c, const char *arg) {
        eval_args_t *a = userdata;
        switch (c) {
        case ARG_USAGE:
                if (!*arg || strchr(arg, ',') || strlen(arg) > 64)
                        return cli_usage_error("eval",
                                               "invalid --usage '%s': expected a split name (PublicTest, PrivateTest, "
                                               "Training, another file's) or all",
                                               arg);
                a->usage = arg;
                a->usage_given = true;
                return CLI_EXIT_OK;
        case ARG_LIMIT:
                if (cli_parse_option_uint("eval", "--limit", arg, 1, UINT32_MAX, &a->limit) < 0)
                        return CLI_EXIT_USAGE;
                return CLI_EXIT_OK;
        case ARG_WINDOW:
                if (cli_parse_option_uint("eval", "--window", arg, 1, EVAL_MAX_WINDOW, &a->window) < 0)
                        return CLI_EXIT_USAGE;
                return CLI_EXIT_OK;
        default:
                return cli_usage_hint("eval");
        }
}

static void eval_done(eval_t *e) {
        free(e->model);
        free(e->model_sha256);
}

/* Send every face of the set through the request window, then show the figures. An exit code. */
static int evaluate(eval_t *e, emo_client_t *client, const char *file, const eval_args_t *args) {
        cli_progress_init(&e->progress, "eval", e->set->n);
        cli_window_config_t config = {
                .timeout_ms = e->o.timeout_ms,
                .attempts = e->o.attempts,
                .window = (unsigned) args->window,
                /* --window may be larger than the daemon's queue: refusals are waited out. */
                .retry_overloaded = true,
        };
        int64_t start = emo_now_us();
        int r = cli_window_run(client, &config, e->set->n, build, done, e);
        double elapsed_s = (emo_now_us() - start) / 1e6;
        cli_progress_finish(&e->progress);

        if (e->failed > EVAL_MAX_FAILURE_LINES)
                cli_error("... and %zu more failures", e->failed - EVAL_MAX_FAILURE_LINES);
        if (r == -ETIMEDOUT) {
                int ret = cli_report_unreachable(&e->o, client);
                cli_error("Stopped after %zu of %zu faces", e->completed, e->set->n);
                return ret;
        }
        if (r < 0) {
                cli_error("Failed to talk to emotiond at %s: %s", emo_client_endpoint(client), strerror(-r));
                return CLI_EXIT_UNREACHABLE;
        }
        if (e->o.json)
                print_json(e, file, args->usage, elapsed_s);
        else
                print_human(e, file, args->usage, elapsed_s);
        return e->failed > 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int cli_eval_main(const cli_options_t *defaults, int argc, char **argv) {
        static const struct option options[] = {
                { "usage", required_argument, NULL, ARG_USAGE },
                { "limit", required_argument, NULL, ARG_LIMIT },
                { "window", required_argument, NULL, ARG_WINDOW },
                {},
        };
        _cleanup_(eval_done) eval_t e = { .o = *defaults };
        eval_args_t args = { .usage = "PublicTest", .window = EVAL_DEFAULT_WINDOW };
        const cli_command_t cmd = {
                .name = "eval",
                .help = help,
                .takes = CLI_TAKES_CONNECTION,
                .options = options,
                .option = option,
                .userdata = &args,
                .operand = "FILE.csv",
        };
        int ret;
        if (!cli_parse_command(&cmd, &e.o, argc, argv, &ret))
                return ret;
        if (argc - optind > 1)
                return cli_usage_error("eval", "only one FILE.csv at a time ('%s' is extra)", argv[optind + 1]);
        const char *file = argv[optind];

        /* Open the connection first: a bad endpoint is a usage error, found before a long read. */
        _cleanup_(cli_client_freep) emo_client_t *client = NULL;
        int r = cli_client_open(&e.o, "eval", &client);
        if (r < 0)
                return cli_open_exit(r);

        _cleanup_(cli_fer_set_done) cli_fer_set_t set = {};
        char err[512] = "";
        bool all = strcasecmp(args.usage, "all") == 0;
        r = cli_fer_read(file, all ? NULL : args.usage, args.limit, err, sizeof(err), &set);
        if (r < 0) {
                cli_error("%s", err);
                return CLI_EXIT_FAILED;
        }
        if (!set.has_usage) {
                /* A face set without splits: every row, unless a split was asked for by name. */
                if (args.usage_given && !all) {
                        cli_error("%s has no Usage column: --usage %s selects nothing (use --usage all, or leave it "
                                  "out)",
                                  file, args.usage);
                        return CLI_EXIT_FAILED;
                }
                args.usage = "all";
        } else if (all)
                args.usage = "all";
        if (set.n == 0) {
                cli_error("%s: no row with Usage %s", file, args.usage);
                return CLI_EXIT_FAILED;
        }
        e.set = &set;
        return evaluate(&e, client, file, &args);
}
