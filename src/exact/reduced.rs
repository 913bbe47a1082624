//! Route 3 of [`super`]: one covariance class (equal covariances: Gaussians with `S0 = S1` in
//! any `d`, or discrete laws with noise). In whitened coordinates the posterior weights depend
//! on `x` only through its projection `u` on the span of the whitened mean differences, so
//! `D(t) = E‖m_t‖²` (Eq. 1) is an `r`-dimensional integral (`r ≤ 2` here) whatever `d` is —
//! in closed form when `r = 0` (theory/gaussian-closed-form.md).

use super::value::{rounding_bound, Exact, Method};
use crate::linalg::{self, norm2};
use crate::posterior::{Class, Posterior};
use crate::quad::{integrate_2d, integrate_pieces, truncation_radius, NonFiniteIntegrand};
use std::cell::RefCell;

/// Route 3: one covariance class, weights depend on an `r ≤ 2` dimensional projection.
///
/// With per-component gains `G_k = A_k L`, `P = I − QQᵀ` and `δ_k = Qᵀ L⁻¹(μ_k − μ_0)`:
/// `E[‖m‖² | u] = ‖Σ_k w_k (c_k + G_k Q (u − δ_k))‖² + Σ_{g,h} W_g W_h tr(G_g P G_hᵀ)`,
/// `W_g` the total weight of the components with gain `g`.
pub(super) fn reduced(
    post: &Posterior,
    class: &Class,
    tol: f64,
) -> Result<Option<Exact>, NonFiniteIntegrand> {
    let d = post.dim();
    let comps = &post.comps[class.start..class.end];
    let k = comps.len();
    let ng = post.gains.len();
    // Whitened differences L⁻¹(μ_k − μ_0), differences first for precision.
    let e: Vec<Vec<f64>> = comps
        .iter()
        .map(|c| {
            let mut diff: Vec<f64> = c
                .mean
                .iter()
                .zip(&comps[0].mean)
                .map(|(a, b)| a - b)
                .collect();
            class.chol.solve_lower_in_place(&mut diff);
            diff
        })
        .collect();
    // Span of the whitened mean differences (rank to 1e-12 of the largest singular value).
    let (q, r) = linalg::span_basis(&e[1..], d, 1e-12);
    if r > 2 {
        return Ok(None);
    }
    let weights: Vec<f64> = comps.iter().map(|c| c.log_weight.exp()).collect();
    // G_k = A_k L: diagonal (O(d)) whenever the class covariance is.
    let g: Vec<linalg::Square> = post.gains.iter().map(|a| a.mul(&class.chol)).collect();
    let gq: Vec<Vec<f64>> = g.iter().map(|gi| gi.mul_rect(&q, r)).collect();
    // T_gh = tr(G_g G_hᵀ) − tr(G_g Q (G_h Q)ᵀ).
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let tmat: Vec<f64> = (0..ng * ng)
        .map(|i| {
            let (a, b) = (i / ng, i % ng);
            g[a].frobenius_dot(&g[b]) - dot(&gq[a], &gq[b])
        })
        .collect();
    let delta: Vec<Vec<f64>> = e
        .iter()
        .map(|ek| {
            (0..r)
                .map(|a| (0..d).map(|i| q[i * r + a] * ek[i]).sum())
                .collect()
        })
        .collect();
    if r == 0 {
        // All components at one location: constant weights, affine field, closed form.
        let total: f64 = weights.iter().sum();
        let mut c = vec![0.0; d];
        let mut wg = vec![0.0; ng];
        for (comp, w) in comps.iter().zip(&weights) {
            c.iter_mut()
                .zip(&comp.offset)
                .for_each(|(ci, o)| *ci += w / total * o);
            if let Some(gi) = comp.gain {
                wg[gi] += w / total;
            }
        }
        let tr: f64 = (0..ng * ng)
            .map(|i| wg[i / ng] * wg[i % ng] * tmat[i])
            .sum();
        let v = total * (norm2(&c) + tr);
        return Ok(Some(Exact {
            value: v,
            error: rounding_bound((k * d * d) as f64, v),
            method: Method::ClosedForm,
            evals: 0,
        }));
    }
    let cmax = comps
        .iter()
        .map(|c| norm2(&c.offset).sqrt())
        .fold(0.0, f64::max);
    let dmax = delta.iter().map(|v| norm2(v).sqrt()).fold(0.0, f64::max);
    let gqn = gq.iter().map(|m| norm2(m).sqrt()).fold(0.0, f64::max);
    let tmax = tmat.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let bound_a = 2.0 * (cmax + 2.0 * gqn * dmax).powi(2) + tmax;
    let bound_b = 2.0 * gqn * gqn;

    // One integral of p(u)·E[‖m‖² | u] over u, p(u) = Σ_k π_k φ_r(u − δ_k): all components
    // have unit width here, so a single pass with a break at every centre resolves them all.
    // Posterior weights ∝ π_k φ_r(u − δ_k) (the orthogonal part of z is common to all k), taken
    // from the differences u − δ_k directly: no cancellation however far the centres lie.
    let log_norm = -0.5 * r as f64 * (2.0 * std::f64::consts::PI).ln();
    let buf = RefCell::new((vec![0.0; k], vec![0.0; d], vec![0.0; ng * r], vec![0.0; ng]));
    let g = |u: &[f64]| -> f64 {
        let mut guard = buf.borrow_mut();
        let (s, m, ug, wg) = &mut *guard;
        let mut max = f64::NEG_INFINITY;
        for i in 0..k {
            let q: f64 = u
                .iter()
                .zip(&delta[i])
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            s[i] = comps[i].log_weight - 0.5 * q;
            max = max.max(s[i]);
        }
        if max == f64::NEG_INFINITY {
            return 0.0;
        }
        let mut total = 0.0;
        for si in s.iter_mut() {
            *si = (*si - max).exp();
            total += *si;
        }
        m.iter_mut().for_each(|v| *v = 0.0);
        ug.iter_mut().for_each(|v| *v = 0.0);
        wg.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..k {
            let w = s[i] / total;
            m.iter_mut()
                .zip(&comps[i].offset)
                .for_each(|(mi, o)| *mi += w * o);
            if let Some(gi) = comps[i].gain {
                wg[gi] += w;
                for a in 0..r {
                    ug[gi * r + a] += w * (u[a] - delta[i][a]);
                }
            }
        }
        for gi in 0..ng {
            for i in 0..d {
                for a in 0..r {
                    m[i] += gq[gi][i * r + a] * ug[gi * r + a];
                }
            }
        }
        let tr: f64 = (0..ng * ng)
            .map(|i| wg[i / ng] * wg[i % ng] * tmat[i])
            .sum();
        let logp = max + total.ln() + log_norm;
        logp.exp() * (norm2(m) + tr.max(0.0))
    };
    let (big_r, tail) = truncation_radius(r, bound_a, bound_b, 0.1 * tol);
    let tail: f64 = tail * weights.iter().sum::<f64>();
    let axis_breaks = |axis: usize| -> Vec<f64> {
        let mut b: Vec<f64> = delta.iter().map(|v| v[axis]).collect();
        let lo = b.iter().fold(f64::MAX, |m, v| m.min(*v)) - big_r;
        let hi = b.iter().fold(f64::MIN, |m, v| m.max(*v)) + big_r;
        b.push(lo);
        b.push(hi);
        b.sort_by(f64::total_cmp);
        b.dedup();
        b
    };
    let q = if r == 1 {
        integrate_pieces(&|u| g(&[u]), &axis_breaks(0), 0.9 * tol)?
    } else {
        let inner = axis_breaks(1);
        integrate_2d(
            &|u1, u2| g(&[u1, u2]),
            &axis_breaks(0),
            &|_| inner.clone(),
            0.9 * tol,
        )?
    };
    Ok(Some(Exact::quadrature(q.value, q.error + tail, q.evals)))
}
