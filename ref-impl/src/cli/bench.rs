//! `midpoint-train bench`: throughput on synthetic data generated in-process.
//!
//! - `bench warmup --arch ddpmpp --batch 512 --steps N`: warmup steps (images/s) against the
//!   FLOP bound, JSON;
//! - `bench inception --batch 250 -n 5000 [--json]`: Inception feature throughput;
//! - `bench mgm --arch ddpmpp --batch 256 --steps N [--precision fp32|bf16]`: iterations of
//!   Algorithm 1 on images (images/s, FLOP-bound fraction, peak GPU memory), JSON;
//! - `bench matmul [--dtype fp32|tf32|bf16] [--n 8192]`: the machine's dense matmul TFLOP/s;
//! - `bench optim --arch ddpmpp`: Adam and EMA updates of one network alone, each kernel;
//! - `bench fid --arch ddpmpp -n 50000 [--ref STATS]`: FID-50K end to end, each phase timed.
//!
//! `bench mgm` and `bench warmup` take the trainers' speed flags (`--adam-kernel`,
//! `--ema-kernel`, `--tf32-matmul`, `--cudnn-benchmark`) and `--peer FILE`, the JSON line of
//! the PyTorch-eager peer measured in the same job: its figure and our ratio are printed
//! beside ours.

use midpoint_train::bench::fid::{bench_fid, FidBenchConfig};
use midpoint_train::bench::matmul::{bench_matmul, MatmulDtype};
use midpoint_train::bench::mgm::{bench_mgm, MgmBenchConfig, Peak};
use midpoint_train::bench::optim::bench_optim;
use midpoint_train::bench::peer::{compare, read_peer, PeerComparison};
use midpoint_train::bench::warmup::bench_warmup;
use midpoint_train::fid::bench::{bench_inception, BenchConfig};
use midpoint_train::fid::Inception;
use midpoint_train::nets::edm::UNetConfig;
use midpoint_train::train::precision::Precision;
use midpoint_train::train::progress::Progress;
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
    /// MGM iterations (critic step + generator step) per second, FLOP-bound fraction, peak
    /// GPU memory.
    Mgm(MgmArgs),
    /// Dense matmul TFLOP/s of this machine (the peak for `bench mgm --peak-tflops`).
    Matmul(MatmulArgs),
    /// Adam and EMA updates of one network alone, per kernel (ms per update).
    Optim(OptimArgs),
    /// FID-N of a fresh one-step generator end to end (generation, features, statistics,
    /// distance), each phase timed.
    Fid(FidArgs),
}

#[derive(Debug, clap::Args)]
struct OptimArgs {
    /// Network: ddpmpp, ddpmpp-noaug, tiny or digits.
    #[arg(long, default_value = "ddpmpp")]
    arch: String,
    /// Timed updates per kernel.
    #[arg(long, default_value_t = 50)]
    reps: u32,
    /// Untimed updates per kernel first.
    #[arg(long, default_value_t = 5)]
    warmup_reps: u32,
    /// Print JSON (else one line per kernel).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    run_on: super::flags::RunOn,
}

/// `--peer FILE` of `bench mgm` and `bench warmup`.
#[derive(Debug, clap::Args)]
struct PeerArg {
    /// The PyTorch-eager peer's JSON line (`mgm_torch.py`'s output) measured on the same GPU
    /// in the same job, at the same mode, precision and batch: printed with our ratio to it.
    #[arg(long)]
    peer: Option<PathBuf>,
}

impl PeerArg {
    fn compare(
        &self,
        mode: &str,
        precision: &str,
        batch: i64,
        images_per_s: f64,
        peak_memory: Option<u64>,
    ) -> anyhow::Result<Option<PeerComparison>> {
        let Some(path) = &self.peer else {
            return Ok(None);
        };
        Ok(Some(compare(
            read_peer(path)?,
            mode,
            precision,
            batch,
            images_per_s,
            peak_memory,
        )?))
    }

    /// Checks the file and its workload before the bench runs (a bad file fails at once,
    /// not after minutes of measuring).
    fn check(&self, mode: &str, precision: &str, batch: i64) -> anyhow::Result<()> {
        self.compare(mode, precision, batch, 1.0, None).map(|_| ())
    }
}

/// `result` as JSON with the speed switches and the peer comparison added.
fn with_extras(
    result: &impl serde::Serialize,
    speed: &super::flags::SpeedFlags,
    peer: &Option<PeerComparison>,
) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(result)?;
    let (tf32, bench) = speed.switches();
    v["tf32_matmul"] = tf32.into();
    v["cudnn_benchmark"] = bench.into();
    v["peer"] = serde_json::to_value(peer)?;
    Ok(v)
}

fn peer_line(peer: &Option<PeerComparison>) -> String {
    match peer {
        None => String::new(),
        Some(c) => format!(
            "; peer {:.1} images/s → ratio {:.3}×{}",
            c.peer.images_per_s,
            c.speed_ratio,
            c.memory_ratio
                .map_or(String::new(), |m| format!(", memory {m:.3}× the peer's"))
        ),
    }
}

#[derive(Debug, clap::Args)]
struct MgmArgs {
    /// Network of both G and f: ddpmpp, ddpmpp-noaug, tiny or digits (8×8 grayscale).
    #[arg(long, default_value = "ddpmpp")]
    arch: String,
    /// Images per batch (two fresh batches per iteration).
    #[arg(long, default_value_t = 256)]
    batch: i64,
    /// Timed iterations.
    #[arg(long, default_value_t = 20)]
    steps: u64,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 3)]
    warmup_steps: u64,
    /// fp32, or bf16 autocast (as `mgm --precision`).
    #[arg(long, value_enum, default_value_t = Precision::Fp32)]
    precision: Precision,
    /// Peak TFLOP/s for the bound (default on CUDA: measured first by `bench matmul`, TF32
    /// for fp32 and bf16 for bf16; on the CPU: none unless --measure-peak).
    #[arg(long, conflicts_with = "measure_peak")]
    peak_tflops: Option<f64>,
    /// Measure the peak with a matmul also on the CPU.
    #[arg(long)]
    measure_peak: bool,
    /// Side of the matrices of the peak measurement.
    #[arg(long, default_value_t = 8192)]
    peak_n: i64,
    /// Timed products of the peak measurement.
    #[arg(long, default_value_t = 50)]
    peak_reps: u32,
    /// Print JSON (else one line).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    run_on: super::flags::RunOn,
    #[command(flatten)]
    speed: super::flags::SpeedFlags,
    #[command(flatten)]
    peer: PeerArg,
    /// After the timed iterations, profile more of them with libtorch's Kineto profiler into
    /// this folder: trace.json (Chrome trace) and ops.tsv (time per operator and kernel); the
    /// largest entries are printed.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Iterations profiled by --profile.
    #[arg(long, default_value_t = 3)]
    profile_iterations: u64,
}

#[derive(Debug, clap::Args)]
struct MatmulArgs {
    /// fp32 (TF32 off), tf32 (CUDA only) or bf16.
    #[arg(long, value_enum, default_value_t = MatmulDtype::Bf16)]
    dtype: MatmulDtype,
    /// Side of the square matrices.
    #[arg(long, default_value_t = 8192)]
    n: i64,
    /// Timed products (after 3 untimed).
    #[arg(long, default_value_t = 50)]
    reps: u32,
    /// Print JSON (else one line).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    run_on: super::flags::RunOn,
}

#[derive(Debug, clap::Args)]
struct WarmupArgs {
    /// Network: ddpmpp, ddpmpp-noaug, tiny or digits (8×8 grayscale).
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
    #[command(flatten)]
    run_on: super::flags::RunOn,
    #[command(flatten)]
    speed: super::flags::SpeedFlags,
    #[command(flatten)]
    peer: PeerArg,
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
    #[command(flatten)]
    with: WithInception,
}

/// The device, weights and output of the benches that run Inception.
#[derive(Debug, clap::Args)]
struct WithInception {
    #[command(flatten)]
    run_on: super::flags::RunOn,
    /// Inception weights (default: $MIDPOINT_INCEPTION or the cache path).
    #[arg(long)]
    inception: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    quiet: super::flags::Quiet,
}

impl WithInception {
    fn load(&self) -> anyhow::Result<Inception> {
        let device = self.run_on.device()?;
        Ok(match &self.inception {
            Some(p) => Inception::load(p, device)?,
            None => Inception::load_default(device)?,
        })
    }
}

/// `bench fid`.
#[derive(Debug, clap::Args)]
struct FidArgs {
    /// The generator's network: ddpmpp, ddpmpp-noaug, tiny or digits.
    #[arg(long, default_value = "ddpmpp")]
    arch: String,
    /// Samples (50,000: FID-50K).
    #[arg(short = 'n', long, default_value_t = 50_000)]
    num: usize,
    /// Samples per batch, for generation and Inception alike.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// Seed of the initialisation and the latents.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Reference statistics (`fid-ref`'s file); without it the distance is taken to the
    /// samples' own statistics, for its cost only.
    #[arg(long = "ref")]
    reference: Option<PathBuf>,
    #[command(flatten)]
    with: WithInception,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    match a.what {
        What::Fid(f) => {
            // The reference first: a malformed file fails before minutes of sampling.
            let reference = match &f.reference {
                Some(p) => Some(midpoint_train::fid::stats_file::load(p)?),
                None => None,
            };
            let inception = f.with.load()?;
            let cfg = FidBenchConfig {
                arch: UNetConfig::named(&f.arch)?,
                images: f.num,
                batch: f.batch,
                seed: f.seed,
            };
            let progress = Progress::new(
                f.num.div_ceil(f.batch.max(1)) as u64,
                "generate+features",
                f.with.quiet.show(),
            );
            let named = f
                .reference
                .as_ref()
                .zip(reference.as_ref())
                .map(|(p, r)| (r, p.display().to_string()));
            let r = bench_fid(&inception, &cfg, named, &progress)?;
            if f.with.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "FID-{} of {} on {}: {:.1} s end to end ({:.1} images/s): generation {:.1} s, features {:.1} s, statistics {:.2} s, distance {:.2} s",
                    r.images, r.arch, r.device, r.total_seconds, r.images_per_s, r.generate_seconds,
                    r.feature_seconds, r.statistics_seconds, r.distance_seconds
                );
            }
            Ok(())
        }
        What::Warmup(w) => {
            let device = w.run_on.device()?;
            let kernels = w.speed.apply(device)?;
            w.peer.check("warmup", "fp32", w.batch as i64)?;
            let arch = UNetConfig::named(&w.arch)?;
            let r = bench_warmup(
                arch,
                w.batch,
                w.steps,
                w.warmup_steps,
                device,
                w.peak_tflops,
                kernels,
            )?;
            // The warmup runs in fp32 (EDM's training); its peak memory is not recorded.
            let peer = w
                .peer
                .compare("warmup", "fp32", w.batch as i64, r.images_per_s, None)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&with_extras(&r, &w.speed, &peer)?)?
            );
            Ok(())
        }
        What::Mgm(m) => {
            let device = m.run_on.device()?;
            let kernels = m.speed.apply(device)?;
            m.peer.check("mgm", m.precision.name(), m.batch)?;
            let peak = match (m.peak_tflops, m.measure_peak || device.is_cuda()) {
                (Some(p), _) => Peak::Given(p),
                (None, true) => Peak::Measure {
                    n: m.peak_n,
                    reps: m.peak_reps,
                },
                (None, false) => Peak::None,
            };
            let config = MgmBenchConfig {
                arch: UNetConfig::named(&m.arch)?,
                batch: m.batch,
                steps: m.steps,
                warmup_steps: m.warmup_steps,
                precision: m.precision,
                peak,
                kernels,
                profile: m.profile.clone().map(|d| (d, m.profile_iterations)),
            };
            let r = bench_mgm(&config, device)?;
            let peer = m.peer.compare(
                "mgm",
                r.precision.name(),
                r.batch,
                r.images_per_s,
                r.peak_gpu_memory_bytes,
            )?;
            if m.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&with_extras(&r, &m.speed, &peer)?)?
                );
            } else {
                let pct = |f: Option<f64>| f.map_or("n/a".into(), |f| format!("{:.1}%", 100.0 * f));
                let gib = |b: Option<u64>| {
                    b.map_or("n/a".into(), |b| {
                        format!("{:.2} GiB", b as f64 / 1073741824.0)
                    })
                };
                println!(
                    "MGM {} {} batch {} on {}: {:.2} it/s, {:.1} images/s, {:.2} TFLOP/s ({} of the bound), peak GPU memory {}{}",
                    r.arch, r.precision.name(), r.batch, r.device, r.iterations_per_s, r.images_per_s,
                    r.achieved_tflops, pct(r.flop_bound_fraction), gib(r.peak_gpu_memory_bytes),
                    peer_line(&peer)
                );
                if let Some(p) = &r.profile {
                    println!(
                        "where the time goes ({} profiled iterations; {}):",
                        p.iterations,
                        p.table.display()
                    );
                    for op in &p.top {
                        println!(
                            "  {:>9.3} ms/it {:>5.1}%  {:>6} calls  [{}] {}",
                            op.ms_per_iteration,
                            100.0 * op.share,
                            op.calls,
                            op.device,
                            op.name
                        );
                    }
                }
            }
            Ok(())
        }
        What::Matmul(m) => {
            let device = m.run_on.device()?;
            let r = bench_matmul(m.dtype, m.n, m.reps, device)?;
            if m.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "matmul {} n = {} on {}: {:.2} TFLOP/s ({} products in {:.3} s)",
                    r.dtype.name(),
                    r.n,
                    r.device,
                    r.tflops,
                    r.reps,
                    r.seconds
                );
            }
            Ok(())
        }
        What::Optim(o) => {
            let device = o.run_on.device()?;
            let r = bench_optim(&UNetConfig::named(&o.arch)?, o.reps, o.warmup_reps, device)?;
            if o.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                for k in &r.kernels {
                    println!(
                        "{} ({} params in {} tensors) on {}: {:<12} {:>9.3} ms per update ({:.2}× plain)",
                        r.arch, r.params, r.tensors, r.device, k.update, k.ms, k.speedup_over_plain
                    );
                }
            }
            Ok(())
        }
        What::Inception(a) => {
            let inception = a.with.load()?;
            let cfg = BenchConfig {
                batch: a.batch,
                images: a.num,
                size: a.size,
                seed: a.seed,
            };
            let progress = Progress::new(
                a.num.div_ceil(a.batch.max(1)) as u64,
                "inception",
                a.with.quiet.show(),
            );
            let r = bench_inception(&inception, &cfg, &progress)?;
            if a.with.json {
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
