//! What the measurements share: the law pairs with exact values, samples, estimate options,
//! the exact `D_mid` (Eq. 2) or `D_t-mid` (Eq. 8) of a pair, and the binomial half-width.

use crate::args::Args;
use midpoint::divergence::{d_mid, d_tmid, ExactOptions};
use midpoint::estimate::{DivergenceKind, EstimateOptions, TestKind};
use midpoint::law::{Discrete, Gaussian, Law};
use midpoint::StochasticInterpolant;
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// `mid` or `tmid`.
pub fn kind_of(s: &str) -> anyhow::Result<DivergenceKind> {
    match s {
        "mid" => Ok(DivergenceKind::Mid),
        "tmid" => Ok(DivergenceKind::TMid),
        o => anyhow::bail!("unknown divergence {o:?} (mid, tmid)"),
    }
}

/// A test law pair with an exact value route; `sigma` is the interpolant's σ.
#[derive(Clone)]
pub struct LawPair {
    pub name: &'static str,
    pub p0: Law,
    pub p1: Law,
    pub sigma: f64,
}

/// The pairs of `--laws`.
pub fn laws() -> Vec<LawPair> {
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

/// `n` samples of `law` from `seed`.
pub fn sample(law: &Law, n: usize, seed: u64) -> Array2<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    law.sample(n, &mut rng).expect("n > 0")
}

/// The estimate's options for one run.
pub fn opts(
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

/// The pairs `--laws` asks for.
fn selected(a: &Args) -> Vec<LawPair> {
    laws()
        .into_iter()
        .filter(|l| a.laws.is_empty() || a.laws.iter().any(|n| n == l.name))
        .collect()
}

/// The exact value of `kind` for a pair.
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

/// The head of a Markdown table with the columns `columns` (`a | b | …`): their names, then
/// the separator row.
pub fn table_head(columns: &str) -> String {
    let n = columns.split(" | ").count();
    format!("| {columns} |\n|{}\n", "---|".repeat(n))
}

/// A run on a pair: `n` samples per side from seeds `2s` and `2s + 1`, and the options of an
/// estimate of `kind` without a test from seed `s`.
pub fn pair_run(
    l: &LawPair,
    kind: DivergenceKind,
    n: usize,
    s: u64,
) -> (Array2<f64>, Array2<f64>, EstimateOptions) {
    let x0 = sample(&l.p0, n, 2 * s);
    let x1 = sample(&l.p1, n, 2 * s + 1);
    (x0, x1, opts(kind, l.sigma, TestKind::None, 1, s))
}

/// Binomial 95% half-width.
pub fn binom_hw(p: f64, n: usize) -> f64 {
    1.96 * (p * (1.0 - p) / n as f64).sqrt()
}

/// Every pair `--laws` asks for with every divergence of `--divergence`: `(pair, the
/// divergence's name, its kind, its exact value)`, in the order of the tables' rows.
pub fn cases(a: &Args) -> anyhow::Result<Vec<(LawPair, &str, DivergenceKind, f64)>> {
    let mut out = Vec::new();
    for l in selected(a) {
        for dv in &a.divergence {
            let kind = kind_of(dv)?;
            let truth = exact(&l, kind)?;
            out.push((l.clone(), dv.as_str(), kind, truth));
        }
    }
    Ok(out)
}
