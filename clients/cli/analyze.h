/* `emotion analyze`: send image files to the daemon (pipelined) and print, in input order, the
 * faces, emotions and dialogue line of each, as text or JSON Lines. */
#pragma once

#include "cli.h"

int cli_analyze_main(const cli_options_t *defaults, int argc, char **argv);
