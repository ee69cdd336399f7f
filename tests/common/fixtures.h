/* Test fixtures: where the things under test are (from the build configuration), the files made
 * by tests/data/make_fixtures.py (CTest's `fixtures` test) and small oracles read from the source
 * tree. Every function asserts (Criterion) instead of returning errors, with a message that says
 * what is missing and how to make it. */
#pragma once

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- paths ------------------------------------------------------------------------------------ */

/* Where things are, from the build configuration; each can be overridden by an environment variable
 * of the same name: EMO_TEST_SOURCE_DIR (the checkout), EMO_TEST_FIXTURES (make_fixtures.py's
 * output), EMO_TEST_MODEL (model metadata JSON), EMO_TEST_YUNET, EMO_TEST_BLAZEFACE, EMO_TEST_FER2013, EMO_TEST_EMOTIOND
 * and EMO_TEST_EMOTION (the two programs). */
const char *emo_test_source_dir(void);
const char *emo_test_fixtures_dir(void);
const char *emo_test_model(void);
const char *emo_test_yunet(void);
/* The BlazeFace front model, or NULL when it is not installed (its tests are then skipped). */
const char *emo_test_blazeface(void);
const char *emo_test_fer2013(void);
const char *emo_test_emotiond(void);
const char *emo_test_emotion(void);

/* "<dir>/<name>", malloc'd. */
char *emo_test_join(const char *dir, const char *name);

/* A fixture file's path (malloc'd); asserts that it exists, pointing at the `fixtures` test. */
char *emo_test_fixture(const char *name);

/* Whole file into memory (malloc'd, NUL-terminated for convenience); asserts. */
void *emo_test_read_file(const char *path, size_t *ret_len);
void *emo_test_read_fixture(const char *name, size_t *ret_len);

/* fixtures.json, parsed once per process; owned by the module. */
json_object *emo_test_fixtures_json(void);

/* A dotted path ("python.accuracy_500") in a JSON object; asserts that it exists. */
json_object *emo_test_json_get(json_object *o, const char *path);

/* Line i (from 0) of JSON Lines output, parsed (the caller puts it); asserts that there is such a
 * line and that it is JSON. */
json_object *emo_test_json_line(const char *out, size_t i);

/* The string at a dotted path of o; asserts that it is one. Owned by o. */
const char *emo_test_json_string(json_object *o, const char *path);

/* The number of '\n' in s. */
size_t emo_test_count_lines(const char *s);

/* Every PublicTest face (48x48 grey, row-major) and its label, in FER2013 file order. */
const uint8_t *emo_test_publictest(size_t *ret_n, const uint8_t **ret_labels);

/* Name and sha256 recorded in the test model's metadata (EMO_TEST_MODEL); owned by the module. */
const char *emo_test_model_name(void);
const char *emo_test_model_sha256(void);

/* Whether text is one of the `line = ...` entries of section [emotion] of
 * <source>/deploy/dialogue/<lang>.ini. */
bool emo_test_dialogue_has_line(const char *lang, const char *emotion, const char *text);

/* Intersection over union of two x, y, w, h boxes. */
double emo_test_iou(int ax, int ay, int aw, int ah, int bx, int by, int bw, int bh);

/* ---- crafted files ------------------------------------------------------------------------------ */

/* One TIFF directory entry: up to 4 values of a SHORT (3) or LONG (4), or 1 of another type. */
typedef struct emo_test_tiff_entry {
        uint16_t tag, type;
        uint32_t count;
        uint32_t value[4];
} emo_test_tiff_entry_t;

/* A TIFF of one directory holding entries (written in the order given, in the byte order asked:
 * big-endian "MM" or little-endian "II"), values that do not fit an entry after it, then
 * n_pixels bytes of 0x80 at the offset that StripOffsets (273) and TileOffsets (324) entries are
 * given whatever their value. malloc'd; *ret_len its size. */
unsigned char *emo_test_tiff(bool big_endian, const emo_test_tiff_entry_t *entries, size_t n, size_t n_pixels,
                             size_t *ret_len);

/* The tile bomb of issue 22 (198 bytes): a 64 x 64 grey TIFF declaring one 16384 x 16368 tile, for
 * which OpenCV allocated and filled 1 GB before failing. */
unsigned char *emo_test_tiff_tile_bomb(bool big_endian, size_t *ret_len);
