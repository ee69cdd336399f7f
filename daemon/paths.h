/* Where the daemon's own files are by default: its data folder (models, dialogue lines, detectors
 * shipped with it), the folder emotiond-setup-detectors downloads face detectors to, and the
 * configuration file.
 *
 * The folders are GNUInstallDirs' ones, fixed when CMake configures the build (paths-config.h),
 * except that an emotiond installed elsewhere follows its own location: run from PREFIX/SBINDIR
 * (e.g. /tmp/x/sbin/emotiond after `cmake --install build --prefix /tmp/x`), it takes PREFIX's
 * folders by GNUInstallDirs' rules (SYSCONFDIR is /etc for the prefixes / and /usr, /etc/opt/P for
 * /opt/P, else PREFIX/etc; LOCALSTATEDIR likewise with /var). Anywhere else (the build tree) it
 * keeps the configured folders. So an install under any prefix starts from its own files, with
 * no option but its configuration. */
#pragma once

typedef struct emo_paths {
        char *datadir;    /* e.g. /usr/share/emotiond */
        char *statedir;   /* e.g. /var/lib/emotiond: detectors/ fetched after installation */
        char *config;     /* e.g. /etc/emotiond/emotiond.conf */
} emo_paths_t;

/* The folders for a program at the absolute path exe (NULL: the configured ones). Fills *ret,
 * whose strings the caller frees with emo_paths_done(). -ENOMEM. */
int emo_paths_resolve(const char *exe, emo_paths_t *ret);

void emo_paths_done(emo_paths_t *p);

/* The folders of this process (from /proc/self/exe), resolved once; never NULL (the configured
 * ones when the program's path cannot be read or memory runs out). Valid until exit. */
const emo_paths_t *emo_paths(void);
