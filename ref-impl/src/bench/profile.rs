//! Where an iteration's time goes: libtorch's Kineto profiler (`csrc/profiler.cpp`, what
//! `torch.profiler.profile` drives) around a few iterations, writing the Chrome trace
//! (`trace.json`, for chrome://tracing or Perfetto) and the time per operator summed by
//! device and name (`ops.tsv`), with the top entries in the bench's report.
//!
//! On CUDA the `cuda` rows are the kernels and copies themselves (no nesting): their shares
//! are of the GPU's busy time. The `cpu` rows are operators, whose times include the
//! operators they call, so they do not add up; they show where the host spends its time.

use crate::error::TrainError;
use std::ffi::CString;
use std::os::raw::c_char;
use std::path::Path;

extern "C" {
    fn midpoint_profiler_start(cuda: i32, err: *mut c_char, err_len: i64) -> i32;
    fn midpoint_profiler_stop(
        trace_path: *const c_char,
        table_path: *const c_char,
        err: *mut c_char,
        err_len: i64,
    ) -> i32;
}

fn call(f: impl FnOnce(*mut c_char, i64) -> i32) -> Result<(), TrainError> {
    crate::shim::call(f).map_err(|m| TrainError::InvalidOption(format!("profiler: {m}")))
}

/// One operator's (or kernel's) time over the profiled iterations.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpTime {
    /// `cuda` or `cpu`.
    pub device: String,
    /// Operator or kernel name.
    pub name: String,
    /// Calls over the profiled iterations.
    pub calls: u64,
    /// Milliseconds per profiled iteration.
    pub ms_per_iteration: f64,
    /// Share of the device's summed time (meaningful for `cuda` rows; see the module docs).
    pub share: f64,
}

/// What a profiled run wrote and found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProfileReport {
    /// The Chrome trace.
    pub trace: std::path::PathBuf,
    /// Every (device, name) with calls and total microseconds.
    pub table: std::path::PathBuf,
    /// Iterations profiled.
    pub iterations: u64,
    /// The largest entries of the GPU (on CUDA) or of the CPU, by time.
    pub top: Vec<OpTime>,
}

/// Runs `iterations` calls of `step` under the profiler and writes `dir/trace.json` and
/// `dir/ops.tsv`; `sync` waits for the device before the profiler stops.
pub fn profile(
    dir: &Path,
    cuda: bool,
    iterations: u64,
    mut step: impl FnMut() -> Result<(), TrainError>,
    sync: impl Fn(),
) -> Result<ProfileReport, TrainError> {
    if iterations == 0 {
        return Err(TrainError::InvalidOption(
            "--profile-iterations must be positive".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let trace = dir.join("trace.json");
    let table = dir.join("ops.tsv");
    let cstr = |p: &Path| {
        CString::new(p.to_string_lossy().into_owned())
            .map_err(|_| TrainError::InvalidOption(format!("{}: NUL in path", p.display())))
    };
    let (trace_c, table_c) = (cstr(&trace)?, cstr(&table)?);
    // SAFETY: no pointers but the error buffer.
    call(|err, len| unsafe { midpoint_profiler_start(i32::from(cuda), err, len) })?;
    let mut ran = Ok(());
    for _ in 0..iterations {
        ran = step();
        if ran.is_err() {
            break;
        }
    }
    sync();
    // SAFETY: the paths live through the call. Stopped even when a step failed.
    call(|err, len| unsafe {
        midpoint_profiler_stop(trace_c.as_ptr(), table_c.as_ptr(), err, len)
    })?;
    ran?;
    let text = std::fs::read_to_string(&table).map_err(|e| TrainError::io(&table, e))?;
    let rows = parse_table(&text, iterations);
    let device = if cuda && rows.iter().any(|r| r.device == "cuda") {
        "cuda"
    } else {
        "cpu"
    };
    let mut top: Vec<OpTime> = rows.into_iter().filter(|r| r.device == device).collect();
    top.sort_by(|a, b| b.ms_per_iteration.total_cmp(&a.ms_per_iteration));
    top.truncate(20);
    Ok(ProfileReport {
        trace,
        table,
        iterations,
        top,
    })
}

/// The rows of `ops.tsv` as per-iteration times with each row's share of its device's sum.
pub fn parse_table(text: &str, iterations: u64) -> Vec<OpTime> {
    let mut rows: Vec<OpTime> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split('\t');
            let (device, name, calls, us) = (f.next()?, f.next()?, f.next()?, f.next()?);
            Some(OpTime {
                device: device.to_string(),
                name: name.to_string(),
                calls: calls.parse().ok()?,
                ms_per_iteration: us.parse::<f64>().ok()? / 1e3 / iterations as f64,
                share: 0.0,
            })
        })
        .collect();
    for device in ["cpu", "cuda"] {
        let total: f64 = rows
            .iter()
            .filter(|r| r.device == device)
            .map(|r| r.ms_per_iteration)
            .sum();
        for r in rows.iter_mut().filter(|r| r.device == device) {
            r.share = if total > 0.0 {
                r.ms_per_iteration / total
            } else {
                0.0
            };
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's sums become per-iteration milliseconds and shares within each device.
    #[test]
    fn the_table_is_read_per_iteration_and_device() {
        let text = "device\tname\tcalls\ttotal_us\ncuda\tconv\t6\t3000\ncuda\tgemm\t2\t1000\ncpu\taten::add\t4\t500\nbad line\n";
        let rows = parse_table(text, 2);
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].ms_per_iteration, rows[0].share), (1.5, 0.75));
        assert_eq!((rows[1].ms_per_iteration, rows[1].share), (0.5, 0.25));
        assert_eq!((rows[2].calls, rows[2].share), (4, 1.0));
    }
}
