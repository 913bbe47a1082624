//! Throughput of the feature extractor (`midpoint-train bench inception`): synthetic uint8
//! images made on the device, through the whole per-image FID path (resize to 299×299,
//! normalize, Inception, float64 sums), after one untimed warm-up batch.

use super::inception::Inception;
use super::preprocess::ImageBatch;
use super::stats::FeatureAccumulator;
use super::{FidError, FEATURE_DIM};
use crate::device::device_name;
use crate::train::progress::Progress;
use tch::{Kind, Tensor};

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Images per batch.
    pub batch: usize,
    /// Images timed (rounded up to whole batches).
    pub images: usize,
    /// Side of the synthetic square images (32 for CIFAR-10).
    pub size: usize,
    /// Seed of the synthetic pixels.
    pub seed: u64,
}

/// The measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// Device name (`cpu`, `cuda:0`).
    pub device: String,
    /// Images per batch.
    pub batch: usize,
    /// Images timed.
    pub images: usize,
    /// Side of the input images.
    pub input_size: usize,
    /// Wall-clock seconds of the timed batches.
    pub seconds: f64,
    /// `images / seconds`.
    pub images_per_s: f64,
    /// libtorch intra-op threads.
    pub torch_threads: i32,
    /// libtorch version of the build.
    pub torch_version: String,
}

use crate::device::synchronize as sync;

/// Times `cfg.images` synthetic images through [`Inception::features`] and
/// [`FeatureAccumulator::push`]; `progress` advances per batch.
pub fn bench_inception(
    inception: &Inception,
    cfg: &BenchConfig,
    progress: &Progress,
) -> Result<BenchReport, FidError> {
    if cfg.batch == 0 || cfg.images == 0 || cfg.size == 0 {
        return Err(FidError::InvalidOption(
            "bench needs --batch, -n and --size ≥ 1".into(),
        ));
    }
    let device = inception.device();
    tch::manual_seed(cfg.seed as i64);
    let s = cfg.size as i64;
    let make = |n: usize| {
        ImageBatch::Bytes(Tensor::randint_low(
            0,
            256,
            [n as i64, 3, s, s],
            (Kind::Uint8, device),
        ))
    };
    let mut acc = FeatureAccumulator::new(FEATURE_DIM, device);
    // Warm-up: cuDNN algorithm choice, allocator growth, lazy CUDA initialisation.
    acc.push(&inception.features(&make(cfg.batch))?)?;
    sync(device);
    let batches = cfg.images.div_ceil(cfg.batch);
    let timed: Vec<ImageBatch> = (0..batches).map(|_| make(cfg.batch)).collect();
    sync(device);
    let start = std::time::Instant::now();
    for b in &timed {
        acc.push(&inception.features(b)?)?;
        progress.inc();
    }
    sync(device);
    let seconds = start.elapsed().as_secs_f64();
    progress.finish();
    let images = batches * cfg.batch;
    Ok(BenchReport {
        device: device_name(device),
        batch: cfg.batch,
        images,
        input_size: cfg.size,
        seconds,
        images_per_s: images as f64 / seconds,
        torch_threads: tch::get_num_threads(),
        torch_version: crate::device::TORCH_VERSION.to_string(),
    })
}
