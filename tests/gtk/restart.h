/* emotiond started on a given endpoint, for the tests that kill the daemon and start it again
 * where the client looks for it (emo_test_daemon_start() always picks a fresh folder). */
#pragma once

#include <sys/types.h>

/* Start emotiond at endpoint (one worker, its stderr to log; a tcp:// endpoint in plaintext) and
 * wait until it answers a health request (at most 30 s); its pid. Fails the test when it does not. SIGKILLed when the test
 * process dies. */
pid_t emo_gtk_test_start_at(const char *endpoint, const char *log);
