//! Algorithm 1 on a toy target (Fig. 3): an MLP generator and an MLP field
//! ([`crate::nets::mlp`]) with libtorch's Adam, and the generator's EMA.
//!
//! **Randomness.** torch is seeded once, when the networks are built, and the steps draw from
//! its one stream (a toy run does not resume); the target's samples come from the caller's
//! [`Batches`], which draws them from a stream of its own.

use super::trainer::{LossLine, MgmTrainer, LOSS_TITLES};
use super::{Mgm, MgmConfig, StepLosses, Variant};
use crate::error::TrainError;
use crate::nets::mlp::{Mlp, MlpConfig};
use crate::train::ema::Ema;
use crate::train::method::{Batches, Method, Timing};
use crate::train::network::{Generator, Network};
use std::path::Path;
use tch::{nn, Device, Tensor};

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
    /// Learning rate of both Adam optimizers (`β1 = 0`).
    pub lr: f64,
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
pub struct ToyMgm {
    config: ToyMgmConfig,
    trainer: MgmTrainer<Mlp, Mlp>,
    ema: Ema,
    ema_net: Mlp,
}

impl ToyMgm {
    /// Seeds torch with `config.seed` and builds the generator, the field and the EMA (in this
    /// order, from torch's stream).
    pub fn new(config: ToyMgmConfig, device: Device) -> Result<Self, TrainError> {
        tch::manual_seed(config.seed as i64);
        let mgm = Mgm::new(&MgmConfig {
            variant: config.variant,
            interpolant: midpoint::Interpolant::Linear,
            sigma: config.sigma,
            critic_sigma: config.critic_sigma,
        })?;
        let net = |cfg: MlpConfig| -> Result<Network<Mlp>, TrainError> {
            let vs = nn::VarStore::new(device);
            let mlp = Mlp::new(
                &vs.root(),
                MlpConfig {
                    width: config.width,
                    blocks: config.blocks,
                    ..cfg
                },
            );
            Network::new(mlp, vs, config.lr)
        };
        let generator = net(MlpConfig::generator(config.latent_dim, config.dim))?;
        let field = net(MlpConfig::field(config.dim))?;
        let ema_vs = nn::VarStore::new(device);
        let ema_net = Mlp::new(&ema_vs.root(), generator.net.config());
        let ema = Ema::new(ema_vs, &generator.vs, config.ema_decay)?;
        Ok(ToyMgm {
            trainer: MgmTrainer::new(mgm, generator, field),
            ema,
            ema_net,
            config,
        })
    }

    /// The EMA generator.
    pub fn ema_net(&self) -> &Mlp {
        &self.ema_net
    }
}

impl Method for ToyMgm {
    type Losses = StepLosses;
    type Record = LossLine;
    type Config = ToyMgmConfig;

    fn name(&self) -> String {
        self.config.variant.name().into()
    }
    fn config(&self) -> &ToyMgmConfig {
        &self.config
    }
    fn device(&self) -> Device {
        self.trainer.generator.vs.device()
    }
    fn steps_done(&self) -> u64 {
        self.trainer.steps_done() as u64
    }
    fn step(&mut self, data: &mut dyn Batches) -> Result<StepLosses, TrainError> {
        let c = &self.config;
        self.trainer
            .step_on(data, &mut self.ema, c.batch, &[c.dim], &[c.latent_dim])
    }
    fn loss_fields(&self) -> &'static [(&'static str, &'static str)] {
        &LOSS_TITLES
    }
    fn record(&self, step: u64, losses: &StepLosses, timing: Timing) -> LossLine {
        LossLine::new(step, losses, self.samples_per_step(), timing)
    }
    fn samples_per_step(&self) -> usize {
        2 * self.config.batch as usize
    }
    fn sample(&self, z: &Tensor) -> Tensor {
        tch::no_grad(|| self.ema_net.generate(z, false))
    }
    fn latent_shape(&self) -> Vec<i64> {
        vec![self.config.latent_dim]
    }
    fn grid_latents(&self, _n: i64) -> Tensor {
        Tensor::zeros(
            [0, self.config.latent_dim],
            (tch::Kind::Float, self.device()),
        )
    }
    fn save(&self, _path: &Path, _data: &str) -> Result<(), TrainError> {
        Err(TrainError::InvalidOption(
            "toy runs do not checkpoint (libtorch's Adam state is not readable)".into(),
        ))
    }
}
