#!/usr/bin/env bash
# The checks that hostile input needs beyond the normal suite (run by .ci/run after it):
#  1. the unit, daemon and CLI suites again in an ASan+UBSan build (EMO_SANITIZE=ON, build-sanitize/),
#     failing on any leak in our code (tests/lsan.supp lists third-party leaks only) and on any
#     undefined behaviour;
#  2. in a clang build with libFuzzer (EMO_FUZZ=ON, build-fuzz/), `ctest -L fuzz`: each target's
#     smoke test, then the regression inputs replayed through it: the seeds of
#     tests/fuzz/make_seeds.py, which include the hostile headers found so far, and the corpus
#     kept by earlier runs in $XDG_CACHE_HOME/emotiond/fuzz-corpus;
#  3. every fuzz target for a bounded time from those seeds and that corpus (which it grows), with
#     a cap on any one allocation and on the process's memory: a crash, leak, time-out or
#     out-of-memory fails the check and leaves the input in the work folder it names.
#
#   scripts/test-hardening.sh [--fuzz-seconds N] [--no-sanitize] [--no-fuzz] [--no-apt]
#
# --fuzz-seconds N  time per fuzz target (default 60)
# --no-apt          install nothing (what scripts/setup.sh --tests --hardening installs is there)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60 sanitize=1 fuzz=1 apt=1
while [ $# -gt 0 ]; do
        case "$1" in
        --fuzz-seconds) seconds=${2:?--fuzz-seconds needs a number}; shift ;;
        --no-sanitize) sanitize=0 ;;
        --no-fuzz) fuzz=0 ;;
        --no-apt) apt=0 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "test-hardening.sh: unknown option $1" >&2; exit 2 ;;
        esac
        shift
done
data="${EMO_TEST_DATA_DIR:-$PWD/../shared/data}"
corpus="${XDG_CACHE_HOME:-$HOME/.cache}/emotiond/fuzz-corpus"

# The test packages, and clang with libFuzzer and the sanitizer runtimes.
if [ "$apt" = 1 ]; then
        scripts/setup.sh --tests --hardening
fi

if [ "$sanitize" = 1 ]; then
        echo "==> The unit, daemon and CLI suites under ASan and UBSan (build-sanitize/)"
        cmake -S . -B build-sanitize -DEMO_SANITIZE=ON -DBUILD_TESTING=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                ${EMO_TEST_DATA_DIR:+-DEMO_TEST_DATA_DIR="$EMO_TEST_DATA_DIR"} >/dev/null
        cmake --build build-sanitize -j"$(nproc)"
        ctest --test-dir build-sanitize -L 'unit|daemon|cli' --output-on-failure
fi

if [ "$fuzz" = 1 ]; then
        echo "==> The fuzz targets: smoke tests and regression inputs (build-fuzz/)"
        CC=clang CXX=clang++ cmake -S . -B build-fuzz -DEMO_FUZZ=ON -DBUILD_TESTING=ON \
                -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMO_TEST_DATA_DIR="$data" -DEMO_FUZZ_CORPUS="$corpus" >/dev/null
        cmake --build build-fuzz -j"$(nproc)" --target fuzz_request fuzz_image fuzz_raw fuzz_config fuzz_probe
        ctest --test-dir build-fuzz -L fuzz --output-on-failure
        echo "==> The fuzz targets, $seconds s each (corpus in $corpus)"
        seeds=build-fuzz/tests/fuzz/seeds
        work=$(mktemp -d "${TMPDIR:-/tmp}/emotiond-fuzz.XXXXXX")
        failed=()
        for target in request image raw config probe; do
                mkdir -p "$corpus/$target" "$work/artifacts/$target"
                rc=0
                OPENCV_LOG_LEVEL=ERROR build-fuzz/tests/fuzz/fuzz_$target -max_total_time="$seconds" \
                        -malloc_limit_mb=512 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
                        -artifact_prefix="$work/artifacts/$target/" "$corpus/$target" "$seeds/$target" \
                        >"$work/$target.log" 2>&1 || rc=$?
                runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log")
                if [ "$rc" != 0 ] || [ -n "$(ls -A "$work/artifacts/$target")" ]; then
                        echo "fuzz_$target: FAILED (exit $rc) after ${runs:-?} inputs; the input and log are in $work:" >&2
                        grep -E "ERROR|SUMMARY|Test unit written" "$work/$target.log" | head -n 20 >&2 || true
                        failed+=("$target")
                else
                        echo "fuzz_$target: ${runs:-?} inputs in $seconds s, no crash, leak, time-out or out-of-memory"
                fi
        done
        if [ "${#failed[@]}" -gt 0 ]; then
                echo "test-hardening.sh: fuzz targets failed: ${failed[*]}" >&2
                exit 1
        fi
        rm -rf "$work"
fi
