//! Power of the sign-flip test of `D_t-mid` (Eq. 8, Prop. 3.2) on mean shift, scale shift
//! and blobs, beside the peers' rows (`benches/peers/`), with a plot per scenario.

use crate::args::Args;
use crate::common::{binom_hw, opts, table_head};
use anyhow::Context;
use midpoint::estimate::{estimate, DivergenceKind, TestKind};
use midpoint::plot::{line_plot, Curve};
use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// The power scenarios (shared with `benches/peers/peers.py`, which draws the same laws).
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

/// The power table (and, with `--out`, the CSV of our rows and one PNG per scenario).
pub fn run(a: &Args) -> anyhow::Result<String> {
    let scenarios = ["mean-shift", "scale-shift", "blobs"];
    let mut md = table_head(
        "scenario | n per side | method | reps | power (α = 0.05) | mean wall s per test",
    );
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
