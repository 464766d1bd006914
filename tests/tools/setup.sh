# setup.sh — sourced by the tests of tests/tools as `. setup.sh NAME BUILD_DIR`: strict mode,
# B (the build folder, absolute), SRC (the source tree), T (a temporary folder removed at
# exit) and fail MESSAGE (one line on stderr, exit 1). The tools they test run on
# /usr/bin/python3 (Debian's, with numpy): without it the test reports skipped (77).
set -euo pipefail
MF_TEST_NAME=$1
B=$(cd "${2:?usage: $MF_TEST_NAME.sh BUILD_DIR}" && pwd)
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ -x /usr/bin/python3 ] || { echo "$MF_TEST_NAME test: skipped: no /usr/bin/python3"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "$MF_TEST_NAME test: $*" >&2; exit 1; }
