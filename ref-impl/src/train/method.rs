//! What the generic training loop ([`crate::train::run_loop`]) drives: a [`Method`] (one
//! training step, samples of the evaluated model, a checkpoint) fed by [`Batches`], and an
//! optional [`Evaluate`] hook (FID for images, the energy distance for toys).
//!
//! Adding a training method is implementing [`Method`] in one file of [`crate::methods`]
//! (docs/trainer.md, "Adding a method").

use crate::error::TrainError;
use std::path::Path;
use tch::{Device, Tensor};

/// Training data as batches. Where a run must resume exactly, batch `index` is a pure function
/// of its index (images); a toy target may instead draw each batch from a stream.
pub trait Batches {
    /// Batch `index` of `n` samples `[n, ...]` (fp32) on `device`.
    fn batch(&mut self, index: u64, n: i64, device: Device) -> Result<Tensor, TrainError>;

    /// Rows `start..start + len` of batch `index` of `n` samples (a data-parallel rank's share,
    /// [`crate::dist::Shard`]): the same rows as `batch(index, n)` has there.
    fn rows(
        &mut self,
        index: u64,
        n: i64,
        start: i64,
        len: i64,
        device: Device,
    ) -> Result<Tensor, TrainError> {
        Ok(self.batch(index, n, device)?.narrow(0, start, len))
    }

    /// What the data are (stored in checkpoints; a resume on other data is refused).
    fn describe(&self) -> String {
        "unnamed data".into()
    }
}

/// The timing of one step, measured by the loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Seconds of this step.
    pub step_seconds: f64,
    /// Seconds since the start of this invocation.
    pub since_start: f64,
}

/// Losses of one step, averaged over a window for the run's summary.
pub trait Losses: Copy + serde::Serialize {
    /// The mean of `window` (not empty).
    fn mean(window: &[Self]) -> Self;
}

impl Losses for f64 {
    fn mean(window: &[f64]) -> f64 {
        window.iter().sum::<f64>() / window.len() as f64
    }
}

/// A training method.
pub trait Method {
    /// Losses of one step.
    type Losses: Losses;
    /// One line of `losses.jsonl`: the step, its losses and whatever the method logs with them.
    type Record: serde::Serialize;
    /// The settings that determine the trajectory (written to `config.json`).
    type Config: serde::Serialize;

    /// Short name (progress bars).
    fn name(&self) -> String;
    /// The settings.
    fn config(&self) -> &Self::Config;
    /// The device of the networks.
    fn device(&self) -> Device;
    /// Steps done so far (a resumed run starts at its checkpoint's).
    fn steps_done(&self) -> u64;
    /// One training step on `data`; a non-finite loss is an error and updates nothing.
    fn step(&mut self, data: &mut dyn Batches) -> Result<Self::Losses, TrainError>;
    /// The losses drawn in `losses.png`: `(key of the record, title)`.
    fn loss_fields(&self) -> &'static [(&'static str, &'static str)];
    /// The log record of step `step` (0-based) with its losses and timing.
    fn record(&self, step: u64, losses: &Self::Losses, timing: Timing) -> Self::Record;
    /// Images (or points) through the networks per step, for the throughput in the log.
    fn samples_per_step(&self) -> usize;
    /// Samples of the evaluated model (the EMA generator) for latents `z`, without a graph,
    /// on the method's device.
    fn sample(&self, z: &Tensor) -> Tensor;
    /// Shape of one latent (`[C, H, W]` for images, `[latent_dim]` for toys).
    fn latent_shape(&self) -> Vec<i64>;
    /// The fixed latents of the sample grids: `n` latents, the same at every grid of a run.
    fn grid_latents(&self, n: i64) -> Tensor;
    /// Writes a checkpoint from which the run resumes exactly; `data` is [`Batches::describe`].
    fn save(&self, path: &Path, data: &str) -> Result<(), TrainError>;
    /// Samples of the raw (not averaged) model for latents `z`, when [`Method::sample`] draws
    /// from an average of its weights; the grids then show both.
    fn sample_raw(&self, _z: &Tensor) -> Option<Tensor> {
        None
    }
    /// This process's place in a data-parallel job ([`crate::dist`]), if it is one: the loop
    /// then writes only on rank 0 and stops all ranks at the same step.
    fn replica(&self) -> Option<&crate::dist::Replica> {
        None
    }
    /// A warning when the losses so far (`losses[i]` is step `first + i` of this invocation)
    /// show an unhealthy run: `(kind, one line)`. The loop asks every [`HEALTH_EVERY`] steps
    /// and prints each kind once.
    fn health(&self, _losses: &[Self::Losses]) -> Option<(&'static str, String)> {
        None
    }
}

/// Steps between two [`Method::health`] checks.
pub const HEALTH_EVERY: u64 = 100;

/// A number computed on samples of the method during training (FID, energy distance).
pub trait Evaluate<M: Method> {
    /// Its name: the key in its log lines and the stem of its files (`fid` → `fid.jsonl`,
    /// `fid.png`).
    fn name(&self) -> &str;
    /// The title of its plot's panel of `n` samples.
    fn title(&self, n: usize) -> String {
        format!("{} ({n} samples)", self.name())
    }
    /// The value on `n` samples of `method`. It must leave the training trajectory unchanged
    /// (no draws from a random stream the steps use).
    fn evaluate(&mut self, method: &M, n: usize) -> Result<f64, TrainError>;
}
