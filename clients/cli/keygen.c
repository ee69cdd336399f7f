#include "keygen.h"

#include <czmq.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "emo/util.h"

static void help(void) {
        printf("Usage: %s keygen [--force] NAME\n"
               "Make a CURVE certificate in CZMQ's format: NAME holds the public key, NAME_secret the\n"
               "key pair (readable by its owner only).\n"
               "\n"
               "For a client: copy NAME into the daemon's clients_dir (/etc/emotiond/clients.d/), send\n"
               "SIGHUP to emotiond, and connect with --cert NAME --server-key KEY.\n"
               "For the daemon: 'emotion keygen /etc/emotiond/server.cert' (server_cert), then give\n"
               "clients the key 'emotiond --print-public-key' shows.\n"
               "\n"
               "      --force          replace NAME and NAME_secret if they exist\n"
               "  -h, --help           show this help and exit\n",
               cli_program_name);
}

enum { ARG_FORCE = CLI_ARG_FIRST };

static int option(void *userdata, int c, const char *arg) {
        (void) arg;
        if (c != ARG_FORCE)
                return cli_usage_hint("keygen");
        *(bool *) userdata = true;
        return CLI_EXIT_OK;
}

int cli_keygen_main(const cli_options_t *defaults, int argc, char **argv) {
        static const struct option options[] = {
                { "force", no_argument, NULL, ARG_FORCE },
                {},
        };
        cli_options_t o = *defaults; /* keygen takes none of the shared options */
        bool force = false;
        const cli_command_t cmd = {
                .name = "keygen",
                .help = help,
                .options = options,
                .option = option,
                .userdata = &force,
                .operand = "NAME",
        };
        int ret;
        if (!cli_parse_command(&cmd, &o, argc, argv, &ret))
                return ret;
        if (optind + 1 != argc)
                return cli_usage_error("keygen", "more than one NAME given");
        const char *name = argv[optind];
        char secret[4096];
        if (!*name || snprintf(secret, sizeof(secret), "%s_secret", name) >= (int) sizeof(secret))
                return cli_usage_error("keygen", "invalid NAME '%s'", name);
        if (!force && (access(name, F_OK) == 0 || access(secret, F_OK) == 0)) {
                cli_error("%s or %s exists already: keep it, or replace it with --force (clients using the old key "
                          "will be refused)",
                          name, secret);
                return CLI_EXIT_FAILED;
        }
        zcert_t *cert = zcert_new();
        if (!cert) {
                cli_error("Failed to make a key pair: %s", strerror(ENOMEM));
                return CLI_EXIT_FAILED;
        }
        _cleanup_free_ char *copy = strdup(name);
        zcert_set_meta(cert, "name", "%s", copy ? basename(copy) : name);
        zcert_set_meta(cert, "created-by", "emotion keygen");
        /* zcert_save writes the secret file with umask 077, then the public one. */
        int r = zcert_save(cert, name);
        if (r < 0) {
                cli_error("Failed to write %s and %s: %s", name, secret, strerror(errno ?: EIO));
                zcert_destroy(&cert);
                return CLI_EXIT_FAILED;
        }
        printf("%s\n", zcert_public_txt(cert));
        fprintf(stderr, "Wrote %s (public) and %s (secret, keep it private)\n", name, secret);
        zcert_destroy(&cert);
        return CLI_EXIT_OK;
}
