//! Arithmetic precision of training: `fp32`, or `bf16` mixed precision by autocast.
//!
//! **bf16** is torch's automatic mixed precision (`torch.autocast(device, dtype=bfloat16)`):
//! weights, gradients, Adam moments and the EMA stay fp32; inside the autocast scope the
//! operations on autocast's lower-precision list (convolutions, linear layers, matmuls) cast
//! their inputs to bf16 and return bf16, those on its fp32 list (losses such as `mse_loss`;
//! on CUDA also softmax, norms and sums) run in fp32, and the rest follow type promotion. The
//! MGM losses come out fp32 because their targets are fp32 (`x1 − x0`, with fp32 data). Only the forward passes and the losses run
//! inside the scope; the backward pass runs outside it, as torch recommends, and autograd
//! returns fp32 gradients to the fp32 weights through the recorded casts. Unlike fp16, bf16
//! has fp32's exponent range, so no loss scaling is needed.
//!
//! tch 0.24's `tch::autocast` only flips libtorch's deprecated CUDA switch and cannot choose
//! the dtype (its default on CUDA is fp16), so the scope is entered through
//! `csrc/torch_shim.cpp` (`at::autocast::set_autocast_enabled/set_autocast_dtype` for the
//! device's type, plus the nesting counter and cast cache that `torch.autocast` maintains).
//!
//! **fp32** changes nothing: libtorch's defaults, under which cuDNN convolutions on CUDA run
//! in TF32 while cuBLAS matmuls stay in full fp32.

use crate::error::TrainError;
use tch::{Device, Kind};

mod ffi {
    extern "C" {
        pub fn midpoint_autocast_enter(
            cuda: i32,
            dtype: i32,
            prev_enabled: *mut i32,
            prev_dtype: *mut i32,
        ) -> i32;
        pub fn midpoint_autocast_exit(cuda: i32, prev_enabled: i32, prev_dtype: i32) -> i32;
        pub fn midpoint_autocast_state(cuda: i32, enabled: *mut i32, dtype: *mut i32) -> i32;
        pub fn midpoint_set_allow_tf32_cublas(allow: i32, prev: *mut i32) -> i32;
        pub fn midpoint_cuda_peak_allocated(device: i32, out: *mut i64) -> i32;
        pub fn midpoint_cuda_reset_peak(device: i32) -> i32;
    }
}

/// `c10::ScalarType` codes of the dtypes autocast is used with (c10/core/ScalarType.h).
const SCALAR_HALF: i32 = 5;
const SCALAR_FLOAT: i32 = 6;
const SCALAR_BFLOAT16: i32 = 15;

fn kind_of(code: i32) -> Option<Kind> {
    match code {
        SCALAR_HALF => Some(Kind::Half),
        SCALAR_FLOAT => Some(Kind::Float),
        SCALAR_BFLOAT16 => Some(Kind::BFloat16),
        _ => None,
    }
}

/// The arithmetic of training (`--precision`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// fp32 throughout (libtorch's defaults: TF32 convolutions on CUDA).
    #[default]
    Fp32,
    /// bf16 autocast for forward passes and losses; fp32 weights and optimizer state.
    Bf16,
}

/// `0` for the CPU, `1` for CUDA: the device types autocast is offered for here.
fn autocast_device(device: Device) -> Result<i32, TrainError> {
    match device {
        Device::Cpu => Ok(0),
        Device::Cuda(_) => Ok(1),
        other => Err(TrainError::InvalidOption(format!(
            "--precision bf16 needs the CPU or CUDA, not {other:?}"
        ))),
    }
}

/// Restores the autocast state when the scope ends (also on a panic).
struct Scope {
    cuda: i32,
    prev_enabled: i32,
    prev_dtype: i32,
}

impl Drop for Scope {
    fn drop(&mut self) {
        // Cannot fail short of a libtorch bug; nothing sensible to do from a destructor.
        let _ =
            unsafe { ffi::midpoint_autocast_exit(self.cuda, self.prev_enabled, self.prev_dtype) };
    }
}

impl Precision {
    /// `fp32` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Errors if this precision is not available on `device` (bf16 needs the CPU or CUDA).
    pub fn check(self, device: Device) -> Result<(), TrainError> {
        match self {
            Precision::Fp32 => Ok(()),
            Precision::Bf16 => autocast_device(device).map(|_| ()),
        }
    }

    /// Runs `f` in this precision on `device`: as is for fp32, inside a bf16 autocast scope
    /// of `device`'s type for bf16 (the previous autocast state is restored afterwards).
    pub fn autocast<T>(self, device: Device, f: impl FnOnce() -> T) -> Result<T, TrainError> {
        if self == Precision::Fp32 {
            return Ok(f());
        }
        let cuda = autocast_device(device)?;
        let (mut prev_enabled, mut prev_dtype) = (0, 0);
        let rc = unsafe {
            ffi::midpoint_autocast_enter(cuda, SCALAR_BFLOAT16, &mut prev_enabled, &mut prev_dtype)
        };
        if rc != 0 {
            return Err(TrainError::InvalidOption(
                "libtorch refused to enter a bf16 autocast scope".into(),
            ));
        }
        let _scope = Scope {
            cuda,
            prev_enabled,
            prev_dtype,
        };
        Ok(f())
    }
}

/// Whether autocast is on for `device`'s type on this thread, and its dtype (`None` for a
/// dtype other than fp16, bf16 or fp32). For tests of the scope.
pub fn autocast_state(device: Device) -> Result<(bool, Option<Kind>), TrainError> {
    let cuda = autocast_device(device)?;
    let (mut enabled, mut dtype) = (0, 0);
    if unsafe { ffi::midpoint_autocast_state(cuda, &mut enabled, &mut dtype) } != 0 {
        return Err(TrainError::InvalidOption("libtorch: autocast state".into()));
    }
    Ok((enabled != 0, kind_of(dtype)))
}

/// Allows or forbids TF32 in cuBLAS matmuls (`torch.backends.cuda.matmul.allow_tf32`);
/// returns the previous setting.
pub fn set_allow_tf32_matmul(allow: bool) -> Result<bool, TrainError> {
    let mut prev = 0;
    if unsafe { ffi::midpoint_set_allow_tf32_cublas(i32::from(allow), &mut prev) } != 0 {
        return Err(TrainError::InvalidOption(
            "libtorch refused to change the TF32 setting of cuBLAS".into(),
        ));
    }
    Ok(prev != 0)
}

/// Peak bytes allocated by the CUDA caching allocator on GPU `index` since the start or the
/// last [`cuda_reset_peak`] (`torch.cuda.max_memory_allocated`; the allocator's cache and the
/// CUDA context are not included). Errors without CUDA.
pub fn cuda_peak_allocated(index: usize) -> Result<u64, TrainError> {
    let mut out = 0i64;
    match unsafe { ffi::midpoint_cuda_peak_allocated(index as i32, &mut out) } {
        0 => Ok(out.max(0) as u64),
        _ => Err(TrainError::InvalidOption(format!(
            "no CUDA allocator statistics for cuda:{index} (no CUDA device or no CUDA build of libtorch)"
        ))),
    }
}

/// Resets the peak statistics of GPU `index` (`torch.cuda.reset_peak_memory_stats`).
pub fn cuda_reset_peak(index: usize) -> Result<(), TrainError> {
    match unsafe { ffi::midpoint_cuda_reset_peak(index as i32) } {
        0 => Ok(()),
        _ => Err(TrainError::InvalidOption(format!(
            "no CUDA allocator statistics for cuda:{index}"
        ))),
    }
}
