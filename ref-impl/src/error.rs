//! The error type of the trainer.

use std::path::PathBuf;

/// Why training, a check or an estimate could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A loss came out NaN or ±∞ (the run diverged); nothing was updated with it.
    #[error("{which} loss is not finite ({value}) at step {step}: training diverged (try a smaller --lr)")]
    NonFiniteLoss {
        /// `critic` or `generator`.
        which: &'static str,
        /// The value.
        value: f64,
        /// 0-based step.
        step: usize,
    },
    /// An option out of range (bad flag value, mismatched dimensions, ...).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A sample set or law file could not be read or written.
    #[error(transparent)]
    Format(#[from] midpoint::io::FormatError),
    /// From the exact numerics of the core crate.
    #[error(transparent)]
    Divergence(#[from] midpoint::DivergenceError),
    /// From the core crate's interpolants.
    #[error(transparent)]
    Interpolant(#[from] midpoint::interpolant::InterpolantError),
    /// From the core crate's laws.
    #[error(transparent)]
    Law(#[from] midpoint::LawError),
    /// From the core crate's two-sample estimator.
    #[error("core-crate estimate: {0}")]
    Estimate(#[from] midpoint::estimate::EstimateError),
    /// From libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// Training images could not be read.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// Data-parallel training: launch, collectives, diverged replicas.
    #[error(transparent)]
    Dist(#[from] crate::dist::DistError),
    /// A checkpoint could not be written, read or verified.
    #[error(transparent)]
    Checkpoint(#[from] crate::train::checkpoint::CheckpointError),
    /// From the FID pipeline (weights, images, statistics).
    #[error(transparent)]
    Fid(#[from] crate::fid::FidError),
    /// A plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] midpoint::plot::PlotError),
    /// A run folder could not be claimed (in use, or holding a run).
    #[error(transparent)]
    RunFolder(#[from] crate::train::run_folder::RunFolderError),
    /// A file could not be written or read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS (or parser) said.
        message: String,
    },
}

impl TrainError {
    /// An [`TrainError::Io`] for `path`.
    pub fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        TrainError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}
