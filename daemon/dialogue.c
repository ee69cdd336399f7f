#include "dialogue.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emo/labels.h"
#include "emo/protocol.h"
#include "emo/util.h"

/* Streams remembered for the no-repeat rule; past this the memory is cleared (rare: only with
 * that many distinct streams). */
#define MAX_REMEMBERED 65536

struct lines {
        char **text;
        size_t n;
        emo_dialogue_kind_t kind;
};

struct language {
        char *code;
        struct lines by_emotion[EMO_EMOTION_COUNT];
};

struct emo_dialogue {
        struct language *langs;
        size_t n_langs;
        char *codes;
        pthread_mutex_t lock;
        zhashx_t *last;  /* "lang/emotion/stream" -> index + 1 of the last line said */
        zhashx_t *held;  /* "lang/stream/#track" -> HELD(emotion, index + 1) of the track's line */
        unsigned seed;
};

static void language_done(struct language *l) {
        for (int e = 0; e < EMO_EMOTION_COUNT; e++) {
                for (size_t i = 0; i < l->by_emotion[e].n; i++)
                        free(l->by_emotion[e].text[i]);
                free(l->by_emotion[e].text);
        }
        free(l->code);
}

emo_dialogue_t *emo_dialogue_free(emo_dialogue_t *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n_langs; i++)
                language_done(&d->langs[i]);
        free(d->langs);
        free(d->codes);
        zhashx_destroy(&d->last);
        zhashx_destroy(&d->held);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
}

struct parse_state {
        struct language *lang;
        char reason[160];
};

static int handler(void *user, const char *section, const char *name, const char *value) {
        struct parse_state *s = user;
        int e = emo_emotion_from_name(section);
        if (e < 0) {
                snprintf(s->reason, sizeof(s->reason), "[%s] is not an emotion", section);
                return 0;
        }
        struct lines *l = &s->lang->by_emotion[e];
        if (strcmp(name, "line") == 0) {
                if (!*value) {
                        snprintf(s->reason, sizeof(s->reason), "empty line");
                        return 0;
                }
                char **t = realloc(l->text, (l->n + 1) * sizeof(*t));
                if (!t || !(t[l->n] = strdup(value))) {
                        if (t)
                                l->text = t;
                        snprintf(s->reason, sizeof(s->reason), "out of memory");
                        return 0;
                }
                l->text = t;
                l->n++;
                return 1;
        }
        if (strcmp(name, "kind") == 0) {
                if (strcmp(value, "question") == 0)
                        l->kind = EMO_DIALOGUE_QUESTION;
                else if (strcmp(value, "congratulation") == 0)
                        l->kind = EMO_DIALOGUE_CONGRATULATION;
                else if (strcmp(value, "none") == 0)
                        l->kind = EMO_DIALOGUE_NONE;
                else {
                        snprintf(s->reason, sizeof(s->reason), "kind must be question, congratulation or none");
                        return 0;
                }
                return 1;
        }
        snprintf(s->reason, sizeof(s->reason), "unknown key '%s' (expected line or kind)", name);
        return 0;
}

static int load_language(const char *dir, const char *file, struct language *lang, emo_error_t *err) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        lang->code = strndup(file, strlen(file) - strlen(".ini"));
        if (!lang->code)
                return -ENOMEM;
        /* Clients ask for a language by this name, and requests only take language codes. */
        if (!emo_language_valid(lang->code))
                return emo_error_set(err, -EINVAL,
                                     "%s: '%s' is not a language code (1 to %d ASCII letters, digits, '-' or '_' "
                                     "before .ini, e.g. pt-BR.ini)",
                                     path, lang->code, EMO_LANGUAGE_MAX);
        for (int e = 0; e < EMO_EMOTION_COUNT; e++) {
                emo_valence_t v = emo_emotion_valence(e);
                lang->by_emotion[e].kind = v < 0 ? EMO_DIALOGUE_QUESTION
                                         : v > 0 ? EMO_DIALOGUE_CONGRATULATION
                                                 : EMO_DIALOGUE_NONE;
        }
        struct parse_state s = { .lang = lang };
        int line = ini_parse(path, handler, &s);
        if (line != 0)
                return emo_error_set(err, -EINVAL,
                                     "%s:%d: %s", path, line,
                                     line < 0 ? "cannot read" : s.reason[0] ? s.reason : "syntax error");
        for (int e = 0; e < EMO_EMOTION_COUNT; e++)
                if (lang->by_emotion[e].kind != EMO_DIALOGUE_NONE && lang->by_emotion[e].n == 0)
                        return emo_error_set(err, -EINVAL, "%s: no line for %s", path, emo_emotion_name(e));
        return 0;
}

static int compare_codes(const void *a, const void *b) {
        return strcmp(((const struct language *) a)->code, ((const struct language *) b)->code);
}

int emo_dialogue_load(const char *dir, emo_dialogue_t **ret, emo_error_t *err) {
        emo_dialogue_t *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        pthread_mutex_init(&d->lock, NULL);
        d->last = zhashx_new();
        d->held = zhashx_new();
        d->seed = (unsigned) zclock_time();
        int r = 0;
        DIR *dh = opendir(dir);
        if (!dh) {
                r = emo_error_set(err, -errno, "%s: %s", dir, strerror(errno));
                return emo_dialogue_free(d), r;
        }
        struct dirent *de;
        while (r == 0 && (de = readdir(dh))) {
                size_t len = strlen(de->d_name);
                if (de->d_name[0] == '.' || len <= 4 || strcmp(de->d_name + len - 4, ".ini") != 0)
                        continue;
                struct language *l = realloc(d->langs, (d->n_langs + 1) * sizeof(*l));
                if (!l) {
                        r = -ENOMEM;
                        break;
                }
                d->langs = l;
                memset(&d->langs[d->n_langs], 0, sizeof(*l));
                r = load_language(dir, de->d_name, &d->langs[d->n_langs++], err);
        }
        closedir(dh);
        if (r == 0 && d->n_langs == 0)
                r = emo_error_set(err, -ENOENT, "%s: no dialogue file (<language>.ini)", dir);
        if (r == 0 && (!d->last || !d->held))
                r = -ENOMEM;
        if (r < 0)
                return emo_dialogue_free(d), r;
        qsort(d->langs, d->n_langs, sizeof(*d->langs), compare_codes);
        size_t total = 1;
        for (size_t i = 0; i < d->n_langs; i++)
                total += strlen(d->langs[i].code) + 1;
        d->codes = calloc(1, total);
        if (!d->codes)
                return emo_dialogue_free(d), -ENOMEM;
        for (size_t i = 0; i < d->n_langs; i++) {
                if (i)
                        strcat(d->codes, ",");
                strcat(d->codes, d->langs[i].code);
        }
        *ret = d;
        return 0;
}

const char *emo_dialogue_languages(const emo_dialogue_t *d) {
        return d->codes;
}

size_t emo_dialogue_n_languages(const emo_dialogue_t *d) {
        return d->n_langs;
}

const char *emo_dialogue_language(const emo_dialogue_t *d, size_t i) {
        return i < d->n_langs ? d->langs[i].code : NULL;
}

static const struct language *find_language(const emo_dialogue_t *d, const char *lang) {
        for (size_t i = 0; i < d->n_langs; i++)
                if (strcmp(d->langs[i].code, lang) == 0)
                        return &d->langs[i];
        return NULL;
}

bool emo_dialogue_has_language(const emo_dialogue_t *d, const char *lang) {
        return find_language(d, lang) != NULL;
}

/* The lines for emotion in lang: -ENOENT, -EINVAL, or 0 with *ret (NULL when nothing is said). */
static int lines_for(const emo_dialogue_t *d, const char *lang, int emotion, const struct lines **ret) {
        const struct language *l = find_language(d, lang);
        if (!l)
                return -ENOENT;
        if (emotion < 0 || emotion >= EMO_EMOTION_COUNT)
                return -EINVAL;
        const struct lines *lines = &l->by_emotion[emotion];
        *ret = lines->kind == EMO_DIALOGUE_NONE || lines->n == 0 ? NULL : lines;
        return 0;
}

/* A new line of lines (for emotion in lang) for stream, never the one it was said last; its
 * index. Called with the lock held. */
static size_t pick_locked(emo_dialogue_t *d, const struct lines *lines, const char *lang, const char *stream,
                          int emotion) {
        char key[512];
        snprintf(key, sizeof(key), "%s/%d/%s", lang, emotion, stream ? stream : "");
        size_t last = (size_t) (uintptr_t) zhashx_lookup(d->last, key); /* index + 1, 0: none */
        size_t pick = (size_t) rand_r(&d->seed) % lines->n;
        if (lines->n > 1 && pick + 1 == last)
                pick = (pick + 1 + (size_t) rand_r(&d->seed) % (lines->n - 1)) % lines->n;
        if (zhashx_size(d->last) >= MAX_REMEMBERED)
                zhashx_purge(d->last);
        zhashx_update(d->last, key, (void *) (uintptr_t) (pick + 1));
        return pick;
}

int emo_dialogue_pick(emo_dialogue_t *d, const char *lang, const char *stream, int emotion,
                      emo_dialogue_kind_t *ret_kind, const char **ret_text) {
        const struct lines *lines;
        int r = lines_for(d, lang, emotion, &lines);
        if (r < 0)
                return r;
        if (!lines) {
                *ret_kind = EMO_DIALOGUE_NONE;
                *ret_text = NULL;
                return 0;
        }
        pthread_mutex_lock(&d->lock);
        size_t pick = pick_locked(d, lines, lang, stream, emotion);
        pthread_mutex_unlock(&d->lock);
        *ret_kind = lines->kind;
        *ret_text = lines->text[pick];
        return 0;
}

/* A track's held line, packed in a pointer: its emotion and its index + 1. */
#define HELD(emotion, index1) ((void *) (uintptr_t) (((uintptr_t) (emotion) + 1) << 24 | (uintptr_t) (index1)))
#define HELD_EMOTION(v) ((int) ((uintptr_t) (v) >> 24) - 1)
#define HELD_INDEX1(v) ((size_t) ((uintptr_t) (v) & 0xffffff))

int emo_dialogue_pick_held(emo_dialogue_t *d, const char *lang, const char *stream, uint64_t track, int emotion,
                           emo_dialogue_kind_t *ret_kind, const char **ret_text) {
        const struct lines *lines;
        int r = lines_for(d, lang, emotion, &lines);
        if (r < 0)
                return r;
        if (!lines) {
                /* Nothing to say (a calm face): the track's line is kept for its return. */
                *ret_kind = EMO_DIALOGUE_NONE;
                *ret_text = NULL;
                return 0;
        }
        char key[512];
        snprintf(key, sizeof(key), "%s/%s/#%llu", lang, stream ? stream : "", (unsigned long long) track);
        pthread_mutex_lock(&d->lock);
        void *held = zhashx_lookup(d->held, key);
        size_t index1 = held && HELD_EMOTION(held) == emotion ? HELD_INDEX1(held) : 0;
        if (index1 == 0 || index1 > lines->n) {
                index1 = pick_locked(d, lines, lang, stream, emotion) + 1;
                if (zhashx_size(d->held) >= MAX_REMEMBERED)
                        zhashx_purge(d->held);
                /* Beyond 24 bits (files of 16 million lines) a line is not held. */
                if (index1 <= 0xffffff)
                        zhashx_update(d->held, key, HELD(emotion, index1));
        }
        pthread_mutex_unlock(&d->lock);
        *ret_kind = lines->kind;
        *ret_text = lines->text[index1 - 1];
        return 0;
}
