//! A run's output folder: pretty JSON files (`metrics.json`, `summary.json`, `config.json`),
//! JSON-lines logs (`losses.jsonl`, `fid.jsonl`: one record per line, appended as a run goes and
//! cut back to the last checkpoint on resume), and the window means drawn in loss plots.

use crate::error::TrainError;
use std::io::Write;
use std::path::Path;

/// Writes `value` as pretty JSON with a final newline, atomically ([`write_atomic`]).
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| TrainError::io(path, e))?;
    write_atomic(path, (text + "\n").as_bytes())
}

/// Writes `bytes` to `path` atomically ([`midpoint::io::write_atomically`]): a kill or a full
/// disk leaves either the old file or the new one under `path`, never a part of either.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    midpoint::io::write_atomically(path, |tmp| {
        std::fs::write(tmp, bytes).map_err(|e| e.to_string())
    })?;
    Ok(())
}

/// Appends `value` as one JSON line to `path` (created if missing).
pub fn append_line(path: &Path, value: &impl serde::Serialize) -> Result<(), TrainError> {
    // One write of the whole line: a kill leaves the line whole or absent (or, on a full
    // disk, torn at the end of the file, which `truncate_lines` drops on resume).
    let line = serde_json::to_string(value).map_err(|e| TrainError::io(path, e))? + "\n";
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    f.write_all(line.as_bytes())
        .map_err(|e| TrainError::io(path, e))
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
/// byte as they were, and the file is replaced atomically ([`write_atomic`]). A last line with
/// no newline that does not parse was torn by a kill and is dropped; any other bad line is an
/// error naming it. A missing file is left missing.
pub fn truncate_lines(path: &Path, before: u64) -> Result<(), TrainError> {
    if !path.exists() {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct Step {
        step: u64,
    }
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let count = text.lines().count();
    let mut kept = String::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Step>(l) {
            Ok(s) if s.step < before => {
                kept.push_str(l);
                kept.push('\n');
            }
            Ok(_) => {}
            Err(_) if torn_tail && i + 1 == count => {}
            Err(e) => return Err(TrainError::io(path, format!("line {}: {e}", i + 1))),
        }
    }
    if kept == text {
        return Ok(());
    }
    write_atomic(path, kept.as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_earlier_steps_and_drops_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("losses.jsonl");
        // Steps 0–3 logged, then a kill in the middle of step 4's line.
        std::fs::write(
            &log,
            "{\"step\":0,\"x\":1}\n{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n{\"step\":4,\"cri",
        )
        .unwrap();
        truncate_lines(&log, 2).unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "{\"step\":0,\"x\":1}\n{\"step\":1}\n"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }

    #[test]
    fn truncate_refuses_a_bad_line_that_is_not_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("losses.jsonl");
        let text = "{\"step\":0}\nnot json\n{\"step\":1}\n";
        std::fs::write(&log, text).unwrap();
        let e = truncate_lines(&log, 1).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        // A bad last line that does end in a newline was written whole: not a torn write.
        std::fs::write(&log, "{\"step\":0}\nnot json\n").unwrap();
        assert!(truncate_lines(&log, 1).is_err());
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "{\"step\":0}\nnot json\n"
        );
    }

    #[test]
    fn write_atomic_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.json");
        std::fs::write(&p, "old").unwrap();
        write_json(&p, &serde_json::json!({"steps": 3})).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\n  \"steps\": 3\n}\n"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A folder that does not exist: an error, and the old state untouched.
        assert!(write_atomic(&dir.path().join("no/such.json"), b"x").is_err());
    }
}
