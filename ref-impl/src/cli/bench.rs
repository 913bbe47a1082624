//! `midpoint-train bench warmup --arch ddpmpp --batch 512 --steps N`: throughput on synthetic
//! data, printed as JSON.

use midpoint_train::bench::bench_warmup;
use midpoint_train::edm::UNetConfig;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Warmup steps per second (images/s) and the fraction of the FLOP bound.
    Warmup(WarmupArgs),
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
    }
}
