//! Null rejection rates of the exact sign-flip test, whose critics are refitted under every
//! sign vector (Prop. 3.2), beside the naive randomization that holds them fixed, on two null
//! laws.

use crate::args::Args;
use crate::common::{binom_hw, kind_of, opts, sample, table_head};
use midpoint::estimate::{signflip_diagnostics, TestKind};
use midpoint::law::{Discrete, Gaussian, Law};
use ndarray::Array1;
use std::fmt::Write as _;
use std::time::Instant;

/// The calibration table.
pub fn run(a: &Args) -> anyhow::Result<String> {
    let mut md = table_head("null law | d | n per side | divergence | reps | B | rejections, exact sign-flip (α = 0.05) | rejection rate, exact sign-flip | rejection rate, naive fixed-critic flip | wall s");
    // (key for `--laws`, table name, law)
    let nulls: Vec<(&str, &str, Law)> = vec![
        (
            "gauss2d",
            "N(0, I₂)",
            Gaussian::isotropic(Array1::zeros(2), 1.0)?.into(),
        ),
        (
            "discrete3",
            "3-atom discrete",
            Discrete::new(
                ndarray::array![[0.0], [1.0], [2.0]],
                ndarray::array![0.5, 0.3, 0.2],
            )?
            .into(),
        ),
    ];
    for known in &a.laws {
        anyhow::ensure!(
            nulls.iter().any(|(key, _, _)| key == known),
            "unknown null law {known:?} (gauss2d, discrete3)"
        );
    }
    let wanted = |key: &str| a.laws.is_empty() || a.laws.iter().any(|l| l == key);
    for (_, name, law) in nulls.iter().filter(|(key, _, _)| wanted(key)) {
        for dv in &a.divergence {
            let kind = kind_of(dv)?;
            for &n in &a.n {
                let start = Instant::now();
                let (mut rej, mut rej_naive) = (0usize, 0usize);
                for rep in 0..a.reps {
                    let s = a.seed.wrapping_mul(1_000_003).wrapping_add(rep as u64);
                    let x0 = sample(law, n, 2 * s);
                    let x1 = sample(law, n, 2 * s + 1);
                    let o = opts(kind, 0.0, TestKind::SignFlip, a.resamples, s);
                    let (p, p_naive) = signflip_diagnostics(x0.view(), x1.view(), &o)?;
                    rej += (p <= 0.05) as usize;
                    rej_naive += (p_naive <= 0.05) as usize;
                }
                let (r, rn) = (rej as f64 / a.reps as f64, rej_naive as f64 / a.reps as f64);
                writeln!(
                    md,
                    "| {name} | {} | {n} | {dv} | {} | {} | {rej} | {:.4} ± {:.4} | {:.3} ± {:.3} | {:.0} |",
                    law.dim(),
                    a.reps,
                    a.resamples,
                    r,
                    binom_hw(r, a.reps),
                    rn,
                    binom_hw(rn, a.reps),
                    start.elapsed().as_secs_f64()
                )?;
                eprintln!(
                    "{name} {dv} n={n}: {rej}/{} = {r:.4} (naive {rn:.3})",
                    a.reps
                );
            }
        }
    }
    Ok(md)
}
