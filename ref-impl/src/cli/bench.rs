//! `midpoint-train bench`: throughput on synthetic data generated in-process.
//!
//! - `bench warmup --arch ddpmpp --batch 512 --steps N`: warmup steps (images/s) against the
//!   FLOP bound, JSON;
//! - `bench inception --batch 250 -n 5000 [--json]`: Inception feature throughput.

use midpoint_train::bench::bench_warmup;
use midpoint_train::edm::UNetConfig;
use midpoint_train::fid::bench::{bench_inception, BenchConfig};
use midpoint_train::fid::Inception;
use midpoint_train::progress::Progress;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Warmup steps per second (images/s) and the fraction of the FLOP bound.
    Warmup(WarmupArgs),
    /// Inception feature throughput (images/s) on synthetic images made in-process.
    Inception(InceptionArgs),
}

#[derive(Debug, clap::Args)]
struct WarmupArgs {
    /// Network: ddpmpp, ddpmpp-noaug or tiny.
    #[arg(long, default_value = "ddpmpp")]
    arch: String,
    /// Images per step.
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: u64,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    warmup_steps: u64,
    /// Peak TFLOP/s for the bound (default on CUDA: 494.7, H100/H200 SXM dense TF32).
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// auto (CUDA if available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// libtorch intra-op threads; 0 keeps libtorch's default.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Debug, clap::Args)]
struct InceptionArgs {
    /// Images per batch.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// Images to time (whole batches; one more batch warms up untimed).
    #[arg(short = 'n', long, default_value_t = 5000)]
    num: usize,
    /// Side of the synthetic square uint8 images.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Seed of the synthetic pixels.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// auto (CUDA if available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// libtorch intra-op threads; 0 keeps libtorch's default (all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Inception weights (default: $MIDPOINT_INCEPTION or the cache path).
    #[arg(long)]
    inception: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    match a.what {
        What::Warmup(w) => {
            super::set_threads(w.threads);
            let device = midpoint_train::device::parse_device(&w.device)?;
            let arch = UNetConfig::named(&w.arch)?;
            let r = bench_warmup(
                arch,
                w.batch,
                w.steps,
                w.warmup_steps,
                device,
                w.peak_tflops,
            )?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
        What::Inception(a) => {
            super::set_threads(a.threads);
            let device = midpoint_train::device::parse_device(&a.device)?;
            let inception = match &a.inception {
                Some(p) => Inception::load(p, device)?,
                None => Inception::load_default(device)?,
            };
            let cfg = BenchConfig {
                batch: a.batch,
                images: a.num,
                size: a.size,
                seed: a.seed,
            };
            let progress = Progress::new(
                a.num.div_ceil(a.batch.max(1)) as u64,
                "inception",
                super::show_progress(a.quiet),
            );
            let r = bench_inception(&inception, &cfg, &progress)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "Inception features: {:.1} images/s on {} ({} images of {}×{} in batches of {}, {:.2} s)",
                    r.images_per_s, r.device, r.images, r.input_size, r.input_size, r.batch, r.seconds
                );
            }
            Ok(())
        }
    }
}
