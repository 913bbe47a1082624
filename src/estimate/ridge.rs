//! The ridge algebra of the RFF critic (Prop. 3.3's critic as a vector-valued ridge
//! regression, see [`super::rff`]): Gram matrices and cross-products accumulated block by
//! block, the partially penalized system `(G + λN·P) W = R` solved by a sequential Cholesky
//! factorization with the Schur-complement eigendecomposition ([`PartialRidge`]) as fallback,
//! and the held-out squared error that cross-validation compares.
//!
//! Everything runs sequentially inside the caller's parallel tasks ([`Par::Seq`]), so results
//! never depend on the thread count.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::linalg::evd;
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};

use super::error::EstimateError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::chunk_rng;
    use rand_distr::{Distribution, StandardNormal};

    /// `G = ΦᵀΦ` and `R = ΦᵀY` for `rows` standard normal rows of `m` features (the first a
    /// constant 1, like the affine column) and `k` targets, from stream `seed`.
    fn normal_equations(rows: usize, m: usize, k: usize, seed: u64) -> (Mat<f64>, Mat<f64>) {
        let mut rng = chunk_rng(seed, 0);
        let mut phi = Mat::<f64>::from_fn(rows, m, |_, _| StandardNormal.sample(&mut rng));
        phi.col_as_slice_mut(0).fill(1.0);
        let y = Mat::<f64>::from_fn(rows, k, |_, _| StandardNormal.sample(&mut rng));
        (
            mul(phi.transpose(), phi.as_ref()),
            mul(phi.transpose(), y.as_ref()),
        )
    }

    /// `PartialRidge` against the definition: `(G + s·P)·W = R` to rounding, the inverse is an
    /// inverse, and a huge penalty leaves exactly the unpenalized least-squares fit (the
    /// random-feature weights vanish). Would catch a wrong sign or block in the Schur
    /// elimination, or a penalty on the affine columns.
    #[test]
    fn partial_ridge_solves_the_partially_penalized_system() {
        let (q, m, k) = (3, 7, 2);
        let (g, r) = normal_equations(40, m, k, 9);
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
        let (q, m, k) = (1, 9, 3);
        let (g, r) = normal_equations(60, m, k, 11);
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
}
