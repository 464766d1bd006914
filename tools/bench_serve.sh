#!/usr/bin/env bash
# bench_serve.sh — the server's throughput table (docs/serve.md): for each number of
# concurrent clients N, `minfer serve --parallel N` on 127.0.0.1 (a port the kernel picks)
# and tests/clients/load.mjs with N clients for a bounded time; one JSON line per N, then a
# table. A benchmark, not a test: it needs node (18 or newer) and nothing else.
#
#   tools/bench_serve.sh MODEL [-c 1,4,16] [-s SECONDS] [-n MAX_TOKENS] [-t THREADS] [--bin DIR]
#
# Every server is stopped with SIGTERM and must exit 0; a failed request makes the run fail.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
model=${1:?usage: tools/bench_serve.sh MODEL [-c 1,4,16] [-s SECONDS] [-n MAX_TOKENS] [-t THREADS] [--bin DIR]}
shift
clients=1,4,16 seconds=15 max_tokens=32 threads="" bin=$here/build
while [ $# -gt 0 ]; do
    case $1 in
    -c) clients=$2; shift 2 ;;
    -s) seconds=$2; shift 2 ;;
    -n) max_tokens=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "bench_serve.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
[ -f "$model" ] || { echo "bench_serve.sh: no model file '$model'" >&2; exit 2; }
[ -x "$bin/minfer" ] || { echo "bench_serve.sh: no $bin/minfer (build first, or --bin DIR)" >&2; exit 2; }
command -v node > /dev/null || { echo "bench_serve.sh: node is needed (Debian: nodejs)" >&2; exit 2; }

tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2> /dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
IFS=, read -ra list <<< "$clients"
for n in "${list[@]}"; do
    log=$tmp/serve-$n.log
    "$bin/minfer" serve -m "$model" --host 127.0.0.1 --port 0 --parallel "$n" ${threads:+-t "$threads"} 2> "$log" &
    pid=$!
    port=""
    for _ in $(seq 600); do
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
        [ -n "$port" ] && grep -q "minfer serve: ready: " "$log" && break
        kill -0 "$pid" 2> /dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.1
    done
    grep -q "minfer serve: ready: " "$log" || { echo "bench_serve.sh: the server did not get ready" >&2; cat "$log" >&2; exit 1; }
    node "$here/tests/clients/load.mjs" --url "http://127.0.0.1:$port" --clients "$n" --seconds "$seconds" \
        --max-tokens "$max_tokens" | tr -d '\n ' > "$tmp/load-$n.json"
    echo >> "$tmp/load-$n.json"
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    pid=""
    [ "$rc" -eq 0 ] || { echo "bench_serve.sh: the server exited $rc" >&2; tail -5 "$log" >&2; exit 1; }
    cat "$tmp/load-$n.json"
done
/usr/bin/python3 - "$tmp" "${list[@]}" << 'EOF'
import json, sys
tmp, ns = sys.argv[1], sys.argv[2:]
rows = [json.load(open(f"{tmp}/load-{n}.json")) for n in ns]
base = rows[0]["aggregate_tok_s"]
print("| clients (= --parallel) | requests | p50 ms | p99 ms | aggregate tok/s | vs first row |")
print("|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['clients']} | {r['requests']} | {r['latency_ms']['p50']:.0f} | {r['latency_ms']['p99']:.0f} "
          f"| {r['aggregate_tok_s']:.1f} | {r['aggregate_tok_s'] / base:.2f}x |")
EOF
