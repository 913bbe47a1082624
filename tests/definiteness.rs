//! Thm. 3.1–3.3 (definiteness) and the failure of the naive integral (Eq. 3):
//! theory/thm-3.1-*.md, theory/thm-3.2-*.md, theory/thm-3.3-*.md, theory/naive-eq3-failure.md.
//!
//! "Positive" is asserted as `value > 0` AND `value > error_bound`: a value that quadrature
//! cannot tell from zero would not demonstrate definiteness.

mod common;

use common::*;
use midpoint::divergence::{d_mid, d_naive, d_t_unflipped, d_tmid, ExactOptions};
use midpoint::{Law, StochasticInterpolant};
use proptest::prelude::*;

fn positive(e: &midpoint::Evaluation) -> bool {
    e.value > 0.0 && e.value > e.error_bound
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Thm. 3.1 for Gaussians (finite MGF everywhere, which is what the proof needs; see the
    /// theory page): D_mid > 0 whenever the laws differ. Would catch a D_mid that ignores the
    /// covariance difference (means equal, covariances differ is a drawn case).
    #[test]
    fn thm31_d_mid_positive_for_distinct_gaussians((p0, p1) in gaussian_pair(4)) {
        prop_assume!(!same_law(&p0, &p1));
        let si = StochasticInterpolant::linear(0.0).unwrap();
        let e = d_mid(&p0, &p1, &si, &ExactOptions::default()).unwrap();
        prop_assert!(positive(&e), "{e:?}");
    }

    /// Thm. 3.1 for bounded laws (its stated assumption): discrete laws that differ, sharing
    /// support points or not.
    #[test]
    fn thm31_d_mid_positive_for_distinct_discrete_laws((p0, p1) in discrete_pair(2)) {
        prop_assume!(!same_law(&p0, &p1));
        let si = StochasticInterpolant::linear(0.0).unwrap();
        let e = d_mid(&p0, &p1, &si, &ExactOptions::default()).unwrap();
        prop_assert!(positive(&e), "{e:?}");
    }

    /// Thm. 3.2: D_t-mid > 0 for distinct laws with finite second moments (σ = 0).
    #[test]
    fn thm32_d_tmid_positive_for_distinct_laws_sigma_zero((p0, p1) in exact_pair()) {
        // σ = 0: 2-D discrete pairs have a closed form, so every case here is exact.
        prop_assume!(!same_law(&p0, &p1));
        let si = StochasticInterpolant::linear(0.0).unwrap();
        let e = d_tmid(&p0, &p1, &si, &ExactOptions::default()).unwrap();
        prop_assert!(positive(&e), "{e:?}");
    }

    /// Thm. 3.3: the generalized divergence is definite for any symmetric stochastic
    /// interpolant (linear or trigonometric, σ > 0).
    #[test]
    fn thm33_d_tmid_positive_for_distinct_laws_sigma_positive(
        (p0, p1) in prop_oneof![gaussian_pair(2), discrete_pair(1), mixed_pair()],
        name in prop_oneof![Just("linear"), Just("trig")],
        sigma in 0.01f64..0.5,
    ) {
        prop_assume!(!same_law(&p0, &p1));
        let si = StochasticInterpolant::new(
            midpoint::Interpolant::from_name(name).unwrap(),
            midpoint::NoiseSchedule::sqrt_bridge(sigma).unwrap(),
        );
        let e = d_tmid(&p0, &p1, &si, &ExactOptions::default()).unwrap();
        prop_assert!(positive(&e), "{e:?}");
    }

    /// Eq. 3 is not a divergence: for p0 = p1 with more than one support point (or any
    /// Gaussian) the unflipped velocity is nonzero away from t = ½, so the integral is > 0.
    #[test]
    fn naive_integral_positive_for_equal_laws(p in prop_oneof![gaussian_any_dim(4), discrete(1)], si in interpolant()) {
        if let Law::Discrete(q) = &p {
            prop_assume!(q.len() > 1);
        }
        let e = d_naive(&p, &p, &si, &ExactOptions::default()).unwrap();
        prop_assert!(positive(&e), "{e:?}");
    }
}

/// The failure mode the paper illustrates (Fig. 1, §3.2): p0 = p1 = N(0, 1), σ = 0, linear.
/// The unflipped velocity at t is E[X1 − X0 | X_t] = (2t − 1)/((1−t)² + t²)·X_t, so
/// D_naive(t) = (2t−1)²/((1−t)² + t²) (theory/naive-eq3-failure.md), and the naive integral is
/// ∫₀¹ = 2 − π/2 (substitute u = 2t − 1).
#[test]
fn naive_gaussian_closed_form_matches_paper_failure_mode() {
    let p: Law = midpoint::Gaussian::isotropic(ndarray::array![0.0], 1.0)
        .unwrap()
        .into();
    let si = StochasticInterpolant::linear(0.0).unwrap();
    let o = ExactOptions::default();
    for t in [0.0, 0.1, 0.25, 0.5, 0.7, 1.0] {
        let e = d_t_unflipped(&p, &p, &si, t, &o).unwrap();
        let want = (2.0 * t - 1.0f64).powi(2) / ((1.0 - t) * (1.0 - t) + t * t);
        assert!(
            (e.value - want).abs() <= 1e-14,
            "t = {t}: {} vs {want}",
            e.value
        );
    }
    let e = d_naive(&p, &p, &si, &o).unwrap();
    let want = 2.0 - std::f64::consts::FRAC_PI_2;
    assert!(
        (e.value - want).abs() <= e.error_bound + 1e-15,
        "{e:?} vs {want}"
    );
    assert!(e.error_bound < 1e-10 * want);
}
