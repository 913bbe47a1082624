#!/usr/bin/env python3
"""Where a toy generator's samples miss: too concentrated, or spread where the target is not.

For each run folder (samples.npy: the EMA generator's evaluation samples; target.npy: as many
fresh target draws), the target draws are split in halves R and I (I plays an independent
target sample), the generated samples cut to the size of I, and nearest-neighbour distances
are compared, each as a ratio to the same quantity for I (1 = like fresh data):

* inward  = mean distance of a generated point to its nearest R point.  < 1: the generator
  sits deeper inside the data than data does (under-dispersed, "thin curves"); > 1: it puts
  mass where the target has little (between modes, in holes).
* cover   = mean distance of an R point to its nearest generated point.  > 1: parts of the
  target are left uncovered (tails, arm tips, the edges of a band).
* outside = fraction of generated points farther from R than 99% of I's points are.

    python3 scripts/toy/spread.py RUN_DIR...      (needs numpy)

A law file's target.npy holds its atoms drawn with replacement (repeats at distance 0), so for
runs whose name contains "law" the unseen draws of `--heldout` are used as R and I instead:
    python3 scripts/toy/spread.py --heldout law/pinwheel-heldout.csv RUN_DIR...
"""
import sys

import numpy as np


def nearest(a, b, chunk=2000):
    """Distance from every row of a to its nearest row of b (brute force, chunked)."""
    out = np.empty(len(a))
    bb = (b * b).sum(1)
    for i in range(0, len(a), chunk):
        x = a[i : i + chunk]
        d2 = (x * x).sum(1)[:, None] + bb[None, :] - 2.0 * x @ b.T
        out[i : i + chunk] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


def main(runs, heldout=None):
    print("| run | inward | cover | outside (I: 1%) |")
    print("|---|---|---|---|")
    for run in runs:
        g = np.load(f"{run}/samples.npy")
        t = heldout if heldout is not None and "law" in run else np.load(f"{run}/target.npy")
        h = len(t) // 2
        r, i = t[:h], t[h : 2 * h]
        g = g[: len(i)]
        gi, ii = nearest(g, r), nearest(i, r)
        rg, ri = nearest(r, g), nearest(r, i)
        cut = np.quantile(ii, 0.99)
        name = run.rstrip("/").split("/")[-1]
        print(
            f"| {name} | {gi.mean() / ii.mean():.2f} | {rg.mean() / ri.mean():.2f} "
            f"| {(gi > cut).mean() * 100:.1f}% |"
        )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    args = sys.argv[1:]
    held = None
    if args[0] == "--heldout":
        held = np.loadtxt(args[1], delimiter=",", ndmin=2)
        args = args[2:]
    main(args, held)
