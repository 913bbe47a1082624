//! Between libtorch tensors and the core crate's `ndarray` samples: `[n, d]` arrays as float32
//! tensors (what the networks take) and back as float64 arrays (what the metrics and the exact
//! numerics take).

use crate::error::TrainError;
use midpoint::Law;
use ndarray::{Array2, ArrayBase, Data, Ix2};
use tch::{Device, Kind, Tensor};

/// Samples of a law as a float32 tensor `[n, d]` on `device`.
pub fn law_tensor<R: rand::Rng>(
    law: &Law,
    n: usize,
    rng: &mut R,
    device: Device,
) -> Result<Tensor, TrainError> {
    Ok(array_tensor(&law.sample(n, rng)?, device))
}

/// `[n, d]` array (owned or a view) → float32 tensor on `device`, rows in order.
pub fn array_tensor<S: Data<Elem = f64>>(x: &ArrayBase<S, Ix2>, device: Device) -> Tensor {
    let (n, d) = x.dim();
    let flat: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    Tensor::from_slice(&flat)
        .reshape([n as i64, d as i64])
        .to_device(device)
}

/// Float tensor `[n, d]` (any device) → `Array2<f64>`.
pub fn tensor_array(x: &Tensor) -> Result<Array2<f64>, TrainError> {
    let (n, d) = x.size2()?;
    let flat = Vec::<f64>::try_from(x.to_kind(Kind::Double).to_device(Device::Cpu).reshape([-1]))?;
    Array2::from_shape_vec((n as usize, d as usize), flat)
        .map_err(|e| TrainError::InvalidOption(e.to_string()))
}
