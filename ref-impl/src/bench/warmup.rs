//! `midpoint-train bench warmup`: warmup throughput on synthetic data generated in-process,
//! against the FLOP bound.
//!
//! Forward cost per image is [`UNetConfig::forward_flops`] (42.4 GFLOP for `ddpm++`); a
//! training step costs about 3× that per image (forward + backward). At a peak of `P` FLOP/s
//! the bound is `P / (3·F)` images/s; the reported fraction is achieved/bound.

use super::{random_images, time_steps};
use crate::error::TrainError;
use crate::methods::warmup::{Warmup, WarmupOptions};
use crate::nets::edm::UNetConfig;
use crate::train::kernels::Kernels;
use crate::train::network::param_count;
use tch::Device;

/// Peak assumed on CUDA when none is given: dense TF32 tensor-core rate of an H100/H200 SXM
/// (494.7 TFLOP/s; libtorch runs fp32 convolutions in TF32 by default).
pub const DEFAULT_CUDA_PEAK_TFLOPS: f64 = 494.7;

/// What the bench measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    /// Network name.
    pub arch: String,
    /// Its parameters.
    pub params: i64,
    /// Images per step.
    pub batch: usize,
    /// Timed steps.
    pub steps: u64,
    /// Untimed steps before (allocator, cuDNN autotuning).
    pub warmup_steps: u64,
    /// Device.
    pub device: String,
    /// Seconds of the timed steps.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_s: f64,
    /// Forward GFLOP per image (analytic).
    pub forward_gflop_per_image: f64,
    /// Achieved TFLOP/s at 3× forward per trained image.
    pub achieved_tflops: f64,
    /// Peak used for the bound (`None` on the CPU unless given).
    pub peak_tflops: Option<f64>,
    /// Images/s at the peak.
    pub flop_bound_images_per_s: Option<f64>,
    /// `images_per_s / flop_bound_images_per_s`.
    pub flop_bound_fraction: Option<f64>,
    /// Kernels of the Adam and EMA updates.
    pub kernels: Kernels,
}

/// Runs `warmup_steps + steps` warmup steps of `arch` at batch `batch` on random images and
/// times the last `steps`.
pub fn bench_warmup(
    arch: UNetConfig,
    batch: usize,
    steps: u64,
    warmup_steps: u64,
    device: Device,
    peak_tflops: Option<f64>,
    kernels: Kernels,
) -> Result<BenchResult, TrainError> {
    if let Some(p) = peak_tflops.filter(|p| !(p.is_finite() && *p > 0.0)) {
        return Err(TrainError::InvalidOption(format!(
            "--peak-tflops must be finite and > 0, got {p}"
        )));
    }
    let mut options = WarmupOptions::edm(arch.clone());
    options.batch = batch;
    options.lr_rampup_kimg = 0.0;
    tch::manual_seed(0);
    let data = random_images(&arch, batch, "synthetic");
    let mut w = Warmup::new(options, device)?.with_kernels(kernels);
    let mut batches = w.batches(data)?;
    let (seconds, _) = time_steps(&mut w, &mut batches, warmup_steps, steps)?;
    let images_per_s = (steps as usize * batch) as f64 / seconds;
    let fwd = arch.forward_flops();
    let peak = peak_tflops.or(match device {
        Device::Cuda(_) => Some(DEFAULT_CUDA_PEAK_TFLOPS),
        _ => None,
    });
    let bound = peak.map(|p| p * 1e12 / (3.0 * fwd));
    Ok(BenchResult {
        arch: arch.name.clone(),
        params: param_count(w.net().1),
        batch,
        steps,
        warmup_steps,
        device: crate::device::device_name(device),
        seconds,
        images_per_s,
        forward_gflop_per_image: fwd / 1e9,
        achieved_tflops: images_per_s * 3.0 * fwd / 1e12,
        peak_tflops: peak,
        flop_bound_images_per_s: bound,
        flop_bound_fraction: bound.map(|b| images_per_s / b),
        kernels,
    })
}
