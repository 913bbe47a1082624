//! EDM's `ddpm++` network for CIFAR-10 (paper §5.1, App. B): the backbone of both the
//! generator and the displacement field, and the denoising warmup's objective.
//!
//! | module | what |
//! |---|---|
//! | [`config`] | [`UNetConfig`] (`ddpmpp`, `ddpmpp-noaug`, `tiny`), layout, parameter and FLOP counts |
//! | [`layers`] | `Linear`, `Conv2d`, `GroupNorm` with EDM's initialisation |
//! | [`embedding`] | positional noise embedding and mapping layers |
//! | [`attention`] | single-head self-attention with interleaved `qkv` |
//! | [`block`] | `UNetBlock` |
//! | [`unet`] | `SongUNet` |
//! | [`two_time`] | `TwoTimeUNet`: `ddpm++` with an embedding of `s` and of `t`, for the flow maps |
//! | [`precond`] | `EDMPrecond` `D(x; σ)`, the MGM adapters `G(z) = D(2.5z; 2.5)` and `f(x, t)` |
//! | [`loss`] | the folded log-normal noise law and the EDM denoising loss |

pub mod attention;
pub mod block;
pub mod config;
pub mod embedding;
pub mod layers;
pub mod loss;
pub mod precond;
pub mod two_time;
pub mod unet;

pub use config::{UNetConfig, ARCH_NAMES};
pub use loss::{denoising_loss, NoiseLaw};
pub use precond::{Coefficients, DenoiserField, EdmPrecond, OneStepGenerator};
pub use unet::SongUNet;
