//! Cross-fitting: critics fitted on the other folds, held-out terms of the variational form
//! of Prop. 3.3, profile, and the block quadratic form `Q` of the sign-flip test (Prop. 3.2).
//!
//! Every held-out fold `k` has, for the estimate, two critics `f_{k,0}`, `f_{k,1}` fitted on
//! the two halves `h(g')` of the blocks outside `k` (see [`context::half`] for why two), and
//! for the test one critic `f_k` fitted on all of them. Notation: block `g` of fold `k(g)`;
//! `Z_g⁽ᵏ⁾ = Σ_{draws in g} φ_k(x̃) Δᵀ` (`M × d`) in the feature map of fold `k`;
//! `A_k = (G_k + λ N_cv P)⁻¹` (`P`: identity but 0 on the constant);
//! `W_k = A_k Σ_{g' ∉ k} Z_{g'}⁽ᵏ⁾`. The pair term `Tᵢ = (1/r) Σ_s ⟨W_kᵀ φ_k(x̃ᵢₛ), Δᵢ⟩`
//! summed over a block is `(1/r)⟨Z_g⁽ᵏ⁾, W_k⟩ = Σ_{g'} Q_{g g'}` with
//!
//! ```text
//! Q_{g g'} = (1/r) ⟨Z_g⁽ᵏ⁽ᵍ⁾⁾, A_{k(g)} Z_{g'}⁽ᵏ⁽ᵍ⁾⁾⟩   for k(g') ≠ k(g),   0 otherwise.
//! ```
//!
//! Flipping the signs `ε_g` of whole blocks multiplies `Z_g` by `ε_g` and leaves `G_k` and the
//! hyperparameters unchanged, so the refitted statistic is `S(ε) = εᵀQε`. For the kNN critic
//! `Q_{g g'} = (1/(2 r k)) Σ ⟨Δᵢ, Δⱼ⟩` over held-out draws of `g` and their neighbours in `g'`
//! (each half's tree gives `k` neighbours).
//!
//! Files: [`context`] (data, design, draws, the ordered parallel walk), [`fit`] (what a run
//! computes and returns), [`rff_pass`] and [`knn_pass`] (the two critics' passes); this one
//! sizes the design and runs the pass of the chosen critic.

mod context;
mod fit;
mod knn_pass;
mod rff_pass;

use ndarray::ArrayView2;

#[cfg(test)]
pub(crate) use context::half;
pub(crate) use fit::{Fit, Needs};

use crate::estimate::error::{EstimateError, Sample};
use crate::estimate::options::{CriticKind, DivergenceKind, Draws, EstimateOptions, RffOptions};
use crate::estimate::pairs::{Design, MIN_PAIRS_PER_FOLD};
use crate::estimate::progress::{Progress, Stage};
use crate::estimate::rff;
use crate::estimate::tuning::Standardizer;
use context::Ctx;

/// Most non-tuning blocks over all folds.
const MAX_BLOCKS: usize = 1024;
/// Fewest non-tuning blocks (memory permitting).
const MIN_BLOCKS: usize = 16;
/// Doubles allowed for the stored `Z` matrices of the RFF test (128 MiB).
const Z_BUDGET: usize = 1 << 24;
/// Multiply-adds allowed for the RFF test's `Q` (`blocks² · M · d`).
const Q_FLOPS: usize = 1 << 28;

/// Draws per pair for `pairs` pairs.
fn draws_per_pair(opts: &EstimateOptions, pairs: usize) -> usize {
    match opts.draws {
        Draws::Fixed(r) => r,
        Draws::Auto => {
            if opts.divergence == DivergenceKind::Mid && opts.interpolant.noise().is_zero() {
                1
            } else {
                // Extra draws only pay while the pairs are few: at 10⁵ pairs, 8 draws cost 12×
                // the time (measured) for a 2% smaller SE, since Δ's own variance dominates.
                ((1usize << 17) / pairs.max(1)).clamp(1, 8)
            }
        }
    }
}

/// The critic with its data-dependent defaults resolved, and the design (folds, pairs,
/// blocks, draws) for `n0 × d` and `n1 × d` samples: everything [`run`] sizes before it
/// touches the data, so that [`cost`](crate::estimate::cost) can price a run up front.
pub(crate) fn resolve(
    n0: usize,
    n1: usize,
    d: usize,
    opts: &EstimateOptions,
) -> Result<(CriticKind, Design), EstimateError> {
    let k = opts.folds;
    let need = MIN_PAIRS_PER_FOLD * k;
    if n0.min(n1) < need {
        let (which, n) = if n0 <= n1 {
            (Sample::X0, n0)
        } else {
            (Sample::X1, n1)
        };
        return Err(EstimateError::TooFewSamples {
            which,
            n,
            folds: k,
            need,
            per_fold: MIN_PAIRS_PER_FOLD,
        });
    }
    // RFF features: at most one per two training pairs (with one per eight, the critic's
    // smoothing bias dominated at n = 10³: D_t-mid 4% lower in 2-D in development runs), at
    // least 32, at most the
    // requested M.
    let critic = match &opts.critic {
        CriticKind::Rff(o) => {
            let half_pairs = n0.min(n1) * (k - 1) / k / 2;
            CriticKind::Rff(RffOptions {
                features: o.features.min(half_pairs.max(32)),
                cubic: Some(
                    o.cubic
                        .unwrap_or_else(|| rff::cubic_wanted(d + 1, half_pairs)),
                ),
                undersmooth: Some(
                    o.undersmooth
                        .unwrap_or_else(|| opts.divergence.default_undersmooth()),
                ),
                ..o.clone()
            })
        }
        c => c.clone(),
    };
    let max_blocks = match &critic {
        CriticKind::Rff(o) => {
            let cubic = if o.cubic == Some(true) {
                rff::cubic_terms(d + 1)
            } else {
                0
            };
            let md = (2 + d + rff::quadratic_terms(d + 1) + cubic + o.features) * d;
            // Memory for the stored Z matrices, and blocks²·M·d ≤ Q_FLOPS for Q.
            let by_q = ((Q_FLOPS / md) as f64).sqrt() as usize;
            (Z_BUDGET / (k * md))
                .min(by_q)
                .clamp(MIN_BLOCKS, MAX_BLOCKS)
        }
        CriticKind::Knn(_) => MAX_BLOCKS,
    }
    // At least two pairs per block.
    .min((n0.min(n1) / 2).max(MIN_BLOCKS));
    let mut design = Design::new(n0, n1, k, 1, max_blocks, opts.seed);
    design.draws = draws_per_pair(opts, design.total_pairs());
    Ok((critic, design))
}

/// Runs the cross-fitted estimate; builds `Q` and the jackknife as `needs` says.
pub(crate) fn run(
    x0: ArrayView2<'_, f64>,
    x1: ArrayView2<'_, f64>,
    opts: &EstimateOptions,
    needs: Needs,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Fit, EstimateError> {
    let d = x0.ncols();
    let k = opts.folds;
    let (critic, design) = resolve(x0.nrows(), x1.nrows(), d, opts)?;
    let mut ctx = Ctx {
        x0: x0.as_standard_layout(),
        x1: x1.as_standard_layout(),
        d,
        design,
        opts,
        progress,
        tuning: Vec::new(),
    };
    progress(Progress {
        stage: Stage::Tuning,
        done: 0,
        total: k as u64,
    });
    ctx.tuning = (0..k)
        .map(|f| {
            let td = ctx.tune_data(f);
            (Standardizer::fit(&td.xt, &td.t, d), td)
        })
        .collect();
    let out = match &critic {
        CriticKind::Rff(o) => rff_pass::run_rff(&ctx, o, needs)?,
        CriticKind::Knn(o) => knn_pass::run_knn(&ctx, o, needs.q)?,
    };
    Ok(out)
}
