/* emotion: the command-line client of emotiond. The contract (commands, options, output formats,
 * exit codes) is docs/cli.md; scripts depend on it. */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "analyze.h"
#include "bench.h"
#include "watch.h"
#include "cli.h"
#include "eval.h"
#include "health.h"
#include "keygen.h"
#include "stats.h"
#include "output.h"

#ifndef EMO_VERSION
#define EMO_VERSION "unknown"
#endif

static const struct {
        const char *name;
        int (*main)(const cli_options_t *defaults, int argc, char **argv);
        const char *summary;
} commands[] = {
        { "analyze", cli_analyze_main, "find faces in images and classify their emotion" },
        { "watch", cli_watch_main, "the same for a video file, a camera or a stream, frame by frame" },
        { "eval", cli_eval_main, "measure accuracy on a FER2013 CSV" },
        { "health", cli_health_main, "show the daemon's version, model and state" },
        { "bench", cli_bench_main, "measure throughput and latency of a local daemon" },
        { "stats", cli_stats_main, "show the daemon's metrics (replies, latency per stage, load)" },
        { "keygen", cli_keygen_main, "make a CURVE certificate for a client (or for the daemon)" },
};

static void help(void) {
        printf("Usage: %s [OPTION]... COMMAND [ARG]...\n"
               "Talk to emotiond, the facial emotion recognition daemon.\n"
               "\n"
               "Commands:\n",
               cli_program_name);
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                printf("  %-10s %s\n", commands[i].name, commands[i].summary);
        printf("  %-10s %s\n", "help", "show the help of a command");
        printf("\n"
               "Options (also accepted after the command):\n"
               "      --json           machine-readable output (JSON, one object per line)\n"
               CLI_COMMON_HELP
               "  -h, --help           show this help and exit\n"
               "  -V, --version        show the version and exit\n"
               "\n"
               "Run '%s COMMAND --help' for the options of a command.\n"
               "Exit status: 0 success, 1 some input failed, 2 usage error, 3 the daemon did not answer.\n",
               cli_program_name);
}

static void version(void) {
        printf("%s (emotiond) %s\n"
               "wire protocol emotion.v1 (protocol_version %d)\n",
               cli_program_name, EMO_VERSION, EMO_PROTOCOL_VERSION);
}

static int find_command(const char *name) {
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(commands[i].name, name) == 0)
                        return (int) i;
        return -1;
}

static int run(int argc, char **argv) {
        static const struct option options[] = {
                CLI_COMMON_LONG_OPTIONS,
                { "version", no_argument, NULL, 'V' },
                {},
        };
        cli_options_t o = {
                .timeout_ms = CLI_DEFAULT_TIMEOUT_MS,
                .attempts = CLI_DEFAULT_ATTEMPTS,
        };
        int c;

        /* Ctrl-C must stop the program at once, as in any command-line tool: no CZMQ handler that
         * merely sets zsys_interrupted. Initialised once, before `bench` starts threads. */
        zsys_handler_set(NULL);
        zsys_init();
        cli_json_setup();

        argv[0] = (char *) cli_program_name; /* for getopt_long()'s messages */

        /* '+': stop at the command; the rest of the line is the command's. */
        while ((c = getopt_long(argc, argv, "+hV", options, NULL)) >= 0) {
                int r = cli_common_option(&o, NULL, c, optarg);
                if (r < 0)
                        return CLI_EXIT_USAGE;
                if (r > 0)
                        continue;
                switch (c) {
                case 'h':
                        help();
                        return CLI_EXIT_OK;
                case 'V':
                        version();
                        return CLI_EXIT_OK;
                default:
                        return cli_usage_hint(NULL);
                }
        }
        if (optind >= argc)
                return cli_usage_error(NULL, "no command given (analyze, watch, eval, health or bench)");

        const char *name = argv[optind];
        if (strcmp(name, "help") == 0) {
                if (optind + 1 >= argc) {
                        help();
                        return CLI_EXIT_OK;
                }
                name = argv[optind + 1];
                int i = find_command(name);
                if (i < 0)
                        return cli_usage_error(NULL, "unknown command '%s'", name);
                char *hargv[] = { (char *) name, (char *) "--help", NULL };
                return commands[i].main(&o, 2, hargv);
        }
        int i = find_command(name);
        if (i < 0)
                return cli_usage_error(NULL, "unknown command '%s'", name);

        /* getopt_long() names the program from argv[0] in its messages: make it "emotion CMD". */
        char prog[64];
        snprintf(prog, sizeof(prog), "%s %s", cli_program_name, name);
        argv[optind] = prog;
        return commands[i].main(&o, argc - optind, argv + optind);
}

/* Results are the point of the program: output that could not be written (a full disk, a closed
 * pipe with SIGPIPE ignored, /dev/full) is a failure, whatever the command thought. The commands
 * do not check each printf; the stream remembers the error and it is checked once, here. */
static int finish_output(int ret) {
        errno = 0;
        bool failed = fflush(stdout) != 0;
        int error = errno;
        if (!failed && !ferror(stdout))
                return ret;
        if (error)
                cli_error("Failed to write to standard output: %s", strerror(error));
        else
                cli_error("Failed to write to standard output");
        return ret == CLI_EXIT_OK ? CLI_EXIT_FAILED : ret;
}

int main(int argc, char **argv) {
        return finish_output(run(argc, argv));
}
