//! `midpoint sample --law L.json -n N --seed S -o OUT.npy|OUT.csv`

use anyhow::bail;
use rand::SeedableRng;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Law file (JSON: gaussian or discrete).
    #[arg(long)]
    law: PathBuf,
    /// Number of samples.
    #[arg(short = 'n', long = "n")]
    n: usize,
    /// Random seed (xoshiro256++ seeded through SplitMix64).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output file: .npy (float64) or .csv.
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.n == 0 {
        bail!("-n must be at least 1");
    }
    // The name and the folder first: nothing is drawn for a file that cannot be written.
    midpoint::io::check_extension(&a.out)?;
    midpoint::io::check_writable(&a.out, "-o")?;
    let law = midpoint::io::read_law(&a.law)?;
    // The samples and the sampler's working copy: refused here rather than aborting later.
    midpoint::resources::check_fits(
        &format!("-n {}: {} samples of dimension {}", a.n, a.n, law.dim()),
        &[a.n as u128, law.dim() as u128, 2],
        8,
    )?;
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(a.seed);
    let x = law.sample(a.n, &mut rng)?;
    midpoint::io::write_samples(&a.out, &x)?;
    Ok(())
}
