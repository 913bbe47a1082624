//! Route 4 of [`super`] in one dimension, written for speed: the exact `D_t-mid`
//! between one-dimensional laws evaluates `D(t)` at some 65 times, each an expectation over
//! every mixture component of `X̃_t`, so this loop is where that computation spends its time.
//!
//! Same mathematics, same arithmetic order and same error bound as the general route
//! ([`super::general`]'s `Anchored`): for each component `j`, `E_j ‖m_t‖²` in its own
//! coordinates `x = μ_j + σ_j s`, from the differences `μ_j − μ_k`, by the nested trapezoidal
//! rule against the standard normal weight. It differs only in being monomorphized (no
//! dynamic calls per node), in keeping each component's constants in one flat record, and in
//! allocating two buffers per call instead of several per component. It declines (returns
//! `None`) wherever the general route would need break points — a component narrower than
//! half the anchor's width within reach — or the trapezoidal levels do not settle; the
//! general route then runs as before.

use super::value::Exact;
use crate::posterior::Posterior;
use crate::quad::{trapezoid_1d, truncation_radius};

/// One component seen from the anchor `j`.
#[derive(Clone, Copy, Default)]
struct Seen {
    /// `log π_k − ½ log(2π σ_k²)`.
    c0: f64,
    /// `(μ_j − μ_k)/σ_k`: the whitened offset at `s = 0`.
    v: f64,
    /// `σ_j/σ_k`: the whitened offset grows by this per unit of `s`.
    r: f64,
    /// `c_k`.
    offset: f64,
    /// `A_k` (0 where the component has no gain).
    gain: f64,
    /// `μ_j − μ_k`.
    dmu: f64,
}

/// `m_t(μ_j + σ_j s)²` from the components as seen from `j`; `lr` is scratch, one per
/// component.
#[inline(always)]
fn field_sq(seen: &[Seen], sigma_j: f64, s: f64, lr: &mut [f64]) -> f64 {
    let mut max = f64::NEG_INFINITY;
    for (l, c) in lr.iter_mut().zip(seen) {
        let e = c.v + c.r * s;
        *l = c.c0 - 0.5 * (e * e);
        max = max.max(*l);
    }
    if !max.is_finite() {
        return 0.0; // every density underflows here
    }
    let ls = sigma_j * s;
    let (mut total, mut m) = (0.0, 0.0);
    for (l, c) in lr.iter().zip(seen) {
        let w = if *l == max { 1.0 } else { (*l - max).exp() };
        total += w;
        m += w * (c.offset + c.gain * (c.dmu + ls));
    }
    let m = m / total;
    m * m
}

/// `D(t)` of a one-dimensional posterior without atoms to absolute tolerance `tol`, or
/// `None` where the general route must take over.
pub(crate) fn general(post: &Posterior, tol: f64) -> Option<Exact> {
    debug_assert_eq!(post.dim(), 1);
    let k = post.comps.len();
    let cmax = post
        .comps
        .iter()
        .map(|c| c.offset[0].abs())
        .fold(0.0, f64::max);
    let amax = post
        .gains
        .iter()
        .map(|a| a.diag(0).abs())
        .fold(0.0, f64::max);
    // Each component's class, found once.
    let mut class_of = vec![0usize; k];
    for (ci, class) in post.classes.iter().enumerate() {
        class_of[class.start..class.end].fill(ci);
    }
    let mut seen = vec![Seen::default(); k];
    let mut lr = vec![0.0; k];
    let (mut value, mut error, mut evals) = (0.0, 0.0, 0u64);
    for j in 0..k {
        let sigma_j = post.classes[class_of[j]].chol.diag(0);
        let mut spread = 0.0f64;
        for (kk, c) in post.comps.iter().enumerate() {
            let class = &post.classes[class_of[kk]];
            let dmu = post.comps[j].mean[0] - c.mean[0];
            spread = spread.max(dmu.abs());
            seen[kk] = Seen {
                c0: c.log_weight + class.log_norm,
                v: dmu / class.chol.diag(0),
                r: class.chol_inv.diag(0) * sigma_j,
                offset: c.offset[0],
                gain: c.gain.map_or(0.0, |g| post.gains[g].diag(0)),
                dmu,
            };
        }
        // ‖m‖ ≤ cmax + amax(σ_j|s| + spread): f ≤ 2(cmax + amax·spread)² + 2(amax σ_j)² s².
        let (a, b) = (cmax + amax * spread, amax * sigma_j);
        let (big_r, tail) = truncation_radius(1, 2.0 * a * a, 2.0 * b * b, 0.1 * tol);
        // A component under half the anchor's width within reach needs break points.
        let narrow = (0..k).any(|kk| {
            let sd = 1.0 / seen[kk].r;
            let centre = -seen[kk].dmu / sigma_j;
            kk != j && sd < 0.5 && centre.abs() - big_r * sd <= big_r
        });
        if narrow {
            return None;
        }
        let q = trapezoid_1d(|s| field_sq(&seen, sigma_j, s, &mut lr), big_r, 0.9 * tol)?;
        let w = post.comps[j].log_weight.exp();
        value += w * q.value;
        error += w * (q.error + tail);
        evals += q.evals;
    }
    Some(Exact::quadrature(value, error, evals))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpolant::{Observation, StochasticInterpolant};
    use crate::law::{Gaussian, Law};
    use ndarray::array;

    fn posterior(p0: &Law, p1: &Law, sigma: f64, t: f64) -> Posterior {
        let si = StochasticInterpolant::linear(sigma).unwrap();
        Posterior::new(p0, p1, &si, t, Observation::Flipped, 1e-12)
    }

    /// A component much narrower than its anchor needs the general route's break points:
    /// at t = 0.05 the flipped branch of N(0, 1) → N(0, 0.01) has sd 0.107 beside 0.95.
    #[test]
    fn declines_where_break_points_are_needed() {
        let p0: Law = Gaussian::isotropic(array![0.0], 1.0).unwrap().into();
        let p1: Law = Gaussian::isotropic(array![0.0], 0.01).unwrap().into();
        assert!(general(&posterior(&p0, &p1, 0.0, 0.05), 1e-10).is_none());
        assert!(general(&posterior(&p0, &p1, 0.0, 0.4), 1e-10).is_some());
    }
}
