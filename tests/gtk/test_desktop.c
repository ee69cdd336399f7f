/* emotion-gtk's desktop integration as the sources ship it: the icon is an SVG that renders (the
 * yellow face and the green frame are there at 128 and 48 pixels), the AppStream metainfo passes
 * `appstreamcli validate --no-net` and names the desktop file that exists, and the desktop file
 * names the icon. */
#include <criterion/criterion.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "emo/util.h"

TestSuite(desktop, .timeout = 60);

static char *gtk_file(const char *name) {
        _cleanup_free_ char *dir = emo_test_join(emo_test_source_dir(), "clients/gtk");
        return emo_test_join(dir, name);
}

Test(desktop, icon_renders) {
        _cleanup_free_ char *svg = gtk_file("org.emotiond.Gtk.svg");
        static const int sizes[] = { 128, 48 };
        for (size_t k = 0; k < 2; k++) {
                GError *error = NULL;
                GdkPixbuf *p = gdk_pixbuf_new_from_file_at_size(svg, sizes[k], sizes[k], &error);
                cr_assert_not_null(p, "%s at %d: %s (is librsvg's gdk-pixbuf loader installed?)", svg, sizes[k],
                                   error ? error->message : "?");
                cr_assert_eq(gdk_pixbuf_get_width(p), sizes[k]);
                int n = gdk_pixbuf_get_n_channels(p), rs = gdk_pixbuf_get_rowstride(p);
                const guchar *px = gdk_pixbuf_read_pixels(p);
                long yellow = 0, green = 0, opaque = 0;
                for (int y = 0; y < sizes[k]; y++)
                        for (int x = 0; x < sizes[k]; x++) {
                                const guchar *q = px + (size_t) y * rs + (size_t) x * n;
                                if (n == 4 && q[3] < 200)
                                        continue;
                                opaque++;
                                if (q[0] > 220 && q[1] > 190 && q[2] < 80)
                                        yellow++;
                                if (q[0] < 80 && q[1] > 170 && q[2] > 100 && q[2] < 150)
                                        green++;
                        }
                long area = (long) sizes[k] * sizes[k];
                cr_assert_gt(opaque, area / 2, "%d px: mostly transparent", sizes[k]);
                cr_assert_gt(yellow, area / 20, "%d px: no yellow face (%ld pixels)", sizes[k], yellow);
                cr_assert_gt(green, area / 100, "%d px: no green frame (%ld pixels)", sizes[k], green);
                g_object_unref(p);
        }
}

Test(desktop, metainfo_is_valid_and_names_the_desktop_file) {
        _cleanup_free_ char *xml = gtk_file("org.emotiond.Gtk.metainfo.xml");
        _cleanup_free_ char *text = emo_test_read_file(xml, NULL);
        cr_assert(strstr(text, "<launchable type=\"desktop-id\">org.emotiond.Gtk.desktop</launchable>"));
        _cleanup_free_ char *desktop = gtk_file("org.emotiond.Gtk.desktop");
        cr_assert_eq(access(desktop, R_OK), 0);
        _cleanup_free_ char *entry = emo_test_read_file(desktop, NULL);
        cr_assert(strstr(entry, "\nIcon=org.emotiond.Gtk\n"), "%s", entry);
        if (access("/usr/bin/appstreamcli", X_OK) != 0) {
                cr_log_warn("appstreamcli not installed (Debian: appstream): the metainfo is not validated");
                return;
        }
        emo_test_run_t r;
        emo_test_run((const char *const[]) { "/usr/bin/appstreamcli", "validate", "--no-net", xml, NULL }, NULL, 30000,
                     &r);
        cr_assert_eq(r.status, 0, "appstreamcli validate: %s%s", r.out, r.err);
        emo_test_run_done(&r);
}
