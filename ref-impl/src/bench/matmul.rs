//! `midpoint-train bench matmul`: the machine's own dense matmul rate, the peak that
//! `bench mgm` divides by.
//!
//! Two `n × n` matrices of random normals are multiplied `reps` times after a few untimed
//! products (cuBLAS heuristics, allocator); the rate is `2n³·reps / seconds` between two
//! device synchronisations. `--dtype`: `fp32` (cuBLAS in full fp32, torch's default for
//! matmuls), `tf32` (fp32 tensors with TF32 tensor cores allowed for this bench only — what
//! cuDNN uses for fp32 convolutions by default, so the bound for an fp32 network), `bf16`.

use super::sync;
use crate::error::TrainError;
use crate::train::precision::set_allow_tf32_matmul;
use tch::{Device, Kind, Tensor};

/// Element type of the timed product.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MatmulDtype {
    /// fp32 with TF32 forbidden.
    Fp32,
    /// fp32 tensors with TF32 tensor cores allowed (CUDA only).
    Tf32,
    /// bf16 tensors (fp32 accumulation inside cuBLAS).
    Bf16,
}

impl MatmulDtype {
    /// `fp32`, `tf32` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            MatmulDtype::Fp32 => "fp32",
            MatmulDtype::Tf32 => "tf32",
            MatmulDtype::Bf16 => "bf16",
        }
    }
}

/// What `bench matmul` measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatmulResult {
    /// Element type.
    pub dtype: MatmulDtype,
    /// Side of the square matrices.
    pub n: i64,
    /// Timed products.
    pub reps: u32,
    /// Device.
    pub device: String,
    /// Seconds of the timed products.
    pub seconds: f64,
    /// `2n³·reps / seconds / 1e12`.
    pub tflops: f64,
}

/// Times `reps` products of two `n × n` matrices of `dtype` on `device` (after 3 untimed).
pub fn bench_matmul(
    dtype: MatmulDtype,
    n: i64,
    reps: u32,
    device: Device,
) -> Result<MatmulResult, TrainError> {
    if n < 1 || reps == 0 {
        return Err(TrainError::InvalidOption(format!(
            "bench matmul needs n ≥ 1 and reps ≥ 1, got n = {n}, reps = {reps}"
        )));
    }
    if dtype == MatmulDtype::Tf32 && !device.is_cuda() {
        return Err(TrainError::InvalidOption(
            "--dtype tf32 is a CUDA setting; use fp32 or bf16 on the CPU".into(),
        ));
    }
    let kind = match dtype {
        MatmulDtype::Bf16 => Kind::BFloat16,
        _ => Kind::Float,
    };
    // TF32 on for tf32, explicitly off for fp32, restored afterwards.
    let prev = if device.is_cuda() {
        Some(set_allow_tf32_matmul(dtype == MatmulDtype::Tf32)?)
    } else {
        None
    };
    let result = (|| {
        tch::manual_seed(0);
        let a = Tensor::f_randn([n, n], (kind, device))?;
        let b = Tensor::f_randn([n, n], (kind, device))?;
        for _ in 0..3 {
            let _ = a.f_matmul(&b)?;
        }
        sync(device);
        let t = std::time::Instant::now();
        for _ in 0..reps {
            let _ = a.f_matmul(&b)?;
        }
        sync(device);
        Ok::<_, TrainError>(t.elapsed().as_secs_f64())
    })();
    if let Some(p) = prev {
        set_allow_tf32_matmul(p)?;
    }
    let seconds = result?;
    Ok(MatmulResult {
        dtype,
        n,
        reps,
        device: crate::device::device_name(device),
        seconds,
        tflops: 2.0 * (n as f64).powi(3) * reps as f64 / seconds / 1e12,
    })
}
