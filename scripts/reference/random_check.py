#!/usr/bin/env python3
"""Out-of-sample check of `midpoint exact` against the independent mpmath references.

Draws fresh random cases (seeded, so a run can be repeated, but none of them is in the
repository), computes each reference with the two methods of mpmath_reference.py (kept only
when they agree to >= 12 digits), runs the release binary `midpoint exact --json` on the same
laws, and reports the relative differences. Exits non-zero if any exceeds 1e-8 or if the
reported error bound does not cover the difference.

    cargo build --release && python3 scripts/reference/random_check.py --cases 40 --seed 2026
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import mpmath
from mpmath import mp, mpf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpmath_reference as ref  # noqa: E402


def rand_case(rng, i):
    kind = rng.choice(["gauss1", "gauss1", "gauss2", "mixed", "disc_noise", "disc0"])
    div = rng.choice(["at-t", "at-t", "mid", "tmid", "naive"])
    sigma = rng.choice([0.0, round(rng.uniform(0.01, 0.6), 6)])
    interp = rng.choice(["linear", "trig"])
    u = lambda a, b: round(rng.uniform(a, b), 6)
    if kind == "gauss1":
        laws = (ref.g1(u(-1, 1), u(0.2, 2.5)), ref.g1(u(-1.5, 1.5), u(0.2, 2.5)))
    elif kind == "gauss2":
        def cov():
            a, b, c = u(0.3, 1.5), u(0.3, 1.5), u(-0.4, 0.4)
            return [[a, c], [c, b]]
        laws = (ref.gauss([u(-1, 1), u(-1, 1)], cov()), ref.gauss([u(-1, 1), u(-1, 1)], cov()))
        if div == "tmid":
            div = "at-t"  # 2-D time integrals take minutes in mpmath
    elif kind == "mixed":
        pts = sorted({u(-2, 2) for _ in range(rng.randint(1, 3))})
        w = [u(0.1, 1) for _ in pts]
        s = sum(w)
        laws = (ref.g1(u(-1, 1), u(0.3, 2)), ref.disc([[p] for p in pts], [x / s for x in w]))
        if rng.random() < 0.5:
            laws = laws[::-1]
        if div == "tmid" and sigma == 0.0:
            sigma = 0.1  # keep the mpmath time integral in its fast regime
    else:
        def disc():
            pts = sorted({u(-2, 2) for _ in range(rng.randint(1, 3))})
            w = [u(0.1, 1) for _ in pts]
            s = sum(w)
            return ref.disc([[p] for p in pts], [x / s for x in w])
        laws = (disc(), disc())
        sigma = 0.0 if kind == "disc0" else max(sigma, 0.05)
        interp = "linear" if kind == "disc0" else interp
    t = round(rng.uniform(0.0, 1.0), 6) if div == "at-t" else None
    return ref.case(f"random-{i}-{kind}", laws, div, sigma, interp, t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=30)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--binary", default="target/release/midpoint")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    mp.dps = ref.DPS
    worst, failures, checked = 0.0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.cases):
            c = rand_case(rng, i)
            try:
                a, _, cap_a = ref.evaluate(c, "A")
                b, _, cap_b = ref.evaluate(c, "B")
            except AssertionError as e:  # the reference refuses near-coincident atoms
                print(f"{c['name']}: reference declines ({e}), skipped")
                continue
            a, b = mpf(a), mpf(b)
            if max(abs(a), abs(b)) < mpf("1e-40"):
                value, agreed = mpf(0), ref.MAX_DIGITS
            else:
                value, agreed = a, min(ref.digits(a, b), cap_a, cap_b)
            if agreed < ref.MIN_DIGITS:
                print(f"{c['name']}: reference methods disagree, skipped")
                continue
            paths = []
            for k, law in enumerate((c["p0"], c["p1"])):
                p = os.path.join(tmp, f"p{k}.json")
                with open(p, "w") as fh:
                    json.dump(law, fh)
                paths.append(p)
            cmd = [args.binary, "exact", "--p0", paths[0], "--p1", paths[1],
                   "--divergence", c["divergence"], "--sigma", repr(c["sigma"]),
                   "--interpolant", c["interpolant"], "--json"]
            if c["divergence"] == "at-t":
                cmd += ["--t", repr(c["t"])]
            out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            ours, bound = out["value"], out["error_bound"]
            diff = abs(mpf(ours) - value)
            rel = float(diff / abs(value)) if value != 0 else float(diff)
            covered = diff <= mpf(bound) + mpf(4) * mpf(2.0 ** -52) * abs(value) + abs(value) * mpf(10) ** (-agreed)
            ok = (rel <= 1e-8 if value != 0 else diff <= 1e-14) and covered
            failures += 0 if ok else 1
            worst = max(worst, rel)
            checked += 1
            print(f"{c['name']:<22} {c['divergence']:<6} sigma={c['sigma']:<9} {c['interpolant']:<6} "
                  f"ref {mp.nstr(value, 15):<22} ours {ours:<22.15g} rel {rel:.1e} "
                  f"({out['method']}, bound {bound:.1e}){'' if ok else '  FAIL'}")
    print(f"{checked} cases checked, worst relative difference {worst:.1e}, {failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
