/* The daemon's default folders: configured ones in the build tree, those of the prefix it runs
 * from once installed (`cmake --install --prefix P`), by GNUInstallDirs' rules. The build's own
 * folders are GNUInstallDirs' defaults (sbin, share, etc, var), as every test build configures. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"

static void expect(const char *exe, const char *data, const char *state, const char *config) {
        emo_paths_t p = {};
        cr_assert_eq(emo_paths_resolve(exe, &p), 0);
        cr_expect_str_eq(p.datadir, data, "%s: datadir", exe);
        cr_expect_str_eq(p.statedir, state, "%s: statedir", exe);
        cr_expect_str_eq(p.config, config, "%s: config", exe);
        emo_paths_done(&p);
}

Test(paths, any_prefix_follows_the_program) {
        expect("/tmp/x/sbin/emotiond", "/tmp/x/share/emotiond", "/tmp/x/var/lib/emotiond",
               "/tmp/x/etc/emotiond/emotiond.conf");
}

Test(paths, usr_uses_etc_and_var) {
        expect("/usr/sbin/emotiond", "/usr/share/emotiond", "/var/lib/emotiond", "/etc/emotiond/emotiond.conf");
}

Test(paths, opt_package_uses_etc_opt) {
        expect("/opt/emo/sbin/emotiond", "/opt/emo/share/emotiond", "/var/opt/emo/lib/emotiond",
               "/etc/opt/emo/emotiond/emotiond.conf");
}

Test(paths, outside_an_sbin_keeps_the_configured_folders) {
        emo_paths_t conf = {};
        cr_assert_eq(emo_paths_resolve(NULL, &conf), 0);
        expect("/home/me/emotiond/build/bin/emotiond", conf.datadir, conf.statedir, conf.config);
        expect("/home/me/notsbin/emotiond", conf.datadir, conf.statedir, conf.config);
        emo_paths_done(&conf);
}

Test(paths, this_process) {
        /* The test program is not in an sbin folder: the configured folders, never NULL. */
        emo_paths_t conf = {};
        cr_assert_eq(emo_paths_resolve(NULL, &conf), 0);
        cr_expect_str_eq(emo_paths()->datadir, conf.datadir);
        cr_expect_str_eq(emo_paths()->config, conf.config);
        emo_paths_done(&conf);
}
