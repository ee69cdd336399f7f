#include "health.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "emo/endpoint.h"
#include "emo/util.h"
#include "output.h"

static void help(void) {
        printf("Usage: %s health [OPTION]...\n"
               "Show the daemon's version, model, detector, compute device, workers, queue, requests\n"
               "served, uptime and dialogue languages.\n"
               "\n"
               "      --json           print one JSON object\n"
               CLI_COMMON_HELP
               "  -h, --help           show this help and exit\n"
               "\n"
               "Exit status: 0 the daemon answered OK, 1 it answered with an error status,\n"
               "2 usage error, 3 the daemon did not answer.\n",
               cli_program_name);
}

static void print_human(const char *endpoint, const emo_health_reply_t *h) {
        const emo_model_info_t *m = h->model;
        printf("endpoint:        %s\n", endpoint);
        printf("version:         %s\n", h->version);
        printf("model:           %s\n", m ? m->name : "");
        printf("model sha256:    %s\n", m ? m->sha256 : "");
        printf("detector:        %s\n", h->detector);
        printf("device:          %s\n", h->device);
        printf("workers:         %u\n", h->workers);
        printf("queue:           %u/%u\n", h->queue_depth, h->queue_capacity);
        printf("requests served: %llu\n", (unsigned long long) h->requests_served);
        printf("smoothing:       %u stream%s\n", h->smoothed_streams, h->smoothed_streams == 1 ? "" : "s");
        printf("connections:     %u open, %llu refused, %llu shed\n", h->connections,
               (unsigned long long) h->connections_refused, (unsigned long long) h->connections_shed);
        uint64_t s = h->uptime_s;
        printf("uptime:          ");
        if (s >= 86400)
                printf("%llud ", (unsigned long long) (s / 86400));
        printf("%02u:%02u:%02u (%llu s)\n", (unsigned) (s % 86400 / 3600), (unsigned) (s % 3600 / 60),
               (unsigned) (s % 60), (unsigned long long) s);
        printf("languages:       ");
        for (size_t i = 0; i < h->n_languages; i++)
                printf("%s%s", i ? ", " : "", h->languages[i]);
        putchar('\n');
}

static json_object *json_health(const char *endpoint, const emo_health_reply_t *h) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        cli_json_add_string(o, "endpoint", endpoint);
        cli_json_add_string(o, "status", "ok");
        cli_json_add_string(o, "version", h->version);
        cli_json_add_string(o, "model", h->model ? h->model->name : "");
        cli_json_add_string(o, "model_sha256", h->model ? h->model->sha256 : "");
        cli_json_add_string(o, "detector", h->detector);
        cli_json_add_string(o, "device", h->device);
        cli_json_add_uint(o, "workers", h->workers);
        cli_json_add_uint(o, "queue_depth", h->queue_depth);
        cli_json_add_uint(o, "queue_capacity", h->queue_capacity);
        cli_json_add_uint(o, "requests_served", h->requests_served);
        cli_json_add_uint(o, "uptime_s", h->uptime_s);
        cli_json_add_uint(o, "smoothed_streams", h->smoothed_streams);
        cli_json_add_uint(o, "connections", h->connections);
        cli_json_add_uint(o, "connections_refused", h->connections_refused);
        cli_json_add_uint(o, "connections_shed", h->connections_shed);
        json_object *langs = json_object_new_array_ext((int) h->n_languages);
        for (size_t i = 0; langs && i < h->n_languages; i++)
                json_object_array_add(langs, json_object_new_string(h->languages[i]));
        json_object_object_add(o, "languages", langs);
        return o;
}

static void print_json_failure(const char *endpoint, const char *status, const char *message) {
        json_object *o = json_object_new_object();
        if (!o)
                return;
        cli_json_add_string(o, "endpoint", endpoint);
        cli_json_add_string(o, "status", status);
        cli_json_add_string(o, "error", message);
        cli_json_print_line(o);
        json_object_put(o);
}

int cli_health_main(const cli_options_t *defaults, int argc, char **argv) {
        cli_options_t o = *defaults;
        const cli_command_t cmd = { .name = "health", .help = help, .takes = CLI_TAKES_CONNECTION };
        int parsed;
        if (!cli_parse_command(&cmd, &o, argc, argv, &parsed))
                return parsed;

        emo_client_t *client = NULL;
        int r = cli_client_open(&o, "health", &client);
        if (r < 0) {
                if (o.json && cli_open_exit(r) == CLI_EXIT_UNREACHABLE) {
                        _cleanup_free_ char *ep = o.server ? strdup(o.server) : emo_endpoint_default_connect();
                        char msg[160];
                        snprintf(msg, sizeof(msg), "no daemon listens at the endpoint (%s)", strerror(-r));
                        print_json_failure(ep ?: "", "unreachable", msg);
                }
                return cli_open_exit(r);
        }
        const char *endpoint = emo_client_endpoint(client);

        emo_health_request_t hr = EMOTION__V1__HEALTH_REQUEST__INIT;
        emo_request_t req = EMOTION__V1__REQUEST__INIT;
        req.body_case = EMOTION__V1__REQUEST__BODY_HEALTH;
        req.health = &hr;

        emo_reply_t *reply = NULL;
        int ret;
        r = emo_client_call(client, &req, o.timeout_ms, o.attempts, &reply);
        if (r == -ETIMEDOUT) {
                if (o.json)
                        print_json_failure(endpoint, "unreachable", "no reply from the daemon");
                ret = cli_report_unreachable(&o, client);
        } else if (r < 0) {
                cli_error("Failed to talk to emotiond at %s: %s", endpoint, emo_client_strerror(r));
                if (o.json)
                        print_json_failure(endpoint, "unreachable", emo_client_strerror(r));
                ret = CLI_EXIT_UNREACHABLE;
        } else if (!cli_reply_health(reply)) {
                bool ok = cli_reply_ok(reply);
                const char *status = ok ? "protocol_error" : emo_status_name(reply->status);
                const char *message = ok ? "the reply carries no health report" : reply->message;
                cli_error("%s: %s: %s", endpoint, status, message);
                if (o.json)
                        print_json_failure(endpoint, status, message);
                ret = CLI_EXIT_FAILED;
        } else {
                if (o.json) {
                        json_object *j = json_health(endpoint, reply->health);
                        if (j)
                                cli_json_print_line(j);
                        json_object_put(j);
                } else
                        print_human(endpoint, reply->health);
                ret = CLI_EXIT_OK;
        }

        emo_reply_free(reply);
        emo_client_free(client);
        return ret;
}
