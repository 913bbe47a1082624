//! A common orthogonal frame in which every Gaussian covariance is diagonal.
//!
//! `D(t) = E‖m_t(X̃_t)‖²` (Eq. 5) is unchanged when both laws are rotated by one orthogonal
//! `U` (`x ↦ Uᵀx`): the interpolant is linear in the endpoints and its noise `γ ε` is
//! isotropic, so `X̃_t ↦ UᵀX̃_t`, `Δ ↦ UᵀΔ`, `m_t ↦ Uᵀ m_t(U ·)`, and `‖m_t‖` keeps its law.
//! Where the Gaussian covariances have an eigenbasis that is cheap to find — `S0 = S1`, or
//! only one law Gaussian — rotating both laws once into it makes every class covariance,
//! Cholesky factor and gain of [`crate::posterior`] diagonal ([`crate::linalg::Square`]), so
//! each time node of a time integral costs `O(d)` instead of `O(d³)`. The rotation itself
//! costs one eigendecomposition, `O(d³)`, and `O(n d²)` for the `n` points of a discrete law.

use crate::grouping::coincide;
use crate::law::{Discrete, Gaussian, Law};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par, Side};
use ndarray::{Array1, Array2};

/// Below this dimension the dense routes cost nothing worth saving, and they keep their
/// values bit for bit.
const MIN_DIM: usize = 3;

/// `(p0, p1)` rotated into an eigenbasis of their Gaussian covariance(s), or `None` where
/// nothing is gained: `d < 3`, covariances already diagonal (or no Gaussian), two different
/// covariances (no common eigenbasis in general), a discrete law with more points than
/// dimensions (its rotation would cost more than the factorizations it saves), or an
/// eigendecomposition that fails. `tol` is the coincidence tolerance for `S0 = S1`.
pub(crate) fn eigenframe(p0: &Law, p1: &Law, tol: f64) -> Option<(Law, Law)> {
    let d = p0.dim();
    if d < MIN_DIM {
        return None;
    }
    let basis_of = match (p0, p1) {
        (Law::Gaussian(a), Law::Gaussian(b)) => {
            let same = coincide(
                a.cov().as_slice().expect("standard layout"),
                b.cov().as_slice().expect("standard layout"),
                tol,
            );
            (same && !a.cov_square().is_diagonal()).then_some(a)
        }
        (Law::Gaussian(g), Law::Discrete(q)) | (Law::Discrete(q), Law::Gaussian(g)) => {
            (q.len() <= d && !g.cov_square().is_diagonal()).then_some(g)
        }
        (Law::Discrete(_), Law::Discrete(_)) => None,
    }?;
    let s = basis_of.cov();
    let evd = Mat::from_fn(d, d, |i, j| s[[i, j]])
        .self_adjoint_eigen(Side::Lower)
        .ok()?;
    let u = evd.U().to_owned();
    let lambda: Vec<f64> = (0..d).map(|i| evd.S()[i]).collect();
    let rotate = |law: &Law| -> Option<Law> {
        Some(match law {
            // Both Gaussians share S (checked above), so both become N(Uᵀm, Λ).
            Law::Gaussian(g) => Gaussian::new(
                rotate_rows(g.mean().insert_axis(ndarray::Axis(0)), &u)
                    .row(0)
                    .to_owned(),
                Array2::from_diag(&Array1::from(lambda.clone())),
            )
            .ok()?
            .into(),
            Law::Discrete(q) => Discrete::new(rotate_rows(q.points(), &u), q.weights().to_owned())
                .ok()?
                .into(),
        })
    };
    Some((rotate(p0)?, rotate(p1)?))
}

/// The rows `x` of `x` mapped to `Uᵀx`, i.e. `X U`.
fn rotate_rows(x: ndarray::ArrayView2<'_, f64>, u: &Mat<f64>) -> Array2<f64> {
    let (n, d) = x.dim();
    let xm = Mat::from_fn(n, d, |i, j| x[[i, j]]);
    let mut out = Mat::<f64>::zeros(n, d);
    matmul(
        out.as_mut(),
        Accum::Replace,
        xm.as_ref(),
        u.as_ref(),
        1.0,
        Par::Seq,
    );
    Array2::from_shape_fn((n, d), |(i, j)| out[(i, j)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::divergence::{d_mid, d_t, d_tmid, ExactOptions};
    use crate::exact::d_of_posterior;
    use crate::interpolant::{Observation, StochasticInterpolant};
    use crate::posterior::Posterior;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
        rng.sample(rand_distr::StandardNormal)
    }

    /// A random SPD matrix `B Bᵀ + ½ I`, dense (off-diagonal entries nonzero).
    fn spd(d: usize, rng: &mut Xoshiro256PlusPlus) -> Array2<f64> {
        let b = Array2::from_shape_fn((d, d), |_| normal(rng) / (d as f64).sqrt());
        b.dot(&b.t()) + Array2::<f64>::eye(d) * 0.5
    }

    /// A random orthogonal matrix: the product of three Householder reflections.
    fn orthogonal(d: usize, rng: &mut Xoshiro256PlusPlus) -> Array2<f64> {
        let mut r = Array2::<f64>::eye(d);
        for _ in 0..3 {
            let v = Array1::from_shape_fn(d, |_| normal(rng));
            let h = Array2::<f64>::eye(d)
                - v.view()
                    .insert_axis(ndarray::Axis(1))
                    .dot(&v.view().insert_axis(ndarray::Axis(0)))
                    * (2.0 / v.dot(&v));
            r = r.dot(&h);
        }
        r
    }

    fn gaussian(m: Array1<f64>, s: &Array2<f64>) -> Law {
        Gaussian::new(m, s.clone()).unwrap().into()
    }

    /// `x ↦ R x` applied to a law.
    fn rotated(law: &Law, r: &Array2<f64>) -> Law {
        match law {
            Law::Gaussian(g) => gaussian(r.dot(&g.mean()), &r.dot(&g.cov()).dot(&r.t())),
            Law::Discrete(q) => Discrete::new(q.points().dot(&r.t()), q.weights().to_owned())
                .unwrap()
                .into(),
        }
    }

    /// `D(t)` by the dense path: the posterior of the laws as given, no rotation.
    fn dense_d(p0: &Law, p1: &Law, si: &StochasticInterpolant, t: f64) -> f64 {
        let post = Posterior::new(p0, p1, si, t, Observation::Flipped, 1e-12);
        assert!(post.classes.iter().all(|c| !c.cov.is_diagonal()));
        d_of_posterior(&post, 1e-13, f64::INFINITY)
            .unwrap()
            .unwrap()
            .value
    }

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(1e-300)
    }

    /// The diagonal frame computes what the dense path computes: for equal non-diagonal
    /// covariances in d = 5..8, D(t) at several t, D_mid and D_t-mid (the dense D(t)
    /// integrated over t here, with the substitution `integrate_over_t` uses) agree to 1e-9
    /// relative. A wrong eigenvector orientation (U instead of Uᵀ), a missing eigenvalue or a
    /// wrong diagonal formula would be off by far more.
    #[test]
    fn diagonal_frame_matches_the_dense_path() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(16);
        for d in 5..=8 {
            let s = spd(d, &mut rng);
            let p0 = gaussian(Array1::from_shape_fn(d, |_| normal(&mut rng)), &s);
            let p1 = gaussian(Array1::from_shape_fn(d, |_| normal(&mut rng)), &s);
            let (r0, r1) = eigenframe(&p0, &p1, 1e-12).expect("equal dense covariances rotate");
            for sigma in [0.0, 0.3] {
                let si = StochasticInterpolant::linear(sigma).unwrap();
                for t in [0.05, 0.2113, 0.37, 0.5] {
                    let post = Posterior::new(&r0, &r1, &si, t, Observation::Flipped, 1e-12);
                    assert!(post.classes.iter().all(|c| c.cov.is_diagonal()));
                    let fast = d_t(&p0, &p1, &si, t, &ExactOptions::default()).unwrap();
                    let slow = dense_d(&p0, &p1, &si, t);
                    assert!(
                        rel(fast.value, slow) < 1e-9,
                        "d={d} t={t}: {} vs {slow}",
                        fast.value
                    );
                }
                let opts = ExactOptions::default();
                let mid = d_mid(&p0, &p1, &si, &opts).unwrap().value;
                assert!(rel(mid, dense_d(&p0, &p1, &si, 0.5)) < 1e-9);
                let f = |u: f64| {
                    let u3 = u * u * u;
                    if u3 == 0.0 {
                        return 0.0;
                    }
                    dense_d(&p0, &p1, &si, 0.5 * u3 * u) * 2.0 * u3
                };
                let slow = crate::quad::integrate(&f, 0.0, 1.0, 1e-12).unwrap().value;
                let fast = d_tmid(&p0, &p1, &si, &opts).unwrap().value;
                assert!(rel(fast, slow) < 1e-9, "d={d}: D_t-mid {fast} vs {slow}");
            }
        }
    }

    /// Rotation invariance: a random orthogonal rotation of both laws leaves D_mid and
    /// D_t-mid unchanged — for equal covariances (rotated frame both ways), a diagonal pair
    /// that the rotation makes dense, a Gaussian against a few atoms, and a pair with
    /// different covariances (dense closed form at t = ½).
    #[test]
    fn rotation_of_both_laws_changes_nothing() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2026);
        let opts = ExactOptions::default();
        for d in [3, 5, 8] {
            let r = orthogonal(d, &mut rng);
            let s = spd(d, &mut rng);
            let diag = Array2::from_diag(&Array1::from_shape_fn(d, |i| 0.5 + i as f64 * 0.3));
            let m = |rng: &mut Xoshiro256PlusPlus| Array1::from_shape_fn(d, |_| normal(rng));
            let atoms = Discrete::new(
                Array2::from_shape_fn((2, d), |_| normal(&mut rng)),
                ndarray::array![0.3, 0.7],
            )
            .unwrap()
            .into();
            let pairs: Vec<(Law, Law, bool)> = vec![
                (gaussian(m(&mut rng), &s), gaussian(m(&mut rng), &s), true),
                (
                    gaussian(m(&mut rng), &diag),
                    gaussian(m(&mut rng), &diag),
                    true,
                ),
                (gaussian(m(&mut rng), &s), atoms, false),
                (
                    gaussian(m(&mut rng), &s),
                    gaussian(m(&mut rng), &diag),
                    false,
                ),
            ];
            for (p0, p1, tmid) in pairs {
                let (q0, q1) = (rotated(&p0, &r), rotated(&p1, &r));
                let si = StochasticInterpolant::linear(0.2).unwrap();
                let (a, b) = (
                    d_mid(&p0, &p1, &si, &opts).unwrap(),
                    d_mid(&q0, &q1, &si, &opts).unwrap(),
                );
                assert!(
                    rel(a.value, b.value) < 1e-9,
                    "d={d}: D_mid {} vs {}",
                    a.value,
                    b.value
                );
                if tmid {
                    let (a, b) = (
                        d_tmid(&p0, &p1, &si, &opts).unwrap(),
                        d_tmid(&q0, &q1, &si, &opts).unwrap(),
                    );
                    assert!(
                        rel(a.value, b.value) < 1e-9,
                        "d={d}: D_t-mid {} vs {}",
                        a.value,
                        b.value
                    );
                }
            }
        }
    }
}
