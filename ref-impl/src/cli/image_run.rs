//! What the image training commands (`mgm`, `flowmap-image`) share: the training images, and
//! the grids, checkpoints and FID of the run, as flag groups with one way to open each.

use midpoint::{Gaussian, Law};
use midpoint_train::data::{DataImages, ImageSet, LawImages};
use midpoint_train::fid::{stats_file, ImageBatch, Inception, Statistics};
use midpoint_train::image::fid_eval::FidEval;
use midpoint_train::nets::edm::UNetConfig;
use midpoint_train::train::method::Batches;
use midpoint_train::train::progress::Progress;
use midpoint_train::train::run_loop::{LoopOptions, Summary};
use std::path::{Path, PathBuf};

/// The training images: exactly one of the two.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Images {
    /// Training images: CIFAR-10 binary folder or a folder of PNG images.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Train on a fixed Gaussian law over images instead of data (tests and smoke runs).
    #[arg(long)]
    synthetic: bool,
}

impl Images {
    /// The batches of the run: the images (checked against `arch`'s shape), flipped
    /// left–right with probability ½ with `xflip`, or the synthetic law.
    pub fn open(
        &self,
        arch: &UNetConfig,
        seed: u64,
        xflip: bool,
    ) -> anyhow::Result<Box<dyn Batches>> {
        let shape = [arch.img_channels, arch.img_resolution, arch.img_resolution];
        Ok(match &self.data {
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
                Box::new(DataImages::new(set, seed, xflip)?)
            }
            None => Box::new(LawImages::new(synthetic_law(arch)?, shape, seed)?),
        })
    }
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

/// Grids, checkpoints and FID of an image run.
#[derive(Debug, clap::Args)]
pub struct Periodic {
    /// Sample grid every this many steps (0: none).
    #[arg(long, default_value_t = 1000)]
    grid_every: usize,
    /// Checkpoint every this many steps (0: none).
    #[arg(long, default_value_t = 5000)]
    checkpoint_every: usize,
    /// FID every this many steps (0: none; needs --fid-ref).
    #[arg(long, default_value_t = 10_000)]
    fid_every: usize,
    /// Samples of the periodic FID (FID-10k).
    #[arg(long = "fid-n", default_value_t = 10_000)]
    fid_samples: usize,
    /// FID reference: a statistics file of `fid-ref`, or a folder of images (CIFAR-10 binary
    /// or PNG) whose statistics are computed once at the start.
    #[arg(long)]
    fid_ref: Option<PathBuf>,
    /// Images per Inception batch.
    #[arg(long, default_value_t = 64)]
    fid_batch: usize,
    /// Inception weights (default: $MIDPOINT_INCEPTION, else the cache path of
    /// scripts/ensure-inception.sh).
    #[arg(long)]
    inception: Option<PathBuf>,
    /// Samples of the final FID (0: none).
    #[arg(long, default_value_t = 50_000)]
    final_fid: usize,
}

impl Periodic {
    /// The loop's options for `steps` steps and a time limit; FID without a reference is
    /// refused here, before anything runs.
    pub fn options(&self, steps: u64, max_seconds: Option<f64>) -> anyhow::Result<LoopOptions> {
        let options = LoopOptions {
            steps,
            grid_every: self.grid_every as u64,
            checkpoint_every: self.checkpoint_every as u64,
            eval_every: self.fid_every as u64,
            eval_samples: self.fid_samples,
            final_eval_samples: self.final_fid,
            max_seconds,
        };
        if self.fid_ref.is_none() && (options.eval_every > 0 || options.final_eval_samples > 0) {
            anyhow::bail!(
                "invalid option: FID needs --fid-ref STATS|DIR (or --fid-every 0 --final-fid 0)"
            );
        }
        Ok(options)
    }

    /// The FID evaluation against `--fid-ref` (Inception loaded, reference statistics read or
    /// computed), or `None` without one.
    pub fn fid(&self, device: tch::Device, seed: u64) -> anyhow::Result<Option<FidEval>> {
        let Some(r) = &self.fid_ref else {
            return Ok(None);
        };
        if self.fid_batch == 0 {
            anyhow::bail!("invalid option: --fid-batch must be at least 1");
        }
        if !(r.is_file() || r.is_dir()) {
            anyhow::bail!(
                "{}: --fid-ref is neither a statistics file nor a folder",
                r.display()
            );
        }
        let inception = match &self.inception {
            Some(p) => Inception::load(p, device)?,
            None => Inception::load_default(device)?,
        };
        let reference = reference_stats(&inception, r, self.fid_batch)?;
        Ok(Some(FidEval {
            inception,
            reference,
            batch: self.fid_batch,
            seed,
            replica: None,
        }))
    }
}

/// The statistics of `path`: a statistics file, or a folder of images.
fn reference_stats(inception: &Inception, path: &Path, batch: usize) -> anyhow::Result<Statistics> {
    if path.is_file() {
        return Ok(stats_file::load(path)?);
    }
    let set = ImageSet::open(path)?;
    let n = set.len();
    let batches = (0..n).step_by(batch).map(|i| {
        Ok::<_, anyhow::Error>(ImageBatch::Bytes(set.images().narrow(
            0,
            i as i64,
            batch.min(n - i) as i64,
        )))
    });
    midpoint_train::fid::statistics_from_batches(inception, batches, &Progress::hidden())
}

/// The closing lines of an image run: steps, time and `losses` (the method's final window
/// means, as text) with the output folder, or that nothing was left to do; and the last FID.
pub fn print_end<L>(summary: &Summary<L>, out: &Path, losses: impl Fn(&L) -> String) {
    match &summary.final_losses {
        Some(l) => println!(
            "{} steps ({} now) in {:.1} s: {} (last 5%); output in {}",
            summary.steps,
            summary.steps_this_run,
            summary.seconds,
            losses(l),
            out.display()
        ),
        None => println!("nothing to do: {} steps already done", summary.steps),
    }
    if let Some(f) = &summary.last_eval {
        println!(
            "FID {:.4} ({} samples) at step {}",
            f.value, f.samples, f.step
        );
    }
}
