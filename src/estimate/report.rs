//! The result of an estimate ([`EstimateReport`]): the estimate of `D_mid` (Eq. 2) or
//! `D_t-mid^{I,σ}` (Eq. 8) with its standard error and how it was computed, the 95% interval,
//! the test's p-value (Prop. 3.2), the `D(t)` profile and the critics' hyperparameters.

use super::options::{DivergenceKind, TestKind};
use super::profile::ProfileBin;

/// Hyperparameters chosen for one fold's critic.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CriticChoice {
    /// Fold whose held-out terms this critic evaluates.
    pub fold: usize,
    /// RFF bandwidth multiplier (`None` for kNN).
    pub bandwidth: Option<f64>,
    /// RFF ridge `λ` per draw of the CV training half (`None` for kNN); the final fit uses the
    /// total penalty `λ·N_cv` (see
    /// [`rff::RffChoice::penalty`](super::rff::RffChoice::penalty)).
    pub ridge: Option<f64>,
    /// kNN neighbour count (`None` for RFF).
    pub k: Option<usize>,
    /// Cross-validated mean squared error `‖Δ − f‖²` per draw of the chosen setting.
    pub cv_mse: f64,
}

/// The result of [`estimate`](super::estimate()).
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
    /// Conditions that qualify the estimate or its interval (shared rows, a conditional SE,
    /// a critic that bounds `D` from below); empty when none applies.
    pub warnings: Vec<super::warnings::Warning>,
}

/// How the standard error of an estimate was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeMethod {
    /// Delete-a-group jackknife with the critics refitted per replicate
    /// ([`jackknife`](super::jackknife)):
    /// sees the variation of the critics with the training data. The RFF default.
    Jackknife,
    /// `sd(V)/√N` of the held-out pair terms: exact given the critics, blind to how they vary
    /// with the data (too small where the critic is far from the field). The kNN critic, and
    /// an RFF critic too large for the jackknife's memory budget.
    Conditional,
}
