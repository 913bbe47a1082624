//! EDM preconditioning (Karras et al. 2022, Table 1; EDM `EDMPrecond`) and the two adapters
//! through which Algorithm 1 uses a warmed-up network (paper §5.1, App. B).
//!
//! `D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x, c_noise(σ))` with `σ_data = 0.5`,
//! `c_skip = σ_d²/(σ² + σ_d²)`, `c_out = σ·σ_d/sqrt(σ² + σ_d²)`, `c_in = 1/sqrt(σ² + σ_d²)`,
//! `c_noise = ln(σ)/4`.
//!
//! After the warmup, App. B initialises `G_θ(z) ← P_η(z, t = 2.5)`, which SiD (the code MGM
//! builds on) evaluates as `D(2.5·z; 2.5)` ([`OneStepGenerator`]), and `f_ψ(x, t) ← P_η(x, t)`
//! ([`DenoiserField`], `D(x; max(t, σ_min))` because `c_noise(0) = −∞`). Both implement the
//! traits of [`crate::methods::mgm`], so the image trainer (issue 5) passes them to the one
//! implementation of Algorithm 1 unchanged.

use super::config::UNetConfig;
use super::unet::SongUNet;
use crate::error::TrainError;
use crate::train::network::{Field, Generator};
use tch::{nn, Kind, Tensor};

/// `σ_data` of EDM's CIFAR-10 setup (data in `[−1, 1]`).
pub const SIGMA_DATA: f64 = 0.5;

/// The noise level at which the one-step generator evaluates the denoiser (App. B: 2.5).
pub const GENERATOR_SIGMA: f64 = 2.5;

/// EDM's smallest supported noise level (its sampler's `σ_min`), the floor of
/// [`DenoiserField`].
pub const SIGMA_MIN: f64 = 0.002;

/// The four preconditioning coefficients at one `σ`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Coefficients {
    /// `σ_d²/(σ² + σ_d²)`.
    pub c_skip: f64,
    /// `σ·σ_d/sqrt(σ² + σ_d²)`.
    pub c_out: f64,
    /// `1/sqrt(σ² + σ_d²)`.
    pub c_in: f64,
    /// `ln(σ)/4`.
    pub c_noise: f64,
}

impl Coefficients {
    /// The coefficients at `sigma` for `σ_data = sigma_data`.
    pub fn at(sigma: f64, sigma_data: f64) -> Self {
        let s2 = sigma * sigma + sigma_data * sigma_data;
        Coefficients {
            c_skip: sigma_data * sigma_data / s2,
            c_out: sigma * sigma_data / s2.sqrt(),
            c_in: 1.0 / s2.sqrt(),
            c_noise: sigma.ln() / 4.0,
        }
    }
}

/// The preconditioned denoiser `D(x; σ)` around a [`SongUNet`].
#[derive(Debug)]
pub struct EdmPrecond {
    /// The raw network `F`.
    pub unet: SongUNet,
    sigma_data: f64,
}

impl EdmPrecond {
    /// Builds `F` under `vs` with `σ_data = 0.5`.
    pub fn new(vs: &nn::Path, config: &UNetConfig) -> Result<Self, TrainError> {
        Ok(EdmPrecond {
            unet: SongUNet::new(vs, config)?,
            sigma_data: SIGMA_DATA,
        })
    }

    /// `σ_data`.
    pub fn sigma_data(&self) -> f64 {
        self.sigma_data
    }

    /// `D(x; σ)` for `x` `[N, C, H, W]` and `σ` `[N]` (all > 0), in fp32; dropout only when
    /// `train`.
    pub fn denoise(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        augment_labels: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let x = x.to_kind(Kind::Float);
        let sigma = sigma.to_kind(Kind::Float).reshape([-1, 1, 1, 1]);
        let sd2 = self.sigma_data * self.sigma_data;
        let s2 = sigma.square() + sd2;
        let c_skip = s2.reciprocal() * sd2;
        let c_out = &sigma * self.sigma_data * s2.rsqrt();
        let c_in = s2.rsqrt();
        let c_noise = sigma.log().flatten(0, -1) / 4.0;
        let f = self
            .unet
            .forward(&(&x * c_in), &c_noise, augment_labels, train);
        c_skip * x + c_out * f
    }

    /// `D(x; σ)` at one noise level for the whole batch.
    pub fn denoise_at(&self, x: &Tensor, sigma: f64, train: bool) -> Tensor {
        let n = x.size()[0];
        let s = Tensor::full([n], sigma, (Kind::Float, x.device()));
        self.denoise(x, &s, None, train)
    }
}

/// `G(z) = D(σ_g·z; σ_g)` with `σ_g = 2.5` (App. B; SiD's one-step generator).
#[derive(Debug)]
pub struct OneStepGenerator {
    /// The warmed-up denoiser.
    pub net: EdmPrecond,
    /// `σ_g` ([`GENERATOR_SIGMA`]).
    pub sigma: f64,
}

impl OneStepGenerator {
    /// Wraps `net` with `σ_g = 2.5`.
    pub fn new(net: EdmPrecond) -> Self {
        OneStepGenerator {
            net,
            sigma: GENERATOR_SIGMA,
        }
    }
}

impl Generator for OneStepGenerator {
    fn generate(&self, z: &Tensor, train: bool) -> Tensor {
        self.net.denoise_at(&(z * self.sigma), self.sigma, train)
    }
}

/// `f(x, t) = D(x; max(t, σ_min))` (App. B: `f_ψ ← P_η`), `t` `[N]`.
#[derive(Debug)]
pub struct DenoiserField {
    /// The warmed-up denoiser.
    pub net: EdmPrecond,
    /// Floor on `σ` ([`SIGMA_MIN`]).
    pub sigma_min: f64,
}

impl DenoiserField {
    /// Wraps `net` with `σ_min = 0.002`.
    pub fn new(net: EdmPrecond) -> Self {
        DenoiserField {
            net,
            sigma_min: SIGMA_MIN,
        }
    }
}

impl Field for DenoiserField {
    fn field(&self, x: &Tensor, t: &Tensor, train: bool) -> Tensor {
        let sigma = t.to_kind(Kind::Float).clamp_min(self.sigma_min);
        self.net.denoise(x, &sigma, None, train)
    }
}
