//! The Fréchet distance between two Gaussians (FID step 6), in float64:
//!
//! ```text
//! FID = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr((Σ₁Σ₂)^{1/2})
//! ```
//!
//! NVlabs takes `scipy.linalg.sqrtm(Σ₁Σ₂)` and keeps the real part. The numerically sound
//! equivalent of the protocol notes is `tr((Σ₁Σ₂)^{1/2}) = Σ √max(λᵢ, 0)` over the eigenvalues
//! of the symmetric `Σ₁^{1/2} Σ₂ Σ₁^{1/2}` (similar to `Σ₁Σ₂`). Those `√λᵢ` are the singular
//! values of `C = D₁ U₁ᵀ U₂ D₂`, where `Σₖ = Uₖ Dₖ² Uₖᵀ`, because
//! `C Cᵀ = D₁U₁ᵀ Σ₂ U₁D₁` is `Σ₁^{1/2} Σ₂ Σ₁^{1/2}` in the eigenbasis of `Σ₁`. We compute the
//! singular values of `C` rather than the eigenvalues of `C Cᵀ`: forming `C Cᵀ` squares
//! everything, so the rounding noise `ε‖Σ‖²` of its (many, for rank-deficient Σ) zero
//! eigenvalues would come back as `√ε‖Σ‖` per eigenvalue after the square root; singular
//! values keep it at `ε‖Σ‖`. The result is also symmetric in (1, 2) by construction
//! (swapping gives `Cᵀ`).

use super::stats::Statistics;
use super::FidError;
use faer::{Mat, Side};
use ndarray::Array2;

/// `Uₖ Dₖ` with `Dₖ = diag(√max(sₖ, 0))` from the eigendecomposition `Σ = U diag(s) Uᵀ`; the
/// clamp drops the rounding-level negative eigenvalues of a positive semi-definite matrix.
fn sqrt_factor(sigma: &Array2<f64>) -> Result<Mat<f64>, FidError> {
    let d = sigma.nrows();
    let m = Mat::from_fn(d, d, |i, j| sigma[(i, j)]);
    let evd = m
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| FidError::Linalg(format!("eigendecomposition of sigma: {e:?}")))?;
    let (u, s) = (evd.U(), evd.S());
    Ok(Mat::from_fn(d, d, |i, j| u[(i, j)] * s[j].max(0.0).sqrt()))
}

/// `tr((Σ₁Σ₂)^{1/2})` for symmetric positive semi-definite `Σ₁`, `Σ₂` (module docs).
pub fn trace_sqrt_product(s1: &Array2<f64>, s2: &Array2<f64>) -> Result<f64, FidError> {
    let d = s1.nrows();
    if s1.dim() != (d, d) || s2.dim() != (d, d) {
        return Err(FidError::Statistics(format!(
            "covariances of shapes {:?} and {:?}",
            s1.dim(),
            s2.dim()
        )));
    }
    if !s1.iter().chain(s2.iter()).all(|v| v.is_finite()) {
        return Err(FidError::Statistics(
            "covariance contains NaN or infinite values".into(),
        ));
    }
    let a = sqrt_factor(s1)?;
    let b = sqrt_factor(s2)?;
    // C = (U₁D₁)ᵀ (U₂D₂) = D₁ U₁ᵀ U₂ D₂.
    let c = a.transpose() * &b;
    let sv = c
        .singular_values()
        .map_err(|e| FidError::Linalg(format!("singular values: {e:?}")))?;
    Ok(sv.iter().sum())
}

/// FID between two sets of statistics (module docs). Not clamped at 0: for identical
/// statistics it is 0 up to rounding, of either sign.
pub fn frechet_distance(a: &Statistics, b: &Statistics) -> Result<f64, FidError> {
    a.validate()?;
    b.validate()?;
    if a.dim() != b.dim() {
        return Err(FidError::Statistics(format!(
            "feature dimensions differ: {} and {}",
            a.dim(),
            b.dim()
        )));
    }
    let mean_term: f64 = (&a.mu - &b.mu).mapv(|v| v * v).sum();
    let trace = a.sigma.diag().sum() + b.sigma.diag().sum();
    Ok(mean_term + trace - 2.0 * trace_sqrt_product(&a.sigma, &b.sigma)?)
}
