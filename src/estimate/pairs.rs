//! Folds, pairs, blocks and the draws of `(t, B, ε)`.
//!
//! * **Folds** split the *samples*: the rows of `X0` are shuffled and cut into `K` contiguous
//!   folds of sizes differing by at most one, and so are the rows of `X1`.
//! * **Pairs**: inside fold `k` the `j`-th shuffled row of `X0` is paired with the `j`-th
//!   shuffled row of `X1` for `j < min(n0ₖ, n1ₖ)` — a uniformly random matching. Each sample
//!   is in at most one pair, so pair terms are independent given the critic.
//! * **Tuning pairs**: the first `⌈m/5⌉` pairs of each fold (at most 8192) are the tuning
//!   subset on which hyperparameters are cross-validated. The sign-flip test holds their signs
//!   fixed, which keeps it exact although the hyperparameters depend on them.
//! * **Blocks**: the remaining pairs of each fold are cut into at most
//!   [`Design::blocks_per_fold`] contiguous blocks (at most 1024 over all folds, at least two
//!   pairs each). A block is the unit of parallel work and of
//!   random streams, and the sign-flip test flips the pairs of a block together (any group of
//!   swaps leaves `H0` invariant, so the test stays exact; a few hundred blocks or more make
//!   the randomization distribution as fine as flipping single pairs).
//! * **Draws**: block `g` draws from its own stream `chunk_rng(seed', g)`, pair by pair,
//!   `r` times: `t`, then `B`, then `ε` (only when `σ_t > 0`). Both passes over the data
//!   regenerate the same draws.

use crate::interpolant::{Branch, StochasticInterpolant};
use crate::streams::{chunk_rng, splitmix};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::options::DivergenceKind;

/// Fewest pairs per fold.
pub const MIN_PAIRS_PER_FOLD: usize = 8;
/// Largest tuning subset per fold. Cross-validation on too small a subset picks the
/// smoothest, most regularized critic for large `n` (at `n = 10⁶`, `d = 10` a cap of 1024
/// gave `D̂_t-mid = 0.52` where Monte Carlo with the exact field gives 0.83).
pub const TUNE_CAP: usize = 8192;

const TAG_SPLIT0: u64 = 0x5A5A_0001;
const TAG_SPLIT1: u64 = 0x5A5A_0002;
const TAG_DRAWS: u64 = 0x5A5A_0003;

/// A contiguous range of one fold's pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Fold.
    pub fold: usize,
    /// First pair (index into the fold's pairs).
    pub start: usize,
    /// One past the last pair.
    pub end: usize,
    /// Tuning block: its signs are held fixed by the sign-flip test.
    pub fixed: bool,
}

impl Block {
    /// Pairs in the block.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the block is empty.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Folds, pairs and blocks.
#[derive(Debug, Clone)]
pub struct Design {
    /// Per fold, the `(row of X0, row of X1)` of each pair.
    pub pairs: Vec<Vec<(u32, u32)>>,
    /// Per fold, the number of tuning pairs (the first ones).
    pub tune: Vec<usize>,
    /// All blocks, fold by fold; within a fold the tuning block comes first.
    pub blocks: Vec<Block>,
    /// Draws per pair.
    pub draws: usize,
    /// Seed of the draw streams.
    pub draw_seed: u64,
}

impl Design {
    /// Splits `n0` and `n1` rows into `folds` folds and pairs them; `max_blocks` bounds the
    /// number of (non-tuning) blocks over all folds.
    pub fn new(
        n0: usize,
        n1: usize,
        folds: usize,
        draws: usize,
        max_blocks: usize,
        seed: u64,
    ) -> Design {
        let fold_rows = |n: usize, tag: u64| -> Vec<Vec<u32>> {
            let mut idx: Vec<u32> = (0..n as u32).collect();
            let mut rng = chunk_rng(seed ^ tag, 0);
            idx.shuffle(&mut rng);
            (0..folds)
                .map(|k| idx[k * n / folds..(k + 1) * n / folds].to_vec())
                .collect()
        };
        let f0 = fold_rows(n0, TAG_SPLIT0);
        let f1 = fold_rows(n1, TAG_SPLIT1);
        let pairs: Vec<Vec<(u32, u32)>> = f0
            .iter()
            .zip(&f1)
            .map(|(a, b)| a.iter().copied().zip(b.iter().copied()).collect())
            .collect();
        let per_fold = Self::blocks_per_fold(max_blocks, folds);
        let mut tune = Vec::with_capacity(folds);
        let mut blocks = Vec::new();
        for (k, p) in pairs.iter().enumerate() {
            let m = p.len();
            let tk = m.div_ceil(5).min(TUNE_CAP);
            tune.push(tk);
            if tk > 0 {
                blocks.push(Block {
                    fold: k,
                    start: 0,
                    end: tk,
                    fixed: true,
                });
            }
            let rest = m - tk;
            let nb = per_fold.min(rest);
            for j in 0..nb {
                blocks.push(Block {
                    fold: k,
                    start: tk + j * rest / nb,
                    end: tk + (j + 1) * rest / nb,
                    fixed: false,
                });
            }
        }
        Design {
            pairs,
            tune,
            blocks,
            draws,
            draw_seed: splitmix(seed ^ TAG_DRAWS),
        }
    }

    /// Non-tuning blocks per fold for a total budget of `max_blocks`.
    pub fn blocks_per_fold(max_blocks: usize, folds: usize) -> usize {
        (max_blocks / folds).max(1)
    }

    /// Number of folds.
    pub fn folds(&self) -> usize {
        self.pairs.len()
    }

    /// Total pairs.
    pub fn total_pairs(&self) -> usize {
        self.pairs.iter().map(Vec::len).sum()
    }
}

/// Generates the draws of one block.
pub struct DrawGen<'a> {
    si: &'a StochasticInterpolant,
    kind: DivergenceKind,
    rng: Xoshiro256PlusPlus,
}

impl<'a> DrawGen<'a> {
    /// The stream of block `g`.
    pub fn new(
        si: &'a StochasticInterpolant,
        kind: DivergenceKind,
        design: &Design,
        g: usize,
    ) -> Self {
        DrawGen {
            si,
            kind,
            rng: chunk_rng(design.draw_seed, g as u64),
        }
    }

    /// One draw for the pair `(x0, x1)`: writes `X̃_t` into `xt` and returns `t`.
    #[inline]
    pub fn draw(&mut self, x0: &[f64], x1: &[f64], xt: &mut [f64]) -> f64 {
        let t = match self.kind {
            DivergenceKind::Mid => 0.5,
            DivergenceKind::TMid => 0.5 * self.rng.random::<f64>(),
        };
        let branch = if self.rng.random::<bool>() {
            Branch::Flipped
        } else {
            Branch::Forward
        };
        let c = self.si.branch(t, branch);
        for i in 0..xt.len() {
            let mut v = c.alpha * x0[i] + c.beta * x1[i];
            if c.gamma != 0.0 {
                let e: f64 = StandardNormal.sample(&mut self.rng);
                v += c.gamma * e;
            }
            xt[i] = v;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_split_samples_and_pairs_are_disjoint() {
        // Would catch a sample used in two pairs or in two folds (which would couple held-out
        // and training terms).
        let d = Design::new(103, 57, 3, 1, 30, 9);
        let mut seen0 = [false; 103];
        let mut seen1 = [false; 57];
        for p in &d.pairs {
            for &(a, b) in p {
                assert!(!seen0[a as usize] && !seen1[b as usize]);
                seen0[a as usize] = true;
                seen1[b as usize] = true;
            }
        }
        // X1 folds have 19 rows each, so 57 pairs and 46 unused rows of X0.
        assert_eq!(d.total_pairs(), 57);
        for k in 0..3 {
            let covered: usize = d
                .blocks
                .iter()
                .filter(|b| b.fold == k)
                .map(|b| b.len())
                .sum();
            assert_eq!(covered, d.pairs[k].len());
            assert_eq!(d.tune[k], 4); // ⌈19/5⌉
        }
        assert_eq!(d.blocks.iter().filter(|b| !b.fixed).count(), 30);
    }
}
