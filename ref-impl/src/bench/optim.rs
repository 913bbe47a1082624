//! `midpoint-train bench optim`: the optimizer and EMA updates of one network alone, with each
//! kernel ([`crate::train::kernels`]), so that their share of an MGM iteration can be read
//! without a profiler: an iteration takes two Adam updates (field and generator) and one EMA
//! update of the generator.
//!
//! The network is EDM's ([`EdmPrecond`] of the given architecture, random initialisation); the
//! gradients are fixed random tensors (the update's cost does not depend on their values).
//! Each kernel runs `warmup` untimed and `reps` timed updates, with the device synchronised
//! around the timed ones.

use super::sync;
use crate::error::TrainError;
use crate::nets::edm::{EdmPrecond, UNetConfig};
use crate::train::adam::{Adam, AdamConfig};
use crate::train::ema::Ema;
use crate::train::kernels::{AdamKernel, EmaKernel};
use crate::train::network::param_count;
use tch::{nn, Device, Kind, Tensor};

/// One kernel's time per update.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelTime {
    /// `adam plain`, `ema foreach`, ...
    pub update: String,
    /// Milliseconds per update.
    pub ms: f64,
    /// The plain kernel's time over this one's (> 1: faster than plain).
    pub speedup_over_plain: f64,
}

/// What `bench optim` measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OptimBenchResult {
    /// Network name.
    pub arch: String,
    /// Its parameters.
    pub params: i64,
    /// Its parameter tensors.
    pub tensors: usize,
    /// Device.
    pub device: String,
    /// Timed updates per kernel.
    pub reps: u32,
    /// Adam (plain, foreach, fused), then the EMA (plain, foreach).
    pub kernels: Vec<KernelTime>,
}

fn timed(
    device: Device,
    warmup: u32,
    reps: u32,
    mut f: impl FnMut() -> Result<(), TrainError>,
) -> Result<f64, TrainError> {
    for _ in 0..warmup {
        f()?;
    }
    sync(device);
    let t = std::time::Instant::now();
    for _ in 0..reps {
        f()?;
    }
    sync(device);
    Ok(t.elapsed().as_secs_f64() * 1e3 / f64::from(reps))
}

/// Times Adam and the EMA of one `arch` network on `device`, each kernel in turn.
pub fn bench_optim(
    arch: &UNetConfig,
    reps: u32,
    warmup: u32,
    device: Device,
) -> Result<OptimBenchResult, TrainError> {
    if reps == 0 {
        return Err(TrainError::InvalidOption("--reps must be positive".into()));
    }
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let _net = EdmPrecond::new(&vs.root(), arch)?;
    let params: Vec<Tensor> = vs.trainable_variables();
    // Fixed random gradients: one backward of Σ c_i·θ_i leaves c_i in θ_i.grad.
    let loss = params
        .iter()
        .fold(Tensor::zeros([], (Kind::Float, device)), |acc, p| {
            acc + (p * Tensor::randn_like(p)).sum(Kind::Float)
        });
    loss.backward();
    let mut kernels = vec![];
    let mut plain_ms = 0.0;
    for kernel in [AdamKernel::Plain, AdamKernel::Foreach, AdamKernel::Fused] {
        let mut adam = Adam::new(
            &vs,
            AdamConfig {
                beta1: 0.0,
                ..AdamConfig::default()
            },
        )
        .with_kernel(kernel);
        // lr 0: the weights stay put, so every kernel times the same arithmetic.
        let ms = timed(device, warmup, reps, || Ok(adam.step(0.0)?))?;
        if kernel == AdamKernel::Plain {
            plain_ms = ms;
        }
        kernels.push(KernelTime {
            update: format!("adam {kernel:?}").to_lowercase(),
            ms,
            speedup_over_plain: plain_ms / ms,
        });
    }
    let mut ema_vs = nn::VarStore::new(device);
    let _ema_net = EdmPrecond::new(&ema_vs.root(), arch)?;
    ema_vs.freeze();
    let mut ema = Ema::new(ema_vs, &vs, 0.999)?;
    for kernel in [EmaKernel::Plain, EmaKernel::Foreach] {
        ema.kernel = kernel;
        let ms = timed(device, warmup, reps, || ema.update(&vs))?;
        if kernel == EmaKernel::Plain {
            plain_ms = ms;
        }
        kernels.push(KernelTime {
            update: format!("ema {kernel:?}").to_lowercase(),
            ms,
            speedup_over_plain: plain_ms / ms,
        });
    }
    Ok(OptimBenchResult {
        arch: arch.name.clone(),
        params: param_count(&vs),
        tensors: params.len(),
        device: crate::device::device_name(device),
        reps,
        kernels,
    })
}
