//! What an estimate will cost, before it runs ([`plan`]): its sizes (pairs, draws, critic
//! features, jackknife groups, blocks) and the floating-point work of each stage, turned into
//! seconds by a rate measured on the machine ([`measure_rate`]).
//!
//! Why a model and not a pilot run: the stages' costs have different shapes (tuning `O(n·M²)`
//! on a capped subset, the critics `O(n·r·m²)`, the jackknife `O(G·m³)`, the test's `Q`
//! `O(blocks²·M·d)`), and a pilot small enough to be cheap would not show which one dominates
//! at the user's size. The model counts multiply-adds of the dense kernels only; its error on
//! this machine is measured in `docs/performance.md` ("estimate: the cost plan").
//! RFF critic only: the kNN critic's tree searches have no such model.

use super::crossfit;
use super::error::EstimateError;
use super::jackknife;
use super::options::{CriticKind, EstimateOptions, TestKind};
use super::rff;

/// Sizes and floating-point work of an RFF estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct CostPlan {
    /// Pairs used.
    pub pairs: usize,
    /// Draws per pair.
    pub draws: usize,
    /// Columns `m` of the final critics' feature map.
    pub features: usize,
    /// Jackknife groups (0: no jackknife).
    pub jackknife_groups: usize,
    /// Blocks of pairs (the test's `Q` is `blocks × blocks`).
    pub blocks: usize,
    /// Floating-point operations per stage (tuning, critics (both passes), jackknife, test),
    /// as `[streaming over draws, factorizations]`.
    pub flops: [[f64; 2]; 4],
}

/// Stage names in the order of [`CostPlan::flops`].
pub const STAGES: [&str; 4] = ["tuning", "critics", "jackknife", "test"];

/// The plan of `estimate` on `n0 × d` and `n1 × d` samples; `None` for the kNN critic.
pub fn plan(
    n0: usize,
    n1: usize,
    d: usize,
    opts: &EstimateOptions,
) -> Result<Option<CostPlan>, EstimateError> {
    opts.validate()?;
    let (critic, design) = crossfit::resolve(n0, n1, d, opts)?;
    let o = match critic {
        CriticKind::Rff(o) => o,
        CriticKind::Knn(_) => return Ok(None),
    };
    let (kf, r, p) = (opts.folds, design.draws, d + 1);
    let poly = 1 + p + rff::quadratic_terms(p);
    let cubic = if o.cubic == Some(true) {
        rff::cubic_terms(p)
    } else {
        0
    };
    let m = poly + cubic + o.features;
    let groups = jackknife::rff_groups(m, d, kf, crate::resources::available_memory()).unwrap_or(0);
    let pairs = design.total_pairs();
    let blocks = design.blocks.len();
    let (m_f, d_f, r_f, kf_f) = (m as f64, d as f64, r as f64, kf as f64);
    // Two kinds of work, priced at different rates (measured): streaming over draws (a random
    // feature costs its projection, 2p, and a cosine, counted as 20; Gram and cross-product
    // updates) and factorizations (Cholesky, m³/3, and the triangular solves for d columns).
    let featurize = |rff_cols: usize| {
        2.0 * (rff_cols * p) as f64 + 20.0 * rff_cols as f64 + (poly + cubic) as f64
    };
    let chol = |m: f64| m * m * m / 3.0 + 2.0 * m * m * d_f;

    // Tuning: per fold, the other folds' tuning draws, per bandwidth features, Gram and
    // cross-products, then per ridge two Cholesky solves.
    let tune_rows: f64 = (0..kf)
        .map(|k| {
            let other: usize = design
                .tune
                .iter()
                .enumerate()
                .filter(|(f, _)| *f != k)
                .map(|(_, t)| t)
                .sum();
            other as f64 * r_f
        })
        .sum();
    let mt_rff = o.features.min(rff::TUNE_FEATURES);
    let mt = (poly + cubic + mt_rff) as f64;
    let bw = o.bandwidths.len() as f64;
    let tuning = [
        bw * tune_rows * (featurize(mt_rff) + 2.0 * mt * mt + 2.0 * mt * d_f),
        bw * kf_f * 2.0 * o.ridges.len() as f64 * chol(mt),
    ];
    // Critics: every draw featurized in the other folds' maps (Gram, cross-products, Z) and
    // in its own (held-out terms and, for the jackknife, H·W); three solves per fold.
    let rows = pairs as f64 * r_f;
    let critics = [
        rows * ((kf_f - 1.0) * (featurize(o.features) + 2.0 * m_f * m_f + 2.0 * m_f * d_f)
            + featurize(o.features)
            + 2.0 * m_f * m_f
            + 6.0 * m_f * d_f),
        kf_f * 3.0 * chol(m_f),
    ];
    // Jackknife: a refit of the changed critic per group and other fold.
    let jack = [0.0, groups as f64 * (kf_f - 1.0) * chol(m_f)];
    // Test: Q's blocks² inner products of Z (m × d), and the resamples.
    let test = if opts.test == TestKind::None {
        [0.0; 2]
    } else {
        let b = blocks as f64;
        [
            2.0 * b * b * m_f * d_f + opts.resamples() as f64 * b * b * 2.0,
            0.0,
        ]
    };
    Ok(Some(CostPlan {
        pairs,
        draws: r,
        features: m,
        jackknife_groups: groups,
        blocks,
        flops: [tuning, critics, jack, test],
    }))
}

/// Floating-point operations per second of this machine on dense work: a timed
/// `512 × 512` matrix product on one thread (best of three), times the rayon pool's threads
/// (the estimate runs sequential kernels in parallel over blocks of pairs).
pub fn measure_rate() -> f64 {
    use faer::{linalg::matmul::matmul, Accum, Mat, Par};
    let n = 512;
    let a = Mat::<f64>::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f64);
    let mut c = Mat::<f64>::zeros(n, n);
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        matmul(
            c.as_mut(),
            Accum::Replace,
            a.as_ref(),
            a.as_ref(),
            1.0,
            Par::Seq,
        );
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&c);
    2.0 * (n * n * n) as f64 / best.max(1e-9) * rayon::current_num_threads() as f64
}

/// Fractions of the matrix-product rate ([`measure_rate`]) that the two kinds of work reach
/// in the estimate, `[streaming, factorizations]`: fitted to the runs of
/// `examples/cost_plan.rs` on the 2-core development machine (`docs/performance.md`,
/// "estimate: the cost plan"), where the plan came within ×1.6 of the measured times.
pub const EFFICIENCY: [f64; 2] = [0.8, 0.35];

impl CostPlan {
    /// Seconds per stage at `rate` floating-point operations per second of matrix products.
    pub fn seconds(&self, rate: f64) -> [f64; 4] {
        self.flops
            .map(|[s, f]| s / (rate * EFFICIENCY[0]) + f / (rate * EFFICIENCY[1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::options::{DivergenceKind, RffOptions};
    use ndarray::Array2;

    #[test]
    fn the_plan_has_the_sizes_the_run_uses() {
        // Would catch a plan that prices another design than the run's: pairs, draws and
        // jackknife groups are compared with the report of a real estimate.
        let x0 = Array2::from_shape_fn((300, 3), |(i, j)| ((i * 31 + j * 7) % 97) as f64 / 97.0);
        let x1 = Array2::from_shape_fn((260, 3), |(i, j)| ((i * 17 + j * 5) % 89) as f64 / 80.0);
        let opts = EstimateOptions {
            divergence: DivergenceKind::TMid,
            critic: CriticKind::Rff(RffOptions::default()),
            resamples: Some(20),
            ..EstimateOptions::default()
        };
        let plan = plan(300, 260, 3, &opts).unwrap().unwrap();
        let r = crate::estimate::estimate(x0.view(), x1.view(), &opts).unwrap();
        assert_eq!(plan.pairs, r.pairs);
        assert_eq!(plan.draws, r.draws_per_pair);
        assert_eq!(Some(plan.jackknife_groups), r.jackknife_groups);
        assert!(
            plan.flops
                .iter()
                .flatten()
                .all(|f| f.is_finite() && *f >= 0.0),
            "{plan:?}"
        );
        // Every stage has work (the test's Q, the jackknife's refits, ...).
        assert!(plan.flops.iter().all(|[s, f]| s + f > 0.0), "{plan:?}");
    }

    #[test]
    fn the_work_grows_with_n_and_d_and_the_test_costs_nothing_without_a_test() {
        let opts = EstimateOptions::default();
        let total = |n: usize, d: usize, o: &EstimateOptions| -> f64 {
            plan(n, n, d, o)
                .unwrap()
                .unwrap()
                .flops
                .iter()
                .flatten()
                .sum()
        };
        assert!(total(4000, 8, &opts) > total(1000, 8, &opts));
        assert!(total(1000, 64, &opts) > total(1000, 8, &opts));
        let none = EstimateOptions {
            test: TestKind::None,
            ..EstimateOptions::default()
        };
        assert_eq!(
            plan(1000, 1000, 8, &none).unwrap().unwrap().flops[3],
            [0.0; 2]
        );
        // kNN: no model.
        let knn = EstimateOptions {
            critic: CriticKind::Knn(Default::default()),
            ..EstimateOptions::default()
        };
        assert_eq!(plan(1000, 1000, 8, &knn).unwrap(), None);
        // Bad sizes are the estimate's own errors.
        assert!(matches!(
            plan(5, 5, 2, &opts),
            Err(EstimateError::TooFewSamples { .. })
        ));
    }
}
