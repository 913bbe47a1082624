//! `midpoint-train panels --run DIR [--run DIR ...] [--max-points N] --out PNG`

use anyhow::Context;
use midpoint_train::train::plot::{scatter_panels, Panel};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output directory of a `toy` run (repeat; the first run's target.npy is the target panel).
    #[arg(long = "run", required = true)]
    runs: Vec<PathBuf>,
    /// Samples drawn per panel (the first N rows; the metrics in the titles use all of them).
    #[arg(long, default_value_t = 20_000)]
    max_points: usize,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
}

fn first_rows(x: ndarray::Array2<f64>, n: usize) -> ndarray::Array2<f64> {
    let n = n.min(x.nrows());
    x.slice(ndarray::s![..n, ..]).to_owned()
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.max_points == 0 {
        anyhow::bail!("--max-points must be at least 1");
    }
    midpoint::io::check_writable(&a.out, "--out")?;
    let target = first_rows(
        midpoint::io::read_samples(&a.runs[0].join("target.npy"))?,
        a.max_points,
    );
    let mut samples = Vec::new();
    let mut titles = Vec::new();
    for dir in &a.runs {
        samples.push(first_rows(
            midpoint::io::read_samples(&dir.join("samples.npy"))?,
            a.max_points,
        ));
        let path = dir.join("metrics.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let m: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid JSON", path.display()))?;
        let variant = m["config"]["variant"].as_str().unwrap_or("?").to_string();
        let energy = m["energy_distance"].as_f64().unwrap_or(f64::NAN);
        // The core crate's estimate when the run has one (runs before it only had the
        // held-out estimate).
        let tmid = match (
            m["tmid_core_estimate"].as_f64(),
            m["tmid_core_std_error"].as_f64(),
        ) {
            (Some(v), Some(se)) => format!("{v:.4} ± {se:.4}"),
            _ => format!("{:.4}", m["tmid_estimate"].as_f64().unwrap_or(f64::NAN)),
        };
        let ratio = m["energy_ratio"]["ratio"]
            .as_f64()
            .map(|r| format!(" (ratio {r:.2})"))
            .unwrap_or_default();
        titles.push(format!(
            "{variant}: energy {energy:.4}{ratio}, D_t-mid {tmid}"
        ));
    }
    let mut panels = vec![Panel {
        title: "target".into(),
        points: &target,
    }];
    for (t, s) in titles.into_iter().zip(&samples) {
        panels.push(Panel {
            title: t,
            points: s,
        });
    }
    scatter_panels(&a.out, &panels)?;
    println!("wrote {}", a.out.display());
    Ok(())
}
