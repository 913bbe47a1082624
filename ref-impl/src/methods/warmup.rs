//! The denoising warmup of paper App. B: EDM's training objective and hyper-parameters with
//! the noise levels folded at `ln τ_max` ([`crate::nets::edm::loss`]), Adam, an EMA of the weights,
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

use crate::data::order::derive_seed;
use crate::data::{DataImages, ImageSet};
use crate::dist::{Replica, Shard};
use crate::error::TrainError;
use crate::nets::edm::{denoising_loss, EdmPrecond, NoiseLaw, UNetConfig};
use crate::train::adam::{Adam, AdamConfig};
use crate::train::checkpoint::{self, CheckpointError};
use crate::train::ema::Ema;
use crate::train::method::{Batches, Method, Timing};
use crate::train::network::param_count;
use crate::train::progress::Progress;
use crate::train::run_dir::read;
use crate::train::run_folder::{Claim, RunFolder};
use crate::train::run_loop::{self, checkpoint_for, LoopOptions, Summary};
use crate::train::weights::{check_checkpoint, copy_into, prefixed};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};

/// Checkpoint format tag.
pub const FORMAT: &str = "midpoint-warmup-v1";
pub use crate::train::run_loop::{CHECKPOINT, LOSSES};

const TORCH_STREAM: u64 = 10;
const INIT_STREAM: u64 = 11;
const GRID_STREAM: u64 = 12;
/// A data-parallel rank's own stream, for the randomness inside the network (dropout).
const RANK_STREAM: u64 = 13;

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
    ema: Ema,
    ema_net: EdmPrecond,
    adam: Adam,
    law: NoiseLaw,
    /// This process's place in a data-parallel job (`None`: alone).
    replica: Option<Replica>,
    step: u64,
    /// The training data's fingerprint ([`ImageSet::fingerprint`]), recorded in the
    /// checkpoint so that a resume on other data is refused (`None`: not bound yet, or a
    /// checkpoint from before it was recorded).
    data: Option<String>,
}

impl Warmup {
    /// A fresh run: the network initialised from `manual_seed(derive(seed, init))`, the EMA a
    /// copy of it, zero Adam moments, step 0.
    pub fn new(options: WarmupOptions, device: Device) -> Result<Self, TrainError> {
        options.validate()?;
        tch::manual_seed(derive_seed(options.seed, INIT_STREAM, 0) as i64);
        let vs = nn::VarStore::new(device);
        let net = EdmPrecond::new(&vs.root(), &options.arch)?;
        let ema_vs = nn::VarStore::new(device);
        let ema_net = EdmPrecond::new(&ema_vs.root(), &options.arch)?;
        // The decay follows EDM's half-life rule per step (`update_lerp`), not a constant.
        let ema = Ema::new(ema_vs, &vs, 0.0)?;
        let adam = Adam::new(&vs, options.adam);
        let law = NoiseLaw::folded(options.tau_max)?;
        Ok(Warmup {
            options,
            device,
            vs,
            net,
            ema,
            ema_net,
            adam,
            law,
            replica: None,
            step: 0,
            data: None,
        })
    }

    /// The same run with its Adam and its EMA applied by `kernels` (same updates to float
    /// tolerance; [`crate::train::kernels`]).
    pub fn with_kernels(mut self, kernels: crate::train::kernels::Kernels) -> Self {
        self.adam.set_kernel(kernels.adam);
        self.ema.kernel = kernels.ema;
        self
    }

    /// The same run as one rank of a data-parallel job: each step draws the global batch's
    /// noise, keeps this rank's rows, and averages the gradients over the ranks. Checks that
    /// the ranks divide the batch and start from identical weights.
    pub fn with_replica(mut self, replica: Replica) -> Result<Self, TrainError> {
        replica.shard().rows(self.options.batch as i64)?;
        replica.check_same(self.step, "warmup network", &self.vs)?;
        replica.check_same(self.step, "warmup EMA", &self.ema.vs)?;
        self.replica = Some(replica);
        Ok(self)
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
        (&self.ema_net, &self.ema.vs)
    }

    /// One training step on `data` (batch `k` of step `k`); returns the loss before the
    /// update. A non-finite loss is an error and updates nothing.
    pub fn train_step(&mut self, data: &mut dyn Batches) -> Result<f64, TrainError> {
        let (k, b) = (self.step, self.options.batch as i64);
        tch::manual_seed(derive_seed(self.options.seed, TORCH_STREAM, k) as i64);
        // The noise is drawn at the global batch's shape from the stream every rank shares;
        // a rank keeps its rows (all of them when alone).
        let shard = self.replica.as_ref().map_or(Shard::ALL, |r| r.shard());
        let (start, len) = shard.rows(b)?;
        let y = data.rows(k, b, start, len, self.device)?;
        let [c, h, w] = [
            self.options.arch.img_channels,
            self.options.arch.img_resolution,
            self.options.arch.img_resolution,
        ];
        let sigma = shard.local(&self.law.sample(b, self.device))?;
        let eps = shard.local(&Tensor::randn([b, c, h, w], (Kind::Float, self.device)))?;
        if shard.world > 1 {
            let rank_seed = derive_seed(self.options.seed, RANK_STREAM, k);
            tch::manual_seed(derive_seed(rank_seed, RANK_STREAM, shard.rank as u64) as i64);
        }
        let loss = denoising_loss(&self.net, &y, &sigma, &eps, true);
        let mut value = f64::try_from(&loss)?;
        if let Some(r) = &self.replica {
            value = r.mean(value)?;
        }
        if !value.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                which: "denoising",
                value,
                step: k as usize,
            });
        }
        self.adam.zero_grad();
        loss.backward();
        if let Some(r) = &self.replica {
            r.average_gradients(&self.vs)?;
        }
        self.adam.step(self.options.lr_at(k))?;
        self.ema
            .update_lerp(&self.vs, self.options.ema_beta_at(k))?;
        self.step += 1;
        if let Some(r) = &self.replica {
            r.maybe_check(self.step, "warmup network", &self.vs)?;
        }
        Ok(value)
    }

    /// Binds the run to the training data of fingerprint `data` ([`ImageSet::fingerprint`]);
    /// a run resumed from a checkpoint trained on other data is refused.
    pub fn bind_data(&mut self, data: String) -> Result<(), TrainError> {
        match &self.data {
            Some(saved) if *saved != data => Err(TrainError::InvalidOption(format!(
                "--resume: this warmup was trained on {saved}, not on {data}; resume with the same --data"
            ))),
            _ => {
                self.data = Some(data);
                Ok(())
            }
        }
    }

    /// The training images of `set` in this run's order ([`BatchOrder`] of the run seed),
    /// mirrored if the options say so; refuses images of another shape than the network's.
    pub fn batches(&self, set: ImageSet) -> Result<DataImages, TrainError> {
        let a = &self.options.arch;
        let want = [a.img_channels, a.img_resolution, a.img_resolution];
        if !set.is_empty() && set.images().size()[1..] != want {
            return Err(TrainError::InvalidOption(format!(
                "images are {:?}, --arch {} expects {want:?}",
                &set.images().size()[1..],
                a.name,
            )));
        }
        let seed = self.options.seed;
        DataImages::with_order_seed(set, seed, seed, self.options.xflip)
    }

    /// One-step samples of the generator the warmup initialises, `D_ema(2.5·z; 2.5)` in eval
    /// mode, for `z` `[N, 3, H, W]`.
    pub fn samples(&self, z: &Tensor) -> Tensor {
        let s = crate::nets::edm::precond::GENERATOR_SIGMA;
        tch::no_grad(|| {
            self.ema_net
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
        for (prefix, vs) in [("net", &self.vs), ("ema", &self.ema.vs)] {
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
        if let Some(data) = &self.data {
            meta.insert("data".to_string(), data.clone());
        }
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
                crate::train::checkpoint::settings_diff(&saved, &options)
            )));
        }
        let parse = |key: &str| -> Result<u64, TrainError> {
            ckpt.meta(path, key)?
                .parse::<u64>()
                .map_err(|e| CheckpointError::content(path, format!("{key}: {e}")).into())
        };
        let (step, adam_step) = (parse("step")?, parse("adam_step")?);
        let mut w = Warmup::new(options, device)?;
        let mut vars = prefixed("net", &w.vs);
        vars.extend(prefixed("ema", &w.ema.vs));
        check_checkpoint(&ckpt, path, &vars)?;
        w.adam.check_state(&ckpt, path, "adam")?;
        copy_into(&vars, |n| &ckpt.tensors[n]);
        w.adam.load_state(&ckpt, "adam", adam_step as i64);
        w.step = step;
        w.data = ckpt.metadata.get("data").cloned();
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

/// How long and where a warmup runs (not part of its trajectory).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Total steps (a resumed run continues up to this count).
    pub steps: u64,
    /// Output folder.
    pub out: PathBuf,
    /// Continue from `out/checkpoint.safetensors`.
    pub resume: bool,
    /// Replace the run `out` holds, if any (without it, and without `resume`, a folder that
    /// holds a run is refused: [`crate::train::run_folder`]).
    pub overwrite: bool,
    /// Steps between checkpoints (one is always written at the end).
    pub checkpoint_every: u64,
    /// Steps between sample grids (one is always written at the start of a fresh run and at
    /// the end; 0 = only then).
    pub grid_every: u64,
    /// Draw a progress bar.
    pub progress: bool,
    /// Stop after the step during which this many seconds of training have passed (with the
    /// final checkpoint and grid, as at `steps`); `None`: run to `steps`.
    pub max_seconds: Option<f64>,
    /// Kernels of the Adam and EMA updates.
    pub kernels: crate::train::kernels::Kernels,
    /// This process's place in a data-parallel job (`None`: alone).
    pub replica: Option<Replica>,
}

/// What a finished (or stopped) run reports: the loop's [`Summary`] and the data and network.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WarmupSummary {
    /// The loop's summary (steps, final loss, timing, checkpoint, last grid).
    #[serde(flatten)]
    pub run: Summary<f64>,
    /// Images in the data set.
    pub images: usize,
    /// The data set.
    pub data: String,
    /// Parameters of the network.
    pub params: i64,
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
    read(path)
}

impl Method for Warmup {
    type Losses = f64;
    type Record = LossRecord;
    type Config = WarmupOptions;

    fn name(&self) -> String {
        "warmup".into()
    }
    fn config(&self) -> &WarmupOptions {
        &self.options
    }
    fn device(&self) -> Device {
        self.device
    }
    fn steps_done(&self) -> u64 {
        self.step
    }
    fn step(&mut self, data: &mut dyn Batches) -> Result<f64, TrainError> {
        self.train_step(data)
    }
    fn loss_fields(&self) -> &'static [(&'static str, &'static str)] {
        &[("loss", "denoising loss")]
    }
    fn record(&self, step: u64, loss: &f64, _timing: Timing) -> LossRecord {
        LossRecord {
            step,
            loss: *loss,
            lr: self.options.lr_at(step),
        }
    }
    fn samples_per_step(&self) -> usize {
        self.options.batch
    }
    fn sample(&self, z: &Tensor) -> Tensor {
        self.samples(z)
    }
    fn latent_shape(&self) -> Vec<i64> {
        let a = &self.options.arch;
        vec![a.img_channels, a.img_resolution, a.img_resolution]
    }
    fn grid_latents(&self, n: i64) -> Tensor {
        Warmup::grid_latents(self, n)
    }
    fn save(&self, path: &Path, _data: &str) -> Result<(), TrainError> {
        Warmup::save(self, path)
    }
    fn replica(&self) -> Option<&Replica> {
        self.replica.as_ref()
    }
}

/// Runs (or resumes) a warmup on `data` with the generic loop ([`run_loop::run`]), writing
/// `checkpoint.safetensors`, `losses.jsonl` and 8×8 grids `grids/step_NNNNNNN.png` into
/// `run.out`.
pub fn run(
    data: &ImageSet,
    options: WarmupOptions,
    run: &RunOptions,
    device: Device,
) -> Result<WarmupSummary, TrainError> {
    if run.checkpoint_every == 0 {
        return Err(TrainError::InvalidOption(
            "--checkpoint-every must be positive".into(),
        ));
    }
    if data.is_empty() {
        return Err(TrainError::InvalidOption("no training images".into()));
    }
    let loop_options = LoopOptions {
        steps: run.steps,
        // "0 = only at the start and the end": a period no run reaches.
        grid_every: if run.grid_every == 0 {
            u64::MAX
        } else {
            run.grid_every
        },
        checkpoint_every: run.checkpoint_every,
        eval_every: 0,
        eval_samples: 0,
        final_eval_samples: 0,
        max_seconds: run.max_seconds,
    };
    let writer = run.replica.as_ref().is_none_or(|r| r.is_writer());
    let folder = if writer {
        RunFolder::claim(&run.out, Claim::of(run.resume, run.overwrite)?)?
    } else {
        RunFolder::for_reader(&run.out)
    };
    // Rank 0 may be clearing an --overwrite folder meanwhile: the others look at nothing.
    let ckpt = if writer || run.resume {
        checkpoint_for(&run.out, run.resume)?
    } else {
        run.out.join(run_loop::CHECKPOINT)
    };
    let mut w = if run.resume {
        Warmup::resume(&ckpt, options, device)?
    } else {
        Warmup::new(options, device)?
    }
    .with_kernels(run.kernels);
    if let Some(r) = &run.replica {
        w = w.with_replica(r.clone())?;
    }
    w.bind_data(data.fingerprint())?;
    let mut batches = w.batches(data.clone())?;
    let params = param_count(&w.vs);
    let progress = Progress::new(0, "warmup", run.progress);
    let summary = run_loop::run(
        &mut w,
        &mut batches,
        &loop_options,
        None,
        &folder,
        &progress,
    )?;
    Ok(WarmupSummary {
        run: summary,
        images: data.len(),
        data: data.source().to_string(),
        params,
    })
}
