//! Image runs (§5): the training loop with its grids, checkpoints and FID, the image critic
//! against an exact field, and training crops of photographs.
//!
//! | module | what | paper |
//! |---|---|---|
//! | [`checkpoint_generator`] | the generator of a warmup, MGM or flow-map checkpoint (FID, metrics) | §5.1 |
//! | [`fid_eval`] | FID of the EMA generator during training, and the readers of a run's logs | §5.1 |
//! | [`critic_check`] | the image trainer's field against the exact field of two Gaussian image laws | Prop. 3.3, Eq. 5 |
//! | [`crops`] | `midpoint-train crops`: training and held-out crops that share no pixel | |
//! | [`feature_net`] | the small classifier whose features give a Fréchet distance on 8×8 digits | |
//! | [`sample_metrics`] | generated against held-out images: Fréchet, `D_t-mid`, nearest training image | Eq. 8 |

pub mod checkpoint_generator;
pub mod critic_check;
pub mod crops;
pub mod feature_net;
pub mod fid_eval;
pub mod sample_metrics;
