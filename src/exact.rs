//! `D(t) = E‖m_t(X̃_t)‖²` from the mixture representation of [`crate::posterior`], by the
//! cheapest exact route that applies:
//!
//! 1. **Atoms** contribute `Σ_a P(a)‖m_t(a)‖²` exactly.
//! 2. **One continuous component** (e.g. Gaussian endpoints at `t = ½`, or the unflipped
//!    observation): `m_t` is affine and `E‖m_t‖² = π(‖c‖² + tr(A C Aᵀ))` — closed form.
//! 3. **One covariance class** (equal covariances: Gaussians with `S0 = S1` in any `d`, or
//!    discrete laws with noise): in whitened coordinates the posterior weights depend on `x`
//!    only through its projection `u` on the span of the whitened mean differences, of
//!    dimension `r ≤ K − 1`. With `Q` an orthonormal basis of that span, `G_k = A_k L`,
//!    `δ_k = Qᵀ L⁻¹(μ_k − μ_0)` and `W_g` the weight of the components with gain `g`,
//!    ```text
//!    E[‖m_t‖² | u] = ‖Σ_k w_k(u) (c_k + G_k Q (u − δ_k))‖² + Σ_{g,h} W_g W_h T_gh,
//!    T_gh = tr(G_g G_hᵀ) − tr(G_g Q (G_h Q)ᵀ),
//!    ```
//!    so `D(t)` is an `r`-dimensional integral whatever `d` is (theory/gaussian-closed-form.md).
//!    Used when `r ≤ 2`.
//! 4. **General** mixtures in `d ≤ 2`: each component's expectation by quadrature in its own
//!    Cholesky coordinates `x = μ_j + L_j s`, the field evaluated relative to `μ_j`, with break
//!    points at every narrower component.
//!
//! Anything else (several covariance classes in `d ≥ 3`, or a mixture too large for the work
//! budget) is reported as needing Monte Carlo.

use crate::linalg;
use crate::posterior::{Class, Posterior};
use crate::quad::NonFiniteIntegrand;
use std::cell::RefCell;

/// How a value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// A closed-form expression (exact up to floating-point rounding).
    ClosedForm,
    /// Deterministic quadrature with an error bound.
    Quadrature,
    /// Monte Carlo with the exact field; the bound is a 95% interval half-width.
    MonteCarlo,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::ClosedForm => "closed-form",
            Method::Quadrature => "quadrature",
            Method::MonteCarlo => "monte-carlo",
        })
    }
}

/// An exact (non-random) value with its error bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exact {
    pub value: f64,
    pub error: f64,
    pub method: Method,
    pub evals: u64,
}

/// Nodes per dimension assumed by the work estimate.
const NODES_PER_DIM: f64 = 300.0;

fn norm2(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum()
}

/// Rounding-level bound for a closed form: a few ulps per term of the sums involved.
fn rounding_bound(terms: f64, magnitude: f64) -> f64 {
    8.0 * f64::EPSILON * terms * magnitude.abs()
}

/// `tr(A C Aᵀ)`.
fn trace_acat(a: &[f64], c: &[f64], d: usize) -> f64 {
    let ac = linalg::matmul(a, c, d, d, d);
    (0..d)
        .map(|i| (0..d).map(|j| ac[i * d + j] * a[i * d + j]).sum::<f64>())
        .sum()
}

/// Estimated integrand evaluations × cost per evaluation, to decide against quadrature.
pub(crate) fn quadrature_work(post: &Posterior) -> f64 {
    let k = post.comps.len() as f64;
    let d = post.dim() as f64;
    let r = if nonempty(post).count() == 1 {
        (k - 1.0).min(d)
    } else {
        d
    };
    k * k * d * NODES_PER_DIM.powf(r)
}

fn nonempty(post: &Posterior) -> impl Iterator<Item = &Class> {
    post.classes.iter().filter(|c| c.end > c.start)
}

/// `D(t)` for this posterior to absolute tolerance `tol`, or `None` when no exact route
/// applies within `max_work`.
pub(crate) fn d_of_posterior(
    post: &Posterior,
    tol: f64,
    max_work: f64,
) -> Result<Option<Exact>, NonFiniteIntegrand> {
    let d = post.dim();
    let atom_part: f64 = post.atoms.iter().map(|a| a.mass * norm2(&a.field)).sum();
    let atom_round = rounding_bound((post.atoms.len() * d) as f64, atom_part);
    let closed = |v: f64, round: f64| Exact {
        value: atom_part + v,
        error: atom_round + round,
        method: Method::ClosedForm,
        evals: 0,
    };
    if post.comps.is_empty() {
        return Ok(Some(closed(0.0, 0.0)));
    }
    let classes: Vec<&Class> = nonempty(post).collect();
    if post.comps.len() == 1 {
        let (class, c) = (classes[0], &post.comps[0]);
        let mut v = norm2(&c.offset);
        if let Some(g) = c.gain {
            v += trace_acat(&post.gains[g], &class.cov, d);
        }
        let v = c.log_weight.exp() * v;
        return Ok(Some(closed(v, rounding_bound((d * d * d) as f64, v))));
    }
    if quadrature_work(post) > max_work {
        return Ok(None);
    }
    let q = if classes.len() == 1 {
        match reduced(post, classes[0], tol)? {
            Some(q) => q,
            None => return Ok(None),
        }
    } else if d <= 2 {
        general(post, tol)?
    } else {
        return Ok(None);
    };
    Ok(Some(Exact {
        value: atom_part + q.value,
        error: atom_round + q.error,
        method: q.method,
        evals: q.evals,
    }))
}

/// Route 3: one covariance class, weights depend on an `r ≤ 2` dimensional projection.
///
/// With per-component gains `G_k = A_k L`, `P = I − QQᵀ` and `δ_k = Qᵀ L⁻¹(μ_k − μ_0)`:
/// `E[‖m‖² | u] = ‖Σ_k w_k (c_k + G_k Q (u − δ_k))‖² + Σ_{g,h} W_g W_h tr(G_g P G_hᵀ)`,
/// `W_g` the total weight of the components with gain `g`.
fn reduced(post: &Posterior, class: &Class, tol: f64) -> Result<Option<Exact>, NonFiniteIntegrand> {
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
            linalg::solve_lower_in_place(&class.chol, d, &mut diff);
            diff
        })
        .collect();
    // Span of the whitened mean differences (rank to 1e-12 of the largest singular value).
    let (q, r) = linalg::span_basis(&e[1..], d, 1e-12);
    if r > 2 {
        return Ok(None);
    }
    let weights: Vec<f64> = comps.iter().map(|c| c.log_weight.exp()).collect();
    let g: Vec<Vec<f64>> = post
        .gains
        .iter()
        .map(|a| linalg::matmul(a, &class.chol, d, d, d))
        .collect();
    let gq: Vec<Vec<f64>> = g.iter().map(|gi| linalg::matmul(gi, &q, d, d, r)).collect();
    // T_gh = tr(G_g G_hᵀ) − tr(G_g Q (G_h Q)ᵀ).
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let tmat: Vec<f64> = (0..ng * ng)
        .map(|i| {
            let (a, b) = (i / ng, i % ng);
            dot(&g[a], &g[b]) - dot(&gq[a], &gq[b])
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
    let (big_r, tail) = crate::quad::truncation_radius(r, bound_a, bound_b, 0.1 * tol);
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
        crate::quad::integrate_pieces(&|u| g(&[u]), &axis_breaks(0), 0.9 * tol)?
    } else {
        let inner = axis_breaks(1);
        crate::quad::integrate_2d(
            &|u1, u2| g(&[u1, u2]),
            &axis_breaks(0),
            &|_| inner.clone(),
            0.9 * tol,
        )?
    };
    Ok(Some(Exact {
        value: q.value,
        error: q.error + tail,
        method: Method::Quadrature,
        evals: q.evals,
    }))
}

/// The continuous field seen from component `j`: evaluates `‖m_t(μ_j + L_j s)‖²` from the
/// differences `μ_j − μ_k` and `L_c⁻¹ L_j`, never forming `x`, so that a component much
/// narrower than its distance to the origin keeps full relative precision.
struct Anchored<'a> {
    post: &'a Posterior,
    d: usize,
    /// `L_j`.
    lj: &'a [f64],
    /// Per class: `L_c⁻¹ L_j`.
    w: Vec<Vec<f64>>,
    /// Per component: `μ_j − μ_k`.
    dmu: Vec<Vec<f64>>,
    /// Per component: `L_c⁻¹ (μ_j − μ_k)`.
    v: Vec<Vec<f64>>,
}

impl<'a> Anchored<'a> {
    fn new(post: &'a Posterior, anchor: &'a Class, j: usize) -> Self {
        let d = post.dim();
        let lj = &anchor.chol[..];
        let mut w = Vec::with_capacity(post.classes.len());
        let mut dmu = vec![Vec::new(); post.comps.len()];
        let mut v = vec![Vec::new(); post.comps.len()];
        for class in &post.classes {
            // L_c⁻¹ L_j, column by column.
            let mut m = vec![0.0; d * d];
            let mut col = vec![0.0; d];
            for c in 0..d {
                (0..d).for_each(|i| col[i] = lj[i * d + c]);
                linalg::solve_lower_in_place(&class.chol, d, &mut col);
                (0..d).for_each(|i| m[i * d + c] = col[i]);
            }
            w.push(m);
            for k in class.start..class.end {
                let diff: Vec<f64> = post.comps[j]
                    .mean
                    .iter()
                    .zip(&post.comps[k].mean)
                    .map(|(a, b)| a - b)
                    .collect();
                let mut white = diff.clone();
                linalg::solve_lower_in_place(&class.chol, d, &mut white);
                dmu[k] = diff;
                v[k] = white;
            }
        }
        Anchored {
            post,
            d,
            lj,
            w,
            dmu,
            v,
        }
    }

    /// `‖m_t(μ_j + L_j s)‖²`; buffers: log-weights (K), three of length d, and one of
    /// length d per gain.
    fn value(
        &self,
        s: &[f64],
        lr: &mut [f64],
        (ws, ls, m): (&mut [f64], &mut [f64], &mut [f64]),
        vg: &mut [f64],
    ) -> f64 {
        let d = self.d;
        let post = self.post;
        for i in 0..d {
            ls[i] = (0..=i).map(|k| self.lj[i * d + k] * s[k]).sum();
        }
        let mut max = f64::NEG_INFINITY;
        for (ci, class) in post.classes.iter().enumerate() {
            linalg::matvec(&self.w[ci], d, d, s, ws);
            for k in class.start..class.end {
                let q: f64 = self.v[k]
                    .iter()
                    .zip(ws.iter())
                    .map(|(a, b)| (a + b) * (a + b))
                    .sum();
                lr[k] = post.comps[k].log_weight + class.log_norm - 0.5 * q;
                max = max.max(lr[k]);
            }
        }
        if !max.is_finite() {
            return 0.0; // every density underflows here
        }
        let total: f64 = lr
            .iter_mut()
            .map(|l| {
                *l = (*l - max).exp();
                *l
            })
            .sum();
        m.iter_mut().for_each(|x| *x = 0.0);
        let d_ = d;
        vg.iter_mut().for_each(|x| *x = 0.0);
        for (k, c) in post.comps.iter().enumerate() {
            let wk = lr[k] / total;
            for i in 0..d {
                m[i] += wk * c.offset[i];
            }
            if let Some(g) = c.gain {
                let v = &mut vg[g * d_..(g + 1) * d_];
                for i in 0..d {
                    v[i] += wk * (self.dmu[k][i] + ls[i]);
                }
            }
        }
        for (g, a) in post.gains.iter().enumerate() {
            let v = &vg[g * d..(g + 1) * d];
            for i in 0..d {
                m[i] += (0..d).map(|k| a[i * d + k] * v[k]).sum::<f64>();
            }
        }
        norm2(m)
    }
}

/// Break points around component `k` seen from anchor `j` in the anchor's Cholesky
/// coordinates, for components narrower than the anchor: `{−R, −2, 0, 2, R}` standard
/// deviations about its centre (1-D, or the first coordinate in 2-D), or about its
/// conditional centre given `s1` (second coordinate in 2-D).
fn narrow_breaks(centres: &[(Vec<f64>, Vec<f64>)], big_r: f64, s1: Option<f64>) -> Vec<f64> {
    let mut out = Vec::new();
    for (mean, m) in centres {
        // m: lower-triangular L_j⁻¹ L_k (row-major, d ≤ 2); mean: L_j⁻¹(μ_k − μ_j).
        let (centre, sd) = match (s1, mean.len()) {
            (None, _) => (mean[0], m[0]),
            (Some(x1), 2) => (mean[1] + m[2] / m[0] * (x1 - mean[0]), m[3]),
            _ => continue,
        };
        if sd >= 1.0 || (centre.abs() - big_r * sd) > big_r {
            continue;
        }
        for c in [-big_r, -2.0, 0.0, 2.0, big_r] {
            out.push(centre + c * sd);
        }
    }
    out
}

/// Route 4: several covariance classes, `d ≤ 2`: each component's expectation in its own
/// Cholesky coordinates (field evaluated relative to it, see [`Anchored`]), with break
/// points wherever a narrower component sits.
fn general(post: &Posterior, tol: f64) -> Result<Exact, NonFiniteIntegrand> {
    let d = post.dim();
    let cmax = post
        .comps
        .iter()
        .map(|c| norm2(&c.offset).sqrt())
        .fold(0.0, f64::max);
    let amax = post
        .gains
        .iter()
        .map(|a| norm2(a).sqrt())
        .fold(0.0, f64::max);
    let k_total = post.comps.len();
    let bufs = RefCell::new((
        vec![0.0; k_total],
        vec![0.0; d],
        vec![0.0; d],
        vec![0.0; d],
        vec![0.0; d * post.gains.len()],
    ));
    let mut value = 0.0;
    let mut error = 0.0;
    let mut evals = 0;
    for anchor in nonempty(post) {
        let lnorm = norm2(&anchor.chol).sqrt();
        for j in anchor.start..anchor.end {
            let an = Anchored::new(post, anchor, j);
            let spread = an.dmu.iter().map(|v| norm2(v).sqrt()).fold(0.0, f64::max);
            // ‖m‖ ≤ cmax + amax(‖L_j s‖ + spread): f ≤ 2(cmax + amax·spread)² + 2(amax‖L_j‖)²‖s‖².
            let (a, b) = (cmax + amax * spread, amax * lnorm);
            // Other components in the anchor's coordinates: mean L_j⁻¹(μ_k − μ_j) and
            // covariance factor L_j⁻¹ L_k = (L_c⁻¹ L_j)⁻¹.
            let centres: Vec<(Vec<f64>, Vec<f64>)> = post
                .classes
                .iter()
                .enumerate()
                .flat_map(|(ci, class)| {
                    let inv = lower_inverse(&an.w[ci], d);
                    let an = &an;
                    (class.start..class.end)
                        .filter(move |&k| k != j)
                        .map(move |k| {
                            let mut mean: Vec<f64> = an.dmu[k].iter().map(|x| -x).collect();
                            linalg::solve_lower_in_place(an.lj, d, &mut mean);
                            (mean, inv.clone())
                        })
                })
                .collect();
            let f = |s: &[f64]| -> f64 {
                let mut guard = bufs.borrow_mut();
                let (lr, ws, ls, m, vg) = &mut *guard;
                an.value(s, lr, (ws, ls, m), vg)
            };
            let (big_r, _) = crate::quad::truncation_radius(d, 2.0 * a * a, 2.0 * b * b, 0.1 * tol);
            let br = |s1: Option<f64>| narrow_breaks(&centres, big_r, s1);
            let qr =
                crate::quad::gaussian_expectation_split(d, &f, 2.0 * a * a, 2.0 * b * b, tol, &br)?;
            let w = post.comps[j].log_weight.exp();
            value += w * qr.value;
            error += w * qr.error;
            evals += qr.evals;
        }
    }
    Ok(Exact {
        value,
        error,
        method: Method::Quadrature,
        evals,
    })
}

/// Inverse of a lower-triangular row-major matrix.
fn lower_inverse(l: &[f64], d: usize) -> Vec<f64> {
    let mut inv = vec![0.0; d * d];
    let mut col = vec![0.0; d];
    for c in 0..d {
        col.iter_mut().for_each(|x| *x = 0.0);
        col[c] = 1.0;
        linalg::solve_lower_in_place(l, d, &mut col);
        (0..d).for_each(|i| inv[i * d + c] = col[i]);
    }
    inv
}
