//! Toy runs (Fig. 3): 2-D targets, the toy training run with its metrics and plots, and the
//! critic alone against the exact field.
//!
//! | module | what | paper |
//! |---|---|---|
//! | [`targets`] | Swiss roll, 8 Gaussians, checkerboard, moons, and law files | Fig. 3 |
//! | [`run`] | `midpoint-train toy`: a method on a toy target with metrics and plots | Fig. 3 |
//! | [`metrics`] | energy distance; held-out variational `D_t-mid` estimate | Prop. 3.3 |
//! | [`distances`] | sliced W2 and a histogram KL (the flow-map comparison) | — |
//! | [`flow_map_run`] | `midpoint-train flowmap`: a flow-map method on a toy target, measured at 1–16 steps | [FMM], [SD] |
//! | [`critic_check`] | the critic alone against two fixed laws, beside the exact field | Prop. 3.3, Eq. 5, 8 |

pub mod critic_check;
pub mod distances;
pub mod flow_map_run;
pub mod metrics;
pub mod run;
pub mod targets;
