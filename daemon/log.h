/* Daemon logging: one line per message on stderr with an sd-daemon priority prefix, so that
 * journald keeps the priority. Only the daemon's program code logs; modules return errors. */
#pragma once

#include <stdio.h>
#include <systemd/sd-daemon.h>

extern int emo_log_max_level; /* LOG_INFO by default; LOG_DEBUG with --verbose */

#define emo__log(level, prefix, fmt, ...)                                         \
        do {                                                                      \
                if ((level) <= emo_log_max_level)                                 \
                        fprintf(stderr, prefix fmt "\n", ##__VA_ARGS__);          \
        } while (0)

#define log_error(fmt, ...) emo__log(3, SD_ERR, fmt, ##__VA_ARGS__)
#define log_warning(fmt, ...) emo__log(4, SD_WARNING, fmt, ##__VA_ARGS__)
#define log_notice(fmt, ...) emo__log(5, SD_NOTICE, fmt, ##__VA_ARGS__)
#define log_info(fmt, ...) emo__log(6, SD_INFO, fmt, ##__VA_ARGS__)
#define log_debug(fmt, ...) emo__log(7, SD_DEBUG, fmt, ##__VA_ARGS__)
