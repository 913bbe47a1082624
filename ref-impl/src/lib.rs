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
//! | [`edm`] | EDM's `ddpm++` SongUNet with EDM preconditioning and the denoising loss | §5.1, App. B |
//! | [`image_critic`] | the image trainer's field against the exact field of two Gaussian image laws | Prop. 3.3, Eq. 5 |
//! | [`image_mgm`] | Algorithm 1 on images: generator and field from the warmup, EMA, `t` floor | §5, App. B |
//! | [`mgm_run`] | `midpoint-train mgm`: loop, loss log, grids, loss plot, checkpoint/FID hooks | §5 |
//!
//! The core crate never depends on tch; this crate adds the networks and the optimizer.
#![warn(missing_docs)]

pub mod critic_check;
pub mod device;
pub mod edm;
pub mod error;
pub mod image_critic;
pub mod image_mgm;
pub mod metrics;
pub mod mgm;
pub mod mgm_run;
pub mod nets;
pub mod plot;
pub mod progress;
pub mod toy;
pub mod toy_run;

pub use error::TrainError;
