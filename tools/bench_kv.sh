#!/usr/bin/env bash
# bench_kv.sh MODEL [ROUNDS] [DEPTHS] [RUNS] — the measurement behind the CPU's default KV cache
# type (docs/cpu.md §4): `minfer bench` decoding tg64 at context depths DEPTHS (default
# 0,512,2048,4096) with a float32 and with a binary16 cache, alternately (round 1 f32 then
# f16, round 2 f16 then f32, ...; RUNS runs each, default 1), every record appended to
# docs/bench-results.jsonl. Then
# `tools/bench_report.py --summary` gives the medians per KV type and depth.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: tools/bench_kv.sh MODEL [ROUNDS] [DEPTHS] [RUNS]}
rounds=${2:-3}
depths=${3:-0,512,2048,4096}
runs=${4:-1}
out=docs/bench-results.jsonl
run() { build/minfer bench -m "$model" -p 0 -n 64 -d "$depths" -r "$runs" -t 2 --device cpu "$@" --save "$out" | grep -E '^(KV|tg)'; }
for ((r = 1; r <= rounds; r++)); do
    echo "round $r/$rounds (load $(cut -d' ' -f1-3 /proc/loadavg))"
    if [ $((r % 2)) = 1 ]; then run --kv-f32; run --kv-f16; else run --kv-f16; run --kv-f32; fi
done
