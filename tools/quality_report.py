#!/usr/bin/python3
"""quality_report.py -- what quantization and pruning cost, measured with minfer's own tools.

  tools/quality_report.py run [--text FILE] [--tinyllama] [--out docs/quality.json]
        quantize (every type and recipe, with and without an importance matrix) and prune
        stories260K, score every file with `minfer perplexity --kl-divergence` against the
        F32 original, time decoding with `minfer bench`, and save every result as JSON;
        --tinyllama adds the TinyLlama-1.1B-shaped random-weight F16 file (mkmodel) and its
        KL/top-1 table (slow: about an hour on a 2-core VM)
  tools/quality_report.py render [--json docs/quality.json] [--out docs/quality.md]
        write docs/quality.md from the saved JSON: nothing in it is typed by hand

Runs from the repository root with build/minfer and build/mkmodel built. The evaluation
text is tests/data/stories.txt (original stories written for this project); the importance
matrix is computed on a different text, tests/data/calibration.txt, so that no file is
scored on the text it was tuned on. --text FILE scores on FILE instead (e.g. a longer text
of your own).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

MINFER, MKMODEL = "build/minfer", "build/mkmodel"
STORIES = "../shared/models/stories260K.gguf"
TYPES = ["F16", "BF16", "Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0", "Q3_K", "Q2_K", "MXFP4"]
RECIPES = ["Q5_K_M", "Q4_K_M", "Q3_K_M"]
# types whose scale search an importance matrix changes (engine/quantize.h)
IMATRIX = ["Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0", "Q3_K", "Q2_K", "MXFP4"] + RECIPES
# the 1.1B-shaped file takes minutes per variant on 2 cores: a few types with an imatrix
IMATRIX_TINY = ["Q4_0", "Q3_K", "Q2_K", "Q4_K_M"]


def sh(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"quality_report.py: {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def quantize_args(src, out, target, imat=None):
    # MXFP4 as a target means "experts MXFP4"; a dense model gets it on every matrix through
    # an override (docs/quantize.md §2)
    args = [MINFER, "quantize", src, out, "Q8_0" if target == "MXFP4" else target, "-t", "2"]
    if target == "MXFP4":
        args += ["--tensor-type", ".=MXFP4"]
    if imat:
        args += ["--imatrix", imat]
    return args


def file_info(path):
    d = json.loads(sh([MINFER, "inspect", path, "--json"]))
    types = {k: v["bytes"] for k, v in d["types"].items()}
    total = sum(types.values())
    mix = ", ".join(f"{k} {100 * v / total:.0f}%" if v >= total / 200 else f"{k} <1%"
                    for k, v in sorted(types.items(), key=lambda kv: -kv[1]))
    return {"file_bytes": d["file_size"], "bits_per_weight": d["bits_per_weight"], "types": mix}


def score(path, base):
    # the chunks come from the base file
    return json.loads(sh([MINFER, "perplexity", "-m", path, "--kl-divergence", base, "--json", "-t", "2"]))


def decode_speed(path):
    d = json.loads(sh([MINFER, "bench", "-m", path, "-p", "0", "-n", "128", "-r", "3", "-t", "2", "--json"]))
    return {"tg128_tok_s": d["results"][0]["tok_s_median"], "device": d["device"]}


def run_model(name, src, text, calib, ctx, chunks, bench, with_imatrix, tmp):
    """Every variant of one source model, scored against it."""
    rows = []
    base = os.path.join(tmp, "base.gguf")
    log(f"{name}: base log-probs")
    b = json.loads(sh([MINFER, "perplexity", "-m", src, "-f", text, "-c", str(ctx), "--save-logits", base, "--json", "-t", "2"]
                      + (["--chunks", str(chunks)] if chunks else [])))

    def add(label, kind, path, target=None, imatrix=False):
        log(f"{name}: {label}")
        r = {"model": name, "variant": label, "kind": kind, "target": target, "imatrix": imatrix}
        r.update(file_info(path))
        s = score(path, base)
        r.update({k: s[k] for k in ("ppl", "ppl_se", "kld", "kld_se", "kld_p99", "top1", "top1_se", "dp_top",
                                     "tokens_scored", "n_ctx", "chunks")})
        if bench:
            r.update(decode_speed(path))
        rows.append(r)

    add("F32" if name == "stories260K" else "F16 (source)", "source", src)
    imat = os.path.join(tmp, "imatrix.gguf")
    sh([MINFER, "imatrix", "-m", src, "-f", calib, "-o", imat, "-c", str(ctx), "-t", "2"])
    out = os.path.join(tmp, "q.gguf")
    for t in TYPES + RECIPES:
        if name != "stories260K" and t == "F16":
            continue
        for im in ([False, True] if t in with_imatrix else [False]):
            sh(quantize_args(src, out, t, imat if im else None))
            label = "MXFP4 (every matrix)" if t == "MXFP4" else t
            add(label + (" + imatrix" if im else ""), "recipe" if t in RECIPES else "type", out, t, im)
            os.unlink(out)
    if name == "stories260K":
        for drop in ["0", "1", "2", "3", "4", "1,2"]:
            sh([MINFER, "prune", src, out, "--drop-layers", drop])
            add(f"pruned: without layer{'s' if ',' in drop else ''} {drop}", "pruned", out)
            os.unlink(out)
    for p in (base, imat):
        os.unlink(p)
    return b, rows


def cmd_run(a):
    text = a.text or "tests/data/stories.txt"
    calib = "tests/data/calibration.txt"
    cpu = sh(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).strip()
    rec = {"date": datetime.date.today().isoformat(),
           "commit": sh(["git", "rev-parse", "--short", "HEAD"]).strip(),
           "machine": f"{cpu}, {os.cpu_count()} cores, 2 threads", "text": text, "calibration": calib, "models": []}
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        base, rows = run_model("stories260K", STORIES, text, calib, 512, 0, True, IMATRIX, tmp)
        rec["models"].append({"name": "stories260K", "source": "stories260K.gguf (F32, the real llama2.c model)",
                              "base": base, "rows": rows})
        if a.tinyllama:
            src = os.path.join(tmp, "tinyllama.gguf")
            log("tinyllama: mkmodel")
            sh([MKMODEL, "-o", src, "--preset", "tinyllama-1.1b", "--type", "F16", "--threads", "2"])
            base, rows = run_model("tinyllama-1.1b", src, text, calib, 256, 2, False, IMATRIX_TINY, tmp)
            rec["models"].append({"name": "tinyllama-1.1b",
                                  "source": "mkmodel --preset tinyllama-1.1b --type F16 (random weights)",
                                  "base": base, "rows": rows})
    with open(a.out, "w") as f:
        json.dump(rec, f, indent=1)
        f.write("\n")
    log(f"wrote {a.out}")
    return 0


def fmt_mb(b):
    return f"{b / 1e6:.3f}" if b < 1e7 else f"{b / 1e6:.0f}"


def cmd_render(a):
    rec = json.load(open(a.json))
    L = []
    w = L.append
    w("# Quality: what quantization and pruning cost")
    w("")
    w("*Generated by `tools/quality_report.py render` from `docs/quality.json` (written by")
    w("`tools/quality_report.py run`); do not edit by hand.*")
    w("")
    w(f"Measured {rec['date']} at commit {rec['commit']} on {rec['machine']} (this project's shared VM).")
    w(f"Evaluation text: `{rec['text']}`; importance matrices (`+ imatrix`) computed on the different text")
    w(f"`{rec['calibration']}`. How each number is defined: [perplexity.md](perplexity.md); how files")
    w("are made: [quantize.md](quantize.md).")
    w("")
    w("Columns: file size; bits per weight (tensor bytes × 8 / parameters, norms included); the")
    w("tensor types in the file by share of bytes; perplexity ± its standard error; mean KL")
    w("divergence from the source model ± standard error and its 99th percentile; top-1 agreement")
    w("(how often both models' most likely next token is the same); mean |Δp| of the source's top")
    w("token; decode speed (`minfer bench -p 0 -n 128 -r 3`: 128 tokens, median of 3 runs, 2 threads).")
    w("The first row of each table is the source scored against its own saved log-probabilities: the")
    w("floor set by storing them in F16 ([perplexity.md](perplexity.md) §2), which on a flat random")
    w("model also flips a few near-tied top-1 choices.")
    for m in rec["models"]:
        b = m["base"]
        w("")
        w(f"## {m['name']}")
        w("")
        w(f"Source: {m['source']}. {b['chunks']} chunks of {b['n_ctx']} tokens, second halves scored:")
        w(f"{b['tokens_scored']} tokens. Source perplexity {b['ppl']:.4f} ± {b['ppl_se']:.4f}.")
        if m["name"] != "stories260K":
            w(f"Random weights make perplexity meaningless (near-uniform predictions: {b['ppl']:.0f} here), and the")
            w("distributions are flat, so mean |Δp| is tiny and top-1 agreement is fragile (many near-ties);")
            w("KL divergence still measures how far quantization moves the output distribution.")
            w("The text is kept short on this 2-core machine: the file is 2.2 GB and every variant is")
            w("quantized and evaluated in turn.")
        else:
            w("stories260K's rows are 64 (embedding) and 172 (ffn_down) elements long: no matrix fits")
            w("the 256-element K-quant blocks, and ffn_down fits no 32-element block either, so the")
            w("K-quant rows below are made of their fallback types (see the types column, and")
            w("[quantize.md](quantize.md) §2) — the TinyLlama-shaped table shows the K-quants themselves.")
        w("")
        speed = any("tg128_tok_s" in r for r in m["rows"])
        head = "| variant | size (MB) | bits/weight | types | perplexity | KLD | KLD p99 | top-1 % | mean \\|Δp\\| |"
        sep = "|---|---:|---:|---|---:|---:|---:|---:|---:|"
        if m["name"] != "stories260K":
            head = "| variant | size (MB) | bits/weight | types | KLD | KLD p99 | top-1 % | mean \\|Δp\\| |"
            sep = "|---|---:|---:|---|---:|---:|---:|---:|"
        if speed:
            head += " decode tok/s |"
            sep += "---:|"
        w(head)
        w(sep)
        for r in m["rows"]:
            cells = [r["variant"], fmt_mb(r["file_bytes"]), f"{r['bits_per_weight']:.2f}", r["types"]]
            if m["name"] == "stories260K":
                cells.append(f"{r['ppl']:.3f} ± {r['ppl_se']:.3f}")
            cells += [f"{r['kld']:.4g} ± {r['kld_se']:.2g}", f"{r['kld_p99']:.4g}",
                      f"{100 * r['top1']:.1f} ± {100 * r['top1_se']:.1f}", f"{r['dp_top']:.3g}"]
            if speed:
                cells.append(f"{r['tg128_tok_s']:.0f}" if "tg128_tok_s" in r else "–")
            w("| " + " | ".join(cells) + " |")
        if speed:
            dev = next(r["device"] for r in m["rows"] if "device" in r)
            w("")
            sp = [r["tg128_tok_s"] for r in m["rows"] if "tg128_tok_s" in r]
            w(f"Decode speed on {dev}, every row in one run one after the other. The VM is shared")
            w(f"with other work and a model this small is bound by per-token overhead, not by its bytes:")
            w(f"the speeds range from {min(sp):.0f} to {max(sp):.0f} tok/s with no order by size, so they")
            w("say \"thousands of tokens per second\" and no more; the gain of smaller files shows on")
            w("large models ([benchmarks.md](benchmarks.md)).")
    w("")
    open(a.out, "w").write("\n".join(L) + "\n")
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--text")
    p.add_argument("--tinyllama", action="store_true")
    p.add_argument("--out", default="docs/quality.json")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("render")
    p.add_argument("--json", default="docs/quality.json")
    p.add_argument("--out", default="docs/quality.md")
    p.set_defaults(fn=cmd_render)
    a = ap.parse_args(argv)
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
