//! Subcommands; one file each (`arch.rs` holds `info --arch`).

mod arch;
mod bench;
mod critic_check;
mod crops;
mod feature_net;
mod fid;
mod flags;
mod flowmap;
mod flowmap_image;
mod image_metrics;
mod image_run;
mod info;
mod mgm;
mod panels;
mod toy;
mod warmup;

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
    /// A flow-map baseline (FM, LSD, ESD, PSD, LMD, EMD, FMM, PFMM) on a toy target, measured
    /// at 1–16 steps.
    Flowmap(flowmap::Args),
    /// A flow-map baseline on images (CIFAR-10 or a PNG folder) with MGM's checkpoints, grids
    /// and FID.
    FlowmapImage(flowmap_image::Args),
    /// Train only the critic on two fixed laws and compare it with the exact field and D_t-mid.
    CriticCheck(critic_check::Args),
    /// Draw the samples of several toy runs side by side (target first) into one PNG.
    Panels(panels::Args),
    /// Denoising warmup of the ddpm++ network on CIFAR-10 or a PNG folder (App. B).
    Warmup(warmup::Args),
    /// FID reference statistics (μ, Σ of Inception features) of a folder of images.
    FidRef(fid::RefArgs),
    /// FID between a folder of images and a reference folder or statistics file.
    Fid(fid::FidArgs),
    /// Throughput benchmarks on synthetic data (`bench warmup|mgm|matmul|inception`; JSON).
    Bench(bench::Args),
    /// Algorithm 1 on images: EDM generator and field from a warmup; grids, losses, FID.
    Mgm(mgm::Args),
    /// Training and held-out crops (PNG) of a folder of photographs, sharing no pixel.
    Crops(crops::Args),
    /// Train the small classifier whose features give `image-metrics` its Fréchet distance.
    FeatureNet(feature_net::Args),
    /// Generated against held-out images: Fréchet distance, D_t-mid, nearest training image.
    ImageMetrics(image_metrics::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    // Only the image trainers run data-parallel; another command started by torchrun or srun
    // with several processes would run N times over the same outputs.
    if !matches!(cli.command, Command::Warmup(_) | Command::Mgm(_)) {
        if let Some(l) = midpoint_train::dist::Launch::from_env()? {
            if l.world > 1 {
                anyhow::bail!(
                    "this command runs in one process, but {} started {} (only warmup and mgm train data-parallel)",
                    l.launcher,
                    l.world
                );
            }
        }
    }
    match cli.command {
        Command::Info(a) => info::run(a),
        Command::Toy(a) => toy::run(a),
        Command::Flowmap(a) => flowmap::run(a),
        Command::FlowmapImage(a) => flowmap_image::run(a),
        Command::CriticCheck(a) => critic_check::run(a),
        Command::Panels(a) => panels::run(a),
        Command::Warmup(a) => warmup::run_cmd(a),
        Command::FidRef(a) => fid::run_ref(a),
        Command::Fid(a) => fid::run_fid(a),
        Command::Bench(a) => bench::run(a),
        Command::Mgm(a) => mgm::run(a),
        Command::Crops(a) => crops::run(a),
        Command::FeatureNet(a) => feature_net::run(a),
        Command::ImageMetrics(a) => image_metrics::run(a),
    }
}
