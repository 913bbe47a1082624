//! `midpoint-train flowmap-image --method M (--data DIR | --synthetic) --out DIR [--arch NAME]
//! [--steps N] [--batch 256] [--lr 1e-4] [--fid-ref STATS|DIR ...] [--resume]`: a flow-map
//! baseline on images with MGM's checkpoints, grids, FID and progress.

use midpoint_train::methods::flow_map::image::{FlowMapImage, FlowMapImageConfig};
use midpoint_train::methods::flow_map::objective::Objective;
use midpoint_train::nets::edm::UNetConfig;
use midpoint_train::train::method::Evaluate;
use midpoint_train::train::network::AdamSettings;
use midpoint_train::train::progress::Progress;
use midpoint_train::train::run_folder::{Claim, RunFolder};
use midpoint_train::train::run_loop::{self, checkpoint_for};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    objective: super::flowmap::ObjectiveFlags,
    #[command(flatten)]
    images: super::image_run::Images,
    /// Network (`info --arch`; default ddpmpp).
    #[arg(long, default_value = "ddpmpp")]
    arch: String,
    /// Horizontal flips of the training images.
    #[arg(long)]
    xflip: bool,
    /// Steps, teacher phase included.
    #[arg(long, default_value_t = 200_000)]
    steps: u64,
    /// Images per step.
    #[arg(long, default_value_t = 256)]
    batch: i64,
    /// Adam's learning rate (β1 0.9, β2 0.999).
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// EMA decay of the map used for grids and FID.
    #[arg(long, default_value_t = 0.999)]
    ema: f64,
    /// Gradient-norm clip (default: none).
    #[arg(long)]
    clip: Option<f64>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Steps of the sampler behind grids and FID (default 1; 4 for fmm).
    #[arg(long)]
    sample_steps: Option<usize>,
    #[command(flatten)]
    periodic: super::image_run::Periodic,
    #[command(flatten)]
    dir: super::flags::RunDir,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let device = a.dir.run_on.device()?;
    let kernels = a.dir.speed.apply(device)?;
    let folder = RunFolder::claim(&a.dir.out, Claim::of(a.dir.resume, a.dir.overwrite)?)?;
    let ckpt_path = checkpoint_for(&a.dir.out, a.dir.resume)?;
    let arch = UNetConfig::named(&a.arch)?;
    let mut config = FlowMapImageConfig::new(a.objective.method, arch.clone(), a.steps);
    config.adam = AdamSettings {
        lr: a.lr,
        ..config.adam
    };
    config.batch = a.batch;
    config.ema_decay = a.ema;
    config.clip = a.clip;
    config.seed = a.seed;
    // The schedules default to fractions of --steps; a resumed run that extends --steps keeps
    // those it was started with unless they are given.
    let base = if a.dir.resume {
        FlowMapImage::saved_config(&ckpt_path)?.objective
    } else {
        Objective::new(a.objective.method, a.steps)
    };
    config.objective = a.objective.objective(base);
    if let Some(k) = a.sample_steps {
        config.sample_steps = k;
    }
    let mut data = a.images.open(&arch, a.seed, a.xflip)?;
    let described = data.describe();
    let mut method = if a.dir.resume {
        FlowMapImage::resume(&ckpt_path, config, &described, device)?
    } else {
        FlowMapImage::new(config, device)?
    }
    .with_kernels(kernels)?;
    let options = a.periodic.options(a.steps, a.dir.max_seconds)?;
    let mut fid = a.periodic.fid(device, a.seed)?;
    let progress = Progress::new(a.steps, a.objective.method.name(), a.dir.quiet.show());
    let summary = run_loop::run(
        &mut method,
        data.as_mut(),
        &options,
        fid.as_mut().map(|f| f as &mut dyn Evaluate<FlowMapImage>),
        &folder,
        &progress,
    )?;
    super::image_run::print_end(&summary, &a.dir.out, |l| {
        format!(
            "loss {:.5}, diagonal {:.5}, map {:.5}",
            l.loss, l.diagonal, l.map
        )
    });
    Ok(())
}
