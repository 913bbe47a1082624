//! `midpoint-train image-metrics (--checkpoint CKPT | --images DIR) --train DIR --heldout DIR
//! --features NET [-n N] [--seed 0] [--out FILE.json] [--grid FILE.png]`: generated images
//! against held-out ones (`image::sample_metrics`).

use midpoint_train::data::ImageSet;
use midpoint_train::image::checkpoint_generator::CheckpointGenerator;
use midpoint_train::image::feature_net::FeatureNet;
use midpoint_train::image::sample_metrics::{measure, ImageMetrics};
use midpoint_train::train::grid::write_grid;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The generated images: exactly one of the two.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct Generated {
    /// A warmup checkpoint (its one-step EMA generator D(2.5·z; 2.5), the MGM init), an MGM
    /// checkpoint (its EMA generator) or an image flow-map checkpoint (its EMA map).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// A folder of PNG images.
    #[arg(long)]
    images: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    generated: Generated,
    /// Training images (the memorization reference, and the Fréchet floor).
    #[arg(long)]
    train: PathBuf,
    /// Held-out images (what the generated images are compared with).
    #[arg(long)]
    heldout: PathBuf,
    /// Feature network of `midpoint-train feature-net`.
    #[arg(long)]
    features: PathBuf,
    /// Images to generate from --checkpoint (default: as many as training images).
    #[arg(short = 'n', long)]
    n: Option<usize>,
    /// Seed of the latents and of the estimator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sampling steps of a flow-map checkpoint (default: the run's own); a one-step generator
    /// accepts only 1.
    #[arg(long, requires = "checkpoint")]
    steps: Option<usize>,
    /// Also write the report here (JSON).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the first 64 generated images as a grid (PNG).
    #[arg(long)]
    grid: Option<PathBuf>,
    #[command(flatten)]
    run_on: super::flags::RunOn,
}

/// `n` samples of the generator of a checkpoint ([`CheckpointGenerator`]), on the CPU,
/// latents drawn on the CPU in batches of 256.
fn generate(
    path: &Path,
    n: usize,
    seed: u64,
    steps: Option<usize>,
    device: Device,
) -> anyhow::Result<Tensor> {
    let g = CheckpointGenerator::open(path, device, steps)?;
    let [c, h, w] = g.image_shape();
    tch::manual_seed(seed as i64);
    let parts: Vec<Tensor> = (0..n)
        .step_by(256)
        .map(|i| {
            let m = 256.min(n - i) as i64;
            let z = Tensor::randn([m, c, h, w], (Kind::Float, Device::Cpu));
            g.sample(&z).to_device(Device::Cpu)
        })
        .collect();
    Ok(Tensor::cat(&parts, 0))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    // Outputs first: nothing is measured for a file that cannot be written.
    if let Some(out) = &a.out {
        midpoint::io::check_writable(out, "--out")?;
    }
    if let Some(grid) = &a.grid {
        midpoint::io::check_writable(grid, "--grid")?;
    }
    let device = a.run_on.device()?;
    let train = ImageSet::open(&a.train)?;
    let heldout = ImageSet::open(&a.heldout)?;
    let net = FeatureNet::load(&a.features, device)?;
    let generated = match (&a.generated.checkpoint, &a.generated.images) {
        (Some(ckpt), _) => generate(ckpt, a.n.unwrap_or(train.len()), a.seed, a.steps, device)?,
        (None, Some(dir)) => ImageSet::open(dir)?.all(),
        (None, None) => unreachable!("clap requires one of --checkpoint and --images"),
    };
    if let Some(g) = &a.grid {
        let k = generated.size()[0].min(64);
        write_grid(g, &generated.narrow(0, 0, k), 8)?;
    }
    let m: ImageMetrics = measure(&generated, &train, &heldout, &net, a.seed)?;
    let json = serde_json::to_string_pretty(&m)?;
    // The report first: a file that still fails to write (a full disk) costs only the file.
    println!("{json}");
    if let Some(out) = &a.out {
        midpoint_train::train::run_dir::write_atomic(out, json.as_bytes()).map_err(|e| {
            anyhow::anyhow!("{e}; the metrics above are complete but were not saved")
        })?;
    }
    Ok(())
}
