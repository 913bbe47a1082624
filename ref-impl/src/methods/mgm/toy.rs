//! Algorithm 1 on a toy target (Fig. 3): an MLP generator and an MLP field
//! ([`crate::nets::mlp`]) with libtorch's Adam, and the generator's EMA.
//!
//! **Randomness.** torch is seeded once, when the networks are built, and the steps draw from
//! its one stream; the target's samples come from the caller's batches, which draw them from
//! a stream of their own. With libtorch's Adam (whose moments are not readable) a toy run
//! writes no checkpoint.

use super::method::{MgmMethod, Setting};
use super::trainer::MgmTrainer;
use super::{Mgm, MgmConfig, Variant};
use crate::error::TrainError;
use crate::nets::mlp::{Mlp, MlpConfig};
use crate::train::ema::Ema;
use crate::train::network::{AdamSettings, Network};
use tch::{nn, Device, Kind, Tensor};

/// How the two toy networks are optimized: the settings the study of docs/learning.md varies.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ToyOptimization {
    /// Learning rate of the generator's Adam (and of the field's unless `critic_lr` is set).
    pub lr: f64,
    /// Learning rate of the field's Adam (`None`: `lr`, as App. B).
    pub critic_lr: Option<f64>,
    /// Adam `β1` of both networks (App. B: 0).
    pub beta1: f64,
    /// Adam `β2` of both networks (App. B: 0.999).
    pub beta2: f64,
    /// Field updates per generator update (App. B: 1).
    pub critic_steps: usize,
    /// Gradient-norm clip of both networks (`None`: none, as App. B).
    pub clip: Option<f64>,
    /// Cosine decay of both learning rates to 0 over the run (false: constant, as App. B).
    pub cosine_decay: bool,
}

impl ToyOptimization {
    /// App. B's optimization at learning rate `lr`: Adam with `β1 = 0`, `β2 = 0.999` for both
    /// networks, one field update per generator update, no clipping, a constant rate.
    pub fn paper(lr: f64) -> Self {
        ToyOptimization {
            lr,
            critic_lr: None,
            beta1: 0.0,
            beta2: 0.999,
            critic_steps: 1,
            clip: None,
            cosine_decay: false,
        }
    }
}

/// The settings of MGM on a toy target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ToyMgmConfig {
    /// Objective.
    pub variant: Variant,
    /// Generator-side `σ`.
    pub sigma: f64,
    /// Critic-side `σ'`.
    pub critic_sigma: f64,
    /// Batch size of each step.
    pub batch: i64,
    /// How both networks are optimized.
    #[serde(flatten)]
    pub optimization: ToyOptimization,
    /// Iterations of the run (the length of the cosine decay).
    pub steps: usize,
    /// Decay of the generator's weight EMA (0 evaluates the last weights).
    pub ema_decay: f64,
    /// Seed of torch.
    pub seed: u64,
    /// Dimension of the data.
    pub dim: i64,
    /// Latent dimension of the generator (`z ~ N(0, I)`).
    pub latent_dim: i64,
    /// Hidden width of both MLPs.
    pub width: i64,
    /// Residual blocks of both MLPs.
    pub blocks: usize,
}

/// MGM with MLPs on a toy target.
pub type ToyMgm = MgmMethod<Mlp, Mlp, ToyMgmConfig>;

impl Setting for ToyMgmConfig {
    const FORMAT: &'static str = "midpoint-mgm-toy-v1";
    const RNG: &'static str = "one torch stream seeded once with the run seed";

    fn variant(&self) -> Variant {
        self.variant
    }
    fn batch(&self) -> i64 {
        self.batch
    }
    fn sample_shape(&self) -> Vec<i64> {
        vec![self.dim]
    }
    fn latent_shape(&self) -> Vec<i64> {
        vec![self.latent_dim]
    }
    fn step_seed(&self, _k: u64) -> Option<i64> {
        None
    }
    /// `n` standard normal latents from torch's stream (toy runs draw no grids).
    fn grid_latents(&self, n: i64) -> Tensor {
        Tensor::randn([n, self.latent_dim], (Kind::Float, Device::Cpu))
    }
    /// `lr·½(1 + cos(πk/steps))` for both networks with `cosine_decay`.
    fn learning_rates(&self, k: u64) -> Option<(f64, f64)> {
        let o = &self.optimization;
        o.cosine_decay.then(|| {
            let c =
                0.5 * (1.0 + (std::f64::consts::PI * k as f64 / self.steps.max(1) as f64).cos());
            (o.lr * c, o.critic_lr.unwrap_or(o.lr) * c)
        })
    }
}

impl ToyMgm {
    /// Seeds torch with `config.seed` and builds the generator, the field and the EMA (in this
    /// order, from torch's stream), with libtorch's Adam.
    pub fn new(config: ToyMgmConfig, device: Device) -> Result<Self, TrainError> {
        tch::manual_seed(config.seed as i64);
        let mgm = Mgm::new(&MgmConfig {
            variant: config.variant,
            interpolant: midpoint::Interpolant::Linear,
            sigma: config.sigma,
            critic_sigma: config.critic_sigma,
        })?
        .with_clip(config.optimization.clip)?;
        let adam = |lr: f64| AdamSettings {
            lr,
            beta1: config.optimization.beta1,
            beta2: config.optimization.beta2,
        };
        let net = |cfg: MlpConfig, lr: f64| -> Result<Network<Mlp>, TrainError> {
            let vs = nn::VarStore::new(device);
            let mlp = Mlp::new(
                &vs.root(),
                MlpConfig {
                    width: config.width,
                    blocks: config.blocks,
                    ..cfg
                },
            );
            Network::with_adam(mlp, vs, adam(lr))
        };
        let generator = net(
            MlpConfig::generator(config.latent_dim, config.dim),
            config.optimization.lr,
        )?;
        let field = net(
            MlpConfig::field(config.dim),
            config
                .optimization
                .critic_lr
                .unwrap_or(config.optimization.lr),
        )?;
        let ema_vs = nn::VarStore::new(device);
        let ema_net = Mlp::new(&ema_vs.root(), generator.net.config());
        let ema = Ema::new(ema_vs, &generator.vs, config.ema_decay)?;
        Ok(MgmMethod {
            trainer: MgmTrainer::new(mgm, generator, field)
                .with_critic_steps(config.optimization.critic_steps)?,
            ema,
            ema_net,
            config,
            replica: None,
        })
    }
}
