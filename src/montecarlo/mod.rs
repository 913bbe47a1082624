//! Monte Carlo estimators of `D(t)` and its time integrals.
//!
//! Both estimators draw `(t, X0, X1, B, ε)` and form `X̃_t` exactly as in Eq. 7:
//!
//! * [`rao_blackwell`] averages `‖m_t(X̃_t)‖²` with the exact field `m_t` — the conditional
//!   expectation of the variational integrand, hence the smaller variance;
//! * [`variational`] averages `2⟨f(t, X̃_t), Δ⟩ − ‖f(t, X̃_t)‖²` for any user-supplied `f`,
//!   whose mean is `J(f) = D(t) − E‖f − m_t‖²` (Prop. 3.3).
//!
//! **Parallelism and reproducibility.** Samples are cut into fixed chunks of [`CHUNK`] draws;
//! chunk `c` draws from its own xoshiro256++ stream seeded from `(seed, c)` through SplitMix64
//! ([`crate::streams`]), and chunk moments are merged in chunk order (Chan et al.'s pairwise
//! update, [`crate::moments`]). The result is therefore bit-identical for a given seed whatever
//! the number of rayon threads. At a fixed `t` in `d ≤ 4` without atoms the Rao–Blackwellized
//! estimator takes a fixed-dimension vectorized path ([`fast_path`]).

mod fast_path;

use crate::error::{check_dims, check_time, DivergenceError};
use crate::grouping::DEFAULT_ATOM_TOL;
use crate::interpolant::{Branch, Observation, StochasticInterpolant};
use crate::law::Law;
use crate::moments::{ChunkSums, Moments};
use crate::posterior::Posterior;
use crate::streams::chunk_rng;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// Draws per chunk (the unit of parallel work and of random streams).
pub const CHUNK: usize = 8192;

/// A critic `f(t, x̃, out)`: writes its value at `(t, x̃)` into `out`.
pub type Critic<'a> = dyn Fn(f64, &[f64], &mut [f64]) + Sync + 'a;

/// How `t` is chosen for each draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeLaw {
    /// Every draw at this `t`: estimates `D(t)`.
    Fixed(f64),
    /// `t ~ U[lo, hi]`: estimates `∫_lo^hi D(t) dt` (the mean is multiplied by `hi − lo`).
    Uniform {
        /// Lower end.
        lo: f64,
        /// Upper end.
        hi: f64,
    },
}

impl TimeLaw {
    /// `U[0, ½]`: the time law of `D_t-mid` (Eq. 8).
    pub const TMID: TimeLaw = TimeLaw::Uniform { lo: 0.0, hi: 0.5 };
    /// `U[0, 1]`: the time law of the naive integral (Eq. 3).
    pub const NAIVE: TimeLaw = TimeLaw::Uniform { lo: 0.0, hi: 1.0 };

    fn validate(&self) -> Result<(), DivergenceError> {
        match *self {
            TimeLaw::Fixed(t) => check_time(t, 0.0, 1.0),
            TimeLaw::Uniform { lo, hi } => {
                check_time(lo, 0.0, 1.0)?;
                check_time(hi, lo, 1.0)
            }
        }
    }

    fn length(&self) -> f64 {
        match *self {
            TimeLaw::Fixed(_) => 1.0,
            TimeLaw::Uniform { lo, hi } => hi - lo,
        }
    }

    #[inline]
    fn sample<R: Rng>(&self, rng: &mut R) -> f64 {
        match *self {
            TimeLaw::Fixed(t) => t,
            TimeLaw::Uniform { lo, hi } => lo + (hi - lo) * rng.random::<f64>(),
        }
    }
}

/// What to sample: the endpoint laws, the interpolant, the observation model and the time law.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// `p0`.
    pub p0: &'a Law,
    /// `p1`.
    pub p1: &'a Law,
    /// The stochastic interpolant.
    pub si: &'a StochasticInterpolant,
    /// Flipped (Eq. 7) or unflipped (Eq. 6).
    pub observation: Observation,
    /// How `t` is drawn.
    pub time: TimeLaw,
}

impl<'a> Setup<'a> {
    /// The paper's setting: flipped observation, `t ~ U[0, ½]` (estimates `D_t-mid`, Eq. 8).
    pub fn new(p0: &'a Law, p1: &'a Law, si: &'a StochasticInterpolant) -> Self {
        Setup {
            p0,
            p1,
            si,
            observation: Observation::Flipped,
            time: TimeLaw::TMID,
        }
    }

    /// Same setup at another time law.
    pub fn at(self, time: TimeLaw) -> Self {
        Setup { time, ..self }
    }

    /// Same setup with another observation model.
    pub fn observed(self, observation: Observation) -> Self {
        Setup {
            observation,
            ..self
        }
    }

    fn validate(&self) -> Result<(), DivergenceError> {
        check_dims(self.p0, self.p1)?;
        self.time.validate()
    }
}

/// A Monte Carlo estimate with its standard error.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct McEstimate {
    /// The estimate.
    pub estimate: f64,
    /// Its standard error (sample standard deviation / √n, times the time-interval length).
    pub std_error: f64,
    /// Number of draws.
    pub samples: u64,
}

impl McEstimate {
    /// Normal-approximation 95% interval `estimate ± 1.959964·SE`.
    pub fn ci95(&self) -> (f64, f64) {
        let h = 1.959_963_984_540_054 * self.std_error;
        (self.estimate - h, self.estimate + h)
    }
}

/// Runs `n` draws in fixed chunks in parallel and merges the moments in chunk order.
pub(crate) fn run_chunks<F>(n: usize, seed: u64, chunk: F) -> Result<Moments, DivergenceError>
where
    F: Fn(&mut Xoshiro256PlusPlus, usize) -> Result<Moments, DivergenceError> + Sync,
{
    let chunks = n.div_ceil(CHUNK);
    let parts: Vec<Result<Moments, DivergenceError>> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let count = CHUNK.min(n - c * CHUNK);
            chunk(&mut chunk_rng(seed, c as u64), count)
        })
        .collect();
    let mut total = Moments::default();
    for p in parts {
        total = total.merge(p?);
    }
    Ok(total)
}

/// Buffers and one draw of `(t, X0, X1, B, ε) ↦ (X̃_t, Δ)`.
pub(crate) struct Sampler<'a> {
    p0: &'a Law,
    p1: &'a Law,
    si: &'a StochasticInterpolant,
    obs: Observation,
    time: TimeLaw,
    x0: Vec<f64>,
    x1: Vec<f64>,
    scratch: Vec<f64>,
    /// `X̃_t` of the last draw.
    pub xt: Vec<f64>,
    /// `Δ = X1 − X0` of the last draw.
    pub delta: Vec<f64>,
}

impl<'a> Sampler<'a> {
    pub fn new(setup: &Setup<'a>) -> Self {
        let d = setup.p0.dim();
        Sampler {
            p0: setup.p0,
            p1: setup.p1,
            si: setup.si,
            obs: setup.observation,
            time: setup.time,
            x0: vec![0.0; d],
            x1: vec![0.0; d],
            scratch: vec![0.0; d],
            xt: vec![0.0; d],
            delta: vec![0.0; d],
        }
    }

    /// One draw; returns `t`. The order of random draws is fixed: t, X0, X1, B, ε.
    #[inline]
    pub fn draw<R: Rng>(&mut self, rng: &mut R) -> f64 {
        let t = self.time.sample(rng);
        self.p0.sample_into(rng, &mut self.scratch, &mut self.x0);
        self.p1.sample_into(rng, &mut self.scratch, &mut self.x1);
        let branch = match self.obs {
            Observation::Flipped if rng.random::<bool>() => Branch::Flipped,
            _ => Branch::Forward,
        };
        let c = self.si.branch(t, branch);
        for i in 0..self.xt.len() {
            let mut v = c.alpha * self.x0[i] + c.beta * self.x1[i];
            if c.gamma != 0.0 {
                let e: f64 = StandardNormal.sample(rng);
                v += c.gamma * e;
            }
            self.xt[i] = v;
            self.delta[i] = self.x1[i] - self.x0[i];
        }
        t
    }
}

fn check_n(n: usize) -> Result<(), DivergenceError> {
    if n < 2 {
        return Err(DivergenceError::TooFewSamples { n, min: 2 });
    }
    Ok(())
}

fn finish(m: Moments, len: f64) -> McEstimate {
    let var = if m.n > 1 {
        m.m2 / (m.n - 1) as f64
    } else {
        0.0
    };
    McEstimate {
        estimate: len * m.mean,
        std_error: len * (var / m.n as f64).sqrt(),
        samples: m.n,
    }
}

/// Rao–Blackwellized estimate of `D(t)` (fixed `t`) or `∫ D(t) dt` (uniform `t`): the mean of
/// `‖m_t(X̃_t)‖²` over `n` draws, with the exact field of [`crate::field`].
///
/// ```
/// use midpoint::interpolant::StochasticInterpolant;
/// use midpoint::law::{Gaussian, Law};
/// use midpoint::montecarlo::{rao_blackwell, Setup, TimeLaw};
/// let p0: Law = Gaussian::isotropic(ndarray::array![0.0], 1.0).unwrap().into();
/// let p1: Law = Gaussian::isotropic(ndarray::array![1.0], 1.0).unwrap().into();
/// let si = StochasticInterpolant::linear(0.0).unwrap();
/// // D_mid = ‖m1 − m0‖² = 1 for equal covariances: the field is constant.
/// let setup = Setup::new(&p0, &p1, &si).at(TimeLaw::Fixed(0.5));
/// let e = rao_blackwell(&setup, 1000, 1).unwrap();
/// assert!((e.estimate - 1.0).abs() < 1e-12);
/// ```
pub fn rao_blackwell(
    setup: &Setup<'_>,
    n: usize,
    seed: u64,
) -> Result<McEstimate, DivergenceError> {
    rao_blackwell_with(setup, n, seed, true)
}

/// [`rao_blackwell`], with the fixed-dimension fast path allowed or not (tests compare them).
pub(crate) fn rao_blackwell_with(
    setup: &Setup<'_>,
    n: usize,
    seed: u64,
    allow_fast: bool,
) -> Result<McEstimate, DivergenceError> {
    setup.validate()?;
    check_n(n)?;
    let Setup {
        p0,
        p1,
        si,
        observation: obs,
        time,
    } = *setup;
    let fixed = match time {
        TimeLaw::Fixed(t) => Some(Posterior::new(p0, p1, si, t, obs, DEFAULT_ATOM_TOL)),
        TimeLaw::Uniform { .. } => None,
    };
    let d = p0.dim();
    if let (Some(post), true) = (&fixed, allow_fast) {
        if let Some(m) = fast_fixed_t(post, n, seed) {
            return Ok(finish(m?, time.length()));
        }
    }
    let m = run_chunks(n, seed, |rng, count| {
        let mut s = Sampler::new(setup);
        let mut out = vec![0.0; d];
        let mut acc = ChunkSums::default();
        let mut fs = fixed.as_ref().map(|p| p.scratch());
        for _ in 0..count {
            let t = s.draw(rng);
            let ok = match &fixed {
                Some(post) => post.field_into(&s.xt, &mut out, fs.as_mut().expect("scratch")),
                None => {
                    let post = Posterior::new(p0, p1, si, t, obs, DEFAULT_ATOM_TOL);
                    let mut scratch = post.scratch();
                    post.field_into(&s.xt, &mut out, &mut scratch)
                }
            };
            if !ok {
                return Err(DivergenceError::OutsideSupport);
            }
            acc.push(out.iter().map(|v| v * v).sum());
        }
        Ok(acc.moments())
    })?;
    Ok(finish(m, time.length()))
}

/// The fixed-dimension SIMD path of [`rao_blackwell`] at a fixed `t` (d ≤ 4, no atoms; see
/// [`fast_path`]), or `None` if it does not apply.
fn fast_fixed_t(post: &Posterior, n: usize, seed: u64) -> Option<Result<Moments, DivergenceError>> {
    fn run<const D: usize>(
        post: &Posterior,
        n: usize,
        seed: u64,
    ) -> Option<Result<Moments, DivergenceError>> {
        let field = fast_path::FastField::<D>::new(post)?;
        Some(run_chunks(n, seed, |rng, count| {
            fast_path::rb_chunk::<D, _>(&field, rng, count)
                .map(ChunkSums::moments)
                .ok_or(DivergenceError::OutsideSupport)
        }))
    }
    match post.dim() {
        1 => run::<1>(post, n, seed),
        2 => run::<2>(post, n, seed),
        3 => run::<3>(post, n, seed),
        4 => run::<4>(post, n, seed),
        _ => None,
    }
}

/// Plain estimate of the variational objective `J(f) = E[2⟨f(t, X̃_t), Δ⟩ − ‖f(t, X̃_t)‖²]`
/// of Prop. 3.3 (integrated over `t` for a uniform time law). `f(t, x̃, out)` writes its value
/// into `out`; it is called from several threads.
///
/// ```
/// use midpoint::interpolant::StochasticInterpolant;
/// use midpoint::law::{Gaussian, Law};
/// use midpoint::montecarlo::{variational, Setup, TimeLaw};
/// let p0: Law = Gaussian::isotropic(ndarray::array![0.0], 1.0).unwrap().into();
/// let si = StochasticInterpolant::linear(0.5).unwrap();
/// // With p0 = p1 the field is 0, so J(f) = −E‖f‖²: f ≡ 1 has J(f) = −1.
/// let setup = Setup::new(&p0, &p0, &si).at(TimeLaw::Fixed(0.3));
/// let e = variational(&setup, &|_t, _x, out: &mut [f64]| out[0] = 1.0, 10_000, 3).unwrap();
/// assert!((e.estimate + 1.0).abs() < 6.0 * e.std_error + 1e-12);
/// ```
pub fn variational(
    setup: &Setup<'_>,
    f: &Critic<'_>,
    n: usize,
    seed: u64,
) -> Result<McEstimate, DivergenceError> {
    setup.validate()?;
    check_n(n)?;
    let d = setup.p0.dim();
    let time = setup.time;
    let m = run_chunks(n, seed, |rng, count| {
        let mut s = Sampler::new(setup);
        let mut out = vec![0.0; d];
        let mut acc = ChunkSums::default();
        for _ in 0..count {
            let t = s.draw(rng);
            f(t, &s.xt, &mut out);
            let mut v = 0.0;
            for i in 0..d {
                v += 2.0 * out[i] * s.delta[i] - out[i] * out[i];
            }
            if !v.is_finite() {
                return Err(DivergenceError::NonFiniteCritic);
            }
            acc.push(v);
        }
        Ok(acc.moments())
    })?;
    Ok(finish(m, time.length()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::law::{Discrete, Gaussian};
    use ndarray::array;

    /// The fast path draws X̃_t from its mixture representation, the general path from
    /// (X0, X1, B, ε) as in Eq. 7: independent draws of the same law, so the two estimates must
    /// agree within 6 combined standard errors (false-failure probability ≈ 2e-9 each). Would
    /// catch a fast path with wrong component weights, means or covariances.
    #[test]
    fn fast_path_agrees_with_endpoint_sampling() {
        let g2 = |m: [f64; 2], c: [[f64; 2]; 2]| -> Law {
            Gaussian::new(
                array![m[0], m[1]],
                array![[c[0][0], c[0][1]], [c[1][0], c[1][1]]],
            )
            .unwrap()
            .into()
        };
        let cases: Vec<(Law, Law, f64)> = vec![
            (
                Gaussian::isotropic(array![0.0], 1.0).unwrap().into(),
                Gaussian::isotropic(array![1.5], 0.5).unwrap().into(),
                0.0,
            ),
            (
                g2([0.0, 0.0], [[1.0, 0.4], [0.4, 0.8]]),
                g2([1.0, -0.5], [[0.6, -0.1], [-0.1, 1.3]]),
                0.2,
            ),
            (
                Gaussian::isotropic(array![0.0], 1.0).unwrap().into(),
                Discrete::new(array![[-1.0], [0.5], [2.0]], array![0.3, 0.3, 0.4])
                    .unwrap()
                    .into(),
                0.05,
            ),
        ];
        for (p0, p1, sigma) in &cases {
            let si = StochasticInterpolant::linear(*sigma).unwrap();
            for t in [0.1, 0.37] {
                let setup = Setup::new(p0, p1, &si).at(TimeLaw::Fixed(t));
                let fast = rao_blackwell_with(&setup, 1 << 17, 11, true).unwrap();
                let slow = rao_blackwell_with(&setup, 1 << 17, 12, false).unwrap();
                let se = (fast.std_error.powi(2) + slow.std_error.powi(2)).sqrt();
                assert!(
                    (fast.estimate - slow.estimate).abs() <= 6.0 * se,
                    "t = {t}: fast {fast:?} vs general {slow:?}"
                );
            }
        }
    }
}
