//! MGM as a training [`Method`]: a generator, a field and the generator's EMA, trained by
//! [`MgmTrainer`], and a [`Setting`] that says how the method meets its data (batch size,
//! shapes, seeds). One type serves toys ([`super::toy::ToyMgm`]) and images
//! ([`super::image::ImageMgm`]).
//!
//! **Checkpoints** hold the weights (`generator.*`, `field.*`, `ema.*`), both Adams' moments
//! (`adam_g.*`, `adam_f.*`) and, in the metadata, the step, Adam's step counts, the setting and
//! a description of the training data. Only networks with the hand-written Adam (whose
//! moments are readable) can be saved.

use super::trainer::{LossLine, MgmTrainer, LOSS_TITLES};
use super::{StepLosses, Variant};
use crate::dist::Replica;
use crate::error::TrainError;
use crate::train::adam::Adam;
use crate::train::checkpoint::{self, Checkpoint, CheckpointError};
use crate::train::ema::Ema;
use crate::train::method::{Batches, Method, Timing};
use crate::train::network::{Field, Generator};
use crate::train::weights::{check_checkpoint, copy_into, mismatch, prefixed};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{nn, Device, Tensor};

/// How MGM meets its data: what differs between toys and images.
pub trait Setting: serde::Serialize {
    /// The format tag of this setting's checkpoints.
    const FORMAT: &'static str;
    /// How the randomness of the steps is drawn (recorded in checkpoints).
    const RNG: &'static str;

    /// The objective.
    fn variant(&self) -> Variant;
    /// Samples per batch (each step uses two batches).
    fn batch(&self) -> i64;
    /// Shape of one data sample.
    fn sample_shape(&self) -> Vec<i64>;
    /// Shape of one latent.
    fn latent_shape(&self) -> Vec<i64>;
    /// The torch seed of step `k` when every step reseeds (exact resume), or `None` when the
    /// steps draw from one stream.
    fn step_seed(&self, k: u64) -> Option<i64>;
    /// The fixed latents of the sample grids.
    fn grid_latents(&self, n: i64) -> Tensor;
    /// The learning rates `(generator, field)` of step `k` when the setting schedules them
    /// (`None`: the optimizers keep theirs).
    fn learning_rates(&self, _k: u64) -> Option<(f64, f64)> {
        None
    }
}

/// A generator `G`, a field `F` and the generator's EMA, trained by Algorithm 1 in setting
/// `C`.
pub struct MgmMethod<G, F, C> {
    pub(super) config: C,
    pub(super) trainer: MgmTrainer<G, F>,
    pub(super) ema: Ema,
    pub(super) ema_net: G,
    /// This process's place in a data-parallel job (`None`: alone).
    pub(super) replica: Option<Replica>,
}

impl<G: Generator, F: Field, C: Setting> MgmMethod<G, F, C> {
    /// The same run with its two Adams and its EMA applied by `kernels` (same updates to
    /// float tolerance; [`crate::train::kernels`]).
    pub fn with_kernels(
        mut self,
        kernels: crate::train::kernels::Kernels,
    ) -> Result<Self, TrainError> {
        self.trainer.generator.set_adam_kernel(kernels.adam)?;
        self.trainer.field.set_adam_kernel(kernels.adam)?;
        self.ema.kernel = kernels.ema;
        Ok(self)
    }

    /// The same run as one rank of a data-parallel job ([`crate::dist`]): the objective shards
    /// its batches and averages its gradients, and the loop writes on rank 0 only. Needs a
    /// per-step seed (image runs) and a batch the ranks divide; checks that every rank starts
    /// from the same generator, field and EMA.
    pub fn with_replica(mut self, replica: Replica) -> Result<Self, TrainError> {
        if self.config.step_seed(0).is_none() {
            return Err(TrainError::InvalidOption(
                "data-parallel MGM needs per-step seeds (image runs); the toy runs in one process"
                    .into(),
            ));
        }
        replica.shard().rows(self.config.batch())?;
        let k = self.trainer.steps_done() as u64;
        replica.check_same(k, "generator", &self.trainer.generator.vs)?;
        replica.check_same(k, "field", &self.trainer.field.vs)?;
        replica.check_same(k, "EMA", &self.ema.vs)?;
        self.trainer.mgm = self.trainer.mgm.clone().with_replica(replica.clone());
        self.replica = Some(replica);
        Ok(self)
    }

    /// The settings.
    pub fn config(&self) -> &C {
        &self.config
    }

    /// Iterations of Algorithm 1 done.
    pub fn steps_done(&self) -> usize {
        self.trainer.steps_done()
    }

    /// The trainer (networks, optimizers, objective).
    pub fn trainer(&self) -> &MgmTrainer<G, F> {
        &self.trainer
    }

    /// The EMA generator and its variables.
    pub fn ema(&self) -> (&G, &nn::VarStore) {
        (&self.ema_net, &self.ema.vs)
    }

    /// One iteration of Algorithm 1 (field step on batch `2k` of `data`, generator step on
    /// batch `2k + 1`, `z ~ N(0, I)` fresh for each; torch reseeded first if the setting says
    /// so), then the EMA update. Returns the two losses before their updates; a non-finite
    /// loss is an error and updates nothing.
    pub fn step(&mut self, data: &mut dyn Batches) -> Result<StepLosses, TrainError> {
        let k = self.trainer.steps_done() as u64;
        if let Some(seed) = self.config.step_seed(k) {
            tch::manual_seed(seed);
            if let Some(r) = &self.replica {
                r.begin_step(seed as u64, k);
            }
        }
        if let Some((g, f)) = self.config.learning_rates(self.trainer.steps_done() as u64) {
            self.trainer.generator.opt.set_lr(g);
            self.trainer.field.opt.set_lr(f);
        }
        let (sample, latent) = (self.config.sample_shape(), self.config.latent_shape());
        let losses =
            self.trainer
                .step_on(data, &mut self.ema, self.config.batch(), &sample, &latent)?;
        if let Some(r) = &self.replica {
            let done = k + 1;
            r.maybe_check(done, "generator", &self.trainer.generator.vs)?;
            r.maybe_check(done, "field", &self.trainer.field.vs)?;
        }
        Ok(losses)
    }

    /// `G_ema(z)` in evaluation mode without a graph, on the networks' device.
    pub fn samples(&self, z: &Tensor) -> Tensor {
        let device = self.trainer.generator.vs.device();
        tch::no_grad(|| self.ema_net.generate(&z.to_device(device), false))
    }

    /// The fixed latents of the sample grids (`n`, the same for every grid of a run).
    pub fn grid_latents(&self, n: i64) -> Tensor {
        self.config.grid_latents(n)
    }

    /// Every variable of the run as `generator.*`, `field.*`, `ema.*` (what a checkpoint must
    /// hold besides the optimizers' state, `k` and the config). [`MgmMethod::save`] adds both
    /// Adams' moments.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = prefixed("generator", &self.trainer.generator.vs);
        out.extend(prefixed("field", &self.trainer.field.vs));
        out.extend(prefixed("ema", &self.ema.vs));
        out
    }

    /// Restores the variables of [`MgmMethod::state`] (all names, dtypes and shapes checked
    /// first; nothing changes on a mismatch).
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>) -> Result<(), TrainError> {
        let mine = self.state();
        if let Some(m) = mismatch(&mine, |n| tensors.get(n)) {
            return Err(TrainError::InvalidOption(format!("state: {m}")));
        }
        copy_into(&mine, |n| &tensors[n]);
        Ok(())
    }

    /// Writes a checkpoint to `path` (atomic, SHA-256; [`checkpoint::save`]; contents in the
    /// module docs); `data` describes the training data.
    pub fn save(&self, path: &Path, data: &str) -> Result<(), TrainError> {
        let mut tensors: Vec<(String, Tensor)> = self
            .state()
            .into_iter()
            .map(|(n, t)| (n, t.detach()))
            .collect();
        let (g, f) = self.adams()?;
        tensors.extend(g.state("adam_g"));
        tensors.extend(f.state("adam_f"));
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), C::FORMAT.to_string());
        meta.insert("step".to_string(), self.steps_done().to_string());
        meta.insert("adam_g_step".to_string(), g.steps().to_string());
        meta.insert("adam_f_step".to_string(), f.steps().to_string());
        meta.insert(
            "config".to_string(),
            serde_json::to_string(&self.config).expect("config serialises"),
        );
        meta.insert("data".to_string(), data.to_string());
        meta.insert("rng".to_string(), C::RNG.into());
        meta.insert(
            "torch_version".to_string(),
            crate::device::TORCH_VERSION.to_string(),
        );
        checkpoint::save(path, &tensors, &meta)?;
        Ok(())
    }

    fn adams(&self) -> Result<(&Adam, &Adam), TrainError> {
        let g = self.trainer.generator.opt.saveable();
        let f = self.trainer.field.opt.saveable();
        g.zip(f).ok_or_else(|| {
            TrainError::InvalidOption(
                "MGM networks without the hand-written Adam cannot be checkpointed".into(),
            )
        })
    }

    /// Copies the weights, both Adams' moments and the step of a verified checkpoint into this
    /// run after checking every tensor's presence, dtype and shape (nothing is copied on a
    /// mismatch).
    pub(super) fn restore(&mut self, ckpt: &Checkpoint, path: &Path) -> Result<(), TrainError> {
        let parse = |key: &str| -> Result<u64, TrainError> {
            ckpt.meta(path, key)?
                .parse::<u64>()
                .map_err(|e| CheckpointError::content(path, format!("{key}: {e}")).into())
        };
        let (step, g_step, f_step) = (parse("step")?, parse("adam_g_step")?, parse("adam_f_step")?);
        let state = self.state();
        check_checkpoint(ckpt, path, &state)?;
        let (g, f) = self.adams()?;
        g.check_state(ckpt, path, "adam_g")?;
        f.check_state(ckpt, path, "adam_f")?;
        copy_into(&state, |n| &ckpt.tensors[n]);
        let t = &mut self.trainer;
        if let Some(a) = t.generator.opt.saveable_mut() {
            a.load_state(ckpt, "adam_g", g_step as i64);
        }
        if let Some(a) = t.field.opt.saveable_mut() {
            a.load_state(ckpt, "adam_f", f_step as i64);
        }
        t.set_steps_done(step as usize);
        Ok(())
    }
}

impl<G: Generator, F: Field, C: Setting> Method for MgmMethod<G, F, C> {
    type Losses = StepLosses;
    type Record = LossLine;
    type Config = C;

    fn name(&self) -> String {
        self.config.variant().name().into()
    }
    fn config(&self) -> &C {
        &self.config
    }
    fn device(&self) -> Device {
        self.trainer.generator.vs.device()
    }
    fn steps_done(&self) -> u64 {
        self.trainer.steps_done() as u64
    }
    fn step(&mut self, data: &mut dyn Batches) -> Result<StepLosses, TrainError> {
        MgmMethod::step(self, data)
    }
    fn loss_fields(&self) -> &'static [(&'static str, &'static str)] {
        &LOSS_TITLES
    }
    fn record(&self, step: u64, losses: &StepLosses, timing: Timing) -> LossLine {
        LossLine::new(step, losses, self.samples_per_step(), timing)
    }
    fn samples_per_step(&self) -> usize {
        (self.trainer.critic_steps() + 1) * self.config.batch() as usize
    }
    fn sample(&self, z: &Tensor) -> Tensor {
        self.samples(z)
    }
    fn sample_raw(&self, z: &Tensor) -> Option<Tensor> {
        let device = self.trainer.generator.vs.device();
        Some(tch::no_grad(|| {
            self.trainer
                .generator
                .net
                .generate(&z.to_device(device), false)
        }))
    }
    fn replica(&self) -> Option<&Replica> {
        self.replica.as_ref()
    }
    fn health(&self, losses: &[StepLosses]) -> Option<(&'static str, String)> {
        super::health::warning(losses)
    }
    fn latent_shape(&self) -> Vec<i64> {
        self.config.latent_shape()
    }
    fn grid_latents(&self, n: i64) -> Tensor {
        MgmMethod::grid_latents(self, n)
    }
    fn save(&self, path: &Path, data: &str) -> Result<(), TrainError> {
        MgmMethod::save(self, path, data)
    }
}
