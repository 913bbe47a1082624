//! FID during training (§5.1: FID-10k every so often, FID-50K at the end) as the
//! [`Evaluate`] hook of the generic loop, for any image [`Method`]; and the readers of an image
//! run's logs (`losses.jsonl`, `fid.jsonl`).

use crate::dist::Replica;
use crate::error::TrainError;
use crate::fid::stats::FeatureAccumulator;
use crate::fid::{frechet_distance, ImageBatch, Inception, Statistics};
use crate::methods::mgm::LossLine;
use crate::train::method::{Evaluate, Method};
use crate::train::run_dir::read;
use std::path::Path;
use tch::{Kind, Tensor};

/// FID of a method's evaluated model (the EMA generator) against fixed reference statistics.
pub struct FidEval {
    /// The Inception network.
    pub inception: Inception,
    /// Statistics of the reference images (the training set).
    pub reference: Statistics,
    /// Samples per generated batch.
    pub batch: usize,
    /// Seed of the latents (the same latents at every evaluation of a run).
    pub seed: u64,
    /// This process's place in a data-parallel job: the ranks share the batches and sum
    /// their features (`None`: alone).
    pub replica: Option<Replica>,
}

/// Stream of the FID latents.
const FID_STREAM: u64 = 0x0046_4944;

impl FidEval {
    /// FID of `n ≥ 2` samples of `method`, generated batch by batch and quantized to bytes
    /// like saved images ([`ImageBatch::Signed`]). Reseeds torch; image methods reseed every
    /// step themselves, so this leaves the run's trajectory unchanged.
    ///
    /// Data-parallel, rank `r` of `N` generates and embeds batches `r, r + N, ...`; every rank
    /// draws every batch's latents (so all draw the same latents as one process would), and
    /// the float64 feature sums are added over the ranks before `μ`, `Σ` and the distance,
    /// which every rank then holds.
    pub fn fid<M: Method>(&self, method: &M, n: usize) -> Result<f64, TrainError> {
        if n < 2 || self.batch == 0 {
            return Err(TrainError::InvalidOption(format!(
                "FID needs at least 2 samples and a batch ≥ 1, got {n} and {}",
                self.batch
            )));
        }
        let shape = method.latent_shape();
        tch::manual_seed(crate::data::order::derive_seed(self.seed, FID_STREAM, 0) as i64);
        let b = self.batch;
        let device = self.inception.device();
        let (rank, world) = self
            .replica
            .as_ref()
            .map_or((0, 1), |r| (r.shard().rank, r.shard().world));
        let mut acc = FeatureAccumulator::new(crate::fid::FEATURE_DIM, device);
        for (k, i) in (0..n).step_by(b).enumerate() {
            let mut size = vec![b.min(n - i) as i64];
            size.extend(&shape);
            let z = Tensor::randn(size, (Kind::Float, tch::Device::Cpu));
            if k % world == rank {
                let images = ImageBatch::Signed(method.sample(&z).to_device(device));
                acc.push(&self.inception.features(&images)?)?;
            }
        }
        if let Some(r) = &self.replica {
            acc.all_reduce(r.group())?;
        }
        Ok(frechet_distance(&acc.finish()?, &self.reference)?)
    }
}

impl<M: Method> Evaluate<M> for FidEval {
    fn name(&self) -> &str {
        "fid"
    }
    fn title(&self, n: usize) -> String {
        format!("FID ({n} samples) of the EMA generator")
    }
    fn evaluate(&mut self, method: &M, n: usize) -> Result<f64, TrainError> {
        self.fid(method, n)
    }
}

/// One line of `fid.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FidLine {
    /// Steps done.
    pub step: usize,
    /// Samples.
    pub samples: usize,
    /// FID.
    pub fid: f64,
}

/// Reads the `losses.jsonl` of an MGM run (every line must parse).
pub fn read_losses(path: &Path) -> Result<Vec<LossLine>, TrainError> {
    read(path)
}

/// Reads `fid.jsonl` (every line must parse).
pub fn read_fid(path: &Path) -> Result<Vec<FidLine>, TrainError> {
    read(path)
}
