//! The critic cross-check of [`crate::toy::critic_check`] through the image code path: the
//! displacement field of the image trainer (EDM `SongUNet` → [`EdmPrecond`] →
//! [`DenoiserField`] with the `t` floor, exactly as [`crate::methods::mgm::image`] builds it), trained by
//! Algorithm 1's critic step on two **fixed** Gaussian laws over `3×8×8` images, against the
//! exact field and `D_t-mid` of the core crate.
//!
//! **Laws.** `p0 = N(μ0, s²I)`, `p1 = N(μ1, s²I)` in `d = 192` with two smooth colour patterns
//! as means ([`image_laws`]). Equal covariances keep every reference exact in any dimension:
//! the flipped observation is then a two-component mixture of one covariance class whose
//! posterior depends on `x` only through one direction, so the core crate's `D(t)` is a 1-D
//! quadrature (route 3 of `midpoint::exact`) and the field `m_t` is evaluated in closed form.
//!
//! **What is compared.** The field error `‖f_ψ − m_t‖/‖m_t‖` on a grid of `t` (before training
//! and after), the variational value `∫₀^½ J(f_ψ) dt` against the exact `D_t-mid`
//! (Prop. 3.3: it can only fall short, by `∫ E‖f_ψ − m_t‖² dt`).
//!
//! The field network sees images `[N, 3, 8, 8]`; the check's samples are flat `[N, 192]`
//! ([`Flat`] reshapes on the way in and out), and the observation `x̃_t` is the same either
//! way (per-sample coefficients, elementwise).

use crate::error::TrainError;
use crate::methods::mgm::{Mgm, MgmConfig, Side, Variant};
use crate::nets::edm::precond::SIGMA_MIN;
use crate::nets::edm::{DenoiserField, EdmPrecond, UNetConfig};
use crate::toy::critic_check::{
    critic_check_with, field_errors, CriticCheckConfig, CriticCheckReport, CriticFit, FieldErrorAt,
};
use crate::train::bridge::law_tensor;
use crate::train::network::{Field, Network};
use crate::train::progress::Progress;
use midpoint::{Gaussian, Law};
use ndarray::Array1;
use rand::SeedableRng;
use tch::{nn, Device, Tensor};

/// A field on images used on flat samples: `[N, C·H·W]` ↦ `[N, C, H, W]` ↦ field ↦ flat.
#[derive(Debug)]
pub struct Flat<F> {
    /// The image field.
    pub inner: F,
    /// `[C, H, W]`.
    pub shape: [i64; 3],
}

impl<F: Field> Field for Flat<F> {
    fn field(&self, x: &Tensor, t: &Tensor, train: bool) -> Tensor {
        let n = x.size()[0];
        let [c, h, w] = self.shape;
        self.inner
            .field(&x.reshape([n, c, h, w]), t, train)
            .reshape([n, c * h * w])
    }
}

/// The `tiny` EDM network at 8×8 (two levels, attention at 4×4), without dropout: a dropout
/// mask is a regulariser that only adds noise to a fit of a known field.
pub fn tiny8() -> UNetConfig {
    UNetConfig {
        name: "tiny8".into(),
        img_resolution: 8,
        attn_resolutions: vec![4],
        dropout: 0.0,
        ..UNetConfig::tiny()
    }
}

/// `p0 = N(μ0, s²I)` and `p1 = N(μ1, s²I)` over `3×8×8` images (CHW order), `s = 0.2`:
/// `μ0` a vertical colour gradient, `μ1` a diagonal wave, both within `[−0.5, 0.5]`.
pub fn image_laws() -> Result<(Law, Law), TrainError> {
    let (c, h, w) = (3usize, 8usize, 8usize);
    let d = c * h * w;
    let at = |f: &dyn Fn(f64, f64, f64) -> f64| {
        Array1::from_shape_fn(d, |k| {
            let (ch, i, j) = (k / (h * w), (k / w) % h, k % w);
            f(
                ch as f64,
                i as f64 / (h - 1) as f64,
                j as f64 / (w - 1) as f64,
            )
        })
    };
    let mu0 = at(&|ch, y, _| 0.5 * (y - 0.5) * (1.0 - 0.5 * ch));
    let mu1 = at(&|ch, y, x| 0.4 * (3.0 * (x + y) + 2.0 * ch).sin());
    let var = 0.2f64 * 0.2;
    Ok((
        Gaussian::isotropic(mu0, var)?.into(),
        Gaussian::isotropic(mu1, var)?.into(),
    ))
}

/// Settings of the image critic check.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImageCriticConfig {
    /// The field network (image side 8, 3 channels).
    pub arch: UNetConfig,
    /// Floor of the field's noise level ([`SIGMA_MIN`]).
    pub t_floor: f64,
    /// Fit, grid and evaluation sizes; `check.sigma` is the critic's `σ'`.
    pub check: CriticCheckConfig,
}

impl ImageCriticConfig {
    /// A CPU-sized default: `σ' = 0.01` (the paper's critic noise), 2000 steps of 256 pairs,
    /// lr 2e-3 with cosine decay, 16 grid times of 4096 points, 2¹⁸ variational pairs.
    pub fn new() -> Self {
        ImageCriticConfig {
            arch: tiny8(),
            t_floor: SIGMA_MIN,
            check: CriticCheckConfig {
                sigma: 0.01,
                fit: CriticFit {
                    steps: 2000,
                    batch: 256,
                    lr: 2e-3,
                    cosine_decay: true,
                    seed: 0,
                    ..CriticFit::default()
                },
                grid: 16,
                points_per_time: 4096,
                variational_pairs: 1 << 18,
            },
        }
    }
}

impl Default for ImageCriticConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// What the image critic check reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageCriticReport {
    /// Field error of the untrained network (EDM initialisation, so `f ≈ c_skip(t)·x`) on the
    /// same grid.
    pub initial_field_rel_l2: f64,
    /// Per grid time, before training.
    pub initial_field_error_by_t: Vec<FieldErrorAt>,
    /// After training: field error, variational value, exact `D_t-mid`.
    pub trained: CriticCheckReport,
    /// The network.
    pub arch: UNetConfig,
    /// Its parameters.
    pub parameters: i64,
}

/// Trains the image field on `p0`, `p1` (of dimension `C·H·W` of `config.arch`) and compares
/// it with the exact field before and after (see the module docs).
pub fn image_critic_check(
    p0: &Law,
    p1: &Law,
    config: &ImageCriticConfig,
    device: Device,
    progress: &Progress,
) -> Result<ImageCriticReport, TrainError> {
    let a = &config.arch;
    let shape = [a.img_channels, a.img_resolution, a.img_resolution];
    let d: i64 = shape.iter().product();
    if p0.dim() as i64 != d || p1.dim() as i64 != d {
        return Err(TrainError::InvalidOption(format!(
            "laws of dimension {} and {} for images of {shape:?} ({d} values)",
            p0.dim(),
            p1.dim()
        )));
    }
    config.check.fit.validate()?;
    tch::manual_seed(config.check.fit.seed as i64);
    let vs = nn::VarStore::new(device);
    let net = EdmPrecond::new(&vs.root(), a)?;
    let field = Flat {
        inner: DenoiserField {
            net,
            sigma_min: config.t_floor,
        },
        shape,
    };
    let mut critic = Network::new(field, vs, config.check.fit.lr)?;

    // The untrained network on its own stream of pairs (the trained one gets the check's).
    let mgm = Mgm::new(&MgmConfig::linear(Variant::Mgm, config.check.sigma))?;
    let si = mgm.interpolant(Side::Field).clone();
    let mut rng =
        rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(config.check.fit.seed ^ 0x0141_71a1);
    let mut pairs = |b: i64| -> Result<(Tensor, Tensor), TrainError> {
        let b = b as usize;
        Ok((
            law_tensor(p0, b, &mut rng, device)?,
            law_tensor(p1, b, &mut rng, device)?,
        ))
    };
    progress.stage(config.check.grid as u64, "initial error");
    let initial = field_errors(
        p0,
        p1,
        &si,
        &critic.net,
        &config.check,
        &mut pairs,
        progress,
    )?;
    let trained = critic_check_with(p0, p1, &config.check, &mut critic, device, progress)?;
    Ok(ImageCriticReport {
        initial_field_rel_l2: initial.iter().map(|e| e.rel_l2).sum::<f64>() / initial.len() as f64,
        initial_field_error_by_t: initial,
        trained,
        arch: a.clone(),
        parameters: a.param_count(),
    })
}
