/* `emotion keygen NAME`: make a CURVE certificate (a key pair) for a client or for the daemon. */
#pragma once

#include "cli.h"

int cli_keygen_main(const cli_options_t *defaults, int argc, char **argv);
