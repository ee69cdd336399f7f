#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

static int write_fd = -1;
static sigset_t handled;

static void on_signal(int signo) {
        int saved = errno;
        unsigned char b = (unsigned char) signo;
        /* A full pipe (64 KiB of unread signals) drops this one: the loop has plenty to read. */
        (void) !write(write_fd, &b, 1);
        errno = saved;
}

int emo_signals_open(const int *signals, size_t n, int *ret_fd) {
        if (write_fd >= 0)
                return -EBUSY;
        int p[2];
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        write_fd = p[1];
        sigemptyset(&handled);
        struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
        sigfillset(&sa.sa_mask); /* one handler at a time per thread; keeps errno handling simple */
        for (size_t i = 0; i < n; i++) {
                if (signals[i] <= 0 || signals[i] > 255 || sigaction(signals[i], &sa, NULL) < 0) {
                        int e = signals[i] <= 0 || signals[i] > 255 ? -EINVAL : -errno;
                        emo_signals_close(p[0]);
                        return e;
                }
                sigaddset(&handled, signals[i]);
        }
        pthread_sigmask(SIG_BLOCK, &handled, NULL);
        *ret_fd = p[0];
        return 0;
}

void emo_signals_unblock(void) {
        pthread_sigmask(SIG_UNBLOCK, &handled, NULL);
}

int emo_signals_next(int fd) {
        unsigned char b;
        ssize_t r = read(fd, &b, 1);
        if (r == 1)
                return b;
        if (r == 0)
                return -EPIPE;
        return -errno;
}

void emo_signals_close(int fd) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        for (int s = 1; s < NSIG; s++)
                if (sigismember(&handled, s) == 1)
                        sigaction(s, &dfl, NULL);
        sigemptyset(&handled);
        if (fd >= 0)
                close(fd);
        if (write_fd >= 0)
                close(write_fd);
        write_fd = -1;
}
