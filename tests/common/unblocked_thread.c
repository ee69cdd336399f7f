/* Preloaded into emotiond by the shutdown tests (LD_PRELOAD): a thread started from a library
 * constructor, before main(), with every signal unblocked. That is what OpenBLAS does with its
 * thread pool when it is the system's libblas.so.3 (OpenCV links BLAS): the daemon cannot block
 * signals in a thread it did not start, and must still drain on SIGTERM whichever thread the
 * kernel picks. Once main() has blocked SIGTERM in its own threads, this one is the only taker. */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static void *idle(void *arg) {
        (void) arg;
        for (;;)
                pause();
        return NULL;
}

__attribute__((constructor)) static void start_idle_thread(void) {
        sigset_t none, old;
        sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, &old);
        pthread_t t;
        if (pthread_create(&t, NULL, idle, NULL) == 0)
                pthread_detach(t);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
}
