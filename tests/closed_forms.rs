//! Closed forms against quadrature and against hand computations
//! (theory/gaussian-closed-form.md, theory/discrete-closed-form.md).

mod common;

use common::*;
use midpoint::divergence::{d_mid, d_t, d_tmid, ExactOptions};
use midpoint::montecarlo::{rao_blackwell, Setup, TimeLaw};
use midpoint::{
    Discrete, Gaussian, Interpolant, Law, Method, NoiseSchedule, StochasticInterpolant,
};
use ndarray::{array, Array1, Array2};
use proptest::prelude::*;

/// `tr((S1−S0) M⁻¹ (S1−S0))` by Gauss–Jordan elimination, written here independently of the
/// crate's Cholesky-based algebra.
fn trace_quad(s0: &Array2<f64>, s1: &Array2<f64>, m: &Array2<f64>) -> f64 {
    let d = s0.nrows();
    let k = s1 - s0;
    // Solve M X = K column by column with partial pivoting.
    let mut a = m.clone();
    let mut b = k.clone();
    for c in 0..d {
        let p = (c..d)
            .max_by(|&i, &j| a[[i, c]].abs().total_cmp(&a[[j, c]].abs()))
            .unwrap();
        for j in 0..d {
            a.swap([c, j], [p, j]);
            b.swap([c, j], [p, j]);
        }
        for r in 0..d {
            if r != c {
                let f = a[[r, c]] / a[[c, c]];
                for j in 0..d {
                    a[[r, j]] -= f * a[[c, j]];
                    b[[r, j]] -= f * b[[c, j]];
                }
            }
        }
    }
    for r in 0..d {
        let piv = a[[r, r]];
        for j in 0..d {
            b[[r, j]] /= piv;
        }
    }
    k.dot(&b).diag().sum()
}

fn parts(p: &Law) -> (Array1<f64>, Array2<f64>) {
    match p {
        Law::Gaussian(g) => (g.mean().to_owned(), g.cov().to_owned()),
        _ => unreachable!(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// D_mid = ‖m1−m0‖² + tr((S1−S0)(S0+S1+σI)⁻¹(S1−S0)) for the paper's interpolant, and with
    /// σ/2 in place of σ for the trigonometric one (α = β = 1/√2 at t = ½).
    #[test]
    fn gaussian_d_mid_closed_form_matches_formula((p0, p1) in gaussian_pair(4), sigma in prop_oneof![Just(0.0), 0.0f64..1.0]) {
        let (m0, s0) = parts(&p0);
        let (m1, s1) = parts(&p1);
        let d = m0.len();
        let dm = &m1 - &m0;
        for (name, eff) in [("linear", sigma), ("trig", sigma / 2.0)] {
            let si = StochasticInterpolant::new(Interpolant::from_name(name).unwrap(), NoiseSchedule::sqrt_bridge(sigma).unwrap());
            let e = d_mid(&p0, &p1, &si, &ExactOptions::default()).unwrap();
            let want = dm.dot(&dm) + trace_quad(&s0, &s1, &(&s0 + &s1 + Array2::<f64>::eye(d) * eff));
            prop_assert_eq!(e.method, Method::ClosedForm);
            prop_assert!((e.value - want).abs() <= 1e-12 * want.max(1.0), "{name}: {} vs {want}", e.value);
        }
    }

    /// The same D_mid by closed form and by quadrature: with an interpolant whose β(½) exceeds
    /// α(½) by 1e-13 relative (the linear one, perturbed below the coincidence tolerance), a
    /// zero tolerance keeps the two branches as two components and D(½) goes through
    /// quadrature; by default they are pooled into the closed form. The perturbation moves D by
    /// O(1e-13), inside the 1e-12 slack.
    #[test]
    fn gaussian_d_t_quadrature_tends_to_closed_form_at_half((p0, p1) in gaussian_pair(2), sigma in prop_oneof![Just(0.0), 0.0f64..0.5]) {
        let nudged = Interpolant::custom("linear+1e-13", |t| 1.0 - t, |t| t + t * 1e-13).unwrap();
        let si = StochasticInterpolant::new(nudged, NoiseSchedule::sqrt_bridge(sigma).unwrap());
        let closed = d_mid(&p0, &p1, &si, &ExactOptions::default()).unwrap();
        let unpooled = ExactOptions { atom_tol: 0.0, ..ExactOptions::default() };
        let quad = d_mid(&p0, &p1, &si, &unpooled).unwrap();
        prop_assert_eq!(closed.method, Method::ClosedForm);
        prop_assert_eq!(quad.method, Method::Quadrature);
        prop_assert!(agree(&closed, &quad, 1e-12), "{closed:?} vs {quad:?}");
        // And D(t) → D_mid continuously: at ½ − 1e-6 the gap is O(1e-12) (D is smooth and even
        // about ½), far below the scale of the bounds checked above.
        let near = d_t(&p0, &p1, &si, 0.5 - 1e-6, &ExactOptions::default()).unwrap();
        prop_assert!((near.value - closed.value).abs() <= near.error_bound + closed.error_bound + 1e-9 * (1.0 + closed.value));
    }

    /// Equal covariances collapse to one class and the reduced (r-dimensional) quadrature; a
    /// 1e-9 perturbation of one covariance forces the general per-component route. The two must
    /// agree to the perturbation's effect (bounded here by 1e-7 of the scale).
    #[test]
    fn equal_covariance_reduction_matches_general_quadrature(p0 in gaussian(2), shift in prop::collection::vec(-1.0f64..1.0, 2), si in interpolant(), t in 0.0f64..0.5) {
        let (m0, s0) = parts(&p0);
        let p1: Law = Gaussian::new(&m0 + &Array1::from(shift.clone()), s0.clone()).unwrap().into();
        let p1b: Law = Gaussian::new(&m0 + &Array1::from(shift), &s0 + &(Array2::<f64>::eye(2) * 1e-9)).unwrap().into();
        let o = ExactOptions::default();
        let a = d_t(&p0, &p1, &si, t, &o).unwrap();
        let b = d_t(&p0, &p1b, &si, t, &o).unwrap();
        prop_assert!((a.value - b.value).abs() <= a.error_bound + b.error_bound + 1e-7 * (1.0 + a.value), "{a:?} vs {b:?}");
    }

    /// Two discrete laws, σ = 0: at a random (generic) t, exact grouping of the atoms gives the
    /// ordered-pair formula, whatever t is.
    #[test]
    fn discrete_d_t_constant_at_generic_t((p0, p1) in discrete_pair(2), si in deterministic(), t in 0.001f64..0.499) {
        let (a, b) = match (&p0, &p1) { (Law::Discrete(a), Law::Discrete(b)) => (a, b), _ => unreachable!() };
        let generic = midpoint::discrete::generic_flipped(a, b, 1e-12);
        let e = d_t(&p0, &p1, &si, t, &ExactOptions::default()).unwrap();
        prop_assert_eq!(e.method, Method::ClosedForm);
        prop_assert!((e.value - generic).abs() <= 1e-12 * generic.max(1.0), "D({t}) = {} vs {generic}", e.value);
    }
}

/// The worked example of theory/discrete-closed-form.md (exact fractions there):
/// p0 = ½δ0 + ½δ1, p1 = ¼δ0 + ¾δ3, linear, σ = 0. Generic D = 5; at the special times where
/// extra atoms coincide, D(1/4) = 17/4, D(2/5) = 157/32, D(1/2) = 5, and D(0) = 653/192.
/// Would catch atoms that are not pooled (or pooled when they should not be).
#[test]
fn discrete_d_t_exact_at_coincident_t() {
    let p0: Law = Discrete::new(array![[0.0], [1.0]], array![0.5, 0.5])
        .unwrap()
        .into();
    let p1: Law = Discrete::new(array![[0.0], [3.0]], array![0.25, 0.75])
        .unwrap()
        .into();
    let si = StochasticInterpolant::linear(0.0).unwrap();
    let o = ExactOptions::default();
    for (t, want) in [
        (0.25, 17.0 / 4.0),
        (0.4, 157.0 / 32.0),
        (0.5, 5.0),
        (0.0, 653.0 / 192.0),
        (0.3, 5.0),
        (0.75, 17.0 / 4.0),
    ] {
        let e = d_t(&p0, &p1, &si, t, &o).unwrap();
        assert!(
            (e.value - want).abs() < 1e-13,
            "D({t}) = {} but {want}",
            e.value
        );
    }
    let e = d_tmid(&p0, &p1, &si, &o).unwrap();
    assert_eq!(e.method, Method::ClosedForm);
    assert!((e.value - 2.5).abs() < 1e-13);
}

/// For a custom interpolant (equal to the linear one, but not known to the closed form) the
/// discrete σ = 0 D_t-mid is computed by quadrature over t of the exact D(t); it must agree
/// with the closed form ½·D(generic t).
#[test]
fn discrete_sigma_zero_tmid_closed_form_matches_grouping() {
    let p0: Law = Discrete::new(array![[-1.0], [0.0], [2.0]], array![0.2, 0.5, 0.3])
        .unwrap()
        .into();
    let p1: Law = Discrete::new(array![[-1.0], [1.0], [2.0]], array![0.4, 0.4, 0.2])
        .unwrap()
        .into();
    let o = ExactOptions::default();
    let builtin = d_tmid(&p0, &p1, &StochasticInterpolant::linear(0.0).unwrap(), &o).unwrap();
    let custom = StochasticInterpolant::new(
        Interpolant::custom("linear-again", |t| 1.0 - t, |t| t).unwrap(),
        NoiseSchedule::sqrt_bridge(0.0).unwrap(),
    );
    let quad = d_tmid(&p0, &p1, &custom, &o).unwrap();
    assert_eq!(builtin.method, Method::ClosedForm);
    assert_eq!(quad.method, Method::Quadrature);
    assert!(agree(&builtin, &quad, 1e-12), "{builtin:?} vs {quad:?}");
    assert!((builtin.value - 0.8).abs() < 1e-13); // the demo's "3-point vs 3-point" row
}

/// Gaussian p0 against a discrete p1 with σ = 0: at t = 0 the B = 1 branch is atomic
/// (X̃ = X1), at t > 0 it is a narrow Gaussian that reveals X0 exactly, so D jumps from 1 to 3/2
/// (theory/discrete-closed-form.md). The integral is unaffected by one point.
#[test]
fn mixed_gaussian_discrete_jump_at_t_zero() {
    let p0: Law = Gaussian::isotropic(array![0.0], 1.0).unwrap().into();
    let p1: Law = Discrete::uniform(array![[-1.0], [1.0]]).unwrap().into();
    let si = StochasticInterpolant::linear(0.0).unwrap();
    let o = ExactOptions::default();
    let at0 = d_t(&p0, &p1, &si, 0.0, &o).unwrap();
    approx::assert_relative_eq!(at0.value, 1.0, max_relative = 1e-14);
    // D(t) = 3/2 − O(t·sqrt(log 1/t)) near 0.
    let near = d_t(&p0, &p1, &si, 1e-10, &o).unwrap();
    assert!((near.value - 1.5).abs() < 1e-8, "{near:?}");
    // The Monte Carlo at t = 1e-6 sees the same: 6 SE, false-failure probability ≈ 2e-9.
    let mc = rao_blackwell(
        &Setup::new(&p0, &p1, &si).at(TimeLaw::Fixed(1e-6)),
        1 << 18,
        3,
    )
    .unwrap();
    let exact = d_t(&p0, &p1, &si, 1e-6, &o).unwrap();
    assert!((mc.estimate - exact.value).abs() <= 6.0 * mc.std_error + exact.error_bound);
}

/// In d = 3 an equal-covariance pair is still exact (one class, r = 1); the Rao–Blackwell
/// estimate must agree within 6 SE (false-failure probability ≈ 2e-9).
#[test]
fn equal_covariance_is_exact_in_three_dimensions() {
    let s = array![[1.0, 0.3, 0.0], [0.3, 0.8, -0.2], [0.0, -0.2, 0.5]];
    let p0: Law = Gaussian::new(array![0.0, 0.0, 0.0], s.clone())
        .unwrap()
        .into();
    let p1: Law = Gaussian::new(array![0.7, -0.4, 0.2], s).unwrap().into();
    let si = StochasticInterpolant::linear(0.1).unwrap();
    let o = ExactOptions::default();
    let e = d_tmid(&p0, &p1, &si, &o).unwrap();
    assert_eq!(e.method, Method::Quadrature);
    let mc = rao_blackwell(&Setup::new(&p0, &p1, &si), 1 << 18, 9).unwrap();
    assert!(
        (mc.estimate - e.value).abs() <= 6.0 * mc.std_error + e.error_bound,
        "{mc:?} vs {e:?}"
    );
}
