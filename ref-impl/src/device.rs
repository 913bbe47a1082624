//! Device selection and `midpoint-train info`.

use crate::error::TrainError;
use tch::Device;

/// libtorch version this binary was built against (read by build.rs from the torch install).
pub const TORCH_VERSION: &str = env!("MIDPOINT_TORCH_VERSION");

/// `auto` (CUDA when available, else CPU), `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device, TrainError> {
    let cuda = |i: usize| -> Result<Device, TrainError> {
        let count = if tch::Cuda::is_available() {
            tch::Cuda::device_count() as usize
        } else {
            0
        };
        if i < count {
            Ok(Device::Cuda(i))
        } else {
            Err(TrainError::InvalidOption(format!(
                "--device {spec}: {count} CUDA device(s) available"
            )))
        }
    };
    match spec {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i),
            _ => Err(TrainError::InvalidOption(format!(
                "unknown device {other:?} (expected auto, cpu, cuda or cuda:N)"
            ))),
        },
    }
}

/// Waits for the device's queued work (a no-op on the CPU): what a timing must do before it
/// reads the clock, since CUDA kernels run after their launch returns.
pub fn synchronize(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Short name of a device: `cpu` or `cuda:N`.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// What `midpoint-train info` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Info {
    /// The device `--device auto` picks.
    pub device: String,
    /// `tch::Cuda::is_available()`.
    pub cuda_available: bool,
    /// Number of CUDA devices.
    pub cuda_device_count: i64,
    /// cuDNN usable.
    pub cudnn_available: bool,
    /// CUDA runtime version (e.g. 13000), when CUDA is available.
    pub cuda_runtime_version: Option<i64>,
    /// torch version of the build (from the torch install's `version.py` or `build-version`).
    pub torch_version: String,
    /// tch crate version.
    pub tch_version: String,
    /// Intra-op threads of libtorch.
    pub torch_threads: i32,
}

/// Collects [`Info`].
pub fn info() -> Info {
    let cuda = tch::Cuda::is_available();
    Info {
        device: device_name(Device::cuda_if_available()),
        cuda_available: cuda,
        cuda_device_count: tch::Cuda::device_count(),
        cudnn_available: tch::Cuda::cudnn_is_available(),
        cuda_runtime_version: cuda.then(tch::utils::version_cudart),
        torch_version: TORCH_VERSION.to_string(),
        tch_version: "0.24.0".to_string(),
        torch_threads: tch::get_num_threads(),
    }
}
