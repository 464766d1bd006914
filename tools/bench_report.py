#!/usr/bin/python3
"""bench_report.py [--summary] [RESULTS.jsonl] — the markdown tables of docs/benchmarks.md and
the README, made from the records `minfer bench --save` appended (never typed by hand).

Without --summary: one row per record. With --summary: one row per (device, model, test)
over all its records: how many bench sessions, the median of their medians and the lowest
and highest session median (the spread between sessions, which on a shared VM is larger
than the spread inside one), and the median % roofline."""
import json
import statistics
import sys


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def per_record(rows):
    print("| date (UTC) | commit | device | model | types | test | tok/s median | min | max | runs | GB/s | % roofline | probe GB/s |")
    print("|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        bpt = r.get("bytes_per_token")
        gbs = f"{bpt * r['tok_s_median'] / 1e9:.2f}" if bpt else "-"
        roof = f"{r['roofline_pct']:.1f}%" if "roofline_pct" in r else "-"
        print(f"| {r['date'][:16].replace('T', ' ')} | {r['commit']} | {r['backend']}: {r['device']} | {r['model']} | "
              f"{r['types']} | {r['test']} | {r['tok_s_median']:.2f} | {r['tok_s_min']:.2f} | {r['tok_s_max']:.2f} | "
              f"{r['runs']} | {gbs} | {roof} | {r['bandwidth_gbs']:.1f} |")


def summary(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r["backend"], r["device"], r["model"], r["test"]), []).append(r)
    print("| device | model | test | sessions | tok/s (median of session medians) | lowest | highest | % roofline | dates (UTC) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---|")
    for (backend, device, model, test), rs in groups.items():
        meds = [r["tok_s_median"] for r in rs]
        roofs = [r["roofline_pct"] for r in rs if "roofline_pct" in r]
        roof = f"{statistics.median(roofs):.1f}%" if roofs else "-"
        dates = sorted({r["date"][:10] for r in rs})
        print(f"| {backend}: {device.split(',')[0]} | {model} | {test} | {len(rs)} | {statistics.median(meds):.2f} | "
              f"{min(meds):.2f} | {max(meds):.2f} | {roof} | {', '.join(dates)} |")


def main():
    args = sys.argv[1:]
    summ = "--summary" in args
    args = [a for a in args if a != "--summary"]
    rows = load(args[0] if args else "docs/bench-results.jsonl")
    (summary if summ else per_record)(rows)


if __name__ == "__main__":
    main()
