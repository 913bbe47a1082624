//! `midpoint-train critic-check`: the critic half of Algorithm 1 against two **fixed** laws,
//! compared with the exact numerics of the core crate.
//!
//! The critic `f_ψ` is trained by [`Mgm::field_step`] (variant `mgm`, noise `σ`) on
//! `x0 ~ p0`, `x1 ~ p1`. Then, on fresh draws:
//!
//! * **field error** (Eq. 5): on a grid of times `t_k = (k + ½)/(2K)` covering `[0, ½]`, the
//!   relative L2 error `‖f_ψ(·, t_k) − m_{t_k}‖ / ‖m_{t_k}‖` in `L2(p̃_{t_k})`, with `m_t` the
//!   exact field of [`midpoint::field::displacement_field`]; `field_rel_l2` is its average over
//!   the grid;
//! * **variational value** (Prop. 3.3): `∫₀^½ J(f_ψ) dt = ½·E_{t~U[0,½]}[2⟨f_ψ(x̃_t, t), Δ⟩ −
//!   ‖f_ψ(x̃_t, t)‖²]` with its standard error, beside the exact `D_t-mid^{I,σ}` of
//!   [`midpoint::divergence::d_tmid`]. Prop. 3.3 says `J(f) = D − E‖f − m_t‖²`, so the value
//!   can only fall short of the exact one, by the critic's mean squared field error
//!   (reported as `field_mse`, also from the exact field).

use crate::error::TrainError;
use crate::methods::mgm::{Mgm, MgmConfig, Side, Variant};
use crate::nets::mlp::{Mlp, MlpConfig};
use crate::train::bridge::{law_tensor, tensor_array};
use crate::train::network::{Field, Network};
use crate::train::progress::Progress;
use midpoint::divergence::{d_tmid, ExactOptions};
use midpoint::field::displacement_field;
use midpoint::interpolant::Observation;
use midpoint::Law;
use rand::SeedableRng;
use tch::{nn, Device, Kind, Tensor};

/// How a critic is fitted by Algorithm 1's critic step.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CriticFit {
    /// Adam steps.
    pub steps: usize,
    /// Pairs per step.
    pub batch: i64,
    /// Peak learning rate.
    pub lr: f64,
    /// Cosine decay of the learning rate to 0 over the run (Algorithm 1 itself trains at a
    /// constant rate; a fit to a fixed pair of laws converges further with the decay).
    pub cosine_decay: bool,
    /// Seed (torch and data).
    pub seed: u64,
    /// Hidden width of the critic MLP ([`MlpConfig::critic`] otherwise).
    pub width: i64,
    /// Residual blocks of the critic MLP.
    pub blocks: usize,
}

impl Default for CriticFit {
    /// 4000 steps of 1024 pairs, peak lr 1e-3 with cosine decay, MLP of width 128 with 2 blocks.
    fn default() -> Self {
        CriticFit {
            steps: 4000,
            batch: 1024,
            lr: 1e-3,
            cosine_decay: true,
            seed: 0,
            width: 128,
            blocks: 2,
        }
    }
}

impl CriticFit {
    /// Refuses zero steps, batch or width.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.steps == 0 || self.batch < 1 || self.width < 1 {
            return Err(TrainError::InvalidOption(
                "critic fit needs at least 1 step, a batch of at least 1 and a width of at least 1"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Trains `critic` for `fit.steps` critic steps of Algorithm 1 on pairs `(x0, x1) =
/// pairs(fit.batch)`; returns the loss of every step.
pub fn train_critic<F: Field>(
    mgm: &Mgm,
    critic: &mut Network<F>,
    fit: &CriticFit,
    pairs: &mut dyn FnMut(i64) -> Result<(Tensor, Tensor), TrainError>,
    progress: &Progress,
) -> Result<Vec<f64>, TrainError> {
    fit.validate()?;
    let mut losses = Vec::with_capacity(fit.steps);
    for step in 0..fit.steps {
        if fit.cosine_decay {
            let frac = step as f64 / fit.steps as f64;
            critic
                .opt
                .set_lr(fit.lr * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos()));
        }
        let (x0, x1) = pairs(fit.batch)?;
        losses.push(mgm.field_step(critic, &x0, &x1, step)?.loss);
        progress.inc();
        if step % 100 == 0 {
            progress.message(format!("L_ψ {:.4}", losses[step]));
        }
    }
    Ok(losses)
}

/// A fresh critic MLP ([`MlpConfig::critic`] with the fit's width and blocks) with its Adam.
pub fn new_critic(dim: i64, fit: &CriticFit, device: Device) -> Result<Network<Mlp>, TrainError> {
    let vs = nn::VarStore::new(device);
    let net = Mlp::new(
        &vs.root(),
        MlpConfig {
            width: fit.width,
            blocks: fit.blocks,
            ..MlpConfig::field(dim)
        },
    );
    Network::new(net, vs, fit.lr)
}

/// A Monte Carlo value with its standard error.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct McValue {
    /// The estimate.
    pub value: f64,
    /// Its standard error.
    pub std_error: f64,
    /// Number of independent terms.
    pub samples: usize,
}

/// Streaming sums of a per-sample quantity.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    n: usize,
    sum: f64,
    sum_sq: f64,
}

impl Sums {
    fn push(&mut self, v: &Tensor) -> Result<(), TrainError> {
        let v = v.to_kind(Kind::Double);
        self.n += v.size()[0] as usize;
        self.sum += f64::try_from(v.sum(Kind::Double))?;
        self.sum_sq += f64::try_from(v.square().sum(Kind::Double))?;
        Ok(())
    }

    /// `scale · mean` with its standard error.
    fn finish(&self, scale: f64) -> McValue {
        let n = self.n as f64;
        let mean = self.sum / n;
        let var = ((self.sum_sq - n * mean * mean) / (n - 1.0)).max(0.0);
        McValue {
            value: scale * mean,
            std_error: scale * (var / n).sqrt(),
            samples: self.n,
        }
    }
}

/// The per-pair terms `2⟨f(x̃_t, t), x1 − x0⟩ − ‖f(x̃_t, t)‖²` (Prop. 3.3) on one draw with
/// `t ~ U[0, ½]`, flipped, noise of the critic side; shape `[N]`.
pub fn variational_terms<F: Field>(
    mgm: &Mgm,
    critic: &F,
    x0: &Tensor,
    x1: &Tensor,
) -> Result<Tensor, TrainError> {
    tch::no_grad(|| {
        let d = mgm.draw(Side::Field, x0, x1)?;
        let f = critic.field(&d.x_tilde, &d.t, false);
        let residual: Tensor = (x1 - x0) * 2.0 - &f;
        Ok((&f * residual)
            .flatten(1, -1)
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Double))
    })
}

/// `∫₀^½ J(f) dt = ½·E[2⟨f, Δ⟩ − ‖f‖²]` (Prop. 3.3) from `n` independent pairs drawn in chunks
/// by `pairs(chunk)` (which may return fewer rows than asked), with its standard error. `mgm`
/// must be the `mgm` variant (`t ~ U[0, ½]`, flipped).
pub fn variational_value<F: Field>(
    mgm: &Mgm,
    critic: &F,
    pairs: &mut dyn FnMut(i64) -> Result<(Tensor, Tensor), TrainError>,
    n: usize,
) -> Result<McValue, TrainError> {
    if mgm.variant() != Variant::Mgm {
        return Err(TrainError::InvalidOption(
            "the variational value of D_t-mid needs the mgm variant (t ~ U[0, ½], flipped)".into(),
        ));
    }
    if n < 2 {
        return Err(TrainError::InvalidOption(
            "need at least 2 pairs for a standard error".into(),
        ));
    }
    let mut sums = Sums::default();
    while sums.n < n {
        let (x0, x1) = pairs(((n - sums.n) as i64).min(1 << 16))?;
        if x0.size()[0] == 0 {
            break;
        }
        sums.push(&variational_terms(mgm, critic, &x0, &x1)?)?;
    }
    Ok(sums.finish(0.5))
}

/// Settings of `midpoint-train critic-check`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CriticCheckConfig {
    /// `σ` of `σ_t = sqrt(σ·t(1−t))` (linear interpolant).
    pub sigma: f64,
    /// How the critic is fitted.
    pub fit: CriticFit,
    /// Number `K` of grid times for the field error.
    pub grid: usize,
    /// Points per grid time.
    pub points_per_time: usize,
    /// Pairs for the variational value.
    pub variational_pairs: usize,
}

impl Default for CriticCheckConfig {
    fn default() -> Self {
        CriticCheckConfig {
            sigma: 0.05,
            fit: CriticFit::default(),
            grid: 16,
            points_per_time: 16_384,
            variational_pairs: 1 << 20,
        }
    }
}

/// Field error at one grid time.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FieldErrorAt {
    /// The time.
    pub t: f64,
    /// `‖f − m_t‖ / ‖m_t‖` in `L2(p̃_t)` (Monte Carlo over `points_per_time` draws).
    pub rel_l2: f64,
    /// `E‖f − m_t‖²`.
    pub mse: f64,
    /// `E‖m_t‖² = D(t)` (Rao–Blackwell estimate on the same draws).
    pub field_sq: f64,
}

/// What `critic-check` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CriticCheckReport {
    /// Mean over the time grid of the relative L2 field error.
    pub field_rel_l2: f64,
    /// Largest relative L2 field error on the grid.
    pub field_rel_l2_max: f64,
    /// `∫₀^½ E‖f_ψ − m_t‖² dt` (midpoint rule on the grid).
    pub field_mse: f64,
    /// Per grid time.
    pub field_error_by_t: Vec<FieldErrorAt>,
    /// `∫₀^½ J(f_ψ) dt`.
    pub variational_value: f64,
    /// Its standard error.
    pub std_error: f64,
    /// Pairs behind it.
    pub variational_pairs: usize,
    /// Exact `D_t-mid^{lin,σ}(p0, p1)` (core crate).
    pub exact_tmid: f64,
    /// Error bound of the exact value.
    pub exact_error_bound: f64,
    /// How the exact value was computed.
    pub exact_method: String,
    /// `(variational − exact) / exact`.
    pub relative_gap: f64,
    /// The critic's last training loss.
    pub final_loss: f64,
    /// Settings.
    pub config: CriticCheckConfig,
    /// Device used.
    pub device: String,
    /// Wall-clock seconds of training and evaluation.
    pub seconds: f64,
}

/// Relative L2 field error of `critic` against the exact field `m_t` of
/// [`displacement_field`] (Eq. 5) at the grid times `t_k = (k + ½)/(2K)`, `K = config.grid`,
/// each on `config.points_per_time` fresh flipped observations (noise of `si`) of pairs from
/// `pairs`.
pub fn field_errors<F: Field>(
    p0: &Law,
    p1: &Law,
    si: &midpoint::StochasticInterpolant,
    critic: &F,
    config: &CriticCheckConfig,
    pairs: &mut dyn FnMut(i64) -> Result<(Tensor, Tensor), TrainError>,
    progress: &Progress,
) -> Result<Vec<FieldErrorAt>, TrainError> {
    let (k, points) = (config.grid, config.points_per_time);
    let mut by_t = Vec::with_capacity(k);
    for i in 0..k {
        let t = (i as f64 + 0.5) / (2.0 * k as f64);
        let (x0, x1) = pairs(points as i64)?;
        let n = points;
        let b: Vec<bool> =
            Vec::<f64>::try_from(&Tensor::rand([n as i64], (Kind::Double, Device::Cpu)))?
                .into_iter()
                .map(|u| u < 0.5)
                .collect();
        let eps = x0.randn_like();
        let x_tilde = crate::methods::mgm::observe(si, &x0, &x1, &vec![t; n], &b, &eps)?;
        let tt = Tensor::full([n as i64], t, (Kind::Float, x0.device()));
        let f = tch::no_grad(|| critic.field(&x_tilde, &tt, false));
        let m = displacement_field(p0, p1, si, t, Observation::Flipped)?
            .eval_batch(tensor_array(&x_tilde)?.view())?;
        let f = tensor_array(&f)?;
        let mse = (&f - &m).mapv(|v| v * v).sum() / n as f64;
        let field_sq = m.mapv(|v| v * v).sum() / n as f64;
        by_t.push(FieldErrorAt {
            t,
            rel_l2: (mse / field_sq).sqrt(),
            mse,
            field_sq,
        });
        progress.inc();
    }
    Ok(by_t)
}

/// Runs the check (see the module docs) with a fresh critic MLP.
pub fn critic_check(
    p0: &Law,
    p1: &Law,
    config: &CriticCheckConfig,
    device: Device,
    progress: &Progress,
) -> Result<CriticCheckReport, TrainError> {
    check_inputs(p0, p1, config)?;
    tch::manual_seed(config.fit.seed as i64);
    let mut critic = new_critic(p0.dim() as i64, &config.fit, device)?;
    critic_check_with(p0, p1, config, &mut critic, device, progress)
}

/// Refuses laws of different dimensions and an invalid fit.
fn check_inputs(p0: &Law, p1: &Law, config: &CriticCheckConfig) -> Result<(), TrainError> {
    if p0.dim() != p1.dim() {
        return Err(TrainError::InvalidOption(format!(
            "p0 has dimension {} but p1 has dimension {}",
            p0.dim(),
            p1.dim()
        )));
    }
    config.fit.validate()
}

/// Runs the check (see the module docs) on a given critic of `[N, d]` samples, trained with
/// `config.fit` (build its optimizer at `config.fit.lr`; `width` and `blocks` are not used).
/// Seed torch before building the critic for a reproducible run.
pub fn critic_check_with<F: Field>(
    p0: &Law,
    p1: &Law,
    config: &CriticCheckConfig,
    critic: &mut Network<F>,
    device: Device,
    progress: &Progress,
) -> Result<CriticCheckReport, TrainError> {
    let start = std::time::Instant::now();
    check_inputs(p0, p1, config)?;
    if config.grid == 0 || config.points_per_time < 2 {
        return Err(TrainError::InvalidOption(
            "the grid needs at least 1 time and 2 points per time".into(),
        ));
    }
    let mgm = Mgm::new(&MgmConfig::linear(Variant::Mgm, config.sigma))?;
    let si = mgm.interpolant(Side::Field).clone();
    let exact = d_tmid(p0, p1, &si, &ExactOptions::default())?;

    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(config.fit.seed);
    let mut pairs = |b: i64| -> Result<(Tensor, Tensor), TrainError> {
        let b = b as usize;
        Ok((
            law_tensor(p0, b, &mut rng, device)?,
            law_tensor(p1, b, &mut rng, device)?,
        ))
    };
    progress.stage(config.fit.steps as u64, "critic");
    let losses = train_critic(&mgm, critic, &config.fit, &mut pairs, progress)?;

    // (a) Field error on the time grid, against the exact field at the same points.
    progress.stage(config.grid as u64, "field error");
    let k = config.grid;
    let by_t = field_errors(p0, p1, &si, &critic.net, config, &mut pairs, progress)?;
    let field_rel_l2 = by_t.iter().map(|e| e.rel_l2).sum::<f64>() / k as f64;
    let field_rel_l2_max = by_t.iter().map(|e| e.rel_l2).fold(0.0, f64::max);
    // Midpoint rule for ∫₀^½: each grid cell has width 1/(2K).
    let field_mse = by_t.iter().map(|e| e.mse).sum::<f64>() / (2.0 * k as f64);

    // (b) The variational value on fresh draws.
    progress.stage(1, "variational");
    let v = variational_value(&mgm, &critic.net, &mut pairs, config.variational_pairs)?;
    progress.finish();
    Ok(CriticCheckReport {
        field_rel_l2,
        field_rel_l2_max,
        field_mse,
        field_error_by_t: by_t,
        variational_value: v.value,
        std_error: v.std_error,
        variational_pairs: v.samples,
        exact_tmid: exact.value,
        exact_error_bound: exact.error_bound,
        exact_method: format!("{:?}", exact.method),
        relative_gap: (v.value - exact.value) / exact.value,
        final_loss: *losses.last().expect("at least one step"),
        config: *config,
        device: crate::device::device_name(device),
        seconds: start.elapsed().as_secs_f64(),
    })
}
