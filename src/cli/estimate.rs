//! `midpoint estimate --x0 A.npy --x1 B.csv [--divergence mid|tmid] [--sigma S]
//! [--interpolant linear|trig] [--critic rff|knn] [--folds K] [--test signflip|permutation|none]
//! [--permutations B] [--draws R] [--features M] [--seed S] [--json] [--plot profile.png]
//! [--quiet]`

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use midpoint::estimate::cost::{self, CostPlan};
use midpoint::estimate::{
    estimate_with_progress, CriticKind, DivergenceKind, Draws, EstimateError, EstimateOptions,
    EstimateReport, KnnOptions, Progress, RffOptions, Sample, Stage, TestKind,
};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Which {
    /// D_mid = D(½) (Eq. 2).
    Mid,
    /// D_t-mid = ∫₀^½ D(t) dt (Eq. 8).
    Tmid,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Critic {
    /// Random Fourier features + ridge regression (bandwidth and ridge by cross-validation).
    Rff,
    /// k nearest neighbours (k by cross-validation).
    Knn,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Test {
    /// Exact sign-flip randomization test (critics refitted per sign vector, cheap).
    Signflip,
    /// Classical permutation test (whole estimate recomputed per permutation).
    Permutation,
    /// No test.
    None,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Samples of p0: .npy (float32/float64, C or Fortran order) or .csv (header optional).
    #[arg(long)]
    x0: PathBuf,
    /// Samples of p1, same formats and dimension.
    #[arg(long)]
    x1: PathBuf,
    /// Which divergence.
    #[arg(long, value_enum, default_value = "tmid")]
    divergence: Which,
    /// σ of the noise schedule σ_t = sqrt(σ·t(1−t)).
    #[arg(long, default_value_t = 0.0)]
    sigma: f64,
    /// Interpolant: linear or trig.
    #[arg(long, default_value = "linear")]
    interpolant: String,
    /// Critic.
    #[arg(long, value_enum, default_value = "rff")]
    critic: Critic,
    /// Number of folds K (cross-fitting).
    #[arg(long, default_value_t = 2)]
    folds: usize,
    /// Two-sample test.
    #[arg(long, value_enum, default_value = "signflip")]
    test: Test,
    /// Resamples B of the test (default 1000 for signflip, 100 for permutation).
    #[arg(long)]
    permutations: Option<usize>,
    /// Draws of (t, B, ε) per pair (default: clamp(2^17/pairs, 1, 8)).
    #[arg(long)]
    draws: Option<usize>,
    /// Random Fourier features M of the rff critic (at most half its training pairs).
    #[arg(long, default_value_t = 256)]
    features: usize,
    /// Bins of the D(t) profile.
    #[arg(long, default_value_t = 10)]
    bins: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Draw the D(t) profile with its 95% band into this PNG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// No progress bar or progress lines (warnings about the result are still printed).
    #[arg(long)]
    quiet: bool,
}

/// Names the file an estimate error is about.
fn with_file(e: EstimateError, x0: &Path, x1: &Path) -> anyhow::Error {
    match (&e, e.sample()) {
        (EstimateError::DimensionMismatch { d0, d1 }, _) => anyhow::anyhow!(
            "{}: dimension {d1} does not match {} (dimension {d0})",
            x1.display(),
            x0.display()
        ),
        (_, Some(Sample::X0)) => anyhow::anyhow!("{}: {}", x0.display(), strip(&e)),
        (_, Some(Sample::X1)) => anyhow::anyhow!("{}: {}", x1.display(), strip(&e)),
        _ => e.into(),
    }
}

/// The error text without its `x0: `/`x1: ` prefix.
fn strip(e: &EstimateError) -> String {
    let s = e.to_string();
    s.strip_prefix("x0: ")
        .or_else(|| s.strip_prefix("x1: "))
        .unwrap_or(&s)
        .to_string()
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let si = super::common::interpolant(&a.interpolant, a.sigma)?;
    if a.draws == Some(0) {
        bail!("--draws must be at least 1");
    }
    let opts = EstimateOptions {
        divergence: match a.divergence {
            Which::Mid => DivergenceKind::Mid,
            Which::Tmid => DivergenceKind::TMid,
        },
        interpolant: si,
        critic: match a.critic {
            Critic::Rff => CriticKind::Rff(RffOptions {
                features: a.features,
                ..RffOptions::default()
            }),
            Critic::Knn => CriticKind::Knn(KnnOptions::default()),
        },
        folds: a.folds,
        draws: a.draws.map_or(Draws::Auto, Draws::Fixed),
        test: match a.test {
            Test::Signflip => TestKind::SignFlip,
            Test::Permutation => TestKind::Permutation,
            Test::None => TestKind::None,
        },
        resamples: a.permutations,
        profile_bins: a.bins,
        seed: a.seed,
    };
    if let Some(p) = &a.plot {
        if p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            != Some("png".into())
        {
            bail!("{}: --plot writes PNG; use a .png file name", p.display());
        }
        midpoint::io::check_writable(p, "--plot")?;
    }
    let x0 = midpoint::io::read_samples(&a.x0)?;
    let x1 = midpoint::io::read_samples(&a.x1)?;
    let terminal = std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        None,
        if a.quiet || !terminal {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>16} [{bar:40}] {pos}/{len} ({elapsed}, about {eta} left)",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    // Off a terminal (a log file, a batch job) a bar cannot redraw: plain lines instead, every
    // 10% of each stage, once the work has run 5 s (short runs stay silent), after one line
    // saying what is being done.
    let lines = !a.quiet && !terminal;
    let t0 = std::time::Instant::now();
    let announced = std::sync::atomic::AtomicBool::new(false);
    // The cost up front, where it is long enough to matter (RFF critic; a plan that fails
    // leaves the error to the estimate itself). Printed at the first progress report, after
    // the checks of the samples, so that a refused input gets its one line alone.
    let plan_text = if a.quiet {
        None
    } else {
        match cost::plan(x0.nrows(), x1.nrows(), x0.ncols(), &opts) {
            Ok(Some(plan)) => {
                let secs = plan.seconds(cost::measure_rate());
                (secs.iter().sum::<f64>() >= ANNOUNCE_SECONDS)
                    .then(|| plan_line(x0.nrows(), x1.nrows(), x0.ncols(), &plan, secs))
            }
            _ => None,
        }
    };
    let announce = || {
        if !announced.swap(true, std::sync::atomic::Ordering::Relaxed) {
            eprintln!(
                "estimate: {} and {} samples in dimension {}; stages: tuning, fitting critics, held-out terms, test",
                x0.nrows(),
                x1.nrows(),
                x0.ncols()
            );
        }
    };
    let printed = Mutex::new(t0);
    // (stage, its start, tenths reported, its total)
    let last = Mutex::new(None::<(Stage, std::time::Instant, u64, u64)>);
    let on_progress = |p: Progress| {
        if let Some(text) = &plan_text {
            if !announced.swap(true, std::sync::atomic::Ordering::Relaxed) {
                bar.suspend(|| eprintln!("{text}"));
            }
        }
        let mut l = last.lock().expect("progress lock");
        if l.is_none_or(|(stage, _, _, total)| stage != p.stage || total != p.total) {
            *l = Some((p.stage, std::time::Instant::now(), 0, p.total));
            bar.set_message(p.stage.label());
            bar.set_length(p.total);
            bar.reset_eta();
        }
        bar.set_position(p.done);
        let long = lines && t0.elapsed().as_secs() >= 5;
        if let (true, Some((stage, started, tenth, total))) = (long, l.as_mut()) {
            let spent = started.elapsed().as_secs_f64();
            if let Some(line) = progress_line(stage.label(), p.done, *total, tenth, spent) {
                // At most one line per 5 s, and a stage's end only if it took a second.
                let mut last = printed.lock().expect("progress lock");
                let end = p.done >= *total;
                if last.elapsed().as_secs() >= 5 || (end && spent >= 1.0) {
                    *last = std::time::Instant::now();
                    announce();
                    eprintln!("{line}");
                }
            }
        }
    };
    let report = estimate_with_progress(x0.view(), x1.view(), &opts, &on_progress)
        .map_err(|e| with_file(e, &a.x0, &a.x1));
    bar.finish_and_clear();
    let report = report?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    // The report first: a plot that fails to write (a full disk) must not throw it away.
    if a.json {
        outln!("{}", serde_json::to_string(&report)?)?;
    } else {
        print_text(&report);
    }
    if let Some(p) = &a.plot {
        plot_profile(p, &report).map_err(|e| {
            anyhow::anyhow!("the plot was not written ({e:#}); the estimate above is complete")
        })?;
    }
    Ok(())
}

/// Planned work estimated longer than this many seconds is announced before it starts.
const ANNOUNCE_SECONDS: f64 = 5.0;

/// The up-front line: sizes, and the estimated time in total and per stage.
fn plan_line(n0: usize, n1: usize, d: usize, plan: &CostPlan, secs: [f64; 4]) -> String {
    let stages: Vec<String> = cost::STAGES
        .iter()
        .zip(secs)
        .filter(|(_, s)| *s >= 0.5)
        .map(|(name, s)| format!("{name} {}", super::common::duration(s)))
        .collect();
    format!(
        "estimate: {n0} and {n1} samples in dimension {d}; {} pairs × {} draws, RFF critics of {} \
         features, {}; estimated {} ({}; a model of this machine's speed, within ×1.6 where \
         measured)",
        plan.pairs,
        plan.draws,
        plan.features,
        match plan.jackknife_groups {
            0 => "no jackknife".to_string(),
            g => format!("{g} jackknife groups"),
        },
        super::common::duration(secs.iter().sum()),
        stages.join(", ")
    )
}

/// The plain progress line for `done` of `total` units of a stage that has run `spent`
/// seconds, if a new tenth of it was passed since `tenth` (which is advanced); the time left
/// assumes the stage's units cost alike.
fn progress_line(
    label: &str,
    done: u64,
    total: u64,
    tenth: &mut u64,
    spent: f64,
) -> Option<String> {
    let (percent, left) = super::common::tenth_passed(done, total, tenth, spent)?;
    Some(format!(
        "estimate: {label} {percent}% ({spent:.0} s, about {left:.0} s left in this stage)"
    ))
}

fn plot_profile(path: &Path, r: &EstimateReport) -> anyhow::Result<()> {
    use midpoint::plot::{line_plot, Curve};
    let finite: Vec<_> = r
        .profile
        .iter()
        .filter(|b| b.estimate.is_finite())
        .collect();
    let mid = |b: &midpoint::estimate::ProfileBin| 0.5 * (b.t_lo + b.t_hi);
    let band = |v: f64| if v.is_finite() { v } else { 0.0 };
    let curve = Curve {
        label: format!("D(t) estimate ({} critic), 95% band", r.critic),
        points: finite.iter().map(|b| (mid(b), b.estimate)).collect(),
        band: Some(
            finite
                .iter()
                .map(|b| (band(b.ci95[0]), band(b.ci95[1])))
                .collect(),
        ),
    };
    let zero = Curve {
        label: "0 (p0 = p1)".into(),
        points: vec![(0.0, 0.0), (0.5, 0.0)],
        band: None,
    };
    let title = format!(
        "D(t) profile: D_{} = {:.4} (SE {:.4})",
        r.divergence.name().replace("tmid", "t-mid"),
        r.estimate,
        r.std_error
    );
    line_plot(path, &title, "t", "D(t)", &[curve, zero])?;
    Ok(())
}

fn print_text(r: &EstimateReport) {
    let name = match r.divergence {
        DivergenceKind::Mid => "D_mid",
        DivergenceKind::TMid => "D_t-mid",
    };
    println!(
        "{name} ({}, σ_t = {}) between x0 (n0 = {}) and x1 (n1 = {}) in d = {}",
        r.interpolant, r.noise, r.n0, r.n1, r.dim
    );
    println!(
        "  estimate {:.6}  std error {:.6}  95% CI [{:.6}, {:.6}]",
        r.estimate, r.std_error, r.ci95[0], r.ci95[1]
    );
    match r.jackknife_groups {
        Some(g) => println!(
            "  std error: delete-a-group jackknife, critics refitted ({g} groups; t quantile, \
             {} degrees of freedom); given the critics it would be {:.6}",
            g - 1,
            r.std_error_conditional
        ),
        None => println!("  std error: given the fitted critics (no jackknife)"),
    }
    if let Some(p) = r.p_value {
        println!(
            "  {} test of p0 = p1: p = {:.4} ({} resamples)",
            r.test.name(),
            p,
            r.resamples
        );
    }
    println!(
        "  {} pairs ({} + {} samples unused), {} folds, {} draws per pair, {} critic",
        r.pairs, r.unused0, r.unused1, r.folds, r.draws_per_pair, r.critic
    );
    if r.profile.len() > 1 {
        println!("  profile D(t):");
        for b in &r.profile {
            println!(
                "    t ∈ [{:.3}, {:.3}): {:>10.5} ± {:.5}",
                b.t_lo,
                b.t_hi,
                b.estimate,
                1.959_963_984_540_054 * b.std_error
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{plan_line, progress_line};
    use midpoint::estimate::cost::CostPlan;

    #[test]
    fn the_plan_line_names_the_sizes_and_the_stages_that_take_time() {
        let plan = CostPlan {
            pairs: 1000,
            draws: 8,
            features: 2300,
            jackknife_groups: 13,
            blocks: 64,
            flops: [[0.0; 2]; 4],
        };
        assert_eq!(
            plan_line(1000, 1000, 2048, &plan, [62.0, 30.0, 5.0, 0.1]),
            "estimate: 1000 and 1000 samples in dimension 2048; 1000 pairs × 8 draws, RFF \
             critics of 2300 features, 13 jackknife groups; estimated 2 min (tuning 62 s, \
             critics 30 s, jackknife 5 s; a model of this machine's speed, within ×1.6 where \
             measured)"
        );
    }

    #[test]
    fn progress_lines_come_once_per_tenth_with_the_time_left() {
        let mut tenth = 0;
        assert_eq!(
            progress_line("fitting critics", 5, 100, &mut tenth, 1.0),
            None
        );
        assert_eq!(
            progress_line("fitting critics", 25, 100, &mut tenth, 10.0).as_deref(),
            Some("estimate: fitting critics 20% (10 s, about 30 s left in this stage)")
        );
        // The same tenth again: silent; the next one: a line.
        assert_eq!(
            progress_line("fitting critics", 29, 100, &mut tenth, 11.0),
            None
        );
        assert!(progress_line("fitting critics", 30, 100, &mut tenth, 12.0).is_some());
        assert_eq!(
            progress_line("test", 100, 100, &mut tenth, 40.0).as_deref(),
            Some("estimate: test 100% (40 s, about 0 s left in this stage)")
        );
        assert_eq!(progress_line("test", 100, 100, &mut tenth, 40.0), None);
    }
}
