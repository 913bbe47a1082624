//! What a training method holds to train data-parallel: the process group, this rank's
//! [`Shard`], and the checks that keep the replicas identical.

use super::grads::{average_gradients, BUCKET_BYTES};
use super::{Backend, DistError, Launch, ProcessGroup, ReduceOp, Shard};
use std::cell::Cell;
use std::rc::Rc;
use tch::{nn, Device, Kind, Tensor};

/// Default timeout of the rendezvous and of every collective: a dead or hung rank ends the
/// job with an error after this long (NCCL's and Gloo's own defaults are 10 and 30 minutes).
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Stream label of the ranks' own streams.
const OWN_STREAM: u64 = 0x5241_4e4b;

/// torch's default generators' states (`torch.get_rng_state`), through `csrc/dist.cpp`.
mod rng {
    use super::DistError;
    use std::os::raw::c_char;
    use tch::Tensor;
    use torch_sys::C_tensor;

    extern "C" {
        fn midpoint_rng_get_state(
            cuda: i32,
            index: i32,
            out: *mut *mut C_tensor,
            err: *mut c_char,
            err_len: i64,
        ) -> i32;
        fn midpoint_rng_set_state(
            cuda: i32,
            index: i32,
            state: *mut C_tensor,
            err: *mut c_char,
            err_len: i64,
        ) -> i32;
    }

    fn fail(message: String) -> DistError {
        DistError::Launch(format!("random generator state: {message}"))
    }

    /// The state of the CPU generator (`None`) or of CUDA device `i`.
    pub fn get(cuda: Option<usize>) -> Result<Tensor, DistError> {
        let mut out = std::ptr::null_mut();
        let (c, i) = (i32::from(cuda.is_some()), cuda.unwrap_or(0) as i32);
        // SAFETY: on success `out` is a heap at::Tensor that Tensor::from_ptr takes over.
        crate::shim::call(|err, len| unsafe { midpoint_rng_get_state(c, i, &mut out, err, len) })
            .map_err(fail)?;
        Ok(unsafe { Tensor::from_ptr(out) })
    }

    /// Restores a state from [`get`].
    pub fn set(cuda: Option<usize>, state: &Tensor) -> Result<(), DistError> {
        let (c, i) = (i32::from(cuda.is_some()), cuda.unwrap_or(0) as i32);
        // SAFETY: `state` is live for the call; the C++ side copies from it.
        crate::shim::call(|err, len| unsafe {
            midpoint_rng_set_state(c, i, state.as_ptr() as *mut _, err, len)
        })
        .map_err(fail)
    }
}

/// Default steps between weight-digest checks.
pub const DEFAULT_DIGEST_EVERY: u64 = 100;

/// One rank of a data-parallel run.
#[derive(Clone)]
pub struct Replica {
    group: Rc<ProcessGroup>,
    shard: Shard,
    device: Device,
    /// Seed of this rank's own stream for the current step, and the forwards run on it so
    /// far ([`Replica::on_own_stream`]); shared by the clones held by a method's parts.
    own_stream: Rc<Cell<(u64, u64)>>,
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
            own_stream: Rc::new(Cell::new((0, 0))),
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

    /// Starts step `k` of a run of seed `seed`: the forwards of the step run on streams derived
    /// from `(seed, k, rank, call)` ([`Replica::on_own_stream`]), so a resumed run draws the
    /// same dropout masks.
    pub fn begin_step(&self, seed: u64, k: u64) {
        let s = crate::data::order::derive_seed(seed, OWN_STREAM, k);
        self.own_stream.set((
            crate::data::order::derive_seed(s, OWN_STREAM, self.shard.rank as u64),
            0,
        ));
    }

    /// Runs `f` (a network's forward in training mode, whose dropout draws random numbers)
    /// on this rank's own stream, and puts torch's shared stream (CPU and the device) back as
    /// it was: the ranks' masks are independent, and the draws every rank makes at the global
    /// batch's shape stay in step. With one rank `f` just runs (a single process is unchanged).
    pub fn on_own_stream<T>(&self, f: impl FnOnce() -> T) -> Result<T, DistError> {
        if self.shard.world == 1 {
            return Ok(f());
        }
        let cuda = match self.device {
            Device::Cuda(i) => Some(i),
            _ => None,
        };
        let cpu_state = rng::get(None)?;
        let dev_state = cuda.map(|i| rng::get(Some(i))).transpose()?;
        let (seed, calls) = self.own_stream.get();
        self.own_stream.set((seed, calls + 1));
        tch::manual_seed(crate::data::order::derive_seed(seed, OWN_STREAM, calls) as i64);
        let out = f();
        rng::set(None, &cpu_state)?;
        if let (Some(i), Some(s)) = (cuda, dev_state) {
            rng::set(Some(i), &s)?;
        }
        Ok(out)
    }

    /// Runs the digest check of `vs` when `step` is a multiple of `digest_every`.
    pub fn maybe_check(&self, step: u64, what: &str, vs: &nn::VarStore) -> Result<(), DistError> {
        if self.digest_every > 0 && step.is_multiple_of(self.digest_every) {
            self.check_same(step, what, vs)?;
        }
        Ok(())
    }
}
