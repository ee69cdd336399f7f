/* The detector policy: which detector the daemon runs and from which file (vision.h,
 * emo_detector_choose). Plain C, no OpenCV: it only looks for files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emo/util.h"
#include "vision.h"

#ifndef EMO_HAAR_DEFAULT
#define EMO_HAAR_DEFAULT "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
#endif

/* A readable file named file in one of the folders: the user's data folder
 * ($XDG_DATA_HOME/emotiond/detectors, else ~/.local/share/emotiond/detectors), then each of dirs
 * (their detectors/ subfolder). NULL when none has it, or out of memory. */
static char *search(const char *file, const char *const *dirs) {
        char *path = NULL;
        const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
        int r = 0;
        if (xdg && *xdg)
                r = asprintf(&path, "%s/emotiond/detectors/%s", xdg, file);
        else if (home && *home)
                r = asprintf(&path, "%s/.local/share/emotiond/detectors/%s", home, file);
        if (r < 0)
                path = NULL;
        if (path && access(path, R_OK) == 0)
                return path;
        free(path);
        for (size_t i = 0; dirs && dirs[i]; i++) {
                if (asprintf(&path, "%s/detectors/%s", dirs[i], file) < 0)
                        return NULL;
                if (access(path, R_OK) == 0)
                        return path;
                free(path);
        }
        return NULL;
}

/* The file of one detector: the configured path as given, else searched. */
static char *find(const char *configured, const char *file, const char *const *dirs) {
        return configured ? strdup(configured) : search(file, dirs);
}

int emo_detector_choose(const char *want, const emo_detector_files_t *files, emo_detector_choice_t *ret,
                        emo_error_t *err) {
        bool any = strcmp(want, "auto") == 0;
        emo_detector_choice_t c = { .kind = EMO_DETECTOR_HAAR };
        /* auto: the best detector whose file is installed, in the order measured in the README. */
        if (any || strcmp(want, "yunet") == 0) {
                c.kind = EMO_DETECTOR_YUNET;
                c.path = find(files->yunet, EMO_YUNET_FILE, files->dirs);
        }
        if (!c.path && (any || strcmp(want, "blazeface") == 0)) {
                c.kind = EMO_DETECTOR_BLAZEFACE;
                c.path = find(files->blazeface, EMO_BLAZEFACE_FILE, files->dirs);
                if (c.path && any)
                        c.warning = "YuNet model (" EMO_YUNET_FILE ") not found, using BlazeFace, which misses faces "
                                    "far from the camera; run the setup script to install YuNet";
        }
        if (!c.path && (any || strcmp(want, "haar") == 0)) {
                c.kind = EMO_DETECTOR_HAAR;
                c.path = strdup(files->haar ? files->haar : EMO_HAAR_DEFAULT);
                if (!c.path)
                        return emo_error_set(err, -ENOMEM, "Failed to choose a detector: out of memory");
                if (any)
                        c.warning = "Neither YuNet (" EMO_YUNET_FILE ") nor BlazeFace (" EMO_BLAZEFACE_FILE ") found, "
                                    "falling back to the Haar cascade, which misses tilted and small faces; run the "
                                    "setup script to install them";
        }
        /* YuNet's lean check is optional: without the file (or the memory to name it), none. */
        if (c.path && c.kind == EMO_DETECTOR_YUNET)
                c.lean_path = find(files->blazeface, EMO_BLAZEFACE_FILE, files->dirs);
        if (!c.path)
                return emo_error_set(err, -ENOENT, "Failed to find the %s detector model %s; set %s_model or run the "
                                                   "setup script",
                                     want,
                                     c.kind == EMO_DETECTOR_YUNET ? EMO_YUNET_FILE : EMO_BLAZEFACE_FILE, want);
        *ret = c;
        return 0;
}

void emo_detector_choice_done(emo_detector_choice_t *c) {
        free(c->path);
        free(c->lean_path);
        c->path = c->lean_path = NULL;
}
