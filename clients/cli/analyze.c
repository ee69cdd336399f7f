#include "analyze.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annotate.h"
#include "emo/labels.h"
#include "emo/protocol.h" /* EMO_SMOOTH_MAX_WINDOW */
#include "emo/util.h"
#include "output.h"
#include "window.h"

/* Enough to keep every worker of a local daemon busy while the next file is read. */
#define ANALYZE_WINDOW 8

enum {
        ARG_ANNOTATE = CLI_ARG_FIRST,
        ARG_EVERY_FACE,
};

typedef struct item {
        const char *name;
        char *annotated;    /* --annotate: where the annotated image goes */
        uint8_t *data;
        size_t size;
        bool done;
        int error;          /* local or transport failure, negative errno */
        emo_reply_t *reply; /* when error == 0 */
} item_t;

typedef struct analyze {
        cli_options_t o;      /* o.smooth: --smooth N, else 0 */
        const char *annotate; /* --annotate DIR */
        bool every_face;      /* --every-face: a dialogue line for each face */
        char stream[64];      /* stream id of the smoothed files */
        item_t *items;
        size_t n;
        size_t printed;
        size_t blocks; /* human blocks on stdout, for the blank line between them */
        unsigned failed;
} analyze_t;

static void help(void) {
        printf("Usage: %s analyze [OPTION]... FILE|DIR...\n"
               "Find the faces in each image FILE ('-' reads standard input) and show the emotion,\n"
               "confidence and emoji of each, and the dialogue line emotiond chose for the image.\n"
               "Formats: JPEG, PNG, WebP, BMP, TIFF, PNM. A folder DIR stands for the image files in it\n"
               "and its subfolders (by extension; others are skipped with a message), in name order.\n"
               "\n"
               "      --annotate DIR   also write each image to DIR as PNG with a box, the emoji and the\n"
               "                       emotion over every face (DIR/NAME.png; a folder's images keep\n"
               "                       their path below it)\n"
               "      --every-face     also give the dialogue line emotiond would say to each face, not\n"
               "                       only to the most prominent one\n"
               "      --json           one JSON object per FILE and line, in input order\n"
               "      --lang LANG      dialogue language, e.g. fr or en (default: the daemon's)\n"
               "      --max-faces N    at most N faces per image, largest first (default: the daemon's limit)\n"
               "      --smooth N       take the FILEs as consecutive frames of one camera, in the order\n"
               "                       given: follow each face from file to file and also give its\n"
               "                       emotion averaged over its last N files (1-%d); the dialogue\n"
               "                       then follows the averaged emotion\n"
               CLI_COMMON_HELP
               "  -h, --help           show this help and exit\n"
               "\n"
               "Files over 64 MiB are refused. Exit status: 0 all images analysed, 1 some FILE failed\n"
               "(each failure is reported), 2 usage error, 3 the daemon did not answer.\n",
               cli_program_name, EMO_SMOOTH_MAX_WINDOW);
}

static int build(void *userdata, size_t index, cli_request_t *r) {
        analyze_t *a = userdata;
        item_t *it = &a->items[index];
        int k = cli_read_file(it->name, &it->data, &it->size);
        if (k < 0)
                return k;
        cli_request_init(r, EMOTION__V1__IMAGE__FORMAT__ENCODED, it->data, it->size, a->o.timeout_ms);
        cli_request_set_options(r, &a->o);
        r->options.dialogue_per_face = a->every_face;
        if (a->o.smooth) {
                /* Files are sent in order and the daemon applies a smoothed stream's frames in
                 * arrival order, so the window of requests in flight keeps the averages exact. */
                r->analyze.stream_id = (char *) a->stream;
                r->analyze.sequence = (uint64_t) index + 1;
        }
        return 0;
}

static void print_item(analyze_t *a, item_t *it) {
        const emo_analyze_reply_t *ar = it->error == 0 ? cli_reply_analyze(it->reply) : NULL;

        const char *status = "ok";
        char msg[512] = "";
        if (!ar) {
                status = cli_describe_failure(&a->o, it->error, it->reply, msg, sizeof(msg));
                a->failed++;
                cli_error("%s: %s: %s", it->name, status, msg);
        }
        bool annotated = false;
        if (ar && it->annotated) {
                _cleanup_free_ char *why = NULL;
                if (cli_annotate_image(it->data, it->size, ar, it->annotated, &why) < 0) {
                        a->failed++;
                        cli_error("%s: cannot annotate: %s", it->name, why ? why : "out of memory");
                } else
                        annotated = true;
        }

        if (a->o.json) {
                json_object *o = json_object_new_object();
                if (!o)
                        return;
                cli_json_add_string(o, "file", it->name);
                cli_json_add_string(o, "status", status);
                if (ar)
                        cli_json_add_analyze(o, ar);
                else
                        cli_json_add_string(o, "error", msg);
                if (annotated)
                        cli_json_add_string(o, "annotated", it->annotated);
                cli_json_print_line(o);
                json_object_put(o);
        } else if (ar) {
                if (a->blocks++ > 0)
                        putchar('\n');
                cli_print_analyze(it->name, ar);
                if (annotated)
                        printf("  annotated: %s\n", it->annotated);
                fflush(stdout);
        }
}

static void item_release(item_t *it) {
        free(it->annotated);
        it->annotated = NULL;
        free(it->data);
        it->data = NULL;
        emo_reply_free(it->reply);
        it->reply = NULL;
}

static void done(void *userdata, size_t index, int error, emo_reply_t *reply) {
        analyze_t *a = userdata;
        item_t *it = &a->items[index];
        it->done = true;
        it->error = error;
        it->reply = reply;
        if (!it->annotated) { /* the request using it is finished; --annotate draws on it */
                free(it->data);
                it->data = NULL;
        }

        /* Print in input order: everything finished up to the first item still in flight. */
        for (; a->printed < a->n && a->items[a->printed].done; a->printed++) {
                print_item(a, &a->items[a->printed]);
                item_release(&a->items[a->printed]);
        }
}

/* The FILE arguments with each folder replaced by the image files under it. */
typedef struct inputs {
        char **paths;      /* the arguments themselves, or the walk's malloc'd paths */
        const char **root; /* the folder each path was found in, NULL for an argument */
        bool *owned;       /* paths[i] is malloc'd */
        size_t n;
        unsigned empty;    /* folders without any image: each an input that failed */
} inputs_t;

static void inputs_freep(inputs_t *in) {
        for (size_t i = 0; i < in->n; i++)
                if (in->owned[i])
                        free(in->paths[i]);
        free(in->paths);
        free(in->root);
        free(in->owned);
}

static int inputs_add(inputs_t *in, char *path, const char *root, bool owned) {
        char **p = realloc(in->paths, (in->n + 1) * sizeof(char *));
        if (p)
                in->paths = p;
        const char **r = realloc(in->root, (in->n + 1) * sizeof(char *));
        if (r)
                in->root = r;
        bool *o = realloc(in->owned, (in->n + 1) * sizeof(bool));
        if (o)
                in->owned = o;
        if (!p || !r || !o) {
                if (owned)
                        free(path);
                return -ENOMEM;
        }
        in->paths[in->n] = path;
        in->root[in->n] = root;
        in->owned[in->n] = owned;
        in->n++;
        return 0;
}

/* Folders are walked (annotate.h: recursively, in byte order of names); files and '-' are taken
 * as they are, so that a missing file is reported in its place as before. A folder without any
 * image is an error of its own. */
static int expand_inputs(inputs_t *in, char **args, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                if (strcmp(args[i], "-") == 0 || stat(args[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
                        if (inputs_add(in, args[i], NULL, false) < 0)
                                goto oom;
                        continue;
                }
                char **found = NULL;
                size_t n_found = 0;
                int r = cli_walk_images(args[i], &found, &n_found);
                for (size_t k = 0; k < n_found; k++)
                        if (r >= 0)
                                r = inputs_add(in, found[k], args[i], true);
                        else
                                free(found[k]);
                free(found);
                if (r == -ENOMEM)
                        goto oom;
                if (r < 0)
                        return r;
                if (n_found == 0) {
                        cli_error("%s: no image file in this folder", args[i]);
                        in->empty++;
                }
        }
        return 0;
oom:
        cli_error("Out of memory");
        return -ENOMEM;
}

static int compare_annotated(const void *x, const void *y) {
        const item_t *a = *(const item_t *const *) x, *b = *(const item_t *const *) y;
        return strcmp(a->annotated, b->annotated);
}

/* Where each image's annotation goes; refuses (usage error) two inputs that would write the same
 * file, or an annotation that would overwrite its own input. */
static int plan_annotations(analyze_t *a, const inputs_t *in) {
        for (size_t i = 0; i < a->n; i++)
                if (!(a->items[i].annotated = cli_annotate_path(a->annotate, in->paths[i], in->root[i]))) {
                        cli_error("Out of memory");
                        return CLI_EXIT_FAILED;
                }
        _cleanup_free_ item_t **sorted = calloc(a->n, sizeof(item_t *));
        if (!sorted) {
                cli_error("Out of memory");
                return CLI_EXIT_FAILED;
        }
        for (size_t i = 0; i < a->n; i++)
                sorted[i] = &a->items[i];
        qsort(sorted, a->n, sizeof(item_t *), compare_annotated);
        for (size_t i = 1; i < a->n; i++)
                if (strcmp(sorted[i - 1]->annotated, sorted[i]->annotated) == 0)
                        return cli_usage_error("analyze", "--annotate: %s and %s would both be written to %s",
                                               sorted[i - 1]->name, sorted[i]->name, sorted[i]->annotated);
        for (size_t i = 0; i < a->n; i++) {
                struct stat si, so;
                if (stat(a->items[i].name, &si) == 0 && stat(a->items[i].annotated, &so) == 0 &&
                    si.st_dev == so.st_dev && si.st_ino == so.st_ino)
                        return cli_usage_error("analyze", "--annotate: %s would be overwritten by its annotation",
                                               a->items[i].name);
        }
        return CLI_EXIT_OK;
}

/* One JSON line per file that will not be analysed because the daemon is not there (why), for
 * scripts that pair inputs with lines; nothing in text, where the error said it. */
static void print_unreachable(const analyze_t *a, size_t index, const char *why) {
        if (!a->o.json)
                return;
        json_object *o = json_object_new_object();
        if (!o)
                return;
        cli_json_add_string(o, "file", a->items[index].name);
        cli_json_add_string(o, "status", "unreachable");
        cli_json_add_string(o, "error", why);
        cli_json_print_line(o);
        json_object_put(o);
}

static int option(void *userdata, int c, const char *arg) {
        analyze_t *a = userdata;
        if (c == ARG_EVERY_FACE) {
                a->every_face = true;
                return CLI_EXIT_OK;
        }
        if (c != ARG_ANNOTATE)
                return cli_usage_hint("analyze");
        if (!*arg)
                return cli_usage_error("analyze", "--annotate needs a folder");
        a->annotate = arg;
        return CLI_EXIT_OK;
}

/* The items of the inputs in, with where their annotations go. An exit code. */
static int make_items(analyze_t *a, const inputs_t *in) {
        a->n = in->n;
        a->failed = in->empty;
        a->items = calloc(a->n, sizeof(item_t));
        if (!a->items) {
                cli_error("Out of memory");
                return CLI_EXIT_FAILED;
        }
        for (size_t i = 0; i < a->n; i++)
                a->items[i].name = in->paths[i];
        return a->annotate ? plan_annotations(a, in) : CLI_EXIT_OK;
}

static void analyze_done(analyze_t *a) {
        for (size_t i = 0; a->items && i < a->n; i++)
                item_release(&a->items[i]);
        free(a->items);
}

/* Send every item through the request window and show the results; the exit code. */
static int analyze_all(analyze_t *a, emo_client_t *client) {
        cli_window_config_t config = {
                .timeout_ms = a->o.timeout_ms,
                .attempts = a->o.attempts,
                .window = ANALYZE_WINDOW,
                .retry_overloaded = true,
                /* --smooth: the files are one stream's frames, which must arrive in order. */
                .ordered = a->o.smooth > 0,
        };
        int r = cli_window_run(client, &config, a->n, build, done, a);
        if (r == -ETIMEDOUT) {
                int ret = cli_report_unreachable(&a->o, client);
                /* One line per input even so. Replies that came but waited behind an earlier file
                 * still in flight are shown as they are; only the files never answered are
                 * unreachable. */
                for (; a->printed < a->n; a->printed++)
                        if (a->items[a->printed].done)
                                print_item(a, &a->items[a->printed]);
                        else
                                print_unreachable(a, a->printed, "no reply from the daemon");
                return ret;
        }
        if (r < 0) {
                cli_error("Failed to talk to emotiond at %s: %s", emo_client_endpoint(client), emo_client_strerror(r));
                return CLI_EXIT_UNREACHABLE;
        }
        return a->failed > 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int cli_analyze_main(const cli_options_t *defaults, int argc, char **argv) {
        static const struct option options[] = {
                { "annotate", required_argument, NULL, ARG_ANNOTATE },
                { "every-face", no_argument, NULL, ARG_EVERY_FACE },
                {},
        };
        _cleanup_(analyze_done) analyze_t a = { .o = *defaults };
        const cli_command_t cmd = {
                .name = "analyze",
                .help = help,
                .takes = CLI_TAKES_CONNECTION | CLI_TAKES_ANALYSIS,
                .options = options,
                .option = option,
                .userdata = &a,
                .operand = "FILE",
        };
        int ret;
        if (!cli_parse_command(&cmd, &a.o, argc, argv, &ret))
                return ret;
        /* A stream id of this run's own: the daemon keeps a stream's tracks for 10 s, and another
         * run must neither continue this one's tracks nor restart them. */
        if (a.o.smooth)
                snprintf(a.stream, sizeof(a.stream), "analyze-%ld-%lld", (long) getpid(), (long long) emo_now_us());

        _cleanup_(inputs_freep) inputs_t in = {};
        if (expand_inputs(&in, argv + optind, (size_t) (argc - optind)) < 0)
                return CLI_EXIT_FAILED;
        if (in.n == 0)
                return CLI_EXIT_FAILED; /* only folders without images, each reported */
        ret = make_items(&a, &in);
        if (ret != CLI_EXIT_OK)
                return ret;

        _cleanup_(cli_client_freep) emo_client_t *client = NULL;
        int r = cli_client_open(&a.o, "analyze", &client);
        if (r < 0) {
                /* One line per input, as when the daemon stops answering. */
                char why[160];
                snprintf(why, sizeof(why), "no daemon listens at the endpoint (%s)", strerror(-r));
                for (size_t i = 0; cli_open_exit(r) == CLI_EXIT_UNREACHABLE && i < a.n; i++)
                        print_unreachable(&a, i, why);
                return cli_open_exit(r);
        }
        return analyze_all(&a, client);
}
