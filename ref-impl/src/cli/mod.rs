//! Subcommands; one file each.

mod critic_check;
mod info;
mod mgm;
mod panels;
mod toy;

use clap::{Parser, Subcommand};

/// Reference trainer for Midpoint Generative Models (MGM, 2026) on libtorch.
#[derive(Debug, Parser)]
#[command(name = "midpoint-train", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Device, CUDA availability and the torch version of the build.
    Info(info::Args),
    /// Algorithm 1 with MLPs on a 2-D toy set or a law file; writes samples, metrics, plots.
    Toy(toy::Args),
    /// Train only the critic on two fixed laws and compare it with the exact field and D_t-mid.
    CriticCheck(critic_check::Args),
    /// Draw the samples of several toy runs side by side (target first) into one PNG.
    Panels(panels::Args),
    /// Algorithm 1 on images: EDM generator and field from a warmup; grids, losses, FID.
    Mgm(mgm::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info(a) => info::run(a),
        Command::Toy(a) => toy::run(a),
        Command::CriticCheck(a) => critic_check::run(a),
        Command::Panels(a) => panels::run(a),
        Command::Mgm(a) => mgm::run(a),
    }
}

/// `--threads N`: libtorch intra-op threads (0 keeps libtorch's default).
pub(crate) fn set_threads(n: usize) {
    if n > 0 {
        tch::set_num_threads(n as i32);
    }
}

/// Progress bars only on an interactive stderr, and never with `--quiet`.
pub(crate) fn show_progress(quiet: bool) -> bool {
    use std::io::IsTerminal;
    !quiet && std::io::stderr().is_terminal()
}
