//! The denoising warmup of paper App. B: EDM's training objective and hyper-parameters with
//! the noise levels folded at `ln τ_max` ([`crate::edm::loss`]), Adam, an EMA of the weights,
//! checkpoints with exact resume, and 8×8 grids of the one-step samples `D_ema(2.5·z; 2.5)`
//! of the generator the warmup will initialise.
//!
//! **One step** (EDM `training_loop.py`, one GPU, no gradient accumulation), with
//! `cur = k·B` images seen before step `k`:
//! 1. batch `y` of step `k` ([`BatchOrder`]), flipped left–right with probability ½ if enabled;
//! 2. `σ` from the folded log-normal, `ε ~ N(0, I)`; loss [`denoising_loss`] (dropout on);
//! 3. Adam with `lr·min(cur/rampup, 1)` (EDM's ramp-up; `rampup = 0` disables it);
//! 4. EMA `ema ← θ + β·(ema − θ)`, `β = 0.5^(B / max(min(halflife, cur·ratio), 1e-8))`.
//!
//! **Randomness and exact resume.** tch 0.24 can seed torch's generators (`manual_seed`) but
//! cannot read or restore their state. So nothing carries random state across steps: step `k`
//! starts with `manual_seed(derive(seed, k))` (σ, ε and dropout masks come from that), and the
//! batch and flips are pure functions of `(seed, k)`. A checkpoint therefore needs only the
//! weights, the EMA, Adam's moments, `k` and the options; resuming at `k` replays step `k` of
//! the uninterrupted run exactly (bit-identical on the CPU; CUDA kernels may be
//! non-deterministic).

use crate::adam::{Adam, AdamConfig};
use crate::checkpoint::{self, Checkpoint, CheckpointError};
use crate::data::order::derive_seed;
use crate::data::{BatchOrder, ImageSet};
use crate::edm::{denoising_loss, EdmPrecond, NoiseLaw, UNetConfig};
use crate::error::TrainError;
use crate::progress::Progress;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};

/// Checkpoint format tag.
pub const FORMAT: &str = "midpoint-warmup-v1";
/// File name of the latest checkpoint in the output folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// File name of the per-step loss log (one JSON object per line).
pub const LOSSES: &str = "losses.jsonl";

const TORCH_STREAM: u64 = 10;
const INIT_STREAM: u64 = 11;
const GRID_STREAM: u64 = 12;

/// Everything that determines the trajectory of a warmup run (must match on `--resume`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WarmupOptions {
    /// The network.
    pub arch: UNetConfig,
    /// Images per step (EDM: 512).
    pub batch: usize,
    /// Adam learning rate (EDM: 1e-3).
    pub lr: f64,
    /// Adam `β1, β2, ε` (EDM: 0.9, 0.999, 1e-8).
    pub adam: AdamConfig,
    /// Fold point of the noise levels (App. B: 2.5).
    pub tau_max: f64,
    /// Learning-rate ramp-up length in thousands of images (EDM: 10,000; 0 = none).
    pub lr_rampup_kimg: f64,
    /// EMA half-life in thousands of images (EDM: 500).
    pub ema_halflife_kimg: f64,
    /// EMA ramp-up ratio (EDM: 0.05; 0 = none).
    pub ema_rampup_ratio: f64,
    /// Random horizontal flips.
    pub xflip: bool,
    /// Run seed.
    pub seed: u64,
}

impl WarmupOptions {
    /// EDM's CIFAR-10 settings with App. B's `τ_max = 2.5` for `arch`.
    pub fn edm(arch: UNetConfig) -> Self {
        WarmupOptions {
            arch,
            batch: 512,
            lr: 1e-3,
            adam: AdamConfig::default(),
            tau_max: 2.5,
            lr_rampup_kimg: 10_000.0,
            ema_halflife_kimg: 500.0,
            ema_rampup_ratio: 0.05,
            xflip: false,
            seed: 0,
        }
    }

    /// Rejects non-finite or out-of-range values with a message naming the option.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidOption(m));
        if self.batch == 0 {
            return bad("--batch must be positive".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr must be finite and > 0, got {}", self.lr));
        }
        NoiseLaw::folded(self.tau_max)?;
        for (name, v) in [
            ("--lr-rampup-kimg", self.lr_rampup_kimg),
            ("--ema-halflife-kimg", self.ema_halflife_kimg),
            ("--ema-rampup-ratio", self.ema_rampup_ratio),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} must be finite and ≥ 0, got {v}"));
            }
        }
        self.arch.validate()
    }

    /// Learning rate at step `k`: `lr·min(k·B/(1000·rampup_kimg), 1)`.
    pub fn lr_at(&self, k: u64) -> f64 {
        if self.lr_rampup_kimg == 0.0 {
            return self.lr;
        }
        let cur = (k * self.batch as u64) as f64;
        self.lr * (cur / (self.lr_rampup_kimg * 1000.0)).min(1.0)
    }

    /// EMA `β` at step `k` (EDM's half-life rule).
    pub fn ema_beta_at(&self, k: u64) -> f64 {
        let cur = (k * self.batch as u64) as f64;
        let mut halflife = self.ema_halflife_kimg * 1000.0;
        if self.ema_rampup_ratio > 0.0 {
            halflife = halflife.min(cur * self.ema_rampup_ratio);
        }
        0.5f64.powf(self.batch as f64 / halflife.max(1e-8))
    }
}

/// The state of a warmup run.
pub struct Warmup {
    options: WarmupOptions,
    device: Device,
    vs: nn::VarStore,
    net: EdmPrecond,
    ema_vs: nn::VarStore,
    ema: EdmPrecond,
    adam: Adam,
    law: NoiseLaw,
    step: u64,
}

impl Warmup {
    /// A fresh run: the network initialised from `manual_seed(derive(seed, init))`, the EMA a
    /// copy of it, zero Adam moments, step 0.
    pub fn new(options: WarmupOptions, device: Device) -> Result<Self, TrainError> {
        options.validate()?;
        tch::manual_seed(derive_seed(options.seed, INIT_STREAM, 0) as i64);
        let vs = nn::VarStore::new(device);
        let net = EdmPrecond::new(&vs.root(), &options.arch)?;
        let mut ema_vs = nn::VarStore::new(device);
        let ema = EdmPrecond::new(&ema_vs.root(), &options.arch)?;
        ema_vs.copy(&vs)?;
        ema_vs.freeze();
        let adam = Adam::new(&vs, options.adam);
        let law = NoiseLaw::folded(options.tau_max)?;
        Ok(Warmup {
            options,
            device,
            vs,
            net,
            ema_vs,
            ema,
            adam,
            law,
            step: 0,
        })
    }

    /// Steps done.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The options.
    pub fn options(&self) -> &WarmupOptions {
        &self.options
    }

    /// The trained network `D_θ` and its variables.
    pub fn net(&self) -> (&EdmPrecond, &nn::VarStore) {
        (&self.net, &self.vs)
    }

    /// The EMA network and its variables.
    pub fn ema(&self) -> (&EdmPrecond, &nn::VarStore) {
        (&self.ema, &self.ema_vs)
    }

    /// One training step on `data`; returns the loss before the update. A non-finite loss is
    /// an error and updates nothing.
    pub fn train_step(
        &mut self,
        data: &ImageSet,
        order: &mut BatchOrder,
    ) -> Result<f64, TrainError> {
        let (k, b) = (self.step, self.options.batch);
        tch::manual_seed(derive_seed(self.options.seed, TORCH_STREAM, k) as i64);
        let idx = order.indices(k, b);
        let flips = order.flips(k, b, self.options.xflip);
        let y = data.batch(&idx, &flips, self.device);
        let sigma = self.law.sample(b as i64, self.device);
        let eps = y.randn_like();
        let loss = denoising_loss(&self.net, &y, &sigma, &eps, true);
        let value = f64::try_from(&loss)?;
        if !value.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                which: "denoising",
                value,
                step: k as usize,
            });
        }
        self.adam.zero_grad();
        loss.backward();
        self.adam.step(self.options.lr_at(k));
        let beta = self.options.ema_beta_at(k);
        let src = self.vs.variables();
        tch::no_grad(|| {
            for (name, mut avg) in self.ema_vs.variables() {
                let cur = &src[&name];
                avg.copy_(&cur.lerp(&avg, beta));
            }
        });
        self.step += 1;
        Ok(value)
    }

    /// One-step samples of the generator the warmup initialises, `D_ema(2.5·z; 2.5)` in eval
    /// mode, for `z` `[N, 3, H, W]`.
    pub fn samples(&self, z: &Tensor) -> Tensor {
        let s = crate::edm::precond::GENERATOR_SIGMA;
        tch::no_grad(|| {
            self.ema
                .denoise_at(&(z.to_device(self.device) * s), s, false)
        })
    }

    /// The fixed latents of the sample grids: `n` standard normal images from the run seed.
    pub fn grid_latents(&self, n: i64) -> Tensor {
        let a = &self.options.arch;
        tch::manual_seed(derive_seed(self.options.seed, GRID_STREAM, 0) as i64);
        let shape = [n, a.img_channels, a.img_resolution, a.img_resolution];
        Tensor::randn(shape, (Kind::Float, Device::Cpu))
    }

    /// Writes the checkpoint (weights `net.*`, EMA `ema.*`, Adam moments `adam.*`; step,
    /// Adam's step count, options and the RNG rule in the metadata) atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let mut tensors = Vec::new();
        for (prefix, vs) in [("net", &self.vs), ("ema", &self.ema_vs)] {
            for (name, t) in vs.variables() {
                tensors.push((format!("{prefix}.{name}"), t.detach()));
            }
        }
        tensors.extend(self.adam.state("adam"));
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("step".to_string(), self.step.to_string());
        meta.insert("adam_step".to_string(), self.adam.steps().to_string());
        meta.insert(
            "options".to_string(),
            serde_json::to_string(&self.options).expect("options serialise"),
        );
        meta.insert(
            "rng".to_string(),
            "stateless: step k reseeds torch with splitmix(seed, k); batches from (seed, k)".into(),
        );
        meta.insert(
            "torch_version".to_string(),
            crate::device::TORCH_VERSION.to_string(),
        );
        checkpoint::save(path, &tensors, &meta)?;
        Ok(())
    }

    /// Resumes from the checkpoint at `path`, which must have been written with the same
    /// `options`. The file is verified, every tensor is checked for presence and shape, and
    /// only then is anything copied: a bad checkpoint leaves nothing half-loaded.
    pub fn resume(path: &Path, options: WarmupOptions, device: Device) -> Result<Self, TrainError> {
        let ckpt = checkpoint::load(path)?;
        let format = ckpt.meta(path, "format")?;
        if format != FORMAT {
            return Err(CheckpointError::content(
                path,
                format!("format {format:?}, expected {FORMAT:?}"),
            )
            .into());
        }
        let saved: WarmupOptions = serde_json::from_str(ckpt.meta(path, "options")?)
            .map_err(|e| CheckpointError::content(path, format!("options: {e}")))?;
        if saved != options {
            return Err(TrainError::InvalidOption(format!(
                "--resume: {} was written with different options ({}); resume with the same --arch, --batch, --lr, --tau-max, --seed, ...",
                path.display(),
                crate::checkpoint::settings_diff(&saved, &options)
            )));
        }
        let parse = |key: &str| -> Result<u64, TrainError> {
            ckpt.meta(path, key)?
                .parse::<u64>()
                .map_err(|e| CheckpointError::content(path, format!("{key}: {e}")).into())
        };
        let (step, adam_step) = (parse("step")?, parse("adam_step")?);
        let mut w = Warmup::new(options, device)?;
        check_vars(&ckpt, path, "net", &w.vs)?;
        check_vars(&ckpt, path, "ema", &w.ema_vs)?;
        w.adam.check_state(&ckpt, path, "adam")?;
        copy_vars(&ckpt, "net", &w.vs);
        copy_vars(&ckpt, "ema", &w.ema_vs);
        w.adam.load_state(&ckpt, "adam", adam_step as i64);
        w.step = step;
        Ok(w)
    }
}

impl Warmup {
    /// Opens the checkpoint at `path` with the options it was written with (for sampling and
    /// FID, where no options are given on the command line); verified as in [`Warmup::resume`].
    pub fn open(path: &Path, device: Device) -> Result<Self, TrainError> {
        let ckpt = checkpoint::load(path)?;
        let options: WarmupOptions = serde_json::from_str(ckpt.meta(path, "options")?)
            .map_err(|e| CheckpointError::content(path, format!("options: {e}")))?;
        drop(ckpt);
        Warmup::resume(path, options, device)
    }
}

fn check_vars(
    ckpt: &Checkpoint,
    path: &Path,
    prefix: &str,
    vs: &nn::VarStore,
) -> Result<(), CheckpointError> {
    for (name, t) in vs.variables() {
        let src = ckpt.tensor(path, &format!("{prefix}.{name}"))?;
        if src.size() != t.size() || src.kind() != t.kind() {
            return Err(CheckpointError::content(
                path,
                format!(
                    "{prefix}.{name}: {:?} {:?}, expected {:?} {:?}",
                    src.kind(),
                    src.size(),
                    t.kind(),
                    t.size()
                ),
            ));
        }
    }
    Ok(())
}

fn copy_vars(ckpt: &Checkpoint, prefix: &str, vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            t.copy_(&ckpt.tensors[&format!("{prefix}.{name}")]);
        }
    });
}

/// How long and where a warmup runs (not part of its trajectory).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Total steps (a resumed run continues up to this count).
    pub steps: u64,
    /// Output folder.
    pub out: PathBuf,
    /// Continue from `out/checkpoint.safetensors`.
    pub resume: bool,
    /// Steps between checkpoints (one is always written at the end).
    pub checkpoint_every: u64,
    /// Steps between sample grids (one is always written at the end; 0 = only then).
    pub grid_every: u64,
    /// Draw a progress bar.
    pub progress: bool,
    /// Stop after the step during which this many seconds of training have passed (with the
    /// final checkpoint and grid, as at `steps`); `None`: run to `steps`.
    pub max_seconds: Option<f64>,
}

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Step the run started at (0, or the checkpoint's).
    pub start_step: u64,
    /// Steps done at the end.
    pub steps: u64,
    /// Loss of the last step.
    pub last_loss: Option<f64>,
    /// Images in the data set.
    pub images: usize,
    /// The data set.
    pub data: String,
    /// Parameters of the network.
    pub params: i64,
    /// Device.
    pub device: String,
    /// Seconds of training (without loading).
    pub seconds: f64,
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// The last sample grid.
    pub grid: Option<PathBuf>,
    /// Whether `max_seconds` ended the run before `steps`.
    pub time_limited: bool,
}

/// One line of `losses.jsonl`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LossRecord {
    /// 0-based step.
    pub step: u64,
    /// Loss before the update.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// Reads `losses.jsonl`.
pub fn read_losses(path: &Path) -> Result<Vec<LossRecord>, TrainError> {
    crate::jsonl::read(path)
}

/// Runs (or resumes) a warmup on `data`, writing `checkpoint.safetensors`, `losses.jsonl`
/// and `samples-<step>.png` (8×8 grids) into `run.out`.
pub fn run(
    data: &ImageSet,
    options: WarmupOptions,
    run: &RunOptions,
    device: Device,
) -> Result<Summary, TrainError> {
    if run.checkpoint_every == 0 {
        return Err(TrainError::InvalidOption(
            "--checkpoint-every must be positive".into(),
        ));
    }
    if data.is_empty() {
        return Err(TrainError::InvalidOption("no training images".into()));
    }
    let a = &options.arch;
    if data.images().size()[1..] != [a.img_channels, a.img_resolution, a.img_resolution] {
        return Err(TrainError::InvalidOption(format!(
            "images are {:?}, --arch {} expects [{}, {}, {}]",
            &data.images().size()[1..],
            a.name,
            a.img_channels,
            a.img_resolution,
            a.img_resolution
        )));
    }
    std::fs::create_dir_all(&run.out).map_err(|e| TrainError::io(&run.out, e))?;
    let ckpt = run.out.join(CHECKPOINT);
    let log_path = run.out.join(LOSSES);
    let mut w = if run.resume {
        if !ckpt.exists() {
            return Err(TrainError::InvalidOption(format!(
                "--resume: no checkpoint at {}",
                ckpt.display()
            )));
        }
        Warmup::resume(&ckpt, options, device)?
    } else {
        if ckpt.exists() {
            return Err(TrainError::InvalidOption(format!(
                "{} already exists: pass --resume to continue that run, or choose another --out",
                ckpt.display()
            )));
        }
        Warmup::new(options, device)?
    };
    let start = w.step_count();
    // Steps after the checkpoint were lost with the run; the log keeps only those before it.
    let kept: Vec<LossRecord> = if run.resume && log_path.exists() {
        read_losses(&log_path)?
            .into_iter()
            .filter(|r| r.step < start)
            .collect()
    } else {
        Vec::new()
    };
    let mut log = std::fs::File::create(&log_path).map_err(|e| TrainError::io(&log_path, e))?;
    for r in &kept {
        writeln!(log, "{}", serde_json::to_string(r).expect("serialise"))
            .map_err(|e| TrainError::io(&log_path, e))?;
    }
    let params =
        w.vs.trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
    let z = w.grid_latents(64);
    let mut order = BatchOrder::new(data.len(), w.options.seed);
    let bar = Progress::new(run.steps.saturating_sub(start), "warmup", run.progress);
    let timer = std::time::Instant::now();
    if let Some(s) = run.max_seconds.filter(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(TrainError::InvalidOption(format!(
            "--max-seconds must be finite and > 0, got {s}"
        )));
    }
    let mut last_loss = None;
    let mut grid = None;
    let mut time_limited = false;
    while w.step_count() < run.steps {
        let k = w.step_count();
        let lr = w.options.lr_at(k);
        let loss = w.train_step(data, &mut order)?;
        last_loss = Some(loss);
        let rec = LossRecord { step: k, loss, lr };
        writeln!(log, "{}", serde_json::to_string(&rec).expect("serialise"))
            .map_err(|e| TrainError::io(&log_path, e))?;
        bar.inc();
        bar.message(format!("loss {loss:.4}"));
        let done = w.step_count();
        time_limited = done < run.steps
            && run
                .max_seconds
                .is_some_and(|s| timer.elapsed().as_secs_f64() >= s);
        let last = done == run.steps || time_limited;
        if done % run.checkpoint_every == 0 || last {
            log.flush().map_err(|e| TrainError::io(&log_path, e))?;
            w.save(&ckpt)?;
        }
        if (run.grid_every > 0 && done % run.grid_every == 0) || last {
            let path = run.out.join(format!("samples-{done:08}.png"));
            crate::grid::write_grid(&path, &w.samples(&z), 8)?;
            grid = Some(path);
        }
        if time_limited {
            break;
        }
    }
    bar.finish();
    log.flush().map_err(|e| TrainError::io(&log_path, e))?;
    Ok(Summary {
        start_step: start,
        steps: w.step_count(),
        last_loss,
        images: data.len(),
        data: data.source().to_string(),
        params,
        device: crate::device::device_name(device),
        seconds: timer.elapsed().as_secs_f64(),
        checkpoint: ckpt,
        grid,
        time_limited,
    })
}
