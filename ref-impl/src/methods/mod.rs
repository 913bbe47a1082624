//! Training methods, one module each, built on [`crate::train`] and [`crate::nets`].
//!
//! | module | what | paper |
//! |---|---|---|
//! | [`mgm`] | Algorithm 1 (MGM, and its `midpoint` and `naive` variants) on toys and images | Alg. 1–2, App. C, Eq. 6–8, 10 |
//! | [`flow_map`] | flow-map baselines: FM, LSD, ESD, PSD, LMD, EMD, FMM, PFMM | [FMM], [SD] (`../shared/notes/flow-maps.md`) |
//! | [`warmup`] | EDM's denoising warmup that initialises the image networks | App. B |

pub mod flow_map;
pub mod mgm;
pub mod warmup;
