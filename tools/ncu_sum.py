#!/usr/bin/env python3
"""ncu_sum.py — where the GPU time of a run goes, per kernel, from Nsight Compute's raw CSV.

    ncu --metrics gpu__time_duration.sum --csv --page raw --print-units base PROGRAM > LOG
    tools/ncu_sum.py LOG OUT.txt

LOG may hold the program's own output too: only lines that start with a quote are CSV. The
first CSV line names the columns ("Kernel Name", "gpu__time_duration.sum"), the second gives
their units (nsecond, usecond, msecond or second), every further line is one launch. OUT gets
one line per kernel name (template arguments kept, parameter list dropped): its share of the
total, total time, launches, mean time — largest first. tools/gpu_check.sh (stage profile)
runs it; docs/cuda.md §11 says what it found. Exit status 1 with one line when LOG holds no
launch.
"""
import csv
import sys

SCALE = {"nsecond": 1.0, "usecond": 1e3, "msecond": 1e6, "second": 1e9}


def short_name(name):
    """The demangled name without its parameter list and anonymous namespaces."""
    name = name.replace("(anonymous namespace)::", "").strip()
    if name.endswith(")"):
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(name[i], 0)
            if depth == 0:
                name = name[:i]
                break
    return name.removeprefix("void ").strip()


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: ncu_sum.py NCU_CSV_LOG OUT.txt")
    with open(argv[1], errors="replace") as f:
        lines = [line for line in f if line.startswith('"')]
    rows = list(csv.reader(lines))
    if len(rows) < 3:
        sys.exit(f"ncu_sum: no kernel launches in {argv[1]}")
    head, units = rows[0], rows[1]
    try:
        i_name, i_t = head.index("Kernel Name"), head.index("gpu__time_duration.sum")
    except ValueError:
        sys.exit(f"ncu_sum: {argv[1]}: no 'Kernel Name' and 'gpu__time_duration.sum' columns")
    scale = SCALE.get(units[i_t])
    if scale is None:
        sys.exit(f"ncu_sum: {argv[1]}: unknown time unit '{units[i_t]}'")
    tot, cnt = {}, {}
    for r in rows[2:]:
        if len(r) <= max(i_name, i_t):
            continue
        try:
            t = float(r[i_t].replace(",", "")) * scale
        except ValueError:
            continue
        name = short_name(r[i_name])
        tot[name] = tot.get(name, 0.0) + t
        cnt[name] = cnt.get(name, 0) + 1
    if not tot:
        sys.exit(f"ncu_sum: no timed launches in {argv[1]}")
    all_t = sum(tot.values())
    with open(argv[2], "w") as f:
        f.write(f"{sum(cnt.values())} launches, {all_t / 1e6:.3f} ms of kernel time\n")
        f.write(f"{'share':>6s} {'total us':>10s} {'launches':>8s} {'mean us':>8s}  kernel\n")
        for k in sorted(tot, key=tot.get, reverse=True):
            f.write(f"{100 * tot[k] / all_t:5.1f}% {tot[k] / 1e3:10.1f} {cnt[k]:8d} {tot[k] / cnt[k] / 1e3:8.2f}  {k[:120]}\n")


if __name__ == "__main__":
    main(sys.argv)
