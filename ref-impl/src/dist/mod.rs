//! Data-parallel training over several processes (one per GPU), on libtorch's own collective
//! engines: c10d's NCCL backend on CUDA, its Gloo backend on the CPU (the tests), rendezvous
//! through c10d's TCPStore as `torch.distributed` does (docs/distributed.md says why this
//! route and not a Rust NCCL binding).
//!
//! | module | what |
//! |---|---|
//! | [`launch`] | who this process is: torchrun's `RANK`/`WORLD_SIZE`/... or Slurm's `SLURM_*` |
//! | [`group`] | a c10d process group (`csrc/dist.cpp`): all-reduce, broadcast, barrier |
//! | [`shard`] | each rank's disjoint rows of a global batch |
//! | [`grads`] | gradient averaging in large flat buckets after each backward |
//! | [`replica`] | what a method holds to train data-parallel: the group, its shard, the checks |
//!
//! **The invariant.** With `N` ranks and global batch `B`, every random draw of a step is made
//! at its global shape from the stream all ranks share, and each rank keeps its rows; the
//! gradients are averaged over ranks; optimizers and EMAs then take identical steps. So `k`
//! steps on `N` ranks give the weights of one process at batch `B`, to the rounding of the
//! reduction (`tests/data_parallel.rs`), except for randomness inside the network (dropout),
//! which each rank draws from its own stream (as EDM's training seeds each rank).

pub mod grads;
pub mod group;
pub mod launch;
pub mod replica;
pub mod shard;

pub use group::{Backend, ProcessGroup, ReduceOp};
pub use launch::Launch;
pub use replica::Replica;
pub use shard::Shard;

/// What can go wrong in data-parallel training.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// A launcher variable is missing or malformed.
    #[error("launch environment: {0}")]
    Launch(String),
    /// The process group could not be made, or a collective failed or timed out (a dead or
    /// hung rank).
    #[error("collective ({what}) failed on rank {rank}: {message}")]
    Collective {
        /// Which call.
        what: &'static str,
        /// This rank.
        rank: usize,
        /// libtorch's message.
        message: String,
    },
    /// The ranks' weights differ (they must stay identical): a bug or a non-deterministic
    /// step, caught by the periodic digest check.
    #[error("ranks diverged at step {step}: {what} differ across ranks (digest min {min:e}, max {max:e}); the run stops rather than train on inconsistent replicas")]
    Diverged {
        /// Step of the check.
        step: u64,
        /// Which weights.
        what: String,
        /// Smallest digest over ranks.
        min: f64,
        /// Largest digest over ranks.
        max: f64,
    },
    /// A global batch that the ranks cannot share equally.
    #[error("--batch {batch} is not divisible by the {world} ranks: each rank must see batch/ranks rows")]
    Indivisible {
        /// The global batch.
        batch: i64,
        /// Ranks.
        world: usize,
    },
}
