//! # midpoint-train
//!
//! Reference trainer for *Midpoint Generative Models* (MGM, 2026) on libtorch (tch 0.24,
//! libtorch 2.11.0), cross-checked against the exact numerics of the [`midpoint`] crate.
//!
//! The modules follow the roles, and imports run one way: `cli → toy, image, bench (runs) →
//! methods → nets, train → dist, data, fid, the core crate`.
//!
//! | module | what | paper |
//! |---|---|---|
//! | [`train`] | the training core, which knows no method: network roles, Adam, EMA, precision, checkpoints, run folders, and the one training loop ([`train::run_loop`]) over a [`train::method::Method`] | |
//! | [`methods`] | the training methods: [`methods::mgm`] (Algorithm 1, on toys and images) and [`methods::warmup`] (EDM's denoising warmup) | Alg. 1–2, App. B–C |
//! | [`nets`] | the networks: MLPs for toys, EDM's `ddpm++` for images | §3.4, §5.1 |
//! | [`toy`] | toy targets, the toy run with its metrics and plots, the critic check | Fig. 3, Prop. 3.3 |
//! | [`image`] | FID during training, the image critic check, crops of photographs | §5 |
//! | [`bench`] | `bench warmup|mgm|matmul`: throughput against the FLOP bound | |
//! | [`data`] | CIFAR-10 binary batches and PNG folders as batches in [−1, 1] | §5.1 |
//! | [`fid`] | FID-50K with the NVlabs protocol: TF-legacy resize, Inception features, float64 statistics, Fréchet distance | §5.1 |
//! | [`device`] | device parsing, names and the build's torch version | |
//! | [`dist`] | data-parallel training on c10d (NCCL on GPUs, Gloo on the CPU): launch environment, process group, shards, gradient buckets | |
//! | [`error`] | [`TrainError`] | |
//!
//! The core crate never depends on tch; this crate adds the networks and the optimizer.
#![warn(missing_docs)]

pub mod bench;
pub mod data;
pub mod device;
pub mod dist;
pub mod error;
pub mod fid;
pub mod image;
pub mod methods;
pub mod nets;
mod shim;
pub mod toy;
pub mod train;

pub use error::TrainError;
