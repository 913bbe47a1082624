//! `midpoint-train toy`: Algorithm 1 with MLPs on a 2-D toy set or a law file, then samples,
//! metrics and plots.
//!
//! Output directory:
//!
//! | file | content |
//! |---|---|
//! | `samples.npy` | `eval_samples × d` samples of the EMA generator (float64) |
//! | `target.npy` | as many fresh target samples (the reference of the metrics) |
//! | `metrics.json` | settings, energy distance, two estimates of `D_t-mid` (the held-out neural critic and the core crate's cross-fitted RFF estimator with its sign-flip p-value), their agreement, the exact `D_t-mid` of the Gaussian fit for Gaussian targets, final losses, timing |
//! | `losses.csv` | `step,critic,generator` for every step |
//! | `curve.csv` | `step,energy_distance` of the EMA generator every `curve_every` steps (on `curve_samples` fixed latents against as many fixed target samples) |
//! | `scatter.png` | target beside generated samples |
//! | `losses.png` | critic and generator losses (window means) and the energy-distance curve |

use crate::error::TrainError;
use crate::methods::mgm::toy::{ToyMgm, ToyMgmConfig, ToyOptimization};
use crate::methods::mgm::{StepLosses, Variant};
use crate::toy::critic_check::CriticFit;
use crate::toy::metrics::{
    binned_tv, core_tmid, energy_distance, energy_ratio, gaussian_fit_tmid, heldout_tmid, BinnedTv,
    EnergyRatio, HeldOut,
};
use crate::toy::targets::Target;
use crate::train::bridge::{array_tensor, tensor_array};
use crate::train::method::{Batches, Evaluate, Method};
use crate::train::plot::{loss_panels, scatter_panels, Panel, Series};
use crate::train::progress::Progress;
use crate::train::run_dir::{smooth, write_json};
use crate::train::run_folder::RunFolder;
use crate::train::run_loop::{self, LoopOptions};
use midpoint::estimate::EstimateReport;
use midpoint::{Law, StochasticInterpolant};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Settings of a toy run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToyConfig {
    /// Target name (`swiss-roll`, ..., `law:FILE`).
    pub data: String,
    /// Objective.
    pub variant: Variant,
    /// Generator-side `σ`.
    pub sigma: f64,
    /// Critic-side `σ'`.
    pub critic_sigma: f64,
    /// Iterations of Algorithm 1 (each: one critic step and one generator step).
    pub steps: usize,
    /// Batch size of each step.
    pub batch: i64,
    /// How both networks are optimized.
    #[serde(flatten)]
    pub optimization: ToyOptimization,
    /// Decay of the generator's weight EMA used for evaluation (App. B: 0.999; 0 evaluates
    /// the last weights).
    pub ema_decay: f64,
    /// Seed of torch and of the data stream.
    pub seed: u64,
    /// Latent dimension of the generator (`z ~ N(0, I)`).
    pub latent_dim: i64,
    /// Hidden width of both MLPs.
    pub width: i64,
    /// Residual blocks of both MLPs.
    pub blocks: usize,
    /// Generated and target samples for the metrics.
    pub eval_samples: usize,
    /// `σ` of the `D_t-mid` in the metrics (linear interpolant).
    pub eval_sigma: f64,
    /// Critic fit of the held-out estimate.
    pub eval_fit: CriticFit,
    /// Steps between points of the energy-distance curve (0: no curve).
    pub curve_every: usize,
    /// Unseen draws of the law behind a `law:` target (`.npy` or `.csv`): the energy ratio is
    /// then measured against them, with the law's atoms as the "training sample" (see
    /// [`EnergyRatio`]).
    pub heldout: Option<std::path::PathBuf>,
    /// Generated and target samples per curve point.
    pub curve_samples: usize,
}

impl ToyConfig {
    /// Defaults for a target, chosen by the study in docs/learning.md so that a run learns
    /// the built-in targets in about four minutes on two cores: MGM, `σ = σ' = 0.05`,
    /// **10,000 iterations** of batch 256, each **5 critic updates** then one generator update
    /// (1:1 leaves the learned critic's gradient 77–92% off the exact one after an update:
    /// tests/generator_gradient.rs; at a fixed budget, 5 updates and twice the iterations
    /// beat 10 updates), lr 3e-4 for both Adams (`β1 = 0`, App. B) **decayed to 0
    /// by a cosine** (a constant rate leaves the generator at Adam's noise floor), MLPs of
    /// width 128 with 2 blocks, generator EMA 0.999, a **latent of dimension max(8, d)** (a
    /// latent of the data's own dimension made the generator fold the plane into thin
    /// curves), 20k evaluation samples, held-out critic of 2000 steps of 512 pairs, an
    /// energy-distance curve point every 500 steps on 2000 samples.
    pub fn new(data: &str, dim: usize) -> Self {
        ToyConfig {
            data: data.to_string(),
            variant: Variant::Mgm,
            sigma: 0.05,
            critic_sigma: 0.05,
            steps: 10_000,
            batch: 256,
            optimization: ToyOptimization {
                critic_steps: 5,
                cosine_decay: true,
                ..ToyOptimization::paper(3e-4)
            },
            ema_decay: 0.999,
            seed: 0,
            latent_dim: dim.max(8) as i64,
            width: 128,
            blocks: 2,
            eval_samples: 20_000,
            eval_sigma: 0.05,
            eval_fit: CriticFit {
                steps: 2000,
                batch: 512,
                seed: 1,
                ..CriticFit::default()
            },
            curve_every: 500,
            curve_samples: 2000,
            heldout: None,
        }
    }

    fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: &str| Err(TrainError::InvalidOption(m.to_string()));
        if self.steps == 0 {
            return bad("--steps must be at least 1");
        }
        if self.batch < 1 {
            return bad("--batch must be at least 1");
        }
        if self.latent_dim < 1 || self.width < 1 {
            return bad("latent dimension and width must be at least 1");
        }
        if self.eval_samples < 4 {
            return bad("--eval-samples must be at least 4");
        }
        if self.curve_every > 0 && self.curve_samples < 2 {
            return bad("the energy-distance curve needs at least 2 samples");
        }
        // The evaluation holds its samples, latents and one layer's activations at once
        // (f64 arrays, a generous bound): refused here rather than aborting at the end.
        midpoint::resources::check_fits(
            &format!("--eval-samples {}", self.eval_samples),
            &[
                self.eval_samples as u128,
                (self.width + self.latent_dim + 16) as u128,
            ],
            8,
        )
        .map_err(|e| TrainError::InvalidOption(e.to_string()))?;
        Ok(())
    }
}

/// The metrics of a toy run (written as `metrics.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToyReport<L = StepLosses> {
    /// Settings.
    pub config: ToyConfig,
    /// Device used.
    pub device: String,
    /// Samples behind the metrics (each side).
    pub eval_samples: usize,
    /// Energy distance between generated and fresh target samples (unbiased; ≈ 0 ± noise
    /// for a perfect generator).
    pub energy_distance: f64,
    /// The generated sample's energy distance to fresh target draws over that of an
    /// independent target sample of the same size ([`EnergyRatio`]; ≈ 1 is as good as more
    /// data, ≤ 2 is the toy acceptance bar).
    pub energy_ratio: EnergyRatio,
    /// Total variation between 40 × 40 histograms of the generated and the reference sample,
    /// beside that of the independent sample ([`BinnedTv`]; 2-D targets only): sensitive to
    /// thin curves that the energy distance averages away.
    pub binned_tv: Option<BinnedTv>,
    /// Held-out variational estimate of `D_t-mid^{lin, eval_sigma}(generated, target)`.
    pub tmid_estimate: f64,
    /// Its standard error.
    pub tmid_std_error: f64,
    /// How it was computed.
    pub tmid_method: String,
    /// Details of the held-out estimate.
    pub tmid_heldout: HeldOut,
    /// The core crate's cross-fitted estimate of the same `D_t-mid` ([`core_tmid`]).
    pub tmid_core_estimate: f64,
    /// Its standard error.
    pub tmid_core_std_error: f64,
    /// Its sign-flip p-value for `H0: p_generated = p_target`.
    pub tmid_core_p_value: Option<f64>,
    /// `(held-out − core) / sqrt(SE_held-out² + SE_core²)`: both estimate the same
    /// `D_t-mid` from below, so |z| ≲ 2 says the two critics agree within their errors; a
    /// large |z| says one critic fits the field worse (the smaller value is the worse fit).
    pub tmid_cross_check_z: f64,
    /// The core crate's full report (critic choices, profile `D(t)`, test).
    pub tmid_core: EstimateReport,
    /// Exact `D_t-mid^{lin, eval_sigma}` between the Gaussian fit of the generated samples
    /// and the target (Gaussian targets only).
    pub tmid_gaussian_fit_exact: Option<f64>,
    /// `(step, energy distance)` of the EMA generator during training (see `curve.csv`).
    pub curve: Vec<(usize, f64)>,
    /// Mean losses over the last 5% of steps.
    pub final_losses: L,
    /// Seconds of training.
    pub train_seconds: f64,
    /// Seconds of evaluation.
    pub eval_seconds: f64,
}

/// A toy target as [`Batches`]: each batch is the next draws of one seeded stream.
pub(crate) struct TargetBatches<'a> {
    pub(crate) target: &'a Target,
    pub(crate) rng: Xoshiro256PlusPlus,
}

impl Batches for TargetBatches<'_> {
    fn batch(&mut self, _index: u64, n: i64, device: Device) -> Result<Tensor, TrainError> {
        Ok(array_tensor(
            &self.target.sample(n as usize, &mut self.rng)?,
            device,
        ))
    }

    fn describe(&self) -> String {
        self.target.name()
    }
}

/// The energy distance of the EMA generator on fixed latents against fixed target samples (the
/// curve; NaN once the generator's output is not finite).
pub(crate) struct EnergyCurve {
    pub(crate) z: Tensor,
    pub(crate) target: ndarray::Array2<f64>,
}

impl<M: Method> Evaluate<M> for EnergyCurve {
    fn name(&self) -> &str {
        "energy_distance"
    }
    fn evaluate(&mut self, method: &M, _n: usize) -> Result<f64, TrainError> {
        let g = tensor_array(&method.sample(&self.z))?;
        if g.iter().any(|v| !v.is_finite()) {
            return Ok(f64::NAN);
        }
        energy_distance(g.view(), self.target.view())
    }
}

/// The training methods of a toy run (`toy --method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ToyMethod {
    /// Algorithm 1 ([`ToyMgm`]); `variant` picks the objective.
    Mgm,
}

/// What [`train_with_curve`] returns: the loop's summary, the curve, the data stream.
pub(crate) type Trained<L> = (run_loop::Summary<L>, Vec<(usize, f64)>, Xoshiro256PlusPlus);

/// How a toy run trains: its steps, and the energy-distance curve every `every` steps on
/// `samples` fixed latents and target draws; `seed` seeds the data stream.
pub(crate) struct CurveSpec {
    pub(crate) steps: u64,
    pub(crate) every: u64,
    pub(crate) samples: usize,
    pub(crate) seed: u64,
}

/// Trains `method` on `target` in the one training loop with the energy-distance curve as its
/// evaluation. The curve's latents (from `latents`) and target samples are drawn before
/// training, the target's from a stream of their own, so the curve does not depend on when it
/// is evaluated. Returns the loop's summary, the curve, and the data stream where training
/// left it (the fresh samples of the evaluation come next).
pub(crate) fn train_with_curve<M: Method>(
    method: &mut M,
    target: &Target,
    spec: &CurveSpec,
    latents: &dyn Fn(usize) -> Tensor,
    folder: &RunFolder,
    progress: &Progress,
) -> Result<Trained<M::Losses>, TrainError> {
    let n = spec.samples.max(2);
    let mut curve = EnergyCurve {
        z: latents(n),
        target: target.sample(
            n,
            &mut Xoshiro256PlusPlus::seed_from_u64(spec.seed ^ 0xC0FFEE),
        )?,
    };
    let mut batches = TargetBatches {
        target,
        rng: Xoshiro256PlusPlus::seed_from_u64(spec.seed),
    };
    let options = LoopOptions {
        steps: spec.steps,
        grid_every: 0,
        checkpoint_every: 0,
        eval_every: spec.every,
        eval_samples: spec.samples,
        final_eval_samples: if spec.every > 0 { spec.samples } else { 0 },
        max_seconds: None,
    };
    let summary = run_loop::run(
        method,
        &mut batches,
        &options,
        (spec.every > 0).then_some(&mut curve as &mut dyn Evaluate<M>),
        folder,
        progress,
    )?;
    let points = summary
        .evals
        .iter()
        .map(|e| (e.step as usize, e.value))
        .collect();
    Ok((summary, points, batches.rng))
}

/// Builds `method` from `config` (one arm per [`ToyMethod`]), trains and evaluates it, and
/// writes the output directory (see the module docs).
pub fn run_toy(
    method: ToyMethod,
    target: &Target,
    config: &ToyConfig,
    device: Device,
    folder: &RunFolder,
    progress: &Progress,
) -> Result<ToyReport<StepLosses>, TrainError> {
    config.validate()?;
    match method {
        ToyMethod::Mgm => {
            let mgm = ToyMgm::new(
                ToyMgmConfig {
                    variant: config.variant,
                    sigma: config.sigma,
                    critic_sigma: config.critic_sigma,
                    batch: config.batch,
                    optimization: config.optimization,
                    steps: config.steps,
                    ema_decay: config.ema_decay,
                    seed: config.seed,
                    dim: target.dim() as i64,
                    latent_dim: config.latent_dim,
                    width: config.width,
                    blocks: config.blocks,
                },
                device,
            )?;
            train_and_evaluate(mgm, target, config, device, folder, progress)
        }
    }
}

/// Trains a built toy `method` (with `config` validated) in the one training loop, the
/// energy-distance curve as its evaluation, then evaluates its samples and writes the output
/// directory. Nothing here depends on the method beyond [`Method`].
fn train_and_evaluate<M: Method>(
    mut method: M,
    target: &Target,
    config: &ToyConfig,
    device: Device,
    folder: &RunFolder,
    progress: &Progress,
) -> Result<ToyReport<M::Losses>, TrainError> {
    let out = folder.path();
    let latent_shape = method.latent_shape();
    let latents = |n: usize| {
        let mut shape = vec![n as i64];
        shape.extend(&latent_shape);
        Tensor::randn(shape, (Kind::Float, device))
    };
    let curve_spec = CurveSpec {
        steps: config.steps as u64,
        every: config.curve_every as u64,
        samples: config.curve_samples,
        seed: config.seed,
    };
    let (summary, curve, mut rng) =
        train_with_curve(&mut method, target, &curve_spec, &latents, folder, progress)?;
    let train_seconds = summary.seconds;

    // Evaluation on fresh samples.
    let start = std::time::Instant::now();
    let n = config.eval_samples;
    let z = latents(n);
    let generated = tensor_array(&method.sample(&z))?;
    let reference = target.sample(n, &mut rng)?;
    if generated.iter().any(|v| !v.is_finite()) {
        return Err(TrainError::NonFiniteLoss {
            which: "generator output",
            value: f64::NAN,
            step: config.steps,
        });
    }
    let energy = energy_distance(generated.view(), reference.view())?;
    // Drawn after the reference, so that adding it changed no earlier draw.
    let independent = target.sample(n, &mut rng)?;
    let ratio = match &config.heldout {
        None => energy_ratio(generated.view(), independent.view(), reference.view())?,
        Some(path) => heldout_ratio(target, &generated, path)?,
    };
    let tv = binned_tv(generated.view(), independent.view(), reference.view(), 40);
    progress.stage(config.eval_fit.steps as u64, "eval critic");
    let heldout = heldout_tmid(
        generated.view(),
        reference.view(),
        config.eval_sigma,
        &config.eval_fit,
        device,
        progress,
    )?;
    let core = core_tmid(
        generated.view(),
        reference.view(),
        config.eval_sigma,
        config.eval_fit.seed,
        progress,
    )?;
    let si = StochasticInterpolant::linear(config.eval_sigma)?;
    let gaussian_fit = match target.law() {
        Some(law @ Law::Gaussian(_)) => Some(gaussian_fit_tmid(generated.view(), law, &si)?.value),
        _ => None,
    };
    progress.finish();
    let eval_seconds = start.elapsed().as_secs_f64();

    let report = ToyReport {
        config: config.clone(),
        device: crate::device::device_name(device),
        eval_samples: n,
        energy_distance: energy,
        energy_ratio: ratio,
        binned_tv: tv,
        tmid_estimate: heldout.estimate.value,
        tmid_std_error: heldout.estimate.std_error,
        tmid_method: format!(
            "held-out variational (Prop. 3.3): critic fitted on {} generated and {} target samples, ∫₀^½ J(f) dt on {} held-out pairs; a lower bound in expectation",
            heldout.fit_samples, heldout.fit_samples, heldout.heldout_pairs
        ),
        tmid_heldout: heldout,
        tmid_core_estimate: core.estimate,
        tmid_core_std_error: core.std_error,
        tmid_core_p_value: core.p_value,
        tmid_cross_check_z: (heldout.estimate.value - core.estimate)
            / heldout.estimate.std_error.hypot(core.std_error),
        tmid_core: core,
        tmid_gaussian_fit_exact: gaussian_fit,
        curve: curve.clone(),
        final_losses: summary
            .final_losses
            .expect("a toy run trains at least one step"),
        train_seconds,
        eval_seconds,
    };

    // Files.
    midpoint::io::write_samples(&out.join("samples.npy"), &generated)?;
    midpoint::io::write_samples(&out.join("target.npy"), &reference)?;
    write_json(&out.join("metrics.json"), &report)?;
    let columns = loss_columns(&summary.losses, method.loss_fields());
    write_losses_csv(out, method.loss_fields(), &columns)?;
    if !curve.is_empty() {
        let path = out.join("curve.csv");
        let mut text = String::from("step,energy_distance\n");
        for (s, e) in &curve {
            text.push_str(&format!("{s},{e:?}\n"));
        }
        crate::train::run_dir::write_atomic(&path, text.as_bytes())?;
    }
    // The raw (not averaged) generator beside the EMA one: what the last update produced.
    let raw = match method.sample_raw(&z) {
        Some(r) => Some(tensor_array(&r)?),
        None => None,
    };
    let mut panels = vec![
        Panel {
            title: format!("target: {}", target.name()),
            points: &reference,
        },
        Panel {
            title: format!(
                "{} EMA (energy ratio {:.2}{}, D_t-mid {:.4} ± {:.4})",
                method.name(),
                ratio.ratio,
                tv.map(|t| format!(", TV ratio {:.2}", t.ratio))
                    .unwrap_or_default(),
                report.tmid_core_estimate,
                report.tmid_core_std_error
            ),
            points: &generated,
        },
    ];
    if let Some(raw) = &raw {
        panels.push(Panel {
            title: "raw generator (last weights, same latents)".into(),
            points: raw,
        });
    }
    scatter_panels(&out.join("scatter.png"), &panels)?;
    // Window means at x = step + ½ (the middle of the step).
    let mut series: Vec<Series> = method
        .loss_fields()
        .iter()
        .zip(&columns)
        .map(|(&(_, title), c)| Series {
            title: title.into(),
            points: smooth(
                &c.iter()
                    .enumerate()
                    .map(|(i, &v)| (i as f64 + 0.5, v))
                    .collect::<Vec<_>>(),
            ),
        })
        .collect();
    if !curve.is_empty() {
        series.push(Series {
            title: format!("energy distance (EMA, {} samples)", config.curve_samples),
            points: curve.iter().map(|&(s, e)| (s as f64, e)).collect(),
        });
    }
    loss_panels(&out.join("losses.png"), &series)?;
    Ok(report)
}

/// The energy ratio against unseen draws read from `path`: a discrete law's atoms are the
/// training sample (and as many generated samples are compared); for any other law, fresh
/// draws of the size of the generated sample are.
fn heldout_ratio(
    target: &Target,
    generated: &ndarray::Array2<f64>,
    path: &Path,
) -> Result<EnergyRatio, TrainError> {
    let heldout = midpoint::io::read_samples(path)?;
    if heldout.ncols() != generated.ncols() || heldout.nrows() < 2 {
        return Err(TrainError::InvalidOption(format!(
            "{}: {} held-out rows of dimension {}, need ≥ 2 of dimension {}",
            path.display(),
            heldout.nrows(),
            heldout.ncols(),
            generated.ncols()
        )));
    }
    match target.law() {
        Some(Law::Discrete(d)) => {
            let m = d.len();
            if generated.nrows() < m {
                return Err(TrainError::InvalidOption(format!(
                    "--heldout compares {m} atoms with as many generated samples: --eval-samples must be at least {m}"
                )));
            }
            let g = generated.slice(ndarray::s![..m, ..]);
            energy_ratio(g, d.points(), heldout.view())
        }
        _ => {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x4845_4c44);
            let independent = target.sample(generated.nrows(), &mut rng)?;
            energy_ratio(generated.view(), independent.view(), heldout.view())
        }
    }
}

/// Each of `fields` over the steps of `losses` (exact: straight from the values, not from the
/// log's text).
pub(crate) fn loss_columns<L: serde::Serialize>(
    losses: &[L],
    fields: &[(&str, &str)],
) -> Vec<Vec<f64>> {
    let values: Vec<serde_json::Value> = losses
        .iter()
        .map(|l| serde_json::to_value(l).unwrap_or_default())
        .collect();
    fields
        .iter()
        .map(|(key, _)| {
            values
                .iter()
                .map(|v| {
                    v.get(key)
                        .and_then(serde_json::Value::as_f64)
                        .unwrap_or(f64::NAN)
                })
                .collect()
        })
        .collect()
}

/// `losses.csv`: `step` and one column per loss, one row per step.
pub(crate) fn write_losses_csv(
    out: &Path,
    fields: &[(&str, &str)],
    columns: &[Vec<f64>],
) -> Result<(), TrainError> {
    let csv = out.join("losses.csv");
    let mut text = String::from("step");
    for (key, _) in fields {
        text.push(',');
        text.push_str(key);
    }
    text.push('\n');
    for i in 0..columns.first().map_or(0, Vec::len) {
        text.push_str(&i.to_string());
        for c in columns {
            text.push_str(&format!(",{:?}", c[i]));
        }
        text.push('\n');
    }
    crate::train::run_dir::write_atomic(&csv, text.as_bytes())
}
