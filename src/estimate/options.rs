//! What [`estimate`](super::estimate()) can be told: the divergence (`D_mid`, Eq. 2, or
//! `D_t-mid^{I,σ}`, Eq. 8), the interpolant, the critic of Prop. 3.3 and its
//! hyperparameter grids, folds, draws per pair, and the two-sample test (Prop. 3.2).

use super::error::EstimateError;
use crate::interpolant::StochasticInterpolant;

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

/// Options of the random-Fourier-feature ridge critic ([`rff`](super::rff)).
#[derive(Debug, Clone, PartialEq)]
pub struct RffOptions {
    /// Number of random Fourier features (default 256; capped at half the critic's training
    /// pairs, and at least 32). A constant, the `d + 1` linear terms, for `d ≤ 21` their
    /// products and, for `d ≤ 10` once the data allow ([`rff::cubic_wanted`]), their cubic
    /// products are added to them. Cross-validation uses at most [`rff::TUNE_FEATURES`].
    ///
    /// [`rff::cubic_wanted`]: super::rff::cubic_wanted
    /// [`rff::TUNE_FEATURES`]: super::rff::TUNE_FEATURES
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
    ///
    /// [`rff::cubic_wanted`]: super::rff::cubic_wanted
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

/// Options of the k-nearest-neighbour critic ([`knn`](super::knn)).
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
    /// Sign-flip randomization (default, exact; [`signflip`](super::signflip)). Under `H0` swapping the two
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

/// Everything [`estimate`](super::estimate()) can be told.
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

    /// Checks every option's range.
    pub(crate) fn validate(&self) -> Result<(), EstimateError> {
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
