//! Library tests of `midpoint::estimate`: estimates against exact values, null calibration of
//! the sign-flip test, thread-count invariance, and every bad-input error.

use midpoint::divergence::{d_mid, d_tmid, ExactOptions};
use midpoint::estimate::{
    estimate, CriticKind, DivergenceKind, EstimateError, EstimateOptions, KnnOptions, Sample,
    TestKind,
};
use midpoint::law::{Gaussian, Law};
use midpoint::StochasticInterpolant;
use ndarray::{array, Array1, Array2};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

fn draw(law: &Law, n: usize, seed: u64) -> Array2<f64> {
    law.sample(n, &mut Xoshiro256PlusPlus::seed_from_u64(seed))
        .unwrap()
}

fn gauss(mean: Vec<f64>, var: f64) -> Law {
    Gaussian::isotropic(Array1::from(mean), var).unwrap().into()
}

fn base(kind: DivergenceKind, test: TestKind, seed: u64) -> EstimateOptions {
    EstimateOptions {
        divergence: kind,
        test,
        resamples: Some(100),
        seed,
        ..EstimateOptions::default()
    }
}

/// D_mid between N(0,1) and N(1,1) is exactly 1 (closed form, checked against the core crate).
/// The field is the constant 1, which the critic's constant feature represents exactly, so the
/// critic error E‖f − m‖² is O(M/n) ≈ 0.02·SE² here; the tolerance is 5 SE (false failure
/// ≈ 6e-7 for a normal estimate).
#[test]
fn d_mid_matches_exact_value_on_gaussians() {
    let (p0, p1) = (gauss(vec![0.0], 1.0), gauss(vec![1.0], 1.0));
    let si = StochasticInterpolant::linear(0.0).unwrap();
    let exact = d_mid(&p0, &p1, &si, &ExactOptions::default())
        .unwrap()
        .value;
    assert!((exact - 1.0).abs() < 1e-12);
    let r = estimate(
        draw(&p0, 4000, 1).view(),
        draw(&p1, 4000, 2).view(),
        &base(DivergenceKind::Mid, TestKind::SignFlip, 3),
    )
    .unwrap();
    assert!(
        (r.estimate - exact).abs() < 5.0 * r.std_error,
        "{} ± {}",
        r.estimate,
        r.std_error
    );
    assert!(r.p_value.unwrap() <= 1.0 / 101.0 + 1e-15);
    assert_eq!((r.n0, r.n1, r.dim, r.pairs), (4000, 4000, 1, 4000));
}

/// D_t-mid between N(0, I₂) and N((1, 0), I₂) (quadrature, core crate). The field is not
/// constant for t ≠ ½, so the held-out value is biased *down* by the critic's squared bias
/// ‖E f − m‖² (docs/two-sample.md, "Which way the bias goes"): the check is
/// one-sided beyond 5 SE (estimate ≤ exact + 5 SE) and allows the critic error below
/// (estimate ≥ exact − 5 SE − 0.1·exact, the bias budget measured in docs/two-sample.md at
/// this n is under 5% of the value).
#[test]
fn d_tmid_matches_exact_value_from_below() {
    let (p0, p1) = (gauss(vec![0.0, 0.0], 1.0), gauss(vec![1.0, 0.0], 1.0));
    let si = StochasticInterpolant::linear(0.0).unwrap();
    let exact = d_tmid(&p0, &p1, &si, &ExactOptions::default())
        .unwrap()
        .value;
    let r = estimate(
        draw(&p0, 4000, 4).view(),
        draw(&p1, 4000, 5).view(),
        &base(DivergenceKind::TMid, TestKind::None, 6),
    )
    .unwrap();
    assert!(
        r.estimate <= exact + 5.0 * r.std_error,
        "{} vs {exact}",
        r.estimate
    );
    assert!(
        r.estimate >= exact - 5.0 * r.std_error - 0.1 * exact,
        "{} vs {exact}",
        r.estimate
    );
    assert_eq!(r.profile.len(), 10);
    assert!(r.p_value.is_none());
}

/// 10-D `D_t-mid` between `N(0, I)` and `N(𝟙/√10, I)` (exact 0.829421, quadrature). Near `t = 0`
/// the field is close to a quadratic in `x̃` with a large noise-to-signal ratio, the case where
/// a single critic's `2⟨f, Δ⟩ − ‖f‖²` was low by its whole mean squared error (0.38 for 0.83
/// at `n = 10³`: docs/two-sample.md). With two critics on disjoint halves only the critic's
/// squared bias remains (about −0.03 at `n = 10³`, 200 replications). Two-sided 5 SE: the
/// reported SE is the jackknife one, which at `n = 10³` is about 1.3× the sd across
/// replications (docs/two-sample.md, coverage table), so 5 SE ≈ 6 sd; with the remaining
/// bias (a quarter of an sd) the false-failure probability is below 1e-8. Also checks that
/// the RFF default reports the jackknife SE and that it is not below the conditional one
/// by more than its own sampling error (about 1/√(2(G−1)) ≈ 11% relative for G = 40): the
/// critics' variation only adds to the spread.
#[test]
fn d_tmid_in_ten_dimensions_is_not_dragged_down_by_critic_noise() {
    let p0: Law = Gaussian::isotropic(Array1::zeros(10), 1.0).unwrap().into();
    let p1: Law = Gaussian::isotropic(Array1::from_elem(10, 10f64.sqrt().recip()), 1.0)
        .unwrap()
        .into();
    let si = StochasticInterpolant::linear(0.0).unwrap();
    let exact = d_tmid(&p0, &p1, &si, &ExactOptions::default())
        .unwrap()
        .value;
    assert!((exact - 0.829421).abs() < 1e-5, "{exact}");
    let r = estimate(
        draw(&p0, 2000, 31).view(),
        draw(&p1, 2000, 32).view(),
        &base(DivergenceKind::TMid, TestKind::None, 33),
    )
    .unwrap();
    assert!(
        (r.estimate - exact).abs() < 5.0 * r.std_error,
        "{} ± {} vs {exact}",
        r.estimate,
        r.std_error
    );
    assert_eq!(r.se_method, midpoint::estimate::SeMethod::Jackknife);
    assert!(r.jackknife_groups.is_some_and(|g| g >= 30));
    assert!(
        r.std_error > 0.6 * r.std_error_conditional,
        "jackknife {} vs conditional {}",
        r.std_error,
        r.std_error_conditional
    );
}

/// Under H0 the sign-flip test is exact: P(p ≤ 0.05) ≤ 0.05. Over 200 replications the
/// number of rejections is at most Binomial(200, 0.05) (mean 10, sd 3.08); failing needs ≥ 28
/// rejections, probability 5e-6 for an exact test. A test that ignored the cross-fold
/// dependence rejects about twice as often (docs/two-sample.md) and would fail.
#[test]
fn signflip_test_holds_its_level_under_the_null() {
    let p = gauss(vec![0.0], 1.0);
    let mut rejections = 0;
    for rep in 0..200u64 {
        let r = estimate(
            draw(&p, 150, 1000 + 2 * rep).view(),
            draw(&p, 150, 1001 + 2 * rep).view(),
            &base(DivergenceKind::TMid, TestKind::SignFlip, rep),
        )
        .unwrap();
        let pv = r.p_value.unwrap();
        assert!((1.0 / 101.0..=1.0).contains(&pv));
        rejections += (pv <= 0.05) as usize;
    }
    assert!(
        rejections <= 27,
        "{rejections} of 200 null replications rejected at 5%"
    );
}

/// The kNN critic and the permutation test end to end on a clear difference.
#[test]
fn knn_critic_and_permutation_test_detect_a_shift() {
    let (p0, p1) = (gauss(vec![0.0], 1.0), gauss(vec![1.5], 1.0));
    let o = EstimateOptions {
        critic: CriticKind::Knn(KnnOptions::default()),
        test: TestKind::Permutation,
        resamples: Some(19),
        ..base(DivergenceKind::Mid, TestKind::Permutation, 1)
    };
    let r = estimate(draw(&p0, 300, 1).view(), draw(&p1, 300, 2).view(), &o).unwrap();
    // Exact D_mid = 2.25; the kNN estimate is within 5 SE plus its smoothing bias.
    assert!(
        (r.estimate - 2.25).abs() < 5.0 * r.std_error + 0.25,
        "{}",
        r.estimate
    );
    // Every permuted estimate is near 0, far below 2: p is the smallest possible, 1/20.
    assert_eq!(r.p_value, Some(0.05));
    assert_eq!(r.critic_choices.len(), 2);
    assert!(r.critic_choices[0].k.is_some());
}

/// Results must not depend on the number of threads (fixed blocks, per-block streams,
/// fixed-order reductions).
#[test]
fn results_do_not_depend_on_thread_count() {
    let (p0, p1) = (gauss(vec![0.0, 0.0], 1.0), gauss(vec![0.5, 0.0], 2.0));
    let (x0, x1) = (draw(&p0, 1200, 7), draw(&p1, 1000, 8));
    let run = |threads: usize, critic: CriticKind| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let o = EstimateOptions {
                critic,
                ..base(DivergenceKind::TMid, TestKind::SignFlip, 9)
            };
            serde_json::to_string(&estimate(x0.view(), x1.view(), &o).unwrap()).unwrap()
        })
    };
    for critic in [
        CriticKind::Rff(Default::default()),
        CriticKind::Knn(KnnOptions::default()),
    ] {
        let one = run(1, critic.clone());
        assert_eq!(
            one,
            run(3, critic),
            "report differs between 1 and 3 threads"
        );
        assert!(one.contains("\"unused0\":200"));
    }
}

#[test]
fn bad_inputs_get_typed_errors() {
    let good = Array2::<f64>::zeros((100, 2));
    let o = EstimateOptions::default();
    let mut nan = good.clone();
    nan[[7, 1]] = f64::NAN;
    assert_eq!(
        estimate(good.view(), nan.view(), &o).unwrap_err(),
        EstimateError::NonFinite {
            which: Sample::X1,
            row: 7,
            col: 1
        }
    );
    let mut inf = good.clone();
    inf[[0, 0]] = f64::INFINITY;
    assert!(matches!(
        estimate(inf.view(), good.view(), &o).unwrap_err(),
        EstimateError::NonFinite {
            which: Sample::X0,
            row: 0,
            col: 0
        }
    ));
    let three = Array2::<f64>::zeros((100, 3));
    assert_eq!(
        estimate(good.view(), three.view(), &o).unwrap_err(),
        EstimateError::DimensionMismatch { d0: 2, d1: 3 }
    );
    let empty = Array2::<f64>::zeros((0, 2));
    assert!(matches!(
        estimate(empty.view(), good.view(), &o).unwrap_err(),
        EstimateError::Empty {
            which: Sample::X0,
            ..
        }
    ));
    let few = Array2::<f64>::zeros((15, 2));
    let e = estimate(good.view(), few.view(), &o).unwrap_err();
    assert!(matches!(
        e,
        EstimateError::TooFewSamples {
            which: Sample::X1,
            n: 15,
            need: 16,
            ..
        }
    ));
    assert!(e.to_string().contains("too few"));
    let bad_folds = EstimateOptions {
        folds: 1,
        ..EstimateOptions::default()
    };
    assert!(matches!(
        estimate(good.view(), good.view(), &bad_folds).unwrap_err(),
        EstimateError::InvalidOption(_)
    ));
    let zero_resamples = EstimateOptions {
        resamples: Some(0),
        ..EstimateOptions::default()
    };
    assert!(matches!(
        estimate(good.view(), good.view(), &zero_resamples).unwrap_err(),
        EstimateError::InvalidOption(_)
    ));
    // Constant data is valid input: the estimate is 0 with SE 0 and p = 1.
    let r = estimate(
        good.view(),
        good.view(),
        &EstimateOptions {
            resamples: Some(20),
            ..o
        },
    )
    .unwrap();
    assert_eq!((r.estimate, r.std_error), (0.0, 0.0));
    assert_eq!(r.p_value, Some(1.0));
    let _ = array![0.0];
}
