#!/usr/bin/env bash
# bench_cpu.sh [MODELS_DIR] — the CPU measurements of docs/benchmarks.md: builds, writes the
# synthetic models with mkmodel (random weights of the real shapes; a few GB in MODELS_DIR,
# default /tmp/minfer-models), runs `minfer bench` on each and appends the records to
# docs/bench-results.jsonl. Run it on an otherwise idle machine from a clean checkout (the
# records name the commit; "-dirty" marks uncommitted changes).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/minfer-models}
mkdir -p "$dir"
. tools/deps.sh
mf_install_deps
mf_build build
vocab=../shared/models/vocab-llama-spm.gguf
[ -f "$vocab" ] || { echo "needs $vocab (the real Llama tokenizer) for the TinyLlama-shaped files" >&2; exit 1; }
mk() { [ -f "$dir/$1.gguf" ] || build/mkmodel -o "$dir/$1.gguf" "${@:2}"; }
mk mk-tinyllama-1.1b-Q4_0 --preset tinyllama-1.1b --type Q4_0 --output-type Q6_K --vocab-from "$vocab"
mk mk-tinyllama-1.1b-Q8_0 --preset tinyllama-1.1b --type Q8_0 --vocab-from "$vocab"
mk mk-gpt-oss-20b-4layers --preset gpt-oss-20b --layers 4
out=docs/bench-results.jsonl
for m in mk-tinyllama-1.1b-Q4_0 mk-tinyllama-1.1b-Q8_0; do
    build/minfer bench -m "$dir/$m.gguf" -p 512 -n 128 -r 5 --device cpu --save "$out"
done
build/minfer bench -m "$dir/mk-gpt-oss-20b-4layers.gguf" -p 128 -n 64 -r 5 --device cpu --save "$out"
build/minfer bench -m ../shared/models/stories260K.gguf -p 512 -n 128 -r 5 --device cpu --save "$out"
/usr/bin/python3 tools/bench_report.py "$out"
