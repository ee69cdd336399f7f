#include "fixtures.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emo/util.h"

/* Defaults come from tests/CMakeLists.txt as compile definitions. */
static const char *setting(const char *env, const char *fallback) {
        const char *v = getenv(env);
        return v && *v ? v : fallback;
}

const char *emo_test_source_dir(void) {
        return setting("EMO_TEST_SOURCE_DIR", EMO_TEST_SOURCE_DIR);
}
const char *emo_test_fixtures_dir(void) {
        return setting("EMO_TEST_FIXTURES", EMO_TEST_FIXTURES);
}
const char *emo_test_model(void) {
        return setting("EMO_TEST_MODEL", EMO_TEST_MODEL);
}
const char *emo_test_yunet(void) {
        return setting("EMO_TEST_YUNET", EMO_TEST_YUNET);
}
const char *emo_test_blazeface(void) {
        const char *p = setting("EMO_TEST_BLAZEFACE", EMO_TEST_BLAZEFACE);
        return access(p, R_OK) == 0 ? p : NULL;
}
const char *emo_test_fer2013(void) {
        return setting("EMO_TEST_FER2013", EMO_TEST_FER2013);
}
const char *emo_test_emotiond(void) {
        return setting("EMO_TEST_EMOTIOND", EMO_TEST_EMOTIOND);
}
const char *emo_test_emotion(void) {
        return setting("EMO_TEST_EMOTION", EMO_TEST_EMOTION);
}

char *emo_test_join(const char *dir, const char *name) {
        char *p = NULL;
        cr_assert(asprintf(&p, "%s/%s", dir, name) >= 0);
        return p;
}

char *emo_test_fixture(const char *name) {
        char *p = emo_test_join(emo_test_fixtures_dir(), name);
        cr_assert(access(p, R_OK) == 0,
                  "fixture %s is missing: run the CTest test `fixtures` (tests/data/make_fixtures.py) first", p);
        return p;
}

void *emo_test_read_file(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "rbe");
        cr_assert(f, "cannot open %s: %s", path, strerror(errno));
        cr_assert(fseek(f, 0, SEEK_END) == 0);
        long n = ftell(f);
        cr_assert(n >= 0);
        rewind(f);
        char *buf = malloc((size_t) n + 1);
        cr_assert(buf);
        cr_assert(fread(buf, 1, (size_t) n, f) == (size_t) n, "cannot read %s", path);
        fclose(f);
        buf[n] = '\0';
        if (ret_len)
                *ret_len = (size_t) n;
        return buf;
}

void *emo_test_read_fixture(const char *name, size_t *ret_len) {
        _cleanup_free_ char *p = emo_test_fixture(name);
        return emo_test_read_file(p, ret_len);
}

json_object *emo_test_fixtures_json(void) {
        static json_object *root;
        if (!root) {
                _cleanup_free_ char *p = emo_test_fixture("fixtures.json");
                root = json_object_from_file(p);
                cr_assert(root, "cannot parse %s: %s", p, json_util_get_last_err());
        }
        return root;
}

json_object *emo_test_json_get(json_object *o, const char *path) {
        char key[64];
        const char *full = path;
        while (*path) {
                size_t n = strcspn(path, ".");
                cr_assert(n < sizeof(key));
                memcpy(key, path, n);
                key[n] = '\0';
                cr_assert(o && json_object_object_get_ex(o, key, &o), "JSON has no '%s'", full);
                path += n + (path[n] == '.');
        }
        return o;
}

const uint8_t *emo_test_publictest(size_t *ret_n, const uint8_t **ret_labels) {
        static uint8_t *faces, *labels;
        static size_t n;
        if (!faces) {
                size_t nf, nl;
                faces = emo_test_read_fixture("publictest.gray", &nf);
                labels = emo_test_read_fixture("publictest.labels", &nl);
                cr_assert(nf == nl * 48 * 48 && nl > 0, "publictest.gray and .labels disagree");
                n = nl;
        }
        *ret_n = n;
        *ret_labels = labels;
        return faces;
}

static json_object *model_json(void) {
        static json_object *root;
        if (!root) {
                root = json_object_from_file(emo_test_model());
                cr_assert(root,
                          "cannot read the test model's metadata %s (%s); configure with "
                          "-DEMO_TEST_MODEL=FILE.json while models/emonet-xs.json is a placeholder",
                          emo_test_model(), json_util_get_last_err());
        }
        return root;
}

const char *emo_test_model_name(void) {
        return json_object_get_string(emo_test_json_get(model_json(), "name"));
}

const char *emo_test_model_sha256(void) {
        return json_object_get_string(emo_test_json_get(model_json(), "sha256"));
}

static char *trim(char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        size_t n = strlen(s);
        while (n > 0 && strchr(" \t\r\n", s[n - 1]))
                s[--n] = '\0';
        return s;
}

bool emo_test_dialogue_has_line(const char *lang, const char *emotion, const char *text) {
        _cleanup_free_ char *name = NULL;
        cr_assert(asprintf(&name, "deploy/dialogue/%s.ini", lang) >= 0);
        _cleanup_free_ char *path = emo_test_join(emo_test_source_dir(), name);
        FILE *f = fopen(path, "re");
        cr_assert(f, "cannot open %s", path);
        char buf[1024], section[64] = "";
        bool found = false;
        while (!found && fgets(buf, sizeof(buf), f)) {
                char *l = trim(buf);
                if (*l == '[') {
                        snprintf(section, sizeof(section), "%.*s", (int) strcspn(l + 1, "]"), l + 1);
                        continue;
                }
                if (strcmp(section, emotion) != 0 || strncmp(l, "line", 4) != 0)
                        continue;
                char *eq = strchr(l, '=');
                if (eq && strcmp(trim(eq + 1), text) == 0)
                        found = true;
        }
        fclose(f);
        return found;
}

double emo_test_iou(int ax, int ay, int aw, int ah, int bx, int by, int bw, int bh) {
        long ix = (long) (ax + aw < bx + bw ? ax + aw : bx + bw) - (ax > bx ? ax : bx);
        long iy = (long) (ay + ah < by + bh ? ay + ah : by + bh) - (ay > by ? ay : by);
        if (ix <= 0 || iy <= 0)
                return 0;
        double inter = (double) ix * iy;
        return inter / ((double) aw * ah + (double) bw * bh - inter);
}

/* ---- crafted files ------------------------------------------------------------------------------ */

static void put_uint(unsigned char *p, bool big_endian, unsigned bytes, uint32_t v) {
        for (unsigned i = 0; i < bytes; i++)
                p[big_endian ? bytes - 1 - i : i] = (unsigned char) (v >> (8 * i));
}

unsigned char *emo_test_tiff(bool big_endian, const emo_test_tiff_entry_t *entries, size_t n, size_t n_pixels,
                             size_t *ret_len) {
        enum { IFD = 8 };
        size_t extra = 0;
        for (size_t i = 0; i < n; i++) {
                unsigned size = entries[i].type == 3 ? 2 : 4;
                cr_assert(entries[i].count <= 4 || entries[i].type > 4, "tag %u: at most 4 values", entries[i].tag);
                if (entries[i].count * size > 4 && entries[i].type <= 4)
                        extra += entries[i].count * size;
        }
        size_t after = IFD + 2 + 12 * n + 4, pixels = after + extra, len = pixels + n_pixels;
        unsigned char *p = calloc(1, len);
        cr_assert_not_null(p);
        memcpy(p, big_endian ? "MM\0*" : "II*\0", 4);
        put_uint(p + 4, big_endian, 4, IFD);
        put_uint(p + IFD, big_endian, 2, (uint32_t) n);
        for (size_t i = 0; i < n; i++) {
                const emo_test_tiff_entry_t *t = &entries[i];
                unsigned char *e = p + IFD + 2 + 12 * i;
                put_uint(e, big_endian, 2, t->tag);
                put_uint(e + 2, big_endian, 2, t->type);
                put_uint(e + 4, big_endian, 4, t->count);
                unsigned size = t->type == 3 ? 2 : 4;
                if (t->tag == 273 || t->tag == 324) {
                        put_uint(e + 8, big_endian, 4, (uint32_t) pixels);
                } else if (t->type > 4 || t->count * size <= 4) {
                        for (uint32_t k = 0; k < (t->type > 4 ? 1 : t->count); k++)
                                put_uint(e + 8 + k * size, big_endian, size, t->value[k]);
                } else {
                        put_uint(e + 8, big_endian, 4, (uint32_t) after);
                        for (uint32_t k = 0; k < t->count; k++)
                                put_uint(p + after + k * size, big_endian, size, t->value[k]);
                        after += t->count * size;
                }
        }
        memset(p + pixels, 0x80, n_pixels);
        *ret_len = len;
        return p;
}

unsigned char *emo_test_tiff_tile_bomb(bool big_endian, size_t *ret_len) {
        const emo_test_tiff_entry_t e[] = {
                { 256, 3, 1, { 64 } },    { 257, 3, 1, { 64 } },    { 258, 3, 1, { 8 } },   { 259, 3, 1, { 1 } },
                { 262, 3, 1, { 1 } },     { 277, 3, 1, { 1 } },     { 322, 3, 1, { 16384 } }, { 323, 3, 1, { 16368 } },
                { 324, 4, 1, { 0 } },     { 325, 4, 1, { 64 } },
        };
        return emo_test_tiff(big_endian, e, sizeof(e) / sizeof(e[0]), 64, ret_len);
}

json_object *emo_test_json_line(const char *out, size_t i) {
        const char *p = out;
        for (size_t k = 0; k < i; k++) {
                p = strchr(p, '\n');
                cr_assert_not_null(p, "output has fewer than %zu lines:\n%s", i + 1, out);
                p++;
        }
        char *line = strndup(p, strcspn(p, "\n"));
        json_object *o = json_tokener_parse(line);
        cr_assert_not_null(o, "line %zu is not JSON: %s", i + 1, line);
        free(line);
        return o;
}

const char *emo_test_json_string(json_object *o, const char *path) {
        json_object *v = emo_test_json_get(o, path);
        cr_assert(json_object_is_type(v, json_type_string), "'%s' is not a string", path);
        return json_object_get_string(v);
}

size_t emo_test_count_lines(const char *s) {
        size_t n = 0;
        for (; *s; s++)
                n += *s == '\n';
        return n;
}
