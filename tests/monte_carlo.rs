//! Both Monte Carlo estimators against exact values, and their reproducibility.
//!
//! Tolerance: 6 standard errors plus the exact value's bound; with n ≥ 2¹⁶ draws the normal
//! approximation gives a false-failure probability ≈ 2e-9 per comparison.

mod common;

use common::*;
use midpoint::divergence::{d_naive, d_t, d_tmid, ExactOptions};
use midpoint::field::displacement_field;
use midpoint::montecarlo::{rao_blackwell, variational, McEstimate, Setup, TimeLaw};
use midpoint::{Evaluation, Law, Observation, StochasticInterpolant};
use proptest::prelude::*;

fn within(mc: &McEstimate, exact: &Evaluation) -> bool {
    (mc.estimate - exact.value).abs() <= 6.0 * mc.std_error + exact.error_bound + 1e-12
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The Rao–Blackwellized estimator of D(t), D_t-mid (t ~ U[0, ½], times ½) and the naive
    /// integral (unflipped, t ~ U[0, 1]) against the exact values. Would catch a sampler that
    /// builds X̃_t differently from the exact model (wrong branch coefficients, missing ε).
    #[test]
    fn rao_blackwell_agrees_with_exact_within_6_se(
        (p0, p1, si) in exact_case(),
        t in 0.0f64..=1.0,
        seed in 0u64..1000,
    ) {
        let o = ExactOptions::default();
        let n = 1 << 16;
        let base = Setup::new(&p0, &p1, &si);
        let cases = [
            (rao_blackwell(&base.at(TimeLaw::Fixed(t)), n, seed).unwrap(), d_t(&p0, &p1, &si, t, &o).unwrap()),
            (rao_blackwell(&base, n, seed).unwrap(), d_tmid(&p0, &p1, &si, &o).unwrap()),
            (
                rao_blackwell(&base.observed(Observation::Unflipped).at(TimeLaw::NAIVE), n, seed).unwrap(),
                d_naive(&p0, &p1, &si, &o).unwrap(),
            ),
        ];
        for (mc, exact) in cases {
            prop_assert!(within(&mc, &exact), "MC {mc:?} vs exact {exact:?}");
        }
    }

    /// The plain variational estimator with the exact t-dependent field as critic estimates
    /// ∫₀^½ J(m_t) dt = D_t-mid (Prop. 3.3): checks the time integration of the estimator.
    #[test]
    fn variational_estimator_agrees_with_exact_within_6_se(
        (p0, p1) in prop_oneof![gaussian_pair(1), discrete_pair(1), mixed_pair()],
        si in interpolant(),
        seed in 0u64..1000,
    ) {
        let f = |t: f64, x: &[f64], out: &mut [f64]| {
            let field = displacement_field(&p0, &p1, &si, t, Observation::Flipped).unwrap();
            let mut s = field.scratch();
            field.eval_into(x, out, &mut s).unwrap();
        };
        let mc = variational(&Setup::new(&p0, &p1, &si), &f, 1 << 16, seed).unwrap();
        let exact = d_tmid(&p0, &p1, &si, &ExactOptions::default()).unwrap();
        prop_assert!(within(&mc, &exact), "MC {mc:?} vs exact {exact:?}");
    }
}

/// Same seed ⇒ bit-identical estimates on 1, 2 and 3 threads, for both estimators (fixed
/// chunks with their own streams, merged in order). Would catch a reduction whose order
/// follows the scheduler.
#[test]
fn monte_carlo_is_identical_for_any_thread_count() {
    let p0: Law = midpoint::Gaussian::new(
        ndarray::array![0.0, 1.0],
        ndarray::array![[1.0, 0.3], [0.3, 0.7]],
    )
    .unwrap()
    .into();
    let p1: Law = midpoint::Discrete::uniform(ndarray::array![[0.0, 0.0], [1.0, 2.0], [-1.0, 0.5]])
        .unwrap()
        .into();
    let si = StochasticInterpolant::linear(0.1).unwrap();
    let setup = Setup::new(&p0, &p1, &si);
    let critic = |t: f64, x: &[f64], out: &mut [f64]| {
        out[0] = x[0].sin() + t;
        out[1] = x[1] * 0.5;
    };
    // 100,003 draws: 13 chunks, the last one partial.
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                (
                    rao_blackwell(&setup, 100_003, 42).unwrap(),
                    variational(&setup, &critic, 100_003, 42).unwrap(),
                )
            })
    };
    let one = run(1);
    for threads in [2, 3] {
        let other = run(threads);
        assert_eq!(
            one.0.estimate.to_bits(),
            other.0.estimate.to_bits(),
            "{threads} threads"
        );
        assert_eq!(one.0.std_error.to_bits(), other.0.std_error.to_bits());
        assert_eq!(
            one.1.estimate.to_bits(),
            other.1.estimate.to_bits(),
            "{threads} threads"
        );
        assert_eq!(one.1.std_error.to_bits(), other.1.std_error.to_bits());
    }
    assert_eq!(one.0.samples, 100_003);
}
