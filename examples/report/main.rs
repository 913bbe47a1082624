//! The measurements behind `docs/two-sample.md`: null calibration of the sign-flip test
//! (Prop. 3.2) beside the naive fixed-critic randomization, coverage of the 95% interval and
//! convergence of the estimate of `D_mid` (Eq. 2) and `D_t-mid` (Eq. 8) on laws with exact
//! values, and power against peers. Markdown tables on stdout or `--out`, plus a PNG for
//! `power`; every run is reproducible from its arguments.
//!
//! ```sh
//! cargo run --release --features diagnostics --example report -- calibration --reps 1000
//! ```
//!
//! It runs with the allocator setup of the `midpoint` binary, so its wall times compare with
//! those of `midpoint estimate`.

#[path = "../../src/allocator.rs"]
mod allocator;
mod args;
mod calibration;
mod common;
mod convergence;
mod coverage;
mod power;

use anyhow::Context;
use args::{Args, Kind};
use clap::Parser;

fn main() {
    allocator::keep_freed_memory();
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(a: Args) -> anyhow::Result<()> {
    let md = match a.kind {
        Kind::Calibration => calibration::run(&a)?,
        Kind::Coverage => coverage::run(&a)?,
        Kind::Convergence => convergence::run(&a)?,
        Kind::Power => power::run(&a)?,
    };
    match &a.out {
        Some(p) => {
            std::fs::write(p, &md).with_context(|| format!("{}: cannot write", p.display()))?
        }
        None => print!("{md}"),
    }
    Ok(())
}
