//! Prop. 3.1, Prop. 3.2 and the symmetries of the divergences (theory/prop-3.1-*.md,
//! theory/prop-3.2-*.md), over random Gaussian and discrete laws.

mod common;

use common::*;
use midpoint::divergence::{d_mid, d_naive, d_t, d_tmid, ExactOptions};
use midpoint::field::displacement_field;
use midpoint::{Law, Observation, StochasticInterpolant};
use proptest::prelude::*;
use rand::SeedableRng;

fn opts() -> ExactOptions {
    ExactOptions::default()
}

/// Points where X̃_t has mass: draws of X̃_t itself (atoms for discrete laws with σ = 0).
fn observed_points(p: &Law, si: &StochasticInterpolant, t: f64, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let x0 = p.sample(16, &mut rng).unwrap();
    let x1 = p.sample(16, &mut rng).unwrap();
    let c = si.branch(t, midpoint::interpolant::Branch::Forward);
    (0..16)
        .map(|i| {
            x0.row(i)
                .iter()
                .zip(x1.row(i))
                .map(|(a, b)| c.alpha * a + c.beta * b)
                .collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Prop. 3.1: with p0 = p1 the Flow Matching velocity vanishes at t = ½ (σ = 0, linear).
    /// Would catch a field with the wrong offset or gain, or unpooled branches.
    #[test]
    fn prop31_midpoint_field_vanishes_for_equal_laws(p in prop_oneof![gaussian_any_dim(4), discrete(2)], seed in 0u64..1000) {
        let si = StochasticInterpolant::linear(0.0).unwrap();
        let v = displacement_field(&p, &p, &si, 0.5, Observation::Unflipped).unwrap();
        let scale = p.second_moment().sqrt() + 1.0;
        for x in observed_points(&p, &si, 0.5, seed) {
            let m = v.eval(ndarray::ArrayView1::from(&x)).unwrap();
            prop_assert!(m.iter().all(|c| c.abs() <= 1e-12 * scale), "v_1/2({x:?}) = {m}");
        }
    }

    /// Prop. 3.2: with p0 = p1 the flipped field vanishes at every t, for any symmetric
    /// interpolant and noise level — while the unflipped one generally does not.
    #[test]
    fn prop32_flipped_field_vanishes_for_equal_laws_at_every_t(
        p in prop_oneof![gaussian_any_dim(4), discrete(2)],
        si in interpolant(),
        t in 0.0f64..=1.0,
        seed in 0u64..1000,
    ) {
        let f = displacement_field(&p, &p, &si, t, Observation::Flipped).unwrap();
        let scale = p.second_moment().sqrt() + 1.0;
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let pts: Vec<Vec<f64>> = if si.noise().is_zero() {
            observed_points(&p, &si, t, seed)
        } else {
            // With noise X̃_t has a density everywhere: any point will do, even far out.
            let z = p.sample(8, &mut rng).unwrap();
            z.rows().into_iter().map(|r| r.iter().map(|v| 3.0 * v).collect()).collect()
        };
        for x in pts {
            let m = f.eval(ndarray::ArrayView1::from(&x)).unwrap();
            prop_assert!(m.iter().all(|c| c.abs() <= 1e-10 * scale), "ṽ_{t}({x:?}) = {m}");
        }
    }

    /// D(p0, p1) = D(p1, p0) for every divergence: swapping the laws maps the B = 0 branch
    /// onto the B = 1 branch and Δ onto −Δ. Would catch a branch with swapped coefficients.
    #[test]
    fn divergences_are_symmetric_in_p0_p1((p0, p1, si) in exact_case(), t in 0.0f64..=1.0) {
        let o = opts();
        let pairs = [
            (d_mid(&p0, &p1, &si, &o).unwrap(), d_mid(&p1, &p0, &si, &o).unwrap()),
            (d_t(&p0, &p1, &si, t, &o).unwrap(), d_t(&p1, &p0, &si, t, &o).unwrap()),
            (d_tmid(&p0, &p1, &si, &o).unwrap(), d_tmid(&p1, &p0, &si, &o).unwrap()),
            (d_naive(&p0, &p1, &si, &o).unwrap(), d_naive(&p1, &p0, &si, &o).unwrap()),
        ];
        for (a, b) in pairs {
            prop_assert!(is_exact(&a) && is_exact(&b));
            prop_assert!(agree(&a, &b, 1e-12), "{a:?} vs {b:?}");
        }
    }

    /// D_mid is symmetric in every dimension (closed form for Gaussians).
    #[test]
    fn d_mid_symmetric_up_to_dimension_four((p0, p1) in gaussian_pair(4), si in interpolant()) {
        let o = opts();
        let (a, b) = (d_mid(&p0, &p1, &si, &o).unwrap(), d_mid(&p1, &p0, &si, &o).unwrap());
        prop_assert!(agree(&a, &b, 1e-12), "{a:?} vs {b:?}");
    }

    /// D(p, p) = 0 for D_mid, D(t) and D_t-mid (not for the naive integral).
    #[test]
    fn divergence_of_a_law_with_itself_is_zero(
        p in prop_oneof![gaussian_any_dim(4), discrete(2)],
        si in interpolant(),
        t in 0.0f64..=1.0,
    ) {
        let o = opts();
        // p0 = p1 pools every pair of branches into a zero-field component: exact in any d.
        let scale = 1e-12 * (p.second_moment() + 1.0);
        for e in [
            d_mid(&p, &p, &si, &o).unwrap(),
            d_t(&p, &p, &si, t, &o).unwrap(),
            d_tmid(&p, &p, &si, &o).unwrap(),
        ] {
            prop_assert!(e.value.abs() <= scale + e.error_bound, "{e:?}");
        }
    }

    /// D(t) = D(1 − t): the flip makes the observation model at t and 1 − t the same mixture.
    #[test]
    fn flip_symmetry_d_t_equals_d_one_minus_t((p0, p1, si) in exact_case(), t in 0.0f64..=1.0) {
        let o = opts();
        let a = d_t(&p0, &p1, &si, t, &o).unwrap();
        let b = d_t(&p0, &p1, &si, 1.0 - t, &o).unwrap();
        prop_assert!(agree(&a, &b, 1e-12), "D({t}) = {a:?}, D({}) = {b:?}", 1.0 - t);
    }
}
