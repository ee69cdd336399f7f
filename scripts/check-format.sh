#!/usr/bin/env bash
# Report the C and C++ sources that clang-format (with the repository's .clang-format) would change.
#
#   scripts/check-format.sh [-d] [--ci] [FILE...]
#
# Without FILE it checks every tracked *.c, *.h and *.cpp file of the repository. It prints one line per file that
# differs, with the number of lines clang-format would change, and exits 1 if any differs, 0 if
# none does (2 when clang-format is missing). -d also prints each file's diff. It never rewrites a
# file: to apply the style to a file you are editing anyway, run `clang-format -i FILE`.
#
# .clang-format describes the code as it is; some hand-made layouts still differ (tables of
# initialisers kept in columns, enumerations on one line, trailing comments aligned by hand, which
# clang-format would make worse), so the tree does not pass whole. --ci (scripts/test.sh) is the
# ratchet: every file must match except those listed in scripts/format-exceptions.txt, so a new
# file, or one taken off the list, stays formatted; a listed file that now matches is named, to be
# taken off. CLANG_FORMAT names another binary (the style was tuned with version 14).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

show_diff=0
ci=0
while [ $# -gt 0 ]; do
        case "$1" in
        -d) show_diff=1 ;;
        --ci) ci=1 ;;
        *) break ;;
        esac
        shift
done
clang_format=${CLANG_FORMAT:-clang-format}
if ! command -v "$clang_format" >/dev/null; then
        echo "check-format.sh: $clang_format not found (Debian: apt install clang-format)" >&2
        exit 2
fi
if [ $# -eq 0 ]; then
        cd "$root" || exit 2
        mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp')
else
        files=("$@")
fi
declare -A excepted=()
if [ "$ci" = 1 ]; then
        while read -r f; do
                [ -n "$f" ] && [ "${f:0:1}" != "#" ] && excepted[$f]=1
        done <"$root/scripts/format-exceptions.txt"
fi

differ=0
for f in "${files[@]}"; do
        if ! formatted=$("$clang_format" --style="file:$root/.clang-format" "$f"); then
                echo "check-format.sh: $clang_format failed on $f" >&2
                exit 2
        fi
        changes=$(diff "$f" - <<<"$formatted" | grep -c '^>')
        if [ -n "${excepted[$f]:-}" ]; then
                [ "$changes" -eq 0 ] && echo "$f: matches now; take it off scripts/format-exceptions.txt"
                continue
        fi
        if [ "$changes" -gt 0 ]; then
                echo "$f: $changes lines differ"
                [ "$show_diff" = 1 ] && diff -u --label "$f" --label "$f (clang-format)" "$f" - <<<"$formatted"
                differ=$((differ + 1))
        fi
done
if [ "$differ" -gt 0 ]; then
        echo "$differ of ${#files[@]} file(s) differ from .clang-format"
        exit 1
fi
if [ "$ci" = 1 ]; then
        echo "all ${#files[@]} file(s) match .clang-format but the ${#excepted[@]} listed in scripts/format-exceptions.txt"
else
        echo "all ${#files[@]} file(s) match .clang-format"
fi
