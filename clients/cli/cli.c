#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emo/endpoint.h"
#include "emo/protocol.h" /* emo_language_valid */
#include "emo/labels.h"
#include "emo/protocol.h" /* EMO_SMOOTH_MAX_WINDOW */
#include "emo/util.h"

const char *cli_program_name = "emotion";

int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (*end != '\0')
                return -EINVAL;
        if (errno == ERANGE || v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int cli_usage_error(const char *command, const char *format, ...) {
        va_list ap;
        fprintf(stderr, "%s%s%s: ", cli_program_name, command ? " " : "", command ?: "");
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
        return cli_usage_hint(command);
}

int cli_usage_hint(const char *command) {
        fprintf(stderr, "Try '%s%s%s --help' for more information.\n", cli_program_name, command ? " " : "",
                command ?: "");
        return CLI_EXIT_USAGE;
}

void cli_error(const char *format, ...) {
        va_list ap;
        fflush(stdout); /* keep the order of stdout and stderr on a terminal */
        fprintf(stderr, "%s: ", cli_program_name);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
}

int cli_parse_option_uint(const char *command, const char *option, const char *arg, uint64_t min, uint64_t max,
                          uint64_t *ret) {
        if (cli_parse_uint(arg, min, max, ret) < 0) {
                cli_usage_error(command, "invalid value '%s' for %s: expected an integer from %llu to %llu", arg,
                                option, (unsigned long long) min, (unsigned long long) max);
                return -EINVAL;
        }
        return 0;
}

int cli_common_option(cli_options_t *o, const char *command, int c, const char *arg) {
        uint64_t v;
        switch (c) {
        case CLI_ARG_SERVER:
                if (!*arg) {
                        cli_usage_error(command, "--server needs a ZeroMQ endpoint such as ipc:///run/x.sock");
                        return -EINVAL;
                }
                o->server = arg;
                return 1;
        case CLI_ARG_TIMEOUT:
                if (cli_parse_option_uint(command, "--timeout", arg, 1, CLI_MAX_TIMEOUT_MS, &v) < 0)
                        return -EINVAL;
                o->timeout_ms = (int) v;
                return 1;
        case CLI_ARG_ATTEMPTS:
                if (cli_parse_option_uint(command, "--attempts", arg, 1, CLI_MAX_ATTEMPTS, &v) < 0)
                        return -EINVAL;
                o->attempts = (int) v;
                return 1;
        case CLI_ARG_JSON:
                o->json = true;
                return 1;
        case CLI_ARG_SERVER_KEY:
        case CLI_ARG_CERT:
                if (!*arg) {
                        cli_usage_error(command, "%s needs a value", c == CLI_ARG_CERT ? "--cert" : "--server-key");
                        return -EINVAL;
                }
                if (setenv(c == CLI_ARG_CERT ? "EMOTIOND_CERT" : "EMOTIOND_SERVER_KEY", arg, 1) < 0)
                        return -errno;
                return 1;
        default:
                return 0;
        }
}

static const struct option connection_options[] = {
        CLI_COMMON_LONG_OPTIONS,
};

static const struct option analysis_options[] = {
        { "lang", required_argument, NULL, CLI_ARG_LANG },
        { "max-faces", required_argument, NULL, CLI_ARG_MAX_FACES },
        { "smooth", required_argument, NULL, CLI_ARG_SMOOTH },
};

#define CLI_MAX_OPTIONS 48

/* One of the analysis options: 1 when c is one, 0 when not, -EINVAL after a usage message. */
static int analysis_option(cli_options_t *o, const char *command, int c, const char *arg) {
        uint64_t v;
        switch (c) {
        case CLI_ARG_LANG:
                if (!emo_language_valid(arg)) {
                        cli_usage_error(command, "invalid language '%s' (expected a code such as fr)", arg);
                        return -EINVAL;
                }
                o->language = arg;
                return 1;
        case CLI_ARG_MAX_FACES:
                if (cli_parse_option_uint(command, "--max-faces", arg, 0, 100000, &v) < 0)
                        return -EINVAL;
                o->max_faces = (unsigned) v;
                return 1;
        case CLI_ARG_SMOOTH:
                if (cli_parse_option_uint(command, "--smooth", arg, 1, EMO_SMOOTH_MAX_WINDOW, &v) < 0)
                        return -EINVAL;
                o->smooth = (unsigned) v;
                return 1;
        default:
                return 0;
        }
}

/* The table getopt_long() sees: --help, then the groups cmd takes, then its own. */
static void command_options(const cli_command_t *cmd, struct option *table) {
        size_t n = 0;
        table[n++] = (struct option) { "help", no_argument, NULL, 'h' };
        if (cmd->takes & CLI_TAKES_CONNECTION)
                for (size_t i = 0; i < ELEMENTSOF(connection_options); i++)
                        if (connection_options[i].val != 'h')
                                table[n++] = connection_options[i];
        if (cmd->takes & CLI_TAKES_ANALYSIS)
                for (size_t i = 0; i < ELEMENTSOF(analysis_options); i++)
                        table[n++] = analysis_options[i];
        for (const struct option *p = cmd->options; p && p->name; p++) {
                assert(n < CLI_MAX_OPTIONS - 1);
                table[n++] = *p;
        }
        table[n] = (struct option) {};
}

/* One option of cmd: CLI_EXIT_OK to go on, else the exit code. */
static int command_option(const cli_command_t *cmd, cli_options_t *o, int c, const char *arg) {
        int r = 0;
        if (cmd->takes & CLI_TAKES_CONNECTION)
                r = cli_common_option(o, cmd->name, c, arg);
        if (r == 0 && (cmd->takes & CLI_TAKES_ANALYSIS))
                r = analysis_option(o, cmd->name, c, arg);
        if (r < 0)
                return CLI_EXIT_USAGE;
        if (r > 0)
                return CLI_EXIT_OK;
        if (c >= CLI_ARG_FIRST && cmd->option)
                return cmd->option(cmd->userdata, c, arg);
        return cli_usage_hint(cmd->name); /* getopt_long() said what is wrong */
}

bool cli_parse_command(const cli_command_t *cmd, cli_options_t *o, int argc, char **argv, int *ret_exit) {
        struct option table[CLI_MAX_OPTIONS];
        command_options(cmd, table);
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", table, NULL)) >= 0) {
                if (c == 'h') {
                        cmd->help();
                        *ret_exit = CLI_EXIT_OK;
                        return false;
                }
                int r = command_option(cmd, o, c, optarg);
                if (r != CLI_EXIT_OK) {
                        *ret_exit = r;
                        return false;
                }
        }
        if (cmd->operand && optind >= argc) {
                *ret_exit = cli_usage_error(cmd->name, "no %s given", cmd->operand);
                return false;
        }
        if (!cmd->operand && optind < argc) {
                *ret_exit = cli_usage_error(cmd->name, "unexpected argument '%s'", argv[optind]);
                return false;
        }
        return true;
}

/* How to get a daemon at ep: the system service for its socket, else one of the user's own. */
static void print_start_hint(const char *ep) {
        if (streq(ep, EMO_SYSTEM_ENDPOINT))
                fprintf(stderr, "Start the system service with 'sudo systemctl start emotiond' (or emotiond.socket), "
                                "or choose another daemon with --server or $EMOTIOND_ENDPOINT.\n");
        else
                fprintf(stderr, "Start one there with 'emotiond --endpoint %s' (see 'emotiond --help'), or choose "
                                "another daemon with --server or $EMOTIOND_ENDPOINT.\n", ep);
}

int cli_client_open(const cli_options_t *o, const char *command, emo_client_t **ret) {
        int r = emo_client_new(o->server, ret);
        if (r == -EINVAL)
                cli_usage_error(command, "invalid endpoint '%s' (expected e.g. ipc:///path or tcp://127.0.0.1:5555)",
                                o->server ?: getenv("EMOTIOND_ENDPOINT") ?: "");
        else if (r == -EBADMSG || r == -ENOKEY || (r == -ENOENT && getenv("EMOTIOND_CERT")))
                cli_error("Failed to set up CURVE: %s (--server-key or $EMOTIOND_SERVER_KEY: the daemon's public "
                          "key or certificate; --cert or $EMOTIOND_CERT: this client's certificate from "
                          "'emotion keygen')",
                          r == -EBADMSG ? "the server key is neither a Z85 key nor a certificate file"
                          : r == -ENOKEY ? "the client certificate has no secret key (give NAME with NAME_secret "
                                           "beside it)"
                                         : "the client certificate cannot be read");
        else if (r < 0)
                cli_error("Failed to open a connection: %s", strerror(-r));
        if (r < 0)
                return r;
        /* Connecting is lazy and libzmq retries a refused connection forever, silently: without
         * this probe a missing daemon, a socket file left by a killed one or a socket this user
         * may not open would each read as "no reply" after every attempt. */
        const char *ep = emo_client_endpoint(*ret);
        bool ipc = strncmp(ep, "ipc://", 6) == 0;
        r = emo_client_probe(*ret, o->timeout_ms < CLI_PROBE_TIMEOUT_MS ? o->timeout_ms : CLI_PROBE_TIMEOUT_MS);
        if (r >= 0)
                return 0;
        if (r == -EACCES)
                /* Connecting to a unix socket needs search permission on its folders and write
                 * permission on the socket itself. */
                cli_error("Failed to connect to emotiond at %s: %s (the system service's socket is open "
                          "to the group emotiond: usermod -aG emotiond USER, then log in again)",
                          ep, strerror(EACCES));
        else {
                if (r == -ENOENT)
                        cli_error("No emotiond at %s: the socket file does not exist, so no daemon is running there.",
                                  ep);
                else if (r == -ECONNREFUSED && ipc)
                        cli_error("No emotiond at %s: the socket file is left from a daemon that no longer runs "
                                  "(connection refused).", ep);
                else if (r == -ECONNREFUSED)
                        cli_error("No emotiond at %s: connection refused, nothing listens there.", ep);
                else
                        cli_error("Failed to connect to emotiond at %s: %s.", ep, strerror(-r));
                print_start_hint(ep);
        }
        *ret = emo_client_free(*ret);
        return r;
}

int cli_open_exit(int error) {
        if (error == -EINVAL)
                return CLI_EXIT_USAGE;
        if (error == -ENOMEM || error == -EACCES)
                return CLI_EXIT_FAILED;
        return CLI_EXIT_UNREACHABLE;
}

int cli_report_unreachable(const cli_options_t *o, const emo_client_t *c) {
        const char *ep = emo_client_endpoint(c);
        bool missing = strncmp(ep, "ipc://", 6) == 0 && access(ep + 6, F_OK) < 0;
        cli_error("No reply from emotiond at %s after %d attempt%s of %d ms%s", ep, o->attempts,
                  o->attempts == 1 ? "" : "s", o->timeout_ms,
                  missing ? " (no socket file there: is emotiond running?)" : "");
        return CLI_EXIT_UNREACHABLE;
}

/* Read all of fd, at most CLI_MAX_FILE_SIZE bytes. */
static int read_fd(int fd, uint8_t **ret_data, size_t *ret_size) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (S_ISREG(st.st_mode) && (uint64_t) st.st_size > CLI_MAX_FILE_SIZE)
                return -EFBIG;

        size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t) st.st_size + 1 : 64 * 1024;
        size_t size = 0;
        _cleanup_free_ uint8_t *data = malloc(cap);
        if (!data)
                return -ENOMEM;
        for (;;) {
                if (size == cap) {
                        if (cap > CLI_MAX_FILE_SIZE)
                                return -EFBIG;
                        size_t ncap = cap * 2 > CLI_MAX_FILE_SIZE + 1 ? CLI_MAX_FILE_SIZE + 1 : cap * 2;
                        uint8_t *p = realloc(data, ncap);
                        if (!p)
                                return -ENOMEM;
                        data = p;
                        cap = ncap;
                }
                ssize_t k = read(fd, data + size, cap - size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        if (size > CLI_MAX_FILE_SIZE)
                return -EFBIG;
        *ret_data = TAKE_PTR(data);
        *ret_size = size;
        return 0;
}

int cli_read_file(const char *name, uint8_t **ret_data, size_t *ret_size) {
        if (strcmp(name, "-") == 0)
                return read_fd(STDIN_FILENO, ret_data, ret_size);
        int fd = open(name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        int r = read_fd(fd, ret_data, ret_size);
        close(fd);
        return r;
}

bool cli_reply_ok(const emo_reply_t *reply) {
        return (int) reply->status == EMO_STATUS_OK;
}

const emo_analyze_reply_t *cli_reply_analyze(const emo_reply_t *reply) {
        if (!cli_reply_ok(reply) || reply->body_case != EMOTION__V1__REPLY__BODY_ANALYZE)
                return NULL;
        return reply->analyze;
}

const emo_health_reply_t *cli_reply_health(const emo_reply_t *reply) {
        if (!cli_reply_ok(reply) || reply->body_case != EMOTION__V1__REPLY__BODY_HEALTH)
                return NULL;
        return reply->health;
}

const char *cli_describe_failure(const cli_options_t *o, int error, const emo_reply_t *reply, char *msg,
                                 size_t len) {
        if (error == -ETIMEDOUT) {
                snprintf(msg, len, "no reply after %d attempt%s of %d ms", o->attempts, o->attempts == 1 ? "" : "s",
                         o->timeout_ms);
                return "timeout";
        }
        if (error == -EFBIG) {
                snprintf(msg, len, "larger than the %u MiB limit", CLI_MAX_FILE_SIZE >> 20);
                return "file_too_large";
        }
        if (error == -EACCES || error == -EKEYREJECTED || error == -EPROTONOSUPPORT) {
                snprintf(msg, len, "%s", emo_client_strerror(error));
                return "auth_error";
        }
        if (error < 0) {
                snprintf(msg, len, "%s", strerror(-error));
                return "io_error";
        }
        if (!cli_reply_ok(reply)) {
                snprintf(msg, len, "%s", *reply->message ? reply->message : "(no message)");
                return emo_status_name(reply->status);
        }
        snprintf(msg, len, "the reply carries no analysis");
        return "protocol_error";
}
