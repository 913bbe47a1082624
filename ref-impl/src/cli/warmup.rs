//! `midpoint-train warmup --data DIR --steps N [--batch 512] [--lr 1e-3] [--tau-max 2.5]
//! --out DIR [--resume]` (paper App. B)

use midpoint_train::data::ImageSet;
use midpoint_train::methods::warmup::{run, RunOptions, WarmupOptions};
use midpoint_train::nets::edm::UNetConfig;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// CIFAR-10 binary folder (cifar-10-batches-bin/ or its parent) or a folder of 32×32 RGB
    /// PNG images.
    #[arg(long)]
    data: PathBuf,
    /// Total training steps (a resumed run continues up to this count).
    #[arg(long)]
    steps: u64,
    /// Images per step.
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Adam learning rate (β1 0.9, β2 0.999, ε 1e-8).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Noise levels are folded at ln τ_max, so σ ≤ τ_max (App. B).
    #[arg(long, default_value_t = 2.5)]
    tau_max: f64,
    /// Network: ddpmpp (EDM CIFAR-10, 55.7M parameters), ddpmpp-noaug, tiny or digits (8×8 grayscale).
    #[arg(long, default_value = "ddpmpp")]
    arch: String,
    /// Learning-rate ramp-up in thousands of images (EDM: 10000; 0 = none).
    #[arg(long, default_value_t = 10_000.0)]
    lr_rampup_kimg: f64,
    /// EMA half-life in thousands of images (EDM: 500).
    #[arg(long, default_value_t = 500.0)]
    ema_halflife_kimg: f64,
    /// EMA ramp-up ratio (EDM: 0.05; 0 = none).
    #[arg(long, default_value_t = 0.05)]
    ema_rampup_ratio: f64,
    /// Random horizontal flips of the training images.
    #[arg(long)]
    xflip: bool,
    /// Run seed (initialisation, batches, noise, dropout).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Steps between checkpoints (out/checkpoint.safetensors; always one at the end).
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// Steps between 8×8 sample grids (default: --checkpoint-every; always one at the end).
    #[arg(long)]
    grid_every: Option<u64>,
    #[command(flatten)]
    dir: super::flags::RunDir,
}

pub fn run_cmd(a: Args) -> anyhow::Result<()> {
    let device = a.dir.run_on.device()?;
    let (replica, device) = a.dir.dist.join(device)?;
    let writer = replica.as_ref().is_none_or(|r| r.is_writer());
    let kernels = a.dir.speed.apply(device)?;
    let mut options = WarmupOptions::edm(UNetConfig::named(&a.arch)?);
    options.batch = a.batch;
    options.lr = a.lr;
    options.tau_max = a.tau_max;
    options.lr_rampup_kimg = a.lr_rampup_kimg;
    options.ema_halflife_kimg = a.ema_halflife_kimg;
    options.ema_rampup_ratio = a.ema_rampup_ratio;
    options.xflip = a.xflip;
    options.seed = a.seed;
    options.validate()?;
    let data = ImageSet::open(&a.data)?;
    let run_opts = RunOptions {
        steps: a.steps,
        out: a.dir.out.clone(),
        resume: a.dir.resume,
        overwrite: a.dir.overwrite,
        checkpoint_every: a.checkpoint_every,
        grid_every: a.grid_every.unwrap_or(a.checkpoint_every),
        progress: writer && a.dir.quiet.show(),
        max_seconds: a.dir.max_seconds,
        kernels,
        replica,
    };
    let summary = run(&data, options, &run_opts, device)?;
    if writer {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}
