/* Signals as events on a file descriptor, whatever thread the kernel delivers them to.
 *
 * A process-directed signal goes to any thread that does not block it. Blocking the signals in
 * main() and reading a signalfd is not enough: libraries may start threads from their
 * constructors, before main() runs (OpenBLAS starts its pool that way when it is libblas.so.3,
 * and OpenCV links BLAS), and those threads have nothing blocked, so SIGTERM would take its
 * default action there and kill the daemon in the middle of its drain. So every signal named here
 * gets a real handler, which only writes the signal number to a non-blocking pipe; the server loop
 * polls the pipe's read end. Whichever thread runs the handler, the signal ends up as one byte on
 * the pipe, and never takes its default action. */
#pragma once

#include <stddef.h>

/* Install the handler for each of the n signals (SA_RESTART, so that library threads interrupted
 * by it resume their system calls) and return the pipe's read end (non-blocking, close-on-exec) in
 * *ret_fd. The calling thread also blocks the signals, so that it and the threads it starts later
 * leave them to a thread that does not (when none is left, the kernel keeps them pending for the
 * poll loop, which is what it is for: emo_signals_unblock). One pipe per process: a second call
 * fails with -EBUSY. 0, or -errno. */
int emo_signals_open(const int *signals, size_t n, int *ret_fd);

/* Let the calling thread (the one that polls the pipe) take the signals from now on. Call after
 * the worker threads have started, so that they inherited the block. */
void emo_signals_unblock(void);

/* The next signal received, removed from the pipe: its number (> 0), -EAGAIN when none is
 * waiting, or another -errno. */
int emo_signals_next(int fd);

/* Restore the default actions and close the pipe. */
void emo_signals_close(int fd);
