#!/usr/bin/python3
"""logit_diff.py A.bin B.bin N_VOCAB [--every K] — how far two `minfer run --logits-out` files
are apart (float32 [n_positions][n_vocab], row-major): per position the largest |A - B|,
the largest |A|, whether the argmax agrees, and the KL divergence KL(softmax A || softmax B);
printed for every K-th position (default: 8 lines in all) and summarized over all of them.
Used for docs/cpu.md §4 (binary16 against float32 KV cache)."""
import sys

import numpy as np


def main():
    args = sys.argv[1:]
    every = 0
    if "--every" in args:
        i = args.index("--every")
        every = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 3:
        sys.exit(__doc__)
    a = np.fromfile(args[0], dtype="<f4")
    b = np.fromfile(args[1], dtype="<f4")
    V = int(args[2])
    if a.size != b.size or a.size % V:
        sys.exit(f"logit_diff: sizes {a.size} and {b.size} are not the same multiple of {V}")
    a = a.reshape(-1, V).astype(np.float64)
    b = b.reshape(-1, V).astype(np.float64)
    n = a.shape[0]
    d = np.abs(a - b).max(axis=1)
    s = np.abs(a).max(axis=1)
    agree = a.argmax(axis=1) == b.argmax(axis=1)
    pa = np.exp(a - a.max(axis=1, keepdims=True))
    pa /= pa.sum(axis=1, keepdims=True)
    lb = b - b.max(axis=1, keepdims=True)
    lb -= np.log(np.exp(lb).sum(axis=1, keepdims=True))
    la = np.log(pa)
    kl = (pa * (la - lb)).sum(axis=1)
    step = every or max(1, n // 8)
    print(f"{'position':>8} {'max|dlogit|':>12} {'max|logit|':>11} {'argmax':>7} {'KL':>10}")
    for p in list(range(0, n, step)) + ([n - 1] if (n - 1) % step else []):
        print(f"{p:8d} {d[p]:12.3e} {s[p]:11.3f} {'same' if agree[p] else 'DIFF':>7} {kl[p]:10.2e}")
    print(f"all {n} positions: max|dlogit| {d.max():.3e} (median {np.median(d):.3e}), "
          f"max relative to max|logit| {(d / s).max():.2e}, argmax agrees at {agree.sum()}/{n}, "
          f"KL mean {kl.mean():.2e} max {kl.max():.2e}")


if __name__ == "__main__":
    main()
