#!/usr/bin/python3
"""ppl_numpy.py -- perplexity and KL divergence computed directly with NumPy from the
logits of tools/reference.py (the independent float64 reference), for tests/test_perplexity.c.

  ppl_numpy.py CHUNKS MODEL [BASE_MODEL] [--act-q8]

CHUNKS: a text file, one chunk per line, token ids separated by spaces (the chunks exactly
as minfer evaluates them: mf_ppl_chunks). Every chunk is run from an empty cache; positions
j = n/2 .. n-2 predict token j+1 (docs/perplexity.md). Prints one JSON object: the same
statistics `minfer perplexity --json` prints, computed here from the definitions:
  nll      mean of -log softmax(logits_j)[t_{j+1}]
  nll_se   sqrt((mean(nll^2) - mean(nll)^2) / (N - 1));   ppl = exp(nll), ppl_se = ppl * nll_se
  kld      mean over tokens of sum_i p_i (log p_i - log q_i), p = BASE_MODEL, q = MODEL
  kld_p99  the ceil(0.99 N)-th smallest KL (nearest rank)
  top1     fraction of tokens where argmax p == argmax q
  dp_top   mean |q(top_p) - p(top_p)|
--act-q8 rounds MODEL's activations to 8 bits before quantized products, as minfer's fast
CPU path does (tools/reference.py --act-q8); the base model is always exact.
"""
import importlib.util
import json
import math
import os
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("reference", os.path.join(here, "..", "tools", "reference.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)


def log_softmax(logits):
    m = logits.max(axis=1, keepdims=True)
    return logits - (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))


def scored_logprobs(path, chunks, act_q8):
    ref.ACT_Q8 = act_q8
    model = ref.load_model(path)
    out = []
    for c in chunks:
        model.reset()
        lp = log_softmax(model.eval(c).astype(np.float64))
        first = len(c) // 2
        out.append((lp[first:len(c) - 1], np.asarray(c[first + 1:])))
    ref.ACT_Q8 = False
    return out


def mean_se(v):
    m = float(v.mean())
    var = float((v * v).mean()) - m * m
    return m, math.sqrt(var / (len(v) - 1)) if len(v) > 1 and var > 0 else 0.0


def main(argv):
    act_q8 = "--act-q8" in argv
    args = [a for a in argv if a != "--act-q8"]
    chunks = [[int(t) for t in line.split()] for line in open(args[0]) if line.strip()]
    q = scored_logprobs(args[1], chunks, act_q8)
    lq = np.concatenate([a for a, _ in q])
    nxt = np.concatenate([t for _, t in q])
    nll = -lq[np.arange(len(nxt)), nxt]
    m, se = mean_se(nll)
    r = {"tokens_scored": int(len(nxt)), "nll": m, "nll_se": se, "ppl": math.exp(m), "ppl_se": math.exp(m) * se}
    if len(args) > 2:
        lp = np.concatenate([a for a, _ in scored_logprobs(args[2], chunks, False)])
        p = np.exp(lp)
        kl = (p * (lp - lq)).sum(axis=1)
        r["kld"], r["kld_se"] = mean_se(kl)
        r["kld_p99"] = float(np.sort(kl)[max(1, math.ceil(0.99 * len(kl))) - 1])
        top = lp.argmax(axis=1)
        r["top1"] = float((top == lq.argmax(axis=1)).mean())
        rows = np.arange(len(top))
        r["dp_top"] = float(np.abs(np.exp(lq[rows, top]) - p[rows, top]).mean())
        r["base_ppl"] = math.exp(float(-lp[rows, nxt].mean()))
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
