#!/usr/bin/env python3
"""Independent high-precision reference values of the midpoint divergences.

Writes tests/data/mpmath_reference.json, read by tests/references.rs. Needs only python3 and
mpmath (not a CI dependency: the JSON is committed). Run from the repository root:

    python3 scripts/reference/mpmath_reference.py

Everything here is derived from the definitions (MGM paper §2-3, Eq. 1-8), not from the
crate's code:

  X0 ~ p0, X1 ~ p1, eps ~ N(0, I), B ~ Bernoulli(1/2) independent, Delta = X1 - X0,
  I_t = alpha(t) x0 + beta(t) x1, linear (1-t, t) or trig (cos(pi t/2), sin(pi t/2)),
  sigma_t = sqrt(sigma t (1-t)),
  flipped  X~_t = alpha X0 + beta X1 + sigma_t eps  (B = 0)
                  beta X0 + alpha X1 + sigma_t eps  (B = 1)         (Eq. 7)
  D(t) = E ||E[Delta | X~_t]||^2,  D_mid = D(1/2),  D_tmid = int_0^{1/2} D(t) dt  (Eq. 8)
  naive = int_0^1 E ||E[Delta | X_t]||^2 dt with the unflipped X_t (Eq. 3).

Derivation used below. Write every endpoint law as a mixture of Gaussians N(m, S) (an atom is
S = 0). Given B and the mixture components (i of p0, j of p1), with (c0, c1) = (alpha, beta)
for B = 0 and (beta, alpha) for B = 1, the pair (Delta, X~) is jointly Gaussian:
  X~ ~ N(mu, C),  mu = c0 m_i + c1 m_j,  C = c0^2 S_i + c1^2 S_j + sigma_t^2 I,
  Cov(Delta, X~) = Cov(X1 - X0, c0 X0 + c1 X1) = c1 S_j - c0 S_i =: K,
so E[Delta | X~ = x, k] = g_k(x) = (m_j - m_i) + K C^{-1} (x - mu) (affine). With component
weights pi_k (= w_i w_j / 2 flipped, w_i w_j unflipped), X~ has density
p(x) = sum_k pi_k N(x; mu_k, C_k), the field is m(x) = N(x) / p(x) with
N(x) = sum_k pi_k N(x; mu_k, C_k) g_k(x), and
  D = int ||N(x)||^2 / p(x) dx = sum_k pi_k E_{N(mu_k, C_k)} ||m(X)||^2.
When every C_k = 0 (two discrete laws, sigma_t = 0) X~ is atomic: group the components by
location and D = sum_groups ||sum pi_k g_k||^2 / sum pi_k.

Every value is computed by two different methods, A and B, and kept only if they agree to
>= 12 significant digits; the agreed digit count is recorded (capped at 25, or at 15 where a
method runs in double precision):
  - 1-D D(t): A = tanh-sinh (mpmath.quad, dps 30) on panels at mu_k +- {0,1,2,4,8,14,20} sd_k
    and around sharp posterior transitions; B = 28-node Gauss-Legendre on different panels.
  - Gaussian D_mid: the closed form (both flip components coincide, m is affine) vs B.
  - Gaussian time integrals (D(t) analytic on [0, 1]): composite Gauss-Legendre in t with
    two different panelings and node counts, inner D(t) by 1-D Gauss-Legendre panels (mpf).
    Naive Gaussian: the closed-form integrand ||dm||^2 + tr(K C^-1 K^T) (one component) vs
    the 1-D quadrature.
  - Time integrals with a discrete endpoint (D(t) is not analytic at t = 0): tanh-sinh in t
    vs Gauss-Legendre in log t; inner D(t) by the two 1-D panel rules in doubles.
  - 2-D Gaussians: iterated Gauss-Legendre in doubles (x outer with 14 nodes vs y outer with
    18 nodes, different panels), time integral by Gauss-Legendre in t.
  - Atoms (two discrete laws, sigma = 0): exact rational arithmetic (linear interpolant) or
    mpmath dps 30 grouping within 1e-20 (trig) vs mpmath dps 50 grouping within 1e-35; all
    distinct atoms must be > 1e-6 apart, so no floating-point coincidence rule can differ.
The double-precision parts are checked against the same rules in mpf (float_rounding_check,
stored in the JSON): the differences are ~1e-17 relative. Inputs are taken exactly as the
IEEE doubles the JSON holds (mpf(float) / Fraction(float)), so the reference is the exact
value for the inputs the crate actually receives.

Tail truncation: by Jensen ||m(x)||^2 p(x) <= sum_k pi_k N(x; mu_k, C_k) ||g_k(x)||^2, so
outside mu_k +- L sd_k for every k the integrand is below a Gaussian tail times a quadratic:
L = 20 (A) and 16 (B) in 1-D leave < e^-127 relative, L = 11 per coordinate in 2-D < e^-60.

Runtime: about 80 s of CPU (3 min on a busy 2-core machine). `--third` adds a third method
(tanh-sinh on the whole line split at the means) for the 1-D cases; numbers as arguments
restrict the run to those cases (and then the JSON is not written).
"""

import json
import math
import os
import sys
import time
from fractions import Fraction

import mpmath
from mpmath import mp, mpf

DPS = 30  # working precision of the 1-D computations
DPS_2D = 20  # precision of the 2-D mpf rounding check (the 2-D rules run in doubles)
MIN_DIGITS = 12
MAX_DIGITS = 25  # cap on the recorded agreement (beyond this it is just dps)

T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# quadrature rules (cached per precision)

_GL = {}


def gl_nodes(n):
    key = (n, mp.dps)
    if key not in _GL:
        x, w = mp.gauss_quadrature(n, "legendre")
        _GL[key] = [(x[i], w[i]) for i in range(n)]
    return _GL[key]


def gl_panels(f, pts, n):
    """Composite Gauss-Legendre with n nodes on each [pts[i], pts[i+1]]."""
    nodes = gl_nodes(n)
    total = mpf(0)
    for a, b in zip(pts[:-1], pts[1:]):
        h, c = (b - a) / 2, (a + b) / 2
        total += h * mp.fsum(w * f(c + h * x) for x, w in nodes)
    return total


def tanh_sinh(f, a, b, h, smax=mpf("3.3")):
    """Fixed-step tanh-sinh on [a, b]: x = tanh(pi/2 sinh s), s = k h, |s| <= smax. The end
    pieces left out have length < 1e-18 (b - a), an error < 1e-18 relative for the bounded
    integrands used here. Endpoint distances are formed without cancellation, so integrable
    endpoint singularities (sqrt, log, exp(-c/t)) are handled."""
    total = []
    k = 0
    half_pi = mp.pi / 2
    while k * h <= smax:
        for sgn in ((1,) if k == 0 else (1, -1)):
            sv = sgn * k * h
            y = half_pi * mp.sinh(sv)
            w = half_pi * mp.cosh(sv) / mp.cosh(y) ** 2
            # a + (b - a)(1 + tanh y)/2 = a + (b - a)/(1 + e^{-2y}); same from the b end
            if y < 0:
                x = a + (b - a) / (1 + mp.exp(-2 * y))
            else:
                x = b - (b - a) / (1 + mp.exp(2 * y))
            total.append(w * f(x))
        k += 1
    return (b - a) / 2 * h * mp.fsum(total)


# --------------------------------------------------------------------------------------------
# laws and components

def law_components(law):
    """[(weight, mean list, cov matrix as list of lists)] with exact normalized weights."""
    if law["kind"] == "gaussian":
        return [(mpf(1), [mpf(v) for v in law["mean"]],
                 [[mpf(v) for v in row] for row in law["cov"]])]
    ws = [Fraction(w) for w in law["weights"]]
    tot = sum(ws)
    d = len(law["points"][0])
    zero = [[mpf(0)] * d for _ in range(d)]
    return [(mpf(w.numerator) / w.denominator / (mpf(tot.numerator) / tot.denominator),
             [mpf(v) for v in p], zero) for w, p in zip(ws, law["points"])]


def coefficients(interp, t):
    if interp == "linear":
        return 1 - t, t
    if interp == "trig":
        return mp.cos(mp.pi * t / 2), mp.sin(mp.pi * t / 2)
    raise ValueError(interp)


def mixture(p0, p1, interp, sigma, t, flipped=True):
    """Components (pi, mu, C, e, K) of X~_t (or X_t if not flipped), t and sigma as mpf."""
    a, b = coefficients(interp, t)
    s2 = sigma * t * (1 - t)
    c0s = [(a, b), (b, a)] if flipped else [(a, b)]
    half = mpf(1) / len(c0s)
    d = len(p0[0][1])
    out = []
    for c0, c1 in c0s:
        for wi, mi, si in p0:
            for wj, mj, sj in p1:
                mu = [c0 * mi[r] + c1 * mj[r] for r in range(d)]
                cov = [[c0 * c0 * si[r][c] + c1 * c1 * sj[r][c] + (s2 if r == c else 0)
                        for c in range(d)] for r in range(d)]
                e = [mj[r] - mi[r] for r in range(d)]
                k = [[c1 * sj[r][c] - c0 * si[r][c] for c in range(d)] for r in range(d)]
                out.append((half * wi * wj, mu, cov, e, k))
    return out


# --------------------------------------------------------------------------------------------
# D for one mixture: 1-D quadrature, 2-D iterated quadrature, atoms


def integrand_1d(comps):
    """x -> ||N(x)||^2 / p(x) for a 1-D mixture. Components whose exponent is more than
    CUTOFF below the largest are skipped: they change p and N by < e^-CUTOFF relative."""
    pre = []
    for pi_k, mu, cov, e, k in comps:
        c = cov[0][0]
        pre.append((mp.log(pi_k / mp.sqrt(2 * mp.pi * c)), mu[0], 1 / (2 * c), e[0],
                    k[0][0] / c))
    cutoff = mpf(2.31 * mp.dps + 40)

    def f(x):
        expo = []
        for lcoef, mu, inv2c, e, slope in pre:
            dx = x - mu
            expo.append((lcoef - dx * dx * inv2c, dx, e, slope))
        top = max(q[0] for q in expo)
        p = mpf(0)
        n = mpf(0)
        for q, dx, e, slope in expo:
            if q >= top - cutoff:
                phi = mp.exp(q - top)
                p += phi
                n += phi * (e + slope * dx)
        return n * n / p * mp.exp(top)

    return f


def transitions_1d(comps):
    """Points where the posterior weight passes from one component to another: roots x* of
    log(pi_k phi_k) = log(pi_l phi_l) where k and l are the two largest terms of p, with the
    transition width w = 1 / |d/dx log(pi_k phi_k / pi_l phi_l)| there. Between separated
    atoms these transitions are much sharper than either component (w ~ sd^2 / distance)."""
    logs = [(mp.log(c[0]) - mp.log(2 * mp.pi * c[2][0][0]) / 2, c[1][0], c[2][0][0])
            for c in comps]

    def lw(q, x):
        return q[0] - (x - q[1]) ** 2 / (2 * q[2])

    out = []
    for i, qi in enumerate(logs):
        for qj in logs[i + 1:]:
            # quadratic a x^2 + b x + c = lw(qi, x) - lw(qj, x)
            a = -1 / (2 * qi[2]) + 1 / (2 * qj[2])
            b = qi[1] / qi[2] - qj[1] / qj[2]
            c = qi[0] - qj[0] - qi[1] ** 2 / (2 * qi[2]) + qj[1] ** 2 / (2 * qj[2])
            if abs(a) < mpf(10) ** (-mp.dps + 5) * (abs(b) + 1):
                roots = [] if b == 0 else [-c / b]
            else:
                disc = b * b - 4 * a * c
                roots = [] if disc < 0 else [(-b + sg * mp.sqrt(disc)) / (2 * a)
                                             for sg in (1, -1)]
            for x in roots:
                here = lw(qi, x)
                if max(lw(q, x) for q in logs) > here + 3:
                    continue  # another component dominates: no visible transition
                slope = abs(2 * a * x + b)
                # only transitions sharper than the components need their own panels
                if slope > 0 and 1 / slope < mp.sqrt(min(qi[2], qj[2])) / 2:
                    out.append((x, 1 / slope))
    return out


def breakpoints_1d(comps, offsets, L, merge=mpf("0.3"), toffsets=None):
    """Panel ends at mu_k +- o sd_k (o in offsets), truncated at L sd, and at each posterior
    transition x* +- o w (o in toffsets); points closer than merge x (smallest sd or
    transition width) are merged (only fewer, never longer-than-planned panels)."""
    pts = set()
    for _, mu, cov, _, _ in comps:
        sd = mp.sqrt(cov[0][0])
        for o in offsets:
            if o <= L:
                pts.add(mu[0] + o * sd)
                pts.add(mu[0] - o * sd)
    minsd = min(mp.sqrt(c[2][0][0]) for c in comps)
    for x, w in transitions_1d(comps):
        for o in toffsets or TOFFS_A:
            pts.add(x + o * w)
            pts.add(x - o * w)
        minsd = min(minsd, w)
    lo = min(c[1][0] - L * mp.sqrt(c[2][0][0]) for c in comps)
    hi = max(c[1][0] + L * mp.sqrt(c[2][0][0]) for c in comps)
    pts = sorted(set(p for p in pts if lo < p < hi))
    merged = [lo]
    for p in pts:
        if p - merged[-1] > minsd * merge:
            merged.append(p)
    if hi - merged[-1] > minsd * merge:
        merged.append(hi)
    else:
        merged[-1] = hi
    return merged


# method A: tanh-sinh (mpmath.quad) on panels at mu +- {0,1,2,4,8,14,20} sd
OFFS_A = [0, 1, 2, 4, 8, 14, 20]
# method B: Gauss-Legendre with 28 nodes on panels at mu +- {0,1.5,3,5.5,9,16} sd
OFFS_B = [0, mpf("1.5"), 3, mpf("5.5"), 9, 16]


def d_1d_A(comps):
    f = integrand_1d(comps)
    return mp.quad(f, breakpoints_1d(comps, OFFS_A, 20))


def d_1d_gl(comps, offsets, L, n):
    return gl_panels(integrand_1d(comps), breakpoints_1d(comps, offsets, L), n)


def d_1d_B(comps, n=28):
    return gl_panels(integrand_1d(comps),
                     breakpoints_1d(comps, OFFS_B, 16, mpf("0.45"), TOFFS_B), n)


def d_1d_C(comps):
    """Third method (re-verification only): tanh-sinh on the whole line, split only at the
    component means (mpmath maps the infinite end intervals itself)."""
    pts = sorted(set(c[1][0] for c in comps))
    return mp.quad(integrand_1d(comps), [mp.ninf] + pts + [mp.inf])


def d_1d_float(comps, offsets, L, n, merge, toffsets):
    """The 1-D panel rule with the integrand evaluated in IEEE doubles, about 30x faster
    than mpf; used inside the time integrals with a discrete endpoint, where several hundred
    D(t) are needed. Mixture parameters, panel ends and the offsets (panel centre - mu_k)
    are formed in mpf and only then rounded, so x - mu_k stays accurate relative to sd_k
    even for atoms of width 1e-10 at O(1) locations. The remaining rounding (~1e-16
    relative per value, positive terms summed with fsum) is measured against the mpf rule
    in float_rounding_check()."""
    pre = []
    for pi_k, mu, cov, e, k in comps:
        c = cov[0][0]
        pre.append((float(mp.log(pi_k / mp.sqrt(2 * mp.pi * c))), float(1 / (2 * c)),
                    float(e[0]), float(k[0][0] / c)))
    exp = math.exp
    cutoff = 60.0  # e^-60 ~ 1e-26 relative: far below double rounding
    nodes = [(float(x), float(w)) for x, w in gl_nodes(n)]
    pts = breakpoints_1d(comps, offsets, L, merge, toffsets)
    terms = []
    for lo, hi in zip(pts[:-1], pts[1:]):
        h, c = (hi - lo) / 2, (hi + lo) / 2
        offs = [float(c - comp[1][0]) for comp in comps]
        hf = float(h)
        for xi, w in nodes:
            u = hf * xi
            expo = [(lc - (o + u) * (o + u) * inv2c, o + u, e, sl)
                    for o, (lc, inv2c, e, sl) in zip(offs, pre)]
            top = max(q[0] for q in expo)
            p = nn = 0.0
            for q, dx, e, sl in expo:
                if q >= top - cutoff:
                    phi = exp(q - top)
                    p += phi
                    nn += phi * (e + sl * dx)
            terms.append(hf * w * (nn * nn / p * exp(top)))
    return mpf(math.fsum(terms))


TOFFS_A = (0, 1, 3, 8)
TOFFS_B = (0, mpf("1.5"), 4, 10)


def d_1d_Af(comps):
    return d_1d_float(comps, OFFS_A, 20, 20, mpf("0.3"), TOFFS_A)


def d_1d_Bf(comps):
    return d_1d_float(comps, OFFS_B, 16, 28, mpf("0.45"), TOFFS_B)


def inv2(m):
    det = m[0][0] * m[1][1] - m[0][1] * m[1][0]
    return [[m[1][1] / det, -m[0][1] / det], [-m[1][0] / det, m[0][0] / det]], det


def swap_2d(comps):
    """The same mixture with the two coordinates exchanged (D is invariant)."""
    def sv(v):
        return [v[1], v[0]]

    def sm(m):
        return [[m[1][1], m[1][0]], [m[0][1], m[0][0]]]
    return [(p, sv(mu), sm(c), sv(e), sm(k)) for p, mu, c, e, k in comps]


def panel_points(centres_sds, offsets, L):
    pts = set()
    for c, sd in centres_sds:
        for o in offsets:
            pts.add(c + o * sd)
            pts.add(c - o * sd)
    lo = min(c - L * sd for c, sd in centres_sds)
    hi = max(c + L * sd for c, sd in centres_sds)
    minsd = min(sd for _, sd in centres_sds)
    pts = sorted(p for p in pts if lo <= p <= hi)
    merged = [lo]
    for p in pts[1:]:
        if p - merged[-1] > minsd * mpf("1e-3"):
            merged.append(p)
    merged[-1] = hi
    return merged


def d_2d_nested(comps, offsets, L, n):
    """Iterated composite Gauss-Legendre: outer x0 on panels at the marginal means +- offsets
    x marginal sd, inner x1 on panels at the conditional means +- offsets x conditional sd
    (the conditional law of a Gaussian component given x0 is N(nu(x0), v)). Truncation at L
    sds: by the Jensen bound above the neglected part is < e^{-L^2/2} relative."""
    pre = []
    for pi_k, mu, cov, e, k in comps:
        ci, _ = inv2(cov)
        a = [[k[r][0] * ci[0][c] + k[r][1] * ci[1][c] for c in range(2)] for r in range(2)]
        c11 = cov[0][0]
        v = cov[1][1] - cov[1][0] ** 2 / c11
        pre.append((pi_k / (2 * mp.pi * mp.sqrt(c11 * v)), mu, 1 / (2 * c11), cov[1][0] / c11,
                    v, 1 / (2 * v), e, a))
    nodes = gl_nodes(n)

    def outer(x0):
        cond = []
        for coef, mu, inv2c11, reg, v, inv2v, e, a in pre:
            d0 = x0 - mu[0]
            amp = coef * mp.exp(-d0 * d0 * inv2c11)
            nu = mu[1] + reg * d0
            dn = nu - mu[1]
            u0 = e[0] + a[0][0] * d0 + a[0][1] * dn
            u1 = e[1] + a[1][0] * d0 + a[1][1] * dn
            cond.append((amp, nu, inv2v, u0, u1, a[0][1], a[1][1], mp.sqrt(v)))

        def f(x1):
            p = mpf(0)
            n0 = mpf(0)
            n1 = mpf(0)
            for amp, nu, inv2v, u0, u1, w0, w1, _ in cond:
                dx = x1 - nu
                phi = amp * mp.exp(-dx * dx * inv2v)
                p += phi
                n0 += phi * (u0 + w0 * dx)
                n1 += phi * (u1 + w1 * dx)
            return (n0 * n0 + n1 * n1) / p

        pts = panel_points([(c[1], c[7]) for c in cond], offsets, L)
        total = mpf(0)
        for lo, hi in zip(pts[:-1], pts[1:]):
            h, c = (hi - lo) / 2, (hi + lo) / 2
            total += h * mp.fsum(w * f(c + h * x) for x, w in nodes)
        return total

    pts = panel_points([(mu[0], mp.sqrt(cov[0][0])) for _, mu, cov, _, _ in comps], offsets, L)
    return gl_panels(outer, pts, n)


def d_2d_nested_float(comps, offsets, L, n):
    """d_2d_nested in IEEE double arithmetic (math.exp, math.fsum), ~100x faster than mpf
    (pure-Python mpf makes a 2-D time integral take many minutes). Its rounding (a few 1e-16
    relative per integrand value, positive terms summed with fsum) is measured against
    d_2d_nested in float_rounding_check(); the agreement recorded is capped at 15 digits."""
    pre = []
    for pi_k, mu, cov, e, k in comps:
        ci, _ = inv2(cov)
        a = [[float(k[r][0] * ci[0][c] + k[r][1] * ci[1][c]) for c in range(2)]
             for r in range(2)]
        c11 = cov[0][0]
        v = cov[1][1] - cov[1][0] ** 2 / c11
        pre.append((float(pi_k / (2 * mp.pi * mp.sqrt(c11 * v))), [float(m) for m in mu],
                    float(1 / (2 * c11)), float(cov[1][0] / c11), float(1 / (2 * v)),
                    [float(x) for x in e], a, float(mp.sqrt(v))))
    nodes = [(float(x), float(w)) for x, w in gl_nodes(n)]
    exp = math.exp

    def outer(x0):
        cond = []
        for coef, mu, inv2c11, reg, inv2v, e, a, sdv in pre:
            d0 = x0 - mu[0]
            amp = coef * exp(-d0 * d0 * inv2c11)
            nu = mu[1] + reg * d0
            dn = nu - mu[1]
            cond.append((amp, nu, inv2v, e[0] + a[0][0] * d0 + a[0][1] * dn,
                         e[1] + a[1][0] * d0 + a[1][1] * dn, a[0][1], a[1][1], sdv))

        def f(x1):
            p = n0 = n1 = 0.0
            for amp, nu, inv2v, u0, u1, w0, w1, _ in cond:
                dx = x1 - nu
                phi = amp * exp(-dx * dx * inv2v)
                p += phi
                n0 += phi * (u0 + w0 * dx)
                n1 += phi * (u1 + w1 * dx)
            return (n0 * n0 + n1 * n1) / p if p > 0 else 0.0

        pts = panel_points([(mpf(c[1]), mpf(c[7])) for c in cond], offsets, L)
        pts = [float(q) for q in pts]
        terms = []
        for lo, hi in zip(pts[:-1], pts[1:]):
            h, c = (hi - lo) / 2, (hi + lo) / 2
            terms.extend(h * w * f(c + h * x) for x, w in nodes)
        return math.fsum(terms)

    pts = [float(q) for q in
           panel_points([(mu[0], mp.sqrt(cov[0][0])) for _, mu, cov, _, _ in comps], offsets, L)]
    terms = []
    for lo, hi in zip(pts[:-1], pts[1:]):
        h, c = (hi - lo) / 2, (hi + lo) / 2
        terms.extend(h * w * outer(c + h * x) for x, w in nodes)
    return mpf(math.fsum(terms))


OFFS_2A = [0, 1, 2, mpf("3.5"), mpf("5.5"), 8, 11]
OFFS_2B = [0, mpf("1.2"), mpf("2.5"), 4, 6, mpf("8.5"), 11]


def d_atoms_mp(comps, tol):
    """Atomic X~: group locations within tol (max norm), D = sum ||sum pi e||^2 / sum pi."""
    groups = []  # [location, pi sum, vector sum]
    for pi_k, mu, cov, e, _ in comps:
        assert all(v == 0 for row in cov for v in row)
        for g in groups:
            if max(abs(mu[r] - g[0][r]) for r in range(len(mu))) <= tol:
                g[1] += pi_k
                g[2] = [g[2][r] + pi_k * e[r] for r in range(len(mu))]
                break
        else:
            groups.append([mu, pi_k, [pi_k * v for v in e]])
    locs = sorted(g[0] for g in groups)
    sep = min((max(abs(u[r] - v[r]) for r in range(len(u)))
               for i, u in enumerate(locs) for v in locs[i + 1:]), default=mpf(1))
    return mp.fsum(sum(v * v for v in g[2]) / g[1] for g in groups), len(groups), sep


def d_atoms_exact(p0, p1, t, flipped=True):
    """Exact rational D(t) for two discrete laws, linear interpolant, sigma = 0."""
    t = Fraction(t)
    a, b = 1 - t, t

    def comps(law):
        ws = [Fraction(w) for w in law["weights"]]
        tot = sum(ws)
        return [(w / tot, tuple(Fraction(v) for v in p)) for w, p in zip(ws, law["points"])]

    c0, c1 = comps(p0), comps(p1)
    groups = {}
    for ca, cb in ([(a, b), (b, a)] if flipped else [(a, b)]):
        for wi, xi in c0:
            for wj, xj in c1:
                loc = tuple(ca * u + cb * v for u, v in zip(xi, xj))
                pi_k = wi * wj / (2 if flipped else 1)
                g = groups.setdefault(loc, [Fraction(0), [Fraction(0)] * len(xi)])
                g[0] += pi_k
                g[1] = [s + pi_k * (v - u) for s, u, v in zip(g[1], xi, xj)]
    locs = sorted(groups)
    sep = min((max(abs(u - v) for u, v in zip(p, q)) for i, p in enumerate(locs)
               for q in locs[i + 1:]), default=Fraction(1))
    # distinct atoms must be far apart compared with any floating-point coincidence rule
    assert sep > Fraction(1, 10 ** 6), f"near-coincident atoms: {float(sep)}"
    return sum(sum(v * v for v in vec) / w for w, vec in groups.values()), len(groups)


# --------------------------------------------------------------------------------------------
# case evaluation


def digits(a, b):
    if a == b:
        return MAX_DIGITS
    scale = max(abs(a), abs(b))
    return min(MAX_DIGITS, int(mp.floor(-mp.log10(abs(a - b) / scale))))


FLOAT_DIGITS = 15  # agreement recorded for the double-precision 2-D quadrature at most


def laws_of(case):
    return law_components(case["p0"]), law_components(case["p1"])


def d_t_one(case, t, flipped, setting):
    """D(t) (flipped) or E||E[Delta|X_t]||^2 (unflipped) by one method. Settings:
    "A"/"B": the two methods whose agreement is recorded; "A*": a cheaper variant of A used
    inside time integrals (Gauss-Legendre instead of tanh-sinh). Returns (value, text, cap)."""
    p0, p1 = laws_of(case)
    sigma = mpf(case["sigma"])
    comps = mixture(p0, p1, case["interpolant"], sigma, t, flipped)
    dim = len(p0[0][1])
    zero_cov = [all(v == 0 for row in c[2] for v in row) for c in comps]
    if all(zero_cov):
        if setting.startswith("A") and case["interpolant"] == "linear":
            exact, ngroups = d_atoms_exact(case["p0"], case["p1"], Fraction(float(t)), flipped)
            return (mpf(exact.numerator) / exact.denominator,
                    f"exact rational arithmetic ({ngroups} atoms)", MAX_DIGITS)
        if setting.startswith("A"):
            v, ngroups, sep = d_atoms_mp(comps, mpf("1e-20"))
            assert sep > mpf("1e-6"), f"near-coincident atoms at t = {t}: {sep}"
            return v, f"mpmath dps {mp.dps}, atoms grouped within 1e-20 ({ngroups} atoms, " \
                f"closest distinct pair {mp.nstr(sep, 3)})", MAX_DIGITS
        with mp.workdps(50):
            comps50 = mixture(*laws_of(case), case["interpolant"], mpf(0), t, flipped)
            v, ngroups, sep = d_atoms_mp(comps50, mpf("1e-35"))
        return v, f"mpmath dps 50, atoms grouped within 1e-35 ({ngroups} atoms)", MAX_DIGITS
    assert not any(zero_cov), "mixed atomic/continuous X~_t: not covered"
    both_gauss = len(p0) == 1 and len(p1) == 1 and p0[0][2][0][0] != 0 and p1[0][2][0][0] != 0
    if not flipped and both_gauss and (setting.startswith("A") or dim == 2):
        # a single Gaussian component: E[Delta | X_t] is affine, closed form
        v = sum(pk * vk for pk, vk in gaussian_closed_form_terms(case, t, False))
        return v, "closed form ||dm||^2 + tr(K C^-1 K^T) (one Gaussian component)", MAX_DIGITS
    if dim == 1:
        if setting == "A":
            return d_1d_A(comps), "tanh-sinh (mpmath.quad) on panels at " \
                "mu+-{0,1,2,4,8,14,20}sd and posterior transitions", MAX_DIGITS
        if setting == "A*":
            return d_1d_gl(comps, OFFS_A, 20, 20), "20-node Gauss-Legendre on panels at " \
                "mu+-{0,1,2,4,8,14,20}sd and posterior transitions", MAX_DIGITS
        if setting == "C":
            return d_1d_C(comps), "tanh-sinh on (-inf, inf) split at the means", MAX_DIGITS
        if setting == "Af":
            return d_1d_Af(comps), "20-node Gauss-Legendre on panels at " \
                "mu+-{0,1,2,4,8,14,20}sd and posterior transitions, double precision", \
                FLOAT_DIGITS
        if setting == "Bf":
            return d_1d_Bf(comps), "28-node Gauss-Legendre on panels at " \
                "mu+-{0,1.5,3,5.5,9,16}sd and posterior transitions, double precision", \
                FLOAT_DIGITS
        return d_1d_B(comps), "28-node Gauss-Legendre on panels at " \
            "mu+-{0,1.5,3,5.5,9,16}sd and posterior transitions", MAX_DIGITS
    if setting.startswith("A"):
        return d_2d_nested_float(comps, OFFS_2A, 11, 14), "iterated 14-node Gauss-Legendre, " \
            "x-outer, panels at +-{0,1,2,3.5,5.5,8,11}sd, double precision", FLOAT_DIGITS
    return d_2d_nested_float(swap_2d(comps), OFFS_2B, 11, 18), "iterated 18-node " \
        "Gauss-Legendre, y-outer, panels at +-{0,1.2,2.5,4,6,8.5,11}sd, double precision", \
        FLOAT_DIGITS


def gaussian_closed_form_terms(case, t, flipped):
    """For Gaussian-Gaussian: (pi_k, E_k ||g_k||^2 = ||dm||^2 + tr(K C^-1 K^T)) per component."""
    comps = mixture(*laws_of(case), case["interpolant"], mpf(case["sigma"]), t, flipped)
    out = []
    for pi_k, _, cov, e, k in comps:
        km = mp.matrix(k)
        q = km * mp.inverse(mp.matrix(cov)) * km.T
        out.append((pi_k, sum(v * v for v in e) + sum(q[i, i] for i in range(len(e)))))
    return out


def is_discrete(law):
    return law["kind"] == "discrete"


def time_integral(case, setting, flipped):
    """int_0^{1/2} D(t) dt (flipped) or int_0^1 E||E[Delta|X_t]||^2 dt (unflipped)."""
    both_gauss = not is_discrete(case["p0"]) and not is_discrete(case["p1"])
    inner = "A*" if setting == "A" else setting
    cap = [MAX_DIGITS]

    def d(t):
        v, what, c = d_t_one(case, t, flipped, inner)
        cap[0] = min(cap[0], c)
        d.what = what
        return v

    if both_gauss:
        # Gaussian endpoints: every C_k(t) stays positive definite on [0, 1], so D(t) is
        # analytic there: composite Gauss-Legendre in t converges geometrically.
        end = mpf(1) / 2 if flipped else mpf(1)
        two_d = not is_discrete(case["p0"]) and len(case["p0"]["mean"]) == 2
        if setting == "A":
            pans, n = [mpf(0), end / 5, end * mpf("0.55"), end], 12 if two_d else 16
        else:
            pans, n = [mpf(0), end / 3, end], 16 if two_d else 22
        v = gl_panels(d, pans, n)
        return v, f"{n}-node Gauss-Legendre in t on {len(pans) - 1} panels of D(t) by " \
            f"{d.what}", cap[0]
    # A discrete endpoint: near t = 0 (and t = 1 unflipped) atoms of width ~sqrt(sigma t)
    # sit at distances O(t), so D(t) has sqrt(t) (next to a Gaussian endpoint even
    # sqrt(t log(1/t))) terms there and exp(-c/t) terms as the atoms start to overlap: not
    # analytic at the ends. A: tanh-sinh in t, whose double-exponential clustering absorbs
    # such end behaviour. B: Gauss-Legendre in w = log(t) (resp. log(1 - t)) on panels
    # from t = 1e-16: in w the exp(-c/t) terms are analytic and bounded in the strip
    # |Im w| < pi/2, and t^(1/2) log terms are smooth; the piece [0, 1e-16] is taken as
    # 1e-16 D(1e-16), wrong by O(1e-24). Both evaluate D(t) in double precision (1-D panel
    # rules A and B of the at-t cases), hence at most FLOAT_DIGITS agreed digits.
    inner_f = "Af" if setting == "A" else "Bf"

    def df(t):
        v, what, c = d_t_one(case, t, flipped, inner_f)
        cap[0] = min(cap[0], c)
        df.what = what
        return v

    half = mpf(1) / 2
    if setting == "A":
        h = mpf(1) / 20

        def whole(lo, hi):
            return tanh_sinh(df, lo, hi, h)
        v = whole(mpf(0), half) if flipped else whole(mpf(0), mpf(1))
        how = "tanh-sinh in t (step 1/20)"
    else:
        n = 16
        tiny = mpf("1e-16")
        wpan = [mp.log(tiny), mpf(-28), mpf(-21), mpf(-16), mpf(-12), mpf(-9), mpf(-6.5),
                mpf(-4.5), mpf(-3), mpf(-1.8), mp.log(half)]

        def graded(end, sgn):
            # int over [end, end + sgn/2] of D, mesh in w = log|t - end|
            body = gl_panels(lambda w: df(end + sgn * mp.exp(w)) * mp.exp(w), wpan, n)
            return body + tiny * df(end + sgn * tiny)
        v = graded(mpf(0), 1) if flipped else graded(mpf(0), 1) + graded(mpf(1), -1)
        how = "16-node Gauss-Legendre in w = log(t) on 10 panels from t = 1e-16"
    return v, f"{how}, of D(t) by {df.what}", cap[0]


def evaluate(case, setting):
    """(value, description, digit cap) of the case by method "A" or "B" (or "C")."""
    div = case["divergence"]
    sigma = mpf(case["sigma"])
    both_gauss = not is_discrete(case["p0"]) and not is_discrete(case["p1"])
    both_disc = is_discrete(case["p0"]) and is_discrete(case["p1"])
    if div == "at-t":
        return d_t_one(case, mpf(case["t"]), True, setting)
    if div == "mid":
        half = mpf(1) / 2
        if both_gauss and setting == "A":
            # At t = 1/2 both flip components coincide, so m(x) = g(x) is affine.
            v = sum(pk * vk for pk, vk in gaussian_closed_form_terms(case, half, True))
            return v, "closed form ||dm||^2 + tr(K C^-1 K^T) (flip components coincide)", \
                MAX_DIGITS
        return d_t_one(case, half, True, setting)
    if div == "tmid" and both_disc and sigma == 0:
        # sigma = 0: D(t) takes one value at every t outside a finite set of coincidence
        # times (a null set), so D_tmid = 1/2 D(t) at any generic t; A and B use two
        # unrelated generic times.
        t = mpf(0.3141592653589793) if setting == "A" else mpf(0.1732050807568877)
        v, what, cap = d_t_one(case, t, True, setting)
        return v / 2, f"1/2 D({mp.nstr(t, 6)}) (D is constant off a finite set), {what}", cap
    if div in ("tmid", "naive"):
        return time_integral(case, setting, div == "tmid")
    raise ValueError(div)


# --------------------------------------------------------------------------------------------
# the cases


def gauss(mean, cov):
    return {"kind": "gaussian", "mean": mean, "cov": cov}


def disc(points, weights):
    return {"kind": "discrete", "points": points, "weights": weights}


def g1(m, v):
    return gauss([m], [[v]])


G1 = (g1(-0.37, 0.81), g1(0.58, 1.93))
G2 = (g1(0.23, 0.47), g1(-0.61, 0.29))
G4 = (g1(0.11, 0.093), g1(1.37, 2.61))
GSAME = (g1(0.43, 1.71), g1(0.43, 1.71))
GSTD = (g1(0.0, 1.0), g1(0.0, 1.0))
G2D = (gauss([0.31, -0.52], [[1.17, 0.43], [0.43, 0.68]]),
       gauss([-0.24, 0.39], [[0.52, -0.21], [-0.21, 1.46]]))
GD = (g1(0.27, 0.64), disc([[-0.83], [0.41], [1.29]], [0.21, 0.47, 0.32]))
DG = (disc([[-0.52], [0.94]], [0.63, 0.37]), g1(-0.18, 0.37))
# shared atom 0.19 (flip pairs coincide there)
DD = (disc([[-0.71], [0.19], [0.88]], [0.38, 0.27, 0.35]),
      disc([[-0.29], [0.19], [1.13]], [0.22, 0.41, 0.37]))
DD2 = (disc([[-0.44], [0.67]], [0.57, 0.43]), disc([[0.12], [0.67]], [0.31, 0.69]))
# Dyadic supports (exact in binary, and so are (5/8) x0 + (3/8) x1): at t = 3/8 extra points
# coincide, because 5 (x0_i - x0_k) = 3 (x1_l - x1_j) for x0 diffs 21/64 and x1 diffs 35/64.
DDS = (disc([[-13 / 64], [8 / 64], [43 / 64]], [0.29, 0.44, 0.27]),
       disc([[23 / 64], [58 / 64], [-28 / 64]], [0.36, 0.23, 0.41]))
DD2D = (disc([[0.21, -0.63], [0.87, 0.35], [-0.48, 0.11]], [0.33, 0.24, 0.43]),
        disc([[0.21, -0.63], [-0.16, 0.92]], [0.58, 0.42]))


def case(name, laws, div, sigma, interp, t=None, known_failure=None):
    """One reference case. known_failure: a reason string when the crate is known to get
    this case wrong (the Rust test then reports it separately, and still fails)."""
    c = {"name": name, "p0": laws[0], "p1": laws[1], "divergence": div, "t": t,
         "sigma": sigma, "interpolant": interp}
    if known_failure:
        c["known_failure"] = True
        c["reason"] = known_failure
    return c


CASES = [
    # 1-D Gaussians
    case("1d gauss G1, D(t) near 0", G1, "at-t", 0.0, "linear", 0.0137),
    case("1d gauss G1, D(t) generic", G1, "at-t", 0.0, "linear", 0.2718),
    case("1d gauss G1, D(t) close to 1/2", G1, "at-t", 0.0, "linear", 0.4991),
    case("1d gauss G1, D(t) sigma>0", G1, "at-t", 0.173, "linear", 0.3183),
    case("1d gauss G1, D(t) trig sigma>0", G1, "at-t", 0.173, "trig", 0.2718),
    case("1d gauss G1, D(t) t>1/2", G1, "at-t", 0.0417, "linear", 0.8642),
    case("1d gauss G1, mid", G1, "mid", 0.0, "linear"),
    case("1d gauss G1, mid trig sigma>0", G1, "mid", 0.173, "trig"),
    case("1d gauss G1, tmid", G1, "tmid", 0.0, "linear"),
    case("1d gauss G1, tmid sigma>0", G1, "tmid", 0.173, "linear"),
    case("1d gauss G1, tmid trig", G1, "tmid", 0.0521, "trig"),
    case("1d gauss G1, naive", G1, "naive", 0.0, "linear"),
    case("1d gauss G1, naive trig sigma>0", G1, "naive", 0.173, "trig"),
    case("1d gauss G2, D(t) near 0 sigma>0", G2, "at-t", 0.389, "linear", 0.0421),
    case("1d gauss G2, D(t) trig", G2, "at-t", 0.0, "trig", 0.4472),
    case("1d gauss G2, tmid trig sigma>0", G2, "tmid", 0.389, "trig"),
    case("1d gauss G4 (var ratio 28), D(t)", G4, "at-t", 0.0, "linear", 0.1234),
    case("1d gauss G4, tmid", G4, "tmid", 0.0313, "linear"),
    case("1d gauss G4, mid", G4, "mid", 0.0, "linear"),
    case("1d gauss p0 = p1, D(t) = 0 (Prop. 3.2)", GSAME, "at-t", 0.5, "linear", 0.2222),
    case("1d gauss p0 = p1 = N(0,1), naive > 0 (Eq. 3 fails)", GSTD, "naive", 0.0, "linear"),
    # 2-D Gaussians, correlated covariances
    case("2d gauss, D(t)", G2D, "at-t", 0.0, "linear", 0.1618),
    case("2d gauss, D(t) trig sigma>0", G2D, "at-t", 0.271, "trig", 0.3927),
    case("2d gauss, D(t) near 0", G2D, "at-t", 0.0, "linear", 0.0583),
    case("2d gauss, mid sigma>0", G2D, "mid", 0.271, "linear"),
    case("2d gauss, tmid sigma>0", G2D, "tmid", 0.113, "linear"),
    case("2d gauss, naive sigma>0", G2D, "naive", 0.207, "linear"),
    # Gaussian vs discrete, 1-D
    case("1d gauss vs discrete, D(t)", GD, "at-t", 0.0, "linear", 0.2357),
    case("1d gauss vs discrete, D(t) trig sigma>0", GD, "at-t", 0.217, "trig", 0.1414),
    case("1d gauss vs discrete, mid", GD, "mid", 0.0, "linear"),
    case("1d gauss vs discrete, tmid sigma>0", GD, "tmid", 0.217, "linear"),
    case("1d discrete vs gauss, D(t) sigma>0", DG, "at-t", 0.0871, "linear", 0.0612),
    # discrete vs discrete, sigma > 0, 1-D
    case("1d discrete vs discrete, D(t) sigma>0", DD, "at-t", 0.143, "linear", 0.3011),
    case("1d discrete vs discrete, mid trig sigma>0", DD, "mid", 0.143, "trig"),
    case("1d discrete vs discrete, tmid sigma>0", DD2, "tmid", 0.143, "linear"),
    case("1d discrete vs discrete, naive sigma>0", DD2, "naive", 0.0959, "linear"),
    # discrete vs discrete, sigma = 0
    case("1d discrete sigma=0, D(t) generic", DD, "at-t", 0.0, "linear", 0.3),
    case("1d discrete sigma=0, D(t) generic trig", DD, "at-t", 0.0, "trig", 0.2),
    case("1d discrete sigma=0, D(t) at special t = 3/8", DDS, "at-t", 0.0, "linear", 0.375),
    case("1d discrete sigma=0, D(t) generic, same laws", DDS, "at-t", 0.0, "linear", 0.3),
    case("1d discrete sigma=0, mid (no extra coincidence: = generic D)", DD, "mid", 0.0,
         "linear"),
    case("1d discrete sigma=0, mid with an extra coincidence (8+58 = 43+23)", DDS, "mid", 0.0,
         "linear"),
    case("1d discrete sigma=0, tmid", DD, "tmid", 0.0, "linear"),
    case("2d discrete sigma=0, D(t) generic", DD2D, "at-t", 0.0, "linear", 0.41),
]


def float_rounding_check():
    """Parts of the 2-D quadrature and of the time integrals with a discrete endpoint run in
    double precision. Rerun one D(t) of each kind with the same rule in mpf and return the
    relative differences (rounding only: same nodes, same panels)."""
    out = {}
    c = next(c for c in CASES if c["divergence"] == "at-t" and c["p0"]["kind"] == "gaussian"
             and len(c["p0"]["mean"]) == 2 and c["sigma"] == 0)
    with mp.workdps(DPS_2D):
        comps = mixture(*laws_of(c), c["interpolant"], mpf(c["sigma"]), mpf(c["t"]))
        exact = d_2d_nested(comps, OFFS_2A, 11, 14)
        fl = d_2d_nested_float(comps, OFFS_2A, 11, 14)
        out["2d"] = {"case": c["name"], "mpf_dps20": mp.nstr(exact, 20), "double": float(fl),
                     "relative_difference": float(abs(fl - exact) / exact)}
    c = next(c for c in CASES if c["divergence"] == "tmid" and c["p0"]["kind"] == "discrete"
             and c["sigma"] > 0)
    for t in (mpf("1e-6"), mpf("0.0123")):
        comps = mixture(*laws_of(c), c["interpolant"], mpf(c["sigma"]), t)
        exact = gl_panels(integrand_1d(comps),
                          breakpoints_1d(comps, OFFS_A, 20, mpf("0.3"), TOFFS_A), 20)
        fl = d_1d_Af(comps)
        out[f"1d t={mp.nstr(t, 3)}"] = {
            "case": c["name"], "mpf_dps30": mp.nstr(exact, 20), "double": float(fl),
            "relative_difference": float(abs(fl - exact) / exact)}
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out_path = os.path.join(root, "tests", "data", "mpmath_reference.json")
    only = set(int(a) for a in sys.argv[1:] if a.isdigit())
    third = "--third" in sys.argv
    mp.dps = DPS
    out = []
    for idx, c in enumerate(CASES):
        if only and idx not in only:
            continue
        t1 = time.time()
        a, how_a, cap_a = evaluate(c, "A")
        b, how_b, cap_b = evaluate(c, "B")
        a, b = mpf(a), mpf(b)
        if max(abs(a), abs(b)) < mpf("1e-40"):
            value, agreed = mpf(0), MAX_DIGITS
            note = "both methods give |D| < 1e-40: the exact value is 0"
        else:
            value, agreed = a, min(digits(a, b), cap_a, cap_b)
            note = None
        log(f"case {idx:2d} {c['name']}: {mp.nstr(value, 20)} "
            f"(agree {agreed} digits, {time.time() - t1:.1f}s)")
        if third:
            cval, how_c, _ = evaluate(c, "C")
            log(f"   third method: {mp.nstr(cval, 20)} ({digits(cval, a)} digits; {how_c})")
        if agreed < MIN_DIGITS:
            log(f"  DROPPED: methods disagree: {mp.nstr(a, 25)} vs {mp.nstr(b, 25)}")
            continue
        entry = dict(c)
        # the agreed digits plus one guard digit, at least 15 and at most 20
        shown = max(15, min(20, agreed + 1))
        entry["value"] = mp.nstr(value, shown, strip_zeros=False) if value != 0 else "0"
        entry["value_f64"] = float(value)
        entry["agreed_digits"] = agreed
        entry["method_a"] = how_a
        entry["method_b"] = how_b
        if note:
            entry["note"] = note
        out.append(entry)
    if only:
        log("subset run: not writing the JSON")
        return
    check = float_rounding_check()
    for k, v in check.items():
        log(f"double vs mpf rounding check ({k}): {v['relative_difference']:.2e}")
        assert v["relative_difference"] < 1e-14
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as fh:
        json.dump({"generator": "scripts/reference/mpmath_reference.py",
                   "mpmath_version": mpmath.__version__,
                   "float_rounding_check": check,
                   "cases": out}, fh, indent=1)
        fh.write("\n")
    log(f"wrote {len(out)} cases to {out_path}")


if __name__ == "__main__":
    main()
