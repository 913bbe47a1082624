#!/usr/bin/env python3
"""Mode weights of 8-Gaussians toy runs: how evenly the generator fills the eight modes.

Each generated point (samples.npy) and fresh target draw (target.npy) is assigned to the
nearest mode centre (the mean of the target draws in each 45° sector); prints the largest
deviation of a mode's weight from 1/8 and Pearson's χ² of the counts against equal weights
(7 degrees of freedom: about 7 ± 3.7 for a fair sample), beside the same for the target draws.

    python3 scripts/toy/modes.py RUN_DIR...      (needs numpy)
"""
import sys

import numpy as np


def sector(x):
    return np.round(np.arctan2(x[:, 1], x[:, 0]) / (2 * np.pi / 8)).astype(int) % 8


def weights(x, centres):
    d = np.linalg.norm(x[:, None, :] - centres[None], axis=2)
    return np.bincount(d.argmin(1), minlength=8) / len(x)


def main(runs):
    print("| run | max abs(w − 1/8) generated | target | χ² generated | target |")
    print("|---|---|---|---|---|")
    for run in runs:
        g = np.load(f"{run}/samples.npy")
        t = np.load(f"{run}/target.npy")
        centres = np.array([t[sector(t) == k].mean(0) for k in range(8)])
        wg, wt = weights(g, centres), weights(t, centres)
        chi = lambda w, n: ((w - 1 / 8) ** 2 / (1 / 8)).sum() * n
        name = run.rstrip("/").split("/")[-1]
        print(
            f"| {name} | {abs(wg - 1 / 8).max():.4f} | {abs(wt - 1 / 8).max():.4f} "
            f"| {chi(wg, len(g)):.1f} | {chi(wt, len(t)):.1f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
