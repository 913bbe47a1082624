//! What a cross-fitted run computes ([`Needs`]) and returns ([`Fit`]): the estimate of Eq. 2
//! or Eq. 8 from the held-out pair terms of Prop. 3.3 ([`Totals`]) with its conditional
//! standard error, the `D(t)` profile, the jackknife and the sign-flip test's quadratic form.

use super::context::Ctx;
use crate::estimate::jackknife::JackknifeSe;
use crate::estimate::options::{DivergenceKind, EstimateOptions};
use crate::estimate::pairs::Design;
use crate::estimate::profile::{ProfileAcc, ProfileBin};
use crate::estimate::report::CriticChoice;
use crate::estimate::signflip::Quadratic;
use crate::estimate::warnings::Warning;
use crate::moments::Moments;

/// What a run computes besides the estimate and its conditional standard error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Needs {
    /// The sign-flip test's quadratic form `Q`.
    pub q: bool,
    /// The jackknife standard error (RFF critic only; see [`jackknife`](crate::estimate::jackknife)).
    pub jackknife: bool,
}

impl Needs {
    /// Everything: what [`estimate`](crate::estimate::estimate()) reports.
    pub const ALL: Needs = Needs {
        q: true,
        jackknife: true,
    };
    /// The estimate alone (permutation replicates, refit checks).
    pub const ESTIMATE: Needs = Needs {
        q: false,
        jackknife: false,
    };
}

/// Output of a cross-fitted run.
pub(crate) struct Fit {
    pub estimate: f64,
    /// `c·sd(V)/√N`: the standard error given the critics.
    pub std_error_conditional: f64,
    /// The jackknife standard error, where it was computed.
    pub jackknife: Option<JackknifeSe>,
    /// Why the jackknife was asked for but not run (its memory).
    pub jackknife_skipped: Option<Warning>,
    pub pairs: usize,
    pub draws: usize,
    pub choices: Vec<CriticChoice>,
    pub profile: Vec<ProfileBin>,
    pub quadratic: Option<Quadratic>,
    /// `Σ Tᵢ` over all held-out pairs (the sign-flip statistic).
    pub sum_t: f64,
    /// The folds, pairs and blocks used.
    #[cfg_attr(not(test), allow(dead_code))]
    pub design: Design,
}

/// Sums of the held-out terms: the pair values `Vᵢ`, `Σ Tᵢ` and the profile.
pub(super) struct Totals {
    pub v: Moments,
    pub sum_t: f64,
    pub profile: ProfileAcc,
}

impl Totals {
    pub(super) fn new(opts: &EstimateOptions) -> Totals {
        Totals {
            v: Moments::default(),
            sum_t: 0.0,
            profile: ProfileAcc::new(opts.profile_bins, opts.divergence == DivergenceKind::TMid),
        }
    }

    pub(super) fn merge(&mut self, o: &Totals) {
        self.v = self.v.merge(o.v);
        self.sum_t += o.sum_t;
        self.profile.merge(&o.profile);
    }
}

/// Folds the held-out sums into a [`Fit`].
pub(super) fn finish(
    ctx: &Ctx<'_>,
    totals: &Totals,
    choices: Vec<CriticChoice>,
    quadratic: Option<Quadratic>,
    jackknife: Option<JackknifeSe>,
) -> Fit {
    let v = totals.v;
    let c = ctx.opts.divergence.scale();
    let var = if v.n > 1 {
        v.m2 / (v.n - 1) as f64
    } else {
        f64::NAN
    };
    Fit {
        estimate: c * v.mean,
        std_error_conditional: c * (var / v.n as f64).sqrt(),
        jackknife,
        jackknife_skipped: None,
        pairs: ctx.design.total_pairs(),
        draws: ctx.design.draws,
        choices,
        profile: totals.profile.finish(),
        quadratic,
        sum_t: totals.sum_t,
        design: ctx.design.clone(),
    }
}
