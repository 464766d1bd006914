#!/usr/bin/python3
"""bench_report.py [RESULTS.jsonl] — the markdown tables of docs/benchmarks.md, made from the
records `minfer bench --save` appended (never typed by hand). One row per record."""
import json
import sys


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "docs/bench-results.jsonl"
    rows = [json.loads(line) for line in open(path) if line.strip()]
    print("| date (UTC) | commit | device | model | types | test | tok/s median | min | max | runs | GB/s | % roofline | probe GB/s |")
    print("|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        bpt = r.get("bytes_per_token")
        gbs = f"{bpt * r['tok_s_median'] / 1e9:.2f}" if bpt else "-"
        roof = f"{r['roofline_pct']:.1f}%" if "roofline_pct" in r else "-"
        print(f"| {r['date'][:16].replace('T', ' ')} | {r['commit']} | {r['backend']}: {r['device']} | {r['model']} | "
              f"{r['types']} | {r['test']} | {r['tok_s_median']:.2f} | {r['tok_s_min']:.2f} | {r['tok_s_max']:.2f} | "
              f"{r['runs']} | {gbs} | {roof} | {r['bandwidth_gbs']:.1f} |")


if __name__ == "__main__":
    main()
