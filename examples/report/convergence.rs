//! The estimate of `D_mid` (Eq. 2) or `D_t-mid` (Eq. 8) against its exact value as `n`
//! grows, one run per `n`, with its wall time.

use crate::args::Args;
use crate::common::{cases, pair_run, table_head};
use midpoint::estimate::estimate;
use std::fmt::Write as _;
use std::time::Instant;

/// The convergence table.
pub fn run(a: &Args) -> anyhow::Result<String> {
    let mut md = table_head(
        "law | divergence | exact | n per side | estimate | SE | (estimate − exact)/SE | wall s",
    );
    for (l, dv, kind, truth) in cases(a)? {
        for &n in &a.n {
            let (x0, x1, o) = pair_run(&l, kind, n, a.seed);
            let start = Instant::now();
            let r = estimate(x0.view(), x1.view(), &o)?;
            let wall = start.elapsed().as_secs_f64();
            writeln!(
                md,
                "| {} | {dv} | {truth:.5} | {n} | {:.5} | {:.5} | {:+.2} | {wall:.1} |",
                l.name,
                r.estimate,
                r.std_error,
                (r.estimate - truth) / r.std_error
            )?;
            eprintln!(
                "{} {dv} n={n}: {:.5} ± {:.5} (exact {truth:.5})",
                l.name, r.estimate, r.std_error
            );
        }
    }
    Ok(md)
}
