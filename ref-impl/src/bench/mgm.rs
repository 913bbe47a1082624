//! `midpoint-train bench mgm`: iterations of Algorithm 1 on images per second, against the
//! FLOP bound, with the peak GPU memory.
//!
//! An iteration is [`ImageMgm::step`], the trainer's own code: a critic step and a generator
//! step at batch `B` (two fresh batches), then the EMA update, with both losses read back to
//! the host. The networks are EDM's (random initialisation: the cost does not depend on the
//! weights) and the data are random `u8` images made in-process and served by
//! [`DataImages`] as in training (host batch, copy to the device), so no file is needed.
//!
//! **Forward-equivalents.** With `F` the forward cost of one network on one image
//! ([`UNetConfig::forward_flops`]) and a backward pass costing `2F` when it computes the
//! gradients of both the activations and the weights, `F` when only the activations' (frozen
//! weights), one iteration costs per image:
//!
//! | part | cost |
//! |---|---|
//! | critic step: `x0 = G(z)` without a graph | `F` |
//! | critic step: `f_ψ(x̃_t, t)` forward + backward into `ψ` | `F + 2F` |
//! | generator step: `x0 = G(z)` forward | `F` |
//! | generator step: `f_ψ` forward, backward to its input only (`ψ` frozen) | `F + F` |
//! | generator step: backward through `G` into `θ` | `2F` |
//! | **total** | **`9F`** |
//!
//! so `images_per_s = B · iterations/s`, `achieved_tflops = images_per_s · 9F` and the bound
//! is `peak / (9F)` images/s. Elementwise work (observation, losses, Adam, EMA) is left out,
//! as in `F`.
//!
//! **Peak.** Given (`--peak-tflops`), or measured once on this machine by
//! [`super::matmul::bench_matmul`] before the networks are built: bf16 products for `bf16`,
//! TF32 products for `fp32` on CUDA (libtorch runs fp32 convolutions, nearly all of `F`, in
//! TF32 by default), fp32 on the CPU.
//!
//! **Peak GPU memory** is the CUDA caching allocator's peak of allocated bytes
//! (`torch.cuda.max_memory_allocated`), reset after the matmul measurement: weights of the
//! three networks, Adam moments, gradients and the activations of the largest step. It leaves
//! out the allocator's cache and the CUDA context, which `nvidia-smi` would include.

use super::matmul::{bench_matmul, MatmulDtype};
use super::{random_images, time_steps};
use crate::data::DataImages;
use crate::error::TrainError;
use crate::methods::mgm::image::{ImageMgm, ImageMgmConfig};
use crate::methods::mgm::StepLosses;
use crate::nets::edm::UNetConfig;
use crate::train::kernels::Kernels;
use crate::train::network::param_count;
use crate::train::precision::{cuda_peak_allocated, cuda_reset_peak, Precision};
use tch::{Device, Kind, Tensor};

/// Forward-equivalents per image of one iteration (see the module docs).
pub const FORWARD_EQUIVALENTS: f64 = 9.0;

/// Where the peak for the bound comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Peak {
    /// A figure in TFLOP/s.
    Given(f64),
    /// Measured by `bench matmul` with `n × n` matrices, `reps` products.
    Measure {
        /// Side of the matrices.
        n: i64,
        /// Timed products.
        reps: u32,
    },
    /// No bound.
    None,
}

/// Settings of `bench mgm`.
#[derive(Debug, Clone)]
pub struct MgmBenchConfig {
    /// The network of both `G_θ` and `f_ψ`.
    pub arch: UNetConfig,
    /// Images per batch (`B`).
    pub batch: i64,
    /// Timed iterations.
    pub steps: u64,
    /// Untimed iterations first (allocator, cuDNN heuristics).
    pub warmup_steps: u64,
    /// Arithmetic of the forward passes and losses.
    pub precision: Precision,
    /// Peak for the bound.
    pub peak: Peak,
    /// Kernels of the two Adams and the EMA.
    pub kernels: Kernels,
    /// Profile this many more iterations after the timed ones into this folder
    /// ([`super::profile`]).
    pub profile: Option<(std::path::PathBuf, u64)>,
}

/// What `bench mgm` measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MgmBenchResult {
    /// Network name.
    pub arch: String,
    /// Parameters of one network.
    pub params: i64,
    /// `B`.
    pub batch: i64,
    /// Timed iterations.
    pub steps: u64,
    /// Untimed iterations before.
    pub warmup_steps: u64,
    /// `fp32` or `bf16`.
    pub precision: Precision,
    /// Device.
    pub device: String,
    /// Seconds of the timed iterations.
    pub seconds: f64,
    /// Iterations (critic step + generator step + EMA) per second.
    pub iterations_per_s: f64,
    /// `B · iterations_per_s`.
    pub images_per_s: f64,
    /// `F`, forward GFLOP of one network on one image (analytic).
    pub forward_gflop_per_image: f64,
    /// 9 (see the module docs).
    pub forward_equivalents: f64,
    /// `images_per_s · 9F`, TFLOP/s.
    pub achieved_tflops: f64,
    /// Peak used for the bound.
    pub peak_tflops: Option<f64>,
    /// Where the peak came from (`given`, or the matmul measurement).
    pub peak_source: Option<String>,
    /// `peak / 9F`.
    pub flop_bound_images_per_s: Option<f64>,
    /// `images_per_s / flop_bound_images_per_s`.
    pub flop_bound_fraction: Option<f64>,
    /// Peak bytes allocated by the CUDA caching allocator (null off CUDA).
    pub peak_gpu_memory_bytes: Option<u64>,
    /// Why `peak_gpu_memory_bytes` is null, when it is.
    pub peak_gpu_memory_note: Option<String>,
    /// Losses of the last timed iteration.
    pub last_losses: StepLosses,
    /// Kernels of the two Adams and the EMA.
    pub kernels: Kernels,
    /// Where the profiled iterations' time went (`--profile`).
    pub profile: Option<super::profile::ProfileReport>,
}

/// The matmul dtype whose rate bounds an iteration in `precision` on `device`.
pub fn peak_dtype(precision: Precision, device: Device) -> MatmulDtype {
    match (precision, device) {
        (Precision::Bf16, _) => MatmulDtype::Bf16,
        (Precision::Fp32, Device::Cuda(_)) => MatmulDtype::Tf32,
        (Precision::Fp32, _) => MatmulDtype::Fp32,
    }
}

/// Runs `warmup_steps + steps` iterations of image MGM on `device` and times the last `steps`.
pub fn bench_mgm(config: &MgmBenchConfig, device: Device) -> Result<MgmBenchResult, TrainError> {
    let bad = |m: String| Err(TrainError::InvalidOption(m));
    if let Peak::Given(p) = config.peak {
        if !(p.is_finite() && p > 0.0) {
            return bad(format!("--peak-tflops must be finite and > 0, got {p}"));
        }
    }
    config.precision.check(device)?;
    let (peak_tflops, peak_source) = match config.peak {
        Peak::Given(p) => (Some(p), Some("given (--peak-tflops)".to_string())),
        Peak::Measure { n, reps } => {
            let dtype = peak_dtype(config.precision, device);
            let m = bench_matmul(dtype, n, reps, device)?;
            let source = format!(
                "measured: bench matmul --dtype {} --n {n} ({reps} products, {:.4e} s)",
                dtype.name(),
                m.seconds
            );
            (Some(m.tflops), Some(source))
        }
        Peak::None => (None, None),
    };
    let cuda_index = match device {
        Device::Cuda(i) => Some(i),
        _ => None,
    };
    let mut memory_note = None;
    if let Some(i) = cuda_index {
        // The caching allocator starts with the first CUDA tensor; reset its peak after that.
        let _init = Tensor::zeros([1], (Kind::Float, device));
        if let Err(e) = cuda_reset_peak(i) {
            memory_note = Some(e.to_string());
        }
    }
    let arch = &config.arch;
    let mgm_config = ImageMgmConfig {
        batch: config.batch,
        precision: config.precision,
        ..ImageMgmConfig::paper(arch.clone())
    };
    let mut run = ImageMgm::from_random_init(mgm_config, device)?.with_kernels(config.kernels)?;
    tch::manual_seed(1);
    let set = random_images(arch, config.batch as usize, "synthetic random bytes");
    let mut data = DataImages::new(set, 0, false)?;
    let (seconds, last) = time_steps(&mut run, &mut data, config.warmup_steps, config.steps)?;
    // After the timing: the profiler's own cost must not enter the figure.
    let profile = match &config.profile {
        Some((dir, n)) => Some(super::profile::profile(
            dir,
            device.is_cuda(),
            *n,
            || run.step(&mut data).map(|_| ()),
            || super::sync(device),
        )?),
        None => None,
    };
    let peak_gpu_memory_bytes = match cuda_index {
        Some(i) if memory_note.is_none() => match cuda_peak_allocated(i) {
            Ok(b) => Some(b),
            Err(e) => {
                memory_note = Some(e.to_string());
                None
            }
        },
        Some(_) => None,
        None => {
            memory_note = Some("not on CUDA: the figure is the CUDA caching allocator's".into());
            None
        }
    };
    let iterations_per_s = config.steps as f64 / seconds;
    let images_per_s = iterations_per_s * config.batch as f64;
    let fwd = arch.forward_flops();
    let per_image = FORWARD_EQUIVALENTS * fwd;
    let bound = peak_tflops.map(|p| p * 1e12 / per_image);
    Ok(MgmBenchResult {
        arch: arch.name.clone(),
        params: param_count(&run.trainer().generator.vs),
        batch: config.batch,
        steps: config.steps,
        warmup_steps: config.warmup_steps,
        precision: config.precision,
        device: crate::device::device_name(device),
        seconds,
        iterations_per_s,
        images_per_s,
        forward_gflop_per_image: fwd / 1e9,
        forward_equivalents: FORWARD_EQUIVALENTS,
        achieved_tflops: images_per_s * per_image / 1e12,
        peak_tflops,
        peak_source,
        flop_bound_images_per_s: bound,
        flop_bound_fraction: bound.map(|b| images_per_s / b),
        peak_gpu_memory_bytes,
        peak_gpu_memory_note: memory_note,
        last_losses: last,
        kernels: config.kernels,
        profile,
    })
}
