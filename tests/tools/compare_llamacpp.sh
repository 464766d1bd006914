#!/usr/bin/env bash
# tests/tools/compare_llamacpp.sh BUILD_DIR — tools/compare_llamacpp.sh and
# tools/bench_report.py --compare, end to end, against a stand-in for llama.cpp's llama-bench
# (a script that answers like it, with fixed rates), on a tiny mkmodel file:
#   - the alternating rounds run, the records are written, each engine's per-round rates are
#     there and the ratio is minfer's median over llama.cpp's;
#   - -L names the build in the printout and in every record, the CPU's family/model/stepping
#     is in every record;
#   - with -d, a test only llama-bench runs (pp @ depth) is printed and recorded, not a crash;
#   - a file llama-bench cannot load is recorded with its reason, minfer's rates kept;
#   - bench_report.py --compare makes the table from those records.
# Needs /usr/bin/python3 (the tools use it); skipped (77) without it.
. "$(dirname "$0")/setup.sh" compare_llamacpp "${1:-}"

"$B/mkmodel" -o "$T/a.gguf" --preset tiny --seed 1 >/dev/null
cp "$T/a.gguf" "$T/bad.gguf"

# the stand-in: --help mentions --n-depth (as newer builds do); rates 100 tok/s for prompts,
# 10 for generation, whatever the depth; a file named bad.gguf cannot be loaded
cat >"$T/llama-bench" <<'LB'
#!/usr/bin/env bash
if [ "${1-}" = --help ]; then echo "  -d, --n-depth <n>"; exit 0; fi
m="" p=0 n=0 d=0
while [ $# -gt 0 ]; do
    case "$1" in -m) m=$2; shift 2 ;; -p) p=$2; shift 2 ;; -n) n=$2; shift 2 ;; -d) d=$2; shift 2 ;; *) shift ;; esac
done
case "$m" in *bad.gguf) echo "llama_model_load: error: tensor 'x' has invalid ggml type 39 (NONE)" >&2; exit 1 ;; esac
for depth in ${d//,/ }; do
    echo "{\"build_commit\": \"stand-in\", \"build_number\": 0, \"n_prompt\": $p, \"n_gen\": 0, \"n_depth\": $depth, \"type_k\": \"f16\", \"samples_ts\": [100.0, 100.0]}"
    echo "{\"build_commit\": \"stand-in\", \"build_number\": 0, \"n_prompt\": 0, \"n_gen\": $n, \"n_depth\": $depth, \"type_k\": \"f16\", \"samples_ts\": [10.0, 10.0]}"
done
LB
chmod +x "$T/llama-bench"

cd "$SRC"
out=$(MINFER="$B/minfer" tools/compare_llamacpp.sh "$T/llama-bench" -R 2 -r 1 -p 8 -n 4 -d 16 -L "stand-in build" \
    --save "$T/rec.jsonl" "$T/a.gguf" "$T/bad.gguf" 2>"$T/err") || { cat "$T/err" >&2; fail "the script failed"; }
echo "$out"
grep -q "llama.cpp: stand-in build" <<<"$out" || fail "the -L name is not printed"
grep -q "cannot run .*bad.gguf: .*invalid ggml type" "$T/err" || fail "the unloadable file's reason is not reported"

/usr/bin/python3 - "$T/rec.jsonl" <<'PY' || fail "the records are wrong"
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
by = {(r["model"], r["test"]): r for r in recs}
def need(c, what):
    if not c: sys.exit(f"records: {what}")
need(all(r.get("llama_label") == "stand-in build" for r in recs), "a record without the -L name")
# family/model/stepping of this machine, as /proc/cpuinfo gives them
ident = {}
for line in open("/proc/cpuinfo"):
    k = line.split(":", 1)[0].strip()
    if k in ("cpu family", "model", "stepping") and k not in ident: ident[k] = line.split(":", 1)[1].strip()
want_id = "/".join(ident.get(k, "?") for k in ("cpu family", "model", "stepping"))
need(all(r.get("cpu_id") == want_id for r in recs), f"a record without the CPU's family/model/stepping {want_id}")
for t in ("pp8", "tg4", "tg4 @ d16"):
    r = by.get(("a.gguf", t))
    need(r, f"no record of a.gguf {t}")
    need(len(r["minfer_tok_s"]) == 2 and len(r["llama_tok_s"]) == 2, f"{t}: not one rate per engine and round")
    need(all(x > 0 for x in r["minfer_tok_s"]), f"{t}: minfer's rates not positive")
    want = 100.0 if t.startswith("pp") else 10.0
    need(r["llama_median"] == want, f"{t}: llama.cpp median {r['llama_median']} instead of {want}")
    need(abs(r["ratio"] - statistics.median(r["minfer_tok_s"]) / want) < 1e-9, f"{t}: ratio is not the medians' quotient")
r = by.get(("a.gguf", "pp8 @ d16"))
need(r and r["minfer_tok_s"] == [] and r["ratio"] is None, "the llama.cpp-only test pp8 @ d16 is not recorded as such")
for t in ("pp8", "tg4"):
    r = by.get(("bad.gguf", t))
    need(r and "invalid ggml type" in r.get("llama_failed", ""), f"bad.gguf {t}: the failure is not recorded")
    need(len(r["minfer_tok_s"]) == 2 and r["ratio"] is None, f"bad.gguf {t}: minfer's rates not kept alone")
PY

table=$(/usr/bin/python3 tools/bench_report.py --compare "$T/rec.jsonl") || fail "bench_report.py --compare failed"
[ "$(grep -c '| stand-in build |' <<<"$table")" = "$(wc -l <"$T/rec.jsonl")" ] || fail "the table does not have one row per record"
grep -q "cannot load the file" <<<"$table" || fail "the table does not say llama.cpp cannot load bad.gguf"
echo "compare_llamacpp test: ok"
