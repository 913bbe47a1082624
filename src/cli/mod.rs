//! Subcommands; one file each.

mod demo;
mod estimate;
mod exact;
mod report;
mod sample;

use clap::{Parser, Subcommand};

/// Midpoint Divergence numerics (MGM, 2026).
#[derive(Debug, Parser)]
#[command(name = "midpoint", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exact value of a divergence between two laws given as JSON files.
    Exact(exact::Args),
    /// Draw samples from a law given as a JSON file.
    Sample(sample::Args),
    /// The built-in example: divergences between a few laws, exact beside Monte Carlo.
    Demo(demo::Args),
    /// Estimate the divergence between two sample sets and test whether they differ.
    Estimate(estimate::Args),
    /// Measurements behind docs/two-sample.md (calibration, coverage, convergence, power).
    #[command(hide = true)]
    Report(report::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Exact(a) => exact::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Estimate(a) => estimate::run(a),
        Command::Report(a) => report::run(a),
    }
}

/// `linear` or `trig` plus `σ` → the stochastic interpolant.
pub(crate) fn interpolant(
    name: &str,
    sigma: f64,
) -> anyhow::Result<midpoint::StochasticInterpolant> {
    Ok(midpoint::StochasticInterpolant::new(
        midpoint::Interpolant::from_name(name)?,
        midpoint::NoiseSchedule::sqrt_bridge(sigma)?,
    ))
}
