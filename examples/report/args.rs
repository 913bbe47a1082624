//! The command line of the report: which measurement, and its sizes.

use std::path::PathBuf;

/// Which measurement.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    /// Null rejection rate of the sign-flip test (and of the naive fixed-critic version).
    Calibration,
    /// Coverage of the 95% interval on laws with exact values.
    Coverage,
    /// Estimate vs exact value as n grows.
    Convergence,
    /// Power on mean shift, scale shift and blobs.
    Power,
}

/// Measurements behind docs/two-sample.md (calibration, coverage, convergence, power).
#[derive(Debug, clap::Parser)]
#[command(name = "report")]
pub struct Args {
    /// Which report.
    #[arg(value_enum)]
    pub kind: Kind,
    /// Replications.
    #[arg(long, default_value_t = 1000)]
    pub reps: usize,
    /// Samples per side (comma-separated list).
    #[arg(long, value_delimiter = ',', default_value = "500")]
    pub n: Vec<usize>,
    /// Resamples of the test.
    #[arg(long, default_value_t = 200)]
    pub resamples: usize,
    /// Divergences (comma-separated: mid, tmid).
    #[arg(long, value_delimiter = ',', default_value = "tmid")]
    pub divergence: Vec<String>,
    /// Laws (comma-separated; see `common::laws`, and for `calibration` gauss2d, discrete3); empty
    /// means all.
    #[arg(long, value_delimiter = ',')]
    pub laws: Vec<String>,
    /// Write the Markdown here (and the power PNG beside it).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Peers' power table (CSV: scenario,n,method,reps,rejections,mean_wall_s) to merge in.
    #[arg(long)]
    pub peers: Option<PathBuf>,
    /// Our power rows from an earlier `report power --out` (its `.csv`), instead of
    /// recomputing them.
    #[arg(long)]
    pub cached: Option<PathBuf>,
    /// Base seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}
