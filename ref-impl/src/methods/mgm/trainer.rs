//! A generator, a displacement field and Algorithm 1's alternation of their updates (1:1 in
//! the paper, App. B; `critic_steps` field updates per generator update as an option).

use super::objective::{Mgm, StepLosses};
use crate::error::TrainError;
use crate::train::ema::Ema;
use crate::train::method::Batches;
use crate::train::network::{Field, Generator, Network};
use tch::{Kind, Tensor};

/// A generator, a field and Algorithm 1's step counter.
pub struct MgmTrainer<G, F> {
    /// The objective and its interpolants.
    pub mgm: Mgm,
    /// `G_θ` with its optimizer.
    pub generator: Network<G>,
    /// `f_ψ` with its optimizer.
    pub field: Network<F>,
    step: usize,
    critic_steps: usize,
    critic_warmup: usize,
}

impl<G: Generator, F: Field> MgmTrainer<G, F> {
    /// Starts at step 0, one field update per generator update (App. B).
    pub fn new(mgm: Mgm, generator: Network<G>, field: Network<F>) -> Self {
        MgmTrainer {
            mgm,
            generator,
            field,
            step: 0,
            critic_steps: 1,
            critic_warmup: 0,
        }
    }

    /// The same trainer with `n ≥ 1` field updates (each on a fresh batch) before every
    /// generator update, as WGAN's `n_critic`: a field that lags the generator gives it a
    /// biased gradient (Prop. 3.3 needs the field at its optimum).
    pub fn with_critic_steps(mut self, n: usize) -> Result<Self, TrainError> {
        if n == 0 {
            return Err(TrainError::InvalidOption(
                "critic steps per generator step must be at least 1".into(),
            ));
        }
        self.critic_steps = n;
        Ok(self)
    }

    /// The first `n` iterations update only the field: the generator's step is evaluated
    /// (its loss and sample statistics are logged) but not applied.
    pub fn with_critic_warmup(mut self, n: usize) -> Self {
        self.critic_warmup = n;
        self
    }

    /// Field updates per generator update.
    pub fn critic_steps(&self) -> usize {
        self.critic_steps
    }

    /// Steps done so far.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Sets the step counter (resuming from a checkpoint written after `k` steps).
    pub fn set_steps_done(&mut self, k: usize) {
        self.step = k;
    }

    /// One iteration of Algorithm 1: `critic_steps` field steps, each on a fresh batch
    /// `(z, x1) = batch()`, then a generator step on another fresh batch. `x0 = G(z)` is
    /// computed without a graph (and with `train = false`) for the field steps, in the
    /// objective's precision.
    pub fn step(
        &mut self,
        batch: &mut dyn FnMut() -> Result<(Tensor, Tensor), TrainError>,
    ) -> Result<StepLosses, TrainError> {
        let mut critic = 0.0;
        let mut critic_rel = 0.0;
        let mut grad_critic = 0.0;
        for _ in 0..self.critic_steps {
            let (z, x1) = batch()?;
            let x0 = self.mgm.precision().autocast(z.device(), || {
                tch::no_grad(|| self.generator.net.generate(&z, false))
            })?;
            let f = self.mgm.field_step(&mut self.field, &x0, &x1, self.step)?;
            critic += f.loss / self.critic_steps as f64;
            critic_rel += f.loss / f.delta_sq / self.critic_steps as f64;
            grad_critic = f.grad_norm;
        }
        let (z, x1) = batch()?;
        let g = if self.step < self.critic_warmup {
            self.mgm
                .generator_value(&self.generator, &self.field, &z, &x1, self.step)?
        } else {
            self.mgm
                .generator_step(&mut self.generator, &mut self.field, &z, &x1, self.step)?
        };
        self.step += 1;
        Ok(StepLosses {
            critic,
            generator: g.loss,
            critic_rel,
            grad_critic,
            grad_generator: g.grad_norm,
            raw_mean: g.raw.mean,
            raw_std: g.raw.std,
            raw_outside: g.raw.outside,
        })
    }
}

impl<G: Generator, F: Field> MgmTrainer<G, F> {
    /// One iteration of Algorithm 1 on data ([`MgmTrainer::step`]) followed by the update of
    /// the generator's EMA: with `c` field steps per iteration, the field steps on batches
    /// `(c + 1)k, ..., (c + 1)k + c − 1` of `data` and the generator step on batch
    /// `(c + 1)k + c` (`k` = steps done; `2k` and `2k + 1` for the paper's 1:1), each with fresh latents `z ~ N(0, I)` of shape
    /// `[batch, latent...]` drawn from torch's generator after the batch. A batch whose shape
    /// is not `[batch, sample...]` is an error.
    pub fn step_on(
        &mut self,
        data: &mut dyn Batches,
        ema: &mut Ema,
        batch: i64,
        sample: &[i64],
        latent: &[i64],
    ) -> Result<StepLosses, TrainError> {
        let k = self.steps_done() as u64;
        let per_step = self.critic_steps as u64 + 1;
        let device = self.generator.vs.device();
        // A data-parallel rank reads its rows of each global batch and keeps its rows of the
        // latents, drawn at the global batch's shape from the stream every rank shares.
        let shard = self.mgm.shard();
        let (start, rows) = shard.rows(batch)?;
        let with_batch = |n: i64, rest: &[i64]| [&[n], rest].concat();
        let mut draw = 0u64;
        let mut next = || -> Result<(Tensor, Tensor), TrainError> {
            let index = per_step * k + draw;
            let x1 = if shard.world == 1 {
                data.batch(index, batch, device)?
            } else {
                data.rows(index, batch, start, rows, device)?
            };
            draw += 1;
            if x1.size() != with_batch(rows, sample) {
                return Err(TrainError::InvalidOption(format!(
                    "data batch has shape {:?}, expected {:?}",
                    x1.size(),
                    with_batch(rows, sample)
                )));
            }
            let z = shard.local(&Tensor::randn(
                with_batch(batch, latent),
                (Kind::Float, device),
            ))?;
            Ok((z, x1))
        };
        let losses = self.step(&mut next)?;
        // In the critic warmup the generator did not move; an EMA update would still change
        // the EMA's bits by rounding (d·e + (1 − d)·e ≠ e in floating point).
        if k as usize >= self.critic_warmup {
            ema.update(&self.generator.vs)?;
        }
        Ok(losses)
    }
}

impl crate::train::method::Losses for StepLosses {
    fn mean(window: &[StepLosses]) -> StepLosses {
        let n = window.len() as f64;
        let mean = |f: fn(&StepLosses) -> f64| window.iter().map(f).sum::<f64>() / n;
        StepLosses {
            critic: mean(|l| l.critic),
            generator: mean(|l| l.generator),
            critic_rel: mean(|l| l.critic_rel),
            grad_critic: mean(|l| l.grad_critic),
            grad_generator: mean(|l| l.grad_generator),
            raw_mean: mean(|l| l.raw_mean),
            raw_std: mean(|l| l.raw_std),
            raw_outside: mean(|l| l.raw_outside),
        }
    }
}

/// One line of `losses.jsonl` of an MGM run: the step's [`StepLosses`] (health signals
/// included; lines written before they existed read them as NaN) and its timing.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossLine {
    /// 0-based step.
    pub step: usize,
    /// `L_ψ` before the field's update.
    pub critic: f64,
    /// `L_θ` before the generator's update (the held-out `J`).
    pub generator: f64,
    /// `L_ψ / mean ‖x1 − x0‖²`.
    #[serde(default = "nan")]
    pub critic_rel: f64,
    /// Gradient norm of the field.
    #[serde(default = "nan")]
    pub grad_critic: f64,
    /// Gradient norm of the generator.
    #[serde(default = "nan")]
    pub grad_generator: f64,
    /// Mean of the raw generator's samples.
    #[serde(default = "nan")]
    pub raw_mean: f64,
    /// Standard deviation of the raw generator's samples.
    #[serde(default = "nan")]
    pub raw_std: f64,
    /// Fraction of the raw generator's sample entries outside `[−1, 1]`.
    #[serde(default = "nan")]
    pub raw_outside: f64,
    /// Samples through `G` per second in this step.
    pub images_per_s: f64,
    /// Seconds since the start of this invocation.
    pub seconds: f64,
}

fn nan() -> f64 {
    f64::NAN
}

impl LossLine {
    /// The line of step `step` with `samples` samples through `G`.
    pub fn new(
        step: u64,
        l: &StepLosses,
        samples: usize,
        timing: crate::train::method::Timing,
    ) -> Self {
        LossLine {
            step: step as usize,
            critic: l.critic,
            generator: l.generator,
            critic_rel: l.critic_rel,
            grad_critic: l.grad_critic,
            grad_generator: l.grad_generator,
            raw_mean: l.raw_mean,
            raw_std: l.raw_std,
            raw_outside: l.raw_outside,
            images_per_s: samples as f64 / timing.step_seconds,
            seconds: timing.since_start,
        }
    }
}

/// `(field, title)` of the signals drawn in `losses.png`.
pub const LOSS_TITLES: [(&str, &str); 8] = [
    ("critic", "critic loss L_ψ"),
    (
        "generator",
        "generator loss L_θ = held-out J (≥ 0 is healthy)",
    ),
    ("critic_rel", "L_ψ / E‖x1 − x0‖² (1 = zero field)"),
    ("grad_critic", "gradient norm, field"),
    ("grad_generator", "gradient norm, generator"),
    ("raw_mean", "raw generator: mean"),
    ("raw_std", "raw generator: std"),
    ("raw_outside", "raw generator: fraction outside [−1, 1]"),
];
