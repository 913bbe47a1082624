//! `midpoint-train feature-net --train DIR [--heldout DIR] --out NET.safetensors [--steps 3000]
//! [--seed 0]`: trains the feature network of `image-metrics` once on labelled training images.

use midpoint_train::data::ImageSet;
use midpoint_train::image::feature_net::{FeatureNet, FeatureNetTraining};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Training images in class folders (DIR/0/*.png, DIR/1/*.png, ...).
    #[arg(long)]
    train: PathBuf,
    /// Held-out images in class folders, to report the network's accuracy on.
    #[arg(long)]
    heldout: Option<PathBuf>,
    /// Output file (safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Adam steps of 128 images.
    #[arg(long, default_value_t = 3000)]
    steps: u64,
    /// Seed of the initialisation, batches and shifts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    run_on: super::flags::RunOn,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    midpoint::io::check_writable(&a.out, "--out")?;
    let device = a.run_on.device()?;
    let train = ImageSet::open(&a.train)?;
    let heldout = a.heldout.as_deref().map(ImageSet::open).transpose()?;
    let training = FeatureNetTraining {
        steps: a.steps,
        seed: a.seed,
        ..FeatureNetTraining::default()
    };
    let net = FeatureNet::train(&train, heldout.as_ref(), training, device)?;
    net.save(&a.out)?;
    let info = net.info();
    println!(
        "feature network: train accuracy {:.4}, held-out accuracy {}; wrote {}",
        info.train_accuracy,
        info.heldout_accuracy
            .map_or("-".to_string(), |h| format!("{h:.4}")),
        a.out.display()
    );
    Ok(())
}
