//! Prop. 3.3 (theory/prop-3.3-variational.md): for any square-integrable f,
//! J(f) = E[2⟨f(X̃_t), Δ⟩ − ‖f(X̃_t)‖²] = D(t) − E‖f(X̃_t) − m_t(X̃_t)‖², so J(m_t) = D(t).
//!
//! Each test compares two Monte Carlo estimates built from independent draws, or a Monte
//! Carlo estimate with an exact value, within 6 combined standard errors: a false failure has
//! probability ≈ 2e-9 per comparison (normal approximation, n ≥ 2¹⁷ draws).

mod common;

use common::*;
use midpoint::divergence::{d_t, ExactOptions};
use midpoint::field::displacement_field;
use midpoint::montecarlo::{rao_blackwell, variational, Critic, Setup, TimeLaw};
use midpoint::{Law, Observation, StochasticInterpolant};
use proptest::prelude::*;

const N: usize = 1 << 17;

/// E‖f − m_t‖² by Monte Carlo over X̃_t (independent seed), with its SE.
fn mean_sq_gap(setup: &Setup<'_>, t: f64, f: &Critic<'_>, seed: u64) -> (f64, f64) {
    let field = displacement_field(setup.p0, setup.p1, setup.si, t, setup.observation).unwrap();
    let d = setup.p0.dim();
    // Draw X̃_t as in Eq. 7 from an independent stream and average ‖f − m_t‖² directly.
    let mut rng = <rand_xoshiro::Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(seed);
    let mut x0 = vec![0.0; d];
    let mut x1 = vec![0.0; d];
    let mut z = vec![0.0; d];
    let mut fx = vec![0.0; d];
    let mut mx = vec![0.0; d];
    let mut scratch = field.scratch();
    let (mut sum, mut sum2) = (0.0, 0.0);
    let n = N;
    for _ in 0..n {
        setup.p0.sample_into(&mut rng, &mut z, &mut x0);
        setup.p1.sample_into(&mut rng, &mut z, &mut x1);
        let b = if rand::Rng::random::<bool>(&mut rng) {
            midpoint::interpolant::Branch::Flipped
        } else {
            midpoint::interpolant::Branch::Forward
        };
        let c = setup.si.branch(t, b);
        let xt: Vec<f64> = (0..d)
            .map(|i| {
                let e: f64 =
                    rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
                c.alpha * x0[i] + c.beta * x1[i] + c.gamma * e
            })
            .collect();
        f(t, &xt, &mut fx);
        field.eval_into(&xt, &mut mx, &mut scratch).unwrap();
        let v: f64 = fx.iter().zip(&mx).map(|(a, b)| (a - b) * (a - b)).sum();
        sum += v;
        sum2 += v * v;
    }
    let mean = sum / n as f64;
    let var = (sum2 / n as f64 - mean * mean).max(0.0);
    (mean, (var / n as f64).sqrt())
}

fn check_identity(
    p0: &Law,
    p1: &Law,
    si: &StochasticInterpolant,
    t: f64,
    f: &Critic<'_>,
    seed: u64,
) -> Result<(), TestCaseError> {
    let setup = Setup::new(p0, p1, si).at(TimeLaw::Fixed(t));
    let j = variational(&setup, f, N, seed).unwrap();
    let d = d_t(p0, p1, si, t, &ExactOptions::default()).unwrap();
    let (gap, gap_se) = mean_sq_gap(&setup, t, f, seed ^ 0xABCD);
    let rhs = d.value - gap;
    let se = (j.std_error.powi(2) + gap_se.powi(2)).sqrt();
    prop_assert!(
        (j.estimate - rhs).abs() <= 6.0 * se + d.error_bound + 1e-12,
        "J(f) = {} ± {} but D(t) − E‖f−m‖² = {} − {} ± {gap_se}",
        j.estimate,
        j.std_error,
        d.value,
        gap
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Random affine critics f(t, x) = a + B x + c·t.
    #[test]
    fn prop33_identity_for_affine_critics(
        (p0, p1) in prop_oneof![gaussian_pair(2), discrete_pair(1), mixed_pair()],
        si in interpolant(),
        t in 0.0f64..=0.5,
        coef in prop::collection::vec(-1.0f64..1.0, 8),
        seed in 0u64..1000,
    ) {
        let d = p0.dim();
        let f = move |tt: f64, x: &[f64], out: &mut [f64]| {
            for i in 0..d {
                out[i] = coef[i] + coef[4] * tt + (0..d).map(|k| coef[2 + (i + k) % 6] * x[k]).sum::<f64>();
            }
        };
        check_identity(&p0, &p1, &si, t, &f, seed)?;
    }

    /// Random nonlinear critics f(x) = a·tanh(B x) + sin(c·x).
    #[test]
    fn prop33_identity_for_nonlinear_critics(
        (p0, p1) in prop_oneof![gaussian_pair(2), discrete_pair(1), mixed_pair()],
        si in interpolant(),
        t in 0.0f64..=0.5,
        coef in prop::collection::vec(-2.0f64..2.0, 6),
        seed in 0u64..1000,
    ) {
        let d = p0.dim();
        let f = move |_t: f64, x: &[f64], out: &mut [f64]| {
            for i in 0..d {
                let s: f64 = (0..d).map(|k| coef[(i + 2 * k) % 6] * x[k]).sum();
                out[i] = coef[5] * s.tanh() + (coef[4] * x[i]).sin();
            }
        };
        check_identity(&p0, &p1, &si, t, &f, seed)?;
    }

    /// The maximizer: J(m_t) = D(t). With the exact field as critic the variational estimate
    /// must match the exact value (and the Rao–Blackwell estimate of the same quantity).
    #[test]
    fn prop33_exact_field_attains_d_t(
        (p0, p1) in prop_oneof![gaussian_pair(2), discrete_pair(1), mixed_pair()],
        si in interpolant(),
        t in 0.0f64..=0.5,
        seed in 0u64..1000,
    ) {
        let field = displacement_field(&p0, &p1, &si, t, Observation::Flipped).unwrap();
        let f = |_t: f64, x: &[f64], out: &mut [f64]| {
            let mut s = field.scratch();
            field.eval_into(x, out, &mut s).unwrap();
        };
        let setup = Setup::new(&p0, &p1, &si).at(TimeLaw::Fixed(t));
        let j = variational(&setup, &f, N, seed).unwrap();
        let rb = rao_blackwell(&setup, N, seed ^ 0x5555).unwrap();
        let d = d_t(&p0, &p1, &si, t, &ExactOptions::default()).unwrap();
        prop_assert!((j.estimate - d.value).abs() <= 6.0 * j.std_error + d.error_bound + 1e-12, "J(m) = {j:?}, D = {d:?}");
        prop_assert!((rb.estimate - d.value).abs() <= 6.0 * rb.std_error + d.error_bound + 1e-12, "RB = {rb:?}, D = {d:?}");
    }
}
