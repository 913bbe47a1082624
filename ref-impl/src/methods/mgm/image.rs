//! Algorithm 1 on images (paper §5, App. B): two EDM `ddpm++` networks, both started from the
//! weights of the denoising warmup, trained by **the** implementation of Algorithm 1 in
//! [`crate::methods::mgm`] (`MgmTrainer`: the same observation, losses and 1:1 step as the toy trainer).
//!
//! **Networks** (App. B, "Warmup"). The warmup gives `P_η(x, t)` = EDM's preconditioned
//! denoiser `D(x; σ)`. Its weights are copied into three fresh networks:
//! * the generator `G_θ(z) = D_θ(2.5·z; 2.5)`, `z ~ N(0, I)` of image shape
//!   ([`OneStepGenerator`]; SiD's reading of `P_η(z, t = 2.5)`);
//! * the displacement field `f_ψ(x̃, t) = D_ψ(x̃; σ = max(t, t_floor))` ([`DenoiserField`]),
//!   initialised from the **same** warmup weights (App. B: `f_ψ ← P_η`; SiD likewise starts its
//!   fake-score network from the pretrained one);
//! * the EMA copy of the generator used for samples and FID (decay 0.999).
//!
//! **The floor on `t`.** `c_noise = ln(σ)/4` is `−∞` at `σ = t = 0`, and with it the noise
//! embedding (`sin(−∞)` = NaN) and the whole output, although `c_out(0) = 0`. MGM draws
//! `t ~ U[0, ½]`, so `t = 0` is a legal draw. The field evaluates the network at
//! `σ = max(t, t_floor)` with `t_floor = 0.002`, EDM's `σ_min` (the smallest noise level its
//! sampler and training ever use, so the warmed-up network has seen it). The floor acts on the
//! network's noise level only: the observation `x̃_t` and the loss use the drawn `t`
//! unchanged, and the generator (always at `σ = 2.5`) is untouched. It changes the network's
//! input for `t < 0.002`, i.e. for 0.4% of the draws of `U[0, ½]`.
//!
//! **Defaults** (paper's best row, Table 1c, and App. B): variant `mgm`, generator noise
//! `σ = 0`, critic-only noise `σ' = 0.01`, Adam `β1 = 0`, lr 1e-5, batch 256, 1:1 updates on
//! fresh batches, EMA 0.999.
//!
//! **Randomness.** Step `k` starts with `tch::manual_seed(derive(seed, k))`; `z`, `t`, `b`,
//! `ε` and dropout masks come from that, and its `c + 1` data batches (`c` critic steps) are
//! batches `(c + 1)k, ..., (c + 1)k + c` of the training data (`2k` and `2k + 1` at 1:1) ([`Batches`]), a pure function of their index. Nothing random is carried across
//! steps, so weights, EMA, optimizer state and `k` determine the rest of a run (so [`ImageMgm::save`]
//! and [`ImageMgm::resume`] give exact resume: bit-identical on the CPU).

use super::method::{MgmMethod, Setting};
use crate::data::order::derive_seed;
use crate::error::TrainError;
use crate::methods::mgm::{Mgm, MgmConfig, MgmTrainer, Variant};
use crate::nets::edm::precond::SIGMA_MIN;
use crate::nets::edm::{DenoiserField, EdmPrecond, OneStepGenerator, UNetConfig};
use crate::train::checkpoint::{self, Checkpoint, CheckpointError};
use crate::train::ema::Ema;
use crate::train::network::Network;
use crate::train::precision::Precision;
use crate::train::weights::copy_checked;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

/// Settings of MGM training on images.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageMgmConfig {
    /// The network of both `G_θ` and `f_ψ` (and of the warmup they start from).
    pub arch: UNetConfig,
    /// The objective (`mgm`, or `midpoint` for Table 1d).
    pub variant: Variant,
    /// `σ` of the generator step's interpolant (Table 1c: 0).
    pub sigma: f64,
    /// `σ'` of the field step's interpolant (Table 1c: 0.01).
    pub critic_sigma: f64,
    /// Learning rate of both Adams (`β1 = 0`; App. B: 1e-5).
    pub lr: f64,
    /// Images per batch; each step uses two fresh batches (App. B: 256).
    pub batch: i64,
    /// Decay of the generator's EMA (App. B: 0.999).
    pub ema_decay: f64,
    /// Floor on the field's noise level, `σ = max(t, t_floor)` (EDM's `σ_min` = 0.002).
    pub t_floor: f64,
    /// Seed of the per-step torch seeds.
    pub seed: u64,
    /// Arithmetic of the forward passes and losses (`fp32`, or `bf16` autocast with fp32
    /// weights and Adam state; [`crate::train::precision`]). Checkpoints written before this setting
    /// existed were fp32.
    #[serde(default)]
    pub precision: Precision,
    /// Field updates per generator update (App. B: 1; checkpoints written before this setting
    /// existed used 1).
    #[serde(default = "one")]
    pub critic_steps: usize,
    /// Gradient-norm clip of both networks (App. B: none).
    #[serde(default)]
    pub clip: Option<f64>,
    /// Learning rate of the field's Adam when it differs from the generator's (App. B: the
    /// same, `None`).
    #[serde(default)]
    pub critic_lr: Option<f64>,
    /// Iterations at the start in which only the field is updated (the generator's step is
    /// evaluated, not applied). Ours, not the paper's: the field starts as the warmup's
    /// denoiser `f_ψ(x, t) = D(x; t)` (App. B), an image estimate rather than a displacement,
    /// so its variational value `J` starts below 0 and a generator that follows it at once
    /// follows noise (docs/learning.md §3). Default 0.
    #[serde(default)]
    pub critic_warmup: usize,
}

fn one() -> usize {
    1
}

impl ImageMgmConfig {
    /// The paper's best setting (Table 1c, App. B) for `arch`.
    pub fn paper(arch: UNetConfig) -> Self {
        ImageMgmConfig {
            arch,
            variant: Variant::Mgm,
            sigma: 0.0,
            critic_sigma: 0.01,
            lr: 1e-5,
            batch: 256,
            ema_decay: 0.999,
            t_floor: SIGMA_MIN,
            seed: 0,
            precision: Precision::Fp32,
            critic_steps: 1,
            clip: None,
            critic_lr: None,
            critic_warmup: 0,
        }
    }

    /// Refuses a `naive` variant (not part of the image experiments), negative or non-finite
    /// noise, a non-positive batch or floor; the rest is checked where it is used.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidOption(m));
        if self.variant == Variant::Naive {
            return bad("image MGM trains the mgm or midpoint variant".into());
        }
        if let Some(lr) = self.critic_lr {
            if !(lr.is_finite() && lr > 0.0) {
                return bad(format!("--critic-lr must be positive, got {lr}"));
            }
        }
        if self.batch < 1 {
            return bad(format!("--batch must be at least 1, got {}", self.batch));
        }
        if !(self.t_floor.is_finite() && self.t_floor > 0.0 && self.t_floor < 0.5) {
            return bad(format!("t floor must be in (0, 0.5), got {}", self.t_floor));
        }
        self.arch.validate()
    }

    /// `[C, H, W]` of one image.
    pub fn image_shape(&self) -> [i64; 3] {
        let r = self.arch.img_resolution;
        [self.arch.img_channels, r, r]
    }
}

/// Stream of the per-step torch seeds.
const TORCH_STREAM: u64 = 0x004d_474d;
/// Stream of the fixed latents of the sample grids.
const GRID_STREAM: u64 = 0x4752_4944;
/// Checkpoint format tag.
pub const FORMAT: &str = "midpoint-mgm-v1";

/// MGM on images: [`OneStepGenerator`] and [`DenoiserField`] from the warmup, in the image
/// setting.
pub type ImageMgm = MgmMethod<OneStepGenerator, DenoiserField, ImageMgmConfig>;

impl Setting for ImageMgmConfig {
    const FORMAT: &'static str = FORMAT;
    const RNG: &'static str =
        "stateless: step k reseeds torch with derive_seed(seed, k); batches from (seed, k)";

    fn variant(&self) -> Variant {
        self.variant
    }
    fn batch(&self) -> i64 {
        self.batch
    }
    fn sample_shape(&self) -> Vec<i64> {
        self.image_shape().to_vec()
    }
    fn latent_shape(&self) -> Vec<i64> {
        self.image_shape().to_vec()
    }
    fn step_seed(&self, k: u64) -> Option<i64> {
        Some(derive_seed(self.seed, TORCH_STREAM, k) as i64)
    }
    /// `n` standard normal images from the run seed, on the CPU.
    fn grid_latents(&self, n: i64) -> Tensor {
        let [c, h, w] = self.image_shape();
        tch::manual_seed(derive_seed(self.seed, GRID_STREAM, 0) as i64);
        Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu))
    }
}

impl ImageMgm {
    /// Starts from the warmup's weights `warmup` (the variables of an [`EdmPrecond`] of
    /// `config.arch`, e.g. the warmup's EMA): `G_θ`, `f_ψ` and the EMA are three copies.
    ///
    /// The CLI passes the EMA of a warmup checkpoint ([`crate::methods::warmup::Warmup::open`]).
    /// Both networks get the hand-written Adam ([`Network::with_saveable_adam`]) so that a
    /// checkpoint holds their moments.
    pub fn from_warmup(
        warmup: &nn::VarStore,
        config: ImageMgmConfig,
        device: Device,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        config.precision.check(device)?;
        let copy = || -> Result<(EdmPrecond, nn::VarStore), TrainError> {
            let mut vs = nn::VarStore::new(device);
            let net = EdmPrecond::new(&vs.root(), &config.arch)?;
            copy_checked(&mut vs, warmup, "warmup weights")?;
            Ok((net, vs))
        };
        let (g, g_vs) = copy()?;
        let (f, f_vs) = copy()?;
        let (e, e_vs) = copy()?;
        let generator = Network::with_saveable_adam(OneStepGenerator::new(g), g_vs, config.lr)?;
        let field = DenoiserField {
            net: f,
            sigma_min: config.t_floor,
        };
        let field =
            Network::with_saveable_adam(field, f_vs, config.critic_lr.unwrap_or(config.lr))?;
        let ema = Ema::new(e_vs, &generator.vs, config.ema_decay)?;
        let mgm = Mgm::new(&MgmConfig {
            variant: config.variant,
            interpolant: midpoint::Interpolant::Linear,
            sigma: config.sigma,
            critic_sigma: config.critic_sigma,
        })?
        .with_precision(config.precision)
        .with_clip(config.clip)?;
        Ok(MgmMethod {
            trainer: MgmTrainer::new(mgm, generator, field)
                .with_critic_steps(config.critic_steps)?
                .with_critic_warmup(config.critic_warmup),
            ema,
            ema_net: OneStepGenerator::new(e),
            config,
            replica: None,
        })
    }

    /// Starts from a freshly initialised network (EDM's initialisation, torch seeded from
    /// `config.seed`) in place of a warmup: for tests and smoke runs only.
    pub fn from_random_init(config: ImageMgmConfig, device: Device) -> Result<Self, TrainError> {
        config.validate()?;
        tch::manual_seed(derive_seed(config.seed, GRID_STREAM ^ 1, 0) as i64);
        let vs = nn::VarStore::new(device);
        let _net = EdmPrecond::new(&vs.root(), &config.arch)?;
        Self::from_warmup(&vs, config, device)
    }
}

impl ImageMgm {
    /// The config a checkpoint was written with (verified file).
    pub fn saved_config(path: &Path) -> Result<ImageMgmConfig, TrainError> {
        let ckpt = checkpoint::load(path)?;
        Ok(read_config(&ckpt, path)?)
    }

    /// Opens the checkpoint at `path` with the config it was written with (for sampling and
    /// evaluation, where no settings are given), verified as in [`ImageMgm::resume`].
    pub fn open(path: &Path, device: Device) -> Result<Self, TrainError> {
        let ckpt = checkpoint::load(path)?;
        let config = read_config(&ckpt, path)?;
        let mut run = ImageMgm::from_random_init(config, device)?;
        run.restore(&ckpt, path)?;
        Ok(run)
    }

    /// Resumes from the checkpoint at `path`, which must have been written with the same
    /// `config` and the same training images `data`. The file is verified, every tensor is
    /// checked for presence, dtype and shape, and only then is anything copied.
    pub fn resume(
        path: &Path,
        config: ImageMgmConfig,
        data: &str,
        device: Device,
    ) -> Result<Self, TrainError> {
        let ckpt = checkpoint::load(path)?;
        let saved = read_config(&ckpt, path)?;
        checkpoint::check_resume(&ckpt, path, &saved, &config, data, "--arch, --batch, --lr, --critic-lr, --sigma, --critic-sigma, --variant, --ema, --seed, --precision, --critic-steps, --critic-warmup, --clip")?;
        let mut run = ImageMgm::from_random_init(config, device)?;
        run.restore(&ckpt, path)?;
        Ok(run)
    }
}

fn read_config(ckpt: &Checkpoint, path: &Path) -> Result<ImageMgmConfig, CheckpointError> {
    let format = ckpt.meta(path, "format")?;
    if format != FORMAT {
        return Err(CheckpointError::content(
            path,
            format!("format {format:?}, expected {FORMAT:?}"),
        ));
    }
    serde_json::from_str(ckpt.meta(path, "config")?)
        .map_err(|e| CheckpointError::content(path, format!("config: {e}")))
}
