//! The one training loop, for every [`Method`] on toys and images: progress bar, the loss log,
//! sample grids, periodic evaluations ([`Evaluate`]), checkpoints with exact resume, and a
//! time limit.
//!
//! Output folder:
//!
//! | file | content |
//! |---|---|
//! | `config.json` | the method's settings and the [`LoopOptions`] |
//! | `losses.jsonl` | one [`Method::Record`] per step |
//! | `NAME.jsonl` | one line per evaluation: `step`, `samples`, `NAME` (e.g. `fid.jsonl`) |
//! | `NAME.png` | the evaluations against step, one panel per sample count |
//! | `grids/step_NNNNNNN.png` | 8×8 grids of the evaluated model on fixed latents (image methods) |
//! | `losses.png` | every loss of the log (window means) |
//! | `checkpoint.safetensors` | [`Method::save`] |
//! | `summary.json` | [`Summary`] |
//!
//! **Data parallel.** When the method is one rank of a data-parallel job
//! ([`Method::replica`]), only rank 0 writes (logs, grids, evaluations, checkpoints, summary);
//! every rank trains, and a time limit stops all ranks after the same step (rank 0's clock
//! decides through an all-reduce).
//!
//! **Resume.** A run killed after its checkpoint at step `k` lost the steps after `k`; resuming
//! reloads the checkpoint, cuts `losses.jsonl` back to the steps before `k` and the evaluation
//! logs to those at or before `k`, and continues: the logs then read as those of an
//! uninterrupted run.

use crate::error::TrainError;
use crate::train::grid::write_grid;
use crate::train::method::{Batches, Evaluate, Losses, Method, Timing, HEALTH_EVERY};
use crate::train::plot::{loss_panels, Series};
use crate::train::progress::Progress;
use crate::train::run_dir::{append_line, read, smooth, truncate_lines, write_json};
use crate::train::run_folder::RunFolder;
use std::path::{Path, PathBuf};

/// File name of a run's checkpoint in its output folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// File name of the per-step loss log.
pub const LOSSES: &str = "losses.jsonl";

/// How long a run goes and what it does periodically (0 disables an item).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoopOptions {
    /// Total steps (a resumed run continues up to this count).
    pub steps: u64,
    /// An 8×8 grid every this many steps, at the start of a fresh run and at the end.
    pub grid_every: u64,
    /// A checkpoint every this many steps and at the end.
    pub checkpoint_every: u64,
    /// An evaluation of `eval_samples` samples every this many steps (not at the end).
    pub eval_every: u64,
    /// Samples of the periodic evaluation.
    pub eval_samples: usize,
    /// Samples of the final evaluation (0 skips it).
    pub final_eval_samples: usize,
    /// Stop after the step during which this many seconds have passed in this invocation
    /// (final grid, checkpoint and evaluation as at `steps`); `None`: run to `steps`.
    #[serde(default)]
    pub max_seconds: Option<f64>,
}

impl LoopOptions {
    /// Refuses a non-positive or non-finite time limit.
    pub fn validate(&self) -> Result<(), TrainError> {
        if let Some(s) = self.max_seconds.filter(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(TrainError::InvalidOption(format!(
                "--max-seconds must be finite and > 0, got {s}"
            )));
        }
        Ok(())
    }
}

/// One evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalLine {
    /// Steps done.
    pub step: u64,
    /// Samples.
    pub samples: usize,
    /// The evaluation's name ([`Evaluate::name`]).
    pub name: String,
    /// Its value.
    pub value: f64,
}

impl serde::Serialize for EvalLine {
    /// `{"step": .., "samples": .., NAME: value}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("step", &self.step)?;
        m.serialize_entry("samples", &self.samples)?;
        m.serialize_entry(&self.name, &self.value)?;
        m.end()
    }
}

/// What a run reports (`summary.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary<L> {
    /// Step this invocation started at (0, or the checkpoint's).
    pub start_step: u64,
    /// Steps done.
    pub steps: u64,
    /// Steps done by this invocation.
    pub steps_this_run: u64,
    /// Mean losses over the last 5% of this invocation's steps.
    pub final_losses: Option<L>,
    /// The losses of every step of this invocation, in order (not in `summary.json`: the log
    /// has them).
    #[serde(skip)]
    pub losses: Vec<L>,
    /// The last evaluation.
    pub last_eval: Option<EvalLine>,
    /// Every evaluation of this invocation.
    pub evals: Vec<EvalLine>,
    /// Seconds of this invocation.
    pub seconds: f64,
    /// Device.
    pub device: String,
    /// Whether `max_seconds` ended this invocation before `steps`.
    pub time_limited: bool,
    /// The checkpoint, if one was written.
    pub checkpoint: Option<PathBuf>,
    /// The last sample grid, if one was written.
    pub grid: Option<PathBuf>,
}

/// The checkpoint of the run in `out`: required to exist on `resume`, refused if it exists
/// otherwise (a fresh run would overwrite it).
pub fn checkpoint_for(out: &Path, resume: bool) -> Result<PathBuf, TrainError> {
    let ckpt = out.join(CHECKPOINT);
    match (resume, ckpt.exists()) {
        (true, false) => Err(TrainError::InvalidOption(format!(
            "--resume: no checkpoint at {}",
            ckpt.display()
        ))),
        (false, true) => Err(TrainError::InvalidOption(format!(
            "{} already exists: pass --resume to continue that run, or choose another --out",
            ckpt.display()
        ))),
        _ => Ok(ckpt),
    }
}

/// Draws `NAME.png` (the evaluations against step, one panel per sample count) from
/// `NAME.jsonl`.
pub fn plot_evals(out: &Path, name: &str, title: &dyn Fn(u64) -> String) -> Result<(), TrainError> {
    let lines: Vec<serde_json::Value> = read(&out.join(format!("{name}.jsonl")))?;
    let field = |l: &serde_json::Value, k: &str| l.get(k).and_then(serde_json::Value::as_f64);
    let mut counts: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.get("samples").and_then(serde_json::Value::as_u64))
        .collect();
    counts.sort_unstable();
    counts.dedup();
    let series: Vec<Series> = counts
        .iter()
        .map(|&n| Series {
            title: title(n),
            points: lines
                .iter()
                .filter(|l| l.get("samples").and_then(serde_json::Value::as_u64) == Some(n))
                .filter_map(|l| Some((field(l, "step")?, field(l, name)?)))
                .collect(),
        })
        .collect();
    loss_panels(&out.join(format!("{name}.png")), &series)?;
    Ok(())
}

/// The series `key` of every record of `losses.jsonl` in `out`, against the step.
pub fn loss_series(out: &Path, key: &str) -> Result<Vec<(f64, f64)>, TrainError> {
    let lines: Vec<serde_json::Value> = read(&out.join(LOSSES))?;
    Ok(lines
        .iter()
        .filter_map(|l| Some((l.get("step")?.as_f64()?, l.get(key)?.as_f64()?)))
        .collect())
}

/// Draws `losses.png` from `losses.jsonl`: one panel of window means per `(key, title)` of
/// `fields`, then the `extra` series as they are.
pub fn plot_losses(
    out: &Path,
    fields: &[(&str, &str)],
    extra: &[Series],
) -> Result<(), TrainError> {
    let mut series = Vec::new();
    for &(key, title) in fields {
        series.push(Series {
            title: title.into(),
            points: smooth(&loss_series(out, key)?),
        });
    }
    series.extend(extra.iter().cloned());
    loss_panels(&out.join("losses.png"), &series)?;
    Ok(())
}

/// Trains `method` up to `options.steps` on `data`, writing the output folder (module docs),
/// which the caller has claimed ([`RunFolder::claim`]: no other run writes into it).
/// `eval` is the periodic evaluation, if any.
pub fn run<M: Method>(
    method: &mut M,
    data: &mut dyn Batches,
    options: &LoopOptions,
    mut eval: Option<&mut dyn Evaluate<M>>,
    folder: &RunFolder,
    progress: &Progress,
) -> Result<Summary<M::Losses>, TrainError> {
    let start = std::time::Instant::now();
    let out = folder.path();
    options.validate()?;
    let writer = method.replica().is_none_or(|r| r.is_writer());
    if eval.is_none() && (options.eval_every > 0 || options.final_eval_samples > 0) {
        return Err(TrainError::InvalidOption(
            "periodic or final evaluation asked for without an evaluation".into(),
        ));
    }
    #[derive(serde::Serialize)]
    struct Settings<'a, C> {
        config: &'a C,
        options: &'a LoopOptions,
    }
    if writer {
        write_json(
            &out.join("config.json"),
            &Settings {
                config: method.config(),
                options,
            },
        )?;
    }
    let first = method.steps_done();
    let log = out.join(LOSSES);
    // Every rank evaluates (a data-parallel evaluation shares its work); rank 0 records.
    let eval_log = eval
        .as_ref()
        .map(|e| out.join(format!("{}.jsonl", e.name())));
    if writer {
        truncate_lines(&log, first)?;
        if let Some(path) = &eval_log {
            truncate_lines(path, first + 1)?;
        }
    }
    let grids = out.join("grids");
    let latents = if options.grid_every > 0 && writer {
        std::fs::create_dir_all(&grids).map_err(|e| TrainError::io(&grids, e))?;
        Some(method.grid_latents(64))
    } else {
        None
    };
    let mut last_grid = None;
    let mut grid = |method: &M| -> Result<(), TrainError> {
        if let Some(z) = &latents {
            let path = grids.join(format!("step_{:07}.png", method.steps_done()));
            write_grid(&path, &method.sample(z), 8)?;
            last_grid = Some(path);
            if let Some(raw) = method.sample_raw(z) {
                let path = grids.join(format!("raw_step_{:07}.png", method.steps_done()));
                write_grid(&path, &raw, 8)?;
            }
        }
        Ok(())
    };
    let mut evals = Vec::new();
    let mut evaluate = |method: &M, n: usize| -> Result<(), TrainError> {
        if let (Some(e), Some(path)) = (eval.as_deref_mut(), &eval_log) {
            progress.message(format!(
                "{} of {n} samples at step {}",
                e.name(),
                method.steps_done()
            ));
            let line = EvalLine {
                step: method.steps_done(),
                samples: n,
                name: e.name().to_string(),
                value: e.evaluate(method, n)?,
            };
            if writer {
                append_line(path, &line)?;
                plot_evals(out, e.name(), &|n| e.title(n as usize))?;
            }
            evals.push(line);
        }
        Ok(())
    };
    let ckpt = out.join(CHECKPOINT);
    let described = data.describe();
    let mut checkpoint = None;
    let mut save = |method: &M| -> Result<(), TrainError> {
        if !writer {
            return Ok(());
        }
        method.save(&ckpt, &described)?;
        checkpoint = Some(ckpt.clone());
        Ok(())
    };

    if first == 0 {
        grid(method)?;
    }
    progress.stage(options.steps.saturating_sub(first), &method.name());
    let per_step = method.samples_per_step() as f64;
    let mut recent: Vec<M::Losses> = Vec::new();
    let mut time_limited = false;
    let mut warned: Vec<&'static str> = Vec::new();
    while method.steps_done() < options.steps {
        let t0 = std::time::Instant::now();
        let step = method.steps_done();
        let losses = method.step(data)?;
        let timing = Timing {
            step_seconds: t0.elapsed().as_secs_f64(),
            since_start: start.elapsed().as_secs_f64(),
        };
        if writer {
            append_line(&log, &method.record(step, &losses, timing))?;
        }
        recent.push(losses);
        progress.inc();
        progress.message(format!(
            "{} {:.0}/s",
            serde_json::to_string(&losses).unwrap_or_default(),
            per_step / timing.step_seconds
        ));
        let done = method.steps_done();
        let every = |k: u64| k > 0 && done.is_multiple_of(k) && done < options.steps;
        if done.is_multiple_of(HEALTH_EVERY) {
            if let Some((kind, line)) = method.health(&recent) {
                if !warned.contains(&kind) {
                    warned.push(kind);
                    progress.warn(&format!("warning (step {done}): {line}"));
                }
            }
        }
        if every(options.grid_every) {
            grid(method)?;
        }
        if every(options.eval_every) {
            evaluate(method, options.eval_samples)?;
        }
        if every(options.checkpoint_every) {
            save(method)?;
        }
        let mut over = options
            .max_seconds
            .is_some_and(|s| start.elapsed().as_secs_f64() >= s);
        if let (Some(r), Some(_)) = (method.replica(), options.max_seconds) {
            over = r.any(over && r.is_writer())?;
        }
        if done < options.steps && over {
            time_limited = true;
            break;
        }
    }
    if method.steps_done() > first {
        if options.grid_every > 0 {
            grid(method)?;
        }
        if options.checkpoint_every > 0 {
            save(method)?;
        }
    }
    if options.final_eval_samples > 0 {
        evaluate(method, options.final_eval_samples)?;
    }
    progress.finish();
    if writer && log.exists() {
        plot_losses(out, method.loss_fields(), &[])?;
    }
    let tail = &recent[recent.len() - (recent.len() / 20).max(1).min(recent.len())..];
    let final_losses = (!tail.is_empty()).then(|| M::Losses::mean(tail));
    let summary = Summary {
        start_step: first,
        steps: method.steps_done(),
        steps_this_run: method.steps_done() - first,
        final_losses,
        losses: recent,
        last_eval: evals.last().cloned(),
        evals,
        seconds: start.elapsed().as_secs_f64(),
        device: crate::device::device_name(method.device()),
        time_limited,
        checkpoint,
        grid: last_grid,
    };
    if writer {
        write_json(&out.join("summary.json"), &summary)?;
    }
    Ok(summary)
}
