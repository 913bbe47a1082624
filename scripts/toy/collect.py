#!/usr/bin/env python3
"""Collects the metrics.json of toy runs into one CSV (stdout) and, with --md, a Markdown
table of per-group means over seeds. A run's group is its folder name up to the last
`-s<seed>`; the columns are the energy distance, the energy ratio to an independent target
sample (1 = as good as fresh data; the acceptance bar is 2), the core estimator's D_t-mid with
its SE and sign-flip p-value, the binned-TV ratio, and wall time.

    python3 scripts/toy/collect.py RUN_DIR... [--md]
"""
import json
import math
import os
import re
import sys


def load(d):
    with open(os.path.join(d, "metrics.json")) as f:
        m = json.load(f)
    name = os.path.basename(os.path.normpath(d))
    g = re.match(r"(.*)-s(\d+)$", name)
    return {
        "run": name,
        "group": g.group(1) if g else name,
        "seed": m["config"]["seed"],
        "energy": m["energy_distance"],
        "ratio": m["energy_ratio"]["ratio"],
        "tv_ratio": (m.get("binned_tv") or {}).get("ratio", float("nan")),
        "n": m["energy_ratio"]["n"],
        "tmid": m["tmid_core_estimate"],
        "tmid_se": m["tmid_core_std_error"],
        "p": m["tmid_core_p_value"] if m["tmid_core_p_value"] is not None else float("nan"),
        "seconds": m["train_seconds"] + m["eval_seconds"],
    }


def main():
    md = "--md" in sys.argv
    dirs = [a for a in sys.argv[1:] if a != "--md"]
    rows = [load(d) for d in dirs if os.path.exists(os.path.join(d, "metrics.json"))]
    if not md:
        keys = list(rows[0].keys()) if rows else []
        print(",".join(keys))
        for r in rows:
            print(",".join(str(r[k]) for k in keys))
        return
    groups = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    print("| run | seeds | energy distance (mean ± sd) | energy ratio per seed | ratio ≤ 2 | binned-TV ratio (mean) | core D_t-mid (mean) | p < 0.01 | wall s (max) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for g, rs in groups.items():
        e = [r["energy"] for r in rs]
        mean = sum(e) / len(e)
        sd = math.sqrt(sum((x - mean) ** 2 for x in e) / max(len(e) - 1, 1))
        ratios = " ".join(f"{r['ratio']:.2f}" for r in sorted(rs, key=lambda r: r["seed"]))
        ok = sum(r["ratio"] <= 2.0 for r in rs)
        tm = sum(r["tmid"] for r in rs) / len(rs)
        rej = sum(r["p"] < 0.01 for r in rs)
        wall = max(r["seconds"] for r in rs)
        tv = sum(r["tv_ratio"] for r in rs) / len(rs)
        print(f"| {g} | {len(rs)} | {mean:.5f} ± {sd:.5f} | {ratios} | {ok}/{len(rs)} | {tv:.2f} | {tm:.4f} | {rej}/{len(rs)} | {wall:.0f} |")


if __name__ == "__main__":
    main()
