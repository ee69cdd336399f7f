/* lib/overlay on its own (no daemon): where the dialogue bubble goes. Each case draws the same
 * faces twice, without and with the bubble, on a plain surface; the pixels that differ are the
 * bubble's, and none of them may lie on another face's box or on the label under it. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>

#include "emo/labels.h"
#include "overlay/overlay.h"

/* The label pill under each box: what the bubble must leave visible as well. */
#define LABEL_PX 30

static cairo_surface_t *render(const emo_overlay_face_t *faces, size_t n, ssize_t speaker, const char *text,
                               int w, int h) {
        cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
        cairo_t *cr = cairo_create(s);
        cairo_set_source_rgb(cr, 0.4, 0.5, 0.6);
        cairo_paint(cr);
        cairo_destroy(cr);
        emo_overlay_t o = { .faces = faces, .n_faces = n, .selected = -1, .speaker = speaker, .dialogue_text = text, .dialogue_kind = 2 };
        cr_assert_eq(emo_overlay_draw_on_image(s, (unsigned) w, (unsigned) h, &o), 0);
        return s;
}

/* The pixels where a and b differ: how many in all, how many on a face other than speaker (its
 * box, or the label band under it), and the lowest row holding one. */
static void bubble_pixels(cairo_surface_t *a, cairo_surface_t *b, const emo_overlay_face_t *faces, size_t n,
                          size_t speaker, long *ret_total, long *ret_on_others, int *ret_bottom) {
        int w = cairo_image_surface_get_width(a), h = cairo_image_surface_get_height(a);
        int stride = cairo_image_surface_get_stride(a);
        const unsigned char *pa = cairo_image_surface_get_data(a), *pb = cairo_image_surface_get_data(b);
        long total = 0, on_others = 0;
        int bottom = -1;
        for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                        const uint32_t *qa = (const uint32_t *) (pa + (size_t) y * stride) + x;
                        const uint32_t *qb = (const uint32_t *) (pb + (size_t) y * stride) + x;
                        if ((*qa & 0xffffff) == (*qb & 0xffffff))
                                continue;
                        total++;
                        bottom = y;
                        for (size_t i = 0; i < n; i++)
                                if (i != speaker && x >= faces[i].x && x < faces[i].x + faces[i].width &&
                                    y >= faces[i].y && y < faces[i].y + faces[i].height + LABEL_PX) {
                                        on_others++;
                                        break;
                                }
                }
        *ret_total = total, *ret_on_others = on_others, *ret_bottom = bottom;
}

/* Draws the bubble of speaker and checks it hides no other face; returns its lowest row. */
static int check_bubble_clear(const emo_overlay_face_t *faces, size_t n, size_t speaker, int w, int h) {
        const char *text = "Qu'est-ce qui te rend triste aujourd'hui ?";
        cairo_surface_t *plain = render(faces, n, -1, NULL, w, h);
        cairo_surface_t *said = render(faces, n, (ssize_t) speaker, text, w, h);
        long total, on_others;
        int bottom;
        bubble_pixels(plain, said, faces, n, speaker, &total, &on_others, &bottom);
        cr_expect_gt(total, 2000, "the bubble was drawn (%ld pixels changed)", total);
        cr_expect_eq(on_others, 0, "speaker %zu: %ld of the bubble's %ld pixels cover another face", speaker,
                     on_others, total);
        cairo_surface_destroy(plain);
        cairo_surface_destroy(said);
        return bottom;
}

TestSuite(overlay, .timeout = 60);

/* Five faces in a row near the top of a group photo (as in face-api.js's sample4.jpg): no room
 * above them, and beside each one stands a neighbour. The bubble goes below, clear of all. */
Test(overlay, bubble_avoids_the_other_faces_of_a_row) {
        emo_overlay_face_t faces[5];
        for (size_t i = 0; i < 5; i++)
                faces[i] = (emo_overlay_face_t) { .x = 20 + 190.0 * i, .y = 30, .width = 150, .height = 170, .emotion = i == 2 ? EMO_SAD : EMO_HAPPY, .confidence = 0.8 };
        for (size_t s = 0; s < 5; s++)
                check_bubble_clear(faces, 5, s, 960, 720);
}

/* A face with room above but a neighbour there: the bubble goes beside it instead. */
Test(overlay, bubble_avoids_a_face_above) {
        emo_overlay_face_t faces[] = {
                { .x = 300, .y = 20, .width = 160, .height = 180, .emotion = EMO_HAPPY, .confidence = 0.9 },
                { .x = 300, .y = 280, .width = 160, .height = 180, .emotion = EMO_SAD, .confidence = 0.7 },
        };
        check_bubble_clear(faces, 2, 1, 960, 720);
}

/* One face with room above it: the bubble is drawn there, as before, wholly above the box. */
Test(overlay, bubble_of_a_single_face_goes_above) {
        emo_overlay_face_t face = { .x = 380, .y = 260, .width = 200, .height = 220, .emotion = EMO_SAD, .confidence = 0.6 };
        int bottom = check_bubble_clear(&face, 1, 0, 960, 720);
        cr_expect_lt(bottom, (int) face.y, "the bubble reaches row %d, the box starts at %d", bottom, (int) face.y);
}
