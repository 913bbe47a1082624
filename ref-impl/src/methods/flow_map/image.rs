//! The flow-map methods on images: the two-time `ddpm++` ([`TwoTimeUNet`]) as `v_{s,t}(x)`,
//! `X_{s,t}(x) = x + (t − s)·v`, base `N(0, I)` of image shape, data in `[−1, 1]`, trained by
//! [`Objective`] in the one training loop with the same checkpoints, grids, FID hook and
//! progress as MGM, and an EMA of the trained map for samples and FID.
//!
//! **Networks.** The map (the student) and, for LMD, EMD and PFMM, a teacher of the same shape
//! trained first in the same run (a flow-matching velocity, or a banded FMM map whose weights
//! then start the student and its EMA, [FMM] §3.5). Both use the hand-written Adam (moments in
//! the checkpoint) with Adam's default `β1 = 0.9` ([FMM] Table 4, [SD] App. E).
//!
//! **Randomness and resume.** Step `k` reseeds torch with `derive_seed(seed, k)` and takes
//! data batch `k`; nothing random is carried across steps, so weights, EMA, both Adams and `k`
//! determine the rest of the run, and a resumed run is bit-identical on the CPU (tested).

use super::kind::FlowMapKind;
use super::map::{self, Diagonal, TwoTime};
use super::objective::{FlowMapLine, FlowMapLosses, Maps, Objective, LOSS_FIELDS};
use crate::data::order::derive_seed;
use crate::error::TrainError;
use crate::nets::edm::two_time::TwoTimeUNet;
use crate::nets::edm::UNetConfig;
use crate::train::checkpoint::{self, Checkpoint, CheckpointError};
use crate::train::ema::Ema;
use crate::train::method::{Batches, Method, Timing};
use crate::train::network::{AdamSettings, Network};
use crate::train::weights::{check_checkpoint, copy_into, prefixed};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

/// Settings of a flow-map method on images.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlowMapImageConfig {
    /// The method and its schedules.
    #[serde(flatten)]
    pub objective: Objective,
    /// The network of the map (and of the teacher).
    pub arch: UNetConfig,
    /// Adam of both networks.
    pub adam: AdamSettings,
    /// Images per step.
    pub batch: i64,
    /// Decay of the map's EMA (samples, grids, FID).
    pub ema_decay: f64,
    /// Seed of the per-step torch seeds and of the initialisation.
    pub seed: u64,
    /// Steps of the sampler behind grids and FID.
    pub sample_steps: usize,
    /// Gradient-norm clip (none in the papers).
    pub clip: Option<f64>,
}

impl FlowMapImageConfig {
    /// Defaults for `kind` on `arch` in a run of `steps` steps: [SD]'s CIFAR optimization
    /// (Adam 0.9/0.999, lr 1e-4 here, [FMM] Table 4's rate), batch 256, EMA 0.999, the
    /// schedules of the toy defaults in proportion (warmup and anneal 10% each, half the steps
    /// for a teacher), band 4, forward-mode JVPs, the papers' stop-gradients, 1-step samples
    /// (4 for banded FMM).
    pub fn new(kind: FlowMapKind, arch: UNetConfig, steps: u64) -> Self {
        FlowMapImageConfig {
            objective: Objective::new(kind, steps),
            arch,
            adam: AdamSettings {
                lr: 1e-4,
                beta1: 0.9,
                beta2: 0.999,
            },
            batch: 256,
            ema_decay: 0.999,
            seed: 0,
            sample_steps: if kind == FlowMapKind::Fmm { 4 } else { 1 },
            clip: None,
        }
    }

    fn validate(&self) -> Result<(), TrainError> {
        self.adam.validate()?;
        self.arch.validate()?;
        if self.batch < 1 || self.objective.band == 0 || self.sample_steps == 0 {
            return Err(TrainError::InvalidOption(
                "--batch, --band and --sample-steps must be at least 1".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(TrainError::InvalidOption(format!(
                "--ema must be in [0, 1), got {}",
                self.ema_decay
            )));
        }
        Ok(())
    }

    fn image_shape(&self) -> [i64; 3] {
        let r = self.arch.img_resolution;
        [self.arch.img_channels, r, r]
    }
}

/// Stream of the per-step torch seeds.
const TORCH_STREAM: u64 = 0x464c_4f57;
/// Stream of the initialisation.
const INIT_STREAM: u64 = 0x494e_4954;
/// Stream of the fixed latents of the sample grids.
const GRID_STREAM: u64 = 0x4752_4944;
/// Checkpoint format tag.
pub const FORMAT: &str = "midpoint-flowmap-image-v1";

/// `v_{s,t}(x)` of a two-time U-Net, with or without dropout.
struct View<'a> {
    net: &'a TwoTimeUNet,
    train: bool,
}

/// The network seen as `v_{s,t}` ([`Maps::step`]'s view).
fn view(net: &TwoTimeUNet, train: bool) -> Box<dyn TwoTime + '_> {
    Box::new(View { net, train })
}

impl TwoTime for View<'_> {
    fn v(&self, x: &Tensor, s: &Tensor, t: &Tensor) -> Tensor {
        self.net.forward(x, s, t, self.train)
    }
}

/// A flow-map method on images.
pub struct FlowMapImage {
    config: FlowMapImageConfig,
    maps: Maps<TwoTimeUNet>,
    ema: Ema,
    ema_net: TwoTimeUNet,
    steps_done: u64,
}

impl FlowMapImage {
    /// The same run with its Adams (map and teacher) and its EMA applied by `kernels` (same
    /// updates to float tolerance; [`crate::train::kernels`]).
    pub fn with_kernels(
        mut self,
        kernels: crate::train::kernels::Kernels,
    ) -> Result<Self, TrainError> {
        self.maps.student.set_adam_kernel(kernels.adam)?;
        if let Some(t) = self.maps.teacher.as_mut() {
            t.set_adam_kernel(kernels.adam)?;
        }
        self.ema.kernel = kernels.ema;
        Ok(self)
    }

    /// Fresh networks (EDM's initialisation, torch seeded from the run seed): the map, its EMA
    /// (a copy) and the teacher where the method has one.
    pub fn new(config: FlowMapImageConfig, device: Device) -> Result<Self, TrainError> {
        config.validate()?;
        tch::manual_seed(derive_seed(config.seed, INIT_STREAM, 0) as i64);
        let build = || -> Result<(TwoTimeUNet, nn::VarStore), TrainError> {
            let vs = nn::VarStore::new(device);
            let net = TwoTimeUNet::new(&vs.root(), &config.arch)?;
            Ok((net, vs))
        };
        let (s, s_vs) = build()?;
        let student = Network::with_saveable_adam_settings(s, s_vs, config.adam)?;
        let (e, e_vs) = build()?;
        let ema = Ema::new(e_vs, &student.vs, config.ema_decay)?;
        let teacher = if config.objective.kind.has_teacher() {
            let (t, t_vs) = build()?;
            Some(Network::with_saveable_adam_settings(t, t_vs, config.adam)?)
        } else {
            None
        };
        Ok(FlowMapImage {
            config,
            maps: Maps { student, teacher },
            ema,
            ema_net: e,
            steps_done: 0,
        })
    }

    fn objective(&self) -> Objective {
        self.config.objective
    }

    /// `k` steps of the EMA map (`ema`) or of the raw one from latents `z`; Euler steps of the
    /// diagonal for `fm`. No graph, evaluation mode.
    pub fn sample_steps(&self, z: &Tensor, k: usize, ema: bool) -> Tensor {
        let net = if ema {
            &self.ema_net
        } else {
            &self.maps.student.net
        };
        let v = View { net, train: false };
        let z = z
            .to_device(self.maps.student.vs.device())
            .to_kind(Kind::Float);
        let grid = map::uniform_grid(k);
        tch::no_grad(|| match self.config.objective.kind {
            FlowMapKind::Fm => map::euler(&Diagonal(&v), &z, &grid),
            _ => map::sample(&v, &z, &grid),
        })
    }

    /// Every variable of the run: `student.*`, `ema.*`, `teacher.*`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = prefixed("student", &self.maps.student.vs);
        out.extend(prefixed("ema", &self.ema.vs));
        if let Some(t) = &self.maps.teacher {
            out.extend(prefixed("teacher", &t.vs));
        }
        out
    }

    fn adams(&self) -> Result<Vec<(&'static str, &crate::train::adam::Adam)>, TrainError> {
        let missing =
            || TrainError::InvalidOption("a flow-map network without the saveable Adam".into());
        let mut out = vec![(
            "adam_student",
            self.maps.student.opt.saveable().ok_or_else(missing)?,
        )];
        if let Some(t) = &self.maps.teacher {
            out.push(("adam_teacher", t.opt.saveable().ok_or_else(missing)?));
        }
        Ok(out)
    }

    /// The config a checkpoint was written with.
    pub fn saved_config(path: &Path) -> Result<FlowMapImageConfig, TrainError> {
        Ok(read_config(&checkpoint::load(path)?, path)?)
    }

    /// Opens the checkpoint at `path` with the config it was written with (for sampling and
    /// evaluation), verified as in [`FlowMapImage::resume`].
    pub fn open(path: &Path, device: Device) -> Result<Self, TrainError> {
        let ckpt = checkpoint::load(path)?;
        let config = read_config(&ckpt, path)?;
        let mut run = FlowMapImage::new(config, device)?;
        run.restore(&ckpt, path)?;
        Ok(run)
    }

    /// Resumes from the checkpoint at `path`, written with the same `config` on the same data.
    pub fn resume(
        path: &Path,
        config: FlowMapImageConfig,
        data: &str,
        device: Device,
    ) -> Result<Self, TrainError> {
        let ckpt = checkpoint::load(path)?;
        let saved = read_config(&ckpt, path)?;
        checkpoint::check_resume(&ckpt, path, &saved, &config, data, "settings")?;
        let mut run = FlowMapImage::new(config, device)?;
        run.restore(&ckpt, path)?;
        Ok(run)
    }

    fn restore(&mut self, ckpt: &Checkpoint, path: &Path) -> Result<(), TrainError> {
        let parse = |key: &str| -> Result<u64, TrainError> {
            ckpt.meta(path, key)?
                .parse::<u64>()
                .map_err(|e| CheckpointError::content(path, format!("{key}: {e}")).into())
        };
        let step = parse("step")?;
        let state = self.state();
        check_checkpoint(ckpt, path, &state)?;
        let mut counts = Vec::new();
        for (prefix, adam) in self.adams()? {
            adam.check_state(ckpt, path, prefix)?;
            counts.push(parse(&format!("{prefix}_step"))?);
        }
        copy_into(&state, |n| &ckpt.tensors[n]);
        if let Some(a) = self.maps.student.opt.saveable_mut() {
            a.load_state(ckpt, "adam_student", counts[0] as i64);
        }
        if let Some(a) = self
            .maps
            .teacher
            .as_mut()
            .and_then(|t| t.opt.saveable_mut())
        {
            a.load_state(ckpt, "adam_teacher", counts[1] as i64);
        }
        self.steps_done = step;
        Ok(())
    }
}

fn read_config(ckpt: &Checkpoint, path: &Path) -> Result<FlowMapImageConfig, CheckpointError> {
    let format = ckpt.meta(path, "format")?;
    if format != FORMAT {
        return Err(CheckpointError::content(
            path,
            format!("format {format:?}, expected {FORMAT:?}"),
        ));
    }
    serde_json::from_str(ckpt.meta(path, "config")?)
        .map_err(|e| CheckpointError::content(path, format!("config: {e}")))
}

impl Method for FlowMapImage {
    type Losses = FlowMapLosses;
    type Record = FlowMapLine;
    type Config = FlowMapImageConfig;

    fn name(&self) -> String {
        self.config.objective.kind.name().into()
    }
    fn config(&self) -> &FlowMapImageConfig {
        &self.config
    }
    fn device(&self) -> Device {
        self.maps.student.vs.device()
    }
    fn steps_done(&self) -> u64 {
        self.steps_done
    }
    fn step(&mut self, data: &mut dyn Batches) -> Result<FlowMapLosses, TrainError> {
        let k = self.steps_done;
        tch::manual_seed(derive_seed(self.config.seed, TORCH_STREAM, k) as i64);
        let device = self.device();
        let x1 = data
            .batch(k, self.config.batch, device)?
            .to_kind(Kind::Float);
        let x0 = x1.randn_like();
        let stepped = self
            .maps
            .step(&self.objective(), k, &x0, &x1, self.config.clip, &view)?;
        if stepped.student_updated {
            self.ema.update(&self.maps.student.vs)?;
        }
        // PFMM's map starts from its teacher: so does its average.
        if stepped.handed_over {
            tch::no_grad(|| self.ema.vs.copy(&self.maps.student.vs))?;
        }
        self.steps_done += 1;
        Ok(stepped.losses)
    }
    fn loss_fields(&self) -> &'static [(&'static str, &'static str)] {
        &LOSS_FIELDS
    }
    fn record(&self, step: u64, losses: &FlowMapLosses, timing: Timing) -> FlowMapLine {
        FlowMapLine::new(&self.objective(), step, losses, timing)
    }
    fn samples_per_step(&self) -> usize {
        self.config.batch as usize
    }
    fn sample(&self, z: &Tensor) -> Tensor {
        self.sample_steps(z, self.config.sample_steps, true)
    }
    fn sample_raw(&self, z: &Tensor) -> Option<Tensor> {
        Some(self.sample_steps(z, self.config.sample_steps, false))
    }
    fn latent_shape(&self) -> Vec<i64> {
        self.config.image_shape().to_vec()
    }
    fn grid_latents(&self, n: i64) -> Tensor {
        let [c, h, w] = self.config.image_shape();
        tch::manual_seed(derive_seed(self.config.seed, GRID_STREAM, 0) as i64);
        Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu))
    }
    fn save(&self, path: &Path, data: &str) -> Result<(), TrainError> {
        let mut tensors: Vec<(String, Tensor)> = self
            .state()
            .into_iter()
            .map(|(n, t)| (n, t.detach()))
            .collect();
        let mut meta = BTreeMap::new();
        for (prefix, adam) in self.adams()? {
            tensors.extend(adam.state(prefix));
            meta.insert(format!("{prefix}_step"), adam.steps().to_string());
        }
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("step".to_string(), self.steps_done.to_string());
        meta.insert(
            "config".to_string(),
            serde_json::to_string(&self.config)
                .map_err(|e| TrainError::InvalidOption(e.to_string()))?,
        );
        meta.insert("data".to_string(), data.to_string());
        meta.insert(
            "rng".to_string(),
            "stateless: step k reseeds torch with derive_seed(seed, k); batch k".into(),
        );
        meta.insert(
            "torch_version".to_string(),
            crate::device::TORCH_VERSION.to_string(),
        );
        checkpoint::save(path, &tensors, &meta)?;
        Ok(())
    }
}
