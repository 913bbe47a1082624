//! Bias and spread of the `D_t-mid` (or `D_mid`) estimate on the 10-D shift pair
//! `N(0, I₁₀)` against `N(𝟙/√10, I₁₀)` (exact `D_t-mid` 0.829421, `D_mid` 1) for one critic
//! setting, over `reps` independent replications: the development runs behind the cubic
//! terms and the undersmoothing of the RFF critic (`docs/two-sample.md`, step 4).
//!
//! ```sh
//! cargo run --release --example critic_bias -- N REPS CUBIC UNDERSMOOTH FEATURES [mid|tmid]
//! cargo run --release --example critic_bias -- 10000 10 auto 0.003 256      # the default
//! cargo run --release --example critic_bias -- 10000 10 off 0.01 256        # no cubic terms
//! ```
use midpoint::estimate::{
    estimate, CriticKind, DivergenceKind, EstimateOptions, RffOptions, TestKind,
};
use midpoint::law::{Gaussian, Law};
use ndarray::Array1;
use rand::SeedableRng;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        a.len() >= 6,
        "usage: critic_bias N REPS auto|on|off UNDERSMOOTH FEATURES [mid|tmid]"
    );
    let (n, reps): (usize, u64) = (a[1].parse()?, a[2].parse()?);
    let cubic = match a[3].as_str() {
        "auto" => None,
        "on" => Some(true),
        "off" => Some(false),
        o => anyhow::bail!("cubic must be auto, on or off, not {o:?}"),
    };
    let (undersmooth, features): (f64, usize) = (a[4].parse()?, a[5].parse()?);
    let (divergence, exact) = match a.get(6).map(String::as_str) {
        Some("mid") => (DivergenceKind::Mid, 1.0),
        _ => (DivergenceKind::TMid, 0.829421),
    };
    let p0: Law = Gaussian::isotropic(Array1::zeros(10), 1.0)?.into();
    let p1: Law = Gaussian::isotropic(Array1::from_elem(10, 10f64.sqrt().recip()), 1.0)?.into();
    let (mut sum, mut sum2, mut se) = (0.0, 0.0, 0.0);
    for rep in 0..reps {
        let mut r0 = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(100 + 2 * rep);
        let mut r1 = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(101 + 2 * rep);
        let (x0, x1) = (p0.sample(n, &mut r0)?, p1.sample(n, &mut r1)?);
        let opts = EstimateOptions {
            divergence,
            critic: CriticKind::Rff(RffOptions {
                features,
                undersmooth: Some(undersmooth),
                cubic,
                ..RffOptions::default()
            }),
            test: TestKind::None,
            seed: rep,
            ..EstimateOptions::default()
        };
        let r = estimate(x0.view(), x1.view(), &opts)?;
        sum += r.estimate;
        sum2 += r.estimate * r.estimate;
        se += r.std_error;
    }
    let k = reps as f64;
    let mean = sum / k;
    let sd = ((sum2 / k - mean * mean).max(0.0) * k / (k - 1.0).max(1.0)).sqrt();
    println!(
        "n={n} reps={reps} cubic={} undersmooth={undersmooth} features={features}: \
         mean {mean:.4} (exact {exact}, bias {:+.4} ± {:.4}), sd {sd:.4}, mean SE {:.4}",
        a[3],
        mean - exact,
        sd / k.sqrt(),
        se / k
    );
    Ok(())
}
