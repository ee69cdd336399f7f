/* What `analyze` and `watch` share for --annotate and folders: the overlay of a reply (lib/overlay)
 * on an image file or on a video frame, where an annotated image goes, and the walk of a folder
 * for image files. */
#pragma once

#include <cairo.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emo/protocol.h"

/* Draw the overlay of ar (boxes, emoji, labels, dialogue bubble) on surface, which shows the image
 * the daemon analysed (at its size or another: the boxes are scaled). 0 or a negative errno. */
int cli_annotate_surface(cairo_surface_t *surface, const emo_analyze_reply_t *ar);

/* Decode the image file data (upright, per EXIF), draw the overlay of ar on it and write it as PNG
 * to out, creating out's missing folders. 0, or a negative errno with *ret_message (malloc'd, may be
 * NULL) saying what failed. */
int cli_annotate_image(const uint8_t *data, size_t size, const emo_analyze_reply_t *ar, const char *out,
                       char **ret_message);

/* Where `analyze --annotate DIR` writes the image input: DIR/REL with REL's extension replaced by
 * .png, where REL is input's path below the folder it was found in (found_in, a walk's root) or,
 * for a FILE named on the command line (found_in NULL), its base name ("-": "stdin.png").
 * malloc'd; NULL on out-of-memory. */
char *cli_annotate_path(const char *dir, const char *input, const char *found_in);

/* Whether name ends in an image extension `analyze` takes from folders (case-insensitive): .jpg
 * .jpeg .jpe .png .webp .bmp .tif .tiff .pnm .ppm .pgm .pbm. */
bool cli_is_image_name(const char *name);

/* Add the image files under the folder dir (recursively, entries in byte order of their names,
 * hidden entries skipped, symbolic links to folders not followed) to *paths (grown with
 * realloc; *n entries, each malloc'd). Other files are reported on stderr, one line each, and
 * skipped. 0, or a negative errno (reported) when dir or a folder below it cannot be read. */
int cli_walk_images(const char *dir, char ***paths, size_t *n);

