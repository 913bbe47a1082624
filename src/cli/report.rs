//! `midpoint report calibration|coverage|convergence|power`: the measurements behind
//! `docs/two-sample.md` (Markdown tables on stdout or `--out`, plus a PNG for `power`).
//! Hidden from `--help`; every run is reproducible from its arguments.

use anyhow::Context;
use midpoint::divergence::{d_mid, d_tmid, ExactOptions};
use midpoint::estimate::{
    estimate, signflip_diagnostics, DivergenceKind, EstimateOptions, TestKind,
};
use midpoint::law::{Discrete, Gaussian, Law};
use midpoint::StochasticInterpolant;
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    /// Null rejection rate of the sign-flip test (and of the naive fixed-critic version).
    Calibration,
    /// Coverage of the 95% interval on laws with exact values.
    Coverage,
    /// Estimate vs exact value as n grows.
    Convergence,
    /// Power on mean shift, scale shift and blobs.
    Power,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which report.
    #[arg(value_enum)]
    kind: Kind,
    /// Replications.
    #[arg(long, default_value_t = 1000)]
    reps: usize,
    /// Samples per side (comma-separated list).
    #[arg(long, value_delimiter = ',', default_value = "500")]
    n: Vec<usize>,
    /// Resamples of the test.
    #[arg(long, default_value_t = 200)]
    resamples: usize,
    /// Divergences (comma-separated: mid, tmid).
    #[arg(long, value_delimiter = ',', default_value = "tmid")]
    divergence: Vec<String>,
    /// Laws (comma-separated; see `laws()`, and for `calibration` gauss2d, discrete3); empty
    /// means all.
    #[arg(long, value_delimiter = ',')]
    laws: Vec<String>,
    /// Write the Markdown here (and the power PNG beside it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Peers' power table (CSV: scenario,n,method,reps,rejections,mean_wall_s) to merge in.
    #[arg(long)]
    peers: Option<PathBuf>,
    /// Our power rows from an earlier `report power --out` (its `.csv`), instead of
    /// recomputing them.
    #[arg(long)]
    cached: Option<PathBuf>,
    /// Base seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn kind_of(s: &str) -> anyhow::Result<DivergenceKind> {
    match s {
        "mid" => Ok(DivergenceKind::Mid),
        "tmid" => Ok(DivergenceKind::TMid),
        o => anyhow::bail!("unknown divergence {o:?} (mid, tmid)"),
    }
}

/// A test law pair with an exact value route; `sigma` is the interpolant's σ.
struct LawPair {
    name: &'static str,
    p0: Law,
    p1: Law,
    sigma: f64,
}

fn laws() -> Vec<LawPair> {
    let g = |m: Vec<f64>, c: Vec<Vec<f64>>| -> Law {
        let d = m.len();
        Gaussian::new(
            Array1::from(m),
            Array2::from_shape_fn((d, d), |(i, j)| c[i][j]),
        )
        .expect("valid law")
        .into()
    };
    let iso = |m: Vec<f64>| -> Law {
        Gaussian::isotropic(Array1::from(m), 1.0)
            .expect("valid")
            .into()
    };
    let disc = |w: Vec<f64>| -> Law {
        Discrete::new(ndarray::array![[0.0], [1.0], [2.0]], Array1::from(w))
            .expect("valid")
            .into()
    };
    let s10 = 1.0 / 10f64.sqrt();
    vec![
        LawPair {
            name: "gauss1d-shift",
            p0: iso(vec![0.0]),
            p1: iso(vec![1.0]),
            sigma: 0.0,
        },
        LawPair {
            name: "gauss2d-cov",
            p0: iso(vec![0.0, 0.0]),
            p1: g(vec![0.5, 0.0], vec![vec![2.0, 0.5], vec![0.5, 1.0]]),
            sigma: 0.0,
        },
        LawPair {
            name: "discrete3-sigma0.1",
            p0: disc(vec![0.5, 0.3, 0.2]),
            p1: disc(vec![0.2, 0.3, 0.5]),
            sigma: 0.1,
        },
        LawPair {
            name: "gauss10d-shift",
            p0: iso(vec![0.0; 10]),
            p1: iso(vec![s10; 10]),
            sigma: 0.0,
        },
    ]
}

fn sample(law: &Law, n: usize, seed: u64) -> Array2<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    law.sample(n, &mut rng).expect("n > 0")
}

fn opts(
    kind: DivergenceKind,
    sigma: f64,
    test: TestKind,
    resamples: usize,
    seed: u64,
) -> EstimateOptions {
    EstimateOptions {
        divergence: kind,
        interpolant: StochasticInterpolant::linear(sigma).expect("σ ≥ 0"),
        test,
        resamples: Some(resamples),
        seed,
        ..EstimateOptions::default()
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let md = match a.kind {
        Kind::Calibration => calibration(&a)?,
        Kind::Coverage => coverage(&a)?,
        Kind::Convergence => convergence(&a)?,
        Kind::Power => power(&a)?,
    };
    match &a.out {
        Some(p) => {
            std::fs::write(p, &md).with_context(|| format!("{}: cannot write", p.display()))?
        }
        None => print!("{md}"),
    }
    Ok(())
}

fn selected(a: &Args) -> Vec<LawPair> {
    laws()
        .into_iter()
        .filter(|l| a.laws.is_empty() || a.laws.iter().any(|n| n == l.name))
        .collect()
}

fn exact(l: &LawPair, kind: DivergenceKind) -> anyhow::Result<f64> {
    let si = StochasticInterpolant::linear(l.sigma)?;
    let o = ExactOptions::default();
    let e = match kind {
        DivergenceKind::Mid => d_mid(&l.p0, &l.p1, &si, &o)?,
        DivergenceKind::TMid => d_tmid(&l.p0, &l.p1, &si, &o)?,
    };
    anyhow::ensure!(e.std_error.is_none(), "{}: no exact route", l.name);
    Ok(e.value)
}

/// Binomial 95% half-width.
fn binom_hw(p: f64, n: usize) -> f64 {
    1.96 * (p * (1.0 - p) / n as f64).sqrt()
}

fn calibration(a: &Args) -> anyhow::Result<String> {
    let mut md = String::new();
    writeln!(md, "| null law | d | n per side | divergence | reps | B | rejections, exact sign-flip (α = 0.05) | rejection rate, exact sign-flip | rejection rate, naive fixed-critic flip | wall s |")?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|")?;
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

fn coverage(a: &Args) -> anyhow::Result<String> {
    let mut md = String::new();
    writeln!(md, "| law | divergence | exact | n per side | reps | coverage of 95% CI | mean estimate − exact | mean SE | sd of estimates |")?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|")?;
    for l in selected(a) {
        for dv in &a.divergence {
            let kind = kind_of(dv)?;
            let truth = exact(&l, kind)?;
            for &n in &a.n {
                let mut cover = 0usize;
                let (mut sum, mut sum2, mut se_sum) = (0.0, 0.0, 0.0);
                for rep in 0..a.reps {
                    let s = a.seed.wrapping_mul(1_000_003).wrapping_add(rep as u64);
                    let x0 = sample(&l.p0, n, 2 * s);
                    let x1 = sample(&l.p1, n, 2 * s + 1);
                    let r = estimate(
                        x0.view(),
                        x1.view(),
                        &opts(kind, l.sigma, TestKind::None, 1, s),
                    )?;
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
    }
    Ok(md)
}

fn convergence(a: &Args) -> anyhow::Result<String> {
    let mut md = String::new();
    writeln!(md, "| law | divergence | exact | n per side | estimate | SE | (estimate − exact)/SE | wall s |")?;
    writeln!(md, "|---|---|---|---|---|---|---|---|")?;
    for l in selected(a) {
        for dv in &a.divergence {
            let kind = kind_of(dv)?;
            let truth = exact(&l, kind)?;
            for &n in &a.n {
                let x0 = sample(&l.p0, n, 2 * a.seed);
                let x1 = sample(&l.p1, n, 2 * a.seed + 1);
                let start = Instant::now();
                let r = estimate(
                    x0.view(),
                    x1.view(),
                    &opts(kind, l.sigma, TestKind::None, 1, a.seed),
                )?;
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
    }
    Ok(md)
}

/// The power scenarios (shared with `benches/peers/power.py`, which draws the same laws).
fn scenario(name: &str, n: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut z = |rows: usize, cols: usize| -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |_| StandardNormal.sample(&mut rng))
    };
    match name {
        // d = 10, p1 shifted by 0.1 in every coordinate (‖δ‖ ≈ 0.32).
        "mean-shift" => {
            let x0 = z(n, 10);
            let x1 = z(n, 10) + 0.1;
            (x0, x1)
        }
        // d = 10, p1 scaled by 1.1 in every coordinate.
        "scale-shift" => {
            let x0 = z(n, 10);
            let x1 = z(n, 10) * 1.1;
            (x0, x1)
        }
        // Blobs (Gretton et al. 2012; Sutherland et al. 2017): 3×3 grid of Gaussians spaced 10
        // apart in 2-D; p0 isotropic unit components, p1 components with covariance
        // eigenvalues (ε, 1) = (4, 1) rotated by 45°.
        _ => {
            let mut pick = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xB10B);
            let mut centres = |rows: usize| -> Array2<f64> {
                use rand::Rng;
                Array2::from_shape_fn((rows, 2), |_| 10.0 * pick.random_range(0..3) as f64)
            };
            let c0 = centres(n);
            let c1 = centres(n);
            let x0 = z(n, 2) + &c0;
            let e = z(n, 2);
            let (l1, l2) = (2.0f64, 1.0f64); // sqrt of eigenvalues 4 and 1
            let h = std::f64::consts::FRAC_1_SQRT_2;
            let x1 = Array2::from_shape_fn((n, 2), |(i, j)| {
                let (u, v) = (l1 * e[[i, 0]], l2 * e[[i, 1]]);
                let rot = if j == 0 { h * (u - v) } else { h * (u + v) };
                rot + c1[[i, j]]
            });
            (x0, x1)
        }
    }
}

fn power(a: &Args) -> anyhow::Result<String> {
    use midpoint::plot::{line_plot, Curve};
    let scenarios = ["mean-shift", "scale-shift", "blobs"];
    let mut md = String::new();
    writeln!(
        md,
        "| scenario | n per side | method | reps | power (α = 0.05) | mean wall s per test |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|")?;
    let mut rows: Vec<(String, usize, String, usize, f64, f64)> = Vec::new();
    let read_csv = |path: &PathBuf,
                    rows: &mut Vec<(String, usize, String, usize, f64, f64)>|
     -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            anyhow::ensure!(f.len() >= 6, "{}: malformed line {line:?}", path.display());
            let reps: usize = f[3].parse()?;
            let rej: usize = f[4].parse()?;
            if reps > 0 {
                rows.push((
                    f[0].into(),
                    f[1].parse()?,
                    f[2].into(),
                    reps,
                    rej as f64 / reps as f64,
                    f[5].parse()?,
                ));
            }
        }
        Ok(())
    };
    if let Some(c) = &a.cached {
        read_csv(c, &mut rows)?;
    }
    for sc in scenarios {
        if a.cached.is_some() {
            break;
        }
        for &n in &a.n {
            let mut rej = 0;
            let start = Instant::now();
            for rep in 0..a.reps {
                let s = a.seed.wrapping_mul(1_000_003).wrapping_add(rep as u64);
                let (x0, x1) = scenario(sc, n, s);
                let o = opts(
                    DivergenceKind::TMid,
                    0.0,
                    TestKind::SignFlip,
                    a.resamples,
                    s,
                );
                let r = estimate(x0.view(), x1.view(), &o)?;
                rej += (r.p_value.expect("test ran") <= 0.05) as usize;
            }
            let wall = start.elapsed().as_secs_f64() / a.reps as f64;
            let p = rej as f64 / a.reps as f64;
            eprintln!("{sc} n={n}: power {p:.3}");
            rows.push((
                sc.into(),
                n,
                "midpoint (tmid; rff; sign-flip)".into(),
                a.reps,
                p,
                wall,
            ));
        }
    }
    if let Some(out) = &a.out {
        if a.cached.is_none() {
            let mut csv = String::from("scenario,n,method,reps,rejections,mean_wall_s\n");
            for (sc, n, m, reps, p, wall) in &rows {
                let rej = (p * *reps as f64).round() as usize;
                writeln!(csv, "{sc},{n},{m},{reps},{rej},{wall:.4}")?;
            }
            let path = out.with_extension("csv");
            std::fs::write(&path, csv)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
    }
    if let Some(path) = &a.peers {
        read_csv(path, &mut rows)?;
    }
    for (sc, n, m, reps, p, wall) in &rows {
        writeln!(
            md,
            "| {sc} | {n} | {m} | {reps} | {p:.3} ± {:.3} | {wall:.3} |",
            binom_hw(*p, *reps)
        )?;
    }
    if let Some(out) = &a.out {
        for sc in scenarios {
            let mut methods: Vec<&String> =
                rows.iter().filter(|r| r.0 == sc).map(|r| &r.2).collect();
            methods.dedup();
            let curves: Vec<Curve> = methods
                .iter()
                .map(|m| {
                    let pts: Vec<&(String, usize, String, usize, f64, f64)> =
                        rows.iter().filter(|r| r.0 == sc && &r.2 == *m).collect();
                    Curve {
                        label: (*m).clone(),
                        points: pts.iter().map(|r| ((r.1 as f64).log10(), r.4)).collect(),
                        band: Some(
                            pts.iter()
                                .map(|r| {
                                    let h = binom_hw(r.4, r.3);
                                    ((r.4 - h).max(0.0), (r.4 + h).min(1.0))
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            let png = out.with_file_name(format!("power-{sc}.png"));
            line_plot(
                &png,
                &format!("power, {sc} (α = 0.05)"),
                "log10 n per side",
                "rejection rate",
                &curves,
            )?;
        }
    }
    Ok(md)
}
