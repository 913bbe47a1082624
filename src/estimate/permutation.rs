//! The classical permutation test: pool `X0 ∪ X1`, give the labels a random permutation,
//! and recompute the whole cross-fitted estimate (tuning, critics, held-out terms) on the
//! relabelled sets; the statistic is the estimate itself and the p-value is
//! `(1 + #{b : D̂_b ≥ D̂})/(B + 1)`. Exact under `H0` (the pooled sample is exchangeable), at
//! `B + 1` times the cost of one estimate. Permutation `b` draws from its own stream, and the
//! estimate on it uses the same seed as the observed one, so the p-value is reproducible. The
//! estimate itself is the caller's (`super::estimate`): this file only relabels and counts.

use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;

use super::error::EstimateError;
use super::progress::{Progress, Stage};
use crate::streams::chunk_rng;

const TAG_PERM: u64 = 0x9E12_0001;

/// p-value of the permutation test: `statistic` (the caller's whole estimate) recomputed on
/// `resamples` random relabellings of the pooled samples, against its value `observed` on the
/// samples as given.
pub(crate) fn test(
    x0: ArrayView2<'_, f64>,
    x1: ArrayView2<'_, f64>,
    observed: f64,
    resamples: usize,
    seed: u64,
    statistic: impl Fn(ArrayView2<'_, f64>, ArrayView2<'_, f64>) -> Result<f64, EstimateError>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<f64, EstimateError> {
    let (n0, n1, d) = (x0.nrows(), x1.nrows(), x0.ncols());
    let pooled = |i: usize| if i < n0 { x0.row(i) } else { x1.row(i - n0) };
    let mut idx: Vec<usize> = (0..n0 + n1).collect();
    let mut count = 0usize;
    for b in 0..resamples {
        idx.iter_mut().enumerate().for_each(|(i, v)| *v = i);
        idx.shuffle(&mut chunk_rng(seed ^ TAG_PERM, b as u64));
        let a0 = Array2::from_shape_fn((n0, d), |(i, c)| pooled(idx[i])[c]);
        let a1 = Array2::from_shape_fn((n1, d), |(i, c)| pooled(idx[n0 + i])[c]);
        if statistic(a0.view(), a1.view())? >= observed {
            count += 1;
        }
        progress(Progress {
            stage: Stage::Testing,
            done: b as u64 + 1,
            total: resamples as u64,
        });
    }
    Ok((1 + count) as f64 / (resamples + 1) as f64)
}
