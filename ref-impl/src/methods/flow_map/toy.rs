//! The flow-map methods on a toy target: one MLP `v_{s,t}(x)` of the harness's blocks
//! ([`crate::nets::mlp`]) with `(s, t)` concatenated to `x` as raw inputs ([SD]'s checker
//! network; the harness's sinusoidal features would multiply `∂_t` by up to `π·2⁵`,
//! flow-maps.md §5.2), Adam, and, for the distilled methods, a teacher of the same shape
//! trained first in the same run, so that its cost is part of the method's.
//!
//! **Phases.** LMD and EMD spend `teacher_steps` on a flow-matching teacher (the diagonal of a
//! two-time network), PFMM on a banded FMM teacher whose weights then start the student
//! ([FMM] §3.5); the rest of the steps train the student against the frozen teacher. The
//! self-distillation methods train the diagonal alone for `warmup` steps, then widen `t − s`
//! linearly over `anneal` steps ([SD] §2.5).
//!
//! **Randomness.** torch is seeded once, when the networks are built, and the steps draw from
//! its one stream; the target's samples come from the caller's batches. Toy runs write no
//! checkpoint (libtorch's Adam), as MGM's toy runs.

use super::kind::FlowMapKind;
use super::map::{self, Diagonal, TwoTime};
use super::objective::{FlowMapLine, FlowMapLosses, Maps, Objective, LOSS_FIELDS};
use crate::error::TrainError;
use crate::nets::mlp::{Mlp, MlpConfig};
use crate::train::method::{Batches, Method, Timing};
use crate::train::network::{AdamSettings, Network};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

/// The settings of a flow-map method on a toy target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlowMapToyConfig {
    /// The method and its schedules.
    #[serde(flatten)]
    pub objective: Objective,
    /// Dimension of the data (and of the Gaussian base).
    pub dim: i64,
    /// Hidden width of the MLP(s).
    pub width: i64,
    /// Residual blocks of the MLP(s).
    pub blocks: usize,
    /// Batch of each step.
    pub batch: i64,
    /// Steps of the run, teacher phase included.
    pub steps: u64,
    /// Adam's learning rate, and its `β1`, `β2` ([SD]: defaults 0.9, 0.999).
    pub adam: AdamSettings,
    /// Gradient-norm clip (`None`: none, as the papers).
    pub clip: Option<f64>,
    /// Seed of torch.
    pub seed: u64,
    /// Steps of the sampler behind [`Method::sample`] (the training curve).
    pub sample_steps: usize,
}

impl FlowMapToyConfig {
    /// Defaults for `kind` on `dim`-dimensional data: the MGM toy's trunk (width 128, 2 blocks),
    /// batch 256, Adam (0.9, 0.999) at 1e-3 ([SD]), 10,000 steps; self-distillation warms up
    /// for 10% and widens over 10% (flow-maps.md §5.5); distilled methods give half the steps
    /// to their teacher; FMM and PFMM's teacher use the band 1/4 ([FMM]'s `K = 4`); the
    /// forward-mode JVP; the papers' stop-gradients; curves of 1-step samples (4 for FMM).
    pub fn new(kind: FlowMapKind, dim: i64) -> Self {
        let steps = 10_000;
        FlowMapToyConfig {
            objective: Objective::new(kind, steps),
            dim,
            width: 128,
            blocks: 2,
            batch: 256,
            steps,
            adam: AdamSettings {
                lr: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
            },
            clip: None,
            seed: 0,
            sample_steps: if kind == FlowMapKind::Fmm { 4 } else { 1 },
        }
    }

    fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidOption(m));
        self.adam.validate()?;
        if self.dim < 1 || self.width < 1 || self.batch < 1 || self.steps == 0 {
            return bad("dimension, width, batch and steps must be at least 1".into());
        }
        if self.sample_steps == 0 {
            return bad("--sample-steps must be at least 1".into());
        }
        self.objective.validate(self.steps)
    }
}

/// `v_{s,t}(x)` of an MLP on `[x, s, t]`.
struct TwoTimeMlp<'a>(&'a Mlp);

/// The MLP seen as `v_{s,t}` (no dropout: `train` changes nothing).
fn view(net: &Mlp, _train: bool) -> Box<dyn TwoTime + '_> {
    Box::new(TwoTimeMlp(net))
}

impl TwoTime for TwoTimeMlp<'_> {
    fn v(&self, x: &Tensor, s: &Tensor, t: &Tensor) -> Tensor {
        let input = Tensor::cat(&[x, &s.reshape([-1, 1]), &t.reshape([-1, 1])], 1);
        self.0.forward(&input, None)
    }
}

/// A flow-map method with MLPs on a toy target.
pub struct FlowMapToy {
    config: FlowMapToyConfig,
    maps: Maps<Mlp>,
    steps_done: u64,
}

impl FlowMapToy {
    /// Seeds torch with `config.seed` and builds the student, then the teacher where the method
    /// has one, from torch's stream.
    pub fn new(config: FlowMapToyConfig, device: Device) -> Result<Self, TrainError> {
        config.validate()?;
        tch::manual_seed(config.seed as i64);
        let build = || -> Result<Network<Mlp>, TrainError> {
            let vs = nn::VarStore::new(device);
            let mlp = Mlp::new(
                &vs.root(),
                MlpConfig {
                    in_dim: config.dim + 2,
                    out_dim: config.dim,
                    width: config.width,
                    blocks: config.blocks,
                    time: None,
                },
            );
            Network::with_adam(mlp, vs, config.adam)
        };
        let student = build()?;
        let teacher = config
            .objective
            .kind
            .has_teacher()
            .then(build)
            .transpose()?;
        Ok(FlowMapToy {
            config,
            maps: Maps { student, teacher },
            steps_done: 0,
        })
    }

    /// Parameters of the student (the teacher has as many).
    pub fn parameters(&self) -> i64 {
        crate::train::network::param_count(&self.maps.student.vs)
    }

    /// `k` steps of the trained model from latents `z`: the map composed on the uniform grid,
    /// or Euler steps of the diagonal for `fm`. No graph.
    pub fn sample_steps(&self, z: &Tensor, k: usize) -> Tensor {
        let v = TwoTimeMlp(&self.maps.student.net);
        let z = z
            .to_device(self.maps.student.vs.device())
            .to_kind(Kind::Float);
        let grid = map::uniform_grid(k);
        tch::no_grad(|| match self.config.objective.kind {
            FlowMapKind::Fm => map::euler(&Diagonal(&v), &z, &grid),
            _ => map::sample(&v, &z, &grid),
        })
    }

    /// The map a distilled model is compared with, on latents `z`: the ODE of the teacher's
    /// velocity (LMD, EMD) or of the model's own diagonal (FM and self-distillation), by RK4 in
    /// 100 steps, or the PFMM teacher's `band` steps. With its description.
    pub fn reference_map(&self, z: &Tensor) -> (String, Tensor) {
        let z = z
            .to_device(self.maps.student.vs.device())
            .to_kind(Kind::Float);
        let fine = map::uniform_grid(100);
        tch::no_grad(|| match (&self.maps.teacher, self.config.objective.kind) {
            (Some(t), FlowMapKind::Pfmm) => (
                format!("the FMM teacher in {} steps", self.config.objective.band),
                map::sample(
                    &TwoTimeMlp(&t.net),
                    &z,
                    &map::uniform_grid(self.config.objective.band),
                ),
            ),
            (Some(t), _) => (
                "the teacher's ODE (RK4, 100 steps)".into(),
                map::rk4(&Diagonal(&TwoTimeMlp(&t.net)), &z, &fine),
            ),
            (None, _) => (
                "the model's own diagonal ODE (RK4, 100 steps)".into(),
                map::rk4(&Diagonal(&TwoTimeMlp(&self.maps.student.net)), &z, &fine),
            ),
        })
    }

    fn objective(&self) -> Objective {
        self.config.objective
    }
}

impl Method for FlowMapToy {
    type Losses = FlowMapLosses;
    type Record = FlowMapLine;
    type Config = FlowMapToyConfig;

    fn name(&self) -> String {
        self.config.objective.kind.name().into()
    }
    fn config(&self) -> &FlowMapToyConfig {
        &self.config
    }
    fn device(&self) -> Device {
        self.maps.student.vs.device()
    }
    fn steps_done(&self) -> u64 {
        self.steps_done
    }
    fn step(&mut self, data: &mut dyn Batches) -> Result<FlowMapLosses, TrainError> {
        let device = self.device();
        let x1 = data.batch(self.steps_done, self.config.batch, device)?;
        let x0 = x1.randn_like();
        let stepped = self.maps.step(
            &self.objective(),
            self.steps_done,
            &x0,
            &x1,
            self.config.clip,
            &view,
        )?;
        self.steps_done += 1;
        Ok(stepped.losses)
    }
    fn loss_fields(&self) -> &'static [(&'static str, &'static str)] {
        &LOSS_FIELDS
    }
    fn record(&self, step: u64, losses: &FlowMapLosses, timing: Timing) -> FlowMapLine {
        FlowMapLine::new(&self.objective(), step, losses, timing)
    }
    fn samples_per_step(&self) -> usize {
        self.config.batch as usize
    }
    fn sample(&self, z: &Tensor) -> Tensor {
        self.sample_steps(z, self.config.sample_steps)
    }
    fn latent_shape(&self) -> Vec<i64> {
        vec![self.config.dim]
    }
    fn grid_latents(&self, n: i64) -> Tensor {
        Tensor::randn([n, self.config.dim], (Kind::Float, Device::Cpu))
    }
    fn save(&self, _path: &Path, _data: &str) -> Result<(), TrainError> {
        Err(TrainError::InvalidOption(
            "toy flow-map runs write no checkpoint (libtorch's Adam)".into(),
        ))
    }
}
