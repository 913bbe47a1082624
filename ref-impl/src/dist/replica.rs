//! What a training method holds to train data-parallel: the process group, this rank's
//! [`Shard`], and the checks that keep the replicas identical.

use super::grads::{average_gradients, BUCKET_BYTES};
use super::{Backend, DistError, Launch, ProcessGroup, ReduceOp, Shard};
use std::rc::Rc;
use tch::{nn, Device, Kind, Tensor};

/// Default timeout of the rendezvous and of every collective: a dead or hung rank ends the
/// job with an error after this long (NCCL's and Gloo's own defaults are 10 and 30 minutes).
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Default steps between weight-digest checks.
pub const DEFAULT_DIGEST_EVERY: u64 = 100;

/// One rank of a data-parallel run.
#[derive(Clone)]
pub struct Replica {
    group: Rc<ProcessGroup>,
    shard: Shard,
    device: Device,
    /// Steps between weight-digest checks (0: never).
    pub digest_every: u64,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Replica {{ rank: {}, world: {}, backend: {:?} }}",
            self.shard.rank,
            self.shard.world,
            self.group.backend()
        )
    }
}

impl Replica {
    /// Joins the job of `launch` on `device` (NCCL for CUDA, Gloo for the CPU).
    pub fn join(
        launch: &Launch,
        device: Device,
        timeout: std::time::Duration,
    ) -> Result<Replica, DistError> {
        let group = ProcessGroup::join(launch, Backend::for_device(device), timeout)?;
        Ok(Replica {
            shard: Shard {
                rank: group.rank(),
                world: group.world(),
            },
            group: Rc::new(group),
            device,
            digest_every: DEFAULT_DIGEST_EVERY,
        })
    }

    /// The group.
    pub fn group(&self) -> &ProcessGroup {
        &self.group
    }

    /// This rank's share of a batch.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Rank 0 writes logs, grids, checkpoints and evaluations; the others only train.
    pub fn is_writer(&self) -> bool {
        self.shard.rank == 0
    }

    /// This rank's rows of a global batch.
    pub fn local(&self, global: &Tensor) -> Result<Tensor, DistError> {
        self.shard.local(global)
    }

    /// Averages the gradients of `vs` over the ranks ([`average_gradients`]).
    pub fn average_gradients(&self, vs: &nn::VarStore) -> Result<(), DistError> {
        average_gradients(vs, &self.group, BUCKET_BYTES).map(|_| ())
    }

    /// The mean over ranks of a per-rank number (a loss over the rank's rows: the mean is the
    /// global batch's).
    pub fn mean(&self, x: f64) -> Result<f64, DistError> {
        let t = Tensor::from_slice(&[x]).to_device(self.device);
        self.group.all_reduce(&t, ReduceOp::Sum)?;
        Ok(t.double_value(&[0]) / self.shard.world as f64)
    }

    /// Whether any rank says yes (a time limit reached on one rank stops all at the same
    /// step).
    pub fn any(&self, flag: bool) -> Result<bool, DistError> {
        let t = Tensor::from_slice(&[i32::from(flag)]).to_device(self.device);
        self.group.all_reduce(&t, ReduceOp::Max)?;
        Ok(t.int64_value(&[0]) != 0)
    }

    /// Copies rank 0's values of every variable of `vs` to the other ranks (identical start
    /// whatever each rank initialised).
    pub fn broadcast_vars(&self, vs: &nn::VarStore) -> Result<(), DistError> {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, v) in vars {
            let flat = v.detach().contiguous();
            self.group.broadcast(&flat, 0)?;
            tch::no_grad(|| v.shallow_clone().copy_(&flat));
        }
        Ok(())
    }

    /// Errors unless every rank holds the same `vs` (`what` names it): a digest of each
    /// variable (its sum and its sum of squares, in f64) is compared across ranks by an
    /// all-reduce of its maximum and of its minimum, which agree bit for bit when the replicas
    /// are identical.
    pub fn check_same(&self, step: u64, what: &str, vs: &nn::VarStore) -> Result<(), DistError> {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let parts: Vec<Tensor> = tch::no_grad(|| {
            vars.iter()
                .flat_map(|(_, v)| {
                    let d = v.to_kind(Kind::Double);
                    [d.sum(Kind::Double), d.square().sum(Kind::Double)]
                })
                .collect()
        });
        if parts.is_empty() {
            return Ok(());
        }
        let hi = Tensor::stack(&parts, 0);
        let lo = hi.copy();
        self.group.all_reduce(&hi, ReduceOp::Max)?;
        self.group.all_reduce(&lo, ReduceOp::Min)?;
        let (hi, lo) = (
            Vec::<f64>::try_from(&hi.to_device(Device::Cpu)).unwrap_or_default(),
            Vec::<f64>::try_from(&lo.to_device(Device::Cpu)).unwrap_or_default(),
        );
        for (i, (h, l)) in hi.iter().zip(&lo).enumerate() {
            if h.to_bits() != l.to_bits() {
                let (name, _) = &vars[i / 2];
                return Err(DistError::Diverged {
                    step,
                    what: format!("{what} ({name})"),
                    min: *l,
                    max: *h,
                });
            }
        }
        Ok(())
    }

    /// Runs the digest check of `vs` when `step` is a multiple of `digest_every`.
    pub fn maybe_check(&self, step: u64, what: &str, vs: &nn::VarStore) -> Result<(), DistError> {
        if self.digest_every > 0 && step.is_multiple_of(self.digest_every) {
            self.check_same(step, what, vs)?;
        }
        Ok(())
    }
}
