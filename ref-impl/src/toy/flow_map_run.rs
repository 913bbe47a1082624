//! `midpoint-train flowmap`: one flow-map method ([`crate::methods::flow_map`]) on a toy target,
//! trained in the one loop, then measured at several step counts on fresh samples.
//!
//! Output directory:
//!
//! | file | content |
//! |---|---|
//! | `metrics.json` | [`FlowMapReport`]: settings, parameters, seconds per step, and per step count the energy distance, sliced `W2²`, histogram KL, the core estimator's `D_t-mid` with its interval and p-value, and the error against the reference map; the floors of an independent target sample |
//! | `samples_K.npy` | the generated samples at `K` steps (float64) |
//! | `target.npy` | the fresh target samples the metrics use |
//! | `reference.npy` | the reference map's samples on the same latents (the teacher's ODE, RK4 in 100 steps, or the PFMM teacher) |
//! | `losses.csv`, `losses.jsonl`, `losses.png` | every step's losses (and the gradient norm) |
//! | `curve.csv` | energy distance of `sample_steps`-step samples during training |
//! | `scatter.png` | the target beside the samples at every step count |

use crate::error::TrainError;
use crate::methods::flow_map::kind::FlowMapKind;
use crate::methods::flow_map::objective::FlowMapLosses;
use crate::methods::flow_map::toy::{FlowMapToy, FlowMapToyConfig};
use crate::toy::distances::{histogram_kl, sliced_w2};
use crate::toy::metrics::{core_tmid, energy_distance};
use crate::toy::run::{loss_columns, train_with_curve, write_losses_csv, CurveSpec};
use crate::toy::targets::Target;
use crate::train::bridge::tensor_array;
use crate::train::method::Method;
use crate::train::plot::{scatter_panels, Panel};
use crate::train::progress::Progress;
use crate::train::run_dir::write_json;
use crate::train::run_folder::RunFolder;
use ndarray::{Array2, ArrayView2};
use tch::{Device, Kind, Tensor};

/// Settings of a flow-map toy run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlowMapRunConfig {
    /// Target name.
    pub data: String,
    /// The method and its training.
    pub method: FlowMapToyConfig,
    /// Step counts at which the trained model is measured.
    pub eval_steps: Vec<usize>,
    /// Generated and target samples per measurement.
    pub eval_samples: usize,
    /// `σ` of the core estimator's `D_t-mid` (linear interpolant; MGM's toy runs use 0.05).
    pub eval_sigma: f64,
    /// Random directions of the sliced `W2²`.
    pub sliced_directions: usize,
    /// Cells per axis of the histogram KL.
    pub kl_bins: usize,
    /// Steps between points of the energy-distance curve (0: none).
    pub curve_every: usize,
    /// Samples per curve point.
    pub curve_samples: usize,
}

impl FlowMapRunConfig {
    /// Defaults: steps 1, 2, 4, 8, 16; 20,000 samples; `σ = 0.05`; 512 directions; 36 cells per
    /// axis (0.25 wide on the checkerboard's [−4.5, 4.5]²); a curve point every 500 steps on 2000.
    pub fn new(data: &str, method: FlowMapToyConfig) -> Self {
        FlowMapRunConfig {
            data: data.into(),
            method,
            eval_steps: vec![1, 2, 4, 8, 16],
            eval_samples: 20_000,
            eval_sigma: 0.05,
            sliced_directions: 512,
            kl_bins: 36,
            curve_every: 500,
            curve_samples: 2000,
        }
    }

    fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: &str| Err(TrainError::InvalidOption(m.into()));
        if self.eval_steps.is_empty() || self.eval_steps.contains(&0) {
            return bad("--eval-steps needs step counts of at least 1");
        }
        if self.eval_samples < 4 {
            return bad("--eval-samples must be at least 4");
        }
        if self.curve_every > 0 && self.curve_samples < 2 {
            return bad("the energy-distance curve needs at least 2 samples");
        }
        Ok(())
    }
}

/// The measures of the samples at one step count.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AtSteps {
    /// Steps of the sampler (network evaluations per sample).
    pub steps: usize,
    /// Energy distance to the fresh target sample (unbiased).
    pub energy_distance: f64,
    /// Sliced `W2²` to it.
    pub sliced_w2: f64,
    /// `KL(target ‖ model)` of the histograms (2-D targets).
    pub histogram_kl: Option<f64>,
    /// The core estimator's `D_t-mid(generated, target)`.
    pub tmid: f64,
    /// Its standard error.
    pub tmid_std_error: f64,
    /// Its 95% interval.
    pub tmid_ci95: [f64; 2],
    /// Its sign-flip p-value of `p_generated = p_target`.
    pub tmid_p_value: Option<f64>,
    /// `E|X̂(z) − X_ref(z)|²` against the reference map on the same latents.
    pub map_error: f64,
}

/// The same measures for an independent target sample: what a perfect generator scores.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Floors {
    /// Energy distance.
    pub energy_distance: f64,
    /// Sliced `W2²`.
    pub sliced_w2: f64,
    /// Histogram KL.
    pub histogram_kl: Option<f64>,
}

/// `metrics.json` of a flow-map run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlowMapReport {
    /// Settings.
    pub config: FlowMapRunConfig,
    /// Device.
    pub device: String,
    /// Parameters of the trained network (a teacher has as many again).
    pub parameters: i64,
    /// Seconds of training (teacher phase included).
    pub train_seconds: f64,
    /// Mean seconds per step.
    pub seconds_per_step: f64,
    /// Mean losses over the last 5% of steps.
    pub final_losses: FlowMapLosses,
    /// `(step, energy distance)` during training.
    pub curve: Vec<(usize, f64)>,
    /// What `map_error` compares with.
    pub reference_map: String,
    /// The reference map's own samples measured the same way (`steps` = its network
    /// evaluations per sample; `map_error` 0): for FM, LMD and EMD the flow-matching
    /// velocity's ODE, the "SI" row of [FMM] Table 3.
    pub reference: AtSteps,
    /// The histogram's range `[lo, hi]²`.
    pub kl_range: Option<[f64; 2]>,
    /// One entry per step count.
    pub at_steps: Vec<AtSteps>,
    /// An independent target sample's values.
    pub floors: Floors,
    /// Seconds of evaluation.
    pub eval_seconds: f64,
}

/// The histogram range of the KL: the checkerboard's `[−4.5, 4.5]²`, otherwise the reference
/// sample's bounding box padded by 5% (2-D targets only).
pub fn kl_range(target: &Target, reference: ArrayView2<'_, f64>) -> Option<[f64; 2]> {
    if reference.ncols() != 2 {
        return None;
    }
    if target.name() == "checkerboard" {
        return Some([-4.5, 4.5]);
    }
    let (lo, hi) = reference
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let pad = 0.05 * (hi - lo);
    Some([lo - pad, hi + pad])
}

/// Trains `config.method` on `target` and writes the output directory (module docs).
pub fn run_flow_map(
    target: &Target,
    config: &FlowMapRunConfig,
    device: Device,
    folder: &RunFolder,
    progress: &Progress,
) -> Result<FlowMapReport, TrainError> {
    config.validate()?;
    let out = folder.path();
    let mut method = FlowMapToy::new(config.method.clone(), device)?;
    let seed = config.method.seed;
    let dim = config.method.dim;
    let latents = |n: usize| Tensor::randn([n as i64, dim], (Kind::Float, device));
    let spec = CurveSpec {
        steps: config.method.steps,
        every: config.curve_every as u64,
        samples: config.curve_samples,
        seed,
    };
    let (summary, curve, mut rng) =
        train_with_curve(&mut method, target, &spec, &latents, folder, progress)?;

    let start = std::time::Instant::now();
    let n = config.eval_samples;
    let z = latents(n);
    let reference = target.sample(n, &mut rng)?;
    let independent = target.sample(n, &mut rng)?;
    let range = kl_range(target, reference.view());
    let kl = |x: ArrayView2<'_, f64>| -> Result<Option<f64>, TrainError> {
        range
            .map(|[lo, hi]| histogram_kl(reference.view(), x, config.kl_bins, lo, hi))
            .transpose()
    };
    let sw =
        |x: ArrayView2<'_, f64>| sliced_w2(x, reference.view(), config.sliced_directions, seed);
    let floors = Floors {
        energy_distance: energy_distance(independent.view(), reference.view())?,
        sliced_w2: sw(independent.view())?,
        histogram_kl: kl(independent.view())?,
    };
    let (reference_map, ref_out) = method.reference_map(&z);
    let ref_out = tensor_array(&ref_out)?;
    let reference_nfe = if config.method.objective.kind == FlowMapKind::Pfmm {
        config.method.objective.band
    } else {
        400
    };
    let measure = |k: usize, g: &Array2<f64>| -> Result<AtSteps, TrainError> {
        if g.iter().any(|v| !v.is_finite()) {
            return Err(TrainError::NonFiniteLoss {
                which: "samples",
                value: f64::NAN,
                step: config.method.steps as usize,
            });
        }
        let core = core_tmid(
            g.view(),
            reference.view(),
            config.eval_sigma,
            seed,
            progress,
        )?;
        let map_error = (g - &ref_out)
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|v| v * v).sum::<f64>())
            .sum::<f64>()
            / n as f64;
        Ok(AtSteps {
            steps: k,
            energy_distance: energy_distance(g.view(), reference.view())?,
            sliced_w2: sw(g.view())?,
            histogram_kl: kl(g.view())?,
            tmid: core.estimate,
            tmid_std_error: core.std_error,
            tmid_ci95: core.ci95,
            tmid_p_value: core.p_value,
            map_error,
        })
    };
    let mut at_steps = Vec::new();
    let mut generated: Vec<(usize, Array2<f64>)> = Vec::new();
    for &k in &config.eval_steps {
        progress.stage(0, &format!("measure {k} steps"));
        let g = tensor_array(&method.sample_steps(&z, k))?;
        at_steps.push(measure(k, &g)?);
        generated.push((k, g));
    }
    progress.stage(0, "measure the reference map");
    let reference_at = measure(reference_nfe, &ref_out)?;
    progress.finish();
    let report = FlowMapReport {
        config: config.clone(),
        device: crate::device::device_name(device),
        parameters: method.parameters(),
        train_seconds: summary.seconds,
        seconds_per_step: summary.seconds / summary.steps_this_run.max(1) as f64,
        final_losses: summary
            .final_losses
            .expect("a flow-map run trains at least one step"),
        curve: curve.clone(),
        reference_map,
        reference: reference_at,
        kl_range: range,
        at_steps,
        floors,
        eval_seconds: start.elapsed().as_secs_f64(),
    };

    for (k, g) in &generated {
        midpoint::io::write_samples(&out.join(format!("samples_{k}.npy")), g)?;
    }
    midpoint::io::write_samples(&out.join("target.npy"), &reference)?;
    midpoint::io::write_samples(&out.join("reference.npy"), &ref_out)?;
    write_json(&out.join("metrics.json"), &report)?;
    let columns = loss_columns(&summary.losses, method.loss_fields());
    write_losses_csv(out, method.loss_fields(), &columns)?;
    if !curve.is_empty() {
        let mut text = String::from("step,energy_distance\n");
        for (s, e) in &curve {
            text.push_str(&format!("{s},{e:?}\n"));
        }
        crate::train::run_dir::write_atomic(&out.join("curve.csv"), text.as_bytes())?;
    }
    let mut panels = vec![Panel {
        title: format!("target: {}", target.name()),
        points: &reference,
    }];
    for ((k, g), m) in generated.iter().zip(&report.at_steps) {
        panels.push(Panel {
            title: format!(
                "{} {k} step{} (energy {:.4}, SW2² {:.4}{})",
                method.name(),
                if *k == 1 { "" } else { "s" },
                m.energy_distance,
                m.sliced_w2,
                m.histogram_kl
                    .map(|v| format!(", KL {v:.3}"))
                    .unwrap_or_default()
            ),
            points: g,
        });
    }
    scatter_panels(&out.join("scatter.png"), &panels)?;
    Ok(report)
}
