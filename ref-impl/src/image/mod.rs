//! Image runs (§5): the training loop with its grids, checkpoints and FID, the image critic
//! against an exact field, and training crops of photographs.
//!
//! | module | what | paper |
//! |---|---|---|
//! | [`fid_eval`] | FID of the EMA generator during training, and the readers of a run's logs | §5.1 |
//! | [`critic_check`] | the image trainer's field against the exact field of two Gaussian image laws | Prop. 3.3, Eq. 5 |
//! | [`crops`] | `midpoint-train crops`: training and held-out crops that share no pixel | |

pub mod critic_check;
pub mod crops;
pub mod fid_eval;
