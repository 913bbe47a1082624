//! Subcommands; one file each (and [`common`] for what several of them share).

#[macro_use]
mod common;
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
