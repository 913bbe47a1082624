//! Flow-map baselines beside MGM: the methods of *Flow map matching* ([FMM], Boffi, Albergo,
//! Vanden-Eijnden 2024, `../shared/papers/004_*`) and *How to build a consistency model:
//! learning flow maps via self-distillation* ([SD], `../shared/papers/003_*`), with the
//! corrections of `../shared/notes/flow-maps.md`.
//!
//! | module | what | paper |
//! |---|---|---|
//! | [`image`] | every method with the two-time `ddpm++` on images: checkpoints, exact resume, EMA | [FMM] §4.2; [SD] App. E |
//! | [`kind`] | the methods by name, and what each needs | flow-maps.md §1.7 |
//! | [`map`] | `X_{s,t}(x) = x + (t − s)·v_{s,t}(x)`, `K`-step sampling, Euler and RK4 on a velocity | [SD] eq. 6–7; [FMM] eq. 4.1 |
//! | [`objective`] | one step's loss of every method: phases, time draws, residuals | [SD] Alg. 1; [FMM] Alg. 1–4 |
//! | [`residuals`] | the residual of every loss: FM, LSD/LMD, ESD/EMD, PSD, FMM, PFMM | [SD] eq. 3, 13, 14, 23; [FMM] eq. 3.9, 3.14–3.16 |
//! | [`times`] | `(s, t)` on the triangle (annealed) or the band, `γ` | [SD] §2.5; [FMM] §4 |
//! | [`toy`] | every method with MLPs on a toy target, teacher phases included | [SD] App. E; [FMM] §4.1 |

pub mod image;
pub mod kind;
pub mod map;
pub mod objective;
pub mod residuals;
pub mod times;
pub mod toy;
