//! Fixed-dimension fast path of the Rao–Blackwellized estimator at a fixed `t`.
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

use crate::montecarlo::ChunkSums;
use crate::posterior::Posterior;
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
        let arr = |v: &[f64]| {
            let mut a = [0.0; D];
            a.copy_from_slice(&v[..D]);
            a
        };
        let mat = |v: &[f64]| {
            let mut a = [[0.0; D]; D];
            for i in 0..D {
                a[i].copy_from_slice(&v[i * D..(i + 1) * D]);
            }
            a
        };
        // Classes hold contiguous runs of `post.comps`, in order.
        let mut comps = Vec::with_capacity(post.comps.len());
        for (ci, class) in post.classes.iter().enumerate() {
            for c in &post.comps[class.start..class.end] {
                comps.push(Comp {
                    log_const: c.log_weight + class.log_norm,
                    chol: mat(&class.chol),
                    white: arr(&c.white),
                    mean: arr(&c.mean),
                    offset: arr(&c.offset),
                    gain: c.gain,
                    class: ci,
                });
            }
        }
        let weights: Vec<f64> = post.comps.iter().map(|c| c.log_weight.exp()).collect();
        Some(FastField {
            chol_inv: post.classes.iter().map(|c| mat(&c.chol_inv)).collect(),
            gains: post.gains.iter().map(|g| mat(g)).collect(),
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
