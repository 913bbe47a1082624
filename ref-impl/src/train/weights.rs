//! Checked copies of variables: every name, dtype and shape is checked first and only then is
//! anything copied, so a checkpoint or warmup of another architecture is refused (instead of
//! broadcast into place) and a refused load leaves nothing half-written.

use crate::error::TrainError;
use crate::train::checkpoint::{Checkpoint, CheckpointError};
use std::path::Path;
use tch::{nn, Tensor};

/// The variables of `vs` as `prefix.name`, sorted by name.
pub fn prefixed(prefix: &str, vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<_> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars.into_iter()
        .map(|(n, t)| (format!("{prefix}.{n}"), t))
        .collect()
}

/// The first of `want` that `found` lacks or holds with another dtype or shape, as a message
/// (`NAME is missing`, `NAME: KIND of shape [..], expected KIND of shape [..]`).
pub fn mismatch<'a>(
    want: &[(String, Tensor)],
    found: impl Fn(&str) -> Option<&'a Tensor>,
) -> Option<String> {
    want.iter().find_map(|(name, t)| match found(name) {
        None => Some(format!("{name} is missing")),
        Some(s) if s.size() != t.size() || s.kind() != t.kind() => Some(format!(
            "{name}: {:?} of shape {:?}, expected {:?} of shape {:?}",
            s.kind(),
            s.size(),
            t.kind(),
            t.size()
        )),
        Some(_) => None,
    })
}

/// Checks `want` against the tensors of a checkpoint (read from `path`).
pub fn check_checkpoint(
    ckpt: &Checkpoint,
    path: &Path,
    want: &[(String, Tensor)],
) -> Result<(), CheckpointError> {
    match mismatch(want, |n| ckpt.tensors.get(n)) {
        Some(m) => Err(CheckpointError::content(path, m)),
        None => Ok(()),
    }
}

/// Copies `found(name)` into each variable of `want`, without gradients, onto the variable's
/// device. Call it only after a check ([`mismatch`], [`check_checkpoint`]) passed.
pub fn copy_into<'a>(want: &[(String, Tensor)], found: impl Fn(&str) -> &'a Tensor) {
    tch::no_grad(|| {
        for (name, t) in want {
            let mut t = t.shallow_clone();
            t.copy_(&found(name).to_device(t.device()));
        }
    });
}

/// Copies the variables of `src` into `dst` after checking that both hold the same names with
/// the same shapes and dtypes (`what` names the source in the error).
pub fn copy_checked(
    dst: &mut nn::VarStore,
    src: &nn::VarStore,
    what: &str,
) -> Result<(), TrainError> {
    let (d, s) = (dst.variables(), src.variables());
    if d.len() != s.len() {
        return Err(TrainError::InvalidOption(format!(
            "{what}: {} variables, the network has {}",
            s.len(),
            d.len()
        )));
    }
    let want: Vec<(String, Tensor)> = d.into_iter().collect();
    if let Some(m) = mismatch(&want, |n| s.get(n)) {
        return Err(TrainError::InvalidOption(format!("{what}: {m}")));
    }
    dst.copy(src)?;
    Ok(())
}
