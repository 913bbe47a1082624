//! `midpoint-train mgm (--warmup CKPT | --init random) (--data DIR | --synthetic) --out DIR
//! [--steps N] [--batch 256] [--lr 1e-5] [--sigma 0] [--critic-sigma 0.01]
//! [--variant mgm|midpoint] [--ema 0.999] [--arch ddpmpp] [--resume]`

use midpoint::{Gaussian, Law};
use midpoint_train::edm::UNetConfig;
use midpoint_train::image_mgm::{ImageMgm, ImageMgmConfig, LawImages};
use midpoint_train::mgm::Variant;
use midpoint_train::mgm_run::{run as run_mgm, NoHooks, RunOptions};
use midpoint_train::progress::Progress;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Init {
    /// EDM's initialisation instead of a warmup (tests and smoke runs only).
    Random,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Warmup checkpoint whose (EMA) weights start the generator and the field.
    #[arg(long, required_unless_present = "init", conflicts_with = "init")]
    warmup: Option<PathBuf>,
    /// Start from a fresh network instead of a warmup.
    #[arg(long, value_enum)]
    init: Option<Init>,
    /// Training images: CIFAR-10 binary folder or a folder of PNG images.
    #[arg(
        long,
        required_unless_present = "synthetic",
        conflicts_with = "synthetic"
    )]
    data: Option<PathBuf>,
    /// Train on a fixed Gaussian law over images instead of data (tests and smoke runs).
    #[arg(long)]
    synthetic: bool,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Network: ddpmpp, ddpmpp-noaug or tiny.
    #[arg(long, default_value = "ddpmpp")]
    arch: String,
    /// Iterations of Algorithm 1 (one critic and one generator update each).
    #[arg(long, default_value_t = 200_000)]
    steps: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 256)]
    batch: i64,
    /// Learning rate of both Adams (β1 = 0).
    #[arg(long, default_value_t = 1e-5)]
    lr: f64,
    /// σ of the generator step's interpolant σ_t = sqrt(σ·t(1−t)).
    #[arg(long, default_value_t = 0.0)]
    sigma: f64,
    /// σ' of the critic step's interpolant (critic-only noise, Table 1c).
    #[arg(long, default_value_t = 0.01)]
    critic_sigma: f64,
    /// mgm (t ~ U[0, ½]) or midpoint (t = ½, Table 1d).
    #[arg(long, value_enum, default_value_t = Variant::Mgm)]
    variant: Variant,
    /// Decay of the generator's EMA.
    #[arg(long, default_value_t = 0.999)]
    ema: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sample grid every this many steps (0: none).
    #[arg(long, default_value_t = 1000)]
    grid_every: usize,
    /// Checkpoint every this many steps (0: none).
    #[arg(long, default_value_t = 5000)]
    checkpoint_every: usize,
    /// FID-10k every this many steps (0: none).
    #[arg(long, default_value_t = 10_000)]
    fid_every: usize,
    /// Samples of the periodic FID.
    #[arg(long, default_value_t = 10_000)]
    fid_samples: usize,
    /// Samples of the final FID (0: none).
    #[arg(long, default_value_t = 50_000)]
    final_fid: usize,
    /// Continue from OUT/checkpoint.safetensors.
    #[arg(long)]
    resume: bool,
    /// auto (CUDA if available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// libtorch intra-op threads; 0 keeps libtorch's default.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// The synthetic image law: `N(μ, 0.2²I)` with a smooth colour pattern `μ` in `[−0.4, 0.4]`.
fn synthetic_law(arch: &UNetConfig) -> anyhow::Result<Law> {
    let (c, r) = (arch.img_channels as usize, arch.img_resolution as usize);
    let mean = ndarray::Array1::from_shape_fn(c * r * r, |k| {
        let (ch, i, j) = (k / (r * r), (k / r) % r, k % r);
        0.4 * ((i + j) as f64 * 6.0 / r as f64 + 2.0 * ch as f64).sin()
    });
    Ok(Gaussian::isotropic(mean, 0.04)?.into())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    super::set_threads(a.threads);
    let device = midpoint_train::device::parse_device(&a.device)?;
    let arch = UNetConfig::named(&a.arch)?;
    let config = ImageMgmConfig {
        variant: a.variant,
        sigma: a.sigma,
        critic_sigma: a.critic_sigma,
        lr: a.lr,
        batch: a.batch,
        ema_decay: a.ema,
        seed: a.seed,
        ..ImageMgmConfig::paper(arch.clone())
    };
    if a.resume {
        // TODO(merge, branch `edm`): checkpoint::load of OUT/checkpoint.safetensors, then
        // ImageMgm::load_state and the Adam moments, and continue at its step.
        anyhow::bail!("--resume needs the checkpoint code (not in this build)");
    }
    let mut mgm = match (&a.warmup, a.init) {
        (Some(path), _) => {
            // TODO(merge, branch `edm`): load the warmup checkpoint's EMA weights into a
            // VarStore of EdmPrecond::new(arch) and call ImageMgm::from_warmup.
            anyhow::bail!(
                "{}: loading warmup checkpoints needs the checkpoint code (not in this build); use --init random",
                path.display()
            );
        }
        (None, Some(Init::Random)) => ImageMgm::from_random_init(config, device)?,
        (None, None) => anyhow::bail!("give --warmup CKPT or --init random"),
    };
    let mut data = match &a.data {
        Some(dir) => {
            // TODO(merge, branch `edm`): data::ImageSet::open(dir) with its BatchOrder as an
            // ImageSource.
            anyhow::bail!(
                "{}: image folders need the data loaders (not in this build); use --synthetic",
                dir.display()
            );
        }
        None => {
            let shape = [arch.img_channels, arch.img_resolution, arch.img_resolution];
            LawImages::new(synthetic_law(&arch)?, shape, a.seed)?
        }
    };
    let options = RunOptions {
        steps: a.steps,
        grid_every: a.grid_every,
        checkpoint_every: a.checkpoint_every,
        fid_every: a.fid_every,
        fid_samples: a.fid_samples,
        final_fid_samples: a.final_fid,
    };
    let progress = Progress::new(a.steps as u64, "mgm", super::show_progress(a.quiet));
    let summary = run_mgm(
        &mut mgm,
        &mut data,
        &options,
        &mut NoHooks,
        &a.out,
        &progress,
    )?;
    match summary.final_losses {
        Some(l) => println!(
            "{} steps ({} now) in {:.1} s: L_ψ {:.5}, L_θ {:.5} (last 5%); output in {}",
            summary.steps,
            summary.steps_this_run,
            summary.seconds,
            l.critic,
            l.generator,
            a.out.display()
        ),
        None => println!("nothing to do: {} steps already done", summary.steps),
    }
    Ok(())
}
