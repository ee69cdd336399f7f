#include "annotate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "emo/labels.h"
#include "emo/util.h"
#include "overlay/image.h"
#include "overlay/overlay.h"

int cli_annotate_surface(cairo_surface_t *surface, const emo_analyze_reply_t *ar) {
        emo_overlay_face_t *faces = calloc(ar->n_faces ? ar->n_faces : 1, sizeof(emo_overlay_face_t));
        if (!faces)
                return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < ar->n_faces; i++) {
                const emo_pb_face_t *f = ar->faces[i];
                if (!f->box)
                        continue;
                /* The emotion shown is the one the dialogue follows: the smoothed one when the
                 * daemon smoothed. */
                int emotion = f->smoothed ? (int) f->smoothed->emotion : (int) f->emotion;
                faces[n++] = (emo_overlay_face_t) {
                        .x = f->box->x,
                        .y = f->box->y,
                        .width = f->box->width,
                        .height = f->box->height,
                        .emotion = emotion,
                        .confidence = f->smoothed ? f->smoothed->confidence : f->confidence,
                        .emoji = emo_emotion_emoji(emotion),
                };
        }
        const emo_pb_dialogue_t *d = ar->dialogue;
        bool talks = d && d->kind != EMOTION__V1__DIALOGUE__KIND__NONE && d->text && d->text[0] &&
                     d->face_index < n;
        emo_overlay_t o = {
                .faces = faces,
                .n_faces = n,
                .selected = -1,
                .speaker = talks ? (ssize_t) d->face_index : -1,
                .dialogue_text = talks ? d->text : NULL,
                .dialogue_kind = talks ? (int) d->kind : 0,
        };
        int r = emo_overlay_draw_on_image(surface, ar->image_width, ar->image_height, &o);
        free(faces);
        return r;
}

/* mkdir -p of path's parent folders. */
static int make_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (mkdir(p, 0777) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        return 0;
}

int cli_annotate_image(const uint8_t *data, size_t size, const emo_analyze_reply_t *ar, const char *out,
                       char **ret_message) {
        char *message = NULL;
        cairo_surface_t *s = NULL;
        int r = emo_image_decode(data, size, &s, &message);
        if (r < 0) {
                if (ret_message)
                        *ret_message = message ? message : NULL;
                else
                        free(message);
                if (r == -EINVAL && ret_message && !*ret_message)
                        *ret_message = strdup("cannot decode the image");
                return r;
        }
        r = cli_annotate_surface(s, ar);
        if (r >= 0)
                r = make_parents(out);
        if (r >= 0)
                r = emo_image_write_png(s, out);
        cairo_surface_destroy(s);
        if (r < 0 && ret_message && asprintf(ret_message, "cannot write %s: %s", out, strerror(-r)) < 0)
                *ret_message = NULL;
        return r;
}

char *cli_annotate_path(const char *dir, const char *input, const char *found_in) {
        const char *rel;
        if (strcmp(input, "-") == 0)
                rel = "stdin";
        else if (found_in) {
                rel = input + strlen(found_in);
                while (*rel == '/')
                        rel++;
        } else {
                const char *slash = strrchr(input, '/');
                rel = slash ? slash + 1 : input;
        }
        size_t len = strlen(rel);
        const char *slash = strrchr(rel, '/'), *dot = strrchr(rel, '.');
        if (dot && (!slash || dot > slash + 1) && dot != rel)
                len = (size_t) (dot - rel);
        size_t dlen = strlen(dir);
        while (dlen > 1 && dir[dlen - 1] == '/')
                dlen--;
        char *out = NULL;
        if (asprintf(&out, "%.*s/%.*s.png", (int) dlen, dir, (int) len, rel) < 0)
                return NULL;
        return out;
}

bool cli_is_image_name(const char *name) {
        static const char *const extensions[] = { "jpg", "jpeg", "jpe", "png", "webp", "bmp", "tif",
                                                  "tiff", "pnm", "ppm", "pgm", "pbm" };
        const char *dot = strrchr(name, '.');
        if (!dot || dot == name)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(extensions); i++)
                if (strcasecmp(dot + 1, extensions[i]) == 0)
                        return true;
        return false;
}

static int byte_order(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

static int add_path(char ***paths, size_t *n, char *path) {
        char **p = realloc(*paths, (*n + 1) * sizeof(char *));
        if (!p) {
                free(path);
                return -ENOMEM;
        }
        p[(*n)++] = path;
        *paths = p;
        return 0;
}

int cli_walk_images(const char *dir, char ***paths, size_t *n) {
        struct dirent **entries = NULL;
        int count = scandir(dir, &entries, NULL, byte_order);
        if (count < 0) {
                int r = -errno;
                cli_error("%s: cannot read the folder: %s", dir, strerror(-r));
                return r;
        }
        int r = 0;
        size_t dlen = strlen(dir);
        while (dlen > 1 && dir[dlen - 1] == '/')
                dlen--;
        for (int i = 0; i < count; i++) {
                const char *name = entries[i]->d_name;
                if (r < 0 || name[0] == '.')
                        continue;
                char *path = NULL;
                if (asprintf(&path, "%.*s/%s", (int) dlen, dir, name) < 0) {
                        r = -ENOMEM;
                        continue;
                }
                struct stat st, lst;
                if (lstat(path, &lst) < 0 || stat(path, &st) < 0) {
                        cli_error("%s: skipped: %s", path, strerror(errno));
                        free(path);
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        /* Linked folders are not followed: a link to a parent would never end. */
                        if (!S_ISLNK(lst.st_mode))
                                r = cli_walk_images(path, paths, n);
                        free(path);
                } else if (S_ISREG(st.st_mode) && cli_is_image_name(name))
                        r = add_path(paths, n, path);
                else {
                        cli_error("%s: skipped: not an image file name (.jpg, .png, .webp, .bmp, .tif, .pnm...)",
                                  path);
                        free(path);
                }
        }
        for (int i = 0; i < count; i++)
                free(entries[i]);
        free(entries);
        return r;
}
