/* Daemon logging: one line per message on stderr. Under journald (systemd connects stderr to the
 * journal and says so in $JOURNAL_STREAM) each line starts with its sd-daemon priority prefix
 * ("<3>"), so that the journal keeps the priority; on a terminal, in a file or under another
 * supervisor the lines are plain, since nothing there would strip the prefix. Only the daemon's
 * program code logs; modules return errors. */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

extern int emo_log_max_level; /* LOG_INFO by default; LOG_DEBUG with --verbose */
extern bool emo_log_journal;  /* prefix lines with their priority: set by emo_log_setup() */

/* Whether stderr is the journal stream systemd set up for us: $JOURNAL_STREAM holds the device and
 * inode of that stream, "DEV:INO" (systemd.exec(5)); a stderr redirected elsewhere by the service
 * or a child that inherited the variable has another. */
static inline bool emo_log_stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

static inline void emo_log_setup(void) {
        emo_log_journal = emo_log_stderr_is_journal();
}

#define emo__log(level, prefix, fmt, ...)                                                       \
        do {                                                                                    \
                if ((level) <= emo_log_max_level)                                               \
                        fprintf(stderr, "%s" fmt "\n", emo_log_journal ? prefix : "", ##__VA_ARGS__); \
        } while (0)

#define log_error(fmt, ...) emo__log(3, SD_ERR, fmt, ##__VA_ARGS__)
#define log_warning(fmt, ...) emo__log(4, SD_WARNING, fmt, ##__VA_ARGS__)
#define log_notice(fmt, ...) emo__log(5, SD_NOTICE, fmt, ##__VA_ARGS__)
#define log_info(fmt, ...) emo__log(6, SD_INFO, fmt, ##__VA_ARGS__)
#define log_debug(fmt, ...) emo__log(7, SD_DEBUG, fmt, ##__VA_ARGS__)

/* Log an error and evaluate to r (a negative errno, taken before the message is formatted), for
 * `return log_error_errno(r, "Failed to X: %s", ...);`. */
#define log_error_errno(r, fmt, ...)                  \
        ({                                            \
                int _r_ = (r);                        \
                log_error(fmt, ##__VA_ARGS__);        \
                _r_;                                  \
        })
