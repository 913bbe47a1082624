//! Divergence estimation and a two-sample test on users' own samples.
//!
//! Given samples `X0` (`n0 × d`) and `X1` (`n1 × d`), [`estimate`] estimates `D_mid` (Eq. 2),
//! or the generalized `D_t-mid^{I,σ}` (Eq. 8; `D_t-mid` of Def. 3.2 for the linear interpolant
//! with `σ = 0`), through the variational form of Prop. 3.3,
//!
//! ```text
//! D = max_f  ∫ E[ 2⟨f(X̃_t, t), Δ⟩ − ‖f(X̃_t, t)‖² ] dt,      Δ = X1 − X0,
//! ```
//!
//! with a critic `f` fitted by regression of `Δ` on `(X̃_t, t)` and the objective evaluated on
//! held-out data, and tests `H0: p0 = p1` with a sign-flip randomization test built on the
//! flip symmetry of Prop. 3.2.
//!
//! # Procedure
//!
//! 1. **Folds and pairs** ([`pairs`]): the rows of `X0` and the rows of `X1` are each shuffled
//!    and cut into `K` folds; inside fold `k` the fold's `X0` rows are matched at random with
//!    the fold's `X1` rows, giving `min(n0ₖ, n1ₖ)` pairs. Samples left over when `n0 ≠ n1` are
//!    not used (the report counts them): reusing a sample in two pairs would make the pair
//!    terms dependent, which breaks both the standard error and the exactness of the test.
//!    Each pair gets `r` draws of `(t, B, ε)` and so `r` observations
//!    `X̃_t = α·X0 + β·X1 + σ_t·ε` (Eq. 7) with target `Δ`.
//! 2. **Cross-fitting** ([`crossfit`]): the critic of fold `k` is fitted on the pairs of all
//!    other folds. Because the folds split the samples of `X0` and `X1` themselves, the
//!    held-out terms of fold `k` share no sample with the critic's training data, so given the
//!    critic they are i.i.d. with mean `J(f) = D − E‖f − m‖² ≤ D` (Prop. 3.3):
//!    **the estimate is biased downward** by the critic's mean squared error, never upward.
//! 3. **Critics**: random Fourier features with ridge regression ([`rff`], the default) or
//!    k-nearest neighbours ([`knn`]). Hyperparameters (bandwidth and ridge, or `k`) are chosen
//!    by cross-validation on a small *tuning subset* of the training folds' pairs; held-out
//!    squared error `‖Δ − f‖²` is the criterion, which equals `‖Δ‖²` minus the variational
//!    objective pair by pair, so the two criteria pick the same critic.
//! 4. **Estimate and interval**: `V_i` is pair `i`'s average over its draws of
//!    `⟨f_A, Δ⟩ + ⟨f_B, Δ⟩ − ⟨f_A, f_B⟩` (two critics on disjoint halves; `2⟨f, Δ⟩ − ‖f‖²`
//!    with the critic's noise cancelled); the estimate is `mean V` (`D_mid`) or `½ mean V`
//!    (`D_t-mid`, since `∫₀^½ D(t) dt = ½ E_{t~U[0,½]} D(t)`). Its standard error
//!    ([`jackknife`], RFF critic): the delete-a-group jackknife with the critics refitted in
//!    every replicate, so that it sees how the critics move with the data, which `sd(V)/√N`
//!    (exact given the critics, also reported) does not; the interval is `± t_{G−1}·SE`.
//!    For the kNN critic the SE is `sd(V)/√N` and the interval `± 1.96 SE`.
//! 5. **Profile** ([`profile`]): held-out draws binned by `t` give `D(t)` per bin, with
//!    cluster-robust standard errors (draws of one pair form a cluster).
//! 6. **Test** ([`signflip`], [`permutation`]): see [`TestKind`].
//!
//! **Reproducibility.** Every random choice comes from `seed` through per-block streams
//! (SplitMix64-seeded xoshiro, as in [`crate::montecarlo`]); blocks of pairs are processed in
//! parallel and reduced in block order, so results are bit-identical whatever the number of
//! threads.
//!
//! **Files.** The options ([`EstimateOptions`]), errors ([`EstimateError`]), progress
//! ([`Progress`]) and result ([`EstimateReport`]) types each have their own file; this one
//! runs the steps above.
//!
//! ```
//! use midpoint::estimate::{estimate, EstimateOptions};
//! use ndarray::Array2;
//! use rand::SeedableRng;
//! use rand_distr::{Distribution, StandardNormal};
//! let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
//! let mut z = |shift: f64| -> f64 { let e: f64 = StandardNormal.sample(&mut rng); shift + e };
//! let x0 = Array2::from_shape_fn((600, 1), |_| z(0.0));
//! let x1 = Array2::from_shape_fn((600, 1), |_| z(1.0));
//! let r = estimate(x0.view(), x1.view(), &EstimateOptions::default()).unwrap();
//! // Exact D_t-mid (Eq. 8) for N(0,1) vs N(1,1), linear interpolant, σ = 0: 0.5534.
//! assert!(r.estimate < 0.5534 + 5.0 * r.std_error);
//! assert!(r.p_value.unwrap() < 0.01);
//! assert_eq!(r.profile.len(), 10);
//! ```

pub mod cost;
pub(crate) mod crossfit;
#[cfg(feature = "diagnostics")]
mod diagnostics;
mod error;
pub mod jackknife;
pub mod knn;
mod options;
pub mod overlap;
pub mod pairs;
pub mod permutation;
pub mod profile;
mod progress;
mod quantiles;
mod report;
pub mod rff;
pub mod ridge;
pub mod signflip;
pub mod tuning;
mod warnings;

use ndarray::ArrayView2;

#[cfg(feature = "diagnostics")]
pub use diagnostics::signflip_diagnostics;
pub use error::{EstimateError, Sample};
pub use options::{
    CriticKind, DivergenceKind, Draws, EstimateOptions, KnnOptions, RffOptions, TestKind,
};
pub use profile::ProfileBin;
pub use progress::{Progress, Stage};
pub use report::{CriticChoice, EstimateReport, SeMethod};
pub use warnings::{Warning, WarningKind};

use error::check_samples;
use quantiles::{student_t_975, Z95};

/// Estimates the divergence between the laws of `x0` and `x1` (rows are samples) and tests
/// `p0 = p1`. See the module docs for the procedure.
pub fn estimate(
    x0: ArrayView2<'_, f64>,
    x1: ArrayView2<'_, f64>,
    opts: &EstimateOptions,
) -> Result<EstimateReport, EstimateError> {
    estimate_with_progress(x0, x1, opts, &|_| {})
}

/// [`estimate`] with a progress callback (called from the calling thread between units of
/// work; the CLI draws its progress bar from it).
///
/// ```
/// use midpoint::estimate::{estimate_with_progress, EstimateOptions, Stage};
/// use std::sync::Mutex;
/// let x0 = ndarray::Array2::from_shape_fn((200, 1), |(i, _)| (i as f64 * 0.37).sin());
/// let x1 = ndarray::Array2::from_shape_fn((200, 1), |(i, _)| (i as f64 * 0.53).cos());
/// let stages = Mutex::new(Vec::new());
/// let o = EstimateOptions { resamples: Some(50), ..EstimateOptions::default() };
/// estimate_with_progress(x0.view(), x1.view(), &o, &|p| stages.lock().unwrap().push(p.stage))
///     .unwrap();
/// let s = stages.into_inner().unwrap();
/// assert_eq!((s[0], *s.last().unwrap()), (Stage::Tuning, Stage::Testing));
/// ```
pub fn estimate_with_progress(
    x0: ArrayView2<'_, f64>,
    x1: ArrayView2<'_, f64>,
    opts: &EstimateOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<EstimateReport, EstimateError> {
    opts.validate()?;
    check_samples(x0, Sample::X0)?;
    check_samples(x1, Sample::X1)?;
    if x0.ncols() != x1.ncols() {
        return Err(EstimateError::DimensionMismatch {
            d0: x0.ncols(),
            d1: x1.ncols(),
        });
    }
    let mut warnings: Vec<Warning> = overlap::check_independent(x0, x1)?.into_iter().collect();
    let fit = crossfit::run(x0, x1, opts, crossfit::Needs::ALL, progress)?;
    match &opts.critic {
        CriticKind::Rff(_) => {
            warnings.extend(fit.jackknife_skipped.clone());
            warnings.extend(warnings::lower_bound(x0.ncols(), opts.divergence));
        }
        CriticKind::Knn(_) => warnings.push(warnings::conditional_se_knn()),
    }
    let (p_value, statistic) = match opts.test {
        TestKind::None => (None, None),
        TestKind::SignFlip => {
            let q = fit.quadratic.as_ref().expect("sign-flip needs Q");
            let s = signflip::test(q, opts.resamples(), opts.seed, progress);
            debug_assert!(
                (s.statistic - fit.sum_t).abs() <= 1e-8 * (1.0 + fit.sum_t.abs()),
                "1ᵀQ1 = {} but Σ Tᵢ = {}",
                s.statistic,
                fit.sum_t
            );
            (Some(s.p_value), Some(s.statistic))
        }
        TestKind::Permutation => {
            // The whole estimate (tuning, critics, held-out terms) on relabelled samples, with
            // the same seed and no test of its own.
            let inner = EstimateOptions {
                test: TestKind::None,
                ..opts.clone()
            };
            let estimate_of = |a0: ArrayView2<'_, f64>, a1: ArrayView2<'_, f64>| {
                let f = crossfit::run(a0, a1, &inner, crossfit::Needs::ESTIMATE, &|_| {})?;
                Ok(f.estimate)
            };
            let (b, seed) = (opts.resamples(), opts.seed);
            let p = permutation::test(x0, x1, fit.estimate, b, seed, estimate_of, progress)?;
            (Some(p), Some(fit.estimate))
        }
    };
    // The jackknife SE where it ran (Student-t with G − 1 degrees of freedom), else the
    // conditional one (normal quantile).
    let (std_error, quantile, se_method, groups) = match &fit.jackknife {
        Some(j) => (
            j.std_error,
            student_t_975(j.groups - 1),
            SeMethod::Jackknife,
            Some(j.groups),
        ),
        None => (fit.std_error_conditional, Z95, SeMethod::Conditional, None),
    };
    let ci = [
        fit.estimate - quantile * std_error,
        fit.estimate + quantile * std_error,
    ];
    Ok(EstimateReport {
        divergence: opts.divergence,
        estimate: fit.estimate,
        std_error,
        se_method,
        std_error_conditional: fit.std_error_conditional,
        jackknife_groups: groups,
        ci95: ci,
        p_value,
        test: opts.test,
        statistic,
        resamples: if opts.test == TestKind::None {
            0
        } else {
            opts.resamples()
        },
        n0: x0.nrows(),
        n1: x1.nrows(),
        dim: x0.ncols(),
        pairs: fit.pairs,
        unused0: x0.nrows() - fit.pairs,
        unused1: x1.nrows() - fit.pairs,
        folds: opts.folds,
        draws_per_pair: fit.draws,
        interpolant: opts.interpolant.interpolant().name().to_string(),
        noise: opts.interpolant.noise().describe(),
        critic: opts.critic.name().to_string(),
        critic_choices: fit.choices,
        profile: fit.profile,
        seed: opts.seed,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    fn normal(n: usize, d: usize, shift: f64, seed: u64) -> Array2<f64> {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        Array2::from_shape_fn((n, d), |_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            shift + z
        })
    }

    fn opts(critic: CriticKind) -> EstimateOptions {
        EstimateOptions {
            divergence: DivergenceKind::Mid,
            critic,
            seed: 5,
            ..EstimateOptions::default()
        }
    }

    /// The refit claim behind the sign-flip test: swapping the samples of the pairs in a set
    /// of blocks and recomputing everything gives exactly `εᵀQε` of the original data. At
    /// `t = ½` with `σ = 0` both branches of Eq. 7 coincide, so swapping rows *is* the group
    /// action. Would catch any part of the fit (standardization, hyperparameters, Gram) that
    /// depends on the sign of `Δ`, or a wrong `Q`.
    fn check_refit(critic: CriticKind) {
        let x0 = normal(120, 2, 0.0, 1);
        let x1 = normal(120, 2, 0.7, 2);
        let o = opts(critic);
        let fit = crossfit::run(x0.view(), x1.view(), &o, crossfit::Needs::ALL, &|_| {}).unwrap();
        let q = fit.quadratic.as_ref().unwrap();
        let ones = vec![1.0; q.blocks()];
        let s1 = signflip::quadratic_form(q, &ones);
        assert!(
            (s1 - fit.sum_t).abs() <= 1e-9 * (1.0 + fit.sum_t.abs()),
            "{s1} vs {}",
            fit.sum_t
        );
        // Flip every third non-tuning block.
        let design = &fit.design;
        let eps: Vec<f64> = design
            .blocks
            .iter()
            .enumerate()
            .map(|(g, b)| if !b.fixed && g % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let (mut y0, mut y1) = (x0.clone(), x1.clone());
        for (g, b) in design.blocks.iter().enumerate() {
            if eps[g] < 0.0 {
                for p in b.start..b.end {
                    let (i0, i1) = design.pairs[b.fold][p];
                    for c in 0..2 {
                        y0[[i0 as usize, c]] = x1[[i1 as usize, c]];
                        y1[[i1 as usize, c]] = x0[[i0 as usize, c]];
                    }
                }
            }
        }
        let flipped =
            crossfit::run(y0.view(), y1.view(), &o, crossfit::Needs::ESTIMATE, &|_| {}).unwrap();
        let se = signflip::quadratic_form(q, &eps);
        assert!(
            (se - flipped.sum_t).abs() <= 1e-8 * (1.0 + se.abs()),
            "εᵀQε = {se} but the refitted statistic is {}",
            flipped.sum_t
        );
        assert!(
            (se - s1).abs() > 1e-6,
            "the flip should change the statistic"
        );
    }

    #[test]
    fn refit_statistic_is_the_quadratic_form_rff() {
        check_refit(CriticKind::Rff(RffOptions::default()));
    }

    #[test]
    fn refit_statistic_is_the_quadratic_form_knn() {
        check_refit(CriticKind::Knn(KnnOptions::default()));
    }
}
