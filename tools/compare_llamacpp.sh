#!/usr/bin/env bash
# compare_llamacpp.sh LLAMA_BENCH [options] FILE... — minfer against llama.cpp, side by side.
#
# Runs `minfer bench` and llama.cpp's `llama-bench` on the same GGUF files, with the same
# thread count and test sizes, alternately: round 1 runs minfer then llama.cpp on each file,
# round 2 llama.cpp then minfer, and so on, so that a slow minute of this shared machine
# hurts both engines alike. Prints, per file and test, the median over the rounds of each
# engine's per-round median and their ratio (minfer / llama.cpp, > 1: minfer faster), and
# with --save appends one JSON record per (file, test) for tools/bench_report.py --compare.
#
# llama.cpp is not part of this repository: build its `llama-bench` yourself, outside the
# tree, from its public source (docs/benchmarks.md says how the recorded one was built).
#
# Options (defaults in brackets):
#   -R N        rounds [3]            -r N     runs per engine and round [3]
#   -t N        threads [2]           -p N     prompt tokens (ppN) [256]
#   -n N        generated tokens (tgN) [64]
#   -d N        also tgN at context depth N: with llama-bench's -d where it has one
#               (newer builds); otherwise minfer alone, with its default and the other KV
#               cache type, since there is nothing to compare against
#   --kv-f32    minfer with the float32 KV cache for every test (its default is binary16,
#               llama.cpp's default type too; --kv-f16 is accepted and changes nothing)
#   -L TEXT     which llama.cpp this is, in the printout and the records (its llama-bench
#               prints "unknown" as build_commit when built from a source snapshot without
#               git history), e.g. "Feb-2025 snapshot, AMX"
#   --save F    append the records to F (JSON Lines)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
LB=$1; shift
case "$LB" in -h|--help) usage ;; esac
[ -x "$LB" ] || { echo "compare_llamacpp: '$LB' is not an executable llama-bench" >&2; exit 2; }
MINFER=${MINFER:-build/minfer}
[ -x "$MINFER" ] || { echo "compare_llamacpp: $MINFER not built (cmake --build build)" >&2; exit 2; }

rounds=3 reps=3 threads=2 pp=256 tg=64 depth=0 kvf32=0 save="" label="" files=()
num() { [[ $2 =~ ^[0-9]+$ ]] || { echo "compare_llamacpp: $1 wants a number, got '$2'" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        -R) num -R "${2-}"; rounds=$2; shift 2 ;;
        -r) num -r "${2-}"; reps=$2; shift 2 ;;
        -t) num -t "${2-}"; threads=$2; shift 2 ;;
        -p) num -p "${2-}"; pp=$2; shift 2 ;;
        -n) num -n "${2-}"; tg=$2; shift 2 ;;
        -d) num -d "${2-}"; depth=$2; shift 2 ;;
        --kv-f16) kvf32=0; shift ;;
        --kv-f32) kvf32=1; shift ;;
        -L) label=${2-}; [ -n "$label" ] || usage; shift 2 ;;
        --save) save=${2-}; [ -n "$save" ] || usage; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "compare_llamacpp: unknown option '$1'" >&2; exit 2 ;;
        *) [ -f "$1" ] || { echo "compare_llamacpp: no such model file '$1'" >&2; exit 2; }
           files+=("$1"); shift ;;
    esac
done
[ ${#files[@]} -gt 0 ] || { echo "compare_llamacpp: no model files given" >&2; exit 2; }
[ "$rounds" -ge 1 ] && [ "$reps" -ge 1 ] && [ "$threads" -ge 1 ] || { echo "compare_llamacpp: -R, -r, -t must be >= 1" >&2; exit 2; }

lb_depth=0
"$LB" --help 2>&1 | grep -q -- '--n-depth' && lb_depth=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

kvopt=()
[ "$kvf32" = 1 ] && kvopt=(--kv-f32)
run_minfer() {  # file round
    local d=0
    [ "$depth" -gt 0 ] && d="0,$depth"
    "$MINFER" bench -m "$1" -p "$pp" -n "$tg" -d "$d" -r "$reps" -t "$threads" --device cpu "${kvopt[@]}" --json \
        >"$work/m.$2.$3.json" 2>"$work/m.$2.$3.err" || { echo "compare_llamacpp: minfer bench failed on $1:" >&2; cat "$work/m.$2.$3.err" >&2; return 1; }
    if [ "$depth" -gt 0 ] && [ "$lb_depth" = 0 ]; then
        # nothing to compare the depth test with: minfer's other KV cache type instead
        local other=(--kv-f32)
        [ "$kvf32" = 1 ] && other=(--kv-f16)
        "$MINFER" bench -m "$1" -p 0 -n "$tg" -d "$d" -r "$reps" -t "$threads" --device cpu "${other[@]}" --json \
            >"$work/k.$2.$3.json" 2>"$work/k.$2.$3.err" || { echo "compare_llamacpp: minfer bench failed on $1:" >&2; cat "$work/k.$2.$3.err" >&2; return 1; }
    fi
}
run_llama() {  # file index round
    local dopt=()
    [ "$depth" -gt 0 ] && [ "$lb_depth" = 1 ] && dopt=(-d "0,$depth")
    # a file this llama.cpp cannot load (e.g. an architecture or type it does not know):
    # minfer's numbers alone, with llama-bench's reason in the records
    "$LB" -m "$1" -p "$pp" -n "$tg" -r "$reps" -t "$threads" "${dopt[@]}" -o jsonl \
        >"$work/l.$2.$3.json" 2>"$work/l.$2.$3.err" || {
        { grep -m1 -i -E 'invalid|unknown|not supported' "$work/l.$2.$3.err" || grep -m1 -i error "$work/l.$2.$3.err" ||
          tail -1 "$work/l.$2.$3.err"; } >"$work/l.$2.fail"
        echo "compare_llamacpp: llama-bench cannot run $1: $(cat "$work/l.$2.fail")" >&2
        : >"$work/l.$2.$3.json"
    }
}

cat /proc/loadavg >"$work/load.start"
for ((r = 1; r <= rounds; r++)); do
    for i in "${!files[@]}"; do
        f=${files[$i]}
        echo "round $r/$rounds: $(basename "$f") (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
        if [ $((r % 2)) = 1 ]; then run_minfer "$f" "$i" "$r"; run_llama "$f" "$i" "$r"
        else run_llama "$f" "$i" "$r"; run_minfer "$f" "$i" "$r"; fi
    done
done
cat /proc/loadavg >"$work/load.end"

commit=$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
/usr/bin/python3 - "$work" "$rounds" "$reps" "$threads" "$pp" "$tg" "$depth" "$kvf32" "$lb_depth" "$commit" "$save" "$LB" "$label" "${files[@]}" <<'EOF'
import glob, hashlib, json, os, statistics, sys, time
(work, rounds, reps, threads, pp, tg, depth, kvf32, lb_depth, commit, save, lb, label), files = sys.argv[1:14], sys.argv[14:]
rounds, reps, threads, pp, tg, depth, kvf32, lb_depth = map(int, (rounds, reps, threads, pp, tg, depth, kvf32, lb_depth))

def cpu():
    # the model name alone ("Intel(R) Xeon(R) Processor" on a VM) does not tell CPU generations
    # apart: family/model/stepping does (e.g. 6/143 Sapphire Rapids, 6/207 Emerald Rapids)
    model, flags, ident = "CPU", [], {}
    for line in open("/proc/cpuinfo"):
        key = line.split(":", 1)[0].strip()
        if key == "model name" and model == "CPU": model = line.split(":", 1)[1].strip()
        if key in ("cpu family", "model", "stepping") and key not in ident: ident[key] = line.split(":", 1)[1].strip()
        if key == "flags": flags = line.split(":", 1)[1].split(); break
    keep = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16",
            "amx_int8", "amx_tile")
    cpu_id = "/".join(ident.get(k, "?") for k in ("cpu family", "model", "stepping"))
    return model, [f for f in keep if f in flags], cpu_id

def header_sha(path):
    # the GGUF header (metadata + tensor infos) names the file without hashing gigabytes;
    # the first 16 MB are taken as a stand-in when the header is not parsed here
    with open(path, "rb") as f: return hashlib.sha256(f.read(16 << 20)).hexdigest()

def mtest(name):  # minfer's test names -> the common ones
    return name.replace("@d", " @ d")

res = {}   # (file, test) -> {"minfer": [...], "llama": [...], "minfer_other_kv": [...], "roof": [...]}
for i, f in enumerate(files):
    for r in range(1, rounds + 1):
        m = json.load(open(f"{work}/m.{i}.{r}.json"))
        for x in m["results"]:
            d = res.setdefault((f, mtest(x["test"])), {})
            d["minfer_kv"] = m.get("kv", "?")
            d.setdefault("minfer", []).append(x["tok_s_median"])
            if "roofline_pct" in x: d.setdefault("roof", []).append(x["roofline_pct"]); d.setdefault("bw", []).append(x["bandwidth_gbs"])
        kf = f"{work}/k.{i}.{r}.json"
        if os.path.exists(kf):
            for x in json.load(open(kf))["results"]:
                res.setdefault((f, mtest(x["test"])), {}).setdefault("minfer_other_kv", []).append(x["tok_s_median"])
        for line in open(f"{work}/l.{i}.{r}.json"):
            if not line.strip(): continue
            x = json.loads(line)
            t = f"pp{x['n_prompt']}" if x["n_prompt"] else f"tg{x['n_gen']}"
            if x.get("n_depth"): t += f" @ d{x['n_depth']}"
            res.setdefault((f, t), {}).setdefault("llama", []).append(statistics.median(x["samples_ts"]))
            res[(f, t)]["llama_build"] = f"{x.get('build_commit', '?')} ({x.get('build_number', '?')})"
            res[(f, t)]["llama_kv"] = x.get("type_k", "?")
    if os.path.exists(f"{work}/l.{i}.fail"):
        why = open(f"{work}/l.{i}.fail").read().strip()
        for (ff, t), d in res.items():
            if ff == f: d["llama_failed"] = why

model, flags, cpu_id = cpu()
load = [open(f"{work}/load.{w}").read().split()[:3] for w in ("start", "end")]
print(f"\nCPU: {model} (family/model/stepping {cpu_id}), {threads} threads; flags: {' '.join(flags)}")
if label: print(f"llama.cpp: {label}")
print(f"load average at start {' '.join(load[0])}, at end {' '.join(load[1])}; {rounds} alternating rounds x {reps} runs")
print(f"{'file':32} {'test':14} {'minfer':>9} {'llama.cpp':>9} {'ratio':>7}  per-round ratios   [minfer/llama.cpp tok/s per round]   (% roofline)")
date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
recs = []
for (f, t), d in res.items():
    m = d.get("minfer", []); l = d.get("llama", []); o = d.get("minfer_other_kv", [])
    mm = statistics.median(m) if m else None
    ml = statistics.median(l) if l else None
    ratio = mm / ml if mm and ml else None
    per = [a / b for a, b in zip(m, l)] if m and l else []
    roof = statistics.median(d["roof"]) if d.get("roof") else None
    line = f"{os.path.basename(f):32} {t:14} {mm if mm else float('nan'):9.2f} "
    line += f"{ml:9.2f} " if ml else f"{'-':>9} "
    line += f"{ratio:6.2f}x  " if ratio else f"{'-':>7}  "
    line += " ".join(f"{p:.2f}" for p in per)
    if m and l: line += "   [" + " ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(m, l)) + "]"
    if roof: line += f"   ({roof:.1f}%)"
    if d.get("minfer_kv"): line += f"   (KV minfer {d['minfer_kv']}, llama.cpp {d.get('llama_kv', '-')})"
    if o: line += f"   other KV type: {statistics.median(o):.2f} tok/s"
    if not ml and " @ d" in t and not d.get("llama_failed"): line += "   (this llama-bench has no depth option)"
    if d.get("llama_failed"): line += f"   (llama.cpp: {d['llama_failed']})"
    print(line)
    rec = {"date": date, "commit": commit, "cpu": model, "cpu_id": cpu_id, "cpu_flags": flags, "threads": threads, "load_start": load[0],
           "load_end": load[1], "model": os.path.basename(f), "file_sha256_16m": header_sha(f), "test": t,
           "rounds": rounds, "runs_per_round": reps, "minfer_kv": d.get("minfer_kv", "?"),
           "minfer_tok_s": m, "minfer_median": mm, "llama_tok_s": l, "llama_median": ml, "ratio": ratio,
           "llama_build": d.get("llama_build"), "llama_kv": d.get("llama_kv")}
    if label: rec["llama_label"] = label
    if roof is not None: rec["minfer_roofline_pct"] = roof; rec["bandwidth_gbs"] = statistics.median(d["bw"])
    if d.get("llama_failed"): rec["llama_failed"] = d["llama_failed"]
    if o: rec["minfer_other_kv_tok_s"] = o; rec["minfer_other_kv_median"] = statistics.median(o)
    recs.append(rec)
if save:
    with open(save, "a") as out:
        for rec in recs: out.write(json.dumps(rec) + "\n")
    print(f"appended {len(recs)} records to {save}")
EOF
