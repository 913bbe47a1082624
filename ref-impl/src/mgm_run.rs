//! `midpoint-train mgm`: the training loop of [`ImageMgm`] with its outputs.
//!
//! Output directory:
//!
//! | file | content |
//! |---|---|
//! | `config.json` | the [`ImageMgmConfig`] and [`RunOptions`] |
//! | `losses.jsonl` | one line per step: `step`, `critic`, `generator`, `images_per_s`, `seconds` |
//! | `fid.jsonl` | one line per FID evaluation: `step`, `samples`, `fid` |
//! | `grids/step_NNNNNNN.png` | 8×8 grids of the EMA generator on fixed latents |
//! | `losses.png` | critic and generator losses (window means) |
//! | `fid.png` | FID against step (one panel per sample count) |
//! | `checkpoint.safetensors` | [`ImageMgm::save`]: weights, Adam moments, step, config |
//! | `summary.json` | steps, final losses, last FID, timing |
//!
//! Checkpoints and FID come through [`RunHooks`] ([`TrainHooks`]).

use crate::error::TrainError;
use crate::fid::{frechet_distance, ImageBatch, Inception, Statistics};
use crate::grid::write_grid;
use crate::image_mgm::{ImageMgm, ImageMgmConfig, ImageSource};
use crate::mgm::StepLosses;
use crate::plot::{loss_panels, Series};
use crate::progress::Progress;
use std::io::Write;
use std::path::Path;
use tch::{Kind, Tensor};

/// Periodic work of a run (0 disables an item).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunOptions {
    /// Total iterations of Algorithm 1 (a resumed run continues up to this count).
    pub steps: usize,
    /// Write an 8×8 grid every this many steps (and at the end).
    pub grid_every: usize,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// FID with `fid_samples` samples every this many steps.
    pub fid_every: usize,
    /// Samples of the periodic FID (FID-10k).
    pub fid_samples: usize,
    /// Samples of the final FID (FID-50k; 0 skips it).
    pub final_fid_samples: usize,
    /// Stop after the step during which this many seconds have passed in this invocation
    /// (final grid, checkpoint and FID as at `steps`); `None`: run to `steps`.
    #[serde(default)]
    pub max_seconds: Option<f64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            steps: 200_000,
            grid_every: 1000,
            checkpoint_every: 5000,
            fid_every: 10_000,
            fid_samples: 10_000,
            final_fid_samples: 50_000,
            max_seconds: None,
        }
    }
}

/// What the loop needs from the checkpoint and FID code ([`TrainHooks`] in the CLI).
pub trait RunHooks {
    /// Writes a checkpoint of `run` (after `run.steps_done()` steps) to `path`.
    fn checkpoint(&mut self, run: &ImageMgm, path: &Path) -> Result<(), TrainError>;
    /// FID of `n` samples of the EMA generator.
    fn fid(&mut self, run: &ImageMgm, n: usize) -> Result<f64, TrainError>;
}

/// FID of the EMA generator against fixed reference statistics (§5.1: FID-10k during
/// training, FID-50K at the end).
pub struct FidEval {
    /// The Inception network.
    pub inception: Inception,
    /// Statistics of the reference images (the training set).
    pub reference: Statistics,
    /// Samples per generated batch.
    pub batch: usize,
    /// Seed of the latents (the same latents at every evaluation of a run).
    pub seed: u64,
}

/// Stream of the FID latents.
const FID_STREAM: u64 = 0x0046_4944;

impl FidEval {
    /// FID of `n ≥ 2` samples `G_ema(z)`, generated batch by batch and quantized to bytes like
    /// saved images ([`ImageBatch::Signed`]). Reseeds torch; training steps reseed themselves,
    /// so this leaves the run's trajectory unchanged.
    pub fn fid(&self, run: &ImageMgm, n: usize) -> Result<f64, TrainError> {
        if n < 2 || self.batch == 0 {
            return Err(TrainError::InvalidOption(format!(
                "FID needs at least 2 samples and a batch ≥ 1, got {n} and {}",
                self.batch
            )));
        }
        let [c, h, w] = run.config().image_shape();
        tch::manual_seed(crate::data::order::derive_seed(self.seed, FID_STREAM, 0) as i64);
        let b = self.batch;
        let device = self.inception.device();
        let batches = (0..n).step_by(b).map(|i| {
            let m = b.min(n - i) as i64;
            let z = Tensor::randn([m, c, h, w], (Kind::Float, tch::Device::Cpu));
            Ok::<_, TrainError>(ImageBatch::Signed(run.samples(&z).to_device(device)))
        });
        let stats =
            crate::fid::statistics_from_batches(&self.inception, batches, &Progress::hidden())?;
        Ok(frechet_distance(&stats, &self.reference)?)
    }
}

/// The hooks of `midpoint-train mgm`: checkpoints through [`ImageMgm::save`] (with the
/// description of the training images), FID through [`FidEval`] (an error if absent).
pub struct TrainHooks {
    /// [`crate::image_mgm::ImageSource::describe`] of the training images.
    pub data: String,
    /// FID, when a reference was given.
    pub fid: Option<FidEval>,
}

impl RunHooks for TrainHooks {
    fn checkpoint(&mut self, run: &ImageMgm, path: &Path) -> Result<(), TrainError> {
        run.save(path, &self.data)
    }

    fn fid(&mut self, run: &ImageMgm, n: usize) -> Result<f64, TrainError> {
        match &self.fid {
            Some(f) => f.fid(run, n),
            None => Err(TrainError::InvalidOption(
                "FID needs a reference (--fid-ref STATS|DIR), or --fid-every 0 --final-fid 0"
                    .into(),
            )),
        }
    }
}

/// One line of `losses.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossLine {
    /// 0-based step.
    pub step: usize,
    /// `L_ψ` before the critic's update.
    pub critic: f64,
    /// `L_θ` before the generator's update.
    pub generator: f64,
    /// Images through `G` per second in this step (2 batches).
    pub images_per_s: f64,
    /// Seconds since the start of this invocation.
    pub seconds: f64,
}

/// One line of `fid.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FidLine {
    /// Steps done.
    pub step: usize,
    /// Samples.
    pub samples: usize,
    /// FID.
    pub fid: f64,
}

/// What a run reports (`summary.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Steps done.
    pub steps: usize,
    /// Steps done by this invocation.
    pub steps_this_run: usize,
    /// Mean losses over the last 5% of this invocation's steps.
    pub final_losses: Option<StepLosses>,
    /// The last FID line.
    pub last_fid: Option<FidLine>,
    /// Seconds of this invocation.
    pub seconds: f64,
    /// Device.
    pub device: String,
    /// Whether `max_seconds` ended this invocation before `steps`.
    pub time_limited: bool,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::io(path, e)
}

fn append_line(path: &Path, value: &impl serde::Serialize) -> Result<(), TrainError> {
    let line = serde_json::to_string(value).map_err(|e| TrainError::io(path, e))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    writeln!(f, "{line}").map_err(io(path))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| TrainError::io(path, e))?;
    std::fs::write(path, text + "\n").map_err(io(path))
}

/// Reads `losses.jsonl` (every line must parse).
pub fn read_losses(path: &Path) -> Result<Vec<LossLine>, TrainError> {
    crate::jsonl::read(path)
}

/// Window means of a series, about 400 points.
fn smooth(points: &[(usize, f64)]) -> Vec<(f64, f64)> {
    let w = points.len().div_ceil(400).max(1);
    points
        .chunks(w)
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0 as f64).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect()
}

/// Reads `fid.jsonl` (every line must parse).
pub fn read_fid(path: &Path) -> Result<Vec<FidLine>, TrainError> {
    crate::jsonl::read(path)
}

/// Draws `fid.png` (FID against step, one panel per sample count) from `fid.jsonl`.
pub fn plot_fid(out: &Path) -> Result<(), TrainError> {
    let lines = read_fid(&out.join("fid.jsonl"))?;
    let mut counts: Vec<usize> = lines.iter().map(|l| l.samples).collect();
    counts.sort_unstable();
    counts.dedup();
    let series: Vec<Series> = counts
        .iter()
        .map(|&n| Series {
            title: format!("FID ({n} samples) of the EMA generator"),
            points: lines
                .iter()
                .filter(|l| l.samples == n)
                .map(|l| (l.step as f64, l.fid))
                .collect(),
        })
        .collect();
    loss_panels(&out.join("fid.png"), &series)?;
    Ok(())
}

/// Draws `losses.png` from `losses.jsonl`.
pub fn plot_losses(out: &Path) -> Result<(), TrainError> {
    let lines = read_losses(&out.join("losses.jsonl"))?;
    let series = |title: &str, f: fn(&LossLine) -> f64| Series {
        title: title.into(),
        points: smooth(&lines.iter().map(|l| (l.step, f(l))).collect::<Vec<_>>()),
    };
    loss_panels(
        &out.join("losses.png"),
        &[
            series("critic loss L_ψ", |l| l.critic),
            series("generator loss L_θ", |l| l.generator),
        ],
    )?;
    Ok(())
}

/// Trains `run` up to `options.steps` on `data`, writing the output directory (see the module
/// docs; `losses.jsonl` and `fid.jsonl` are appended to, so a resumed run continues them).
pub fn run(
    run: &mut ImageMgm,
    data: &mut dyn ImageSource,
    options: &RunOptions,
    hooks: &mut dyn RunHooks,
    out: &Path,
    progress: &Progress,
) -> Result<Summary, TrainError> {
    let start = std::time::Instant::now();
    if let Some(s) = options.max_seconds.filter(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(TrainError::InvalidOption(format!(
            "--max-seconds must be finite and > 0, got {s}"
        )));
    }
    std::fs::create_dir_all(out.join("grids")).map_err(io(out))?;
    #[derive(serde::Serialize)]
    struct Settings<'a> {
        config: &'a ImageMgmConfig,
        options: &'a RunOptions,
    }
    write_json(
        &out.join("config.json"),
        &Settings {
            config: run.config(),
            options,
        },
    )?;
    let first = run.steps_done();
    let latents = run.grid_latents(64);
    let grid = |run: &ImageMgm| {
        let path = out
            .join("grids")
            .join(format!("step_{:07}.png", run.steps_done()));
        write_grid(&path, &run.samples(&latents), 8)
    };
    let fid = |run: &ImageMgm, hooks: &mut dyn RunHooks, n: usize| -> Result<FidLine, TrainError> {
        progress.message(format!("FID of {n} samples at step {}", run.steps_done()));
        let line = FidLine {
            step: run.steps_done(),
            samples: n,
            fid: hooks.fid(run, n)?,
        };
        append_line(&out.join("fid.jsonl"), &line)?;
        plot_fid(out)?;
        Ok(line)
    };
    let checkpoint = |run: &ImageMgm, hooks: &mut dyn RunHooks| {
        hooks.checkpoint(run, &out.join("checkpoint.safetensors"))
    };
    if first == 0 && options.grid_every > 0 {
        grid(run)?;
    }
    progress.stage(
        (options.steps.saturating_sub(first)) as u64,
        run.config().variant.name(),
    );
    let images = 2 * run.config().batch;
    let mut recent: Vec<StepLosses> = Vec::new();
    let mut last_fid = None;
    let mut time_limited = false;
    for _ in first..options.steps {
        let t0 = std::time::Instant::now();
        let step = run.steps_done();
        let l = run.step(data)?;
        let line = LossLine {
            step,
            critic: l.critic,
            generator: l.generator,
            images_per_s: images as f64 / t0.elapsed().as_secs_f64(),
            seconds: start.elapsed().as_secs_f64(),
        };
        append_line(&out.join("losses.jsonl"), &line)?;
        recent.push(l);
        progress.inc();
        progress.message(format!(
            "L_ψ {:.4} L_θ {:.4} {:.0} img/s",
            l.critic, l.generator, line.images_per_s
        ));
        let done = run.steps_done();
        let every = |k: usize| k > 0 && done % k == 0 && done < options.steps;
        if every(options.grid_every) {
            grid(run)?;
        }
        if every(options.fid_every) {
            last_fid = Some(fid(run, hooks, options.fid_samples)?);
        }
        if every(options.checkpoint_every) {
            checkpoint(run, hooks)?;
        }
        if done < options.steps
            && options
                .max_seconds
                .is_some_and(|s| start.elapsed().as_secs_f64() >= s)
        {
            time_limited = true;
            break;
        }
    }
    if run.steps_done() > first {
        if options.grid_every > 0 {
            grid(run)?;
        }
        if options.checkpoint_every > 0 {
            checkpoint(run, hooks)?;
        }
    }
    if options.final_fid_samples > 0 {
        last_fid = Some(fid(run, hooks, options.final_fid_samples)?);
    }
    progress.finish();
    if out.join("losses.jsonl").exists() {
        plot_losses(out)?;
    }
    let tail = &recent[recent.len() - (recent.len() / 20).max(1).min(recent.len())..];
    let final_losses = (!tail.is_empty()).then(|| {
        let n = tail.len() as f64;
        StepLosses {
            critic: tail.iter().map(|l| l.critic).sum::<f64>() / n,
            generator: tail.iter().map(|l| l.generator).sum::<f64>() / n,
        }
    });
    let summary = Summary {
        steps: run.steps_done(),
        steps_this_run: run.steps_done() - first,
        final_losses,
        last_fid,
        seconds: start.elapsed().as_secs_f64(),
        device: crate::device::device_name(run.trainer().generator.vs.device()),
        time_limited,
    };
    write_json(&out.join("summary.json"), &summary)?;
    Ok(summary)
}
