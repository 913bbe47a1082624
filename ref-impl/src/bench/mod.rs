//! `midpoint-train bench`: throughput against the FLOP bound, the machine's matmul peak and
//! peak GPU memory.
//!
//! | module | what |
//! |---|---|
//! | [`warmup`] | `bench warmup`: warmup steps on synthetic images |
//! | [`fid`] | `bench fid`: FID-N of a one-step generator end to end, each phase timed |
//! | [`mgm`] | `bench mgm`: iterations of Algorithm 1 on images |
//! | [`matmul`] | `bench matmul`: the machine's own dense matmul peak |
//! | [`optim`] | `bench optim`: Adam and EMA updates alone, each kernel |
//! | [`peer`] | the PyTorch-eager peer's figure and our ratio to it |
//! | [`profile`] | where an iteration's time goes: the Kineto profiler's trace and per-operator table |

pub mod fid;
pub mod matmul;
pub mod mgm;
pub mod optim;
pub mod peer;
pub mod profile;
pub mod warmup;

use crate::data::ImageSet;
use crate::error::TrainError;
use crate::nets::edm::UNetConfig;
use crate::train::method::{Batches, Method};
use tch::{Device, Kind, Tensor};

pub(crate) use crate::device::synchronize as sync;

/// `max(2·batch, 64)` random byte images of `arch`'s shape from torch's generator (seeded by
/// the caller), as a training set.
pub(crate) fn random_images(arch: &UNetConfig, batch: usize, source: &str) -> ImageSet {
    let r = arch.img_resolution;
    let n = (2 * batch).max(64) as i64;
    let images = Tensor::randint(
        256,
        [n, arch.img_channels, r, r],
        (Kind::Uint8, Device::Cpu),
    );
    ImageSet::new(images, None, source.into())
}

/// Runs `warmup` untimed steps of `method` on `data` (allocator, cuDNN autotuning), then times
/// `steps` more, synchronising the device around them. Returns the seconds of the timed steps
/// and the losses of the last one.
pub(crate) fn time_steps<M: Method>(
    method: &mut M,
    data: &mut dyn Batches,
    warmup: u64,
    steps: u64,
) -> Result<(f64, M::Losses), TrainError> {
    if steps == 0 {
        return Err(TrainError::InvalidOption("--steps must be positive".into()));
    }
    for _ in 0..warmup {
        method.step(data)?;
    }
    sync(method.device());
    let t = std::time::Instant::now();
    let mut last = None;
    for _ in 0..steps {
        last = Some(method.step(data)?);
    }
    sync(method.device());
    Ok((t.elapsed().as_secs_f64(), last.expect("steps > 0")))
}
