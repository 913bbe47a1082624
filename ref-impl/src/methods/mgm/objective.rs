//! Algorithm 1's observation model (Eq. 6–7), its two losses (Algorithm 1, Eq. 10) and one
//! critic or generator update ([`Mgm`]); the module docs of [`crate::methods::mgm`] state them.

use crate::dist::{Replica, Shard};
use crate::error::TrainError;
use crate::train::network::{Field, Generator, Network};
use crate::train::precision::Precision;
use midpoint::interpolant::{Branch, Interpolant, NoiseSchedule, Observation};
use midpoint::montecarlo::TimeLaw;
use midpoint::StochasticInterpolant;
use tch::{Device, Kind, Tensor};

/// Which objective Algorithm 1 optimizes (App. C).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Full MGM: flipped observation (Eq. 7), `t ~ U[0, ½]` — `D_t-mid^{I,σ}` (Eq. 8).
    Mgm,
    /// Midpoint only: `t = ½` throughout — `D_mid` (Eq. 2; the flip is void at `t = ½`).
    Midpoint,
    /// Naive: no flip (`b ≡ 0`), `t ~ U[0, 1]` — the invalid objective of Eq. 3.
    Naive,
}

impl Variant {
    /// How `t` is drawn: `U[0, ½]`, fixed `½` or `U[0, 1]`.
    pub fn time_law(self) -> TimeLaw {
        match self {
            Variant::Mgm => TimeLaw::TMID,
            Variant::Midpoint => TimeLaw::Fixed(0.5),
            Variant::Naive => TimeLaw::NAIVE,
        }
    }

    /// Flipped (Eq. 7) for `mgm` and `midpoint`, unflipped (Eq. 6) for `naive`.
    pub fn observation(self) -> Observation {
        match self {
            Variant::Mgm | Variant::Midpoint => Observation::Flipped,
            Variant::Naive => Observation::Unflipped,
        }
    }

    /// `mgm`, `midpoint` or `naive`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Mgm => "mgm",
            Variant::Midpoint => "midpoint",
            Variant::Naive => "naive",
        }
    }
}

/// Configuration of Algorithm 1.
#[derive(Debug, Clone)]
pub struct MgmConfig {
    /// The objective.
    pub variant: Variant,
    /// `I_t` (the paper uses [`Interpolant::Linear`]).
    pub interpolant: Interpolant,
    /// `σ` of `σ_t = sqrt(σ·t(1−t))` in the generator step (Table 1b).
    pub sigma: f64,
    /// `σ'` of the field step (Table 1c; equal to `sigma` for Table 1b).
    pub critic_sigma: f64,
}

impl MgmConfig {
    /// The paper's setting: linear interpolant, the same `σ` on both sides.
    pub fn linear(variant: Variant, sigma: f64) -> Self {
        MgmConfig {
            variant,
            interpolant: Interpolant::Linear,
            sigma,
            critic_sigma: sigma,
        }
    }
}

/// Which network a draw of `(t, b, ε, x̃_t)` is for: selects `σ'` or `σ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The field step (noise `σ'`).
    Field,
    /// The generator step (noise `σ`).
    Generator,
}

/// One draw of the flipped observation for a batch.
#[derive(Debug)]
pub struct Draw {
    /// `t`, shape `[N]`, float32 on the batch's device (what the field sees).
    pub t: Tensor,
    /// `b` (1 = flipped branch), shape `[N]`, float32.
    pub b: Tensor,
    /// `ε`, the shape of `x0`.
    pub eps: Tensor,
    /// `x̃_t`, the shape of `x0`; carries gradients of `x0` (and `x1`).
    pub x_tilde: Tensor,
}

/// `t ∈ [N]` as `[N, 1, ..., 1]` so that it scales samples of shape `like`.
fn per_sample(v: &Tensor, like: &Tensor) -> Tensor {
    let mut shape = vec![-1i64];
    shape.resize(like.dim(), 1);
    v.reshape(shape)
}

/// Draws `t` and `b` for `n` samples from torch's CPU generator, in this order (so a run is
/// reproducible from `tch::manual_seed`): `t` from the variant's time law, then `b ~
/// Bernoulli(½)` (all `false` for the unflipped `naive` variant).
pub fn sample_times(variant: Variant, n: i64) -> (Vec<f64>, Vec<bool>) {
    let opts = (Kind::Double, Device::Cpu);
    let t: Vec<f64> = match variant.time_law() {
        TimeLaw::Fixed(t) => vec![t; n as usize],
        TimeLaw::Uniform { lo, hi } => {
            let u = Vec::<f64>::try_from(&Tensor::rand([n], opts)).expect("1-D double tensor");
            u.into_iter().map(|u| lo + (hi - lo) * u).collect()
        }
    };
    let b = match variant.observation() {
        Observation::Flipped => {
            let u = Vec::<f64>::try_from(&Tensor::rand([n], opts)).expect("1-D double tensor");
            u.into_iter().map(|u| u < 0.5).collect()
        }
        Observation::Unflipped => vec![false; n as usize],
    };
    (t, b)
}

/// The flipped observation of Eq. 7 for given `(t, b, ε)`:
/// `x̃_n = α_n·x0_n + β_n·x1_n + γ_n·ε_n` with `(α, β, γ) = si.branch(t_n, b_n)`, i.e.
/// `(α(t), β(t), σ_t)` for `b = 0` and `(β(t), α(t), σ_t)` for `b = 1` (which is
/// `I_{1−t}(x0, x1) + σ_{1−t} ε` by the interpolant's symmetry). Differentiable in `x0` and
/// `x1`. Errors if the lengths of `t` and `b` differ from the batch size or `ε`'s shape from
/// `x0`'s.
pub fn observe(
    si: &StochasticInterpolant,
    x0: &Tensor,
    x1: &Tensor,
    t: &[f64],
    b: &[bool],
    eps: &Tensor,
) -> Result<Tensor, TrainError> {
    let n = x0.size().first().copied().unwrap_or(0);
    if x1.size() != x0.size() || eps.size() != x0.size() {
        return Err(TrainError::InvalidOption(format!(
            "x0 {:?}, x1 {:?} and ε {:?} must have the same shape",
            x0.size(),
            x1.size(),
            eps.size()
        )));
    }
    if t.len() as i64 != n || b.len() as i64 != n {
        return Err(TrainError::InvalidOption(format!(
            "{} times and {} flips for a batch of {n}",
            t.len(),
            b.len()
        )));
    }
    if let Some(bad) = t.iter().find(|t| !(0.0..=1.0).contains(*t)) {
        return Err(TrainError::InvalidOption(format!(
            "t = {bad} is outside [0, 1]"
        )));
    }
    let (mut alpha, mut beta, mut gamma) = (Vec::new(), Vec::new(), Vec::new());
    for (&t, &b) in t.iter().zip(b) {
        let c = si.branch(t, if b { Branch::Flipped } else { Branch::Forward });
        alpha.push(c.alpha);
        beta.push(c.beta);
        gamma.push(c.gamma);
    }
    // Coefficients in double precision, rounded once to the samples' dtype on their device.
    let coef = |v: Vec<f64>| {
        per_sample(&Tensor::from_slice(&v), x0)
            .to_device(x0.device())
            .to_kind(x0.kind())
    };
    Ok(coef(alpha) * x0 + coef(beta) * x1 + coef(gamma) * eps)
}

/// Per-sample squared norm summed over all non-batch dimensions, averaged over the batch.
fn batch_mean_sq_sum(v: &Tensor) -> Tensor {
    v.flatten(1, -1)
        .sum_dim_intlist([1i64].as_slice(), false, None::<Kind>)
        .mean(None::<Kind>)
}

/// The field's loss `L_ψ = mean_n ‖pred_n − (x1_n − x0_n)‖²` (Algorithm 1), with the target
/// `x1 − x0` stopped: its gradient reaches `pred` only (`∂L/∂pred = 2(pred − Δ)/N`).
pub fn field_loss(pred: &Tensor, x0: &Tensor, x1: &Tensor) -> Tensor {
    let target = (x1 - x0).detach();
    batch_mean_sq_sum(&(pred - target).square())
}

/// The generator's loss `L_θ = mean_n [2⟨pred_n, x1_n − x0_n⟩ − ‖pred_n‖²]` (Algorithm 1,
/// Eq. 10), where `pred = f_ψ(x̃_t, t)`. Nothing is stopped: `∂L/∂pred = 2(Δ − pred)/N` and
/// `∂L/∂x0 = −2·pred/N` directly, plus whatever reaches `x0` through `pred`. The field must be
/// frozen by the caller ([`Mgm::generator_step`] does).
pub fn generator_loss(pred: &Tensor, x0: &Tensor, x1: &Tensor) -> Tensor {
    let residual: Tensor = (x1 - x0) * 2.0 - pred;
    (pred * residual)
        .flatten(1, -1)
        .sum_dim_intlist([1i64].as_slice(), false, None::<Kind>)
        .mean(None::<Kind>)
}

/// The values of `N` scalar tensors (any float kind, one device) in one device-to-host copy:
/// on a GPU each read is a synchronisation that drains the queue of launched kernels, so the
/// numbers a step logs are read together. Each value is converted to f64 exactly as a read of
/// its own would be (float32 and bf16 are subsets of f64).
fn read_back<const N: usize>(xs: &[Tensor; N]) -> Result<[f64; N], TrainError> {
    let parts: Vec<Tensor> = xs
        .iter()
        .map(|x| x.detach().reshape([1]).to_kind(Kind::Double))
        .collect();
    let v = Vec::<f64>::try_from(Tensor::cat(&parts, 0).to_device(Device::Cpu))?;
    let mut out = [0.0; N];
    out.copy_from_slice(&v);
    Ok(out)
}

/// Algorithm 1's observation model with its two noise levels.
#[derive(Debug, Clone)]
pub struct Mgm {
    variant: Variant,
    field_si: StochasticInterpolant,
    generator_si: StochasticInterpolant,
    precision: Precision,
    clip: Option<f64>,
    /// This process's place in a data-parallel job (`None`: alone).
    replica: Option<Replica>,
}

/// What one field update measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldUpdate {
    /// `L_ψ` before the update.
    pub loss: f64,
    /// `mean_n ‖x1_n − x0_n‖²` of the batch: `L_ψ` of the zero field, the scale of `loss`.
    pub delta_sq: f64,
    /// Global gradient norm of `ψ` before clipping.
    pub grad_norm: f64,
}

/// Statistics of a batch of raw (not EMA) generator samples, over all their entries.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleStats {
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub std: f64,
    /// Fraction of entries outside `[−1, 1]` (images: the data range).
    pub outside: f64,
}

impl SampleStats {
    /// The statistics of `x` (any shape; computed in float32 without a graph), read back to
    /// the host in one copy.
    pub fn of(x: &Tensor) -> Result<Self, TrainError> {
        let [mean, std, outside] = read_back(&Self::tensors(x))?;
        Ok(SampleStats { mean, std, outside })
    }

    /// Mean, standard deviation and fraction outside `[−1, 1]` of `x` as 0-d float32 tensors
    /// on its device, not yet read back.
    fn tensors(x: &Tensor) -> [Tensor; 3] {
        tch::no_grad(|| {
            let x = x.detach().to_kind(Kind::Float);
            [
                x.mean(Kind::Float),
                x.std(false),
                x.abs().gt(1.0).to_kind(Kind::Float).mean(Kind::Float),
            ]
        })
    }

    /// The global batch's statistics from every rank's (equal shares): means averaged, the
    /// standard deviation from the average of `std² + mean²` (exact for population moments).
    pub fn global(self, replica: Option<&Replica>) -> Result<Self, TrainError> {
        let Some(r) = replica else { return Ok(self) };
        let mean = r.mean(self.mean)?;
        let second = r.mean(self.std * self.std + self.mean * self.mean)?;
        Ok(SampleStats {
            mean,
            std: (second - mean * mean).max(0.0).sqrt(),
            outside: r.mean(self.outside)?,
        })
    }
}

/// What one generator update measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneratorUpdate {
    /// `L_θ` before the update. On a batch the field never saw, this is a held-out value of
    /// the variational objective `J(f_ψ)` of Prop. 3.3 (at the generator's `σ`, averaged over
    /// `t`): ≥ 0 in expectation for any field better than `f = 0`.
    pub loss: f64,
    /// Global gradient norm of `θ` before clipping.
    pub grad_norm: f64,
    /// The raw generator's samples `x0 = G(z)` of this batch.
    pub raw: SampleStats,
}

/// Losses and health signals of one [`MgmTrainer::step`] (one line of `losses.jsonl`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepLosses {
    /// `L_ψ` of the field step (before its update; the mean over the step's field updates).
    pub critic: f64,
    /// `L_θ` of the generator step (before its update): the held-out `J` of
    /// [`GeneratorUpdate::loss`].
    pub generator: f64,
    /// `critic / mean ‖x1 − x0‖²`: 1 for the zero field, ≈ 1 − J/E‖Δ‖² for a fitted one.
    pub critic_rel: f64,
    /// Gradient norm of the field (last field update of the step).
    pub grad_critic: f64,
    /// Gradient norm of the generator.
    pub grad_generator: f64,
    /// Mean of the raw generator's samples.
    pub raw_mean: f64,
    /// Standard deviation of the raw generator's samples.
    pub raw_std: f64,
    /// Fraction of the raw generator's sample entries outside `[−1, 1]`.
    pub raw_outside: f64,
}

impl Mgm {
    /// Validates `σ, σ' ≥ 0` (finite) and builds the two stochastic interpolants.
    pub fn new(config: &MgmConfig) -> Result<Self, TrainError> {
        let si = |sigma: f64| -> Result<StochasticInterpolant, TrainError> {
            Ok(StochasticInterpolant::new(
                config.interpolant.clone(),
                NoiseSchedule::sqrt_bridge(sigma)?,
            ))
        };
        Ok(Mgm {
            variant: config.variant,
            field_si: si(config.critic_sigma)?,
            generator_si: si(config.sigma)?,
            precision: Precision::Fp32,
            clip: None,
            replica: None,
        })
    }

    /// The same objective with every update's gradient norm clipped to `clip` (none: the
    /// paper's plain Adam). Errors unless `clip` is finite and > 0.
    pub fn with_clip(mut self, clip: Option<f64>) -> Result<Self, TrainError> {
        if let Some(c) = clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(TrainError::InvalidOption(format!(
                    "gradient clip must be finite and > 0, got {c}"
                )));
            }
        }
        self.clip = clip;
        Ok(self)
    }

    /// The same objective with the forward passes and losses in `precision` (bf16 autocast:
    /// [`crate::train::precision`]); the backward passes and the optimizers stay fp32.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The same objective as one rank of a data-parallel job ([`crate::dist`]): its draws are
    /// made at the global batch's shape and cut to this rank's rows, its training-mode
    /// forwards draw dropout from the rank's own stream, its losses and statistics are the
    /// global batch's and its gradients are averaged over the ranks before Adam.
    pub fn with_replica(mut self, replica: Replica) -> Self {
        self.replica = Some(replica);
        self
    }

    /// This rank's share of the batch (the whole batch when alone).
    pub fn shard(&self) -> Shard {
        self.replica.as_ref().map_or(Shard::ALL, |r| r.shard())
    }

    /// `f` (a training-mode forward) on the rank's own stream when data-parallel.
    fn forward<T>(&self, f: impl FnOnce() -> T) -> Result<T, TrainError> {
        match &self.replica {
            Some(r) => Ok(r.on_own_stream(f)?),
            None => Ok(f()),
        }
    }

    /// The global batch's mean of a per-rank mean.
    fn global_mean(&self, x: f64) -> Result<f64, TrainError> {
        match &self.replica {
            Some(r) => Ok(r.mean(x)?),
            None => Ok(x),
        }
    }

    /// Checks a loss (this rank's value, read back) of the global batch (every rank sees the
    /// same value, so all stop together on a non-finite one).
    fn finite_global(
        &self,
        which: &'static str,
        loss: f64,
        step: usize,
    ) -> Result<f64, TrainError> {
        let value = self.global_mean(loss)?;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(TrainError::NonFiniteLoss { which, value, step })
        }
    }

    /// The generator's loss (checked finite) and its samples' statistics, of the global batch,
    /// read back together.
    fn loss_and_stats(
        &self,
        loss: &Tensor,
        x0: &Tensor,
        step: usize,
    ) -> Result<(f64, SampleStats), TrainError> {
        let [s_mean, s_std, s_out] = SampleStats::tensors(x0);
        let [value, mean, std, outside] = read_back(&[loss.shallow_clone(), s_mean, s_std, s_out])?;
        let value = self.finite_global("generator", value, step)?;
        let raw = SampleStats { mean, std, outside }.global(self.replica.as_ref())?;
        Ok((value, raw))
    }

    /// The precision of the forward passes and losses.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The stochastic interpolant of one side (`σ'` for the field, `σ` for the generator).
    pub fn interpolant(&self, side: Side) -> &StochasticInterpolant {
        match side {
            Side::Field => &self.field_si,
            Side::Generator => &self.generator_si,
        }
    }

    /// Draws `(t, b, ε)` (in this order: `t`, `b` on torch's CPU generator, `ε` on the batch's
    /// device) and builds `x̃_t` by [`observe`].
    pub fn draw(&self, side: Side, x0: &Tensor, x1: &Tensor) -> Result<Draw, TrainError> {
        let shard = self.shard();
        let n = x0.size().first().copied().unwrap_or(0);
        // At the global batch's shape, then this rank's rows (all of them when alone).
        let global = n * shard.world as i64;
        let (start, len) = if shard.world == 1 {
            (0, n)
        } else {
            shard.rows(global)?
        };
        let (t, b) = sample_times(self.variant, global);
        let (t, b) = (
            t[start as usize..(start + len) as usize].to_vec(),
            b[start as usize..(start + len) as usize].to_vec(),
        );
        let mut shape = x0.size();
        shape[0] = global;
        let eps = shard
            .local(&Tensor::randn(shape.as_slice(), (x0.kind(), x0.device())))?
            .detach();
        let x_tilde = observe(self.interpolant(side), x0, x1, &t, &b, &eps)?;
        // `t` and `b` travel to the device in one copy (each host-to-device copy from pageable
        // memory synchronises); `as f32` rounds to nearest as `to_kind(Float)` does.
        let n = t.len() as i64;
        let tb: Vec<f32> = t
            .iter()
            .map(|&t| t as f32)
            .chain(b.iter().map(|&b| f32::from(u8::from(b))))
            .collect();
        let tb = Tensor::from_slice(&tb).view([2, n]).to_device(x0.device());
        let (t, b) = (tb.get(0), tb.get(1));
        Ok(Draw { t, b, eps, x_tilde })
    }

    /// `L_ψ` on a fresh draw (noise `σ'`) with its graph: `x0` is detached, the field runs in
    /// training mode.
    pub fn field_objective<F: Field>(
        &self,
        field: &F,
        x0: &Tensor,
        x1: &Tensor,
    ) -> Result<Tensor, TrainError> {
        let x0 = x0.detach();
        let d = self.draw(Side::Field, &x0, x1)?;
        let pred = self.forward(|| field.field(&d.x_tilde, &d.t, true))?;
        Ok(field_loss(&pred, &x0, x1))
    }

    /// `L_θ` on a fresh draw (noise `σ`) with its graph: `x0 = G(z)` in training mode, the
    /// critic in evaluation mode; gradients reach `θ` through the target and through `x̃_t`.
    /// Freezing the field's variables is the caller's business ([`Mgm::generator_step`]).
    pub fn generator_objective<G: Generator, F: Field>(
        &self,
        generator: &G,
        field: &F,
        z: &Tensor,
        x1: &Tensor,
    ) -> Result<Tensor, TrainError> {
        Ok(self
            .generator_objective_and_samples(generator, field, z, x1)?
            .0)
    }

    /// [`Mgm::generator_objective`] and the samples `x0 = G(z)` it was computed on (with their
    /// graph).
    pub fn generator_objective_and_samples<G: Generator, F: Field>(
        &self,
        generator: &G,
        field: &F,
        z: &Tensor,
        x1: &Tensor,
    ) -> Result<(Tensor, Tensor), TrainError> {
        let x0 = self.forward(|| generator.generate(z, true))?;
        let d = self.draw(Side::Generator, &x0, x1)?;
        let pred = field.field(&d.x_tilde, &d.t, false);
        Ok((generator_loss(&pred, &x0, x1), x0))
    }

    /// One field update on `(x0, x1)`: `L_ψ` on a fresh draw with noise `σ'`, then one Adam
    /// step on `ψ` (gradient clipped if so configured). `x0` is detached here, so passing
    /// `G(z)` with a graph is harmless (the trainer computes it under `no_grad` anyway).
    /// Returns `L_ψ` before the update with the batch's scale and the gradient norm; a
    /// non-finite loss is an error and updates nothing.
    pub fn field_step<F: Field>(
        &self,
        field: &mut Network<F>,
        x0: &Tensor,
        x1: &Tensor,
        step: usize,
    ) -> Result<FieldUpdate, TrainError> {
        let loss = self
            .precision
            .autocast(x1.device(), || self.field_objective(&field.net, x0, x1))??;
        let delta_sq = tch::no_grad(|| {
            batch_mean_sq_sum(&(x1.to_kind(Kind::Float) - x0.to_kind(Kind::Float)).square())
        });
        let [value, delta_sq] = read_back(&[loss.shallow_clone(), delta_sq])?;
        let value = self.finite_global("critic", value, step)?;
        let delta_sq = self.global_mean(delta_sq)?;
        let grad_norm = field.update_averaged(&loss, self.clip, self.replica.as_ref())?;
        Ok(FieldUpdate {
            loss: value,
            delta_sq,
            grad_norm,
        })
    }

    /// The generator step's loss and raw-sample statistics without updating anything (the
    /// critic warmup of [`super::MgmTrainer::with_critic_warmup`]); `grad_norm` is 0.
    pub fn generator_value<G: Generator, F: Field>(
        &self,
        generator: &Network<G>,
        field: &Network<F>,
        z: &Tensor,
        x1: &Tensor,
        step: usize,
    ) -> Result<GeneratorUpdate, TrainError> {
        tch::no_grad(|| {
            let (loss, x0) = self.precision.autocast(x1.device(), || {
                self.generator_objective_and_samples(&generator.net, &field.net, z, x1)
            })??;
            let (value, raw) = self.loss_and_stats(&loss, &x0, step)?;
            Ok(GeneratorUpdate {
                loss: value,
                grad_norm: 0.0,
                raw,
            })
        })
    }

    /// One generator update on `(z, x1)`: `x0 = G(z)` with gradients, `L_θ` on a fresh draw
    /// with noise `σ`, the field frozen (no gradients into `ψ`), one Adam step on `θ`
    /// (gradient clipped if so configured). Returns `L_θ` before the update, the gradient norm
    /// and the raw samples' statistics; a non-finite loss is an error and updates nothing.
    pub fn generator_step<G: Generator, F: Field>(
        &self,
        generator: &mut Network<G>,
        field: &mut Network<F>,
        z: &Tensor,
        x1: &Tensor,
        step: usize,
    ) -> Result<GeneratorUpdate, TrainError> {
        field.vs.freeze();
        let result = (|| {
            let (loss, x0) = self.precision.autocast(x1.device(), || {
                self.generator_objective_and_samples(&generator.net, &field.net, z, x1)
            })??;
            let (value, raw) = self.loss_and_stats(&loss, &x0, step)?;
            let grad_norm = generator.update_averaged(&loss, self.clip, self.replica.as_ref())?;
            Ok(GeneratorUpdate {
                loss: value,
                grad_norm,
                raw,
            })
        })();
        field.vs.unfreeze();
        result
    }
}
