//! `midpoint-train fid-ref --data DIR -o STATS` and
//! `midpoint-train fid --images DIR --ref DIR|STATS [--json]`.

use midpoint_train::fid::png_folder::PngFolder;
use midpoint_train::fid::{frechet_distance, stats_file, Inception, Statistics};
use midpoint_train::progress::Progress;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options shared by both commands.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Images per Inception batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// auto (CUDA if available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// libtorch intra-op threads; 0 keeps libtorch's default (all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Inception weights (default: $MIDPOINT_INCEPTION, else the cache path that
    /// scripts/ensure-inception.sh fills).
    #[arg(long)]
    inception: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl Common {
    fn inception(&self) -> anyhow::Result<Inception> {
        if self.batch == 0 {
            anyhow::bail!("invalid option: --batch must be at least 1");
        }
        super::set_threads(self.threads);
        let device = midpoint_train::device::parse_device(&self.device)?;
        Ok(match &self.inception {
            Some(p) => Inception::load(p, device)?,
            None => Inception::load_default(device)?,
        })
    }

    /// Statistics of a PNG folder.
    fn folder_stats(&self, inception: &Inception, dir: &Path) -> anyhow::Result<Statistics> {
        let folder = PngFolder::open(dir)?;
        let progress = Progress::new(
            folder.num_batches(self.batch) as u64,
            "features",
            super::show_progress(self.quiet),
        );
        progress.message(format!("{} images in {}", folder.len(), dir.display()));
        Ok(midpoint_train::fid::statistics_from_batches(
            inception,
            folder.batches(self.batch),
            &progress,
        )?)
    }
}

/// `fid-ref`: reference statistics of a folder of images.
#[derive(Debug, clap::Args)]
pub struct RefArgs {
    /// Folder of reference PNG images (e.g. the 50,000 CIFAR-10 training images).
    #[arg(long)]
    data: PathBuf,
    /// Output statistics file (.safetensors).
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

pub fn run_ref(a: RefArgs) -> anyhow::Result<()> {
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

/// `fid`: FID between generated images and a reference.
#[derive(Debug, clap::Args)]
pub struct FidArgs {
    /// Folder of generated PNG images.
    #[arg(
        long,
        conflicts_with = "checkpoint",
        required_unless_present = "checkpoint"
    )]
    images: Option<PathBuf>,
    /// Generate the samples from this checkpoint instead of reading --images.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Samples to generate with --checkpoint.
    #[arg(short = 'n', long, default_value_t = 50_000, requires = "checkpoint")]
    num: usize,
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
    if a.checkpoint.is_some() {
        // The generator and its checkpoints are another module of this crate (issue 4's
        // ddpm++ network); until it is wired, this flag is refused rather than ignored.
        anyhow::bail!(
            "--checkpoint (generating {} samples) is not yet available in this build; write the samples as PNG files and pass --images DIR",
            a.num
        );
    }
    let images = a.images.as_deref().expect("clap requires --images");
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
    let generated = a.common.folder_stats(&inception, images)?;
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
