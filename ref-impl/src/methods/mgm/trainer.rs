//! A generator, a displacement field and Algorithm 1's 1:1 alternation of their updates.

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
}

impl<G: Generator, F: Field> MgmTrainer<G, F> {
    /// Starts at step 0.
    pub fn new(mgm: Mgm, generator: Network<G>, field: Network<F>) -> Self {
        MgmTrainer {
            mgm,
            generator,
            field,
            step: 0,
        }
    }

    /// Steps done so far.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Sets the step counter (resuming from a checkpoint written after `k` steps).
    pub fn set_steps_done(&mut self, k: usize) {
        self.step = k;
    }

    /// One iteration of Algorithm 1: a field step on one fresh batch `(z, x1) = batch()`,
    /// then a generator step on another fresh batch. `x0 = G(z)` is computed without a graph
    /// (and with `train = false`) for the field step, in the objective's precision.
    pub fn step(
        &mut self,
        batch: &mut dyn FnMut() -> Result<(Tensor, Tensor), TrainError>,
    ) -> Result<StepLosses, TrainError> {
        let (z, x1) = batch()?;
        let x0 = self.mgm.precision().autocast(z.device(), || {
            tch::no_grad(|| self.generator.net.generate(&z, false))
        })?;
        let critic = self.mgm.field_step(&mut self.field, &x0, &x1, self.step)?;
        let (z, x1) = batch()?;
        let generator =
            self.mgm
                .generator_step(&mut self.generator, &mut self.field, &z, &x1, self.step)?;
        self.step += 1;
        Ok(StepLosses { critic, generator })
    }
}

impl<G: Generator, F: Field> MgmTrainer<G, F> {
    /// One iteration of Algorithm 1 on data ([`MgmTrainer::step`]) followed by the update of
    /// the generator's EMA: the field step on batch `2k` of `data`, the generator step on
    /// batch `2k + 1` (`k` = steps done), each with fresh latents `z ~ N(0, I)` of shape
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
        let device = self.generator.vs.device();
        let with_batch = |rest: &[i64]| [&[batch], rest].concat();
        let mut draw = 0u64;
        let mut next = || -> Result<(Tensor, Tensor), TrainError> {
            let x1 = data.batch(2 * k + draw, batch, device)?;
            draw += 1;
            if x1.size() != with_batch(sample) {
                return Err(TrainError::InvalidOption(format!(
                    "data batch has shape {:?}, expected {:?}",
                    x1.size(),
                    with_batch(sample)
                )));
            }
            let z = Tensor::randn(with_batch(latent), (Kind::Float, device));
            Ok((z, x1))
        };
        let losses = self.step(&mut next)?;
        ema.update(&self.generator.vs)?;
        Ok(losses)
    }
}

impl crate::train::method::Losses for StepLosses {
    fn mean(window: &[StepLosses]) -> StepLosses {
        let n = window.len() as f64;
        StepLosses {
            critic: window.iter().map(|l| l.critic).sum::<f64>() / n,
            generator: window.iter().map(|l| l.generator).sum::<f64>() / n,
        }
    }
}

/// One line of `losses.jsonl` of an MGM run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossLine {
    /// 0-based step.
    pub step: usize,
    /// `L_ψ` before the field's update.
    pub critic: f64,
    /// `L_θ` before the generator's update.
    pub generator: f64,
    /// Samples through `G` per second in this step (2 batches).
    pub images_per_s: f64,
    /// Seconds since the start of this invocation.
    pub seconds: f64,
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
            images_per_s: samples as f64 / timing.step_seconds,
            seconds: timing.since_start,
        }
    }
}

/// `(field, title)` of the losses drawn in `losses.png`.
pub const LOSS_TITLES: [(&str, &str); 2] = [
    ("critic", "critic loss L_ψ"),
    ("generator", "generator loss L_θ"),
];
