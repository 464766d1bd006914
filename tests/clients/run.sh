#!/usr/bin/env bash
# run.sh FILE.test.mjs — one file of client tests against `minfer serve` (ctest runs each
# file as its own test: serve_openai, serve_langchain, ...).
#   MINFER_BIN             the build folder (minfer, mkmodel); the npm packages are installed
#                          under $MINFER_BIN/clients with `npm ci` from package-lock.json
#   MINFER_MODELS          folder of stories260K.gguf (default: ctest's MINFER_MODELS_DEFAULT)
# Exit 77 (skipped, with the reason) when the model is missing, or when every test of the
# file skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
file=$1
: "${MINFER_BIN:?set MINFER_BIN to the build folder}"
models=${MINFER_MODELS:-${MINFER_MODELS_DEFAULT:-$here/../../../shared/models}}
model=$models/stories260K.gguf
if [ ! -f "$model" ]; then
    echo "$file: skipped: $model is missing (weights/fetch.sh gets it)"
    exit 77
fi

# Node.js and npm: Debian's packages when node is missing (the tests need node >= 18)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "run.sh: installing Debian's nodejs and npm" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends nodejs npm >&2
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
    echo "run.sh: node $(node --version) is too old (18 or newer needed)" >&2
    exit 1
fi

# the pinned packages, once per build folder (npm ci again only when the lockfile changed);
# several tests start at once under ctest -j: one installs, the others wait
work=$MINFER_BIN/clients
mkdir -p "$work"
cp "$here"/package.json "$here"/package-lock.json "$here"/*.mjs "$work"/
sum=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
(
    flock 9
    if [ "$(cat "$work/node_modules/.minfer-lock-sha256" 2>/dev/null)" != "$sum" ]; then
        (cd "$work" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error) >&2
        echo "$sum" > "$work/node_modules/.minfer-lock-sha256"
    fi
) 9>"$work/.npm-lock"

cd "$work"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
MINFER_MODEL=$model node --test --test-timeout=120000 "$file" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -eq 0 ] && grep -q '^# pass 0$' "$log" && ! grep -q '^# skipped 0$' "$log"; then
    echo "$file: skipped: every test skipped ($(grep -m1 -o 'SKIP .*' "$log"))"
    exit 77
fi
exit "$rc"
