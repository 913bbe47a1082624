//! `midpoint-train crops --from DIR --out DIR [--size 32] [--held-out-fraction 0.2]
//! [--per-image N] [--seed 0]`: training and held-out crops of photographs that share no pixel.

use midpoint_train::image::crops::{build, CropConfig};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of PNG/JPEG images (colour ones are used, grayscale ones skipped).
    #[arg(long)]
    from: PathBuf,
    /// Output folder: train/, held-out/ and crops.json (train/ and held-out/ must be empty).
    #[arg(long)]
    out: PathBuf,
    /// Side of the square crops (32 for `--data` and `--fid-ref`).
    #[arg(long, default_value_t = 32)]
    size: u32,
    /// Fraction of each image's cells (squares of twice the crop side) held out.
    #[arg(long, default_value_t = 0.2)]
    held_out_fraction: f64,
    /// Crops per image (default: 4 per cell).
    #[arg(long)]
    per_image: Option<usize>,
    /// Seed of the split and of the crop positions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let config = CropConfig {
        size: a.size,
        held_out_fraction: a.held_out_fraction,
        per_image: a.per_image,
        seed: a.seed,
    };
    let s = build(&a.from, &a.out, &config)?;
    for skipped in &s.skipped {
        eprintln!("skipped {}: {}", skipped.image, skipped.reason);
    }
    println!(
        "{} training and {} held-out crops of {}×{} from {} images ({} skipped) in {}",
        s.train,
        s.held_out,
        a.size,
        a.size,
        s.images.len(),
        s.skipped.len(),
        a.out.display()
    );
    Ok(())
}
