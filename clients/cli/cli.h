/* What every `emotion` command shares: the connection options (--server, --timeout, --attempts,
 * --json), the exit codes scripts rely on, strict number parsing and the usage-error message.
 * Commands are `int cli_<name>_main(const cli_options_t *defaults, int argc, char **argv)`: they
 * take the global options as defaults, parse their own argv (argv[0] is the command name) with
 * cli_parse_command(), which knows the options commands share, and return an exit code. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "emo/client.h"
#include "emo/endpoint.h"

/* The exit codes are part of the contract (docs/cli.md). */
enum {
        CLI_EXIT_OK = 0,          /* every input succeeded */
        CLI_EXIT_FAILED = 1,      /* some input failed; each failure was reported */
        CLI_EXIT_USAGE = 2,       /* bad command line */
        CLI_EXIT_UNREACHABLE = 3, /* no daemon listens, or no reply after every attempt */
};

/* Image files larger than this are refused before anything is sent: no real photo is this big,
 * and reading a huge file by mistake (a video, a disk image) should fail fast. */
#define CLI_MAX_FILE_SIZE (64u * 1024 * 1024)

#define CLI_DEFAULT_TIMEOUT_MS 10000
#define CLI_DEFAULT_ATTEMPTS 3
/* The longest a tcp:// endpoint is probed for a listener before the first request (cli_client_open). */
#define CLI_PROBE_TIMEOUT_MS 500
#define CLI_MAX_TIMEOUT_MS (24 * 3600 * 1000)
#define CLI_MAX_ATTEMPTS 100

typedef struct cli_options {
        const char *server; /* NULL: $EMOTIOND_ENDPOINT, else emo_endpoint_default_connect() */
        int timeout_ms;     /* per request and per attempt */
        int attempts;       /* sends per request before giving up, >= 1 */
        bool json;
        /* The analysis options of the commands that send images (CLI_TAKES_ANALYSIS), unset
         * elsewhere; NULL or 0: the daemon's choice (cli_request_set_options sends them). */
        const char *language; /* --lang */
        unsigned max_faces;   /* --max-faces */
        unsigned smooth;      /* --smooth N: Options.smooth_frames, else 0 */
} cli_options_t;

/* getopt_long() values of the shared options; commands number their own from CLI_ARG_FIRST. */
enum {
        CLI_ARG_SERVER = 0x100,
        CLI_ARG_TIMEOUT,
        CLI_ARG_ATTEMPTS,
        CLI_ARG_JSON,
        CLI_ARG_SERVER_KEY,
        CLI_ARG_CERT,
        CLI_ARG_LANG,
        CLI_ARG_MAX_FACES,
        CLI_ARG_SMOOTH,
        CLI_ARG_FIRST,
};

#define CLI_COMMON_LONG_OPTIONS                                             \
        { "help", no_argument, NULL, 'h' },                                 \
        { "server", required_argument, NULL, CLI_ARG_SERVER },              \
        { "timeout", required_argument, NULL, CLI_ARG_TIMEOUT },            \
        { "attempts", required_argument, NULL, CLI_ARG_ATTEMPTS },          \
        { "json", no_argument, NULL, CLI_ARG_JSON },                        \
        { "server-key", required_argument, NULL, CLI_ARG_SERVER_KEY },      \
        { "cert", required_argument, NULL, CLI_ARG_CERT }

/* Help text lines for the shared options, for each command's --help. */
#define CLI_COMMON_HELP                                                                        \
        "      --server EP      daemon endpoint (default: $EMOTIOND_ENDPOINT, else the user\n"  \
        "                       socket when it exists, else " EMO_SYSTEM_ENDPOINT ")\n"         \
        "      --timeout MS     wait at most MS milliseconds per request attempt (default 10000)\n" \
        "      --attempts N     send each request at most N times before giving up (default 3)\n" \
        "      --server-key KEY the daemon's CURVE public key for tcp:// (Z85, or a certificate\n" \
        "                       file; default $EMOTIOND_SERVER_KEY)\n"                    \
        "      --cert FILE      this client's certificate from 'emotion keygen' (default\n"  \
        "                       $EMOTIOND_CERT)\n"

extern const char *cli_program_name;

/* Apply one of the shared options (getopt_long()'s value c and argument arg) to o.
 * --server-key and --cert set $EMOTIOND_SERVER_KEY and $EMOTIOND_CERT, which every client the
 * command opens reads (emo_client_new), the threads of `bench` included.
 * 1 when c was a shared option, 0 when it is not one, -EINVAL after printing a usage message for
 * a bad value (command: for the hint, NULL at the global level). */
int cli_common_option(cli_options_t *o, const char *command, int c, const char *arg);

/* What a command adds to the shared options, for cli_parse_command(). */
enum {
        CLI_TAKES_CONNECTION = 1 << 0, /* the CLI_COMMON_LONG_OPTIONS but --help (every command but keygen) */
        CLI_TAKES_ANALYSIS = 1 << 1,   /* --lang, --max-faces and --smooth, into cli_options_t */
};

typedef struct cli_command {
        const char *name;             /* "analyze": in messages and the hint to --help */
        void (*help)(void);           /* prints the command's --help on stdout */
        unsigned takes;               /* CLI_TAKES_* */
        const struct option *options; /* the command's own, values from CLI_ARG_FIRST on, ended by {};
                                       * NULL: none */
        /* Applies one of the command's own options: CLI_EXIT_OK, or an exit code after reporting
         * (cli_usage_error()) a bad value. */
        int (*option)(void *userdata, int c, const char *arg);
        void *userdata;
        /* The operands' name for "no OPERAND given" when there is none; NULL: the command takes no
         * operand ("unexpected argument"). More than one is the command's own business. */
        const char *operand;
} cli_command_t;

/* Parse a command's argv (argv[0] its name) with getopt_long(): -h/--help, the shared options into
 * o (which holds the global options as defaults), those cmd->takes, and the command's own through
 * cmd->option. true: go on with the operands, argv[optind] to argv[argc - 1]. false: the command
 * ends at once with the exit code in *ret_exit, CLI_EXIT_OK after --help, or the option's exit code
 * after a bad one (reported). */
bool cli_parse_command(const cli_command_t *cmd, cli_options_t *o, int argc, char **argv, int *ret_exit);

/* Parse a decimal number in [min, max] (no sign, no trailing characters). 0 or -EINVAL/-ERANGE. */
int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* cli_parse_uint() for the value arg of an option: on failure print "invalid value 'ARG' for OPTION:
 * expected an integer from MIN to MAX" with the hint to --help and return -EINVAL. */
int cli_parse_option_uint(const char *command, const char *option, const char *arg, uint64_t min, uint64_t max,
                          uint64_t *ret);

/* Print "emotion[ COMMAND]: MESSAGE" and the hint to --help on stderr; returns CLI_EXIT_USAGE.
 * command may be NULL (the global level). */
int cli_usage_error(const char *command, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* After getopt_long() reported a bad option itself (argv[0] is "emotion COMMAND", so its message
 * names the command): print the hint to --help and return CLI_EXIT_USAGE. */
int cli_usage_hint(const char *command);

/* Print "emotion: MESSAGE" on stderr. */
void cli_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Open a client for o->server (or the default endpoint) and make sure something listens there
 * (emo_client_probe, at most CLI_PROBE_TIMEOUT_MS for tcp://), so that a missing daemon is said at
 * once, with the endpoint and how to start one, rather than after every attempt's timeout. Prints
 * the error itself (command: for the hint to --help).
 * 0, or -EINVAL for a malformed endpoint (a usage error), -ENOMEM, -EACCES for an ipc socket
 * this user may not connect to (not in the socket's group), -ENOENT (no socket file),
 * -ECONNREFUSED (a stale socket file, a closed port) or another connect(2) error. */
int cli_client_open(const cli_options_t *o, const char *command, emo_client_t **ret);

/* For _cleanup_(cli_client_freep): the connection of a command. */
static inline void cli_client_freep(emo_client_t **c) {
        *c = emo_client_free(*c);
}

/* The exit status for cli_client_open's error: CLI_EXIT_USAGE, CLI_EXIT_FAILED (out of memory,
 * permission) or CLI_EXIT_UNREACHABLE (no daemon listens). */
int cli_open_exit(int error);

/* The message for a daemon that did not answer: "no reply from EP after N attempts of MS ms",
 * with a hint when an ipc:// socket file does not even exist. Returns CLI_EXIT_UNREACHABLE. */
int cli_report_unreachable(const cli_options_t *o, const emo_client_t *c);

/* Read the whole file name ('-': standard input), at most CLI_MAX_FILE_SIZE bytes, into a malloc'd
 * buffer. 0, -EFBIG when larger, -EISDIR, or the errno of open/read. */
int cli_read_file(const char *name, uint8_t **ret_data, size_t *ret_size);

/* The body of an OK reply of the expected kind, or NULL for an error status or a reply without
 * that body. (Comparing reply->status with EMO_STATUS_OK directly trips -Wenum-compare.) */
const emo_analyze_reply_t *cli_reply_analyze(const emo_reply_t *reply);
const emo_health_reply_t *cli_reply_health(const emo_reply_t *reply);

/* Whether the reply's status is OK. */
bool cli_reply_ok(const emo_reply_t *reply);

/* The status and message of a request that did not give an analysis, as the JSON "status" and
 * "error" fields show them: error is the request window's (negative errno, or 0 when a reply came),
 * reply the reply when error is 0. Returns the status name; writes the message into msg. */
const char *cli_describe_failure(const cli_options_t *o, int error, const emo_reply_t *reply, char *msg,
                                 size_t len);
