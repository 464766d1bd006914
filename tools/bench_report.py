#!/usr/bin/python3
"""bench_report.py [--summary | --parallel | --compare] [RESULTS.jsonl] — the markdown tables
of docs/benchmarks.md, docs/batching.md and the README, made from the records `minfer bench
--save` and tools/compare_llamacpp.sh --save appended (never typed by hand).

Without an option: one row per record. With --summary: one row per (device, model, test)
over all its records: how many bench sessions, the median of their medians and the lowest
and highest session median (the spread between sessions, which on a shared VM is larger
than the spread inside one), and the median % roofline. With --parallel: the runs of
`minfer bench --parallel`, one row per number of sequences decoding together: the aggregate
and per-sequence tok/s and the ratio to one sequence measured in the same run (alternating
repetitions), with the load average the run started at. With --compare: one row per
comparison record (docs/compare-results.jsonl): both engines' medians over the alternating
rounds and their ratio, with the machine, its load and the commit."""
import json
import statistics
import sys


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def test_label(r):
    """The test as the tables name it: its KV cache type, and whether CUDA graphs were off."""
    return r["test"] + (f" (KV {r['kv']})" if r.get("kv") else "") + (", no CUDA graphs" if r.get("cuda_graphs") is False else "")


def per_record(rows):
    print("| date (UTC) | commit | device | model | types | test | tok/s median | min | max | runs | GB/s | % roofline | probe GB/s |")
    print("|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        bpt = r.get("bytes_per_token")
        gbs = f"{bpt * r['tok_s_median'] / 1e9:.2f}" if bpt else "-"
        roof = f"{r['roofline_pct']:.1f}%" if "roofline_pct" in r else "-"
        print(f"| {r['date'][:16].replace('T', ' ')} | {r['commit']} | {r['backend']}: {r['device']} | {r['model']} | "
              f"{r['types']} | {test_label(r)} | {r['tok_s_median']:.2f} | {r['tok_s_min']:.2f} | {r['tok_s_max']:.2f} | "
              f"{r['runs']} | {gbs} | {roof} | {r['bandwidth_gbs']:.1f} |")


def summary(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r["backend"], r["device"], r["model"], test_label(r)), []).append(r)
    print("| device | model | test | sessions | tok/s (median of session medians) | lowest | highest | % roofline | dates (UTC) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---|")
    for (backend, device, model, test), rs in groups.items():
        meds = [r["tok_s_median"] for r in rs]
        roofs = [r["roofline_pct"] for r in rs if "roofline_pct" in r]
        roof = f"{statistics.median(roofs):.1f}%" if roofs else "-"
        dates = sorted({r["date"][:10] for r in rs})
        print(f"| {backend}: {device.split(',')[0]} | {model} | {test} | {len(rs)} | {statistics.median(meds):.2f} | "
              f"{min(meds):.2f} | {max(meds):.2f} | {roof} | {', '.join(dates)} |")


def parallel(rows):
    runs = {}
    for r in rows:
        if "parallel" in r:
            runs.setdefault((r["date"], r["commit"], r["backend"], r["device"], r["model"], r["depth"]), []).append(r)
    print("| date (UTC) | commit | device | model | depth | sequences | tok/s, all sequences | min | max | "
          "tok/s per sequence | x one sequence | load |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (date, commit, backend, device, model, depth), rs in runs.items():
        one = [r for r in rs if r["parallel"] == 1]
        for r in sorted(rs, key=lambda r: r["parallel"]):
            ratio = f"{r['tok_s_median'] / one[0]['tok_s_median']:.2f}" if one else "-"
            load = f"{r['load_1m']:.2f}" if "load_1m" in r else "-"
            print(f"| {date[:16].replace('T', ' ')} | {commit} | {backend}: {device.split(',')[0]} | {model} | {depth} | "
                  f"{r['parallel']} | {r['tok_s_median']:.2f} | {r['tok_s_min']:.2f} | {r['tok_s_max']:.2f} | "
                  f"{r['tok_s_per_seq']:.2f} | {ratio} | {load} |")


# the records written before compare_llamacpp.sh had -L all came from this build
OLD_LLAMA = "Feb-2025 snapshot"


def compare(rows):
    print("| date (UTC) | commit | CPU (threads) | flags | load at start | llama.cpp | model | test | rounds x runs | minfer tok/s | llama.cpp tok/s | ratio | per-round ratios | minfer % roofline |")
    print("|---|---|---|---|---|---|---|---|---|---:|---:|---:|---|---:|")
    for r in rows:
        ml, mm = r.get("llama_median"), r.get("minfer_median")
        per = " ".join(f"{a / b:.2f}" for a, b in zip(r["minfer_tok_s"], r.get("llama_tok_s") or []))
        roof = f"{r['minfer_roofline_pct']:.1f}%" if "minfer_roofline_pct" in r else "-"
        kv = f" (KV {r['minfer_kv']} / {r.get('llama_kv') or '-'})"
        other = f"; other KV type {r['minfer_other_kv_median']:.2f}" if "minfer_other_kv_median" in r else ""
        flags = " ".join(f for f in r["cpu_flags"] if f.startswith(("avx512_vnni", "avx_vnni", "amx_int8", "avx512f")) or f == "avx2")
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") else "-"
        llama = f"{ml:.2f}" if ml else ("cannot load the file" if r.get("llama_failed") else "-")
        cpu = r["cpu"] + (f", {r['cpu_id']}" if r.get("cpu_id") else "")
        print(f"| {r['date'][:16].replace('T', ' ')} | {r['commit']} | {cpu} ({r['threads']}) | {flags} | "
              f"{r['load_start'][0]} | {r.get('llama_label', OLD_LLAMA)} | {r['model']} | {r['test']}{kv} | {r['rounds']} x {r['runs_per_round']} | "
              f"{f'{mm:.2f}' if mm else '-'}{other} | {llama} | {ratio} | {per or '-'} | {roof} |")


def main():
    args = sys.argv[1:]
    mode = per_record
    if "--summary" in args:
        mode = summary
    if "--parallel" in args:
        mode = parallel
    if "--compare" in args:
        mode = compare
    args = [a for a in args if a not in ("--summary", "--parallel", "--compare")]
    default = "docs/compare-results.jsonl" if mode is compare else "docs/bench-results.jsonl"
    rows = load(args[0] if args else default)
    mode(rows)


if __name__ == "__main__":
    main()
