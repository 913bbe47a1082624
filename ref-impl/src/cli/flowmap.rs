//! `midpoint-train flowmap --data D --method M [...] --out DIR`: a flow-map baseline on a toy
//! target, measured at several step counts.

use midpoint_train::methods::flow_map::kind::FlowMapKind;
use midpoint_train::methods::flow_map::objective::Objective;
use midpoint_train::methods::flow_map::toy::FlowMapToyConfig;
use midpoint_train::toy::flow_map_run::{run_flow_map, FlowMapRunConfig};
use midpoint_train::toy::targets::Target;
use midpoint_train::train::jvp::JvpRoute;
use midpoint_train::train::network::AdamSettings;
use midpoint_train::train::progress::Progress;
use midpoint_train::train::run_folder::{Claim, RunFolder};
use std::path::PathBuf;

/// The method and its schedules (`Objective`), shared with `flowmap-image`.
#[derive(Debug, clap::Args)]
pub struct ObjectiveFlags {
    /// fm (the velocity, Euler steps), lsd, esd, psd-m, psd-u (self-distillation), lmd, emd
    /// (distilled from an fm teacher), fmm (banded), pfmm (from a banded fmm teacher).
    #[arg(long, value_enum)]
    pub method: FlowMapKind,
    /// How derivatives inside the loss are taken.
    #[arg(long, value_enum, default_value_t = JvpRoute::ForwardMode)]
    jvp: JvpRoute,
    /// Self-distillation: steps on the diagonal alone (default: 10% of --steps).
    #[arg(long)]
    warmup: Option<u64>,
    /// Self-distillation: steps widening t − s to the whole triangle (default: 10% of --steps).
    #[arg(long)]
    anneal: Option<u64>,
    /// LMD, EMD, PFMM: steps of the teacher phase (default: half of --steps).
    #[arg(long)]
    teacher_steps: Option<u64>,
    /// FMM and PFMM's teacher: train on |t − s| ≤ 1/band (1: the full square).
    #[arg(long, default_value_t = 4)]
    band: usize,
    /// Detach the target term (default: on for psd-m/psd-u, off elsewhere, as the papers).
    #[arg(long)]
    stop_gradient: Option<bool>,
}

impl ObjectiveFlags {
    /// The objective of a run of `steps` steps: the flags over `base` (the defaults for
    /// `steps`, or a resumed checkpoint's schedules).
    pub fn objective(&self, base: Objective) -> Objective {
        Objective {
            kind: self.method,
            route: self.jvp,
            warmup: self.warmup.unwrap_or(base.warmup),
            anneal: self.anneal.unwrap_or(base.anneal),
            teacher_steps: self.teacher_steps.unwrap_or(base.teacher_steps),
            band: self.band,
            stop_gradient: self.stop_gradient.unwrap_or(base.stop_gradient),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Target: swiss-roll, 8gaussians, checkerboard, moons or law:FILE.json.
    #[arg(long)]
    data: String,
    #[command(flatten)]
    objective: ObjectiveFlags,
    /// Steps, teacher phase included.
    #[arg(long, default_value_t = 10_000)]
    steps: u64,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    batch: i64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Adam β1.
    #[arg(long, default_value_t = 0.9)]
    beta1: f64,
    /// Adam β2.
    #[arg(long, default_value_t = 0.999)]
    beta2: f64,
    /// Clip the gradient norm to this value (default: none, as the papers).
    #[arg(long)]
    clip: Option<f64>,
    /// Seed of torch and of the data stream.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Hidden width of the MLP.
    #[arg(long, default_value_t = 128)]
    width: i64,
    /// Residual blocks of the MLP.
    #[arg(long, default_value_t = 2)]
    blocks: usize,
    /// Steps of the sampler for the training curve (default: 4 for fmm, 1 otherwise).
    #[arg(long)]
    sample_steps: Option<usize>,
    /// Step counts at which the trained model is measured.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    eval_steps: Vec<usize>,
    /// Generated and target samples per measurement.
    #[arg(long, default_value_t = 20_000)]
    eval_samples: usize,
    /// Steps between points of the energy-distance curve (0: none).
    #[arg(long, default_value_t = 500)]
    curve_every: usize,
    #[command(flatten)]
    run_on: super::flags::RunOn<1>,
    #[command(flatten)]
    quiet: super::flags::Quiet,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Replace the run --out holds.
    #[arg(long)]
    overwrite: bool,
}

fn config(a: &Args, target: &Target) -> FlowMapRunConfig {
    let mut m = FlowMapToyConfig::new(a.objective.method, target.dim() as i64);
    m.steps = a.steps;
    m.batch = a.batch;
    m.adam = AdamSettings {
        lr: a.lr,
        beta1: a.beta1,
        beta2: a.beta2,
    };
    m.clip = a.clip;
    m.seed = a.seed;
    m.width = a.width;
    m.blocks = a.blocks;
    m.objective = a
        .objective
        .objective(Objective::new(a.objective.method, a.steps));
    if let Some(k) = a.sample_steps {
        m.sample_steps = k;
    }
    let mut c = FlowMapRunConfig::new(&target.name(), m);
    c.eval_steps = a.eval_steps.clone();
    c.eval_samples = a.eval_samples;
    c.curve_every = a.curve_every;
    c
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
    let progress = Progress::new(a.steps, a.objective.method.name(), a.quiet.show());
    let r = run_flow_map(&target, &cfg, device, &folder, &progress)?;
    println!(
        "{} on {}: {:.2} ms per step; floors (independent target sample): energy {:.5}, SW2² {:.5}{}",
        a.objective.method.name(),
        target.name(),
        1e3 * r.seconds_per_step,
        r.floors.energy_distance,
        r.floors.sliced_w2,
        r.floors
            .histogram_kl
            .map(|v| format!(", KL {v:.4}"))
            .unwrap_or_default()
    );
    for m in &r.at_steps {
        println!(
            "  {:>2} steps: energy {:.5}, SW2² {:.5}{}, D_t-mid {:.5} [{:.5}, {:.5}], error vs {} {:.5}",
            m.steps,
            m.energy_distance,
            m.sliced_w2,
            m.histogram_kl
                .map(|v| format!(", KL {v:.4}"))
                .unwrap_or_default(),
            m.tmid,
            m.tmid_ci95[0],
            m.tmid_ci95[1],
            r.reference_map,
            m.map_error
        );
    }
    println!("wrote {}", a.out.display());
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

    /// The flag defaults (shown by `--help`) are the library's (`FlowMapToyConfig::new`,
    /// `FlowMapRunConfig::new`) for every method.
    #[test]
    fn flag_defaults_are_the_library_defaults() {
        for kind in FlowMapKind::ALL {
            let cmd = Cmd::try_parse_from([
                "flowmap",
                "--data",
                "checkerboard",
                "--method",
                kind.name(),
                "--out",
                "x",
            ])
            .unwrap();
            let target = Target::parse("checkerboard").unwrap();
            let lib = FlowMapRunConfig::new("checkerboard", FlowMapToyConfig::new(kind, 2));
            assert_eq!(
                serde_json::to_value(config(&cmd.args, &target)).unwrap(),
                serde_json::to_value(lib).unwrap(),
                "{kind:?}"
            );
        }
    }
}
