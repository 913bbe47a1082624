#!/usr/bin/env python3
"""The two figures of docs/learning.md §3 from a runs folder of scripts/digits/runs.sh.

    table1.png    Fréchet distance of each run (dots: seeds), with the warmup inits, the
                  three-seed MGM band and the training split's floor.
    dynamics.png  The health signals of MGM runs over their iterations (losses.jsonl): the
                  held-out variational value J, L_ψ / E‖x1 − x0‖², and the raw generator's std.

Needs matplotlib (`~/.cache/midpoint/sklearn/bin/pip install matplotlib`, the export venv):

    python3 scripts/digits/plot.py RUNS OUT_DIR
"""
import json
import os
import re
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Rows of the Table 1 figure: (label, run-name prefix). Order follows the paper's Table 1.
ROWS = [
    ("warmup 1000 (init)", "w1000"),
    ("warmup 3000 (init)", "w3000"),
    ("mgm: σ=0, σ'=0.01", "mgm"),
    ("1a: warmup 3000", "t1a-w3000"),
    ("1b: σ=σ'=0", "t1c-cs0"),
    ("1b: σ=σ'=0.01", "t1b-s0.01"),
    ("1b: σ=σ'=0.05", "t1b-s0.05"),
    ("1b: σ=σ'=0.2", "t1b-s0.2"),
    ("1c: σ=0, σ'=0.05", "t1c-cs0.05"),
    ("1c: σ=0, σ'=0.2", "t1c-cs0.2"),
    ("1d: midpoint-only", "t1d-midpoint"),
    ("1:1, one lr, no field warmup", "paper-dyn"),
    ("4 field updates", "c4"),
    ("800 iterations", "long800"),
]
DYNAMICS = ["mgm-s0", "mgm-s1", "mgm-s2", "paper-dyn-s0", "c4-s0", "long800-s0"]


def runs_of(out, prefix):
    names = [n for n in os.listdir(out) if re.fullmatch(re.escape(prefix) + r"-s\d+", n)]
    ms = []
    for n in sorted(names):
        p = os.path.join(out, n, "metrics.json")
        if os.path.isfile(p):
            with open(p) as f:
                ms.append(json.load(f))
    return ms


def table1(out, path):
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    labels, floor = [], None
    for i, (label, prefix) in enumerate(ROWS):
        ms = runs_of(out, prefix)
        if not ms:
            continue
        fd = [m["frechet"] for m in ms]
        floor = ms[0]["frechet_train"]
        y = len(labels)
        color = "tab:gray" if "init" in label else "tab:blue"
        ax.scatter(fd, [y] * len(fd), color=color, zorder=3)
        if len(fd) > 1:
            ax.plot([min(fd), max(fd)], [y, y], color=color, lw=2)
        ax.annotate(f"{statistics.mean(fd):.1f}" + (f" ({len(fd)} seeds)" if len(fd) > 1 else ""),
                    (max(fd), y), xytext=(6, -4), textcoords="offset points", fontsize=8)
        if prefix == "mgm" and len(fd) > 1:
            mu, sd = statistics.mean(fd), statistics.stdev(fd)
            ax.axvspan(mu - 2 * sd, mu + 2 * sd, color="tab:blue", alpha=0.12,
                       label="mgm mean ± 2 sd over seeds")
        labels.append(label)
    if floor is not None:
        ax.axvline(floor, color="k", ls=":", label=f"training split itself ({floor:.1f})")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("Fréchet distance to held-out digits (feature net, log scale; lower is better)")
    ax.set_title("Digits 8×8: warmup inits and MGM runs (Table 1 in miniature)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def smooth(xs, k=10):
    # Trailing mean over k iterations: single-batch values are noisy enough to hide the trend.
    out, acc = [], 0.0
    for i, x in enumerate(xs):
        acc += x - (xs[i - k] if i >= k else 0.0)
        out.append(acc / min(i + 1, k))
    return out


def dynamics(out, path):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for name in DYNAMICS:
        p = os.path.join(out, name, "losses.jsonl")
        if not os.path.isfile(p):
            continue
        with open(p) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        step = [r["step"] for r in rows]
        for ax, key in zip(axes, ["generator", "critic_rel", "raw_std"]):
            ax.plot(step, smooth([r[key] for r in rows]), lw=1, label=name)
    axes[0].axhline(0, color="k", lw=0.8)
    axes[0].set_title("held-out J (10-iteration mean; ≥ 0 when the field beats f = 0)", fontsize=10)
    axes[0].set_ylim(-30, 15)
    axes[1].axhline(1, color="k", lw=0.8)
    axes[1].set_title("L_ψ / E‖x1 − x0‖² (1: the zero field)")
    axes[1].set_ylim(0.5, 1.9)
    axes[2].axhline(0.748, color="k", ls=":", lw=0.8, label="data std")
    axes[2].set_title("raw generator's pixel std")
    for ax in axes:
        ax.set_xlabel("iteration (first 100: field only)")
        ax.axvline(100, color="gray", lw=0.6, ls="--")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    out, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    table1(out, os.path.join(dst, "table1.png"))
    dynamics(out, os.path.join(dst, "dynamics.png"))


if __name__ == "__main__":
    main()
