//! `midpoint exact --p0 P0.json --p1 P1.json --divergence {mid,tmid,naive,at-t} [--t T]
//! [--sigma S] [--interpolant linear|trig] [--json] [--quiet]`
//!
//! Long work is visible (issue 16): when the library's plan estimates more than
//! [`LONG_S`] seconds, or the work has run that long, one line on stderr names the route and
//! its estimated cost, then progress follows — a bar on a terminal, otherwise a line per tenth
//! of the time nodes at most every 5 s. `--quiet` silences both.

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use midpoint::law::Law;
use midpoint::{Divergence, ExactOptions, ExactProgress, Method, Plan};
use std::cell::{Cell, RefCell};
use std::io::IsTerminal;
use std::time::Instant;

/// Work estimated (or run) longer than this many seconds is announced.
const LONG_S: f64 = 2.0;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Which {
    /// D_mid = D(½) (Eq. 2).
    Mid,
    /// D_t-mid = ∫₀^½ D(t) dt (Eq. 8, not averaged over t).
    Tmid,
    /// The naive unflipped ∫₀¹ (Eq. 3).
    Naive,
    /// D(t) of the flipped observation at --t.
    AtT,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    laws: midpoint::command_line::LawPair,
    /// Which divergence.
    #[arg(long, value_enum)]
    divergence: Which,
    /// Time for --divergence at-t, in [0, 1].
    #[arg(long, allow_negative_numbers = true)]
    t: Option<f64>,
    /// σ of the noise schedule σ_t = sqrt(σ·t(1−t)); 0 is the deterministic interpolant.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    sigma: f64,
    /// Interpolant: linear or trig.
    #[arg(long, default_value = "linear")]
    interpolant: String,
    /// Target relative error of quadrature.
    #[arg(long, default_value_t = 1e-10)]
    rel_tol: f64,
    /// Monte Carlo draws if no exact route applies.
    #[arg(long, default_value_t = 1 << 22)]
    mc_samples: usize,
    /// Seed of the Monte Carlo fallback.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// No cost estimate or progress on stderr.
    #[arg(long)]
    quiet: bool,
}

/// `a Gaussian`, `a discrete law of 1000000 points`.
fn describe(p: &Law) -> String {
    match p {
        Law::Gaussian(_) => "a Gaussian".into(),
        Law::Discrete(q) => format!("a discrete law of {} points", q.len()),
    }
}

/// The up-front line: what is computed, by which route, and its estimated cost.
fn plan_line(what: &str, p0: &Law, p1: &Law, plan: &Plan) -> String {
    let route = match plan.method {
        Method::MonteCarlo => format!(
            "no exact route within the work limit; Monte Carlo with the exact field, {} draws",
            plan.units
        ),
        _ => format!("quadrature over t, about {} time nodes", plan.units),
    };
    format!(
        "exact: {what} between {} and {} in dimension {}: {route}, estimated {}",
        describe(p0),
        describe(p1),
        p0.dim(),
        super::common::duration(plan.seconds)
    )
}

/// The plain progress line for `done` of `total` time nodes after `spent` seconds, if a new
/// tenth was passed since `tenth` (which is advanced).
fn progress_line(done: u64, total: u64, tenth: &mut u64, spent: f64) -> Option<String> {
    let (percent, left) = super::common::tenth_passed(done, total, tenth, spent)?;
    Some(format!(
        "exact: {percent}% of about {total} time nodes ({spent:.0} s, about {left:.0} s left)"
    ))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let which = match (a.divergence, a.t) {
        (Which::AtT, Some(t)) => Divergence::AtT(t),
        (Which::AtT, None) => bail!("--divergence at-t needs --t"),
        (_, Some(_)) => bail!("--t only applies to --divergence at-t"),
        (Which::Mid, None) => Divergence::Mid,
        (Which::Tmid, None) => Divergence::TMid,
        (Which::Naive, None) => Divergence::Naive,
    };
    let si = super::common::interpolant(&a.interpolant, a.sigma)?;
    let (p0, p1) = a.laws.read()?;
    let opts = ExactOptions {
        rel_tol: a.rel_tol,
        mc_samples: a.mc_samples,
        seed: a.seed,
        ..ExactOptions::default()
    };
    let what = match which {
        Divergence::Mid => "D_mid",
        Divergence::TMid => "D_t-mid",
        Divergence::Naive => "D_naive",
        Divergence::AtT(_) => "D(t)",
    };
    let terminal = std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({elapsed}, about {eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message("time nodes");
    let t0 = Instant::now();
    let plan = Cell::new(None::<Plan>);
    let announced = Cell::new(false);
    let (tenth, printed) = (Cell::new(0u64), RefCell::new(t0));
    // Announce once the plan says the work is long, or once it has run LONG_S.
    let announce = || {
        if a.quiet || announced.get() {
            return;
        }
        let long =
            plan.get().is_some_and(|p| p.seconds > LONG_S) || t0.elapsed().as_secs_f64() > LONG_S;
        if let (true, Some(p)) = (long, plan.get()) {
            announced.set(true);
            eprintln!("{}", plan_line(what, &p0, &p1, &p));
            if terminal {
                bar.set_draw_target(ProgressDrawTarget::stderr());
            }
        }
    };
    let on_progress = |e: ExactProgress| match e {
        ExactProgress::Plan(p) => {
            plan.set(Some(p));
            announce();
        }
        ExactProgress::Step { done, total } => {
            bar.set_length(total);
            bar.set_position(done);
            announce();
            if announced.get() && !terminal {
                let mut t = tenth.get();
                let line = progress_line(done, total, &mut t, t0.elapsed().as_secs_f64());
                tenth.set(t);
                let mut last = printed.borrow_mut();
                if let (Some(line), true) = (line, last.elapsed().as_secs() >= 5) {
                    *last = Instant::now();
                    eprintln!("{line}");
                }
            }
        }
    };
    let e =
        midpoint::divergence::divergence_with_progress(&p0, &p1, &si, which, &opts, &on_progress);
    bar.finish_and_clear();
    let e = e?;
    let t = match which {
        Divergence::AtT(t) => Some(t),
        _ => None,
    };
    if a.json {
        let obj = serde_json::json!({
            "divergence": which.name(),
            "value": e.value,
            "error_bound": e.error_bound,
            "method": e.method.to_string(),
            "std_error": e.std_error,
            "samples": e.samples,
            "t": t,
            "sigma": a.sigma,
            "interpolant": si.interpolant().name(),
            "dim": p0.dim(),
        });
        outln!("{obj}")?;
    } else {
        let name = match which {
            Divergence::Mid => "D_mid".to_string(),
            Divergence::TMid => "D_t-mid".to_string(),
            Divergence::Naive => "D_naive (Eq. 3)".to_string(),
            Divergence::AtT(t) => format!("D({t})"),
        };
        outln!(
            "{name} = {:.15e} ± {:.2e} ({})",
            e.value,
            e.error_bound,
            e.method
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::progress_line;

    #[test]
    fn progress_lines_come_once_per_tenth_with_the_time_left() {
        let mut tenth = 0;
        assert_eq!(progress_line(3, 65, &mut tenth, 1.0), None);
        assert_eq!(
            progress_line(13, 65, &mut tenth, 10.0).as_deref(),
            Some("exact: 20% of about 65 time nodes (10 s, about 40 s left)")
        );
        assert_eq!(progress_line(14, 65, &mut tenth, 11.0), None);
        assert!(progress_line(20, 65, &mut tenth, 12.0).is_some());
    }
}
