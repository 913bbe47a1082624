//! Checkpoints: one safetensors file of named fp32/i64 tensors with string metadata and a
//! SHA-256 checksum, written atomically and verified before any tensor is built.
//!
//! **Checksum.** `sha256` in the safetensors metadata is the digest of a canonical byte
//! stream: the tag `midpoint-checkpoint-v1\n`; every other metadata entry in key order as
//! `key \0 value \0`; then every tensor in name order as `name \0 dtype \0 shape \0`, the byte
//! length (u64 little-endian) and the raw bytes. It covers names, shapes, dtypes, values and
//! metadata, so a flipped bit anywhere but in the digest itself — or in JSON whitespace — is
//! detected; a truncated file already fails the safetensors header checks.
//!
//! **Atomic write.** The bytes go to `<path>.tmp`, are flushed to disk (`sync_all`), and the
//! temporary file is renamed over `path`: a run killed mid-write leaves the previous
//! checkpoint intact.

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Metadata key of the digest.
pub const DIGEST_KEY: &str = "sha256";
const TAG: &[u8] = b"midpoint-checkpoint-v1\n";

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("checkpoint {path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        message: String,
    },
    /// Not a complete safetensors file (truncated, or not a checkpoint at all).
    #[error("checkpoint {path}: not a complete safetensors file ({message}); truncated or corrupt, refusing to load")]
    Format {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The digest does not match the contents.
    #[error("checkpoint {path}: checksum mismatch (stored {stored}, computed {computed}); the file is corrupt, refusing to load")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// From the metadata.
        stored: String,
        /// Over the contents.
        computed: String,
    },
    /// A well-formed file that lacks something this program needs.
    #[error("checkpoint {path}: {message}")]
    Content {
        /// The file.
        path: PathBuf,
        /// What is missing or inconsistent.
        message: String,
    },
}

impl CheckpointError {
    fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        CheckpointError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    /// A [`CheckpointError::Content`] error.
    pub fn content(path: &Path, message: impl Into<String>) -> Self {
        CheckpointError::Content {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Named tensors (on the CPU after [`load`]) and string metadata.
#[derive(Debug, Default)]
pub struct Checkpoint {
    /// Tensors by name.
    pub tensors: BTreeMap<String, Tensor>,
    /// Metadata without the digest.
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// The tensor `name`, or a [`CheckpointError::Content`] naming `path`.
    pub fn tensor(&self, path: &Path, name: &str) -> Result<&Tensor, CheckpointError> {
        self.tensors
            .get(name)
            .ok_or_else(|| CheckpointError::content(path, format!("tensor {name} is missing")))
    }

    /// The metadata entry `key`, or a [`CheckpointError::Content`] naming `path`.
    pub fn meta(&self, path: &Path, key: &str) -> Result<&str, CheckpointError> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| CheckpointError::content(path, format!("metadata {key} is missing")))
    }
}

/// One tensor's bytes for safetensors.
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl safetensors::View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn dtype_of(kind: Kind) -> Option<Dtype> {
    match kind {
        Kind::Float => Some(Dtype::F32),
        Kind::Double => Some(Dtype::F64),
        Kind::Int64 => Some(Dtype::I64),
        Kind::Uint8 => Some(Dtype::U8),
        _ => None,
    }
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    match dtype {
        Dtype::F32 => Some(Kind::Float),
        Dtype::F64 => Some(Kind::Double),
        Dtype::I64 => Some(Kind::Int64),
        Dtype::U8 => Some(Kind::Uint8),
        _ => None,
    }
}

/// The digest of the canonical stream (module docs) as lowercase hex.
fn digest<'a>(
    metadata: &BTreeMap<String, String>,
    tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    let mut h = Sha256::new();
    h.update(TAG);
    for (k, v) in metadata.iter().filter(|(k, _)| k.as_str() != DIGEST_KEY) {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    let mut sorted: Vec<_> = tensors.collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (name, dtype, shape, data) in sorted {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(format!("{dtype:?}").as_bytes());
        h.update([0]);
        h.update(format!("{shape:?}").as_bytes());
        h.update([0]);
        h.update((data.len() as u64).to_le_bytes());
        h.update(data);
    }
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// Writes `tensors` (any device; fp32, fp64, i64 or u8) and `metadata` to `path` atomically,
/// with the digest added to the metadata.
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let dtype = dtype_of(t.kind()).ok_or_else(|| {
            CheckpointError::content(path, format!("{name}: unsupported dtype {:?}", t.kind()))
        })?;
        let t = t.to_device(Device::Cpu).contiguous();
        let numel = t.numel();
        let mut data = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut data, numel)
            .map_err(|e| CheckpointError::content(path, format!("{name}: {e}")))?;
        let shape = t.size().iter().map(|&s| s as usize).collect();
        owned.push((name.clone(), Bytes { dtype, shape, data }));
    }
    let mut meta = metadata.clone();
    let sum = digest(
        &meta,
        owned
            .iter()
            .map(|(n, b)| (n.as_str(), b.dtype, b.shape.as_slice(), b.data.as_slice())),
    );
    meta.insert(DIGEST_KEY.into(), sum);
    let meta: HashMap<String, String> = meta.into_iter().collect();
    let bytes = safetensors::serialize(owned.iter().map(|(n, b)| (n.as_str(), b)), &Some(meta))
        .map_err(|e| CheckpointError::content(path, e.to_string()))?;
    midpoint::io::write_atomically(path, |tmp| {
        std::fs::write(tmp, &bytes).map_err(|e| e.to_string())
    })
    .map_err(|e| match e {
        midpoint::io::FormatError::Io { message, .. } => CheckpointError::io(path, message),
        other => CheckpointError::io(path, other),
    })
}

/// Reads `path`, verifies its digest, and only then builds the tensors (on the CPU).
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|e| CheckpointError::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| CheckpointError::Format {
        path: path.to_path_buf(),
        message: format!("{e:?}"),
    })?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| CheckpointError::Format {
        path: path.to_path_buf(),
        message: format!("{e:?}"),
    })?;
    let metadata: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let stored = metadata
        .get(DIGEST_KEY)
        .cloned()
        .ok_or_else(|| CheckpointError::content(path, "no sha256 in the metadata"))?;
    let views: Vec<(String, TensorView<'_>)> = st.tensors();
    let computed = digest(
        &metadata,
        views
            .iter()
            .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
    );
    if computed != stored {
        return Err(CheckpointError::Checksum {
            path: path.to_path_buf(),
            stored,
            computed,
        });
    }
    let mut tensors = BTreeMap::new();
    for (name, v) in &views {
        let kind = kind_of(v.dtype()).ok_or_else(|| {
            CheckpointError::content(path, format!("{name}: unsupported dtype {:?}", v.dtype()))
        })?;
        let shape: Vec<i64> = v.shape().iter().map(|&s| s as i64).collect();
        let t = Tensor::f_from_data_size(v.data(), &shape, kind)
            .map_err(|e| CheckpointError::content(path, format!("{name}: {e}")))?;
        tensors.insert(name.clone(), t);
    }
    let mut metadata = metadata;
    metadata.remove(DIGEST_KEY);
    Ok(Checkpoint { tensors, metadata })
}

/// Refuses a `--resume` from the checkpoint `ckpt` at `path` unless the run asks for the
/// settings it was written with (`saved`; every difference is named) and trains on the same
/// data (`data`, the batches' description); `flags` says what to repeat.
pub fn check_resume<T: serde::Serialize + PartialEq>(
    ckpt: &Checkpoint,
    path: &Path,
    saved: &T,
    now: &T,
    data: &str,
    flags: &str,
) -> Result<(), crate::error::TrainError> {
    use crate::error::TrainError;
    if saved != now {
        return Err(TrainError::InvalidOption(format!(
            "--resume: {} was written with different settings ({}); resume with the same {flags}",
            path.display(),
            settings_diff(saved, now)
        )));
    }
    let saved_data = ckpt.meta(path, "data")?;
    if saved_data != data {
        return Err(TrainError::InvalidOption(format!(
            "--resume: {} was trained on {saved_data}, not on {data}",
            path.display()
        )));
    }
    Ok(())
}

/// The top-level settings (JSON object fields) that differ between what a checkpoint was written
/// with and what a resumed run asks for, as `name: checkpoint X, now Y`, joined by `; ` — so a
/// refused `--resume` names every difference.
pub fn settings_diff<T: serde::Serialize>(saved: &T, now: &T) -> String {
    let a = serde_json::to_value(saved).expect("serialise");
    let b = serde_json::to_value(now).expect("serialise");
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return String::new();
    };
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, v)| {
            format!(
                "{k}: checkpoint {v}, now {}",
                b.get(k).cloned().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
