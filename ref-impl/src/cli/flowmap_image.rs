//! `midpoint-train flowmap-image --method M (--data DIR | --synthetic) --out DIR [--arch NAME]
//! [--steps N] [--batch 256] [--lr 1e-4] [--fid-ref STATS|DIR ...] [--resume]`: a flow-map
//! baseline on images with MGM's checkpoints, grids, FID and progress.

use midpoint_train::data::ImageSet;
use midpoint_train::data::{DataImages, LawImages};
use midpoint_train::fid::Inception;
use midpoint_train::image::fid_eval::FidEval;
use midpoint_train::methods::flow_map::image::{FlowMapImage, FlowMapImageConfig};
use midpoint_train::methods::flow_map::kind::FlowMapKind;
use midpoint_train::nets::edm::UNetConfig;
use midpoint_train::train::jvp::JvpRoute;
use midpoint_train::train::method::{Batches, Evaluate};
use midpoint_train::train::network::AdamSettings;
use midpoint_train::train::progress::Progress;
use midpoint_train::train::run_folder::{Claim, RunFolder};
use midpoint_train::train::run_loop::{self, checkpoint_for, LoopOptions};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct Images {
    /// Training images: a CIFAR-10 binary folder or a PNG folder.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Synthetic Gaussian images (smoke runs).
    #[arg(long)]
    synthetic: bool,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// fm, lsd, esd, psd-m, psd-u, lmd, emd, fmm, pfmm.
    #[arg(long, value_enum)]
    method: FlowMapKind,
    #[command(flatten)]
    images: Images,
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
    /// How derivatives inside the loss are taken.
    #[arg(long, value_enum, default_value_t = JvpRoute::ForwardMode)]
    jvp: JvpRoute,
    /// Self-distillation: diagonal-only steps (default 10% of --steps).
    #[arg(long)]
    warmup: Option<u64>,
    /// Self-distillation: widening steps (default 10% of --steps).
    #[arg(long)]
    anneal: Option<u64>,
    /// LMD, EMD, PFMM: teacher steps (default half of --steps).
    #[arg(long)]
    teacher_steps: Option<u64>,
    /// FMM's band |t − s| ≤ 1/band.
    #[arg(long, default_value_t = 4)]
    band: usize,
    /// Detach the target term (default: the papers', PSD only).
    #[arg(long)]
    stop_gradient: Option<bool>,
    /// Steps of the sampler behind grids and FID (default 1; 4 for fmm).
    #[arg(long)]
    sample_steps: Option<usize>,
    /// A grid every this many steps.
    #[arg(long, default_value_t = 1000)]
    grid_every: usize,
    /// A checkpoint every this many steps.
    #[arg(long, default_value_t = 5000)]
    checkpoint_every: usize,
    /// FID every this many steps (needs --fid-ref).
    #[arg(long, default_value_t = 10_000)]
    fid_every: usize,
    /// Samples of the periodic FID.
    #[arg(long = "fid-n", default_value_t = 10_000)]
    fid_samples: usize,
    /// FID reference: a statistics file or a folder of images.
    #[arg(long)]
    fid_ref: Option<PathBuf>,
    /// Images per Inception batch.
    #[arg(long, default_value_t = 64)]
    fid_batch: usize,
    /// Inception TorchScript file (default: the cached NVlabs weights).
    #[arg(long)]
    inception: Option<PathBuf>,
    /// Samples of the final FID (0: none).
    #[arg(long, default_value_t = 50_000)]
    final_fid: usize,
    #[command(flatten)]
    dir: super::flags::RunDir,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let device = a.dir.run_on.device()?;
    let folder = RunFolder::claim(&a.dir.out, Claim::of(a.dir.resume, a.dir.overwrite)?)?;
    let ckpt_path = checkpoint_for(&a.dir.out, a.dir.resume)?;
    let arch = UNetConfig::named(&a.arch)?;
    let mut config = FlowMapImageConfig::new(a.method, arch.clone(), a.steps);
    config.adam = AdamSettings {
        lr: a.lr,
        ..config.adam
    };
    config.batch = a.batch;
    config.ema_decay = a.ema;
    config.clip = a.clip;
    config.seed = a.seed;
    config.route = a.jvp;
    config.band = a.band;
    // The schedules default to fractions of --steps; a resumed run that extends --steps keeps
    // those it was started with unless they are given.
    if a.dir.resume {
        let saved = FlowMapImage::saved_config(&ckpt_path)?;
        (config.warmup, config.anneal, config.teacher_steps) =
            (saved.warmup, saved.anneal, saved.teacher_steps);
    }
    if let Some(w) = a.warmup {
        config.warmup = w;
    }
    if let Some(w) = a.anneal {
        config.anneal = w;
    }
    if let Some(t) = a.teacher_steps {
        config.teacher_steps = t;
    }
    if let Some(sg) = a.stop_gradient {
        config.stop_gradient = sg;
    }
    if let Some(k) = a.sample_steps {
        config.sample_steps = k;
    }
    let shape = [arch.img_channels, arch.img_resolution, arch.img_resolution];
    let mut data: Box<dyn Batches> = match &a.images.data {
        Some(dir) => {
            let set = ImageSet::open(dir)?;
            if set.images().size()[1..] != shape {
                anyhow::bail!(
                    "invalid option: {} are {:?} (C, H, W), --arch {} expects {shape:?}",
                    set.source(),
                    &set.images().size()[1..],
                    arch.name
                );
            }
            Box::new(DataImages::new(set, a.seed, a.xflip)?)
        }
        None => Box::new(LawImages::new(
            super::mgm::synthetic_law(&arch)?,
            shape,
            a.seed,
        )?),
    };
    let described = data.describe();
    let mut method = if a.dir.resume {
        FlowMapImage::resume(&ckpt_path, config, &described, device)?
    } else {
        FlowMapImage::new(config, device)?
    };
    let mut fid = match &a.fid_ref {
        Some(r) => {
            if a.fid_batch == 0 {
                anyhow::bail!("invalid option: --fid-batch must be at least 1");
            }
            let inception = match &a.inception {
                Some(p) => Inception::load(p, device)?,
                None => Inception::load_default(device)?,
            };
            let reference = super::mgm::reference_stats(&inception, r, a.fid_batch)?;
            Some(FidEval {
                inception,
                reference,
                batch: a.fid_batch,
                seed: a.seed,
            })
        }
        None => None,
    };
    let options = LoopOptions {
        steps: a.steps,
        grid_every: a.grid_every as u64,
        checkpoint_every: a.checkpoint_every as u64,
        eval_every: a.fid_every as u64,
        eval_samples: a.fid_samples,
        final_eval_samples: a.final_fid,
        max_seconds: a.dir.max_seconds,
    };
    if fid.is_none() && (options.eval_every > 0 || options.final_eval_samples > 0) {
        anyhow::bail!(
            "invalid option: FID needs --fid-ref STATS|DIR (or --fid-every 0 --final-fid 0)"
        );
    }
    let progress = Progress::new(a.steps, a.method.name(), a.dir.quiet.show());
    let summary = run_loop::run(
        &mut method,
        data.as_mut(),
        &options,
        fid.as_mut().map(|f| f as &mut dyn Evaluate<FlowMapImage>),
        &folder,
        &progress,
    )?;
    match summary.final_losses {
        Some(l) => println!(
            "{} steps ({} now) in {:.1} s: loss {:.5} (diagonal {:.5}, map {:.5}; last 5%); output in {}",
            summary.steps,
            summary.steps_this_run,
            summary.seconds,
            l.loss,
            l.diagonal,
            l.map,
            a.dir.out.display()
        ),
        None => println!("nothing to do: {} steps already done", summary.steps),
    }
    if let Some(f) = summary.last_eval {
        println!(
            "FID {:.4} ({} samples) at step {}",
            f.value, f.samples, f.step
        );
    }
    Ok(())
}
