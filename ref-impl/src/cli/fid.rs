//! `midpoint-train fid-ref --data DIR -o STATS` and
//! `midpoint-train fid --images DIR|--checkpoint CKPT -n N --ref DIR|STATS [--json]`.

use midpoint_train::data::ImageSet;
use midpoint_train::fid::png_folder::PngFolder;
use midpoint_train::fid::{
    frechet_distance, stats_file, ImageBatch, Inception, Statistics, StreamTiming,
};
use midpoint_train::image::checkpoint_generator::{generated_statistics, CheckpointGenerator};
use midpoint_train::train::progress::Progress;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
        Ok(self.folder_stats_timed(inception, dir)?.0)
    }

    /// [`Common::folder_stats`] with the time of each phase.
    fn folder_stats_timed(
        &self,
        inception: &Inception,
        dir: &Path,
    ) -> anyhow::Result<(Statistics, StreamTiming)> {
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
            return midpoint_train::fid::statistics_from_batches_timed(
                inception, batches, &progress,
            );
        }
        let folder = PngFolder::open(dir)?;
        let progress = Progress::new(
            folder.num_batches(self.batch) as u64,
            "features",
            self.quiet.show(),
        );
        progress.message(format!("{} images in {}", folder.len(), dir.display()));
        Ok(midpoint_train::fid::statistics_from_batches_timed(
            inception,
            folder.batches(self.batch),
            &progress,
        )?)
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
    /// Generate the samples from this checkpoint instead of reading --images: a warmup's
    /// one-step generator, an MGM run's EMA generator or a flow-map run's EMA map.
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
    /// Sampling steps of a flow-map checkpoint (default: the run's own); a one-step generator
    /// accepts only 1.
    #[arg(long, requires = "checkpoint")]
    steps: Option<usize>,
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
    /// What the samples are (with --checkpoint), e.g. `MGM (mgm) step 4000: EMA generator`.
    generator: Option<String>,
    device: String,
    /// Wall clock of the whole command.
    seconds: f64,
    timing: FidTiming,
}

/// Where the time of `fid` went (seconds; the device synchronised between phases).
#[derive(Debug, serde::Serialize)]
struct FidTiming {
    /// Loading the Inception weights (and the generator's checkpoint).
    load_seconds: f64,
    /// Generating the samples, or reading the PNG files.
    generated_source_seconds: f64,
    /// Their features (resize, Inception, float64 sums).
    generated_feature_seconds: f64,
    /// Their `μ` and `Σ`.
    generated_statistics_seconds: f64,
    /// The reference: reading its file, or its images' whole pipeline.
    reference_seconds: f64,
    /// The Fréchet distance (the 2048² matrix square root, on the CPU).
    distance_seconds: f64,
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
    let reference_read = start.elapsed().as_secs_f64();
    let load = Instant::now();
    let inception = a.common.inception()?;
    let generator = match &a.generated.checkpoint {
        Some(ckpt) => Some(CheckpointGenerator::open(
            ckpt,
            inception.device(),
            a.steps,
        )?),
        None => None,
    };
    let load_seconds = load.elapsed().as_secs_f64();
    let (generated, stream) = match (&generator, &a.generated.images) {
        (Some(g), _) => {
            let progress = Progress::new(
                a.num.div_ceil(a.common.batch) as u64,
                "generate+features",
                a.common.quiet.show(),
            );
            progress.message(format!("{} samples: {}", a.num, g.describe()));
            generated_statistics(g, &inception, a.num, a.common.batch, a.seed, &progress)?
        }
        (None, Some(images)) => a.common.folder_stats_timed(&inception, images)?,
        (None, None) => anyhow::bail!("one of --images or --checkpoint is required"),
    };
    if let Some(p) = &a.save_stats {
        stats_file::save(&generated, p)?;
    }
    let (reference, reference_seconds) = match reference {
        Some(r) => (r, reference_read),
        None => {
            let t = Instant::now();
            let r = a.common.folder_stats(&inception, &a.reference)?;
            (r, t.elapsed().as_secs_f64())
        }
    };
    let t = Instant::now();
    let fid = frechet_distance(&generated, &reference)?;
    let distance_seconds = t.elapsed().as_secs_f64();
    let report = FidReport {
        fid,
        images: generated.count,
        reference_images: reference.count,
        reference: a.reference.display().to_string(),
        generator: generator.map(|g| g.describe().to_string()),
        device: midpoint_train::device::device_name(inception.device()),
        seconds: start.elapsed().as_secs_f64(),
        timing: FidTiming {
            load_seconds,
            generated_source_seconds: stream.source_seconds,
            generated_feature_seconds: stream.feature_seconds,
            generated_statistics_seconds: stream.statistics_seconds,
            reference_seconds,
            distance_seconds,
        },
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
