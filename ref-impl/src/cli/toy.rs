//! `midpoint-train toy --data D --variant V [...] --out DIR`

use midpoint_train::methods::mgm::toy::ToyOptimization;
use midpoint_train::methods::mgm::Variant;
use midpoint_train::toy::critic_check::CriticFit;
use midpoint_train::toy::run::{run_toy, ToyConfig, ToyMethod};
use midpoint_train::toy::targets::Target;
use midpoint_train::train::progress::Progress;
use midpoint_train::train::run_folder::{Claim, RunFolder};
use std::path::PathBuf;

/// `--lr-schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LrSchedule {
    /// Constant learning rates (App. B).
    Constant,
    /// Cosine decay to 0 over the run.
    Cosine,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Target: swiss-roll, 8gaussians, checkerboard, moons or law:FILE.json.
    #[arg(long)]
    data: String,
    /// Training method (one value per method of ref-impl/src/methods/).
    #[arg(long, value_enum, default_value_t = ToyMethod::Mgm)]
    method: ToyMethod,
    /// MGM's objective: mgm (flipped, t ∈ [0, ½]), midpoint (t = ½) or naive (no flip,
    /// t ∈ [0, 1]).
    #[arg(long, value_enum, default_value_t = Variant::Mgm)]
    variant: Variant,
    /// σ of σ_t = sqrt(σ·t(1−t)) in the generator step (Table 1b).
    #[arg(long, default_value_t = 0.05)]
    sigma: f64,
    /// σ' of the critic step (Table 1c); defaults to --sigma.
    #[arg(long)]
    critic_sigma: Option<f64>,
    /// Iterations of Algorithm 1 (--critic-steps critic updates and one generator update
    /// each).
    #[arg(long, default_value_t = 10_000)]
    steps: usize,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    batch: i64,
    /// Learning rate of the generator's Adam (and of the critic's unless --critic-lr).
    #[arg(long, default_value_t = 3e-4)]
    lr: f64,
    /// Learning rate of the critic's Adam (default: --lr).
    #[arg(long)]
    critic_lr: Option<f64>,
    /// Adam β1 of both networks (App. B: 0).
    #[arg(long, default_value_t = 0.0)]
    beta1: f64,
    /// Adam β2 of both networks (App. B: 0.999).
    #[arg(long, default_value_t = 0.999)]
    beta2: f64,
    /// Critic updates per generator update (App. B: 1; 5 by default here, see
    /// docs/learning.md).
    #[arg(long, default_value_t = 5)]
    critic_steps: usize,
    /// Clip each network's gradient norm to this value (default: no clipping, as App. B).
    #[arg(long)]
    clip: Option<f64>,
    /// Learning-rate schedule of both networks: cosine (decay to 0 over the run, the default
    /// here, see docs/learning.md) or constant (App. B).
    #[arg(long, value_enum, default_value_t = LrSchedule::Cosine)]
    lr_schedule: LrSchedule,
    /// Decay of the generator weight EMA used for the samples and metrics (App. B; 0: last
    /// weights).
    #[arg(long, default_value_t = 0.999)]
    ema_decay: f64,
    /// Seed of torch and of the data stream.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Latent dimension (default: max(8, data dimension)).
    #[arg(long)]
    latent_dim: Option<i64>,
    /// Hidden width of both MLPs.
    #[arg(long, default_value_t = 128)]
    width: i64,
    /// Residual blocks of both MLPs.
    #[arg(long, default_value_t = 2)]
    blocks: usize,
    /// Generated and target samples for the metrics.
    #[arg(long, default_value_t = 20_000)]
    eval_samples: usize,
    /// σ of the D_t-mid reported in metrics.json.
    #[arg(long, default_value_t = 0.05)]
    eval_sigma: f64,
    /// Critic steps of the held-out D_t-mid estimate.
    #[arg(long, default_value_t = 2000)]
    eval_steps: usize,
    /// Steps between points of the energy-distance curve (curve.csv; 0: none).
    #[arg(long, default_value_t = 500)]
    curve_every: usize,
    /// Unseen draws (.npy or .csv) of the law behind a law: target; the energy ratio in
    /// metrics.json is then measured against them, with the law's atoms as the training sample.
    #[arg(long)]
    heldout: Option<PathBuf>,
    #[command(flatten)]
    run_on: super::flags::RunOn<1>,
    #[command(flatten)]
    quiet: super::flags::Quiet,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Replace the run --out holds (its outputs are removed first; other files are left
    /// alone). Without it, a folder that holds a run is refused.
    #[arg(long)]
    overwrite: bool,
}

/// The run's settings: the library's defaults for the target ([`ToyConfig::new`]) with the
/// flags applied. The flags' own defaults repeat the library's so that `--help` shows them; the
/// test below keeps the two equal.
fn config(a: &Args, target: &Target) -> ToyConfig {
    let mut cfg = ToyConfig::new(&target.name(), target.dim());
    cfg.variant = a.variant;
    cfg.sigma = a.sigma;
    cfg.critic_sigma = a.critic_sigma.unwrap_or(a.sigma);
    cfg.steps = a.steps;
    cfg.batch = a.batch;
    cfg.optimization = ToyOptimization {
        lr: a.lr,
        critic_lr: a.critic_lr,
        beta1: a.beta1,
        beta2: a.beta2,
        critic_steps: a.critic_steps,
        clip: a.clip,
        cosine_decay: a.lr_schedule == LrSchedule::Cosine,
    };
    cfg.ema_decay = a.ema_decay;
    cfg.seed = a.seed;
    if let Some(l) = a.latent_dim {
        cfg.latent_dim = l;
    }
    cfg.width = a.width;
    cfg.blocks = a.blocks;
    cfg.eval_samples = a.eval_samples;
    cfg.eval_sigma = a.eval_sigma;
    cfg.curve_every = a.curve_every;
    cfg.heldout = a.heldout.clone();
    cfg.eval_fit = CriticFit {
        steps: a.eval_steps,
        seed: a.seed.wrapping_add(1),
        ..cfg.eval_fit
    };
    cfg
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let device = a.run_on.device()?;
    let target = Target::parse(&a.data)?;
    let cfg = config(&a, &target);
    let claim = if a.overwrite {
        Claim::Overwrite
    } else {
        Claim::New
    };
    let folder = RunFolder::claim(&a.out, claim)?;
    let progress = Progress::new(a.steps as u64, a.variant.name(), a.quiet.show());
    let r = run_toy(a.method, &target, &cfg, device, &folder, &progress)?;
    println!(
        "{} on {}: energy distance {:.5} (ratio to an independent target sample {:.2}){}, D_t-mid (core estimate) {:.5} ± {:.5} (sign-flip p = {}), D_t-mid (held-out critic) {:.5} ± {:.5}{}; wrote {}",
        a.variant.name(),
        target.name(),
        r.energy_distance,
        r.energy_ratio.ratio,
        r.binned_tv
            .map(|t| format!(", binned TV {:.3} (ratio {:.2})", t.generated, t.ratio))
            .unwrap_or_default(),
        r.tmid_core_estimate,
        r.tmid_core_std_error,
        r.tmid_core_p_value
            .map(|p| format!("{p:.4}"))
            .unwrap_or_else(|| "-".into()),
        r.tmid_estimate,
        r.tmid_std_error,
        r.tmid_gaussian_fit_exact
            .map(|v| format!(", D_t-mid (Gaussian fit, exact) {v:.5}"))
            .unwrap_or_default(),
        a.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        args: Args,
    }

    /// A run without flags is the library's default run: the flag defaults (shown by `--help`)
    /// and `ToyConfig::new` (used by the library and its tests) cannot drift apart.
    #[test]
    fn flag_defaults_are_the_library_defaults() {
        for data in ["swiss-roll", "8gaussians", "checkerboard", "moons"] {
            let cmd = Cmd::try_parse_from(["toy", "--data", data, "--out", "x"]).unwrap();
            let target = Target::parse(data).unwrap();
            let lib = ToyConfig::new(&target.name(), target.dim());
            assert_eq!(
                serde_json::to_value(config(&cmd.args, &target)).unwrap(),
                serde_json::to_value(lib).unwrap(),
                "{data}"
            );
        }
    }
}
