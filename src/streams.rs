//! Reproducible random streams: the stream of chunk (or block, resample, permutation) `c`
//! under a seed is xoshiro256++ seeded from `(seed, c)` through SplitMix64, so that work cut
//! into fixed units gives the same draws on any number of threads. Used by the Monte Carlo
//! estimators of `D(t)` (Eq. 1, Prop. 3.3) and by every random choice of the sample estimates
//! (pairs, random features, the sign-flip and permutation tests).

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// SplitMix64 finalizer: decorrelates `(seed, chunk)` into a stream seed.
#[inline]
pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random stream of chunk `c` under `seed`.
pub(crate) fn chunk_rng(seed: u64, c: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(splitmix(seed ^ splitmix(c)))
}
