//! A run's output folder: pretty JSON files (`metrics.json`, `summary.json`, `config.json`),
//! JSON-lines logs (`losses.jsonl`, `fid.jsonl`: one record per line, appended as a run goes and
//! cut back to the last checkpoint on resume), and the window means drawn in loss plots.

use crate::error::TrainError;
use std::io::Write;
use std::path::Path;

/// Writes `value` as pretty JSON with a final newline.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| TrainError::io(path, e))?;
    std::fs::write(path, text + "\n").map_err(|e| TrainError::io(path, e))
}

/// Appends `value` as one JSON line to `path` (created if missing).
pub fn append_line(path: &Path, value: &impl serde::Serialize) -> Result<(), TrainError> {
    let line = serde_json::to_string(value).map_err(|e| TrainError::io(path, e))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    writeln!(f, "{line}").map_err(|e| TrainError::io(path, e))
}

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

/// Keeps only the lines of `path` whose `step` is below `before` (a resumed run lost the steps
/// after its checkpoint, so its log must not keep them twice); the kept lines are left byte for
/// byte as they were. A missing file is left missing.
pub fn truncate_lines(path: &Path, before: u64) -> Result<(), TrainError> {
    if !path.exists() {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct Step {
        step: u64,
    }
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let mut kept = String::new();
    for (i, l) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let s: Step = serde_json::from_str(l)
            .map_err(|e| TrainError::io(path, format!("line {}: {e}", i + 1)))?;
        if s.step < before {
            kept.push_str(l);
            kept.push('\n');
        }
    }
    std::fs::write(path, kept).map_err(|e| TrainError::io(path, e))
}

/// Window means of a series `(x, y)`, about 400 points: the mean `x` and mean `y` of each
/// window of consecutive points.
pub fn smooth(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let w = points.len().div_ceil(400).max(1);
    points
        .chunks(w)
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect()
}
