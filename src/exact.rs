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
//!    points at every narrower component. In one dimension [`crate::exact1d`] does the same
//!    faster wherever no break points are needed.
//!
//! Anything else (several covariance classes in `d ≥ 3`, or a mixture too large for the work
//! budget) is reported as needing Monte Carlo.

use crate::linalg;
use crate::posterior::{lower_inverse, Class, Posterior};
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
/// narrower than its distance to the origin keeps full relative precision. Fixed dimension
/// `D ≤ 2` (the only dimensions route 4 serves), so every loop unrolls.
struct Anchored<const D: usize> {
    /// `L_j`.
    lj: [[f64; D]; D],
    /// Per class: `L_c⁻¹ L_j` (lower triangular).
    w: Vec<[[f64; D]; D]>,
    /// Per component: `log π_k − ½ log det(2πC_k)`, class, gain.
    meta: Vec<(f64, usize, Option<usize>)>,
    /// Per component: `μ_j − μ_k`.
    dmu: Vec<[f64; D]>,
    /// Per component: `L_c⁻¹ (μ_j − μ_k)`.
    v: Vec<[f64; D]>,
    offsets: Vec<[f64; D]>,
    gains: Vec<[[f64; D]; D]>,
}

fn arr<const D: usize>(v: &[f64]) -> [f64; D] {
    let mut a = [0.0; D];
    a.copy_from_slice(&v[..D]);
    a
}

fn mat<const D: usize>(v: &[f64]) -> [[f64; D]; D] {
    let mut a = [[0.0; D]; D];
    for i in 0..D {
        a[i].copy_from_slice(&v[i * D..(i + 1) * D]);
    }
    a
}

impl<const D: usize> Anchored<D> {
    fn new(post: &Posterior, anchor: &Class, j: usize) -> Self {
        let lj = &anchor.chol[..];
        let k = post.comps.len();
        let mut w = Vec::with_capacity(post.classes.len());
        let mut meta = vec![(0.0, 0, None); k];
        let mut dmu = vec![[0.0; D]; k];
        let mut v = vec![[0.0; D]; k];
        for (ci, class) in post.classes.iter().enumerate() {
            w.push(mat::<D>(&linalg::matmul(&class.chol_inv, lj, D, D, D)));
            for kk in class.start..class.end {
                let c = &post.comps[kk];
                let diff: Vec<f64> = post.comps[j]
                    .mean
                    .iter()
                    .zip(&c.mean)
                    .map(|(a, b)| a - b)
                    .collect();
                let mut white = diff.clone();
                linalg::solve_lower_in_place(&class.chol, D, &mut white);
                meta[kk] = (c.log_weight + class.log_norm, ci, c.gain);
                dmu[kk] = arr::<D>(&diff);
                v[kk] = arr::<D>(&white);
            }
        }
        Anchored {
            lj: mat::<D>(lj),
            w,
            meta,
            dmu,
            v,
            offsets: post.comps.iter().map(|c| arr::<D>(&c.offset)).collect(),
            gains: post.gains.iter().map(|g| mat::<D>(g)).collect(),
        }
    }

    /// `‖m_t(μ_j + L_j s)‖²`; `lr` has one entry per component, `vg` one per gain.
    #[inline]
    fn value(&self, s: &[f64], lr: &mut [f64], vg: &mut [[f64; D]]) -> f64 {
        let mut ls = [0.0; D];
        for i in 0..D {
            for k in 0..=i {
                ls[i] += self.lj[i][k] * s[k];
            }
        }
        let mut ws = vec_small::<D>(self.w.len());
        for (wc, wm) in ws.iter_mut().zip(&self.w) {
            for i in 0..D {
                for k in 0..=i {
                    wc[i] += wm[i][k] * s[k];
                }
            }
        }
        let mut max = f64::NEG_INFINITY;
        for (kk, &(c0, ci, _)) in self.meta.iter().enumerate() {
            let mut q = 0.0;
            for i in 0..D {
                let e = self.v[kk][i] + ws[ci][i];
                q += e * e;
            }
            lr[kk] = c0 - 0.5 * q;
            max = max.max(lr[kk]);
        }
        if !max.is_finite() {
            return 0.0; // every density underflows here
        }
        let mut total = 0.0;
        for l in lr.iter_mut() {
            *l = if *l == max { 1.0 } else { (*l - max).exp() };
            total += *l;
        }
        let inv = 1.0 / total;
        let mut m = [0.0; D];
        for g in vg.iter_mut() {
            *g = [0.0; D];
        }
        for (kk, &(_, _, gain)) in self.meta.iter().enumerate() {
            let wk = lr[kk] * inv;
            for i in 0..D {
                m[i] += wk * self.offsets[kk][i];
            }
            if let Some(g) = gain {
                for i in 0..D {
                    vg[g][i] += wk * (self.dmu[kk][i] + ls[i]);
                }
            }
        }
        for (a, v) in self.gains.iter().zip(vg.iter()) {
            for i in 0..D {
                for k in 0..D {
                    m[i] += a[i][k] * v[k];
                }
            }
        }
        m.iter().map(|x| x * x).sum()
    }
}

/// Per-class whitened offsets on the stack for the usual one or two classes.
fn vec_small<const D: usize>(n: usize) -> smallvec_like::Small<D> {
    smallvec_like::Small::new(n)
}

mod smallvec_like {
    /// Up to four `[f64; D]` on the stack, more on the heap.
    pub(super) enum Small<const D: usize> {
        Stack([[f64; D]; 4], usize),
        Heap(Vec<[f64; D]>),
    }

    impl<const D: usize> Small<D> {
        #[inline]
        pub(super) fn new(n: usize) -> Self {
            if n <= 4 {
                Small::Stack([[0.0; D]; 4], n)
            } else {
                Small::Heap(vec![[0.0; D]; n])
            }
        }
    }

    impl<const D: usize> std::ops::Deref for Small<D> {
        type Target = [[f64; D]];
        #[inline]
        fn deref(&self) -> &Self::Target {
            match self {
                Small::Stack(a, n) => &a[..*n],
                Small::Heap(v) => v,
            }
        }
    }

    impl<const D: usize> std::ops::DerefMut for Small<D> {
        #[inline]
        fn deref_mut(&mut self) -> &mut Self::Target {
            match self {
                Small::Stack(a, n) => &mut a[..*n],
                Small::Heap(v) => v,
            }
        }
    }
}

/// Break points around component `k` seen from anchor `j` in the anchor's Cholesky
/// coordinates, for components under half the anchor's width (wider ones are smooth on its
/// scale): `{−R, −2, 0, 2, R}` standard
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
        if sd >= 0.5 || (centre.abs() - big_r * sd) > big_r {
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
    match post.dim() {
        1 => match crate::exact1d::general(post, tol) {
            Some(e) => Ok(e),
            None => general_d::<1>(post, tol),
        },
        2 => general_d::<2>(post, tol),
        d => unreachable!("route 4 serves d ≤ 2, got {d}"),
    }
}

pub(crate) fn general_d<const D: usize>(
    post: &Posterior,
    tol: f64,
) -> Result<Exact, NonFiniteIntegrand> {
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
    let bufs = RefCell::new((
        vec![0.0; post.comps.len()],
        vec![[0.0; D]; post.gains.len()],
    ));
    let mut value = 0.0;
    let mut error = 0.0;
    let mut evals = 0;
    for anchor in nonempty(post) {
        let lnorm = norm2(&anchor.chol).sqrt();
        for j in anchor.start..anchor.end {
            let an = Anchored::<D>::new(post, anchor, j);
            let spread = an.dmu.iter().map(|v| norm2(v).sqrt()).fold(0.0, f64::max);
            // ‖m‖ ≤ cmax + amax(‖L_j s‖ + spread): f ≤ 2(cmax + amax·spread)² + 2(amax‖L_j‖)²‖s‖².
            let (a, b) = (cmax + amax * spread, amax * lnorm);
            // Other components in the anchor's coordinates: mean L_j⁻¹(μ_k − μ_j) and
            // covariance factor L_j⁻¹ L_k = (L_c⁻¹ L_j)⁻¹.
            let lj_flat: Vec<f64> = an.lj.iter().flatten().copied().collect();
            let centres: Vec<(Vec<f64>, Vec<f64>)> = post
                .classes
                .iter()
                .enumerate()
                .flat_map(|(ci, class)| {
                    let wflat: Vec<f64> = an.w[ci].iter().flatten().copied().collect();
                    let inv = lower_inverse(&wflat, D);
                    let (an, lj_flat) = (&an, &lj_flat);
                    (class.start..class.end)
                        .filter(move |&k| k != j)
                        .map(move |k| {
                            let mut mean: Vec<f64> = an.dmu[k].iter().map(|x| -x).collect();
                            linalg::solve_lower_in_place(lj_flat, D, &mut mean);
                            (mean, inv.clone())
                        })
                })
                .collect();
            let f = |s: &[f64]| -> f64 {
                let mut guard = bufs.borrow_mut();
                let (lr, vg) = &mut *guard;
                an.value(s, lr, vg)
            };
            let (big_r, _) = crate::quad::truncation_radius(D, 2.0 * a * a, 2.0 * b * b, 0.1 * tol);
            let br = |s1: Option<f64>| narrow_breaks(&centres, big_r, s1);
            let qr =
                crate::quad::gaussian_expectation_split(D, &f, 2.0 * a * a, 2.0 * b * b, tol, &br)?;
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
