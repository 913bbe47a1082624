//! `midpoint exact --p0 P0.json --p1 P1.json --divergence {mid,tmid,naive,at-t} [--t T]
//! [--sigma S] [--interpolant linear|trig] [--json]`

use anyhow::bail;
use midpoint::{Divergence, ExactOptions};

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
    let e = midpoint::divergence::divergence(&p0, &p1, &si, which, &opts)?;
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
