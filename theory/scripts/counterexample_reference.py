#!/usr/bin/env python3
"""Independent reference values for theory/counterexample.md and tests/counterexample.rs.

D(t) = ∫ N(x)²/S(x) dx for p0 with density f0(x) = (3/π)((1 − cos x)/x²)² and p1 the lattice
law P(X1 = kh) = h f0(kh), flipped linear interpolant, σ = 0. Shares no code with the Rust
implementation and deliberately does things differently:

- lattice sums are brute force over |k| ≤ K with K beyond both clusters at every x used
  (no windows, no truncation bounds), f0 evaluated with numpy's sinc;
- the x-integral uses fixed 40-point Gauss–Legendre panels of a quarter far-field period
  (no adaptivity);
- the |x| > X tail is removed by the same kind of Richardson table in 1/X on the ladder
  X = M·P, M = 4, 8, …, whose spread is printed.

Needs numpy. Runtime: well under a minute. Usage: python3 counterexample_reference.py
"""
import math

import numpy as np

GL_X, GL_W = np.polynomial.legendre.leggauss(40)


def f0(x):
    half = 0.5 * np.sinc(x / (2 * np.pi)) ** 2  # (1 − cos x)/x² = ½ (sin(x/2)/(x/2))²
    return 3 / np.pi * half * half


def integrand(xs, t, h, k_max):
    k = np.arange(-k_max, k_max + 1)
    y = k * h
    w = h * f0(y)
    out = np.empty(len(xs))
    for i in range(0, len(xs), 200):
        x = xs[i:i + 200, None]
        s = 0.0
        n = 0.0
        for a, b in ((1 - t, t), (t, 1 - t)):  # B = 0, B = 1
            r = 0.5 * w * f0((x - b * y) / a) / a
            s = s + r.sum(1)
            n = n + (r * (y - x) / a).sum(1)
        out[i:i + 200] = n * n / s
    return out


def partial_integrals(t, h, period, levels):
    """Q(X) = ∫_{−X}^{X} N²/S at X = M·P, M = 4·2^i."""
    x_max = 4 * 2 ** (levels - 1) * period
    k_max = int(1.2 * x_max / (t * h)) + 400
    panel = period / 4
    edges = np.arange(0, x_max + 1e-9, panel)
    a, b = edges[:-1], edges[1:]
    xs = (0.5 * (b - a)[:, None] * GL_X + 0.5 * (a + b)[:, None]).ravel()
    ws = (0.5 * (b - a)[:, None] * GL_W).ravel()
    per_panel = (integrand(xs, t, h, k_max) * ws).reshape(len(a), -1).sum(1)
    cum = 2 * np.cumsum(per_panel)
    cutoffs = [4 * 2 ** i * period for i in range(levels)]
    return cutoffs, [cum[16 * 2 ** i - 1] for i in range(levels)], lambda X: cum[int(round(X / panel)) - 1]


def richardson(values):
    table = [list(values)]
    for j in range(1, len(values)):
        prev = table[-1]
        table.append([(2 ** j * prev[i + 1] - prev[i]) / (2 ** j - 1) for i in range(len(prev) - 1)])
    return table


def main():
    # (name, t, h, q with t = p/q, ladder levels)
    cases = [
        ("D(0.1), h = π/2", 0.1, math.pi / 2, 10, 5),
        ("D(0.2), h = π/2", 0.2, math.pi / 2, 5, 5),
        ("D(0.3), h = π/2", 0.3, math.pi / 2, 10, 5),
        ("D_mid, h = 2π/3", 0.5, 2 * math.pi / 3, 2, 6),
        ("D_mid, h = π/2", 0.5, math.pi / 2, 2, 5),
    ]
    for name, t, h, q, levels in cases:
        period = 2 * math.pi * q * t * (1 - t)  # far-field period for t = p/q
        cutoffs, q_values, q_at = partial_integrals(t, h, period, levels)
        table = richardson(q_values)
        print(f"{name}: extrapolated {table[-1][0]:.10g}, "
              f"spread {abs(table[-1][0] - table[-2][1]):.1e}, {abs(table[-1][0] - table[-2][0]):.1e}")
        print("  Q(X) at X = " + ", ".join(f"{x:.1f}: {v:.8g}" for x, v in zip(cutoffs, q_values)))
        print("  truncated at X = 60, 64, 80: " + ", ".join(f"{q_at(x):.6g}" for x in (60, 64, 80)
                                                         if x < cutoffs[-1]))


if __name__ == "__main__":
    main()
