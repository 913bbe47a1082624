//! Subcommands; one file each.

/// `println!` that reports a closed stdout as an error instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::emit(format_args!($($arg)*)) };
}

mod demo;
mod estimate;
mod exact;
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
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Exact(a) => exact::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Estimate(a) => estimate::run(a),
    }
}

/// Writes one line to stdout; a closed pipe (`midpoint demo | head`) surfaces as an error
/// that `main` treats as a normal end rather than a panic.
pub(crate) fn emit(line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)?;
    out.write_all(b"\n")?;
    Ok(())
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
