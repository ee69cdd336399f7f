/* Where the daemon listens. Daemon and clients agree on one default so that a private daemon
 * started by a user is found without flags:
 *   1. $EMOTIOND_ENDPOINT when set (any ZeroMQ endpoint: ipc://..., tcp://host:port);
 *   2. ipc://$XDG_RUNTIME_DIR/emotiond/emotiond.sock for a user daemon;
 *   3. ipc:///run/emotiond/emotiond.sock for the system service.
 * A client tries 2 only when that socket file exists, else 3. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define EMO_SYSTEM_ENDPOINT "ipc:///run/emotiond/emotiond.sock"

/* The endpoint a daemon binds by default: $EMOTIOND_ENDPOINT, else the user endpoint when
 * $XDG_RUNTIME_DIR is set and we are not root, else the system endpoint. Returns a malloc'd
 * string, NULL on out-of-memory. */
char *emo_endpoint_default_bind(void);

/* The endpoint a client connects to by default (rules above). Malloc'd, NULL on OOM. */
char *emo_endpoint_default_connect(void);

/* For an ipc:// endpoint, create the folder that holds the socket file (mode 0700 for a user
 * folder, 0755 otherwise) and check that no live server owns the socket file already
 * (-EADDRINUSE). A relative path is taken from the working folder, as ZeroMQ binds it. 0 for
 * non-ipc and abstract (ipc://@name) endpoints or success, -errno on failure. */
int emo_endpoint_prepare(const char *endpoint);
