/* The server: binds the ROUTER socket(s), owns the fair queue and a pool of worker threads (one
 * pipeline each), and guarantees one reply per request. The dispatcher thread parses requests,
 * answers health and every error it can see without the CNN, queues analyze requests (OVERLOADED
 * when full), drops expired ones (DEADLINE_EXCEEDED) and hands the rest to idle workers.
 *
 * Shutdown: a SIGTERM or SIGINT read from signal_fd (signals.h) starts draining: systemd hears STOPPING=1, queued
 * requests and new analyze requests get SHUTTING_DOWN, requests already in workers finish and
 * are answered, then emo_server_run returns 0. */
#pragma once

#include "emo/error.h"
#include "config.h"
#include "listen.h"
#include "pipeline.h"

typedef struct emo_server emo_server_t;

/* Start workers (each loads its own pipeline) and bind every endpoint, tcp:// ones as sec says
 * (listen.h); with a certificate, the ZAP handler (auth.h) admits the clients of
 * config->clients_dir, read again at each SIGHUP. sec must outlive the server. -errno with the
 * reason in err (emo/error.h), ready to log. */
int emo_server_new(const emo_config_t *config, const emo_pipeline_shared_t *shared, unsigned workers,
                   const emo_tcp_security_t *sec, emo_server_t **ret, emo_error_t *err);

/* Serve until drained after SIGTERM/SIGINT read from signal_fd (emo_signals_open's pipe; the
 * calling thread takes the signals from here on: emo_signals_unblock). Sends READY=1,
 * STATUS= and WATCHDOG=1 to systemd. 0, or -errno on a fatal socket error. */
int emo_server_run(emo_server_t *s, int signal_fd);

/* Stop the workers and close the sockets. Accepts NULL, returns NULL. */
emo_server_t *emo_server_free(emo_server_t *s);
