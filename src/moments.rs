//! Running moments (count, mean, sum of squared deviations) of the draws of a Monte Carlo
//! chunk or of the estimator's held-out pair terms: shifted sums within a chunk
//! ([`ChunkSums`]), Welford updates value by value, and Chan et al.'s pairwise merge of
//! chunks, always in chunk order so that results do not depend on the thread count. The
//! standard errors of the estimators of `D(t)` and of Prop. 3.3 are built from them.

use crate::vecmath::LANES;

/// Mean and sum of squared deviations of a set of values.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Moments {
    pub n: u64,
    pub mean: f64,
    pub m2: f64,
}

/// Accumulates one chunk as shifted sums (shift = first value): no division per value, and
/// no cancellation for values of similar size, which is what a chunk of draws is.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChunkSums {
    n: u64,
    shift: f64,
    s1: f64,
    s2: f64,
}

impl ChunkSums {
    #[inline]
    pub fn push(&mut self, x: f64) {
        if self.n == 0 {
            self.shift = x;
        }
        let y = x - self.shift;
        self.n += 1;
        self.s1 += y;
        self.s2 += y * y;
    }

    /// Pushes every value of `xs` in one pass with [`LANES`] partial sums (vectorizable; the
    /// order of additions is fixed, so the sums are deterministic).
    #[inline(always)]
    pub fn push_slice(&mut self, xs: &[f64]) {
        let Some(&first) = xs.first() else { return };
        if self.n == 0 {
            self.shift = first;
        }
        let shift = self.shift;
        let (mut a1, mut a2) = ([0.0; LANES], [0.0; LANES]);
        let chunks = xs.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                let y = c[l] - shift;
                a1[l] += y;
                a2[l] = y.mul_add(y, a2[l]);
            }
        }
        for &x in rest {
            let y = x - shift;
            a1[0] += y;
            a2[0] += y * y;
        }
        self.n += xs.len() as u64;
        self.s1 += a1.iter().sum::<f64>();
        self.s2 += a2.iter().sum::<f64>();
    }

    /// Whether the sums are finite (a NaN draw poisons them).
    pub fn is_finite(&self) -> bool {
        self.s1.is_finite() && self.s2.is_finite()
    }

    pub fn moments(self) -> Moments {
        if self.n == 0 {
            return Moments::default();
        }
        let n = self.n as f64;
        Moments {
            n: self.n,
            mean: self.shift + self.s1 / n,
            m2: (self.s2 - self.s1 * self.s1 / n).max(0.0),
        }
    }
}

impl Moments {
    /// Welford update with one value.
    #[inline]
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn merge(self, o: Moments) -> Moments {
        if self.n == 0 {
            return o;
        }
        if o.n == 0 {
            return self;
        }
        let n = self.n + o.n;
        let delta = o.mean - self.mean;
        Moments {
            n,
            mean: self.mean + delta * o.n as f64 / n as f64,
            m2: self.m2 + o.m2 + delta * delta * (self.n as f64 * o.n as f64) / n as f64,
        }
    }
}
