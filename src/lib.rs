//! # midpoint
//!
//! Verified numerics for the Midpoint Divergence of *Midpoint Generative Models* (MGM, 2026):
//! exact and Monte Carlo values of `D_mid` (Eq. 2), the flipped time-integrated `D_t-mid`
//! (Def. 3.2) and the generalized `D_t-mid^{I,σ}` (Eq. 8) for Gaussian and discrete endpoint
//! laws, the exact displacement field (Eq. 5), and the variational objective of Prop. 3.3.
//!
//! Layout mirrors the math: [`interpolant`] (Eq. 6–7), [`law`] (endpoint laws), [`field`]
//! (Eq. 1, 5), [`divergence`] (Eq. 2, 3, 8), [`montecarlo`] (estimators, Prop. 3.3),
//! [`estimate`] (divergence estimates and a two-sample test on users' own samples);
//! [`counterexample`] shows that Theorem 3.1 needs more than finite variance.
//!
//! ```
//! use midpoint::divergence::{d_tmid, ExactOptions};
//! use midpoint::interpolant::StochasticInterpolant;
//! use midpoint::law::{Gaussian, Law};
//! use ndarray::array;
//! let p0: Law = Gaussian::isotropic(array![0.0], 1.0).unwrap().into();
//! let p1: Law = Gaussian::isotropic(array![1.0], 1.0).unwrap().into();
//! let si = StochasticInterpolant::linear(0.0).unwrap();
//! let e = d_tmid(&p0, &p1, &si, &ExactOptions::default()).unwrap();
//! assert!(e.value > 0.0);
//! println!("D_t-mid = {} ± {} ({})", e.value, e.error_bound, e.method);
//! ```
#![warn(missing_docs)]
// Numerical kernels index several arrays in lockstep; iterator chains would obscure the math.
#![allow(clippy::needless_range_loop)]

pub mod command_line;
pub mod counterexample;
pub mod discrete;
pub mod divergence;
pub mod error;
pub mod estimate;
mod exact;
pub mod field;
pub mod grouping;
pub mod interpolant;
pub mod io;
pub mod law;
mod linalg;
mod moments;
pub mod montecarlo;
pub mod plot;
mod posterior;
pub mod quad;
pub mod resources;
mod streams;
mod vecmath;

pub use divergence::{Divergence, Evaluation, ExactOptions, ExactProgress, Method, Plan};
pub use error::DivergenceError;
pub use interpolant::{Interpolant, NoiseSchedule, Observation, StochasticInterpolant};
pub use law::{Discrete, Gaussian, Law, LawError};
