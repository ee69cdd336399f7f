#!/usr/bin/env bash
# Install what the tests need, check the C style (scripts/check-format.sh --ci), build, and run
# the whole test suite (C and Python) with CTest.
#
#   scripts/test.sh [--no-apt]
#
# The tests read FER2013 and the face-detector files from ../shared (next to the clone); set
# EMO_TEST_DATA_DIR to point elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests "$@"
# The C style first: seconds, and a new file that strays from .clang-format fails here.
scripts/check-format.sh --ci
cmake -S . -B build -DBUILD_TESTING=ON ${EMO_TEST_DATA_DIR:+-DEMO_TEST_DATA_DIR="$EMO_TEST_DATA_DIR"} >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure
