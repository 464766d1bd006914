#!/usr/bin/env bash
# format.sh — format minfer's C, C++ and CUDA sources with clang-format (.clang-format at the
# top of the tree), or with --check list the files that are not formatted and exit 1.
#   tools/format.sh            format every source in place
#   tools/format.sh --check    change nothing; exit 0 when every file is formatted
# CLANG_FORMAT names the binary (default: clang-format-14, else clang-format); exit 77
# when there is none, or outside a git checkout (the ctest format_check is then skipped).
# Another clang-format version may format a few constructs differently: the style is
# checked with version 14.
set -euo pipefail
cd "$(dirname "$0")/.."
cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
    for c in clang-format-14 clang-format; do command -v "$c" > /dev/null && { cf=$c; break; }; done
fi
[ -n "$cf" ] || { echo "format.sh: no clang-format found (set CLANG_FORMAT)" >&2; exit 77; }
git rev-parse --is-inside-work-tree > /dev/null 2>&1 || { echo "format.sh: not a git checkout" >&2; exit 77; }

# Not formatted: the generated Unicode table.
skip='^engine/unicode_tables\.c$'

mapfile -t files < <(git ls-files '*.c' '*.h' '*.cu' '*.cuh' | grep -Ev "$skip")
if [ "${1:-}" = "--check" ]; then
    bad=0
    for f in "${files[@]}"; do
        if ! "$cf" --style=file "$f" | cmp -s - "$f"; then echo "not formatted: $f"; bad=1; fi
    done
    exit $bad
fi
"$cf" --style=file -i "${files[@]}"
