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

pub(crate) mod crossfit;
pub mod jackknife;
pub mod knn;
pub mod pairs;
pub mod permutation;
pub mod profile;
pub mod rff;
pub mod signflip;

use crate::interpolant::{InterpolantError, StochasticInterpolant};
use ndarray::ArrayView2;

pub use profile::ProfileBin;

/// Which divergence to estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DivergenceKind {
    /// `D_mid = D(½)` (Eq. 2): every draw at `t = ½`.
    Mid,
    /// `D_t-mid^{I,σ} = ∫₀^½ D(t) dt` (Eq. 8): `t ~ U[0, ½]`, estimate `½·mean`.
    TMid,
}

impl DivergenceKind {
    /// The default undersmoothing of the RFF critic (see [`RffOptions::undersmooth`]).
    ///
    /// ```
    /// use midpoint::estimate::DivergenceKind;
    /// assert_eq!(DivergenceKind::TMid.default_undersmooth(), 0.003);
    /// ```
    pub fn default_undersmooth(&self) -> f64 {
        match self {
            DivergenceKind::Mid => 0.01,
            DivergenceKind::TMid => 0.003,
        }
    }

    /// `c` in `D̂ = c·mean V`: 1 for `mid`, ½ for `tmid` (`∫₀^½ D(t) dt = ½ E_{t~U[0,½]} D(t)`).
    pub(crate) fn scale(&self) -> f64 {
        match self {
            DivergenceKind::Mid => 1.0,
            DivergenceKind::TMid => 0.5,
        }
    }

    /// `mid` or `tmid`.
    pub fn name(&self) -> &'static str {
        match self {
            DivergenceKind::Mid => "mid",
            DivergenceKind::TMid => "tmid",
        }
    }
}

/// Options of the random-Fourier-feature ridge critic ([`rff`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RffOptions {
    /// Number of random Fourier features (default 256; capped at half the critic's training
    /// pairs, and at least 32). A constant, the `d + 1` linear terms, for `d ≤ 21` their
    /// products and, for `d ≤ 10` once the data allow ([`rff::cubic_wanted`]), their cubic
    /// products are added to them. Cross-validation uses at most [`rff::TUNE_FEATURES`].
    pub features: usize,
    /// Bandwidth multipliers tried by cross-validation, in units of `√(d+1)` on standardized
    /// inputs (default `[0.25, 0.5, 1, 2, 4]`). One value disables the search.
    pub bandwidths: Vec<f64>,
    /// Ridge penalties per training draw tried by cross-validation (default `1e-6 … 1`).
    pub ridges: Vec<f64>,
    /// Factor applied to the cross-validated penalty for the final critics: undersmoothing
    /// (`None`, the default: 0.003 for `tmid`, 0.01 for `mid`; 1 keeps the CV choice).
    /// Cross-validation picks the penalty that predicts `Δ` best, trading the critic's bias
    /// against its variance; with the two half critics of the estimate only the bias
    /// (`‖E f − m‖²`) lowers the expected estimate, so a smaller penalty than the
    /// prediction-optimal one is the better trade for the divergence (the usual advice for
    /// plug-in estimates of functionals), up to the point where the critics' noise widens the
    /// interval more than their bias shifts it. Where that point lies depends on the field:
    /// `D_t-mid` integrates down to `t = 0`, where the field is steepest and `D(t)` largest
    /// (three times `D_mid` in the 10-D example of `docs/two-sample.md`), so it is
    /// undersmoothed further; at `t = ½` the field is smooth, and 0.003 there widened the
    /// `D_mid` intervals by a third in one and two dimensions at `n = 10³` for no gain in
    /// coverage (measured in `docs/two-sample.md`).
    pub undersmooth: Option<f64>,
    /// Cubic products `uᵢuⱼuₖ` of the standardized inputs among the features: `None` (default)
    /// decides by [`rff::cubic_wanted`] — once the data can pay for them, as a sieve's degree
    /// grows with `n`; `Some(b)` forces the choice.
    pub cubic: Option<bool>,
}

impl Default for RffOptions {
    fn default() -> Self {
        RffOptions {
            features: 256,
            bandwidths: vec![0.25, 0.5, 1.0, 2.0, 4.0],
            ridges: vec![1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0],
            undersmooth: None,
            cubic: None,
        }
    }
}

/// Options of the k-nearest-neighbour critic ([`knn`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KnnOptions {
    /// Neighbour counts tried by cross-validation (default `[5, 10, 20, 50, 100, 200]`).
    pub ks: Vec<usize>,
}

impl Default for KnnOptions {
    fn default() -> Self {
        KnnOptions {
            ks: vec![5, 10, 20, 50, 100, 200],
        }
    }
}

/// The critic `f(x̃, t) ≈ E[Δ | X̃_t = x̃]`.
#[derive(Debug, Clone, PartialEq)]
pub enum CriticKind {
    /// Random Fourier features in `(x̃, t)` with vector-valued ridge regression.
    Rff(RffOptions),
    /// Mean `Δ` of the `k` nearest training draws in standardized `(x̃, t)`.
    Knn(KnnOptions),
}

impl CriticKind {
    /// `rff` or `knn`.
    pub fn name(&self) -> &'static str {
        match self {
            CriticKind::Rff(_) => "rff",
            CriticKind::Knn(_) => "knn",
        }
    }
}

/// The two-sample test of `H0: p0 = p1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    /// No test.
    None,
    /// Sign-flip randomization (default, exact; [`signflip`]). Under `H0` swapping the two
    /// samples of a pair together with `B → 1 − B` leaves every `X̃_t` unchanged and flips `Δ`
    /// (Prop. 3.2). Both critics are linear in the training targets `Δ`, so the whole
    /// cross-fitted statistic `S = Σᵢ Tᵢ`, `Tᵢ = ⟨f, Δᵢ⟩` averaged over pair `i`'s draws, is
    /// a quadratic form `εᵀQε` in the pair signs with the critics refitted; randomizing `ε`
    /// gives an exact test.
    SignFlip,
    /// Classical permutation test: pool `X0 ∪ X1`, permute labels, recompute the whole
    /// cross-fitted estimate (critics refitted) per permutation; the statistic is the estimate.
    Permutation,
}

impl TestKind {
    /// `none`, `signflip` or `permutation`.
    pub fn name(&self) -> &'static str {
        match self {
            TestKind::None => "none",
            TestKind::SignFlip => "signflip",
            TestKind::Permutation => "permutation",
        }
    }
}

/// Draws of `(t, B, ε)` per pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draws {
    /// `r = clamp(2¹⁷ / pairs, 1, 8)`: several draws per pair while the pairs are few
    /// (the total stays near 131,072); one draw when `σ = 0` and the divergence is `mid`,
    /// where draws would coincide.
    Auto,
    /// Exactly this many (≥ 1).
    Fixed(usize),
}

/// Everything [`estimate`] can be told.
#[derive(Debug, Clone)]
pub struct EstimateOptions {
    /// `mid` or `tmid` (default `tmid`).
    pub divergence: DivergenceKind,
    /// The symmetric stochastic interpolant (default: linear, `σ = 0`).
    pub interpolant: StochasticInterpolant,
    /// The critic (default RFF with cross-validation).
    pub critic: CriticKind,
    /// Number of folds `K ≥ 2` (default 2: each pair is featurized once per pass and each
    /// critic still sees half the data; `K = 5` trains on 80% at about `K/2` times the cost).
    pub folds: usize,
    /// Draws per pair.
    pub draws: Draws,
    /// Test kind (default sign-flip).
    pub test: TestKind,
    /// Random sign vectors or permutations `B` (default: 1000 for sign-flip, 100 for
    /// permutation).
    pub resamples: Option<usize>,
    /// Number of `t` bins of the profile (default 10; `mid` always has one).
    pub profile_bins: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for EstimateOptions {
    fn default() -> Self {
        EstimateOptions {
            divergence: DivergenceKind::TMid,
            interpolant: StochasticInterpolant::linear(0.0).expect("σ = 0 is valid"),
            critic: CriticKind::Rff(RffOptions::default()),
            folds: 2,
            draws: Draws::Auto,
            test: TestKind::SignFlip,
            resamples: None,
            profile_bins: 10,
            seed: 0,
        }
    }
}

impl EstimateOptions {
    /// The number of resamples used by the configured test.
    ///
    /// ```
    /// use midpoint::estimate::{EstimateOptions, TestKind};
    /// let o = EstimateOptions::default();
    /// assert_eq!((o.test, o.resamples()), (TestKind::SignFlip, 1000));
    /// let p = EstimateOptions { test: TestKind::Permutation, ..o };
    /// assert_eq!(p.resamples(), 100);
    /// ```
    pub fn resamples(&self) -> usize {
        self.resamples.unwrap_or(match self.test {
            TestKind::Permutation => 100,
            _ => 1000,
        })
    }

    fn validate(&self) -> Result<(), EstimateError> {
        let bad = |m: &str| Err(EstimateError::InvalidOption(m.to_string()));
        if !(2..=100).contains(&self.folds) {
            return bad("folds must be between 2 and 100");
        }
        if let Draws::Fixed(r) = self.draws {
            if !(1..=1000).contains(&r) {
                return bad("draws per pair must be between 1 and 1000");
            }
        }
        if !(1..=1000).contains(&self.profile_bins) {
            return bad("profile bins must be between 1 and 1000");
        }
        if self.test != TestKind::None && self.resamples() == 0 {
            return bad("the test needs at least one resample");
        }
        match &self.critic {
            CriticKind::Rff(o) => {
                if !(1..=8192).contains(&o.features) {
                    return bad("RFF features must be between 1 and 8192");
                }
                if o.bandwidths.is_empty()
                    || o.bandwidths.iter().any(|&b| !(b > 0.0 && b.is_finite()))
                {
                    return bad(
                        "RFF bandwidths must be a non-empty list of finite positive numbers",
                    );
                }
                if o.ridges.is_empty() || o.ridges.iter().any(|&b| !(b > 0.0 && b.is_finite())) {
                    return bad("RFF ridges must be a non-empty list of finite positive numbers");
                }
                if o.undersmooth.is_some_and(|u| !(u > 0.0 && u <= 1.0)) {
                    return bad("RFF undersmoothing factor must be in (0, 1]");
                }
            }
            CriticKind::Knn(o) => {
                if o.ks.is_empty() || o.ks.contains(&0) {
                    return bad(
                        "kNN neighbour counts must be a non-empty list of positive integers",
                    );
                }
            }
        }
        Ok(())
    }
}

/// Which input sample set an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// `X0`.
    X0,
    /// `X1`.
    X1,
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sample::X0 => "x0",
            Sample::X1 => "x1",
        })
    }
}

/// Why an estimate could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EstimateError {
    /// A sample set without rows or columns.
    #[error("{which}: no samples (the array is {rows}×{cols})")]
    Empty {
        /// Which set.
        which: Sample,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// `X0` and `X1` have different numbers of columns.
    #[error("x0 has dimension {d0} but x1 has dimension {d1}")]
    DimensionMismatch {
        /// Columns of `X0`.
        d0: usize,
        /// Columns of `X1`.
        d1: usize,
    },
    /// A NaN or ±∞ sample value.
    #[error("{which}: non-finite value at row {row}, column {col}")]
    NonFinite {
        /// Which set.
        which: Sample,
        /// 0-based row.
        row: usize,
        /// 0-based column.
        col: usize,
    },
    /// Too few samples for the folds.
    #[error("{which}: {n} samples are too few for {folds} folds (need at least {need}: {per_fold} per fold)")]
    TooFewSamples {
        /// The smaller set.
        which: Sample,
        /// Its size.
        n: usize,
        /// Folds asked for.
        folds: usize,
        /// Samples needed.
        need: usize,
        /// Pairs needed per fold.
        per_fold: usize,
    },
    /// An option out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// From the interpolant.
    #[error(transparent)]
    Interpolant(#[from] InterpolantError),
    /// A linear-algebra failure (e.g. an eigendecomposition did not converge).
    #[error("numerical failure: {0}")]
    Numerical(String),
}

impl EstimateError {
    /// The sample set the error is about, if any (the CLI names its file).
    ///
    /// ```
    /// use midpoint::estimate::{estimate, EstimateError, EstimateOptions, Sample};
    /// let x0 = ndarray::Array2::<f64>::zeros((100, 2));
    /// let mut x1 = x0.clone();
    /// x1[[3, 0]] = f64::NAN;
    /// let e = estimate(x0.view(), x1.view(), &EstimateOptions::default()).unwrap_err();
    /// assert_eq!(e.sample(), Some(Sample::X1));
    /// assert_eq!(e.to_string(), "x1: non-finite value at row 3, column 0");
    /// ```
    pub fn sample(&self) -> Option<Sample> {
        match self {
            EstimateError::Empty { which, .. }
            | EstimateError::NonFinite { which, .. }
            | EstimateError::TooFewSamples { which, .. } => Some(*which),
            _ => None,
        }
    }
}

/// Stages reported to a progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Choosing hyperparameters.
    Tuning,
    /// Fitting the critics (first pass over the pairs).
    Fitting,
    /// Evaluating held-out terms (second pass).
    Evaluating,
    /// Randomization test.
    Testing,
}

impl Stage {
    /// Short label.
    pub fn label(&self) -> &'static str {
        match self {
            Stage::Tuning => "tuning",
            Stage::Fitting => "fitting critics",
            Stage::Evaluating => "held-out terms",
            Stage::Testing => "test",
        }
    }
}

/// A progress update: `done` of `total` units of `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Stage.
    pub stage: Stage,
    /// Units done.
    pub done: u64,
    /// Units in the stage.
    pub total: u64,
}

/// Hyperparameters chosen for one fold's critic.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CriticChoice {
    /// Fold whose held-out terms this critic evaluates.
    pub fold: usize,
    /// RFF bandwidth multiplier (`None` for kNN).
    pub bandwidth: Option<f64>,
    /// RFF ridge `λ` per draw of the CV training half (`None` for kNN); the final fit uses the
    /// total penalty `λ·N_cv` (see [`rff::RffChoice::penalty`]).
    pub ridge: Option<f64>,
    /// kNN neighbour count (`None` for RFF).
    pub k: Option<usize>,
    /// Cross-validated mean squared error `‖Δ − f‖²` per draw of the chosen setting.
    pub cv_mse: f64,
}

/// The result of [`estimate`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct EstimateReport {
    /// `mid` or `tmid`.
    pub divergence: DivergenceKind,
    /// The estimate.
    pub estimate: f64,
    /// Its standard error: the jackknife one (critics refitted per replicate) for the RFF
    /// critic, else the conditional one; see [`SeMethod`].
    pub std_error: f64,
    /// How `std_error` was computed.
    pub se_method: SeMethod,
    /// `sd(V)/√N` (times ½ for `tmid`): the standard error given the fitted critics.
    pub std_error_conditional: f64,
    /// Jackknife groups `G` (`None` without the jackknife).
    pub jackknife_groups: Option<usize>,
    /// `estimate ± q·std_error`, `q` the 97.5% quantile of Student's t with `G − 1`
    /// degrees of freedom for the jackknife, of the normal law (1.959964) otherwise.
    pub ci95: [f64; 2],
    /// Test p-value `(1 + #{S_b ≥ S})/(B + 1)` (`None` without a test).
    pub p_value: Option<f64>,
    /// The test that produced the p-value.
    pub test: TestKind,
    /// Observed test statistic (`S = Σ Tᵢ` for sign-flip, the estimate for permutation).
    pub statistic: Option<f64>,
    /// Resamples `B` used by the test.
    pub resamples: usize,
    /// Rows of `X0`.
    pub n0: usize,
    /// Rows of `X1`.
    pub n1: usize,
    /// Dimension `d`.
    pub dim: usize,
    /// Pairs used (`Σₖ min(n0ₖ, n1ₖ)`).
    pub pairs: usize,
    /// Rows of `X0` left unpaired.
    pub unused0: usize,
    /// Rows of `X1` left unpaired.
    pub unused1: usize,
    /// Folds `K`.
    pub folds: usize,
    /// Draws of `(t, B, ε)` per pair.
    pub draws_per_pair: usize,
    /// Interpolant name.
    pub interpolant: String,
    /// Noise schedule description.
    pub noise: String,
    /// `rff` or `knn`.
    pub critic: String,
    /// Hyperparameters chosen per fold.
    pub critic_choices: Vec<CriticChoice>,
    /// `D(t)` per `t` bin with intervals (one bin at `t = ½` for `mid`).
    pub profile: Vec<ProfileBin>,
    /// Seed.
    pub seed: u64,
}

const Z95: f64 = 1.959_963_984_540_054;

/// How the standard error of an estimate was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeMethod {
    /// Delete-a-group jackknife with the critics refitted per replicate ([`jackknife`]):
    /// sees the variation of the critics with the training data. The RFF default.
    Jackknife,
    /// `sd(V)/√N` of the held-out pair terms: exact given the critics, blind to how they vary
    /// with the data (too small where the critic is far from the field). The kNN critic, and
    /// an RFF critic too large for the jackknife's memory budget.
    Conditional,
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom.
fn student_t_975(df: usize) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    StudentsT::new(0.0, 1.0, df.max(1) as f64)
        .map(|t| t.inverse_cdf(0.975))
        .unwrap_or(Z95)
}

/// Checks a sample set: non-empty and finite.
fn check_samples(x: ArrayView2<'_, f64>, which: Sample) -> Result<(), EstimateError> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(EstimateError::Empty {
            which,
            rows: x.nrows(),
            cols: x.ncols(),
        });
    }
    if let Some(((row, col), _)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(EstimateError::NonFinite { which, row, col });
    }
    Ok(())
}

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
    let fit = crossfit::run(x0, x1, opts, crossfit::Needs::ALL, progress)?;
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
            let p = permutation::test(x0, x1, opts, fit.estimate, progress)?;
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
    })
}

/// p-values of the exact (refitted) sign-flip test and of the naive one that flips held-out
/// terms with the critics held fixed, on the same data and sign vectors. Used by the
/// calibration report to show why the refit is needed; not part of the stable API.
#[doc(hidden)]
pub fn signflip_diagnostics(
    x0: ArrayView2<'_, f64>,
    x1: ArrayView2<'_, f64>,
    opts: &EstimateOptions,
) -> Result<(f64, f64), EstimateError> {
    opts.validate()?;
    check_samples(x0, Sample::X0)?;
    check_samples(x1, Sample::X1)?;
    let fit = crossfit::run(
        x0,
        x1,
        opts,
        crossfit::Needs {
            q: true,
            jackknife: false,
        },
        &|_| {},
    )?;
    let q = fit.quadratic.as_ref().expect("Q requested");
    let exact = signflip::test(q, opts.resamples(), opts.seed, &|_| {});
    Ok((
        exact.p_value,
        signflip::fixed_critic_p_value(q, opts.resamples(), opts.seed),
    ))
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
