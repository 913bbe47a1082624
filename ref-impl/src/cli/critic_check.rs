//! `midpoint-train critic-check --p0 A.json --p1 B.json [--sigma S] [--steps N] [--json]`

use midpoint_train::toy::critic_check::{critic_check, CriticCheckConfig};
use midpoint_train::train::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    laws: midpoint::command_line::LawPair,
    /// σ of σ_t = sqrt(σ·t(1−t)) (linear interpolant).
    #[arg(long, default_value_t = 0.05)]
    sigma: f64,
    /// Critic steps.
    #[arg(long, default_value_t = 4000)]
    steps: usize,
    /// Pairs per step.
    #[arg(long, default_value_t = 1024)]
    batch: i64,
    /// Peak learning rate (Adam, β1 = 0, cosine decay to 0).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of torch and of the law samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Hidden width of the critic MLP.
    #[arg(long, default_value_t = 128)]
    width: i64,
    /// Residual blocks of the critic MLP.
    #[arg(long, default_value_t = 2)]
    blocks: usize,
    /// Grid times for the field error.
    #[arg(long, default_value_t = 16)]
    grid: usize,
    /// Points per grid time.
    #[arg(long, default_value_t = 16_384)]
    points_per_time: usize,
    /// Pairs for the variational value.
    #[arg(long, default_value_t = 1 << 20)]
    variational_pairs: usize,
    #[command(flatten)]
    run_on: super::flags::RunOn<1>,
    #[command(flatten)]
    quiet: super::flags::Quiet,
    /// Print the full report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let device = a.run_on.device()?;
    let (p0, p1) = a.laws.read()?;
    let mut cfg = CriticCheckConfig {
        sigma: a.sigma,
        grid: a.grid,
        points_per_time: a.points_per_time,
        variational_pairs: a.variational_pairs,
        ..Default::default()
    };
    cfg.fit.steps = a.steps;
    cfg.fit.batch = a.batch;
    cfg.fit.lr = a.lr;
    cfg.fit.seed = a.seed;
    cfg.fit.width = a.width;
    cfg.fit.blocks = a.blocks;
    let progress = Progress::new(a.steps as u64, "critic", a.quiet.show());
    let r = critic_check(&p0, &p1, &cfg, device, &progress)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("critic steps           {}", a.steps);
        println!(
            "field error (rel. L2)  {:.4} mean over {} times in [0, ½], max {:.4}",
            r.field_rel_l2, cfg.grid, r.field_rel_l2_max
        );
        println!(
            "∫ J(f_ψ) dt            {:.6} ± {:.6} (SE, {} pairs)",
            r.variational_value, r.std_error, r.variational_pairs
        );
        println!(
            "exact D_t-mid          {:.6} (± {:.1e}, {})",
            r.exact_tmid, r.exact_error_bound, r.exact_method
        );
        println!(
            "relative gap           {:+.4} (Prop. 3.3: −∫E‖f−m‖² dt / D = {:+.4})",
            r.relative_gap,
            -r.field_mse / r.exact_tmid
        );
    }
    Ok(())
}
