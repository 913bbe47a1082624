//! The EDM denoising loss with MGM's folded log-normal noise levels (paper App. B).
//!
//! EDM draws `ln σ = P_mean + P_std·n`, `n ~ N(0, 1)` (`P_mean = −1.2`, `P_std = 1.2`). The
//! warmup reflects values above `ln τ_max` (τ_max = 2.5):
//! `s = n'` if `n' ≤ ln τ_max`, else `2 ln τ_max − n'`, i.e. `s = min(n', 2 ln τ_max − n')`,
//! so every `σ = e^s ≤ τ_max` and the law below `ln τ_max` keeps the log-normal's shape (with
//! the folded mass added). The per-image loss is
//! `λ(σ)·‖D(y + σε; σ) − y‖²`, `λ(σ) = (σ² + σ_d²)/(σ·σ_d)²`, summed over pixels and averaged
//! over the batch (EDM's `EDMLoss` with `loss.sum() / batch`).

use super::precond::EdmPrecond;
use crate::error::TrainError;
use tch::{Device, Kind, Tensor};

/// The law of the training noise levels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NoiseLaw {
    /// Mean of `ln σ` (−1.2).
    pub p_mean: f64,
    /// Standard deviation of `ln σ` (1.2).
    pub p_std: f64,
    /// Fold point `τ_max` (2.5 in the warmup; `None` is EDM's unfolded law).
    pub tau_max: Option<f64>,
}

impl NoiseLaw {
    /// EDM's log-normal folded at `ln tau_max` (App. B).
    pub fn folded(tau_max: f64) -> Result<Self, TrainError> {
        if !(tau_max.is_finite() && tau_max > 0.0) {
            return Err(TrainError::InvalidOption(format!(
                "--tau-max must be finite and > 0, got {tau_max}"
            )));
        }
        Ok(NoiseLaw {
            p_mean: -1.2,
            p_std: 1.2,
            tau_max: Some(tau_max),
        })
    }

    /// `ln σ` values `s` ↦ folded `min(s, 2 ln τ_max − s)` (identity without a fold).
    pub fn fold(&self, log_sigma: &Tensor) -> Tensor {
        match self.tau_max {
            Some(t) => {
                let reflected = log_sigma.neg() + 2.0 * t.ln();
                log_sigma.minimum(&reflected)
            }
            None => log_sigma.shallow_clone(),
        }
    }

    /// `σ` `[n]` (fp32 on `device`) from torch's generator of that device.
    pub fn sample(&self, n: i64, device: Device) -> Tensor {
        let n = Tensor::randn([n], (Kind::Float, device));
        self.fold(&(n * self.p_std + self.p_mean)).exp()
    }
}

/// EDM's loss weight `λ(σ) = (σ² + σ_d²)/(σ·σ_d)²`.
pub fn loss_weight(sigma: f64, sigma_data: f64) -> f64 {
    (sigma * sigma + sigma_data * sigma_data) / (sigma * sigma_data).powi(2)
}

/// `mean_n λ(σ_n)·‖D(y_n + σ_n ε_n; σ_n) − y_n‖²` for clean images `y` `[N, C, H, W]`, noise
/// levels `σ` `[N]` and standard normal `ε` (shape of `y`); dropout when `train`.
pub fn denoising_loss(
    net: &EdmPrecond,
    y: &Tensor,
    sigma: &Tensor,
    eps: &Tensor,
    train: bool,
) -> Tensor {
    let sd = net.sigma_data();
    let s = sigma.reshape([-1, 1, 1, 1]);
    let weight = (s.square() + sd * sd) / (&s * sd).square();
    let d = net.denoise(&(y + &s * eps), sigma, None, train);
    let per_pixel = weight * (d - y).square();
    per_pixel.sum(Kind::Float) / y.size()[0] as f64
}
