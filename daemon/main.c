/* emotiond: the emotion-recognition daemon. Reads its configuration, loads the model, detector
 * and dialogue lines, starts the workers, binds its endpoints, tells systemd it is ready and
 * serves until SIGTERM. See `emotiond --help` and deploy/emotiond.conf.in, installed as emotiond.conf. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "connguard.h"
#include "emo/endpoint.h"
#include "dialogue.h"
#include "listen.h"
#include "metrics.h"
#include "emo/util.h"
#include "log.h"
#include "model.h"
#include "paths.h"
#include "pipeline.h"
#include "server.h"
#include "signals.h"
#include "vision/vision.h"

int emo_log_max_level = 6;
bool emo_log_journal = false;

/* Every request allocates and frees the same few image-sized buffers (a 640x480 frame is 900 KiB
 * decoded). With glibc's defaults these are mmap'd and unmapped, or the heap top is trimmed, on
 * every request, and the pages are faulted in again the next time: on the 2-core VM of
 * docs/benchmarks.md that took one-face requests from 10 to 18 ms. Keeping freed memory in the
 * arenas up to these sizes removes it; images larger than the mmap threshold are still returned
 * to the system as soon as they are freed. Environment tunables (GLIBC_TUNABLES) still apply:
 * mallopt is only called for the values the user did not set. */
static void tune_malloc(void) {
        const char *t = getenv("GLIBC_TUNABLES");
        if (!t || !strstr(t, "mmap_threshold"))
                mallopt(M_MMAP_THRESHOLD, 32 << 20);
        if (!t || !strstr(t, "trim_threshold"))
                mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

static void help(void) {
        const emo_paths_t *paths = emo_paths();
        printf("Usage: emotiond [OPTION]...\n"
               "Facial emotion recognition daemon: answers emotion.v1 requests over ZeroMQ.\n"
               "\n"
               "  -c, --config=FILE        read settings from an INI file (installed: %s)\n"
               "  -e, --endpoint=EP[,EP]   ZeroMQ endpoints to bind (default: $EMOTIOND_ENDPOINT,\n"
               "                           else ipc://$XDG_RUNTIME_DIR/emotiond/emotiond.sock,\n"
               "                           else " EMO_SYSTEM_ENDPOINT ")\n"
               "  -m, --model=FILE         model metadata JSON (default %s/models/emotion.json)\n"
               "      --detector=KIND      auto, yunet, blazeface or haar (auto: the first of\n"
               "                           YuNet, BlazeFace, Haar whose file is found)\n"
               "      --yunet-model=FILE   YuNet ONNX file (" EMO_YUNET_FILE ")\n"
               "      --blazeface-model=FILE  BlazeFace ONNX file (" EMO_BLAZEFACE_FILE ",\n"
               "                           or the 256x256 back-camera model for smaller faces)\n"
               "      --haar-model=FILE    Haar cascade XML file\n"
               "      --device=DEV         auto, cpu, opencl or cuda (default auto)\n"
               "      --dialogue-dir=DIR   folder of <language>.ini dialogue files\n"
               "      --language=LANG      default dialogue language (default fr)\n"
               "  -w, --workers=N          worker threads (default: one per core)\n"
               "  -s, --set=KEY=VALUE      any configuration key, e.g. --set max_faces=8\n"
               "      --check              load everything, check that every endpoint (and\n"
               "                           metrics_listen) can be bound, print the setup and exit\n"
               "                           (non-zero on any failure)\n"
               "      --print-public-key   print the CURVE public key of server_cert (what clients\n"
               "                           pass as --server-key) and exit\n"
               "  -v, --verbose            debug messages (never a result: see --log-results)\n"
               "      --log-results        log every face's box, emotion and probabilities:\n"
               "                           personal data, for debugging only (docs/privacy.md)\n"
               "  -h, --help               show this help and exit\n"
               "  -V, --version            show the version and exit\n"
               "\n"
               "Under systemd socket activation (emotiond.socket) the daemon serves the sockets it is\n"
               "given, as well as any endpoint of its own that they do not cover.\n"
               "\n"
               "tcp:// endpoints speak CURVE with server_cert and admit the clients whose certificates\n"
               "are in clients_dir; without a certificate they are refused unless insecure_tcp = true.\n"
               "\n"
               "Signals: SIGTERM/SIGINT finish the requests in progress, refuse the rest and exit 0;\n"
               "SIGHUP reads clients_dir again.\n",
               paths->config, paths->datadir);
}

enum { OPT_DETECTOR = 256, OPT_YUNET, OPT_BLAZEFACE, OPT_HAAR, OPT_DEVICE, OPT_DIALOGUE, OPT_LANGUAGE, OPT_CHECK, OPT_LOG_RESULTS, OPT_PRINT_KEY };

/* What the command line says. Settings given as options are applied after the file, whatever
 * their position. */
typedef struct args {
        const char *config_path;
        bool check, print_key;
        const char *keys[64], *values[64];
        char *owned[64]; /* the keys of --set */
        size_t n_set, n_owned;
} args_t;

static void args_done(args_t *a) {
        for (size_t i = 0; i < a->n_owned; i++)
                free(a->owned[i]);
        a->n_owned = 0;
}

/* The key and value of --set KEY=VALUE, the key kept in a->owned. -errno, said on stderr. */
static int parse_set(args_t *a, const char *arg, const char **ret_key, const char **ret_value) {
        const char *eq = strchr(arg, '=');
        if (!eq) {
                fprintf(stderr, "emotiond: --set needs KEY=VALUE, got '%s'\n", arg);
                return -EINVAL;
        }
        if (a->n_owned >= ELEMENTSOF(a->owned)) {
                fprintf(stderr, "emotiond: too many options\n");
                return -E2BIG;
        }
        char *k = strndup(arg, (size_t) (eq - arg));
        if (!k) {
                fprintf(stderr, "emotiond: %s\n", strerror(ENOMEM));
                return -ENOMEM;
        }
        a->owned[a->n_owned++] = k;
        *ret_key = k;
        *ret_value = eq + 1;
        return 0;
}

/* 0: go on; 1: done (--help, --version), exit 0; -errno: a usage error, said on stderr, exit 2. */
static int parse_args(int argc, char **argv, args_t *a) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "endpoint", required_argument, NULL, 'e' },
                { "model", required_argument, NULL, 'm' },
                { "detector", required_argument, NULL, OPT_DETECTOR },
                { "yunet-model", required_argument, NULL, OPT_YUNET },
                { "blazeface-model", required_argument, NULL, OPT_BLAZEFACE },
                { "haar-model", required_argument, NULL, OPT_HAAR },
                { "device", required_argument, NULL, OPT_DEVICE },
                { "dialogue-dir", required_argument, NULL, OPT_DIALOGUE },
                { "language", required_argument, NULL, OPT_LANGUAGE },
                { "workers", required_argument, NULL, 'w' },
                { "set", required_argument, NULL, 's' },
                { "check", no_argument, NULL, OPT_CHECK },
                { "verbose", no_argument, NULL, 'v' },
                { "log-results", no_argument, NULL, OPT_LOG_RESULTS },
                { "print-public-key", no_argument, NULL, OPT_PRINT_KEY },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        int opt, r;
        while ((opt = getopt_long(argc, argv, "c:e:m:w:s:vhV", options, NULL)) >= 0) {
                const char *key = NULL, *value = optarg;
                switch (opt) {
                case 'c': a->config_path = optarg; continue;
                case 'e': key = "endpoints"; break;
                case 'm': key = "model"; break;
                case OPT_DETECTOR: key = "detector"; break;
                case OPT_YUNET: key = "yunet_model"; break;
                case OPT_BLAZEFACE: key = "blazeface_model"; break;
                case OPT_HAAR: key = "haar_model"; break;
                case OPT_DEVICE: key = "device"; break;
                case OPT_DIALOGUE: key = "dialogue_dir"; break;
                case OPT_LANGUAGE: key = "language"; break;
                case 'w': key = "workers"; break;
                case OPT_LOG_RESULTS: key = "log_results"; value = "true"; break;
                case 's':
                        if ((r = parse_set(a, optarg, &key, &value)) < 0)
                                return r;
                        break;
                case OPT_CHECK: a->check = true; continue;
                case OPT_PRINT_KEY: a->print_key = true; continue;
                case 'v': emo_log_max_level = 7; continue;
                case 'h': help(); return 1;
                case 'V': printf("emotiond %s\n", PROJECT_VERSION); return 1;
                default:
                        fprintf(stderr, "Try 'emotiond --help' for more information.\n");
                        return -EINVAL;
                }
                if (a->n_set >= ELEMENTSOF(a->keys)) {
                        fprintf(stderr, "emotiond: too many options\n");
                        return -E2BIG;
                }
                a->keys[a->n_set] = key;
                a->values[a->n_set++] = value;
        }
        if (optind < argc) {
                fprintf(stderr, "emotiond: unexpected argument '%s'\nTry 'emotiond --help' for more information.\n",
                        argv[optind]);
                return -EINVAL;
        }
        return 0;
}

/* The defaults, the file, then the command line, validated. 0, or the exit status: 1 for a bad
 * file or configuration, 2 for a bad option. */
static int load_config(const args_t *a, emo_config_t *c) {
        emo_error_t err = { "" };
        int r = emo_config_init(c);
        if (r < 0) {
                log_error("Failed to set up the configuration: %s", strerror(-r));
                return 1;
        }
        if (a->config_path && emo_config_load(c, a->config_path, &err) < 0) {
                log_error("Failed to read the configuration: %s", err.message);
                return 1;
        }
        for (size_t i = 0; i < a->n_set; i++)
                if (emo_config_set(c, a->keys[i], a->values[i], &err) < 0) {
                        log_error("Invalid option: %s", err.message);
                        return 2;
                }
        if (emo_config_validate(c, &err) < 0) {
                log_error("Invalid configuration: %s", err.message);
                return 1;
        }
        return 0;
}

/* --print-public-key: the exit status. */
static int print_public_key(const emo_config_t *c) {
        zcert_t *cert = NULL;
        int r = emo_auth_load_secret_cert(c->server_cert, &cert);
        if (r < 0) {
                log_error("Failed to load the server certificate %s: %s; make one with 'emotion keygen %s'",
                          c->server_cert, r == -ENOKEY ? "no secret key in it" : "cannot read it", c->server_cert);
                return 1;
        }
        printf("%s\n", zcert_public_txt(cert));
        zcert_destroy(&cert);
        return 0;
}

/* Everything the daemon sets up before it serves, or checks with --check. */
typedef struct daemon {
        emo_config_t config;
        char *served;            /* the endpoints: configured or the default */
        emo_tcp_security_t sec;
        char cert_error[256];    /* why sec.cert could not be loaded */
        int signal_fd;
        emo_device_t device;
        emo_model_t model;
        emo_dialogue_t *dialogue;
        emo_detector_choice_t detector;
        emo_streams_t *streams;
        unsigned workers;
} daemon_t;

static void daemon_done(daemon_t *d) {
        d->streams = emo_streams_free(d->streams);
        emo_detector_choice_done(&d->detector);
        d->dialogue = emo_dialogue_free(d->dialogue);
        emo_model_done(&d->model);
        zcert_destroy(&d->sec.cert);
        free(d->served);
        d->served = NULL;
        emo_config_done(&d->config);
        if (d->signal_fd >= 0)
                emo_signals_close(d->signal_fd);
        d->signal_fd = -1;
}

/* The endpoints and, when tcp:// is served (the endpoints, or a socket from systemd) and
 * insecure_tcp does not say plaintext, the server certificate; the reason it could not be loaded
 * is kept for the listeners' messages. */
static int load_security(daemon_t *d) {
        const emo_config_t *c = &d->config;
        d->served = c->endpoints ? strdup(c->endpoints) : emo_endpoint_default_bind();
        if (!d->served)
                return log_error_errno(-ENOMEM, "Failed to set up the configuration: %s", strerror(ENOMEM));
        d->sec = (emo_tcp_security_t) { .insecure = c->insecure_tcp, .cert_path = c->server_cert };
        if (c->insecure_tcp && emo_listeners_need_tcp(d->served))
                log_warning("insecure_tcp is on: tcp:// endpoints are served in plaintext, without authentication; "
                            "anyone who can reach them can use the daemon and read the images");
        if (c->insecure_tcp || !emo_listeners_need_tcp(d->served))
                return 0;
        int r = emo_auth_load_secret_cert(c->server_cert, &d->sec.cert);
        if (r < 0) {
                snprintf(d->cert_error, sizeof(d->cert_error), "%s",
                         r == -ENOKEY ? "it has no secret key: give the file zcert_save wrote as NAME, with "
                                        "NAME_secret beside it"
                                      : "no such certificate, or not readable");
                d->sec.cert_error = d->cert_error;
        }
        return 0;
}

/* Signals become bytes on a pipe read by the server loop, whichever thread receives them
 * (signals.h says why a signalfd is not enough). CZMQ's own handler is disabled: draining is
 * ours to do. */
static int set_up_signals(daemon_t *d) {
        zsys_handler_set(NULL);
        static const int handled[] = { SIGTERM, SIGINT, SIGHUP };
        int r = emo_signals_open(handled, ELEMENTSOF(handled), &d->signal_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to set up signal handling: %s", strerror(-r));
        signal(SIGPIPE, SIG_IGN);
        return 0;
}

static int choose_device(daemon_t *d) {
        emo_error_t verr = { "" };
        emo_device_t want;
        emo_device_from_name(d->config.device, &want);
        int r = emo_device_resolve(want, &d->device, &verr);
        if (r < 0)
                return log_error_errno(r, "Failed to use device %s: %s", d->config.device, verr.message);
        if (want == EMO_DEVICE_AUTO)
                log_info("Device auto: using %s", emo_device_name(d->device));
        return 0;
}

/* The model card, the dialogue lines (with the default language), the detector's file. */
static int load_data(daemon_t *d) {
        const emo_config_t *c = &d->config;
        emo_error_t err = { "" };
        if (emo_model_load(c->model, &d->model, &err) < 0)
                return log_error_errno(-EINVAL, "Failed to load the model: %s", err.message);
        if (emo_dialogue_load(c->dialogue_dir, &d->dialogue, &err) < 0)
                return log_error_errno(-EINVAL, "Failed to load dialogue lines: %s", err.message);
        if (!emo_dialogue_has_language(d->dialogue, c->language))
                return log_error_errno(-ENOENT, "Default language '%s' has no dialogue file in %s (have %s)",
                                       c->language, c->dialogue_dir, emo_dialogue_languages(d->dialogue));
        const char *dirs[] = { emo_paths()->statedir, emo_paths()->datadir, NULL };
        emo_detector_files_t files = { c->yunet_model, c->blazeface_model, c->haar_model, dirs };
        if (emo_detector_choose(c->detector, &files, &d->detector, &err) < 0)
                return log_error_errno(-ENOENT, "%s", err.message);
        if (d->detector.warning)
                log_warning("%s", d->detector.warning);
        if (!c->lean_check) {
                free(d->detector.lean_path);
                d->detector.lean_path = NULL;
        }
        return 0;
}

/* Everything but the server: 0, or -errno (logged). */
static int set_up(daemon_t *d) {
        int r;
        if ((r = load_security(d)) < 0 || (r = set_up_signals(d)) < 0)
                return r;
        tune_malloc();
        emo_vision_init((int) d->config.threads);
        if ((r = choose_device(d)) < 0 || (r = load_data(d)) < 0)
                return r;
        d->workers = d->config.workers ? d->config.workers : (unsigned) sysconf(_SC_NPROCESSORS_ONLN);
        if (d->workers == 0)
                d->workers = 1;
        log_info("emotiond %s: model %s (%s, PublicTest accuracy %.4f), %s detector %s%s%s%s, device %s, languages %s",
                 PROJECT_VERSION, d->model.name, d->model.onnx_path, d->model.public_test_accuracy,
                 emo_detector_kind_name(d->detector.kind), d->detector.path,
                 d->detector.lean_path ? " (leaning faces checked by " : "",
                 d->detector.lean_path ? d->detector.lean_path : "", d->detector.lean_path ? ")" : "",
                 emo_device_name(d->device), emo_dialogue_languages(d->dialogue));
        if (d->config.log_results)
                log_warning("log_results is on: every face's box, emotion and probabilities will be written to this "
                            "log, which then holds personal data (docs/privacy.md); turn it off after debugging");
        if ((r = emo_streams_new(EMO_STREAMS_DEFAULT_CAPACITY, &d->streams)) < 0)
                return log_error_errno(r, "Failed to set up the stream table: %s", strerror(-r));
        return 0;
}

static emo_pipeline_shared_t shared_of(const daemon_t *d) {
        return (emo_pipeline_shared_t) {
                .config = &d->config,
                .model = &d->model,
                .dialogue = d->dialogue,
                .streams = d->streams,
                .device = d->device,
                .detector = d->detector.kind,
                .detector_path = d->detector.path,
                .lean_path = d->detector.lean_path,
        };
}

/* --check: one worker's pipeline loads and runs, every endpoint and metrics_listen can be bound
 * now. The exit status; the first failure is logged. */
static int check(const daemon_t *d) {
        emo_error_t err = { "" };
        emo_pipeline_shared_t shared = shared_of(d);
        emo_pipeline_t *p = NULL;
        int r = emo_pipeline_new(&shared, &p, &err);
        p = emo_pipeline_free(p);
        if (r >= 0 && (r = emo_listeners_check(d->served, &d->sec, &err)) >= 0) {
                printf("endpoints %s can be bound\n", d->served);
                if (d->sec.cert)
                        printf("tcp:// with CURVE, server key %s, clients from %s\n", zcert_public_txt(d->sec.cert),
                               d->config.clients_dir);
        }
        const char *metrics = d->config.metrics_listen;
        if (r >= 0 && metrics && *metrics) {
                /* Listen for a moment, as the daemon would. */
                emo_metrics_t *m = emo_metrics_new(&(emo_metrics_info_t) { 0 });
                r = m ? emo_metrics_serve(m, metrics, &err)
                      : emo_error_set(&err, -ENOMEM, "Failed to check metrics_listen: %s", strerror(ENOMEM));
                emo_metrics_free(m);
        }
        if (r < 0) {
                log_error("%s", err.message[0] ? err.message : strerror(-r));
                return 1;
        }
        printf("configuration OK\n");
        return 0;
}

/* Serve until SIGTERM: the exit status. */
static int serve(daemon_t *d) {
        /* systemd's default soft limit is 1024 descriptors, one per connection: take the hard limit
         * (LimitNOFILE= in the unit); max_connections keeps well below it. */
        int64_t nofile = emo_nofile_raise();
        if (nofile < 0)
                log_warning("Failed to raise the limit of open files: %s, ignoring", strerror((int) -nofile));
        else
                log_debug("Open files limit: %lld", (long long) nofile);
        emo_error_t err = { "" };
        emo_pipeline_shared_t shared = shared_of(d);
        emo_server_t *server = NULL;
        int r = emo_server_new(&d->config, &shared, d->workers, &d->sec, &server, &err);
        if (r < 0) {
                log_error("%s", err.message);
                return 1;
        }
        r = emo_server_run(server, d->signal_fd);
        emo_server_free(server);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        _cleanup_(args_done) args_t args = { 0 };
        int r = parse_args(argc, argv, &args);
        if (r != 0)
                return r < 0 ? 2 : 0;
        emo_log_setup();
        _cleanup_(daemon_done) daemon_t d = { .signal_fd = -1 };
        if ((r = load_config(&args, &d.config)) != 0)
                return r;
        if (args.print_key)
                return print_public_key(&d.config);
        if (set_up(&d) < 0)
                return 1;
        return args.check ? check(&d) : serve(&d);
}
