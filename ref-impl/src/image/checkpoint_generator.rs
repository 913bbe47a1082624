//! The generator of an image checkpoint, whatever trained it: what `fid --checkpoint` and
//! `image-metrics --checkpoint` draw samples from, and what `bench fid` times.
//!
//! | checkpoint | samples | steps |
//! |---|---|---|
//! | warmup (`midpoint-warmup-v1`) | `D_ema(2.5·z; 2.5)`, the one-step generator MGM starts from (App. B) | 1 |
//! | image MGM (`midpoint-mgm-v1`) | `G_ema(z)`, Algorithm 1's EMA generator (§5.1) | 1 |
//! | image flow map (`midpoint-flowmap-image-v1`) | the EMA map's `K`-step sampler ([FMM] Alg. 2) | `K`, default the run's own |
//!
//! Every sample is an image in `[−1, 1]` (up to the generator's overshoot), `[N, C, H, W]`, on
//! the checkpoint's device, computed without a graph and in evaluation mode.

use crate::error::TrainError;
use crate::fid::{statistics_from_batches_timed, ImageBatch, Inception, Statistics, StreamTiming};
use crate::methods::flow_map::image::{FlowMapImage, FORMAT as FLOWMAP_FORMAT};
use crate::methods::mgm::image::{ImageMgm, ImageMgmConfig, FORMAT as MGM_FORMAT};
use crate::methods::warmup::{Warmup, FORMAT as WARMUP_FORMAT};
use crate::nets::edm::UNetConfig;
use crate::train::checkpoint;
use crate::train::progress::Progress;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// What was opened: the sampler and the shape of one image.
enum Sampler {
    Warmup(Box<Warmup>),
    Mgm(Box<ImageMgm>),
    FlowMap(Box<FlowMapImage>, usize),
}

/// A checkpoint's evaluated generator (its EMA weights) with its number of sampling steps.
pub struct CheckpointGenerator {
    sampler: Sampler,
    shape: [i64; 3],
    what: String,
}

impl CheckpointGenerator {
    /// Opens the checkpoint at `path` (verified: every tensor present, of its dtype and shape)
    /// on `device`. `steps` is the flow map's number of sampling steps (`None`: the run's own
    /// `sample_steps`); a one-step generator (warmup, MGM) refuses any other value than 1.
    pub fn open(path: &Path, device: Device, steps: Option<usize>) -> Result<Self, TrainError> {
        let format = checkpoint::load(path)?.meta(path, "format")?.to_string();
        let one_step = |what: &str| -> Result<(), TrainError> {
            match steps {
                None | Some(1) => Ok(()),
                Some(k) => Err(TrainError::InvalidOption(format!(
                    "--steps {k}: {} holds {what}, a one-step generator",
                    path.display()
                ))),
            }
        };
        match format.as_str() {
            WARMUP_FORMAT => {
                one_step("a warmup")?;
                let w = Warmup::open(path, device)?;
                Ok(CheckpointGenerator {
                    shape: shape_of(&w.options().arch),
                    what: format!(
                        "warmup step {}: one-step D_ema(2.5·z; 2.5)",
                        w.step_count()
                    ),
                    sampler: Sampler::Warmup(Box::new(w)),
                })
            }
            MGM_FORMAT => {
                one_step("an MGM run")?;
                let m = ImageMgm::open(path, device)?;
                Ok(CheckpointGenerator {
                    shape: shape_of(&m.config().arch),
                    what: format!(
                        "MGM ({}) step {}: EMA generator G_ema(z)",
                        m.config().variant.name(),
                        m.steps_done()
                    ),
                    sampler: Sampler::Mgm(Box::new(m)),
                })
            }
            FLOWMAP_FORMAT => {
                let f = FlowMapImage::open(path, device)?;
                let cfg = crate::train::method::Method::config(&f);
                let k = steps.unwrap_or(cfg.sample_steps);
                if k == 0 {
                    return Err(TrainError::InvalidOption("--steps must be at least 1".into()));
                }
                Ok(CheckpointGenerator {
                    shape: shape_of(&cfg.arch),
                    what: format!(
                        "flow map {} step {}: EMA map, {k} sampling step(s)",
                        cfg.objective.kind.name(),
                        crate::train::method::Method::steps_done(&f)
                    ),
                    sampler: Sampler::FlowMap(Box::new(f), k),
                })
            }
            other => Err(TrainError::InvalidOption(format!(
                "{}: a {other:?} checkpoint; expected a warmup, image-MGM or image flow-map checkpoint",
                path.display()
            ))),
        }
    }

    /// A freshly initialised one-step generator of `arch` (EDM's initialisation, torch seeded
    /// from `seed`): what its samples cost is what a trained one's cost (`bench fid`).
    pub fn random(arch: UNetConfig, seed: u64, device: Device) -> Result<Self, TrainError> {
        let mut config = ImageMgmConfig::paper(arch);
        config.seed = seed;
        let m = ImageMgm::from_random_init(config, device)?;
        Ok(CheckpointGenerator {
            shape: shape_of(&m.config().arch),
            what: "freshly initialised one-step generator".into(),
            sampler: Sampler::Mgm(Box::new(m)),
        })
    }

    /// Samples for latents `z` `[N, C, H, W]` (any device; moved to the generator's).
    pub fn sample(&self, z: &Tensor) -> Tensor {
        match &self.sampler {
            Sampler::Warmup(w) => w.samples(z),
            Sampler::Mgm(m) => m.samples(z),
            Sampler::FlowMap(f, k) => f.sample_steps(z, *k, true),
        }
    }

    /// `[C, H, W]` of one image.
    pub fn image_shape(&self) -> [i64; 3] {
        self.shape
    }

    /// Network evaluations per sample.
    pub fn steps(&self) -> usize {
        match &self.sampler {
            Sampler::FlowMap(_, k) => *k,
            _ => 1,
        }
    }

    /// One line saying what the samples are.
    pub fn describe(&self) -> &str {
        &self.what
    }
}

fn shape_of(a: &UNetConfig) -> [i64; 3] {
    [a.img_channels, a.img_resolution, a.img_resolution]
}

/// Feature statistics of `n` samples of `generator` (§5.1: FID-50K), generated batch by batch
/// on the Inception device and quantized to bytes like saved images; latents `z ~ N(0, I)`
/// from torch's generator seeded with `seed`, one `randn` per batch of at most `batch`.
/// Returns the time of each phase ([`StreamTiming`]: `source_seconds` is the generation).
pub fn generated_statistics(
    generator: &CheckpointGenerator,
    inception: &Inception,
    n: usize,
    batch: usize,
    seed: u64,
    progress: &Progress,
) -> Result<(Statistics, StreamTiming), TrainError> {
    if n < 2 || batch == 0 {
        return Err(TrainError::InvalidOption(format!(
            "FID needs at least 2 samples and a batch ≥ 1, got {n} and {batch}"
        )));
    }
    let [c, h, w] = generator.image_shape();
    tch::manual_seed(seed as i64);
    let batches = (0..n).step_by(batch).map(|i| {
        let m = batch.min(n - i) as i64;
        let z = Tensor::randn([m, c, h, w], (Kind::Float, inception.device()));
        Ok::<_, TrainError>(ImageBatch::Signed(generator.sample(&z)))
    });
    statistics_from_batches_timed(inception, batches, progress)
}
