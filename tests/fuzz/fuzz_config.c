/* Fuzz target: the configuration file (emotiond.conf), which the administrator writes, not a
 * client: text read with emo_config_load (inih and the key table), then emo_config_validate. The
 * file is a memfd, read through its /proc/self/fd path as the daemon reads a file by name.
 *
 * Oracles, besides the sanitizers: the documented errors only, each with a message. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

static int fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc, (void) argv;
        fd = memfd_create("emotiond.conf", MFD_CLOEXEC);
        if (fd < 0) {
                perror("fuzz_config: memfd_create");
                exit(1);
        }
        return 0;
}

static void check(bool ok, const char *what, int r, const char *err) {
        if (!ok) {
                fprintf(stderr, "fuzz_config: %s (%d: %s)\n", what, r, err);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t) size)
                abort();
        char path[64];
        emo_error_t err = { "" };
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        emo_config_t c;
        if (emo_config_init(&c) < 0)
                return 0;
        int r = emo_config_load(&c, path, &err);
        check(r == 0 || r == -EINVAL || r == -ENOMEM, "emo_config_load: unexpected error", r, err.message);
        check(r == 0 || err.message[0], "emo_config_load: error without a message", r, err.message);
        if (r == 0) {
                r = emo_config_validate(&c, &err);
                check(r == 0 || (r == -EINVAL && err.message[0]), "emo_config_validate: unexpected result", r, err.message);
        }
        emo_config_done(&c);
        return 0;
}
