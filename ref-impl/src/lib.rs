//! # midpoint-train
//!
//! Reference trainer for *Midpoint Generative Models* (MGM, 2026) on libtorch (tch 0.24,
//! libtorch 2.11.0), cross-checked against the exact numerics of the [`midpoint`] crate.
//!
//! | module | what | paper |
//! |---|---|---|
//! | [`mgm`] | the one implementation of Algorithm 1's losses and training step | Alg. 1–2, App. C, Eq. 10 |
//! | [`nets`] | MLP generator and MLP critic with a sinusoidal time embedding | §3.4 |
//! | [`toy`] | 2-D toy data (Swiss roll, 8 Gaussians, checkerboard, moons) and law files | Fig. 3 |
//! | [`metrics`] | energy distance; held-out variational `D_t-mid` estimate | Prop. 3.3 |
//! | [`critic_check`] | the critic alone against two fixed laws, beside the exact field | Prop. 3.3, Eq. 5, 8 |
//! | [`toy_run`] | `midpoint-train toy`: Algorithm 1 on toy data with metrics and plots | Fig. 3 |
//! | [`plot`] | scatter panels (PNG) | |
//! | [`warmup`] | `midpoint-train warmup`: the EDM denoising warmup with checkpoints and exact resume; `bench warmup` | App. B |
//! | [`bench`] | `midpoint-train bench warmup|mgm|matmul`: throughput against the FLOP bound, the machine's matmul peak, peak GPU memory | |
//! | [`crops`] | `midpoint-train crops`: training and held-out crops of photographs that share no pixel | |
//! | [`checkpoint`] | safetensors checkpoints with a SHA-256 checksum, written atomically | |
//! | [`precision`] | `fp32`, or `bf16` autocast (weights and Adam in fp32) through a small libtorch shim; TF32 switch and CUDA peak memory | |
//! | [`adam`] | Adam with inspectable state (PyTorch's update) | |
//! | [`grid`] | image grids (PNG) | |
//! | [`data`] | CIFAR-10 binary batches and PNG folders as batches in [−1, 1] | §5.1 |
//! | [`edm`] | EDM's `ddpm++` SongUNet with EDM preconditioning and the denoising loss | §5.1, App. B |
//! | [`fid`] | FID-50K with the NVlabs protocol: TF-legacy resize, Inception features, float64 statistics, Fréchet distance | §5.1 |
//! | [`image_critic`] | the image trainer's field against the exact field of two Gaussian image laws | Prop. 3.3, Eq. 5 |
//! | [`image_mgm`] | Algorithm 1 on images: generator and field from the warmup, EMA, `t` floor | §5, App. B |
//! | [`mgm_run`] | `midpoint-train mgm`: loop, loss log, grids, loss plot, checkpoint/FID hooks | §5 |
//!
//! The core crate never depends on tch; this crate adds the networks and the optimizer.
#![warn(missing_docs)]

pub mod adam;
pub mod bench;
pub mod checkpoint;
pub mod critic_check;
pub mod crops;
pub mod data;
pub mod device;
pub mod edm;
pub mod error;
pub mod fid;
pub mod grid;
pub mod image_critic;
pub mod image_mgm;
pub mod jsonl;
pub mod metrics;
pub mod mgm;
pub mod mgm_run;
pub mod nets;
pub mod plot;
pub mod precision;
pub mod progress;
pub mod toy;
pub mod toy_run;
pub mod warmup;

pub use error::TrainError;
