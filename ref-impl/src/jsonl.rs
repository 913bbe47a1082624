//! JSON-lines logs (`losses.jsonl`, `fid.jsonl`): one record per line, appended as a run goes.

use crate::error::TrainError;
use std::path::Path;

/// Reads every non-empty line of `path` as one record; a line that does not parse is an error
/// naming the file and the line.
pub fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| TrainError::io(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}
