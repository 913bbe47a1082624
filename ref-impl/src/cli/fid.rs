//! `midpoint-train fid-ref --data DIR -o STATS` and
//! `midpoint-train fid --images DIR|--checkpoint CKPT -n N --ref DIR|STATS [--json]`.

use midpoint_train::data::ImageSet;
use midpoint_train::fid::png_folder::PngFolder;
use midpoint_train::fid::{frechet_distance, stats_file, ImageBatch, Inception, Statistics};
use midpoint_train::methods::warmup::Warmup;
use midpoint_train::train::progress::Progress;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Kind, Tensor};

/// Options shared by both commands.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Images per Inception batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[command(flatten)]
    run_on: super::flags::RunOn,
    /// Inception weights (default: $MIDPOINT_INCEPTION, else the cache path that
    /// scripts/ensure-inception.sh fills).
    #[arg(long)]
    inception: Option<PathBuf>,
    #[command(flatten)]
    quiet: super::flags::Quiet,
}

impl Common {
    fn inception(&self) -> anyhow::Result<Inception> {
        if self.batch == 0 {
            anyhow::bail!("invalid option: --batch must be at least 1");
        }
        let device = self.run_on.device()?;
        Ok(match &self.inception {
            Some(p) => Inception::load(p, device)?,
            None => Inception::load_default(device)?,
        })
    }

    /// Statistics of a folder: CIFAR-10's 50,000 training images when it holds the binary
    /// batches (`data_batch_1.bin`, directly or in `cifar-10-batches-bin/`), else its PNG files.
    fn folder_stats(&self, inception: &Inception, dir: &Path) -> anyhow::Result<Statistics> {
        let is_cifar = [dir.to_path_buf(), dir.join("cifar-10-batches-bin")]
            .iter()
            .any(|d| d.join("data_batch_1.bin").exists());
        if is_cifar {
            let set = ImageSet::open(dir)?;
            let n = set.len();
            let b = self.batch;
            let progress = Progress::new(n.div_ceil(b) as u64, "features", self.quiet.show());
            progress.message(format!("{} images from {}", n, set.source()));
            let batches = (0..n).step_by(b).map(|i| {
                Ok::<_, anyhow::Error>(ImageBatch::Bytes(set.images().narrow(
                    0,
                    i as i64,
                    (b.min(n - i)) as i64,
                )))
            });
            return midpoint_train::fid::statistics_from_batches(inception, batches, &progress);
        }
        let folder = PngFolder::open(dir)?;
        let progress = Progress::new(
            folder.num_batches(self.batch) as u64,
            "features",
            self.quiet.show(),
        );
        progress.message(format!("{} images in {}", folder.len(), dir.display()));
        Ok(midpoint_train::fid::statistics_from_batches(
            inception,
            folder.batches(self.batch),
            &progress,
        )?)
    }
}

impl Common {
    /// Statistics of `n` one-step samples `G(z) = D_ema(2.5·z; 2.5)` of the warmup checkpoint
    /// `ckpt` (§5.1: FID-50K of the EMA generator), latents from `seed`, generated batch by
    /// batch on the Inception device and quantized to bytes like saved images.
    fn generator_stats(
        &self,
        inception: &Inception,
        ckpt: &Path,
        n: usize,
        seed: u64,
    ) -> anyhow::Result<Statistics> {
        let gen = Warmup::open(ckpt, inception.device())?;
        let arch = gen.options().arch.clone();
        let b = self.batch;
        let progress = Progress::new(n.div_ceil(b) as u64, "generate+features", self.quiet.show());
        progress.message(format!("{n} samples of {}", ckpt.display()));
        tch::manual_seed(seed as i64);
        let batches = (0..n).step_by(b).map(|i| {
            let m = b.min(n - i) as i64;
            let shape = [
                m,
                arch.img_channels,
                arch.img_resolution,
                arch.img_resolution,
            ];
            let z = Tensor::randn(shape, (Kind::Float, inception.device()));
            Ok::<_, anyhow::Error>(ImageBatch::Signed(gen.samples(&z)))
        });
        midpoint_train::fid::statistics_from_batches(inception, batches, &progress)
    }
}

/// `fid-ref`: reference statistics of a folder of images.
#[derive(Debug, clap::Args)]
pub struct RefArgs {
    /// Reference images: CIFAR-10's `cifar-10-batches-bin/` (its 50,000 training images) or a
    /// folder of PNG images.
    #[arg(long)]
    data: PathBuf,
    /// Output statistics file (.safetensors).
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

pub fn run_ref(a: RefArgs) -> anyhow::Result<()> {
    midpoint::io::check_writable(&a.out, "--out")?;
    let inception = a.common.inception()?;
    let stats = a.common.folder_stats(&inception, &a.data)?;
    stats_file::save(&stats, &a.out)?;
    println!(
        "reference statistics of {} images written to {}",
        stats.count,
        a.out.display()
    );
    Ok(())
}

/// Where `fid` takes the generated images from: exactly one of the two.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct Generated {
    /// Folder of generated PNG images.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Generate the samples from this checkpoint instead of reading --images.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
}

/// `fid`: FID between generated images and a reference.
#[derive(Debug, clap::Args)]
pub struct FidArgs {
    #[command(flatten)]
    generated: Generated,
    /// Samples to generate with --checkpoint.
    #[arg(short = 'n', long, default_value_t = 50_000, requires = "checkpoint")]
    num: usize,
    /// Seed of the generator's latents with --checkpoint.
    #[arg(long, default_value_t = 0, requires = "checkpoint")]
    seed: u64,
    /// Reference: a statistics file written by `fid-ref`, or a folder of PNG images.
    #[arg(long = "ref")]
    reference: PathBuf,
    /// Also write the statistics of the generated images to this file.
    #[arg(long)]
    save_stats: Option<PathBuf>,
    /// Print JSON (`"fid"`, counts, timing).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

/// What `fid --json` prints.
#[derive(Debug, serde::Serialize)]
struct FidReport {
    fid: f64,
    images: u64,
    reference_images: u64,
    reference: String,
    device: String,
    seconds: f64,
}

pub fn run_fid(a: FidArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    if a.num == 0 {
        anyhow::bail!("invalid option: -n must be at least 1");
    }
    // Read the reference first when it is a file: a malformed file fails before any work.
    let reference = if a.reference.is_file() {
        Some(stats_file::load(&a.reference)?)
    } else if a.reference.is_dir() {
        None
    } else {
        anyhow::bail!(
            "{}: --ref is neither a statistics file nor a folder",
            a.reference.display()
        );
    };
    let inception = a.common.inception()?;
    let generated = match (&a.generated.checkpoint, &a.generated.images) {
        (Some(ckpt), _) => a.common.generator_stats(&inception, ckpt, a.num, a.seed)?,
        (None, Some(images)) => a.common.folder_stats(&inception, images)?,
        (None, None) => anyhow::bail!("one of --images or --checkpoint is required"),
    };
    if let Some(p) = &a.save_stats {
        stats_file::save(&generated, p)?;
    }
    let reference = match reference {
        Some(r) => r,
        None => a.common.folder_stats(&inception, &a.reference)?,
    };
    let fid = frechet_distance(&generated, &reference)?;
    let report = FidReport {
        fid,
        images: generated.count,
        reference_images: reference.count,
        reference: a.reference.display().to_string(),
        device: midpoint_train::device::device_name(inception.device()),
        seconds: start.elapsed().as_secs_f64(),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "FID {:.4} ({} images against {} reference images)",
            report.fid, report.images, report.reference_images
        );
    }
    Ok(())
}
