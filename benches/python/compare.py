"""Side-by-side timings: NumPy/SciPy against the `midpoint` crate, on one core.

The same two computations as `examples/throughput.rs`, for p0 = N(0, 1), p1 = N(1.5, 0.5),
linear interpolant, sigma = 0:

1. exact D_t-mid = int_0^1/2 D(t) dt to relative 1e-10 with SciPy's nested `quad`
   (D(t) = E|E[X1 - X0 | X~_t]|^2 as an integral over x of the two-component mixture);
2. the Rao-Blackwellized Monte Carlo estimator of D(0.3): draw X~_t, evaluate the exact
   field m_t(X~_t) (posterior weights in log space), average |m_t|^2 -- vectorized, in
   batches of 2^20 draws. Two ways to draw X~_t, both timed: from (X0, X1, B) as in Eq. 7
   ("endpoints"), and from its two-component mixture ("mixture": a branch, then one normal),
   which is how the crate's fixed-dimension path draws.

Run through `benches/python/compare.sh`, which pins one thread for BLAS/NumPy.
"""
import json
import math
import sys
import time

import numpy as np
from scipy import integrate

M0, V0 = 0.0, 1.0
M1, V1 = 1.5, 0.5


def components(t):
    """The two branches of X~_t: (weight, mean, var, offset, gain) with E[D|x] = c + A(x - mu)."""
    out = []
    for a, b in ((1.0 - t, t), (t, 1.0 - t)):
        mu = a * M0 + b * M1
        var = a * a * V0 + b * b * V1
        gain = (b * V1 - a * V0) / var
        out.append((0.5, mu, var, M1 - M0, gain))
    return out


def field(x, comps):
    """m_t(x) for an array x (log-space weights)."""
    logs = [math.log(w) - 0.5 * math.log(2 * math.pi * v) - 0.5 * (x - mu) ** 2 / v for (w, mu, v, _, _) in comps]
    mx = np.maximum(logs[0], logs[1])
    e0, e1 = np.exp(logs[0] - mx), np.exp(logs[1] - mx)
    tot = e0 + e1
    m = 0.0
    for e, (_, mu, _, c, g) in zip((e0, e1), comps):
        m = m + (e / tot) * (c + g * (x - mu))
    return m


def d_of_t(t, tol):
    comps = components(t)

    def integrand(x):
        dens = sum(w * math.exp(-0.5 * (x - mu) ** 2 / v) / math.sqrt(2 * math.pi * v) for (w, mu, v, _, _) in comps)
        if dens == 0.0:
            return 0.0
        num = sum(w * math.exp(-0.5 * (x - mu) ** 2 / v) / math.sqrt(2 * math.pi * v) * (c + g * (x - mu))
                  for (w, mu, v, c, g) in comps)
        return num * num / dens

    val, _ = integrate.quad(integrand, -np.inf, np.inf, epsabs=0.0, epsrel=tol, limit=200)
    return val


def tmid(tol=1e-10):
    val, _ = integrate.quad(lambda t: d_of_t(t, tol), 0.0, 0.5, epsabs=0.0, epsrel=tol, limit=200)
    return val


def rb_estimate(n, t, seed=7, batch=1 << 20):
    rng = np.random.default_rng(seed)
    comps = components(t)
    a, b = 1.0 - t, t
    total, total2, done = 0.0, 0.0, 0
    while done < n:
        k = min(batch, n - done)
        x0 = M0 + math.sqrt(V0) * rng.standard_normal(k)
        x1 = M1 + math.sqrt(V1) * rng.standard_normal(k)
        flip = rng.random(k) < 0.5
        xt = np.where(flip, b * x0 + a * x1, a * x0 + b * x1)
        m2 = field(xt, comps) ** 2
        total += m2.sum()
        total2 += (m2 * m2).sum()
        done += k
    mean = total / n
    return mean, math.sqrt(max(total2 / n - mean * mean, 0.0) / n)


def rb_estimate_mixture(n, t, seed=7, batch=1 << 20):
    rng = np.random.default_rng(seed)
    comps = components(t)
    mu = np.array([c[1] for c in comps])
    sd = np.sqrt(np.array([c[2] for c in comps]))
    total, total2, done = 0.0, 0.0, 0
    while done < n:
        k = min(batch, n - done)
        b = (rng.random(k) < 0.5).astype(np.intp)
        xt = mu[b] + sd[b] * rng.standard_normal(k)
        m2 = field(xt, comps) ** 2
        total += m2.sum()
        total2 += (m2 * m2).sum()
        done += k
    mean = total / n
    return mean, math.sqrt(max(total2 / n - mean * mean, 0.0) / n)


def median_time(reps, f):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    value = tmid()
    tmid_s = median_time(5, tmid)
    n = 1 << 22
    est = rb_estimate(n, 0.3)
    rb_s = median_time(3, lambda: rb_estimate(n, 0.3))
    est_mix = rb_estimate_mixture(n, 0.3)
    rb_mix_s = median_time(3, lambda: rb_estimate_mixture(n, 0.3))
    print(json.dumps({
        "numpy": np.__version__,
        "tmid_value": value,
        "tmid_seconds": tmid_s,
        "rb_fixed_t_estimate": est[0],
        "rb_fixed_t_std_error": est[1],
        "rb_fixed_t_draws_per_second_1_thread": n / rb_s,
        "rb_mixture_estimate": est_mix[0],
        "rb_mixture_draws_per_second_1_thread": n / rb_mix_s,
    }))


if __name__ == "__main__":
    sys.exit(main())
