#!/usr/bin/env bash
# test.sh — install dependencies if missing, build, and run the test suite (ctest).
# Tests that need a model file that is absent, or a GPU, report "Skipped" with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh
mf_install_deps
mf_build build -DMINFER_SERVE=ON
ctest --test-dir build --output-on-failure -j"$(nproc)"
