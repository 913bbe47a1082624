//! Statistics files: safetensors with `mu` (F64 `[d]`) and `sigma` (F64 `[d, d]`), and
//! metadata `count` (images) and `protocol` ([`PROTOCOL`]). Anything else is refused with a
//! message saying what is wrong.

use super::stats::Statistics;
use super::{FidError, PROTOCOL};
use ndarray::{Array1, Array2};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

fn err(path: &Path, message: impl Into<String>) -> FidError {
    FidError::StatsFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn to_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn from_bytes(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect()
}

/// Writes `stats` to `path` (through a temporary file renamed into place, so a reader never
/// sees half a file).
pub fn save(stats: &Statistics, path: &Path) -> Result<(), FidError> {
    stats.validate()?;
    let d = stats.dim();
    let mu = to_bytes(stats.mu.as_slice().expect("contiguous"));
    let sigma_std = stats.sigma.as_standard_layout();
    let sigma = to_bytes(sigma_std.as_slice().expect("contiguous"));
    let views = [
        ("mu", TensorView::new(Dtype::F64, vec![d], &mu)),
        ("sigma", TensorView::new(Dtype::F64, vec![d, d], &sigma)),
    ]
    .into_iter()
    .map(|(k, v)| v.map(|v| (k, v)).map_err(|e| err(path, e.to_string())))
    .collect::<Result<Vec<_>, _>>()?;
    let meta = HashMap::from([
        ("count".to_string(), stats.count.to_string()),
        ("protocol".to_string(), PROTOCOL.to_string()),
    ]);
    midpoint::io::write_atomically(path, |tmp| {
        safetensors::tensor::serialize_to_file(views, &Some(meta), tmp).map_err(|e| e.to_string())
    })
    .map_err(|e| match e {
        midpoint::io::FormatError::Io { message, .. } => err(path, message),
        other => err(path, other.to_string()),
    })
}

/// Reads statistics written by [`save`], checking names, dtypes, shapes, metadata and values.
pub fn load(path: &Path) -> Result<Statistics, FidError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, e.to_string()))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| err(path, format!("not a valid safetensors file ({e})")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| err(path, format!("not a valid safetensors file ({e})")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    match meta.get("protocol") {
        Some(p) if p == PROTOCOL => {}
        Some(p) => {
            return Err(err(
                path,
                format!("computed with another protocol ({p:?}); expected {PROTOCOL:?}"),
            ))
        }
        None => return Err(err(path, "no \"protocol\" metadata")),
    }
    let count: u64 = meta
        .get("count")
        .ok_or_else(|| err(path, "no \"count\" metadata"))?
        .parse()
        .map_err(|_| err(path, "\"count\" metadata is not a whole number"))?;
    let tensor = |name: &str| -> Result<(Vec<usize>, Vec<f64>), FidError> {
        let t = st
            .tensor(name)
            .map_err(|_| err(path, format!("no tensor {name:?}")))?;
        if t.dtype() != Dtype::F64 {
            return Err(err(
                path,
                format!("tensor {name:?} is {:?}, expected F64", t.dtype()),
            ));
        }
        Ok((t.shape().to_vec(), from_bytes(t.data())))
    };
    let (mu_shape, mu) = tensor("mu")?;
    let (sigma_shape, sigma) = tensor("sigma")?;
    let d = match mu_shape[..] {
        [d] if d > 0 => d,
        _ => {
            return Err(err(
                path,
                format!("mu has shape {mu_shape:?}, expected [d]"),
            ))
        }
    };
    if sigma_shape != [d, d] {
        return Err(err(
            path,
            format!("sigma has shape {sigma_shape:?}, expected [{d}, {d}]"),
        ));
    }
    let stats = Statistics {
        mu: Array1::from_vec(mu),
        sigma: Array2::from_shape_vec((d, d), sigma).expect("shape checked"),
        count,
    };
    stats.validate().map_err(|e| err(path, e.to_string()))?;
    Ok(stats)
}
