#!/usr/bin/env bash
# run.sh [PROMPT] [minfer run options...] — install dependencies if missing, build, and
# generate text from PROMPT with the default model ($MINFER_MODEL, weights/*.gguf, or
# ../shared/models/stories260K.gguf; weights/README.md says how to get more).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh
mf_install_deps
mf_build build
prompt=${1:-"Once upon a time"}
[ $# -gt 0 ] && shift
exec build/minfer run -p "$prompt" -n 128 "$@"
