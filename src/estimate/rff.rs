//! The random-Fourier-feature ridge critic.
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
//! with the constant unpenalized (`P` is 0 on it: see [`PartialRidge`])
//! and `N_cv` the draws of a cross-validation training half (a total penalty chosen by CV and
//! held fixed as `n` grows, see [`RffChoice::penalty`]); `ΦᵀΦ` (`M × M`) and `ΦᵀΔ` (`M × d`) are accumulated block by block
//! with faer matrix products (`Par::Seq` inside a block, blocks summed in order) and never an
//! `N × M` matrix. `W` is linear in the targets `Δ` — the property the sign-flip test uses.
//! `ℓ` and `λ` are chosen by 2-fold cross-validation on the tuning subset, the bandwidths in
//! parallel. Each system is solved by a Cholesky factorization of `ΦᵀΦ + λN·P` (one per
//! `λ`: seven of them cost fewer flops than one eigendecomposition, which is also mostly
//! matrix–vector work), with the eigendecomposition of [`PartialRidge`] as the fallback when
//! rounding makes the shifted matrix indefinite.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::linalg::evd;
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::error::EstimateError;
use super::options::RffOptions;
use crate::streams::chunk_rng;
pub use crate::vecmath::cos;

const TAG_OMEGA: u64 = 0x0FF0_0001;

/// Standardization of the critic inputs `(x̃, t)`.
#[derive(Debug, Clone)]
pub struct Standardizer {
    /// Means of the `d + 1` inputs.
    pub mean: Vec<f64>,
    /// `1/sd` of the inputs (0 for a constant input).
    pub inv_sd: Vec<f64>,
}

impl Standardizer {
    /// From rows `xt` (`rows × d`, row-major) and times `t`.
    pub fn fit(xt: &[f64], t: &[f64], d: usize) -> Standardizer {
        let rows = t.len();
        let p = d + 1;
        let mut mean = vec![0.0; p];
        let mut m2 = vec![0.0; p];
        for r in 0..rows {
            let n = (r + 1) as f64;
            for j in 0..p {
                let v = if j < d { xt[r * d + j] } else { t[r] };
                let delta = v - mean[j];
                mean[j] += delta / n;
                m2[j] += delta * (v - mean[j]);
            }
        }
        let inv_sd = m2
            .iter()
            .map(|&s| {
                let sd = if rows > 1 {
                    (s / (rows - 1) as f64).sqrt()
                } else {
                    0.0
                };
                if sd > 1e-12 * (1.0 + mean.iter().fold(0.0f64, |a, b| a.max(b.abs()))) {
                    1.0 / sd
                } else {
                    0.0
                }
            })
            .collect();
        Standardizer { mean, inv_sd }
    }

    /// Standardized input `j` of row `r`.
    #[inline]
    pub fn apply(&self, xt: &[f64], t: f64, out: &mut [f64]) {
        let d = xt.len();
        for j in 0..d {
            out[j] = (xt[j] - self.mean[j]) * self.inv_sd[j];
        }
        out[d] = (t - self.mean[d]) * self.inv_sd[d];
    }
}

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
    /// `midpoint report coverage` with the setting changed by hand: sd of the estimates 0.151
    /// against 0.129), since `d(d + 2)` free coefficients add estimation noise that the ridge
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

/// `G += ΦᵀΦ` (lower triangle only; call [`symmetrize`] at the end).
pub fn add_gram(g: &mut Mat<f64>, phi: MatRef<'_, f64>) {
    triangular::matmul(
        g.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Add,
        phi.transpose(),
        BlockStructure::Rectangular,
        phi,
        BlockStructure::Rectangular,
        1.0,
        Par::Seq,
    );
}

/// Copies the lower triangle onto the upper one.
pub fn symmetrize(g: &mut Mat<f64>) {
    for j in 0..g.ncols() {
        for i in 0..j {
            g[(i, j)] = g[(j, i)];
        }
    }
}

/// `Φᵀ·Δ` where draw row `r` has target `delta[pair_of(r)]`: `rows_per_pair` consecutive rows
/// share a pair.
pub fn cross(phi: MatRef<'_, f64>, delta: &[f64], d: usize, rows_per_pair: usize) -> Mat<f64> {
    let rows = phi.nrows();
    let dm = Mat::<f64>::from_fn(rows, d, |r, c| delta[(r / rows_per_pair) * d + c]);
    let mut out = Mat::<f64>::zeros(phi.ncols(), d);
    matmul(
        out.as_mut(),
        Accum::Replace,
        phi.transpose(),
        dm.as_ref(),
        1.0,
        Par::Seq,
    );
    out
}

/// Eigendecomposition `G = U Λ Uᵀ` of a symmetric matrix (lower triangle read), computed
/// sequentially like [`Cholesky`].
pub fn eigen(g: &Mat<f64>) -> Result<(Mat<f64>, Vec<f64>), EstimateError> {
    let n = g.nrows();
    let mut u = Mat::<f64>::zeros(n, n);
    let mut s = faer::diag::Diag::<f64>::zeros(n);
    let mut mem = MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
        n,
        evd::ComputeEigenvectors::Yes,
        Par::Seq,
        Default::default(),
    ));
    evd::self_adjoint_evd(
        g.as_ref(),
        s.as_mut(),
        Some(u.as_mut()),
        Par::Seq,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .map_err(|e| EstimateError::Numerical(format!("eigendecomposition failed: {e:?}")))?;
    let s = s.column_vector();
    let vals = (0..n).map(|i| s[i].max(0.0)).collect();
    Ok((u, vals))
}

/// A lower Cholesky factor `L` (`H = L Lᵀ`), computed and applied with [`Par::Seq`].
///
/// Why not faer's `Mat::llt`: that follows faer's global setting, rayon by default, and the
/// ridge systems here are solved inside tasks that already occupy every thread (bandwidths
/// and folds in cross-validation, groups in the jackknife), where a further parallel split
/// only adds overhead — and a split that follows the thread count could make the rounding,
/// and so the results, depend on it. Alone on an idle machine the sequential factorization
/// of an `M = 328` system is also faster: 0.24 ms against 0.31 ms (`cargo bench --bench
/// ridge`, faer 0.24, 2026-12-02).
pub struct Cholesky {
    l: Mat<f64>,
}

impl Cholesky {
    /// Factors `h` (its lower triangle is read; its storage becomes the factor's), or `None`
    /// when it is not numerically positive definite.
    pub fn factor(mut h: Mat<f64>) -> Option<Cholesky> {
        let n = h.nrows();
        let mut mem = MemBuffer::new(llt::factor::cholesky_in_place_scratch::<f64>(
            n,
            Par::Seq,
            Default::default(),
        ));
        llt::factor::cholesky_in_place(
            h.as_mut(),
            Default::default(),
            Par::Seq,
            MemStack::new(&mut mem),
            Default::default(),
        )
        .ok()?;
        for j in 1..n {
            for i in 0..j {
                h[(i, j)] = 0.0;
            }
        }
        Some(Cholesky { l: h })
    }

    /// `H⁻¹ R`.
    pub fn solve(&self, r: MatRef<'_, f64>) -> Mat<f64> {
        let mut x = r.to_owned();
        let n = self.l.nrows();
        let mut mem = MemBuffer::new(llt::solve::solve_in_place_scratch::<f64>(
            n,
            x.ncols(),
            Par::Seq,
        ));
        llt::solve::solve_in_place(
            self.l.as_ref(),
            x.as_mut(),
            Par::Seq,
            MemStack::new(&mut mem),
        );
        x
    }

    /// `H⁻¹`, both triangles.
    pub fn inverse(&self) -> Mat<f64> {
        let n = self.l.nrows();
        let mut out = Mat::<f64>::zeros(n, n);
        let mut mem = MemBuffer::new(llt::inverse::inverse_scratch::<f64>(n, Par::Seq));
        llt::inverse::inverse(
            out.as_mut(),
            self.l.as_ref(),
            Par::Seq,
            MemStack::new(&mut mem),
        );
        // faer writes the lower triangle only.
        symmetrize(&mut out);
        out
    }
}

/// `C = A·B`.
fn mul(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut c = Mat::<f64>::zeros(a.nrows(), b.ncols());
    matmul(c.as_mut(), Accum::Replace, a, b, 1.0, Par::Seq);
    c
}

/// The ridge system `(G + λN·P) W = R` with `P = diag(0, …, 0, 1, …, 1)`: the first `q`
/// columns of `Φ` are not penalized (the critic uses `q = 1`: the constant).
///
/// Why: a penalty on the intercept shrinks the critic's constant part toward 0, and the
/// held-out value is then low even where the field is exactly constant — `D_mid` of two
/// Gaussians with equal covariances, whose field is the mean shift, came out at 0.62 for an
/// exact 1.0 in 10-D at `n = 1000`. Textbook ridge leaves the intercept unpenalized.
///
/// With `G = [A B; Bᵀ C]` (`A`: `q × q`), the unpenalized block is eliminated once: the Schur
/// complement `S = C − BᵀA⁻¹B = UΛUᵀ` is diagonalized once per feature map, and every `λ`
/// costs two products: `W₁ = U(Λ + λN)⁻¹Uᵀ(R₁ − BᵀA⁻¹R₀)`, `W₀ = A⁻¹(R₀ − BW₁)`. `A` gets
/// a relative `1e-10` on its diagonal so that an input that is constant in the data (the time
/// column of `D_mid`, standardized to 0) leaves a zero coefficient instead of a singular
/// system.
#[derive(Debug, Clone)]
pub struct PartialRidge {
    q: usize,
    a_inv: Mat<f64>,
    b: Mat<f64>,
    /// `A⁻¹B`.
    a_inv_b: Mat<f64>,
    u: Mat<f64>,
    vals: Vec<f64>,
}

impl PartialRidge {
    /// From a symmetric Gram matrix (both triangles filled) whose first `q` columns are
    /// unpenalized.
    pub fn new(g: &Mat<f64>, q: usize) -> Result<PartialRidge, EstimateError> {
        let m = g.nrows();
        let tr = (0..q).map(|i| g[(i, i)]).sum::<f64>() / q as f64;
        let eps = 1e-10 * tr.max(f64::MIN_POSITIVE);
        let a = Mat::<f64>::from_fn(q, q, |i, j| g[(i, j)] + if i == j { eps } else { 0.0 });
        let (ua, va) = eigen(&a)?;
        if va.iter().any(|&v| v <= 0.0) {
            return Err(EstimateError::Numerical(
                "the affine part of the critic is singular".into(),
            ));
        }
        let scaled = Mat::<f64>::from_fn(q, q, |i, j| ua[(i, j)] / va[j]);
        let a_inv = mul(scaled.as_ref(), ua.transpose());
        let b = g.as_ref().submatrix(0, q, q, m - q).to_owned();
        let a_inv_b = mul(a_inv.as_ref(), b.as_ref());
        let mut s = g.as_ref().submatrix(q, q, m - q, m - q).to_owned();
        matmul(
            s.as_mut(),
            Accum::Add,
            b.transpose(),
            a_inv_b.as_ref(),
            -1.0,
            Par::Seq,
        );
        symmetrize_from_lower(&mut s);
        let (u, vals) = eigen(&s)?;
        Ok(PartialRidge {
            q,
            a_inv,
            b,
            a_inv_b,
            u,
            vals,
        })
    }

    /// `W = (G + shift·P)⁻¹ R` for `R` (`m × k`).
    pub fn solve(&self, r: MatRef<'_, f64>, shift: f64) -> Mat<f64> {
        let (q, m) = (self.q, r.nrows());
        let (r0, r1) = r.split_at_row(q);
        // s = R₁ − (A⁻¹B)ᵀR₀
        let mut s = r1.to_owned();
        matmul(
            s.as_mut(),
            Accum::Add,
            self.a_inv_b.transpose(),
            r0,
            -1.0,
            Par::Seq,
        );
        let mut us = mul(self.u.transpose(), s.as_ref());
        for i in 0..us.nrows() {
            let f = 1.0 / (self.vals[i] + shift);
            for c in 0..us.ncols() {
                us[(i, c)] *= f;
            }
        }
        let w1 = mul(self.u.as_ref(), us.as_ref());
        // W₀ = A⁻¹(R₀ − B W₁)
        let mut t = r0.to_owned();
        matmul(
            t.as_mut(),
            Accum::Add,
            self.b.as_ref(),
            w1.as_ref(),
            -1.0,
            Par::Seq,
        );
        let w0 = mul(self.a_inv.as_ref(), t.as_ref());
        Mat::<f64>::from_fn(m, r.ncols(), |i, c| {
            if i < q {
                w0[(i, c)]
            } else {
                w1[(i - q, c)]
            }
        })
    }

    /// The matrix `(G + shift·P)⁻¹` (block inverse through the same Schur complement).
    pub fn inverse(&self, shift: f64) -> Mat<f64> {
        let q = self.q;
        let mr = self.u.nrows();
        let scaled = Mat::<f64>::from_fn(mr, mr, |i, j| self.u[(i, j)] / (self.vals[j] + shift));
        let s_inv = mul(scaled.as_ref(), self.u.transpose());
        // Off-diagonal block −A⁻¹B·S⁻¹, and A⁻¹ + A⁻¹B·S⁻¹·(A⁻¹B)ᵀ.
        let off = mul(self.a_inv_b.as_ref(), s_inv.as_ref());
        let mut top = self.a_inv.clone();
        matmul(
            top.as_mut(),
            Accum::Add,
            off.as_ref(),
            self.a_inv_b.transpose(),
            1.0,
            Par::Seq,
        );
        Mat::<f64>::from_fn(q + mr, q + mr, |i, j| match (i < q, j < q) {
            (true, true) => top[(i, j)],
            (true, false) => -off[(i, j - q)],
            (false, true) => -off[(j, i - q)],
            (false, false) => s_inv[(i - q, j - q)],
        })
    }
}

/// Averages the two triangles (a product of rounded terms is symmetric only to rounding).
fn symmetrize_from_lower(s: &mut Mat<f64>) {
    for j in 0..s.ncols() {
        for i in 0..j {
            let v = 0.5 * (s[(i, j)] + s[(j, i)]);
            s[(i, j)] = v;
            s[(j, i)] = v;
        }
    }
}

/// Cholesky factor of `G + shift·P` (with [`PartialRidge`]'s relative `1e-10` on the
/// unpenalized diagonal, so both solve the same system), or `None` when rounding makes it
/// indefinite — the caller then falls back to [`PartialRidge`], which clamps the Schur
/// complement's eigenvalues at 0.
pub fn shifted_cholesky(g: &Mat<f64>, q: usize, shift: f64) -> Option<Cholesky> {
    let tr = (0..q).map(|i| g[(i, i)]).sum::<f64>() / q as f64;
    let eps = 1e-10 * tr.max(f64::MIN_POSITIVE);
    let mut h = g.clone();
    for i in 0..h.nrows() {
        h[(i, i)] += if i < q { eps } else { shift };
    }
    Cholesky::factor(h)
}

/// `W = (G + shift·P)⁻¹ R`: Cholesky, or [`PartialRidge`] where that fails.
pub fn ridge_solve(
    g: &Mat<f64>,
    q: usize,
    r: MatRef<'_, f64>,
    shift: f64,
) -> Result<Mat<f64>, EstimateError> {
    match shifted_cholesky(g, q, shift) {
        Some(llt) => Ok(llt.solve(r)),
        None => Ok(PartialRidge::new(g, q)?.solve(r, shift)),
    }
}

/// `(G + shift·P)⁻¹` (symmetric): Cholesky, or [`PartialRidge`] where that fails.
pub fn ridge_inverse(g: &Mat<f64>, q: usize, shift: f64) -> Result<Mat<f64>, EstimateError> {
    match shifted_cholesky(g, q, shift) {
        Some(c) => Ok(c.inverse()),
        None => Ok(PartialRidge::new(g, q)?.inverse(shift)),
    }
}

/// `Σ_rows ‖Δ − Wᵀφ‖²` over a held-out set from its Gram `G`, cross-products `R = ΦᵀΔ` and
/// `Σ_rows ‖Δ‖²`: `Σ‖Δ‖² − 2⟨W, R⟩ + ⟨W, G W⟩`. The same sum as predicting every held-out
/// row, at `m²d` instead of `N·m·d` per ridge (cross-validation tries seven); the terms are
/// of the size of `Σ‖Δ‖²`, which the residual is not small against for a noisy `Δ`.
pub fn held_out_sse(g: &Mat<f64>, r: &Mat<f64>, dd: f64, w: &Mat<f64>) -> f64 {
    let gw = mul(g.as_ref(), w.as_ref());
    let (mut cross_term, mut quad_term) = (0.0, 0.0);
    for c in 0..w.ncols() {
        for i in 0..w.nrows() {
            cross_term += w[(i, c)] * r[(i, c)];
            quad_term += w[(i, c)] * gw[(i, c)];
        }
    }
    dd - 2.0 * cross_term + quad_term
}

/// Tuning draws: rows of `X̃_t`, times, per-pair `Δ`, `r` rows per pair.
#[derive(Debug, Clone, Default)]
pub struct TuneData {
    /// `X̃_t` rows, row-major.
    pub xt: Vec<f64>,
    /// Times.
    pub t: Vec<f64>,
    /// `Δ` per pair, row-major.
    pub delta: Vec<f64>,
}

impl TuneData {
    /// Keeps every other pair starting at `parity` (0 or 1).
    pub fn half(&self, parity: usize, d: usize, r: usize) -> TuneData {
        let pairs = self.delta.len() / d;
        let mut out = TuneData::default();
        for i in (parity..pairs).step_by(2) {
            out.delta.extend_from_slice(&self.delta[i * d..(i + 1) * d]);
            out.xt
                .extend_from_slice(&self.xt[i * r * d..(i + 1) * r * d]);
            out.t.extend_from_slice(&self.t[i * r..(i + 1) * r]);
        }
        out
    }
}

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

    /// `PartialRidge` against the definition: `(G + s·P)·W = R` to rounding, the inverse is an
    /// inverse, and a huge penalty leaves exactly the unpenalized least-squares fit (the
    /// random-feature weights vanish). Would catch a wrong sign or block in the Schur
    /// elimination, or a penalty on the affine columns.
    #[test]
    fn partial_ridge_solves_the_partially_penalized_system() {
        let (rows, q, m, k) = (40, 3, 7, 2);
        let mut rng = chunk_rng(9, 0);
        let mut phi = Mat::<f64>::from_fn(rows, m, |_, _| StandardNormal.sample(&mut rng));
        phi.col_as_slice_mut(0).fill(1.0);
        let y = Mat::<f64>::from_fn(rows, k, |_, _| StandardNormal.sample(&mut rng));
        let g = mul(phi.transpose(), phi.as_ref());
        let r = mul(phi.transpose(), y.as_ref());
        let pr = PartialRidge::new(&g, q).unwrap();
        for shift in [0.1, 3.0, 100.0] {
            let w = pr.solve(r.as_ref(), shift);
            let mut lhs = mul(g.as_ref(), w.as_ref());
            for i in q..m {
                for c in 0..k {
                    lhs[(i, c)] += shift * w[(i, c)];
                }
            }
            for i in 0..m {
                for c in 0..k {
                    assert!((lhs[(i, c)] - r[(i, c)]).abs() < 1e-9 * (1.0 + r[(i, c)].abs()));
                }
            }
            let inv = pr.inverse(shift);
            let w2 = mul(inv.as_ref(), r.as_ref());
            for i in 0..m {
                for c in 0..k {
                    assert!((w2[(i, c)] - w[(i, c)]).abs() < 1e-9 * (1.0 + w[(i, c)].abs()));
                }
            }
        }
        // Penalty → ∞: W₁ → 0 and W₀ → least squares on the first q columns alone.
        let w = pr.solve(r.as_ref(), 1e14);
        let g0 = g.as_ref().submatrix(0, 0, q, q).to_owned();
        let ols = PartialRidge::new(&g0, q)
            .unwrap()
            .solve(r.as_ref().submatrix(0, 0, q, k), 0.0);
        for c in 0..k {
            for i in q..m {
                assert!(w[(i, c)].abs() < 1e-10);
            }
            for i in 0..q {
                assert!((w[(i, c)] - ols[(i, c)]).abs() < 1e-8, "{i},{c}");
            }
        }
    }

    /// The Cholesky path solves the same system as the Schur/eigen path it falls back to:
    /// weights and inverse agree to 1e-9 relative (a missing or misplaced shift, or the
    /// unpenalized block penalized, would differ at the size of the shift's effect).
    #[test]
    fn cholesky_and_eigen_paths_agree() {
        let (rows, q, m, k) = (60, 1, 9, 3);
        let mut rng = chunk_rng(11, 0);
        let mut phi = Mat::<f64>::from_fn(rows, m, |_, _| StandardNormal.sample(&mut rng));
        phi.col_as_slice_mut(0).fill(1.0);
        let y = Mat::<f64>::from_fn(rows, k, |_, _| StandardNormal.sample(&mut rng));
        let g = mul(phi.transpose(), phi.as_ref());
        let r = mul(phi.transpose(), y.as_ref());
        let pr = PartialRidge::new(&g, q).unwrap();
        for shift in [1e-4, 0.5, 30.0] {
            assert!(shifted_cholesky(&g, q, shift).is_some());
            let (w, w_eig) = (
                ridge_solve(&g, q, r.as_ref(), shift).unwrap(),
                pr.solve(r.as_ref(), shift),
            );
            let (a, a_eig) = (ridge_inverse(&g, q, shift).unwrap(), pr.inverse(shift));
            for i in 0..m {
                for c in 0..k {
                    assert!((w[(i, c)] - w_eig[(i, c)]).abs() < 1e-9 * (1.0 + w_eig[(i, c)].abs()));
                }
                for j in 0..m {
                    assert!((a[(i, j)] - a_eig[(i, j)]).abs() < 1e-9 * (1.0 + a_eig[(i, j)].abs()));
                    assert_eq!(a[(i, j)], a[(j, i)]);
                }
            }
        }
    }

    /// `held_out_sse` equals the squared error of predicting every held-out row (to rounding
    /// of sums of the size of `Σ‖Δ‖²`).
    #[test]
    fn held_out_sse_is_the_prediction_error() {
        let (rows, m, k) = (50, 6, 2);
        let mut rng = chunk_rng(12, 0);
        let phi = Mat::<f64>::from_fn(rows, m, |_, _| StandardNormal.sample(&mut rng));
        let y = Mat::<f64>::from_fn(rows, k, |_, _| StandardNormal.sample(&mut rng));
        let w = Mat::<f64>::from_fn(m, k, |_, _| StandardNormal.sample(&mut rng));
        let pred = mul(phi.as_ref(), w.as_ref());
        let mut direct = 0.0;
        let mut dd = 0.0;
        for i in 0..rows {
            for c in 0..k {
                direct += (y[(i, c)] - pred[(i, c)]).powi(2);
                dd += y[(i, c)].powi(2);
            }
        }
        let g = mul(phi.transpose(), phi.as_ref());
        let r = mul(phi.transpose(), y.as_ref());
        let sse = held_out_sse(&g, &r, dd, &w);
        assert!((sse - direct).abs() < 1e-10 * direct, "{sse} vs {direct}");
    }

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
