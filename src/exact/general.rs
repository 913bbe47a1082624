//! Route 4 of [`super`]: several covariance classes in `d ≤ 2`. `D(t) = E‖m_t‖²` (Eq. 1) as
//! the sum over components `j` of `π_j E_j‖m_t‖²`, each expectation by quadrature in the
//! component's own Cholesky coordinates `x = μ_j + L_j s`, the field evaluated relative to
//! `μ_j` ([`Anchored`]), with break points at every narrower component. In one dimension
//! [`super::one_d`] computes the same faster wherever no break points are needed.

use super::one_d;
use super::value::Exact;
use crate::linalg::lower_inverse;
use crate::linalg::{self, norm2};
use crate::posterior::{Class, Posterior};
use crate::quad::{gaussian_expectation_split, truncation_radius, NonFiniteIntegrand};
use std::cell::RefCell;

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

impl<const D: usize> Anchored<D> {
    fn new(post: &Posterior, anchor: &Class, j: usize) -> Self {
        let lj = &anchor.chol.dense()[..];
        let k = post.comps.len();
        let mut w = Vec::with_capacity(post.classes.len());
        let mut meta = vec![(0.0, 0, None); k];
        let mut dmu = vec![[0.0; D]; k];
        let mut v = vec![[0.0; D]; k];
        for (ci, class) in post.classes.iter().enumerate() {
            w.push(linalg::fixed_matrix::<D>(&linalg::matmul(
                &class.chol_inv.dense(),
                lj,
                D,
                D,
                D,
            )));
            for kk in class.start..class.end {
                let c = &post.comps[kk];
                let diff: Vec<f64> = post.comps[j]
                    .mean
                    .iter()
                    .zip(&c.mean)
                    .map(|(a, b)| a - b)
                    .collect();
                let mut white = diff.clone();
                class.chol.solve_lower_in_place(&mut white);
                meta[kk] = (c.log_weight + class.log_norm, ci, c.gain);
                dmu[kk] = linalg::fixed_vector::<D>(&diff);
                v[kk] = linalg::fixed_vector::<D>(&white);
            }
        }
        Anchored {
            lj: linalg::fixed_matrix::<D>(lj),
            w,
            meta,
            dmu,
            v,
            offsets: post
                .comps
                .iter()
                .map(|c| linalg::fixed_vector::<D>(&c.offset))
                .collect(),
            gains: post
                .gains
                .iter()
                .map(|g| linalg::fixed_matrix::<D>(&g.dense()))
                .collect(),
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
pub(super) fn general(post: &Posterior, tol: f64) -> Result<Exact, NonFiniteIntegrand> {
    match post.dim() {
        1 => match one_d::general(post, tol) {
            Some(e) => Ok(e),
            None => general_d::<1>(post, tol),
        },
        2 => general_d::<2>(post, tol),
        d => unreachable!("route 4 serves d ≤ 2, got {d}"),
    }
}

pub(super) fn general_d<const D: usize>(
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
        .map(|a| norm2(a.entries()).sqrt())
        .fold(0.0, f64::max);
    let bufs = RefCell::new((
        vec![0.0; post.comps.len()],
        vec![[0.0; D]; post.gains.len()],
    ));
    let mut value = 0.0;
    let mut error = 0.0;
    let mut evals = 0;
    for anchor in post.nonempty_classes() {
        let lnorm = norm2(anchor.chol.entries()).sqrt();
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
            let (big_r, _) = truncation_radius(D, 2.0 * a * a, 2.0 * b * b, 0.1 * tol);
            let br = |s1: Option<f64>| narrow_breaks(&centres, big_r, s1);
            let qr = gaussian_expectation_split(D, &f, 2.0 * a * a, 2.0 * b * b, tol, &br)?;
            let w = post.comps[j].log_weight.exp();
            value += w * qr.value;
            error += w * qr.error;
            evals += qr.evals;
        }
    }
    Ok(Exact::quadrature(value, error, evals))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpolant::{Observation, StochasticInterpolant};
    use crate::law::{Discrete, Gaussian, Law};
    use ndarray::{array, Array2};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The fast route computes what the general route computes: wherever it accepts a
        /// posterior, the two values agree within the sum of their error bounds (a wrong
        /// constant, sign or gain in `Seen` would be off by far more than 1e-9 relative). Here
        /// rather than in `one_d`, which this file calls: the check calls both.
        #[test]
        fn agrees_with_the_general_route(
            m1 in -3.0..3.0f64, v0 in 0.2..3.0f64, v1 in 0.2..3.0f64,
            atoms in proptest::collection::vec((-3.0..3.0f64, 0.1..1.0f64), 1..4),
            sigma in prop_oneof![Just(0.0), 0.01..1.0f64], t in 0.01..0.99f64,
        ) {
            let g0: Law = Gaussian::isotropic(array![0.0], v0).unwrap().into();
            let g1: Law = Gaussian::isotropic(array![m1], v1).unwrap().into();
            let pts = Array2::from_shape_vec((atoms.len(), 1), atoms.iter().map(|a| a.0).collect()).unwrap();
            let total: f64 = atoms.iter().map(|a| a.1).sum();
            let wts = atoms.iter().map(|a| a.1 / total).collect::<Vec<_>>();
            let disc: Law = Discrete::new(pts, wts.into()).unwrap().into();
            let si = StochasticInterpolant::linear(sigma).unwrap();
            for (p0, p1) in [(&g0, &g1), (&g0, &disc), (&disc, &g1)] {
                let post = Posterior::new(p0, p1, &si, t, Observation::Flipped, 1e-12);
                if post.comps.len() < 2 || !post.atoms.is_empty() {
                    continue;
                }
                let tol = 1e-11;
                let Some(fast) = one_d::general(&post, tol) else { continue };
                let slow = general_d::<1>(&post, tol).unwrap();
                prop_assert!(
                    (fast.value - slow.value).abs() <= fast.error + slow.error + 1e-14,
                    "{} ± {} vs {} ± {}", fast.value, fast.error, slow.value, slow.error
                );
                prop_assert!(fast.error <= tol, "bound {} over {tol}", fast.error);
            }
        }
    }
}
