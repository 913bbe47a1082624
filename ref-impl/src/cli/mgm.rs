//! `midpoint-train mgm (--warmup CKPT | --init random | --resume) (--data DIR | --synthetic)
//! --out DIR [--steps N] [--batch 256] [--lr 1e-5] [--sigma 0] [--critic-sigma 0.01]
//! [--variant mgm|midpoint] [--ema 0.999] [--arch NAME] [--xflip] [--precision fp32|bf16]
//! [--fid-ref STATS|DIR --fid-every 10000 --fid-n 10000 --final-fid 50000] [--max-seconds S]`

use midpoint_train::methods::mgm::image::{ImageMgm, ImageMgmConfig};
use midpoint_train::methods::mgm::Variant;
use midpoint_train::methods::warmup::Warmup;
use midpoint_train::nets::edm::UNetConfig;
use midpoint_train::train::method::Evaluate;
use midpoint_train::train::precision::Precision;
use midpoint_train::train::progress::Progress;
use midpoint_train::train::run_folder::{Claim, RunFolder};
use midpoint_train::train::run_loop::{self, checkpoint_for};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Init {
    /// EDM's initialisation instead of a warmup (tests and smoke runs only).
    Random,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Warmup checkpoint whose (EMA) weights start the generator and the field.
    #[arg(
        long,
        required_unless_present_any = ["init", "resume"],
        conflicts_with = "init"
    )]
    warmup: Option<PathBuf>,
    /// Start from a fresh network instead of a warmup.
    #[arg(long, value_enum)]
    init: Option<Init>,
    #[command(flatten)]
    images: super::image_run::Images,
    /// Network: ddpmpp, ddpmpp-noaug, tiny or digits (default: the warmup's, or the checkpoint's on
    /// --resume, else ddpmpp).
    #[arg(long)]
    arch: Option<String>,
    /// Mirror training images left–right with probability ½.
    #[arg(long)]
    xflip: bool,
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
    /// Critic updates per generator update (App. B: 1).
    #[arg(long, default_value_t = 1)]
    critic_steps: usize,
    /// Clip each network's gradient norm to this value (default: none, as App. B).
    #[arg(long)]
    clip: Option<f64>,
    /// Learning rate of the field's Adam (default: --lr, as App. B).
    #[arg(long)]
    critic_lr: Option<f64>,
    /// Iterations at the start that update only the field (default 0, as App. B): the field
    /// starts as the warmup's denoiser, worse than f = 0 as a displacement.
    #[arg(long, default_value_t = 0)]
    critic_warmup: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// fp32, or bf16 autocast (forward passes and losses in bf16; weights, gradients and Adam
    /// state in fp32). A checkpoint records it; --resume with another precision is refused.
    #[arg(long, value_enum, default_value_t = Precision::Fp32)]
    precision: Precision,
    #[command(flatten)]
    periodic: super::image_run::Periodic,
    #[command(flatten)]
    dir: super::flags::RunDir,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let device = a.dir.run_on.device()?;
    let (replica, device) = a.dir.dist.join(device)?;
    let writer = replica.as_ref().is_none_or(|r| r.is_writer());
    let kernels = a.dir.speed.apply(device)?;
    // Rank 0 claims the folder (and may clear it for --overwrite); the other ranks only read
    // the checkpoint of a --resume.
    let folder = if writer {
        RunFolder::claim(&a.dir.out, Claim::of(a.dir.resume, a.dir.overwrite)?)?
    } else {
        RunFolder::for_reader(&a.dir.out)
    };
    let ckpt_path = if writer || a.dir.resume {
        checkpoint_for(&a.dir.out, a.dir.resume)?
    } else {
        a.dir.out.join(run_loop::CHECKPOINT)
    };
    // The warmup is opened first (its architecture is the default); on --resume the weights
    // come from the checkpoint and the warmup is not read.
    let warmup = match (&a.warmup, a.dir.resume) {
        (Some(path), false) => Some(Warmup::open(path, device)?),
        _ => None,
    };
    let arch = match (&a.arch, &warmup) {
        (Some(name), _) => UNetConfig::named(name)?,
        (None, Some(w)) => w.options().arch.clone(),
        (None, None) if a.dir.resume => ImageMgm::saved_config(&ckpt_path)?.arch,
        (None, None) => UNetConfig::named("ddpmpp")?,
    };
    let config = ImageMgmConfig {
        variant: a.variant,
        sigma: a.sigma,
        critic_sigma: a.critic_sigma,
        lr: a.lr,
        batch: a.batch,
        ema_decay: a.ema,
        seed: a.seed,
        precision: a.precision,
        critic_steps: a.critic_steps,
        clip: a.clip,
        critic_lr: a.critic_lr,
        critic_warmup: a.critic_warmup,
        ..ImageMgmConfig::paper(arch.clone())
    };
    let mut data = a.images.open(&arch, a.seed, a.xflip)?;
    let described = data.describe();
    let mut mgm = if a.dir.resume {
        ImageMgm::resume(&ckpt_path, config, &described, device)?
    } else {
        match (&warmup, a.init) {
            (Some(w), _) => {
                if w.options().arch != arch {
                    anyhow::bail!(
                        "invalid option: --arch differs from the warmup's network ({:?})",
                        w.options().arch
                    );
                }
                ImageMgm::from_warmup(w.ema().1, config, device)?
            }
            (None, Some(Init::Random)) => ImageMgm::from_random_init(config, device)?,
            (None, None) => anyhow::bail!("give --warmup CKPT, --init random or --resume"),
        }
    }
    .with_kernels(kernels)?;
    drop(warmup);
    let options = a.periodic.options(a.steps as u64, a.dir.max_seconds)?;
    // Every rank computes its share of each FID (docs/distributed.md).
    let mut fid = a.periodic.fid(device, a.seed)?;
    if let Some(r) = replica {
        if let Some(f) = fid.as_mut() {
            f.replica = Some(r.clone());
        }
        mgm = mgm.with_replica(r)?;
    }
    let progress = Progress::new(a.steps as u64, "mgm", writer && a.dir.quiet.show());
    let summary = run_loop::run(
        &mut mgm,
        data.as_mut(),
        &options,
        fid.as_mut().map(|f| f as &mut dyn Evaluate<ImageMgm>),
        &folder,
        &progress,
    )?;
    if writer {
        super::image_run::print_end(&summary, &a.dir.out, |l| {
            format!("L_ψ {:.5}, L_θ {:.5}", l.critic, l.generator)
        });
    }
    Ok(())
}
