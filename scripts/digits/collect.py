#!/usr/bin/env python3
"""Markdown tables of digits runs (scripts/digits/runs.sh): one row per run, then one per group
(the name without its `-sN` seed suffix) with mean ± sd over seeds.

    python3 scripts/digits/collect.py OUT [NAME_PREFIX ...]
"""
import json
import os
import re
import statistics
import sys


def load(out, name):
    with open(os.path.join(out, name, "metrics.json")) as f:
        return json.load(f)


def fmt(xs, digits):
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{statistics.mean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


def main():
    out, prefixes = sys.argv[1], sys.argv[2:]
    names = sorted(n for n in os.listdir(out) if os.path.isfile(os.path.join(out, n, "metrics.json")))
    if prefixes:
        names = [n for n in names if any(n.startswith(p) for p in prefixes)]
    print("| run | Fréchet (train: floor) | core D_t-mid [95% CI] | p | NN d1 median (held-out) | near-copies | wall s |")
    print("|---|---|---|---|---|---|---|")
    groups = {}
    for n in names:
        m = load(out, n)
        t = m["tmid"]
        wall = open(os.path.join(out, n + ".time")).read().strip() if os.path.exists(os.path.join(out, n + ".time")) else "-"
        print(f"| {n} | {m['frechet']:.2f} ({m['frechet_train']:.2f}) | {t['estimate']:.3f} [{t['ci95'][0]:.3f}, {t['ci95'][1]:.3f}] "
              f"| {t['p_value']:.3f} | {m['nearest_generated']['median']:.3f} ({m['nearest_heldout']['median']:.3f}) "
              f"| {m['nearest_generated']['near_copies']:.3f} | {wall} |")
        groups.setdefault(re.sub(r"-s\d+$", "", n), []).append(m)
    print()
    print("| group | seeds | Fréchet | core D_t-mid | p < 0.05 | NN d1 median |")
    print("|---|---|---|---|---|---|")
    for g, ms in groups.items():
        print(f"| {g} | {len(ms)} | {fmt([m['frechet'] for m in ms], 2)} | {fmt([m['tmid']['estimate'] for m in ms], 3)} "
              f"| {sum(m['tmid']['p_value'] < 0.05 for m in ms)}/{len(ms)} | {fmt([m['nearest_generated']['median'] for m in ms], 3)} |")
    # Flow maps (kind `flowmap` of runs.sh): the same measures at each number of sampling steps.
    by_k = {}
    for n in names:
        for f in sorted(os.listdir(os.path.join(out, n))):
            k = re.fullmatch(r"metrics-k(\d+)\.json", f)
            if k:
                with open(os.path.join(out, n, f)) as fh:
                    by_k.setdefault((re.sub(r"-s\d+$", "", n), int(k.group(1))), []).append(json.load(fh))
    if by_k:
        print()
        print("| group | sampling steps | seeds | Fréchet | core D_t-mid | p < 0.05 | NN d1 median |")
        print("|---|---|---|---|---|---|---|")
        for (g, k), ms in sorted(by_k.items()):
            print(f"| {g} | {k} | {len(ms)} | {fmt([m['frechet'] for m in ms], 2)} | {fmt([m['tmid']['estimate'] for m in ms], 3)} "
                  f"| {sum(m['tmid']['p_value'] < 0.05 for m in ms)}/{len(ms)} | {fmt([m['nearest_generated']['median'] for m in ms], 3)} |")


if __name__ == "__main__":
    main()
