#!/usr/bin/env python3
"""Writes a user's 2-D target as `midpoint-train toy` reads it: a discrete law of M training
atoms (law:FILE.json) drawn from a 5-arm pinwheel (FFJORD's `pinwheel`, radial std 0.3,
tangential std 0.1, rate 0.25, scaled by 2), and H unseen draws of the same pinwheel
(--heldout FILE.csv) to measure the generator against.

Plain Python (no numpy), seeded, so the files are the same on every machine:

    python3 scripts/toy/pinwheel-law.py OUT_DIR [--atoms 2000] [--heldout 20000] [--seed 0]
"""
import argparse
import json
import math
import os
import random


def pinwheel(n, rng):
    arms, radial, tangential, rate = 5, 0.3, 0.1, 0.25
    rows = []
    for _ in range(n):
        arm = rng.randrange(arms)
        a = rng.gauss(1.0, radial)
        b = rng.gauss(0.0, tangential)
        angle = 2.0 * math.pi * arm / arms + rate * math.exp(a)
        c, s = math.cos(angle), math.sin(angle)
        rows.append((2.0 * (c * a - s * b), 2.0 * (s * a + c * b)))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--atoms", type=int, default=2000)
    p.add_argument("--heldout", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    atoms = pinwheel(a.atoms, rng)
    heldout = pinwheel(a.heldout, rng)
    law = {
        "kind": "discrete",
        "points": [[x, y] for x, y in atoms],
        "weights": [1.0 / len(atoms)] * len(atoms),
    }
    with open(os.path.join(a.out, "pinwheel.json"), "w") as f:
        json.dump(law, f)
    with open(os.path.join(a.out, "pinwheel-heldout.csv"), "w") as f:
        for x, y in heldout:
            f.write(f"{x!r},{y!r}\n")
    print(f"wrote {a.out}/pinwheel.json ({len(atoms)} atoms) and {a.out}/pinwheel-heldout.csv ({len(heldout)} rows)")


if __name__ == "__main__":
    main()
