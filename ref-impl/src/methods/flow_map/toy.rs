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
use super::objective::{Nets, Objective, StepLoss};
use crate::error::TrainError;
use crate::nets::mlp::{Mlp, MlpConfig};
use crate::train::jvp::JvpRoute;
use crate::train::method::{Batches, Losses, Method, Timing};
use crate::train::network::{AdamSettings, Network};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

/// The settings of a flow-map method on a toy target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlowMapToyConfig {
    /// The method.
    pub kind: FlowMapKind,
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
    /// How the JVP of the derivative-based losses is computed.
    pub route: JvpRoute,
    /// Self-distillation: steps on the diagonal alone.
    pub warmup: u64,
    /// Self-distillation: steps widening `t − s` from 0 to the whole triangle.
    pub anneal: u64,
    /// LMD, EMD, PFMM: steps of the teacher phase.
    pub teacher_steps: u64,
    /// FMM (and PFMM's teacher): the band `|t − s| ≤ 1/band` (1: the full square).
    pub band: usize,
    /// Detach the target term (LSD, LMD: the `b(X)` term; PSD: the two-jump teacher).
    pub stop_gradient: bool,
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
            kind,
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
            route: JvpRoute::ForwardMode,
            warmup: steps / 10,
            anneal: steps / 10,
            teacher_steps: steps / 2,
            band: 4,
            stop_gradient: kind.default_stop_gradient(),
            sample_steps: if kind == FlowMapKind::Fmm { 4 } else { 1 },
        }
    }

    fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidOption(m));
        self.adam.validate()?;
        if self.dim < 1 || self.width < 1 || self.batch < 1 || self.steps == 0 {
            return bad("dimension, width, batch and steps must be at least 1".into());
        }
        if self.band == 0 || self.sample_steps == 0 {
            return bad("--band and --sample-steps must be at least 1".into());
        }
        if self.kind.has_teacher() && self.teacher_steps >= self.steps {
            return bad(format!(
                "{} trains its teacher for --teacher-steps {} of --steps {}: leave steps for the student",
                self.kind.name(),
                self.teacher_steps,
                self.steps
            ));
        }
        Ok(())
    }
}

/// The losses of one step (0 for a term the step does not have).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FlowMapLosses {
    /// What was minimized.
    pub loss: f64,
    /// Flow matching on the diagonal (the teacher's loss in a teacher phase).
    pub diagonal: f64,
    /// The map loss (LSD, ..., PFMM).
    pub map: f64,
    /// Gradient norm before any clipping.
    pub grad_norm: f64,
}

impl Losses for FlowMapLosses {
    fn mean(w: &[Self]) -> Self {
        let m = |f: fn(&Self) -> f64| w.iter().map(f).sum::<f64>() / w.len() as f64;
        FlowMapLosses {
            loss: m(|l| l.loss),
            diagonal: m(|l| l.diagonal),
            map: m(|l| l.map),
            grad_norm: m(|l| l.grad_norm),
        }
    }
}

/// One line of `losses.jsonl`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlowMapLine {
    /// 0-based step.
    pub step: u64,
    /// `teacher` or `student`.
    pub phase: &'static str,
    /// The losses.
    #[serde(flatten)]
    pub losses: FlowMapLosses,
    /// Seconds of the step.
    pub step_seconds: f64,
}

const LOSS_FIELDS: [(&str, &str); 4] = [
    ("loss", "loss"),
    ("diagonal", "flow matching (diagonal)"),
    ("map", "map loss"),
    ("grad_norm", "gradient norm"),
];

/// `v_{s,t}(x)` of an MLP on `[x, s, t]`.
struct TwoTimeMlp<'a>(&'a Mlp);

impl TwoTime for TwoTimeMlp<'_> {
    fn v(&self, x: &Tensor, s: &Tensor, t: &Tensor) -> Tensor {
        let input = Tensor::cat(&[x, &s.reshape([-1, 1]), &t.reshape([-1, 1])], 1);
        self.0.forward(&input, None)
    }
}

/// A flow-map method with MLPs on a toy target.
pub struct FlowMapToy {
    config: FlowMapToyConfig,
    student: Network<Mlp>,
    teacher: Option<Network<Mlp>>,
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
        let teacher = config.kind.has_teacher().then(build).transpose()?;
        Ok(FlowMapToy {
            config,
            student,
            teacher,
            steps_done: 0,
        })
    }

    /// Parameters of the student (the teacher has as many).
    pub fn parameters(&self) -> i64 {
        crate::train::network::param_count(&self.student.vs)
    }

    fn in_teacher_phase(&self) -> bool {
        self.objective().teacher_phase(self.steps_done)
    }

    /// `k` steps of the trained model from latents `z`: the map composed on the uniform grid,
    /// or Euler steps of the diagonal for `fm`. No graph.
    pub fn sample_steps(&self, z: &Tensor, k: usize) -> Tensor {
        let v = TwoTimeMlp(&self.student.net);
        let z = z.to_device(self.student.vs.device()).to_kind(Kind::Float);
        let grid = map::uniform_grid(k);
        tch::no_grad(|| match self.config.kind {
            FlowMapKind::Fm => map::euler(&Diagonal(&v), &z, &grid),
            _ => map::sample(&v, &z, &grid),
        })
    }

    /// The map a distilled model is compared with, on latents `z`: the ODE of the teacher's
    /// velocity (LMD, EMD) or of the model's own diagonal (FM and self-distillation), by RK4 in
    /// 100 steps, or the PFMM teacher's `band` steps. With its description.
    pub fn reference_map(&self, z: &Tensor) -> (String, Tensor) {
        let z = z.to_device(self.student.vs.device()).to_kind(Kind::Float);
        let fine = map::uniform_grid(100);
        tch::no_grad(|| match (&self.teacher, self.config.kind) {
            (Some(t), FlowMapKind::Pfmm) => (
                format!("the FMM teacher in {} steps", self.config.band),
                map::sample(
                    &TwoTimeMlp(&t.net),
                    &z,
                    &map::uniform_grid(self.config.band),
                ),
            ),
            (Some(t), _) => (
                "the teacher's ODE (RK4, 100 steps)".into(),
                map::rk4(&Diagonal(&TwoTimeMlp(&t.net)), &z, &fine),
            ),
            (None, _) => (
                "the model's own diagonal ODE (RK4, 100 steps)".into(),
                map::rk4(&Diagonal(&TwoTimeMlp(&self.student.net)), &z, &fine),
            ),
        })
    }

    fn finite(&self, which: &'static str, value: f64) -> Result<f64, TrainError> {
        if value.is_finite() {
            Ok(value)
        } else {
            Err(TrainError::NonFiniteLoss {
                which,
                value,
                step: self.steps_done as usize,
            })
        }
    }

    fn objective(&self) -> Objective {
        let c = &self.config;
        Objective {
            kind: c.kind,
            route: c.route,
            warmup: c.warmup,
            anneal: c.anneal,
            teacher_steps: c.teacher_steps,
            band: c.band,
            stop_gradient: c.stop_gradient,
        }
    }
}

impl Method for FlowMapToy {
    type Losses = FlowMapLosses;
    type Record = FlowMapLine;
    type Config = FlowMapToyConfig;

    fn name(&self) -> String {
        self.config.kind.name().into()
    }
    fn config(&self) -> &FlowMapToyConfig {
        &self.config
    }
    fn device(&self) -> Device {
        self.student.vs.device()
    }
    fn steps_done(&self) -> u64 {
        self.steps_done
    }
    fn step(&mut self, data: &mut dyn Batches) -> Result<FlowMapLosses, TrainError> {
        let device = self.device();
        let x1 = data.batch(self.steps_done, self.config.batch, device)?;
        let x0 = x1.randn_like();
        let teacher_phase = self.in_teacher_phase();
        // A frozen teacher needs no parameter gradients (LMD's loss reaches it through its
        // input only): freezing it saves their backward pass.
        if !teacher_phase {
            if let Some(t) = self.teacher.as_mut() {
                t.vs.freeze();
            }
        }
        let student = TwoTimeMlp(&self.student.net);
        let teacher = self.teacher.as_ref().map(|t| TwoTimeMlp(&t.net));
        let nets = Nets {
            student: &student,
            student_eval: &student,
            teacher: teacher.as_ref().map(|t| t as &dyn TwoTime),
            teacher_eval: teacher.as_ref().map(|t| t as &dyn TwoTime),
        };
        let StepLoss {
            loss,
            diagonal,
            map: map_loss,
        } = self.objective().loss(self.steps_done, &nets, &x0, &x1)?;
        let total = self.finite("flow-map loss", loss.double_value(&[]))?;
        let clip = self.config.clip;
        let grad_norm = if teacher_phase {
            self.teacher
                .as_mut()
                .expect("a teacher")
                .update(&loss, clip)
        } else {
            self.student.update(&loss, clip)
        };
        self.steps_done += 1;
        // PFMM's student starts from its teacher's weights ([FMM] §3.5).
        if self.config.kind == FlowMapKind::Pfmm && self.steps_done == self.config.teacher_steps {
            let t = self.teacher.as_ref().expect("a teacher");
            tch::no_grad(|| self.student.vs.copy(&t.vs))?;
        }
        Ok(FlowMapLosses {
            loss: total,
            diagonal,
            map: map_loss,
            grad_norm,
        })
    }
    fn loss_fields(&self) -> &'static [(&'static str, &'static str)] {
        &LOSS_FIELDS
    }
    fn record(&self, step: u64, losses: &FlowMapLosses, timing: Timing) -> FlowMapLine {
        let teacher = self.config.kind.has_teacher() && step < self.config.teacher_steps;
        FlowMapLine {
            step,
            phase: if teacher { "teacher" } else { "student" },
            losses: *losses,
            step_seconds: timing.step_seconds,
        }
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
