/* Daemon configuration: built-in defaults, the INI file, --set overrides and their error messages
 * (what an administrator sees when emotiond refuses to start). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "paths.h"
#include "fixtures.h"

static char tmp_path[64];

static const char *write_ini(const char *text) {
        snprintf(tmp_path, sizeof(tmp_path), "/tmp/emo-config-XXXXXX.conf");
        int fd = mkstemps(tmp_path, 5);
        cr_assert(fd >= 0);
        cr_assert_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
        return tmp_path;
}

static void remove_ini(void) {
        if (tmp_path[0])
                unlink(tmp_path);
}

TestSuite(config, .fini = remove_ini);

Test(config, defaults) {
        emo_config_t c;
        cr_assert_eq(emo_config_init(&c), 0);
        cr_assert_null(c.endpoints, "no endpoint: the default endpoint rules apply");
        cr_assert_str_eq(c.detector, "auto");
        cr_assert_str_eq(c.device, "auto");
        cr_assert_str_eq(c.language, "fr");
        cr_assert_eq(c.workers, 0);
        cr_assert_eq(c.threads, 1);
        cr_assert_eq(c.queue_capacity, 64);
        cr_assert_eq(c.max_connections, 64);
        cr_assert_eq(c.client_timeout_ms, 30000);
        cr_assert_eq(c.max_message_bytes, 32u << 20);
        cr_assert_eq(c.max_pixels, 40000000);
        cr_assert_eq(c.max_faces, 32);
        cr_assert_eq(c.memory_budget_mb, 0, "the default budget is the computed worst case");
        cr_assert_eq(c.detect_max_side, 320);
        cr_assert_eq(c.min_face, 20);
        cr_assert_float_eq(c.score_threshold, 0.6, 1e-12);
        cr_assert_not(c.log_results, "results are not logged unless asked for (docs/privacy.md)");
        cr_assert_not_null(strstr(c.model, "/models/emotion.json"));
        cr_assert_not_null(strstr(c.dialogue_dir, "/dialogue"));
        cr_assert_not(c.insecure_tcp, "tcp:// needs CURVE unless the configuration says otherwise");
        /* Beside the configuration file, wherever the install's prefix put it. */
        size_t confdir = strrchr(emo_paths()->config, '/') - emo_paths()->config;
        cr_assert(strncmp(c.server_cert, emo_paths()->config, confdir) == 0 &&
                  strcmp(c.server_cert + confdir, "/server.cert") == 0, "server_cert = %s", c.server_cert);
        cr_assert(strncmp(c.clients_dir, emo_paths()->config, confdir) == 0 &&
                  strcmp(c.clients_dir + confdir, "/clients.d") == 0, "clients_dir = %s", c.clients_dir);
        emo_error_t err = { "" };
        cr_assert_eq(emo_config_validate(&c, &err), 0, "%s", err.message);
        emo_config_done(&c);
}

/* The installed emotiond.conf (configured from deploy/emotiond.conf.in) says "the value shown is
 * the default": loading it must change nothing but the endpoint, which it spells out. */
Test(config, shipped_file_matches_the_defaults) {
        emo_config_t d, c;
        cr_assert_eq(emo_config_init(&d), 0);
        cr_assert_eq(emo_config_init(&c), 0);
        char *path = strdup(EMO_TEST_CONF);
        emo_error_t err = { "" };
        cr_assert_eq(emo_config_load(&c, path, &err), 0, "%s", err.message);
        cr_assert_eq(c.workers, d.workers);
        cr_assert_eq(c.threads, d.threads);
        cr_assert_eq(c.queue_capacity, d.queue_capacity);
        cr_assert_eq(c.max_connections, d.max_connections);
        cr_assert_eq(c.client_timeout_ms, d.client_timeout_ms);
        cr_assert_eq(c.max_message_bytes, d.max_message_bytes);
        cr_assert_eq(c.max_pixels, d.max_pixels);
        cr_assert_eq(c.max_faces, d.max_faces);
        cr_assert_eq(c.memory_budget_mb, d.memory_budget_mb);
        cr_assert_eq(c.detect_max_side, d.detect_max_side);
        cr_assert_eq(c.min_face, d.min_face);
        cr_assert_float_eq(c.score_threshold, d.score_threshold, 1e-12);
        cr_assert_str_eq(c.detector, d.detector);
        cr_assert_str_eq(c.device, d.device);
        cr_assert_str_eq(c.language, d.language);
        cr_assert_eq(c.log_results, d.log_results);
        cr_assert_eq(c.insecure_tcp, d.insecure_tcp);
        cr_assert_str_eq(c.server_cert, d.server_cert);
        cr_assert_str_eq(c.clients_dir, d.clients_dir);
        cr_assert_str_eq(c.model, d.model);
        cr_assert_str_eq(c.dialogue_dir, d.dialogue_dir);
        cr_assert_str_eq(c.endpoints, "ipc:///run/emotiond/emotiond.sock");
        cr_assert_eq(emo_config_validate(&c, &err), 0, "%s", err.message);
        free(path);
        emo_config_done(&c);
        emo_config_done(&d);
}

Test(config, file_values) {
        emo_config_t c;
        cr_assert_eq(emo_config_init(&c), 0);
        const char *p = write_ini("# test\n"
                                  "[server]\n"
                                  "endpoints = ipc:///tmp/x.sock, tcp://127.0.0.1:5560\n"
                                  "workers = 3\n"
                                  "queue_capacity = 5\n"
                                  "[model]\n"
                                  "model = /opt/m.json\n"
                                  "device = cpu\n"
                                  "[detector]\n"
                                  "detector = blazeface\n"
                                  "blazeface_model = /opt/bf.onnx\n"
                                  "score_threshold = 0.75\n"
                                  "[limits]\n"
                                  "max_message_bytes = 100000\n"
                                  "max_faces = 8\n"
                                  "[dialogue]\n"
                                  "language = en\n");
        emo_error_t err = { "" };
        cr_assert_eq(emo_config_load(&c, p, &err), 0, "%s", err.message);
        cr_assert_str_eq(c.endpoints, "ipc:///tmp/x.sock, tcp://127.0.0.1:5560");
        cr_assert_eq(c.workers, 3);
        cr_assert_eq(c.queue_capacity, 5);
        cr_assert_str_eq(c.model, "/opt/m.json");
        cr_assert_str_eq(c.device, "cpu");
        cr_assert_str_eq(c.detector, "blazeface");
        cr_assert_str_eq(c.blazeface_model, "/opt/bf.onnx");
        cr_assert_eq(emo_config_validate(&c, &err), 0, "%s", err.message);
        cr_assert_float_eq(c.score_threshold, 0.75, 1e-12);
        cr_assert_eq(c.max_message_bytes, 100000);
        cr_assert_eq(c.max_faces, 8);
        cr_assert_str_eq(c.language, "en");
        cr_assert_eq(c.threads, 1, "keys not in the file keep their default");
        emo_config_done(&c);
}

Test(config, unknown_key_names_file_and_line) {
        emo_config_t c;
        cr_assert_eq(emo_config_init(&c), 0);
        const char *p = write_ini("[server]\n"
                                  "workers = 2\n"
                                  "\n"
                                  "wrokers = 4\n");
        emo_error_t err = { "" };
        cr_assert_eq(emo_config_load(&c, p, &err), -EINVAL);
        char want[128];
        snprintf(want, sizeof(want), "%s:4:", p);
        cr_assert_not_null(strstr(err.message, want), "message '%s' should start with '%s'", err.message, want);
        cr_assert_not_null(strstr(err.message, "wrokers"), "message '%s' should name the key", err.message);
        emo_config_done(&c);
}

Test(config, key_in_the_wrong_section) {
        emo_config_t c;
        cr_assert_eq(emo_config_init(&c), 0);
        const char *p = write_ini("[limits]\nworkers = 2\n");
        emo_error_t err = { "" };
        cr_assert_eq(emo_config_load(&c, p, &err), -EINVAL);
        cr_assert_not_null(strstr(err.message, ":2:"), "%s", err.message);
        cr_assert_not_null(strstr(err.message, "[server]"), "message '%s' should say where the key belongs", err.message);
        emo_config_done(&c);
}

Test(config, out_of_range_and_bad_numbers_in_file) {
        static const char *const bad[] = {
                "[server]\nworkers = 1000\n",          "[server]\nqueue_capacity = 0\n",
                "[server]\nthreads = -1\n",            "[limits]\nmax_message_bytes = 10\n",
                "[detector]\nscore_threshold = 1.5\n", "[limits]\nmax_faces = lots\n",
                "[limits]\nmax_pixels = 12abc\n",     "[server]\nworkers = \n",
                "[server]\nmax_connections = 0\n",   "[server]\nclient_timeout_ms = 99\n",
                "[limits]\nmemory_budget_mb = -1\n", "[limits]\nmemory_budget_mb = 16777217\n",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                emo_config_t c;
                cr_assert_eq(emo_config_init(&c), 0);
                const char *p = write_ini(bad[i]);
                emo_error_t err = { "" };
                cr_assert_eq(emo_config_load(&c, p, &err), -EINVAL, "accepted: %s", bad[i]);
                cr_assert_not_null(strstr(err.message, ":2:"), "'%s' has no line number", err.message);
                emo_config_done(&c);
                unlink(p);
        }
}

/* strtod reads "nan" and "inf": a value that is not a finite number is refused like any other
 * bad number, whichever range the key has (NaN fails both ends of a range check unnoticed). */
Test(config, non_finite_numbers_refused) {
        static const char *const values[] = { "nan", "NaN", "-nan", "nan(0x1)", "inf", "-inf", "infinity", "1e999" };
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                emo_config_t c;
                cr_assert_eq(emo_config_init(&c), 0);
                emo_error_t err = { "" };
                cr_assert_eq(emo_config_set(&c, "score_threshold", values[i], &err), -EINVAL,
                             "score_threshold = %s accepted", values[i]);
                cr_assert_not_null(strstr(err.message, "score_threshold"), "message '%s' should name the key", err.message);
                cr_assert_not_null(strstr(err.message, values[i]), "message '%s' should give the value", err.message);
                cr_assert_float_eq(c.score_threshold, 0.6, 1e-12, "a refused value changes nothing");
                emo_config_done(&c);
        }
        emo_config_t c;
        cr_assert_eq(emo_config_init(&c), 0);
        const char *p = write_ini("[detector]\nscore_threshold = nan\n");
        emo_error_t err = { "" };
        cr_assert_eq(emo_config_load(&c, p, &err), -EINVAL, "score_threshold = nan accepted in a file");
        cr_assert_not_null(strstr(err.message, ":2:"), "'%s' has no line number", err.message);
        cr_assert_not_null(strstr(err.message, "not a finite number"), "%s", err.message);
        emo_config_done(&c);
}

/* The default language is a code like the ones clients send (and the daemon accepts). */
Test(config, language_must_be_a_code) {
        static const char *const bad[] = { "", "fr FR", "fran\xc3\xa7" "ais", "abcdefghijklmnopq" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                emo_config_t c;
                emo_error_t err = { "" };
                cr_assert_eq(emo_config_init(&c), 0);
                cr_assert_eq(emo_config_set(&c, "language", bad[i], &err), 0);
                cr_assert_eq(emo_config_validate(&c, &err), -EINVAL, "language = '%s' accepted", bad[i]);
                cr_assert_not_null(strstr(err.message, "language"), "%s", err.message);
                emo_config_done(&c);
        }
        static const char *const good[] = { "fr", "en-GB", "pt_BR", "es-419" };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                emo_config_t c;
                emo_error_t err = { "" };
                cr_assert_eq(emo_config_init(&c), 0);
                cr_assert_eq(emo_config_set(&c, "language", good[i], &err), 0);
                cr_assert_eq(emo_config_validate(&c, &err), 0, "language = '%s': %s", good[i], err.message);
                emo_config_done(&c);
        }
}

/* log_results, the one switch that lets the daemon write results to its log: a boolean in
 * [logging], spelt as systemd spells them; anything else is refused rather than read as off or on. */
Test(config, log_results_boolean) {
        static const struct {
                const char *value;
                bool want;
        } good[] = { { "true", true }, { "yes", true }, { "on", true }, { "1", true }, { "TRUE", true },
                     { "false", false }, { "no", false }, { "off", false }, { "0", false }, { "No", false } };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                emo_config_t c;
                cr_assert_eq(emo_config_init(&c), 0);
                c.log_results = !good[i].want;
                char text[64];
                snprintf(text, sizeof(text), "[logging]\nlog_results = %s\n", good[i].value);
                const char *p = write_ini(text);
                emo_error_t err = { "" };
                cr_assert_eq(emo_config_load(&c, p, &err), 0, "log_results = %s: %s", good[i].value, err.message);
                cr_assert_eq(c.log_results, good[i].want, "log_results = %s read as %d", good[i].value, c.log_results);
                emo_config_done(&c);
                unlink(p);
        }
        static const char *const bad[] = { "maybe", "", "2", "truee", "-1" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                emo_config_t c;
                cr_assert_eq(emo_config_init(&c), 0);
                char text[64];
                snprintf(text, sizeof(text), "[logging]\nlog_results = %s\n", bad[i]);
                const char *p = write_ini(text);
                emo_error_t err = { "" };
                cr_assert_eq(emo_config_load(&c, p, &err), -EINVAL, "log_results = '%s' accepted", bad[i]);
                cr_assert_not_null(strstr(err.message, ":2:"), "'%s' has no line number", err.message);
                cr_assert_not_null(strstr(err.message, "log_results"), "message '%s' should name the key", err.message);
                cr_assert_not(c.log_results, "a refused value changes nothing");
                emo_config_done(&c);
                unlink(p);
        }
        emo_config_t c;
        cr_assert_eq(emo_config_init(&c), 0);
        const char *p = write_ini("[server]\nlog_results = true\n");
        emo_error_t err = { "" };
        cr_assert_eq(emo_config_load(&c, p, &err), -EINVAL);
        cr_assert_not_null(strstr(err.message, "[logging]"), "message '%s' should say where the key belongs", err.message);
        emo_config_done(&c);
        /* --log-results sets it like this. */
        cr_assert_eq(emo_config_init(&c), 0);
        cr_assert_eq(emo_config_set(&c, "log_results", "true", &err), 0, "%s", err.message);
        cr_assert(c.log_results);
        emo_config_done(&c);
}

Test(config, missing_file) {
        emo_config_t c;
        cr_assert_eq(emo_config_init(&c), 0);
        emo_error_t err = { "" };
        cr_assert_eq(emo_config_load(&c, "/nonexistent/emotiond.conf", &err), -ENOENT);
        cr_assert_not_null(strstr(err.message, "/nonexistent/emotiond.conf"), "%s", err.message);
        emo_config_done(&c);
}

/* emotiond --set KEY=VALUE and the named options go through emo_config_set. */
Test(config, set) {
        emo_config_t c;
        cr_assert_eq(emo_config_init(&c), 0);
        emo_error_t err = { "" };
        cr_assert_eq(emo_config_set(&c, "max_faces", "8", &err), 0, "%s", err.message);
        cr_assert_eq(c.max_faces, 8);
        cr_assert_eq(emo_config_set(&c, "max_message_bytes", "100000", &err), 0, "%s", err.message);
        cr_assert_eq(c.max_message_bytes, 100000);
        cr_assert_eq(emo_config_set(&c, "language", "en", &err), 0);
        cr_assert_str_eq(c.language, "en");
        cr_assert_eq(emo_config_set(&c, "score_threshold", "0.9", &err), 0);
        cr_assert_float_eq(c.score_threshold, 0.9, 1e-12);

        cr_assert_eq(emo_config_set(&c, "max_faces", "0", &err), -EINVAL);
        cr_assert_not_null(strstr(err.message, "out of range"), "%s", err.message);
        cr_assert_not_null(strstr(err.message, "1..1024"), "message '%s' should give the range", err.message);
        cr_assert_eq(c.max_faces, 8, "a refused value changes nothing");
        cr_assert_eq(emo_config_set(&c, "workers", "two", &err), -EINVAL);
        cr_assert_not_null(strstr(err.message, "not a number"), "%s", err.message);
        cr_assert_eq(emo_config_set(&c, "queue_capacity", "-5", &err), -EINVAL);
        cr_assert_eq(emo_config_set(&c, "max_pixels", "99999999999999999999999", &err), -EINVAL);
        cr_assert_eq(emo_config_set(&c, "bogus", "1", &err), -EINVAL);
        cr_assert_not_null(strstr(err.message, "bogus"), "%s", err.message);
        emo_config_done(&c);
}

Test(config, validate) {
        emo_config_t c;
        emo_error_t err = { "" };
        cr_assert_eq(emo_config_init(&c), 0);
        cr_assert_eq(emo_config_set(&c, "device", "gpu", &err), 0);
        cr_assert_eq(emo_config_validate(&c, &err), -EINVAL);
        cr_assert_not_null(strstr(err.message, "device"), "%s", err.message);
        emo_config_done(&c);

        cr_assert_eq(emo_config_init(&c), 0);
        cr_assert_eq(emo_config_set(&c, "detector", "dlib", &err), 0);
        cr_assert_eq(emo_config_validate(&c, &err), -EINVAL);
        cr_assert_not_null(strstr(err.message, "detector"), "%s", err.message);
        emo_config_done(&c);

        cr_assert_eq(emo_config_init(&c), 0);
        cr_assert_eq(emo_config_set(&c, "language", "", &err), 0);
        cr_assert_eq(emo_config_validate(&c, &err), -EINVAL);
        emo_config_done(&c);

        cr_assert_eq(emo_config_init(&c), 0);
        cr_assert_eq(emo_config_set(&c, "endpoints", "", &err), 0);
        cr_assert_eq(emo_config_validate(&c, &err), -EINVAL);
        emo_config_done(&c);
}

/* The daemon binds each comma- or space-separated item of `endpoints`: a list of separators only
 * would bind nothing, and the daemon would report itself ready while nobody can reach it. */
Test(config, endpoints_without_an_endpoint) {
        static const char *const lists[] = { ",", " , ", " ", ",,", "  ,  ,  " };
        for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
                emo_config_t c;
                emo_error_t err = { "" };
                cr_assert_eq(emo_config_init(&c), 0);
                cr_assert_eq(emo_config_set(&c, "endpoints", lists[i], &err), 0);
                cr_assert_eq(emo_config_validate(&c, &err), -EINVAL, "endpoints = '%s' accepted", lists[i]);
                cr_assert_not_null(strstr(err.message, "endpoints"), "message '%s' should name the key", err.message);
                emo_config_done(&c);
        }
        emo_config_t c;
        emo_error_t err = { "" };
        cr_assert_eq(emo_config_init(&c), 0);
        cr_assert_eq(emo_config_set(&c, "endpoints", " ipc:///tmp/a.sock , tcp://127.0.0.1:5560,", &err),
                     0);
        cr_assert_eq(emo_config_validate(&c, &err), 0, "endpoints with stray separators: %s", err.message);
        emo_config_done(&c);
}
