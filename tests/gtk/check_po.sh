#!/bin/sh
# Every string the GTK client marks for translation, extracted from its sources now, has a
# French translation in po/fr.po, and fr.po's format strings match their msgids (msgfmt --check):
# a string added without its translation would show in English in the French window.
# Usage: check_po.sh CLIENTS_GTK_DIR
set -eu
dir=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
xgettext --from-code=UTF-8 --keyword=_ --keyword=N_ --keyword=ngettext:1,2 --add-comments=TRANSLATORS \
        --package-name=emotion-gtk --msgid-bugs-address= -D "$dir" -f "$dir/po/POTFILES" -o "$tmp/now.pot"
msgfmt --check -o "$tmp/fr.mo" "$dir/po/fr.po"
msgcmp "$dir/po/fr.po" "$tmp/now.pot"
# Nothing left empty or fuzzy.
msgfmt --statistics -o /dev/null "$dir/po/fr.po" 2>&1 | tee "$tmp/stats"
if grep -q -e untranslated -e fuzzy "$tmp/stats"; then
        echo "po/fr.po has untranslated or fuzzy messages" >&2
        exit 1
fi
echo "po/fr.po: every string of the sources is translated"
