/* `emotion health`: ask the daemon who it is and how it is doing (HealthReply). */
#pragma once

#include "cli.h"

int cli_health_main(const cli_options_t *defaults, int argc, char **argv);
