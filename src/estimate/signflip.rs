//! The sign-flip randomization test.
//!
//! **Why it is exact.** Under `H0: p0 = p1`, swapping the two samples of a pair together with
//! `B → 1 − B` (Eq. 7) leaves every observation `X̃_t` unchanged — the branches of a symmetric
//! interpolant satisfy `I_t(x0, x1) = I_{1−t}(x1, x0)` — and maps `Δ → −Δ` (the argument of
//! Prop. 3.2), and because the pairs are built from disjoint i.i.d. samples the joint law of
//! the data is invariant under any set of such swaps. The statistic is
//! `S = Σᵢ Tᵢ`, `Tᵢ = (1/r) Σ_s ⟨f_{k(i)}(x̃ᵢₛ, tᵢₛ), Δᵢ⟩`, computed with cross-fitted critics.
//!
//! A critic that is *held fixed* is not enough here: the critic of fold `k` is trained on the
//! other folds' pairs, so flipping those pairs changes it, and the fold sums `S_k` are
//! positively correlated under `H0` (for a ridge critic `S_1 ≈ S_2` when `K = 2`). A
//! randomization that flips held-out terms with the critics fixed treats them as independent
//! and rejects too often. Instead this test **refits** the critics under every sign vector: both
//! critics are linear in their training targets with weights that depend on `X̃_t` only, so the
//! refitted statistic is the quadratic form `S(ε) = εᵀQε` over blocks of pairs
//! ([`super::crossfit`]). Hyperparameters and standardization come from the tuning pairs,
//! whose signs are held at `+1` (the test is conditional on them, hence still exact).
//!
//! One-sided: under `H1` a useful critic has `E⟨f, Δ⟩ > ½E‖f‖² ≥ 0` (that is what
//! `J(f) > 0` means), while an uninformative one gives `⟨f, Δ⟩` centred at 0, never
//! systematically negative; so only large `S` is evidence against `H0`.
//!
//! p-value: `(1 + #{b : S(ε_b) ≥ S})/(B + 1)` with `ε_b` drawn from the stream of resample
//! `b` — valid (`P(p ≤ α) ≤ α` under `H0`) and reproducible from the seed.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rand::Rng;
use rayon::prelude::*;

use super::progress::{Progress, Stage};
use crate::streams::chunk_rng;

const TAG_SIGNS: u64 = 0x5161_0001;

/// The sign-flip test's quadratic form over blocks.
#[derive(Debug, Clone)]
pub(crate) struct Quadratic {
    /// `nb × nb`, row-major.
    pub q: Vec<f64>,
    /// Blocks whose sign is held at +1 (tuning blocks).
    pub fixed: Vec<bool>,
}

impl Quadratic {
    /// Number of blocks.
    pub(crate) fn blocks(&self) -> usize {
        self.fixed.len()
    }
}

/// Result of the randomization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignFlipResult {
    /// Observed statistic `S = 1ᵀQ1`.
    pub statistic: f64,
    /// `(1 + #{S_b ≥ S})/(B + 1)`.
    pub p_value: f64,
}

/// `εᵀQε` with `ε` given as ±1 per block.
pub(crate) fn quadratic_form(q: &Quadratic, eps: &[f64]) -> f64 {
    let nb = q.blocks();
    let mut s = 0.0;
    for i in 0..nb {
        let row = &q.q[i * nb..(i + 1) * nb];
        let mut acc = 0.0;
        for j in 0..nb {
            acc += row[j] * eps[j];
        }
        s += eps[i] * acc;
    }
    s
}

/// Draws the sign vector of resample `b`.
fn signs(q: &Quadratic, seed: u64, b: u64) -> Vec<f64> {
    let mut rng = chunk_rng(seed ^ TAG_SIGNS, b);
    q.fixed
        .iter()
        .map(|&fixed| {
            let flip = rng.random::<bool>();
            if fixed || !flip {
                1.0
            } else {
                -1.0
            }
        })
        .collect()
}

/// Runs `resamples` random sign vectors.
pub(crate) fn test(
    q: &Quadratic,
    resamples: usize,
    seed: u64,
    progress: &(dyn Fn(Progress) + Sync),
) -> SignFlipResult {
    let nb = q.blocks();
    let observed = quadratic_form(q, &vec![1.0; nb]);
    let total = resamples as u64;
    let qm = Mat::<f64>::from_fn(nb, nb, |i, j| q.q[i * nb + j]);
    // S_b and S are sums of the same terms in different orders: values within rounding of
    // each other count as ties (≥), which can only make the p-value larger (conservative).
    let tol = 1e-10 * q.q.iter().map(|v| v.abs()).sum::<f64>();
    let threshold = observed - tol;
    let mut count = 0usize;
    // Sign vectors in batches of BATCH columns: S_b = Σᵢ Eᵢ_b (QE)ᵢ_b with one matrix product
    // per batch (faer, sequential inside a batch, so every S_b is computed the same way
    // whatever the thread count).
    const BATCH: usize = 32;
    let step = BATCH * rayon::current_num_threads().max(1);
    let mut done = 0;
    while done < resamples {
        let hi = (done + step).min(resamples);
        let starts: Vec<usize> = (done..hi).step_by(BATCH).collect();
        // Counts are integers, so the order of the sum is moot.
        count += starts
            .par_iter()
            .map(|&lo| {
                let cols = BATCH.min(hi - lo);
                let signs_b: Vec<Vec<f64>> = (lo..lo + cols)
                    .map(|b| signs(q, seed, b as u64 + 1))
                    .collect();
                let e = Mat::<f64>::from_fn(nb, cols, |i, c| signs_b[c][i]);
                let mut qe = Mat::<f64>::zeros(nb, cols);
                matmul(
                    qe.as_mut(),
                    Accum::Replace,
                    qm.as_ref(),
                    e.as_ref(),
                    1.0,
                    Par::Seq,
                );
                (0..cols)
                    .filter(|&c| {
                        let s: f64 = (0..nb).map(|i| e[(i, c)] * qe[(i, c)]).sum();
                        s >= threshold
                    })
                    .count()
            })
            .sum::<usize>();
        done = hi;
        progress(Progress {
            stage: Stage::Testing,
            done: done as u64,
            total,
        });
    }
    SignFlipResult {
        statistic: observed,
        p_value: (1 + count) as f64 / (resamples + 1) as f64,
    }
}

/// The naive randomization that holds the critics fixed: `S(ε) = Σ_g ε_g (Q1)_g`, every
/// block flipped. Not exact under cross-fitting (see the module docs); kept for the
/// calibration report.
#[cfg(feature = "diagnostics")]
pub(crate) fn fixed_critic_p_value(q: &Quadratic, resamples: usize, seed: u64) -> f64 {
    let nb = q.blocks();
    let rows: Vec<f64> = (0..nb)
        .map(|i| q.q[i * nb..(i + 1) * nb].iter().sum())
        .collect();
    let observed: f64 = rows.iter().sum();
    let all_free = Quadratic {
        q: Vec::new(),
        fixed: vec![false; nb],
    };
    let count = (0..resamples)
        .filter(|&b| {
            let e = signs(&all_free, seed, b as u64 + 1);
            rows.iter().zip(&e).map(|(r, s)| r * s).sum::<f64>() >= observed
        })
        .count();
    (1 + count) as f64 / (resamples + 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_value_counts_ties_and_uses_plus_one_rule() {
        // Two free blocks, Q = [[0, 1], [1, 0]]: S(ε) = 2ε₁ε₂, observed S = 2. Exactly half of
        // the sign vectors give S_b = 2 ≥ S, so with B resamples the count is Binomial(B, ½)
        // and p = (1 + count)/(B + 1) must be near ½; a one-block-fixed Q always ties.
        let q = Quadratic {
            q: vec![0.0, 1.0, 1.0, 0.0],
            fixed: vec![false, false],
        };
        let r = test(&q, 999, 3, &|_| {});
        assert_eq!(r.statistic, 2.0);
        // sd of count/1000 ≈ 0.0158; 6 sd = 0.095 (false failure < 1e-8).
        assert!((r.p_value - 0.5).abs() < 0.095, "{}", r.p_value);
        let q1 = Quadratic {
            q: vec![1.0, 0.0, 0.0, 0.0],
            fixed: vec![false, true],
        };
        // S(ε) = ε₁² = 1 always: every resample ties, p = 1 exactly.
        assert_eq!(test(&q1, 50, 1, &|_| {}).p_value, 1.0);
    }
}
