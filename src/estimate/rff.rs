//! The random-Fourier-feature ridge critic: the critic `f ≈ m_t` of the variational form of
//! Prop. 3.3.
//!
//! Inputs `u = [(x̃ − μ)/s; (t − μₜ)/sₜ]` are standardized with the mean and standard
//! deviation of the critic's tuning draws (which depend on `X̃_t` only, never on the sign of
//! `Δ`). The features are
//!
//! ```text
//! φ(u) = [ 1,  u,  uᵢuⱼ (i ≤ j),  uᵢuⱼuₖ (i ≤ j ≤ k),  √(2/M)·cos(ωⱼᵀu/(ℓ·√(d+1)) + bⱼ)  (j = 1..M) ],
//! ωⱼ ~ N(0, I), bⱼ ~ U[0, 2π)
//! ```
//!
//! (a constant, the `d + 1` linear terms, their products while `d ≤ 21` ([`quadratic_terms`]),
//! their cubic products while `d ≤ 10` and the data can pay for them ([`cubic_terms`],
//! [`cubic_wanted`]), and `M` random Fourier features of the Gaussian kernel of bandwidth
//! `ℓ·√(d+1)` — Rahimi & Recht 2007). The critic is the vector-valued
//! ridge regression of `Δ` on `φ`:
//!
//! ```text
//! f(u) = Wᵀφ(u),   W = (ΦᵀΦ + λ·N_cv·P)⁻¹ ΦᵀΔ,   P = diag(0, …, 0, 1, …, 1),
//! ```
//!
//! with the constant unpenalized (`P` is 0 on it: see [`PartialRidge`]) and `N_cv` the draws
//! of a cross-validation training half (a total penalty chosen by CV and held fixed as `n`
//! grows, see [`RffChoice::penalty`]); `ΦᵀΦ` (`M × M`) and `ΦᵀΔ` (`M × d`) are accumulated
//! block by block with faer matrix products (`Par::Seq` inside a block, blocks summed in
//! order) and never an `N × M` matrix. `W` is linear in the targets `Δ` — the property the
//! sign-flip test uses. `ℓ` and `λ` are chosen by 2-fold cross-validation on the tuning
//! subset, the bandwidths in parallel. Each system is solved by a Cholesky factorization of
//! `ΦᵀΦ + λN·P` (one per `λ`: seven of them cost fewer flops than one eigendecomposition, which
//! is also mostly matrix–vector work), with the eigendecomposition of [`PartialRidge`] as the
//! fallback when rounding makes the shifted matrix indefinite. That algebra is in
//! [`super::ridge`], the standardization of the inputs in [`super::tuning`].
//!
//! [`PartialRidge`]: super::ridge::PartialRidge

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::error::EstimateError;
use super::options::RffOptions;
use super::ridge::{add_gram, cross, held_out_sse, ridge_solve, symmetrize};
use super::tuning::{Standardizer, TuneData};
use crate::streams::chunk_rng;
pub use crate::vecmath::cos;

const TAG_OMEGA: u64 = 0x0FF0_0001;

/// The feature map `φ` of one critic.
#[derive(Debug, Clone)]
pub struct FeatureMap {
    /// Input standardization.
    pub std: Standardizer,
    /// `(d+1) × M` frequencies, already divided by the bandwidth.
    omega: Mat<f64>,
    /// Phases `bⱼ`.
    phase: Vec<f64>,
    /// Bandwidth multiplier `ℓ`.
    pub bandwidth: f64,
    /// Whether the cubic products are features ([`cubic_terms`]).
    pub cubic: bool,
}

impl FeatureMap {
    /// Frequencies from `seed` (the same for every critic), scaled for bandwidth `ℓ`.
    pub fn new(
        std: Standardizer,
        d: usize,
        m: usize,
        bandwidth: f64,
        cubic: bool,
        seed: u64,
    ) -> FeatureMap {
        let p = d + 1;
        let mut rng = chunk_rng(seed ^ TAG_OMEGA, 0);
        let scale = 1.0 / (bandwidth * (p as f64).sqrt());
        // Column-major draw order: frequency j's p entries, then its phase.
        let mut omega = Mat::<f64>::zeros(p, m);
        let mut phase = vec![0.0; m];
        for j in 0..m {
            for i in 0..p {
                let z: f64 = StandardNormal.sample(&mut rng);
                omega[(i, j)] = z * scale;
            }
            phase[j] = std::f64::consts::TAU * rng.random::<f64>();
        }
        FeatureMap {
            std,
            omega,
            phase,
            bandwidth,
            cubic,
        }
    }

    /// Leading columns left out of the ridge penalty: the constant (see [`PartialRidge`]).
    ///
    /// Only the constant: leaving the `d + 1` linear terms unpenalized too was tried and
    /// measured worse in 10-D in a development run (`D_mid`, `n = 1000`, 40 replications of
    /// the coverage report, then `midpoint report coverage`, with the setting changed by hand:
    /// sd of the estimates 0.151 against 0.129), since `d(d + 2)` free coefficients add estimation noise that the ridge
    /// would otherwise hold in check.
    pub fn unpenalized(&self) -> usize {
        1
    }

    /// Number of features: `1 + (d + 1) + Q + M` (`Q` from [`quadratic_terms`]).
    pub fn dim(&self) -> usize {
        let p = self.omega.nrows();
        1 + p + quadratic_terms(p) + self.cubic_count() + self.omega.ncols()
    }

    /// Cubic columns: [`cubic_terms`] when enabled, else 0.
    fn cubic_count(&self) -> usize {
        if self.cubic {
            cubic_terms(self.omega.nrows())
        } else {
            0
        }
    }

    /// Features of `rows` draws (`xt` row-major `rows × d`, times `t`) as a `rows × dim`
    /// matrix.
    pub fn features(&self, xt: &[f64], t: &[f64]) -> Mat<f64> {
        let rows = t.len();
        let p = self.omega.nrows();
        let d = p - 1;
        let m = self.omega.ncols();
        let mut u = Mat::<f64>::zeros(rows, p);
        for j in 0..p {
            let (mu, inv) = (self.std.mean[j], self.std.inv_sd[j]);
            let col = u.col_as_slice_mut(j);
            if j < d {
                for r in 0..rows {
                    col[r] = (xt[r * d + j] - mu) * inv;
                }
            } else {
                for r in 0..rows {
                    col[r] = (t[r] - mu) * inv;
                }
            }
        }
        let q2 = quadratic_terms(p);
        let q3 = self.cubic_count();
        let first = 1 + p + q2 + q3;
        let mut phi = Mat::<f64>::zeros(rows, first + m);
        {
            let (_, right) = phi.as_mut().split_at_col_mut(first);
            matmul(
                right,
                Accum::Replace,
                u.as_ref(),
                self.omega.as_ref(),
                1.0,
                Par::Seq,
            );
        }
        let norm = (2.0 / m as f64).sqrt();
        for j in 0..m {
            crate::vecmath::cos_shifted_in_place(
                phi.col_as_slice_mut(first + j),
                self.phase[j],
                norm,
            );
        }
        phi.col_as_slice_mut(0).fill(1.0);
        for j in 0..p {
            phi.col_as_slice_mut(1 + j)
                .copy_from_slice(u.col_as_slice(j));
        }
        if q2 > 0 {
            let c = quadratic_scale(p);
            let mut col = 1 + p;
            for i in 0..p {
                for j in i..p {
                    let (ui, uj) = (u.col_as_slice(i), u.col_as_slice(j));
                    let out = phi.col_as_slice_mut(col);
                    for r in 0..rows {
                        out[r] = c * ui[r] * uj[r];
                    }
                    col += 1;
                }
            }
        }
        if q3 > 0 {
            let c = cubic_scale(p);
            let mut col = 1 + p + q2;
            for i in 0..p {
                for j in i..p {
                    for k in j..p {
                        let (ui, uj, uk) =
                            (u.col_as_slice(i), u.col_as_slice(j), u.col_as_slice(k));
                        let out = phi.col_as_slice_mut(col);
                        for r in 0..rows {
                            out[r] = c * ui[r] * uj[r] * uk[r];
                        }
                        col += 1;
                    }
                }
            }
        }
        phi
    }
}

/// Number of products `uᵢuⱼ` (`i ≤ j`) of the `p = d + 1` standardized inputs among the
/// features: all `p(p+1)/2` of them while that is at most [`MAX_QUADRATIC`], none beyond.
///
/// Why: the field of Gaussian endpoints is, near `t = 0`, close to a quadratic in `x̃` (the
/// branch posterior's log-odds is linear in `x̃` and multiplies the branch gains) — in 10-D the
/// random features alone left `D_t-mid` about 35% low at `n = 10³` however the ridge was set
/// (development runs, 40 replications each, with the products removed by hand). The
/// products (with the inputs' `t` column, also `t·x̃ᵢ` and `t²`) are penalized like the random
/// features, at the scale [`quadratic_scale`].
pub fn quadratic_terms(p: usize) -> usize {
    let q = p * (p + 1) / 2;
    if q <= MAX_QUADRATIC {
        q
    } else {
        0
    }
}

/// Scale `1/p` of the quadratic columns. The ridge penalizes coefficients, so a column's
/// scale sets how hard its direction is held back: unscaled, the products' share of the
/// implied kernel, `(uᵀv)²/2 ~ p²/2`, dwarfs the random features' (≤ 1), and they were
/// effectively unpenalized — in 10-D `D_mid` at `n = 10³` the estimates' sd rose from 0.13 to
/// 0.46 (development runs, 40 replications each). Scaled by `1/p` their kernel is of order one, like the rest.
pub fn quadratic_scale(p: usize) -> f64 {
    1.0 / p as f64
}

/// Number of products `uᵢuⱼuₖ` (`i ≤ j ≤ k`) of the `p = d + 1` inputs: `p(p+1)(p+2)/6`
/// while that is at most [`MAX_CUBIC`] (`d ≤ 10`), none beyond.
///
/// Why: at `t` near 0 the field of two Gaussians is `x̃` times a sigmoid of a projection
/// (the branch posterior), e.g. `m₀(x) = w₀(x)(μ − x) + w₁(x)x` for `N(0, I)` against
/// `N(μ, I)`; the quadratic products carry its first-order part `x̃ᵢ·⟨μ, x̃⟩` and the cubic ones
/// the next. The random features, isotropic in `d + 1` dimensions, represent such a product of
/// a linear map with a function of one direction poorly: in 10-D at `n = 10⁴` (10
/// replications each, `cargo run --release --example critic_bias -- 10000 10 off|on 0.003
/// 256|1024`) `D_t-mid` came out low by 0.041 without cubic terms and by 0.013 with them
/// (exact 0.829; sd 0.029–0.030, so ±0.009 on each bias), while 1024 random features in place
/// of 256, without cubic terms, still left it low by 0.039.
pub fn cubic_terms(p: usize) -> usize {
    let q = p * (p + 1) * (p + 2) / 6;
    if q <= MAX_CUBIC {
        q
    } else {
        0
    }
}

/// Largest number of cubic features (`d ≤ 10`).
pub const MAX_CUBIC: usize = 286;

/// Scale of the cubic columns, `3/p^{3/2}`: their implied kernel `(uᵀv)³/6` is then of the
/// order of the random features' (as [`quadratic_scale`] does for the products). The factor
/// 3 over `1/p^{3/2}` penalizes them less: with the factor changed by hand in
/// `critic_bias -- 10000 10 on 0.01 256` (see [`cubic_terms`]), 3 and 10 left the same bias
/// (0.019 low) and 1 more (0.035); those runs used a build that no shipped switch reproduces.
pub fn cubic_scale(p: usize) -> f64 {
    3.0 / (p as f64).powf(1.5)
}

/// Whether the critic of a half with `pairs` training pairs gets the cubic products
/// (`RffOptions::cubic` = `None`): when there are at least 4 pairs per polynomial term
/// (`1 + p + quadratic + cubic`). The polynomial degree of the sieve grows with `n`, and at
/// small `n` — in 10-D below about 5,800 samples per side with two folds — the 286 extra
/// columns would cost time (Gram and Cholesky work grow with the square and cube of the
/// feature count) for a bias that is small next to the standard error there.
pub fn cubic_wanted(p: usize, pairs: usize) -> bool {
    let terms = 1 + p + quadratic_terms(p) + cubic_terms(p);
    cubic_terms(p) > 0 && pairs >= 4 * terms
}

/// Largest number of quadratic features (`d ≤ 21`).
pub const MAX_QUADRATIC: usize = 253;

/// The chosen hyperparameters and their cross-validated mean squared error per draw.
#[derive(Debug, Clone, Copy)]
pub struct RffChoice {
    /// `ℓ`.
    pub bandwidth: f64,
    /// `λ` (per draw of the CV training half).
    pub ridge: f64,
    /// The total penalty `λ·N_cv` (`N_cv`: draws in a CV training half). The final fit uses
    /// this total, not `λ` per draw: the best per-draw ridge falls as the training set grows,
    /// and holding it fixed would shrink the critic by a fixed factor at any `n` (an
    /// inconsistent estimate — measured 0.89 for an exact 1.0 at `n = 10⁶`, `d = 10`).
    pub penalty: f64,
    /// CV mean of `‖Δ − f‖²` per draw.
    pub cv_mse: f64,
}

/// Most random features used while cross-validating `(ℓ, λ)`.
///
/// The features are normalized (`√(2/M)·cos`) so that `φᵀφ'` approximates the same Gaussian
/// kernel whatever `M`, and the first `M'` frequencies of a map with `M > M'` are those of
/// the map with `M'` (same seed, drawn in order): the ridge problem at `M` features is the
/// one at `M'` with a finer approximation of the kernel, and its bandwidth and ridge carry
/// over. CV costs two Cholesky factorizations per bandwidth and ridge (140 on the default
/// grids), `O(M³)` each; capping `M` here keeps a large final `M` affordable.
pub const TUNE_FEATURES: usize = 256;

/// Picks `(ℓ, λ)` minimizing the 2-fold CV squared error on `data` (pairs split by parity).
pub fn tune(
    data: &TuneData,
    std: &Standardizer,
    d: usize,
    r: usize,
    opts: &RffOptions,
    seed: u64,
) -> Result<RffChoice, EstimateError> {
    let halves = [data.half(0, d, r), data.half(1, d, r)];
    let n_cv = 0.5 * (halves[0].t.len() + halves[1].t.len()) as f64;
    // Per bandwidth (in parallel, collected in grid order): CV squared error per ridge and
    // the number of held-out rows.
    let per_bandwidth: Vec<Result<(Vec<f64>, usize), EstimateError>> = opts
        .bandwidths
        .par_iter()
        .map(|&ell| {
            let fmap = FeatureMap::new(
                std.clone(),
                d,
                opts.features.min(TUNE_FEATURES),
                ell,
                opts.cubic.unwrap_or(false),
                seed,
            );
            // Per half: Gram G_h = Φ_hᵀΦ_h, cross-products R_h = Φ_hᵀΔ_h, Σ_rows ‖Δ‖².
            let mut parts = Vec::with_capacity(2);
            for h in &halves {
                let phi = fmap.features(&h.xt, &h.t);
                let mut g = Mat::<f64>::zeros(phi.ncols(), phi.ncols());
                add_gram(&mut g, phi.as_ref());
                symmetrize(&mut g);
                let rmat = cross(phi.as_ref(), &h.delta, d, r);
                let dd = r as f64 * h.delta.iter().map(|v| v * v).sum::<f64>();
                parts.push((g, rmat, dd, phi.nrows()));
            }
            let mut sse = vec![0.0; opts.ridges.len()];
            let mut count = 0usize;
            for (a, b) in [(0, 1), (1, 0)] {
                let ((ga, ra, _, na), (gb, rb, ddb, nb)) = (&parts[a], &parts[b]);
                if *na == 0 || *nb == 0 {
                    continue;
                }
                for (li, &lam) in opts.ridges.iter().enumerate() {
                    let coef = ridge_solve(ga, fmap.unpenalized(), ra.as_ref(), lam * *na as f64)?;
                    sse[li] += held_out_sse(gb, rb, *ddb, &coef);
                }
                count += nb;
            }
            Ok((sse, count))
        })
        .collect();
    let mut best: Option<RffChoice> = None;
    for (&ell, res) in opts.bandwidths.iter().zip(per_bandwidth) {
        let (sse, count) = res?;
        for (li, &lam) in opts.ridges.iter().enumerate() {
            let mse = if count > 0 {
                sse[li] / count as f64
            } else {
                0.0
            };
            if best.is_none_or(|b| mse < b.cv_mse) {
                best = Some(RffChoice {
                    bandwidth: ell,
                    ridge: lam,
                    penalty: lam * n_cv.max(1.0),
                    cv_mse: mse,
                });
            }
        }
    }
    Ok(best.expect("non-empty grids"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_approximate_the_gaussian_kernel() {
        // Would catch a wrong normalization or bandwidth: the RFF part of φ(u)ᵀφ(v) must
        // approach exp(−‖u−v‖²/(2ℓ²(d+1))). With M = 8192 the Monte Carlo error of the kernel
        // estimate is at most √(1/M)·(1 + k) ≈ 0.02 (sd); tolerance 0.06 (3 sd, on 3 pairs).
        let d = 2;
        let std = Standardizer {
            mean: vec![0.0; 3],
            inv_sd: vec![1.0; 3],
        };
        let fm = FeatureMap::new(std, d, 8192, 1.0, false, 7);
        let xt = [0.0, 0.0, 0.5, -0.3, 1.0, 1.0];
        let t = [0.0, 0.2, 0.4];
        let phi = fm.features(&xt, &t);
        let u: Vec<[f64; 3]> = vec![[0.0, 0.0, 0.0], [0.5, -0.3, 0.2], [1.0, 1.0, 0.4]];
        for a in 0..3 {
            for b in 0..3 {
                let first = 4 + quadratic_terms(3);
                let k: f64 = (first..phi.ncols())
                    .map(|j| phi[(a, j)] * phi[(b, j)])
                    .sum();
                let d2: f64 = (0..3).map(|i| (u[a][i] - u[b][i]).powi(2)).sum();
                let want = (-d2 / (2.0 * 3.0)).exp();
                assert!((k - want).abs() < 0.06, "{a},{b}: {k} vs {want}");
            }
        }
        // Constant and linear columns.
        assert_eq!(phi[(1, 0)], 1.0);
        assert_eq!((phi[(1, 1)], phi[(1, 2)], phi[(1, 3)]), (0.5, -0.3, 0.2));
        // Quadratic columns: u₁², u₁u₂, u₁t, u₂², u₂t, t², scaled by 1/p = 1/3.
        let want = [0.25, -0.15, 0.1, 0.09, -0.06, 0.04];
        for (c, w) in want.iter().enumerate() {
            assert!(
                (phi[(1, 4 + c)] - w / 3.0).abs() < 1e-15,
                "column {}",
                4 + c
            );
        }
    }

    /// With `cubic` the ten products `uᵢuⱼuₖ` (`i ≤ j ≤ k`, lexicographic) of `p = 3` inputs
    /// follow the quadratic ones at scale `3/p^{3/2}`, the random features move behind them
    /// unchanged, and the sieve rule switches them on at 4 pairs per polynomial term. Would
    /// catch a wrong column order, scale or offset of the random features.
    #[test]
    fn cubic_columns_follow_the_quadratic_ones() {
        let std = Standardizer {
            mean: vec![0.0; 3],
            inv_sd: vec![1.0; 3],
        };
        let (xt, t) = ([0.5, -0.3, 1.0, 2.0], [0.2, 0.4]);
        let plain = FeatureMap::new(std.clone(), 2, 16, 1.0, false, 7).features(&xt, &t);
        let fm = FeatureMap::new(std, 2, 16, 1.0, true, 7);
        let phi = fm.features(&xt, &t);
        assert_eq!((phi.ncols(), fm.dim()), (4 + 6 + 10 + 16, 4 + 6 + 10 + 16));
        let u = [0.5, -0.3, 0.2];
        let mut col = 10;
        for i in 0..3 {
            for j in i..3 {
                for k in j..3 {
                    let want = u[i] * u[j] * u[k] * 3.0 / 3f64.powf(1.5);
                    assert!((phi[(0, col)] - want).abs() < 1e-15, "column {col}");
                    col += 1;
                }
            }
        }
        for j in 0..16 {
            assert_eq!(phi[(1, 20 + j)], plain[(1, 10 + j)], "random feature {j}");
        }
        // 1 + 3 + 6 + 10 = 20 polynomial terms: cubic from 80 pairs per half on.
        assert!(!cubic_wanted(3, 79) && cubic_wanted(3, 80));
        // 12-D (p = 13): 455 cubic products, more than MAX_CUBIC: never.
        assert!(!cubic_wanted(13, 1 << 30));
    }
}
