/* The detector policy (emo_detector_choose): which detector `detector = auto|yunet|blazeface|haar`
 * runs, from which file, and what the administrator is told when auto falls back or a wanted
 * detector's file is missing. Real files in a scratch folder stand for the installed ones. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vision/vision.h"

static char root[] = "/tmp/emo-choose-XXXXXX";
static char user[128], install[128];

/* An empty user data folder and an empty install folder; nothing from the real home is seen. */
static void setup(void) {
        cr_assert_not_null(mkdtemp(root));
        snprintf(user, sizeof(user), "%s/user", root);
        snprintf(install, sizeof(install), "%s/install", root);
        cr_assert_eq(mkdir(user, 0755), 0);
        cr_assert_eq(mkdir(install, 0755), 0);
        char dir[192];
        snprintf(dir, sizeof(dir), "%s/detectors", install);
        cr_assert_eq(mkdir(dir, 0755), 0);
        setenv("XDG_DATA_HOME", user, 1);
}

static void install_file(const char *name) {
        char path[256];
        snprintf(path, sizeof(path), "%s/detectors/%s", install, name);
        FILE *f = fopen(path, "we");
        cr_assert_not_null(f);
        fclose(f);
}

static int choose(const char *want, const char *yunet, emo_detector_choice_t *ret, emo_error_t *err) {
        const char *dirs[] = { install, NULL };
        emo_detector_files_t files = { .yunet = yunet, .haar = "/x/haar.xml", .dirs = dirs };
        return emo_detector_choose(want, &files, ret, err);
}

TestSuite(detector_choice, .init = setup);

Test(detector_choice, auto_takes_yunet_when_installed) {
        install_file(EMO_YUNET_FILE);
        install_file(EMO_BLAZEFACE_FILE);
        emo_detector_choice_t c;
        cr_assert_eq(choose("auto", NULL, &c, NULL), 0);
        cr_expect_eq(c.kind, EMO_DETECTOR_YUNET);
        cr_expect_not_null(strstr(c.path, install));
        cr_expect_null(c.warning, "no fallback, no warning: %s", c.warning);
        emo_detector_choice_done(&c);
}

/* With YuNet, BlazeFace's file, when there is one, is named for YuNet's lean check; with any
 * other detector, or without the file, no lean check. */
Test(detector_choice, yunet_gets_blazeface_for_its_lean_check) {
        install_file(EMO_YUNET_FILE);
        emo_detector_choice_t c;
        cr_assert_eq(choose("yunet", NULL, &c, NULL), 0);
        cr_expect_null(c.lean_path, "no BlazeFace file, yet %s", c.lean_path);
        emo_detector_choice_done(&c);

        install_file(EMO_BLAZEFACE_FILE);
        cr_assert_eq(choose("auto", NULL, &c, NULL), 0);
        cr_expect_eq(c.kind, EMO_DETECTOR_YUNET);
        cr_assert_not_null(c.lean_path);
        cr_expect_not_null(strstr(c.lean_path, EMO_BLAZEFACE_FILE), "%s", c.lean_path);
        emo_detector_choice_done(&c);
        cr_expect_null(c.lean_path);

        cr_assert_eq(choose("blazeface", NULL, &c, NULL), 0);
        cr_expect_null(c.lean_path, "BlazeFace checking itself: %s", c.lean_path);
        emo_detector_choice_done(&c);
        cr_assert_eq(choose("haar", NULL, &c, NULL), 0);
        cr_expect_null(c.lean_path);
        emo_detector_choice_done(&c);
}

Test(detector_choice, auto_falls_back_to_blazeface_then_haar_and_says_so) {
        emo_detector_choice_t c;
        cr_assert_eq(choose("auto", NULL, &c, NULL), 0);
        cr_expect_eq(c.kind, EMO_DETECTOR_HAAR);
        cr_expect_str_eq(c.path, "/x/haar.xml");
        cr_assert_not_null(c.warning);
        cr_expect_not_null(strstr(c.warning, "Haar"), "%s", c.warning);
        emo_detector_choice_done(&c);

        install_file(EMO_BLAZEFACE_FILE);
        cr_assert_eq(choose("auto", NULL, &c, NULL), 0);
        cr_expect_eq(c.kind, EMO_DETECTOR_BLAZEFACE);
        cr_assert_not_null(c.warning);
        cr_expect_not_null(strstr(c.warning, EMO_YUNET_FILE), "%s", c.warning);
        emo_detector_choice_done(&c);
}

Test(detector_choice, the_user_folder_comes_before_the_install_folders) {
        char dir[192], path[256];
        snprintf(dir, sizeof(dir), "%s/emotiond", user);
        cr_assert_eq(mkdir(dir, 0755), 0);
        snprintf(dir, sizeof(dir), "%s/emotiond/detectors", user);
        cr_assert_eq(mkdir(dir, 0755), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, EMO_YUNET_FILE);
        FILE *f = fopen(path, "we");
        cr_assert_not_null(f);
        fclose(f);
        install_file(EMO_YUNET_FILE);
        emo_detector_choice_t c;
        cr_assert_eq(choose("yunet", NULL, &c, NULL), 0);
        cr_expect_str_eq(c.path, path);
        emo_detector_choice_done(&c);
}

Test(detector_choice, a_wanted_detector_without_its_file_is_an_error_naming_the_setting) {
        install_file(EMO_BLAZEFACE_FILE);
        emo_detector_choice_t c;
        emo_error_t err = { "" };
        cr_assert_eq(choose("yunet", NULL, &c, &err), -ENOENT, "yunet chosen without its file");
        cr_expect_not_null(strstr(err.message, EMO_YUNET_FILE), "%s", err.message);
        cr_expect_not_null(strstr(err.message, "yunet_model"), "%s", err.message);
}

Test(detector_choice, a_configured_path_is_taken_as_given) {
        emo_detector_choice_t c;
        cr_assert_eq(choose("yunet", "/somewhere/y.onnx", &c, NULL), 0);
        cr_expect_eq(c.kind, EMO_DETECTOR_YUNET);
        cr_expect_str_eq(c.path, "/somewhere/y.onnx");
        emo_detector_choice_done(&c);
        cr_assert_eq(choose("haar", NULL, &c, NULL), 0);
        cr_expect_eq(c.kind, EMO_DETECTOR_HAAR);
        cr_expect_str_eq(c.path, "/x/haar.xml");
        cr_expect_null(c.warning);
        emo_detector_choice_done(&c);
}
