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
//! | `summary.json` | steps, final losses, last FID, timing |
//!
//! Checkpoints and FID come from the rest of the crate through [`RunHooks`].

use crate::error::TrainError;
use crate::image_mgm::{ImageMgm, ImageMgmConfig, ImageSource};
use crate::mgm::StepLosses;
use crate::plot::{loss_panels, Series};
use crate::progress::Progress;
use std::io::Write;
use std::path::Path;
use tch::{Device, Kind, Tensor};

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
        }
    }
}

/// What the loop needs from the checkpoint and FID code.
///
/// TODO(merge, branches `edm` and `fid`): a hook that writes `checkpoint::save` of
/// [`ImageMgm::state`] plus both Adams' moments, and one that computes FID of
/// [`ImageMgm::samples`] against the training set's Inception statistics.
pub trait RunHooks {
    /// Writes a checkpoint of `run` (after `run.steps_done()` steps) to `path`.
    fn checkpoint(&mut self, run: &ImageMgm, path: &Path) -> Result<(), TrainError>;
    /// FID of `n` samples of the EMA generator.
    fn fid(&mut self, run: &ImageMgm, n: usize) -> Result<f64, TrainError>;
}

/// Hooks for a build without checkpoint or FID code: asking for either is an error.
#[derive(Debug, Default)]
pub struct NoHooks;

impl RunHooks for NoHooks {
    fn checkpoint(&mut self, _: &ImageMgm, path: &Path) -> Result<(), TrainError> {
        Err(TrainError::io(
            path,
            "checkpoints are not available in this build (use --checkpoint-every 0)",
        ))
    }

    fn fid(&mut self, _: &ImageMgm, _: usize) -> Result<f64, TrainError> {
        Err(TrainError::InvalidOption(
            "FID is not available in this build (use --fid-every 0 --final-fid 0)".into(),
        ))
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
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| TrainError::io(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// Writes `images` `[N, 3, H, W]` in `[−1, 1]` as a PNG grid of `cols` columns (values clamped,
/// `round((v + 1)·127.5)`).
///
/// TODO(merge, branch `edm`): the same as `grid::write_grid`; use that one.
pub fn write_grid(path: &Path, images: &Tensor, cols: i64) -> Result<(), TrainError> {
    let size = images.size();
    if size.len() != 4 || size[1] != 3 || cols < 1 || size[0] < 1 {
        return Err(TrainError::InvalidOption(format!(
            "image grid needs [N ≥ 1, 3, H, W] images and cols ≥ 1, got {size:?}"
        )));
    }
    let (n, h, w) = (size[0], size[2], size[3]);
    let rows = (n + cols - 1) / cols;
    let x = ((images
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .clamp(-1.0, 1.0)
        + 1.0)
        * 127.5)
        .round()
        .to_kind(Kind::Uint8);
    let x = Tensor::cat(
        &[
            x,
            Tensor::zeros([rows * cols - n, 3, h, w], (Kind::Uint8, Device::Cpu)),
        ],
        0,
    );
    let hwc = x
        .reshape([rows, cols, 3, h, w])
        .permute([0, 3, 1, 4, 2])
        .contiguous()
        .reshape([-1]);
    let bytes = Vec::<u8>::try_from(&hwc)?;
    let file = std::fs::File::create(path).map_err(io(path))?;
    let mut enc = png::Encoder::new(
        std::io::BufWriter::new(file),
        (cols * w) as u32,
        (rows * h) as u32,
    );
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| TrainError::io(path, e))?;
    writer
        .write_image_data(&bytes)
        .map_err(|e| TrainError::io(path, e))
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
        let line = FidLine {
            step: run.steps_done(),
            samples: n,
            fid: hooks.fid(run, n)?,
        };
        append_line(&out.join("fid.jsonl"), &line)?;
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
    };
    write_json(&out.join("summary.json"), &summary)?;
    Ok(summary)
}
