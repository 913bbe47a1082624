//! Distances between generated samples and the target.
//!
//! * [`energy_distance`]: `2E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖` (Székely & Rizzo), with the
//!   within-sample terms as U-statistics, so it is unbiased and ≈ 0 for equal laws.
//! * [`energy_ratio`]: how much farther the generated sample is from fresh target draws than
//!   an independent target sample of the same size is (V-statistic energy distances; ≈ 1 for
//!   a perfect generator, whatever the sample size).
//! * [`binned_tv`]: total variation between 2-D histograms on a fine grid, beside that of an
//!   independent target sample: sensitive to what the energy distance averages away (mass
//!   squeezed onto thin curves, a roll's width lost).
//! * [`heldout_tmid`]: a held-out variational estimate of `D_t-mid^{I,σ}` (Eq. 8) between two
//!   sample sets: a fresh critic is fitted on one half of each set by Algorithm 1's critic step,
//!   and Prop. 3.3's objective `∫₀^½ J(f) dt` is averaged over the other half. By Prop. 3.3
//!   `J(f) = D − E‖f − m_t‖²`, so the estimate is a **lower bound** of `D_t-mid` in expectation
//!   (up to its standard error): a perfect critic would make it unbiased.
//! * [`core_tmid`]: the core crate's cross-fitted estimate of the same `D_t-mid`
//!   ([`midpoint::estimate`]: random-Fourier-feature ridge critics, 2 folds, with its standard
//!   error and the sign-flip p-value of `H0: p_generated = p_target`). It is also a lower
//!   bound in expectation (Prop. 3.3), with an entirely different critic, so it cross-checks
//!   [`heldout_tmid`]: the better-fitted critic gives the larger value.
//! * [`gaussian_fit_tmid`]: the exact `D_t-mid` (core crate) between the Gaussian with the
//!   samples' mean and covariance and a Gaussian target; it only sees the first two moments.

use crate::error::TrainError;
use crate::methods::mgm::{Mgm, MgmConfig, Variant};
use crate::toy::critic_check::{new_critic, train_critic, variational_value, CriticFit, McValue};
use crate::train::bridge::array_tensor;
use crate::train::progress::Progress;
use midpoint::divergence::{d_tmid, ExactOptions};
use midpoint::estimate::{estimate_with_progress, DivergenceKind, EstimateOptions, EstimateReport};
use midpoint::{Evaluation, Gaussian, Law, StochasticInterpolant};
use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

fn dist(a: ndarray::ArrayView1<'_, f64>, b: ndarray::ArrayView1<'_, f64>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// Mean distance between rows of `x` and rows of `y`; within one set (`same`) over pairs
/// `i ≠ j` only. Row sums are computed in parallel but added in row order, so the result does
/// not depend on the thread count or scheduling.
fn mean_distance(x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>, same: bool) -> f64 {
    let rows: Vec<f64> = (0..x.nrows())
        .into_par_iter()
        .map(|i| {
            let xi = x.row(i);
            (0..y.nrows())
                .filter(|&j| !(same && i == j))
                .map(|j| dist(xi, y.row(j)))
                .sum::<f64>()
        })
        .collect();
    let total: f64 = rows.iter().sum();
    let pairs = if same {
        x.nrows() * (x.nrows() - 1)
    } else {
        x.nrows() * y.nrows()
    };
    total / pairs as f64
}

/// Energy distance `2E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖` between the rows of `x` and `y`
/// (U-statistics within each set; `O(n·m)` distances). Needs at least 2 rows each and equal
/// dimensions.
///
/// ```
/// use ndarray::array;
/// let x = array![[0.0], [1.0]];
/// let y = array![[3.0], [4.0]];
/// // 2·mean(3, 4, 2, 3) − 1 − 1 = 4.
/// let e = midpoint_train::toy::metrics::energy_distance(x.view(), y.view()).unwrap();
/// assert!((e - 4.0).abs() < 1e-12);
/// ```
pub fn energy_distance(x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> Result<f64, TrainError> {
    if x.ncols() != y.ncols() {
        return Err(TrainError::InvalidOption(format!(
            "samples of dimension {} and {}",
            x.ncols(),
            y.ncols()
        )));
    }
    if x.nrows() < 2 || y.nrows() < 2 {
        return Err(TrainError::InvalidOption(
            "energy distance needs at least 2 samples on each side".into(),
        ));
    }
    Ok(2.0 * mean_distance(x, y, false) - mean_distance(x, x, true) - mean_distance(y, y, true))
}

/// The generated sample's distance to fresh target draws against that of an independent
/// target sample of the same size: the "as good as more data" yardstick of a toy run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EnergyRatio {
    /// Rows of the generated (and of the independent) sample.
    pub n: usize,
    /// Rows of the reference sample.
    pub h: usize,
    /// V-statistic energy distance between the generated and the reference sample.
    pub generated: f64,
    /// The expected V-statistic energy distance of an independent target sample of `n` rows
    /// to the reference, `Ê‖Y − Y'‖·(1/n + 1/h)` (the sampling floor; `Ê` the U-statistic mean
    /// distance within the reference).
    pub floor: f64,
    /// `generated / floor`: ≈ 1 for a perfect generator, ≈ `1 + ED(p_θ, p)/floor` otherwise.
    pub ratio: f64,
    /// The realized V-statistic distance of the independent sample (or a law file's atoms) to
    /// the reference.
    pub independent: f64,
    /// `independent / floor`: a check of the floor (≈ 1, but with a spread of tens of percent:
    /// a degenerate V-statistic is a weighted sum of χ²₁ variables, which is why the ratio is
    /// taken to its expectation rather than to this one draw).
    pub independent_ratio: f64,
}

/// [`EnergyRatio`] of `generated` and `independent` (both of `n` rows) against `reference`
/// (fresh or held-out target draws, any number `h ≥ 2` of rows).
///
/// Distances are V-statistics (the `i = j` pairs, at distance 0, kept in the within-set means),
/// `V = 2·m(x, y) − m_V(x, x) − m_V(y, y)`, which are ≥ 0 and have expectation
/// `ED(p, q) + E‖X − X'‖/n + E‖Y − Y'‖/h`. For an independent target sample that is the floor
/// `E‖Y − Y'‖·(1/n + 1/h)`, so the ratio is ≈ `1 + ED(p_θ, p)/floor`: 1 for a perfect
/// generator, ≤ 2 when the generator's excess distance is within the sampling floor of `n`
/// target draws.
pub fn energy_ratio(
    generated: ArrayView2<'_, f64>,
    independent: ArrayView2<'_, f64>,
    reference: ArrayView2<'_, f64>,
) -> Result<EnergyRatio, TrainError> {
    let n = generated.nrows();
    if independent.nrows() != n {
        return Err(TrainError::InvalidOption(format!(
            "energy ratio needs a generated and an independent sample of equal size, got {n} and {}",
            independent.nrows()
        )));
    }
    // Checks the dimensions and the sizes.
    energy_distance(
        generated.slice(ndarray::s![..2, ..]),
        reference.slice(ndarray::s![..2, ..]),
    )?;
    energy_distance(
        independent.slice(ndarray::s![..2, ..]),
        reference.slice(ndarray::s![..2, ..]),
    )?;
    let h = reference.nrows();
    let within_v = |x: ArrayView2<'_, f64>| {
        let k = x.nrows() as f64;
        mean_distance(x, x, true) * (k - 1.0) / k
    };
    let reference_u = mean_distance(reference, reference, true);
    let reference_within = reference_u * (h as f64 - 1.0) / h as f64;
    let v = |x: ArrayView2<'_, f64>| {
        2.0 * mean_distance(x, reference, false) - within_v(x) - reference_within
    };
    let floor = reference_u * (1.0 / n as f64 + 1.0 / h as f64);
    let (generated, independent) = (v(generated), v(independent));
    Ok(EnergyRatio {
        n,
        h,
        generated,
        floor,
        ratio: generated / floor,
        independent,
        independent_ratio: independent / floor,
    })
}

/// Total variation distance between the 2-D histograms of two samples, beside that of an
/// independent target sample (the floor of a perfect generator at this sample size).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BinnedTv {
    /// Bins per axis over the reference sample's bounding box (plus one outside bin).
    pub bins: usize,
    /// `½ Σ_b |p̂_gen(b) − p̂_ref(b)|`.
    pub generated: f64,
    /// The same for the independent target sample.
    pub independent: f64,
    /// `generated / independent`.
    pub ratio: f64,
}

/// [`BinnedTv`] on a `bins × bins` grid spanning the bounding box of `reference` (points
/// outside fall in one extra bin), for 2-D samples of equal size `generated` and
/// `independent`; `None` in other dimensions.
pub fn binned_tv(
    generated: ArrayView2<'_, f64>,
    independent: ArrayView2<'_, f64>,
    reference: ArrayView2<'_, f64>,
    bins: usize,
) -> Option<BinnedTv> {
    if reference.ncols() != 2 || generated.ncols() != 2 || independent.ncols() != 2 || bins == 0 {
        return None;
    }
    let lo = [0, 1].map(|j| reference.column(j).fold(f64::INFINITY, |a, &b| a.min(b)));
    let hi = [0, 1].map(|j| {
        reference
            .column(j)
            .fold(f64::NEG_INFINITY, |a, &b| a.max(b))
    });
    let hist = |x: ArrayView2<'_, f64>| {
        let mut h = vec![0.0; bins * bins + 1];
        for r in x.rows() {
            let cell = |j: usize| {
                let u = (r[j] - lo[j]) / (hi[j] - lo[j]);
                (0.0..=1.0)
                    .contains(&u)
                    .then(|| ((u * bins as f64) as usize).min(bins - 1))
            };
            let k = match (cell(0), cell(1)) {
                (Some(a), Some(b)) => a * bins + b,
                _ => bins * bins,
            };
            h[k] += 1.0 / x.nrows() as f64;
        }
        h
    };
    let tv = |a: &[f64], b: &[f64]| 0.5 * a.iter().zip(b).map(|(p, q)| (p - q).abs()).sum::<f64>();
    let r = hist(reference);
    let (generated, independent) = (tv(&hist(generated), &r), tv(&hist(independent), &r));
    Some(BinnedTv {
        bins,
        generated,
        independent,
        ratio: generated / independent,
    })
}

/// The Gaussian with the sample mean and (unbiased) sample covariance of the rows of `x`.
pub fn gaussian_fit(x: ArrayView2<'_, f64>) -> Result<Gaussian, TrainError> {
    let n = x.nrows();
    if n < 2 {
        return Err(TrainError::InvalidOption(
            "a Gaussian fit needs at least 2 samples".into(),
        ));
    }
    let mean = x.mean_axis(Axis(0)).expect("n ≥ 2");
    let c = &x - &mean;
    let cov = c.t().dot(&c) / (n as f64 - 1.0);
    Ok(Gaussian::new(mean, cov)?)
}

/// Exact `D_t-mid^{I,σ}` (core crate, Eq. 8) between the Gaussian fit of `generated` and
/// `target`, with `generated` as `p0` (the generator side of Eq. 9).
pub fn gaussian_fit_tmid(
    generated: ArrayView2<'_, f64>,
    target: &Law,
    si: &StochasticInterpolant,
) -> Result<Evaluation, TrainError> {
    let fit: Law = gaussian_fit(generated)?.into();
    Ok(d_tmid(&fit, target, si, &ExactOptions::default())?)
}

/// The core crate's estimate of `D_t-mid^{lin,σ}(p_generated, p_target)` (Eq. 8) from two
/// sample sets ([`midpoint::estimate`] with its defaults: RFF ridge critics cross-fitted over 2
/// folds, sign-flip test with 1000 resamples), `generated` as `X0`. `seed` fixes every random
/// choice; `progress` shows the estimator's stages.
pub fn core_tmid(
    generated: ArrayView2<'_, f64>,
    target: ArrayView2<'_, f64>,
    sigma: f64,
    seed: u64,
    progress: &Progress,
) -> Result<EstimateReport, TrainError> {
    let opts = EstimateOptions {
        divergence: DivergenceKind::TMid,
        interpolant: StochasticInterpolant::linear(sigma)?,
        seed,
        ..EstimateOptions::default()
    };
    let report = estimate_with_progress(generated, target, &opts, &|p| {
        progress.at(p.stage.label(), p.done, p.total)
    })?;
    Ok(report)
}

/// A held-out variational estimate of `D_t-mid` (see [`heldout_tmid`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HeldOut {
    /// `∫₀^½ J(f) dt` on the held-out halves, with its standard error.
    pub estimate: McValue,
    /// Samples of each set used to fit the critic.
    pub fit_samples: usize,
    /// Held-out pairs.
    pub heldout_pairs: usize,
    /// Critic steps.
    pub steps: usize,
}

/// Held-out variational estimate of `D_t-mid^{lin,σ}(p_generated, p_target)` from two sample
/// sets of equal size `n ≥ 4`: rows are shuffled, the first halves fit a fresh critic
/// ([`new_critic`], [`train_critic`] with `fit`), and the second halves are paired
/// row by row (one draw of `(t, b, ε)` per pair, so the held-out terms are independent and the
/// standard error is honest). A lower bound of the divergence in expectation (Prop. 3.3).
pub fn heldout_tmid(
    generated: ArrayView2<'_, f64>,
    target: ArrayView2<'_, f64>,
    sigma: f64,
    fit: &CriticFit,
    device: Device,
    progress: &Progress,
) -> Result<HeldOut, TrainError> {
    let (n, d) = generated.dim();
    if target.dim() != (n, d) || n < 4 {
        return Err(TrainError::InvalidOption(format!(
            "held-out estimate needs two sample sets of the same shape with at least 4 rows, got {:?} and {:?}",
            generated.dim(),
            target.dim()
        )));
    }
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(fit.seed);
    let shuffled = |x: ArrayView2<'_, f64>, rng: &mut rand_xoshiro::Xoshiro256PlusPlus| {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.shuffle(rng);
        x.select(Axis(0), &idx)
    };
    let g: Array2<f64> = shuffled(generated, &mut rng);
    let y: Array2<f64> = shuffled(target, &mut rng);
    let half = n / 2;
    let (g_fit, g_test) = (
        array_tensor(&g.slice(ndarray::s![..half, ..]), device),
        array_tensor(&g.slice(ndarray::s![half.., ..]), device),
    );
    let (y_fit, y_test) = (
        array_tensor(&y.slice(ndarray::s![..half, ..]), device),
        array_tensor(&y.slice(ndarray::s![half.., ..]), device),
    );

    fit.validate()?;
    tch::manual_seed(fit.seed as i64);
    let mgm = Mgm::new(&MgmConfig::linear(Variant::Mgm, sigma))?;
    let mut critic = new_critic(d as i64, fit, device)?;
    let fit_n = half as i64;
    let mut pairs = |b: i64| -> Result<(Tensor, Tensor), TrainError> {
        let i = Tensor::randint(fit_n, [b], (Kind::Int64, device));
        let j = Tensor::randint(fit_n, [b], (Kind::Int64, device));
        Ok((g_fit.index_select(0, &i), y_fit.index_select(0, &j)))
    };
    train_critic(&mgm, &mut critic, fit, &mut pairs, progress)?;

    let test_n = (n - half) as i64;
    let mut next = 0i64;
    let mut heldout = |b: i64| -> Result<(Tensor, Tensor), TrainError> {
        let b = b.min(test_n - next);
        let out = (g_test.narrow(0, next, b), y_test.narrow(0, next, b));
        next += b;
        Ok(out)
    };
    let estimate = variational_value(&mgm, &critic.net, &mut heldout, test_n as usize)?;
    Ok(HeldOut {
        estimate,
        fit_samples: half,
        heldout_pairs: test_n as usize,
        steps: fit.steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn binned_tv_by_hand() {
        // Reference box [0, 1]²; 2 bins per axis. reference: one point per quadrant;
        // generated: all four in the lower-left quadrant → TV = ½(¾ + ¼·3) = ¾;
        // independent = reference → 0 (ratio ∞); a 1-D sample → None.
        let r = array![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
        let g = array![[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.4, 0.4]];
        let w = array![[0.1, 0.1], [0.9, 0.1], [0.1, 0.9], [2.0, 2.0]];
        let t = binned_tv(g.view(), w.view(), r.view(), 2).unwrap();
        assert!((t.generated - 0.75).abs() < 1e-12);
        // w: one point outside the box (its own bin) and one missing from the upper right:
        // ½(0 + 0 + 0 + ¼ + ¼) = ¼.
        assert!((t.independent - 0.25).abs() < 1e-12 && (t.ratio - 3.0).abs() < 1e-12);
        assert!(binned_tv(array![[1.0]].view(), w.view(), r.view(), 2).is_none());
    }

    #[test]
    fn energy_ratio_by_hand() {
        // reference y = {1, 5}, generated x = {0, 2}, independent w = {1, 4} (1-D).
        // V(x, y) = 2·2.5 − (0 + 2 + 2 + 0)/4 − (0 + 4 + 4 + 0)/4 = 5 − 1 − 2 = 2;
        // V(w, y) = 2·mean(0, 4, 3, 1) − (0 + 3 + 3 + 0)/4 − 2 = 4 − 1.5 − 2 = 0.5;
        // floor = E|Y − Y'|·(1/2 + 1/2) = 4 (U-statistic: the one pair at distance 4).
        let y = array![[1.0], [5.0]];
        let r = energy_ratio(
            array![[0.0], [2.0]].view(),
            array![[1.0], [4.0]].view(),
            y.view(),
        )
        .unwrap();
        assert!((r.generated - 2.0).abs() < 1e-12 && (r.independent - 0.5).abs() < 1e-12);
        assert!((r.floor - 4.0).abs() < 1e-12 && (r.ratio - 0.5).abs() < 1e-12);
        assert!((r.independent_ratio - 0.125).abs() < 1e-12 && r.n == 2 && r.h == 2);
        let w = array![[1.0], [4.0]];
        assert!(energy_ratio(w.view(), array![[1.0]].view(), y.view()).is_err());
        assert!(energy_ratio(w.view(), w.view(), array![[1.0, 2.0], [3.0, 4.0]].view()).is_err());
        // A reference of another size: y' = {1, 5, 3}. V(x, y') = 2·mean(1,5,3,1,3,1)
        // − 1 − (0+4+2+4+0+2+2+2+0)/9 = 14/3 − 1 − 16/9 = 17/9; floor = (8/3)·(1/2 + 1/3).
        let y3 = array![[1.0], [5.0], [3.0]];
        let r = energy_ratio(array![[0.0], [2.0]].view(), w.view(), y3.view()).unwrap();
        assert!((r.generated - 17.0 / 9.0).abs() < 1e-12, "{}", r.generated);
        assert!((r.floor - 8.0 / 3.0 * (0.5 + 1.0 / 3.0)).abs() < 1e-12);
    }

    /// The floor is the expectation of an independent sample's V-statistic: for `N(0, 1)`
    /// samples (`E|Y − Y'| = 2/√π`) the mean of `independent_ratio` over 200 replications is
    /// 1 within 5 standard errors (their spread; false failure ≈ 6e-7).
    #[test]
    fn energy_floor_is_the_expected_distance_of_an_independent_sample() {
        use rand::Rng;
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
        let mut normal = |n: usize| {
            Array2::from_shape_fn((n, 1), |_| rng.sample::<f64, _>(rand_distr::StandardNormal))
        };
        let ratios: Vec<f64> = (0..200)
            .map(|_| {
                let (g, w, y) = (normal(50), normal(50), normal(80));
                energy_ratio(g.view(), w.view(), y.view())
                    .unwrap()
                    .independent_ratio
            })
            .collect();
        let m = ratios.iter().sum::<f64>() / 200.0;
        let sd = (ratios.iter().map(|r| (r - m) * (r - m)).sum::<f64>() / 199.0).sqrt();
        assert!(
            (m - 1.0).abs() < 5.0 * sd / 200f64.sqrt(),
            "mean {m}, sd {sd}"
        );
        assert!(sd > 0.1, "the single draw is noisy: sd {sd}");
    }

    #[test]
    fn energy_distance_by_hand() {
        // x = {0, 2}, y = {1, 5} in 1-D: E|X−Y| = (1 + 5 + 1 + 3)/4 = 2.5, E|X−X'| = 2,
        // E|Y−Y'| = 4, so 2·2.5 − 2 − 4 = −1 (U-statistics can be negative).
        let e = energy_distance(array![[0.0], [2.0]].view(), array![[1.0], [5.0]].view()).unwrap();
        assert!((e + 1.0).abs() < 1e-12);
        // Symmetric, and the 2-D distances are Euclidean: x = {(0,0), (3,4)}, y = {(0,0), (0,0)}:
        // E‖X−Y‖ = (0+0+5+5)/4 = 2.5, E‖X−X'‖ = 5, E‖Y−Y'‖ = 0 → 0.
        let x = array![[0.0, 0.0], [3.0, 4.0]];
        let y = array![[0.0, 0.0], [0.0, 0.0]];
        assert!((energy_distance(x.view(), y.view()).unwrap()).abs() < 1e-12);
        assert!(energy_distance(x.view(), array![[1.0]].view()).is_err());
    }

    #[test]
    fn energy_distance_does_not_depend_on_the_thread_count() {
        // Rounding-level differences between thread pools would make metrics.json of the
        // same run differ from machine to machine; the row sums are added in a fixed order.
        let x = ndarray::Array2::from_shape_fn((997, 2), |(i, j)| ((i * 7 + j) as f64).sin());
        let y = ndarray::Array2::from_shape_fn((1003, 2), |(i, j)| ((i * 3 + j) as f64).cos());
        let with = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| energy_distance(x.view(), y.view()).unwrap())
        };
        let one = with(1);
        for threads in [2, 3, 8] {
            assert_eq!(with(threads).to_bits(), one.to_bits(), "{threads} threads");
        }
    }

    #[test]
    fn gaussian_fit_of_a_gaussian_sample_has_small_tmid() {
        // D_t-mid of the fit is a smooth function of the moment errors (O(1/n)); with n = 20k
        // samples of the target itself it must be far below D_t-mid to a law shifted by 1.
        use rand::SeedableRng;
        let target: Law = Gaussian::new(array![1.0, -1.0], array![[1.0, 0.3], [0.3, 0.5]])
            .unwrap()
            .into();
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let x = target.sample(20_000, &mut rng).unwrap();
        let si = StochasticInterpolant::linear(0.05).unwrap();
        let near = gaussian_fit_tmid(x.view(), &target, &si).unwrap().value;
        let far = gaussian_fit_tmid((&x + 1.0).view(), &target, &si)
            .unwrap()
            .value;
        assert!(near < 1e-3 * far, "near {near}, far {far}");
    }
}
