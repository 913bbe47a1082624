//! Which images, and which flips, training step `k` uses — a pure function of `(seed, k)`, so
//! a resumed run draws exactly the batches the uninterrupted run would have drawn.
//!
//! The images are visited epoch by epoch, each epoch a fresh permutation (Xoshiro256++ seeded
//! from `(seed, epoch)`); step `k` takes positions `k·B .. (k+1)·B` of that endless sequence.
//! Flips are Bernoulli(½) from Xoshiro256++ seeded from `(seed, k)`.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// SplitMix64 finaliser: decorrelates nearby seeds.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed for stream `stream` at position `k` of run `seed`.
pub fn derive_seed(seed: u64, stream: u64, k: u64) -> u64 {
    splitmix64(splitmix64(seed ^ splitmix64(stream)) ^ k)
}

const EPOCH_STREAM: u64 = 1;
const FLIP_STREAM: u64 = 2;

/// The batch order of a run.
#[derive(Debug, Clone)]
pub struct BatchOrder {
    n: usize,
    seed: u64,
    epoch: Option<(u64, Vec<i64>)>,
}

impl BatchOrder {
    /// For `n > 0` images and a run seed.
    pub fn new(n: usize, seed: u64) -> Self {
        assert!(n > 0, "BatchOrder needs at least one image");
        BatchOrder {
            n,
            seed,
            epoch: None,
        }
    }

    fn permutation(&mut self, epoch: u64) -> &[i64] {
        if self.epoch.as_ref().map(|(e, _)| *e) != Some(epoch) {
            let mut perm: Vec<i64> = (0..self.n as i64).collect();
            let mut rng =
                Xoshiro256PlusPlus::seed_from_u64(derive_seed(self.seed, EPOCH_STREAM, epoch));
            perm.shuffle(&mut rng);
            self.epoch = Some((epoch, perm));
        }
        &self.epoch.as_ref().expect("set above").1
    }

    /// Image indices of step `k` for batch size `b`.
    pub fn indices(&mut self, k: u64, b: usize) -> Vec<i64> {
        let n = self.n as u64;
        (0..b as u64)
            .map(|j| {
                let pos = k * b as u64 + j;
                self.permutation(pos / n)[(pos % n) as usize]
            })
            .collect()
    }

    /// Horizontal flips of step `k` (all `false` unless `enabled`).
    pub fn flips(&self, k: u64, b: usize, enabled: bool) -> Vec<bool> {
        if !enabled {
            return vec![false; b];
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(derive_seed(self.seed, FLIP_STREAM, k));
        (0..b).map(|_| rng.random_bool(0.5)).collect()
    }
}
