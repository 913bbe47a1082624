//! Fixed-dimension fast path of the Rao–Blackwellized estimator of `D(t) = E‖m_t(X̃_t)‖²`
//! (Eq. 1) at a fixed `t`.
//!
//! The general field evaluation ([`crate::posterior`]) works on slices of run-time length;
//! for `d ≤ 4` the same arithmetic on arrays of compile-time length lets the compiler unroll
//! every loop, and a two-component mixture (Gaussian endpoints) needs a single `exp` per
//! point: `w_1 = 1/(1 + e^{lr_0 − lr_1})`.
//!
//! The draws of `X̃_t` come from its mixture representation directly — a component `k` with
//! probability `π_k`, then `μ_k + L_k z` — rather than from `(X0, X1, B, ε)`: the same law, with
//! one normal per coordinate instead of three. (The Rao–Blackwellized estimator needs only
//! `X̃_t`; the general path keeps the endpoint construction of Eq. 7, and the two are tested
//! against each other.) Posteriors with atoms take the general path.
//!
//! **Blocks.** With up to 16 components the draws are processed [`BLOCK`] at a time, every
//! step a loop over the block's draws on dimension-major arrays — component choice, normals
//! ([`crate::vecmath`]: eight xoshiro256++ lanes, Box–Muller), `μ_k + L_k z`, whitening, log
//! responsibilities, `exp`, the field, `‖m‖²` and the sums — so the compiler vectorizes each
//! step. The block code is compiled three times (AVX-512, AVX2, baseline: `vecmath::Isa`) and
//! chosen at run time; all three give the same bits, since no step depends on the vector width
//! (tested).
//! More components (Walker's alias table) take the draw-at-a-time loop.

use crate::linalg::{fixed_matrix, fixed_vector};
use crate::moments::ChunkSums;
use crate::posterior::Posterior;
use crate::vecmath::{self, on_isa, Isa, Xoshiro8};
use rand::Rng;
use rand_distr::weighted::WeightedAliasIndex;
use rand_distr::{Distribution, StandardNormal};

struct Comp<const D: usize> {
    /// `log π_k − ½ log det(2π C_k)`.
    log_const: f64,
    /// `L_k`, to draw from the component.
    chol: [[f64; D]; D],
    white: [f64; D],
    mean: [f64; D],
    offset: [f64; D],
    gain: Option<usize>,
    class: usize,
}

/// The field of a posterior without atoms, on arrays of length `D`.
pub(crate) struct FastField<const D: usize> {
    chol_inv: Vec<[[f64; D]; D]>,
    gains: Vec<[[f64; D]; D]>,
    comps: Vec<Comp<D>>,
    /// Draws a component with probability `π_k`.
    pick: Pick,
}

/// Component choice: a linear scan of cumulative probabilities for a few components (one
/// uniform, a compare or two), Walker's alias table beyond.
enum Pick {
    Scan(Vec<f64>),
    Alias(WeightedAliasIndex<f64>),
}

impl Pick {
    fn new(weights: Vec<f64>) -> Option<Self> {
        if weights.len() <= 16 {
            let total: f64 = weights.iter().sum();
            let mut acc = 0.0;
            let mut cum: Vec<f64> = weights
                .iter()
                .map(|w| {
                    acc += w / total;
                    acc
                })
                .collect();
            *cum.last_mut()? = f64::INFINITY; // rounding can never fall off the end
            Some(Pick::Scan(cum))
        } else {
            WeightedAliasIndex::new(weights).ok().map(Pick::Alias)
        }
    }

    #[inline(always)]
    fn sample<R: Rng>(&self, rng: &mut R) -> usize {
        match self {
            Pick::Scan(cum) => {
                let u: f64 = rng.random();
                cum.iter().position(|&c| u < c).unwrap_or(cum.len() - 1)
            }
            Pick::Alias(a) => a.sample(rng),
        }
    }
}

/// Buffers for [`FastField::norm2`].
struct Buffers<const D: usize> {
    lr: Vec<f64>,
    y: Vec<[f64; D]>,
    v: Vec<[f64; D]>,
}

impl<const D: usize> FastField<D> {
    /// `None` when the posterior has atoms or another dimension.
    pub(crate) fn new(post: &Posterior) -> Option<Self> {
        if post.dim() != D || !post.atoms.is_empty() || post.comps.is_empty() {
            return None;
        }
        // Classes hold contiguous runs of `post.comps`, in order.
        let mut comps = Vec::with_capacity(post.comps.len());
        for (ci, class) in post.classes.iter().enumerate() {
            for c in &post.comps[class.start..class.end] {
                comps.push(Comp {
                    log_const: c.log_weight + class.log_norm,
                    chol: fixed_matrix(&class.chol.dense()),
                    white: fixed_vector(&c.white),
                    mean: fixed_vector(&c.mean),
                    offset: fixed_vector(&c.offset),
                    gain: c.gain,
                    class: ci,
                });
            }
        }
        let weights: Vec<f64> = post.comps.iter().map(|c| c.log_weight.exp()).collect();
        Some(FastField {
            chol_inv: post
                .classes
                .iter()
                .map(|c| fixed_matrix(&c.chol_inv.dense()))
                .collect(),
            gains: post
                .gains
                .iter()
                .map(|g| fixed_matrix(&g.dense()))
                .collect(),
            comps,
            pick: Pick::new(weights)?,
        })
    }

    fn buffers(&self) -> Buffers<D> {
        Buffers {
            lr: vec![0.0; self.comps.len()],
            y: vec![[0.0; D]; self.chol_inv.len()],
            v: vec![[0.0; D]; self.gains.len()],
        }
    }

    /// One draw of `X̃_t`.
    #[inline(always)]
    fn draw<R: Rng>(&self, rng: &mut R) -> [f64; D] {
        let c = &self.comps[self.pick.sample(rng)];
        let mut z = [0.0; D];
        for zi in z.iter_mut() {
            *zi = StandardNormal.sample(rng);
        }
        let mut x = c.mean;
        for i in 0..D {
            for j in 0..=i {
                x[i] += c.chol[i][j] * z[j];
            }
        }
        x
    }

    /// `E[Δ | X̃ = x, k] = c_k + A_k (x − μ_k)` added into `out` with weight `w`.
    #[inline(always)]
    fn add_component(&self, k: usize, w: f64, x: &[f64; D], out: &mut [f64; D]) {
        let c = &self.comps[k];
        let mut v = [0.0; D];
        for i in 0..D {
            v[i] = x[i] - c.mean[i];
        }
        for i in 0..D {
            let mut acc = c.offset[i];
            if let Some(g) = c.gain {
                let a = &self.gains[g][i];
                for j in 0..D {
                    acc += a[j] * v[j];
                }
            }
            out[i] += w * acc;
        }
    }

    /// `log π_k N(x; μ_k, C_k)` up to a constant shared by all components.
    #[inline(always)]
    fn log_resp(&self, k: usize, y: &[[f64; D]]) -> f64 {
        let c = &self.comps[k];
        let yc = &y[c.class];
        let mut q = 0.0;
        for i in 0..D {
            let e = yc[i] - c.white[i];
            q += e * e;
        }
        c.log_const - 0.5 * q
    }

    /// `‖m_t(x)‖²`, or NaN where every density underflows.
    #[inline(always)]
    fn norm2(&self, x: &[f64; D], b: &mut Buffers<D>) -> f64 {
        for (yc, l) in b.y.iter_mut().zip(&self.chol_inv) {
            for i in 0..D {
                let mut acc = 0.0;
                for j in 0..=i {
                    acc += l[i][j] * x[j];
                }
                yc[i] = acc;
            }
        }
        let mut out = [0.0; D];
        if self.comps.len() == 2 {
            let d = self.log_resp(0, &b.y) - self.log_resp(1, &b.y);
            if d.is_nan() {
                return f64::NAN;
            }
            let w1 = 1.0 / (1.0 + d.exp());
            self.add_component(0, 1.0 - w1, x, &mut out);
            self.add_component(1, w1, x, &mut out);
        } else {
            let mut max = f64::NEG_INFINITY;
            for k in 0..self.comps.len() {
                b.lr[k] = self.log_resp(k, &b.y);
                max = max.max(b.lr[k]);
            }
            if !max.is_finite() {
                return f64::NAN;
            }
            let mut total = 0.0;
            for l in b.lr.iter_mut() {
                *l = if *l == max { 1.0 } else { (*l - max).exp() };
                total += *l;
            }
            let inv = 1.0 / total;
            // Weighted sums of (x − μ_k) per gain first: one mat-vec per gain, not per component.
            for vg in b.v.iter_mut() {
                *vg = [0.0; D];
            }
            for (k, c) in self.comps.iter().enumerate() {
                let w = b.lr[k] * inv;
                for i in 0..D {
                    out[i] += w * c.offset[i];
                }
                if let Some(g) = c.gain {
                    for i in 0..D {
                        b.v[g][i] += w * (x[i] - c.mean[i]);
                    }
                }
            }
            for (a, vg) in self.gains.iter().zip(&b.v) {
                for i in 0..D {
                    let mut acc = 0.0;
                    for j in 0..D {
                        acc += a[i][j] * vg[j];
                    }
                    out[i] += acc;
                }
            }
        }
        out.iter().map(|o| o * o).sum()
    }
}

/// One chunk of the Rao–Blackwellized estimator at fixed `t` on the fast path; `None` if a
/// draw fell where every density underflows.
pub(crate) fn rb_chunk<const D: usize, R: Rng>(
    field: &FastField<D>,
    rng: &mut R,
    count: usize,
) -> Option<ChunkSums> {
    match &field.pick {
        Pick::Scan(cum) => {
            let mut lanes = Xoshiro8::from_rng(rng);
            let sums = block_on(Isa::detect(), field, cum, &mut lanes, count);
            sums.is_finite().then_some(sums)
        }
        Pick::Alias(_) => rb_chunk_scalar(field, rng, count),
    }
}

/// The draw-at-a-time loop (any number of components).
fn rb_chunk_scalar<const D: usize, R: Rng>(
    field: &FastField<D>,
    rng: &mut R,
    count: usize,
) -> Option<ChunkSums> {
    let mut b = field.buffers();
    let mut acc = ChunkSums::default();
    for _ in 0..count {
        let x = field.draw(rng);
        let m2 = field.norm2(&x, &mut b);
        if m2.is_nan() {
            return None;
        }
        acc.push(m2);
    }
    Some(acc)
}

/// Draws per block.
pub(crate) const BLOCK: usize = 256;

/// Scratch of the block kernel, dimension-major (`x[i][b]`: coordinate `i` of draw `b`).
struct Scratch<const D: usize> {
    bits: [u64; BLOCK],
    idx: [usize; BLOCK],
    z: [[f64; BLOCK]; D],
    x: [[f64; BLOCK]; D],
    /// Whitened `x` per covariance class.
    y: Vec<[[f64; BLOCK]; D]>,
    /// Log responsibilities per component, then (in place) the posterior weights.
    w: Vec<[f64; BLOCK]>,
    m: [[f64; BLOCK]; D],
    m2: [f64; BLOCK],
}

impl<const D: usize> Scratch<D> {
    fn new(classes: usize, comps: usize) -> Box<Self> {
        Box::new(Scratch {
            bits: [0; BLOCK],
            idx: [0; BLOCK],
            z: [[0.0; BLOCK]; D],
            x: [[0.0; BLOCK]; D],
            y: vec![[[0.0; BLOCK]; D]; classes],
            w: vec![[0.0; BLOCK]; comps],
            m: [[0.0; BLOCK]; D],
            m2: [0.0; BLOCK],
        })
    }
}

/// [`block_chunk`] compiled for `isa`, which the caller must have checked the CPU runs.
pub(crate) fn block_on<const D: usize>(
    isa: Isa,
    f: &FastField<D>,
    cum: &[f64],
    rng: &mut Xoshiro8,
    count: usize,
) -> ChunkSums {
    on_isa!(isa, block_chunk[const D: usize](f: &FastField<D>, cum: &[f64], rng: &mut Xoshiro8, count: usize) -> ChunkSums)
}

/// `count` draws of `‖m_t(X̃_t)‖²`, [`BLOCK`] at a time; NaN sums if a draw fell where every
/// density underflows.
#[inline(always)]
fn block_chunk<const D: usize>(
    f: &FastField<D>,
    cum: &[f64],
    rng: &mut Xoshiro8,
    count: usize,
) -> ChunkSums {
    let n_comp = f.comps.len();
    let mut s = Scratch::<D>::new(f.chol_inv.len(), n_comp);
    let mut acc = ChunkSums::default();
    let mut done = 0;
    while done < count {
        // Which component each draw comes from: the number of cumulative weights ≤ u.
        s.idx = [0; BLOCK];
        if n_comp > 1 {
            rng.fill(&mut s.bits);
            for &c in &cum[..n_comp - 1] {
                for b in 0..BLOCK {
                    s.idx[b] += usize::from(vecmath::unit(s.bits[b]) >= c);
                }
            }
        }
        for i in 0..D {
            vecmath::fill_normals(rng, &mut s.bits, &mut s.z[i]);
        }
        // x = μ_k + L_k z for the chosen k (every component computed, the chosen one kept).
        for (k, c) in f.comps.iter().enumerate() {
            for i in 0..D {
                for b in 0..BLOCK {
                    let mut v = c.mean[i];
                    for j in 0..=i {
                        v = c.chol[i][j].mul_add(s.z[j][b], v);
                    }
                    s.x[i][b] = if s.idx[b] == k { v } else { s.x[i][b] };
                }
            }
        }
        for (yc, l) in s.y.iter_mut().zip(&f.chol_inv) {
            for i in 0..D {
                for b in 0..BLOCK {
                    let mut v = 0.0;
                    for j in 0..=i {
                        v = l[i][j].mul_add(s.x[j][b], v);
                    }
                    yc[i][b] = v;
                }
            }
        }
        for (w, c) in s.w.iter_mut().zip(&f.comps) {
            let yc = &s.y[c.class];
            for b in 0..BLOCK {
                let mut q = 0.0;
                for i in 0..D {
                    let e = yc[i][b] - c.white[i];
                    q = e.mul_add(e, q);
                }
                w[b] = (-0.5f64).mul_add(q, c.log_const);
            }
        }
        weights(&mut s.w);
        // m = Σ_k w_k (c_k + A_k (x − μ_k)).
        s.m = [[0.0; BLOCK]; D];
        for (w, c) in s.w.iter().zip(&f.comps) {
            for i in 0..D {
                let mi = &mut s.m[i];
                match c.gain {
                    Some(g) => {
                        let a = &f.gains[g][i];
                        for b in 0..BLOCK {
                            let mut v = c.offset[i];
                            for j in 0..D {
                                v = a[j].mul_add(s.x[j][b] - c.mean[j], v);
                            }
                            mi[b] = w[b].mul_add(v, mi[b]);
                        }
                    }
                    None => {
                        for b in 0..BLOCK {
                            mi[b] = w[b].mul_add(c.offset[i], mi[b]);
                        }
                    }
                }
            }
        }
        for b in 0..BLOCK {
            let mut v = 0.0;
            for i in 0..D {
                v = s.m[i][b].mul_add(s.m[i][b], v);
            }
            s.m2[b] = v;
        }
        let take = BLOCK.min(count - done);
        acc.push_slice(&s.m2[..take]);
        done += take;
    }
    acc
}

/// Log responsibilities → posterior weights, in place (NaN where every density underflows).
#[inline(always)]
fn weights(w: &mut [[f64; BLOCK]]) {
    match w {
        [] => {}
        [only] => *only = [1.0; BLOCK],
        [w0, w1] => {
            for b in 0..BLOCK {
                let p1 = 1.0 / (1.0 + vecmath::exp(w0[b] - w1[b]));
                w0[b] = 1.0 - p1;
                w1[b] = p1;
            }
        }
        _ => {
            let mut max = [f64::NEG_INFINITY; BLOCK];
            for wk in w.iter() {
                for b in 0..BLOCK {
                    max[b] = max[b].max(wk[b]);
                }
            }
            let mut total = [0.0; BLOCK];
            for wk in w.iter_mut() {
                for b in 0..BLOCK {
                    wk[b] = vecmath::exp(wk[b] - max[b]);
                    total[b] += wk[b];
                }
            }
            for wk in w.iter_mut() {
                for b in 0..BLOCK {
                    wk[b] /= total[b];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpolant::{Observation, StochasticInterpolant};
    use crate::law::{Discrete, Gaussian, Law};
    use crate::streams::chunk_rng;
    use ndarray::array;

    /// The moments of `count` block-kernel draws on `isa`, as bits.
    fn run<const D: usize>(post: &Posterior, isa: Isa, count: usize) -> (u64, u64, u64) {
        let f = FastField::<D>::new(post).expect("fast path applies");
        let Pick::Scan(cum) = &f.pick else {
            panic!("scan pick expected")
        };
        let mut lanes = Xoshiro8::from_rng(&mut chunk_rng(3, 1));
        let m = block_on(isa, &f, cum, &mut lanes, count).moments();
        (m.n, m.mean.to_bits(), m.m2.to_bits())
    }

    /// Every instruction set this CPU runs gives the same bits as the baseline build (which is
    /// what makes a seed reproducible across machines), for a two-component posterior (the
    /// single-`exp` branch) and a many-component one (the max/sum branch), with a partial
    /// last block. Would catch a step whose result depended on the vector width.
    #[test]
    fn block_kernel_is_bit_identical_across_instruction_sets() {
        let si = StochasticInterpolant::linear(0.1).unwrap();
        let g0: Law = Gaussian::new(array![0.0, 1.0], array![[1.0, 0.3], [0.3, 0.5]])
            .unwrap()
            .into();
        let g1: Law = Gaussian::isotropic(array![1.5, -0.5], 0.7).unwrap().into();
        let gauss = Posterior::new(&g0, &g1, &si, 0.3, Observation::Flipped, 1e-12);
        let d0: Law = Discrete::new(array![[0.0], [1.0], [3.0]], array![0.2, 0.3, 0.5])
            .unwrap()
            .into();
        let d1: Law = Discrete::new(array![[0.5], [2.0]], array![0.6, 0.4])
            .unwrap()
            .into();
        let disc = Posterior::new(&d0, &d1, &si, 0.3, Observation::Flipped, 1e-12);
        assert!(disc.comps.len() > 2);
        let count = 3 * BLOCK + 17;
        let isa = Isa::detect();
        assert_eq!(
            run::<2>(&gauss, isa, count),
            run::<2>(&gauss, Isa::Baseline, count)
        );
        assert_eq!(
            run::<1>(&disc, isa, count),
            run::<1>(&disc, Isa::Baseline, count)
        );
        assert_eq!(run::<1>(&disc, isa, count).0, count as u64);
    }
}
