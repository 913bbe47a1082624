//! `bench fid`: FID-N of a one-step generator end to end (§5.1's FID-50K: generation, then
//! resize + Inception + float64 sums, then `μ`, `Σ` and the Fréchet distance), each phase
//! timed. The generator is freshly initialised: its samples cost what a trained one's do.

use crate::device::{device_name, synchronize};
use crate::error::TrainError;
use crate::fid::{frechet_distance, Inception, Statistics};
use crate::image::checkpoint_generator::{generated_statistics, CheckpointGenerator};
use crate::nets::edm::UNetConfig;
use crate::train::progress::Progress;
use std::time::Instant;

/// What to time.
#[derive(Debug, Clone)]
pub struct FidBenchConfig {
    /// The generator's network.
    pub arch: UNetConfig,
    /// Samples (50,000 for FID-50K).
    pub images: usize,
    /// Samples per batch (generation and Inception alike).
    pub batch: usize,
    /// Seed of the initialisation and of the latents.
    pub seed: u64,
}

/// The measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FidBenchReport {
    /// Device name.
    pub device: String,
    /// The generator's network.
    pub arch: String,
    /// Samples.
    pub images: u64,
    /// Samples per batch.
    pub batch: usize,
    /// Generating the samples (one network evaluation each).
    pub generate_seconds: f64,
    /// Their features.
    pub feature_seconds: f64,
    /// `μ` and `Σ` from the float64 sums.
    pub statistics_seconds: f64,
    /// The Fréchet distance (matrix square root on the CPU).
    pub distance_seconds: f64,
    /// The sum of the four: FID-N end to end, weights already loaded.
    pub total_seconds: f64,
    /// `images / total_seconds`.
    pub images_per_s: f64,
    /// The FID against the reference (against the samples' own statistics when none was
    /// given: 0 up to rounding, computed only for its cost).
    pub fid: f64,
    /// What the reference was.
    pub reference: String,
    /// libtorch intra-op threads.
    pub torch_threads: i32,
    /// libtorch version of the build.
    pub torch_version: String,
}

/// Times FID-`cfg.images` of a fresh one-step generator of `cfg.arch` on `inception`'s device,
/// after one untimed batch (cuDNN's algorithm choice, the allocator's growth, lazy CUDA start).
/// `reference` is `(statistics, name)`; `progress` advances per batch.
pub fn bench_fid(
    inception: &Inception,
    cfg: &FidBenchConfig,
    reference: Option<(&Statistics, String)>,
    progress: &Progress,
) -> Result<FidBenchReport, TrainError> {
    if cfg.images < 2 || cfg.batch == 0 {
        return Err(TrainError::InvalidOption(
            "bench fid needs -n ≥ 2 and --batch ≥ 1".into(),
        ));
    }
    let device = inception.device();
    let generator = CheckpointGenerator::random(cfg.arch.clone(), cfg.seed, device)?;
    let untimed = Progress::new(1, "warm-up", false);
    let _ = generated_statistics(
        &generator,
        inception,
        2.max(cfg.batch),
        cfg.batch,
        cfg.seed,
        &untimed,
    )?;
    synchronize(device);
    let (stats, t) = generated_statistics(
        &generator, inception, cfg.images, cfg.batch, cfg.seed, progress,
    )?;
    let start = Instant::now();
    let (fid, reference) = match reference {
        Some((r, name)) => (frechet_distance(&stats, r)?, name),
        None => (
            frechet_distance(&stats, &stats)?,
            "the samples themselves (timing only)".to_string(),
        ),
    };
    let distance_seconds = start.elapsed().as_secs_f64();
    let total = t.source_seconds + t.feature_seconds + t.statistics_seconds + distance_seconds;
    Ok(FidBenchReport {
        device: device_name(device),
        arch: cfg.arch.name.clone(),
        images: stats.count,
        batch: cfg.batch,
        generate_seconds: t.source_seconds,
        feature_seconds: t.feature_seconds,
        statistics_seconds: t.statistics_seconds,
        distance_seconds,
        total_seconds: total,
        images_per_s: stats.count as f64 / total,
        fid,
        reference,
        torch_threads: tch::get_num_threads(),
        torch_version: crate::device::TORCH_VERSION.to_string(),
    })
}
