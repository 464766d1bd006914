#!/usr/bin/env bash
# run.sh [PROMPT] [minfer run options...] — install dependencies if missing, build, and
# generate text from PROMPT with the default model ($MINFER_MODEL, weights/*.gguf, or
# ../shared/models/stories260K.gguf; weights/README.md says how to get more).
#
# When no -m is given and there is no default model (a fresh clone), the default model
# stories260K (1.2 MB) is downloaded first with weights/fetch.sh, which checks its SHA-256.
# Only the generated text goes to stdout; installing, building, downloading and minfer's
# statistics go to stderr, so `tools/run.sh "Once upon a time" > story.txt` keeps the story.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh
mf_install_deps >&2
mf_build build >&2
prompt=${1:-"Once upon a time"}
[ $# -gt 0 ] && shift
model_given=0
for a in "$@"; do
    case $a in -m | --model) model_given=1 ;; esac
done
if [ "$model_given" -eq 0 ] && ! build/minfer default-model > /dev/null 2>&1; then
    echo "run.sh: no model found: downloading the default model stories260K (1.2 MB) into weights/ with weights/fetch.sh (SHA-256 checked)" >&2
    if ! weights/fetch.sh stories260K >&2; then
        echo "run.sh: the download failed; get a model as weights/README.md says, or give one with -m FILE" >&2
        exit 1
    fi
fi
exec build/minfer run -p "$prompt" -n 128 "$@"
