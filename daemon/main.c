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

#ifndef EMO_HAAR_DEFAULT
#define EMO_HAAR_DEFAULT "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
#endif
#define YUNET_FILE "face_detection_yunet_2022mar.onnx"
#define BLAZEFACE_FILE "face_detection_front_128x128_barracuda.onnx"

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
               "      --yunet-model=FILE   YuNet ONNX file (" YUNET_FILE ")\n"
               "      --blazeface-model=FILE  BlazeFace ONNX file (" BLAZEFACE_FILE ",\n"
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

/* A detector file: the configured path, else the user's data folder, the folder
 * emotiond-setup-detectors fills (LOCALSTATEDIR/lib/emotiond/detectors) and the installed data
 * folder. */
static char *find_detector_file(const char *configured, const char *file) {
        if (configured)
                return strdup(configured);
        char *path = NULL;
        const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
        if (xdg && *xdg)
                asprintf(&path, "%s/emotiond/detectors/%s", xdg, file);
        else if (home && *home)
                asprintf(&path, "%s/.local/share/emotiond/detectors/%s", home, file);
        if (path && access(path, R_OK) == 0)
                return path;
        free(path);
        path = NULL;
        const char *dirs[] = { emo_paths()->statedir, emo_paths()->datadir };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                if (asprintf(&path, "%s/detectors/%s", dirs[i], file) < 0)
                        return NULL;
                if (access(path, R_OK) == 0)
                        return path;
                free(path);
                path = NULL;
        }
        return NULL;
}

enum { OPT_DETECTOR = 256, OPT_YUNET, OPT_BLAZEFACE, OPT_HAAR, OPT_DEVICE, OPT_DIALOGUE, OPT_LANGUAGE, OPT_CHECK, OPT_LOG_RESULTS, OPT_PRINT_KEY };

/* The server certificate, when tcp:// is served (the endpoints, or a socket from systemd) and
 * insecure_tcp does not say plaintext. err_buf keeps the reason it could not be loaded. */
static void load_security(const emo_config_t *c, const char *endpoints, emo_tcp_security_t *sec, char *err_buf,
                          size_t errlen) {
        *sec = (emo_tcp_security_t) { .insecure = c->insecure_tcp, .cert_path = c->server_cert };
        if (c->insecure_tcp || !emo_listeners_need_tcp(endpoints))
                return;
        int r = emo_auth_load_secret_cert(c->server_cert, &sec->cert);
        if (r < 0) {
                snprintf(err_buf, errlen, "%s",
                         r == -ENOKEY ? "it has no secret key: give the file zcert_save wrote as NAME, with "
                                        "NAME_secret beside it"
                                      : "no such certificate, or not readable");
                sec->cert_error = err_buf;
        }
}

int main(int argc, char **argv) {
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
        const char *config_path = NULL;
        bool check = false, print_key = false;
        /* Command-line settings are applied after the file, whatever their position. */
        const char *keys[64], *values[64];
        char *owned[64];
        size_t n_set = 0, n_owned = 0;
        int opt;
        while ((opt = getopt_long(argc, argv, "c:e:m:w:s:vhV", options, NULL)) >= 0) {
                const char *key = NULL, *value = optarg;
                switch (opt) {
                case 'c':
                        config_path = optarg;
                        continue;
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
                case 's': {
                        char *eq = strchr(optarg, '=');
                        if (!eq) {
                                fprintf(stderr, "emotiond: --set needs KEY=VALUE, got '%s'\n", optarg);
                                return 2;
                        }
                        char *k = strndup(optarg, (size_t) (eq - optarg));
                        if (!k || n_owned >= ELEMENTSOF(owned))
                                return 2;
                        owned[n_owned++] = k;
                        key = k;
                        value = eq + 1;
                        break;
                }
                case OPT_CHECK:
                        check = true;
                        continue;
                case OPT_PRINT_KEY:
                        print_key = true;
                        continue;
                case 'v':
                        emo_log_max_level = 7;
                        continue;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("emotiond %s\n", PROJECT_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'emotiond --help' for more information.\n");
                        return 2;
                }
                if (n_set >= ELEMENTSOF(keys)) {
                        fprintf(stderr, "emotiond: too many options\n");
                        return 2;
                }
                keys[n_set] = key;
                values[n_set++] = value;
        }
        if (optind < argc) {
                fprintf(stderr, "emotiond: unexpected argument '%s'\nTry 'emotiond --help' for more information.\n",
                        argv[optind]);
                return 2;
        }

        emo_log_setup();
        char err[1024];
        emo_config_t config;
        int r = emo_config_init(&config);
        if (r < 0) {
                log_error("Failed to set up the configuration: %s", strerror(-r));
                return 1;
        }
        if (config_path && (r = emo_config_load(&config, config_path, err, sizeof(err))) < 0) {
                log_error("Failed to read the configuration: %s", err);
                return 1;
        }
        for (size_t i = 0; i < n_set; i++)
                if ((r = emo_config_set(&config, keys[i], values[i], err, sizeof(err))) < 0) {
                        log_error("Invalid option: %s", err);
                        return 2;
                }
        for (size_t i = 0; i < n_owned; i++)
                free(owned[i]);
        if ((r = emo_config_validate(&config, err, sizeof(err))) < 0) {
                log_error("Invalid configuration: %s", err);
                return 1;
        }
        if (print_key) {
                zcert_t *cert = NULL;
                if ((r = emo_auth_load_secret_cert(config.server_cert, &cert)) < 0) {
                        log_error("Failed to load the server certificate %s: %s; make one with 'emotion keygen %s'",
                                  config.server_cert, r == -ENOKEY ? "no secret key in it" : "cannot read it",
                                  config.server_cert);
                        return 1;
                }
                printf("%s\n", zcert_public_txt(cert));
                zcert_destroy(&cert);
                emo_config_done(&config);
                return 0;
        }
        _cleanup_free_ char *served = config.endpoints ? strdup(config.endpoints) : emo_endpoint_default_bind();
        if (!served) {
                log_error("Failed to set up the configuration: %s", strerror(ENOMEM));
                return 1;
        }
        char cert_err[256];
        emo_tcp_security_t sec;
        load_security(&config, served, &sec, cert_err, sizeof(cert_err));
        if (config.insecure_tcp && emo_listeners_need_tcp(served))
                log_warning("insecure_tcp is on: tcp:// endpoints are served in plaintext, without authentication; "
                            "anyone who can reach them can use the daemon and read the images");

        /* Signals become bytes on a pipe read by the server loop, whichever thread receives them
         * (signals.h says why a signalfd is not enough). CZMQ's own handler is disabled: draining
         * is ours to do. */
        zsys_handler_set(NULL);
        static const int handled[] = { SIGTERM, SIGINT, SIGHUP };
        int sfd;
        if ((r = emo_signals_open(handled, sizeof(handled) / sizeof(handled[0]), &sfd)) < 0) {
                log_error("Failed to set up signal handling: %s", strerror(-r));
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);

        tune_malloc();
        emo_vision_init((int) config.threads);
        emo_device_t want, device;
        emo_device_from_name(config.device, &want);
        if ((r = emo_device_resolve(want, &device)) < 0) {
                log_error("Failed to use device %s: %s", config.device, emo_vision_last_error());
                return 1;
        }
        if (want == EMO_DEVICE_AUTO)
                log_info("Device auto: using %s", emo_device_name(device));

        emo_model_t model;
        if ((r = emo_model_load(config.model, &model, err, sizeof(err))) < 0) {
                log_error("Failed to load the model: %s", err);
                return 1;
        }
        emo_dialogue_t *dialogue = NULL;
        if ((r = emo_dialogue_load(config.dialogue_dir, &dialogue, err, sizeof(err))) < 0) {
                log_error("Failed to load dialogue lines: %s", err);
                return 1;
        }
        const char *langs = emo_dialogue_languages(dialogue);
        if (!emo_dialogue_has_language(dialogue, config.language)) {
                log_error("Default language '%s' has no dialogue file in %s (have %s)", config.language,
                          config.dialogue_dir, langs);
                return 1;
        }

        /* auto: the best detector whose file is installed, in the order measured in the README. */
        emo_detector_kind_t det = EMO_DETECTOR_HAAR;
        _cleanup_free_ char *det_path = NULL;
        bool auto_det = strcmp(config.detector, "auto") == 0;
        if (auto_det || strcmp(config.detector, "yunet") == 0) {
                det = EMO_DETECTOR_YUNET;
                det_path = find_detector_file(config.yunet_model, YUNET_FILE);
        }
        if (!det_path && (auto_det || strcmp(config.detector, "blazeface") == 0)) {
                det = EMO_DETECTOR_BLAZEFACE;
                det_path = find_detector_file(config.blazeface_model, BLAZEFACE_FILE);
                if (det_path && auto_det)
                        log_warning("YuNet model (" YUNET_FILE ") not found, using BlazeFace, which misses faces "
                                    "far from the camera; run the setup script to install YuNet");
        }
        if (!det_path && (auto_det || strcmp(config.detector, "haar") == 0)) {
                det = EMO_DETECTOR_HAAR;
                det_path = strdup(config.haar_model ? config.haar_model : EMO_HAAR_DEFAULT);
                if (auto_det)
                        log_warning("Neither YuNet (" YUNET_FILE ") nor BlazeFace (" BLAZEFACE_FILE ") found, "
                                    "falling back to the Haar cascade, which misses tilted and small faces; "
                                    "run the setup script to install them");
        }
        if (!det_path) {
                log_error("Failed to find the %s detector model %s; set %s_model or run the setup script",
                          config.detector, det == EMO_DETECTOR_YUNET ? YUNET_FILE : BLAZEFACE_FILE, config.detector);
                return 1;
        }
        unsigned workers = config.workers ? config.workers : (unsigned) sysconf(_SC_NPROCESSORS_ONLN);
        if (workers == 0)
                workers = 1;
        log_info("emotiond %s: model %s (%s, PublicTest accuracy %.4f), %s detector %s, device %s, languages %s",
                 PROJECT_VERSION, model.name, model.onnx_path, model.public_test_accuracy, emo_detector_kind_name(det),
                 det_path, emo_device_name(device), langs);
        if (config.log_results)
                log_warning("log_results is on: every face's box, emotion and probabilities will be written to this "
                            "log, which then holds personal data (docs/privacy.md); turn it off after debugging");

        emo_streams_t *streams = emo_streams_new(EMO_STREAMS_DEFAULT_CAPACITY);
        if (!streams) {
                log_error("Failed to set up the stream table: %s", strerror(errno));
                return 1;
        }
        emo_pipeline_shared_t shared = {
                .config = &config,
                .model = &model,
                .dialogue = dialogue,
                .streams = streams,
                .device = device,
                .detector = det,
                .detector_path = det_path,
        };
        if (check) {
                emo_pipeline_t *p = NULL;
                r = emo_pipeline_new(&shared, &p, err, sizeof(err));
                if (r >= 0) {
                        r = emo_listeners_check(served, &sec, err, sizeof(err));
                        if (r == -ENOMEM)
                                snprintf(err, sizeof(err), "Failed to check the endpoints: %s", strerror(ENOMEM));
                        else if (r >= 0)
                                printf("endpoints %s can be bound\n", served);
                        if (r >= 0 && sec.cert)
                                printf("tcp:// with CURVE, server key %s, clients from %s\n",
                                       zcert_public_txt(sec.cert), config.clients_dir);
                }
                if (r >= 0 && config.metrics_listen && *config.metrics_listen) {
                        /* Listen for a moment, as the daemon would. */
                        emo_metrics_t *m = emo_metrics_new(&(emo_metrics_info_t) { 0 });
                        r = m ? emo_metrics_serve(m, config.metrics_listen, err, sizeof(err)) : -ENOMEM;
                        emo_metrics_free(m);
                        if (r == -ENOMEM)
                                snprintf(err, sizeof(err), "Failed to check metrics_listen: %s", strerror(ENOMEM));
                }
                emo_pipeline_free(p);
                zcert_destroy(&sec.cert);
                emo_streams_free(streams);
                emo_dialogue_free(dialogue);
                emo_model_done(&model);
                emo_config_done(&config);
                if (r < 0) {
                        log_error("%s", err);
                        return 1;
                }
                printf("configuration OK\n");
                return 0;
        }
        /* systemd's default soft limit is 1024 descriptors, one per connection: take the hard limit
         * (LimitNOFILE= in the unit); max_connections keeps well below it. */
        int64_t nofile = emo_nofile_raise();
        if (nofile < 0)
                log_warning("Failed to raise the limit of open files: %s, ignoring", strerror((int) -nofile));
        else
                log_debug("Open files limit: %lld", (long long) nofile);
        emo_server_t *server = NULL;
        if ((r = emo_server_new(&config, &shared, workers, &sec, &server, err, sizeof(err))) < 0) {
                log_error("%s", err);
                emo_streams_free(streams);
                return 1;
        }
        r = emo_server_run(server, sfd);
        emo_server_free(server);
        zcert_destroy(&sec.cert);
        emo_dialogue_free(dialogue);
        emo_streams_free(streams);
        emo_model_done(&model);
        emo_config_done(&config);
        emo_signals_close(sfd);
        return r < 0 ? 1 : 0;
}
