/* Daemon configuration: defaults, the INI file (deploy/emotiond.conf.in documents every key) and
 * command-line overrides, validated in one place before anything is started. */
#pragma once

#include "emo/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What separates the items of `endpoints` (commas, and spaces around them). */
#define EMO_ENDPOINT_SEPARATORS ", "

typedef struct emo_config {
        char *endpoints;       /* comma-separated ZeroMQ endpoints to bind; NULL: default */
        char *metrics_listen;  /* HOST:PORT of the Prometheus metrics over HTTP; NULL or "": none */
        char *model;           /* model metadata JSON */
        char *detector;        /* "auto", "yunet", "blazeface" or "haar" */
        char *yunet_model;     /* NULL: searched in the data folders */
        char *blazeface_model; /* NULL: searched in the data folders */
        char *haar_model;      /* NULL: OpenCV's haarcascade_frontalface_default.xml */
        char *device;          /* "auto", "cpu", "opencl", "cuda" */
        char *dialogue_dir;    /* folder of <language>.ini dialogue files */
        char *language;        /* default dialogue language */
        unsigned workers;      /* 0: one per core */
        unsigned threads;      /* OpenCV threads per worker */
        unsigned queue_capacity;
        unsigned max_connections;
        unsigned client_timeout_ms;
        uint64_t max_message_bytes;
        uint64_t max_pixels;
        unsigned memory_budget_mb; /* 0: the worst case the configuration allows */
        unsigned max_faces;
        unsigned detect_max_side;
        unsigned min_face;
        double score_threshold;
        /* Write every reply's faces (boxes, emotions, probabilities) to the log, one line per face:
         * a debugging aid, off by default, because results of faces are personal data
         * (docs/privacy.md). Without it no result reaches the log. */
        bool log_results;
        unsigned detect_every; /* smoothed streams: run the detector on every Nth frame, track between */
        /* YuNet: look again with BlazeFace, when its file is installed, at the faces it reads as
         * leaning, for their roll (emo_detector_params_t.lean_model_path). Off by default: it
         * costs per-photo time on ordinary photos (docs/REPORT.md, "YuNet's lean check"). */
        bool lean_check;
        /* CURVE on tcp:// endpoints (daemon/auth.h). server_cert: the daemon's certificate as
         * zcert_save writes it (the public file; its secret half beside it as NAME_secret).
         * clients_dir: the certificates of the clients allowed. insecure_tcp: serve tcp:// in
         * plaintext, without either, for a trusted network only. */
        char *server_cert;
        char *clients_dir;
        bool insecure_tcp;
} emo_config_t;

/* Fill c with the built-in defaults. -ENOMEM. */
int emo_config_init(emo_config_t *c);

/* Read an INI file over c. Unknown sections or keys and bad values are errors: -EINVAL with a
 * message "FILE:LINE: ..." in err; -errno, the file named in err, when it cannot be read. */
int emo_config_load(emo_config_t *c, const char *path, emo_error_t *err);

/* Set one key as if read from the file ("workers", "max_pixels", ...). -EINVAL with err. */
int emo_config_set(emo_config_t *c, const char *key, const char *value, emo_error_t *err);

/* Check the whole configuration for consistency (known detector and device, at least one
 * endpoint in `endpoints`, a language). -EINVAL with err. */
int emo_config_validate(const emo_config_t *c, emo_error_t *err);

void emo_config_done(emo_config_t *c);
