#pragma once

#include "cli.h"

/* emotion watch: video files, cameras and streams, frame by frame (FFmpeg). */
int cli_watch_main(const cli_options_t *defaults, int argc, char **argv);
