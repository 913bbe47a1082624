//! Coverage of the 95% interval of the estimate of `D_mid` (Eq. 2) or `D_t-mid` (Eq. 8) on
//! laws with exact values: replications at each `n`, with the bias and the mean SE.

use crate::args::Args;
use crate::common::{binom_hw, cases, pair_run, table_head};
use midpoint::estimate::estimate;
use std::fmt::Write as _;

/// The coverage table.
pub fn run(a: &Args) -> anyhow::Result<String> {
    let mut md = table_head("law | divergence | exact | n per side | reps | coverage of 95% CI | mean estimate − exact | mean SE | sd of estimates");
    for (l, dv, kind, truth) in cases(a)? {
        for &n in &a.n {
            let mut cover = 0usize;
            let (mut sum, mut sum2, mut se_sum) = (0.0, 0.0, 0.0);
            for rep in 0..a.reps {
                let s = a.seed.wrapping_mul(1_000_003).wrapping_add(rep as u64);
                let (x0, x1, o) = pair_run(&l, kind, n, s);
                let r = estimate(x0.view(), x1.view(), &o)?;
                cover += (r.ci95[0] <= truth && truth <= r.ci95[1]) as usize;
                sum += r.estimate;
                sum2 += r.estimate * r.estimate;
                se_sum += r.std_error;
            }
            let k = a.reps as f64;
            let mean = sum / k;
            let sd = ((sum2 / k - mean * mean).max(0.0) * k / (k - 1.0)).sqrt();
            let c = cover as f64 / k;
            writeln!(
                md,
                "| {} | {dv} | {truth:.5} | {n} | {} | {:.3} ± {:.3} | {:+.5} | {:.5} | {:.5} |",
                l.name,
                a.reps,
                c,
                binom_hw(c, a.reps),
                mean - truth,
                se_sum / k,
                sd
            )?;
            eprintln!("{} {dv} n={n}: coverage {c:.3}", l.name);
        }
    }
    Ok(md)
}
