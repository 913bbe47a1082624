//! Algorithm 1 of the paper (App. C; Algorithm 2 is its Python sketch): **the** one
//! implementation of the MGM losses and of one training step, shared by everything that trains
//! (toy runs, the critic check, the held-out estimate and, later, the image trainer).
//!
//! For a generator `G_θ` (`x0 = G_θ(z)`) and a displacement-field model ("critic") `f_ψ`:
//!
//! 1. **Critic step** on a fresh batch: `x0 = G(z)` with the gradient stopped, then
//!    `x̃_t` by [`observe`] and the regression loss [`critic_loss`]
//!    `L_ψ = mean_n ‖f_ψ(x̃_t, t) − (x1 − x0)‖²` (target stopped); one Adam step on `ψ`.
//! 2. **Generator step** on another fresh batch: `x0 = G(z)` with gradients, `x̃_t` again, and
//!    [`generator_loss`] `L_θ = mean_n [2⟨f_ψ(x̃_t, t), x1 − x0⟩ − ‖f_ψ(x̃_t, t)‖²]` with `ψ`
//!    frozen; gradients reach `θ` through `x0` in the target **and** through `x̃_t` inside
//!    `f_ψ`; one Adam step on `θ`.
//!
//! Both optimizers are Adam with `β1 = 0` and otherwise default settings (App. B).
//!
//! **Observation** (Eq. 7): `t` from the variant's time law, `b ~ Bernoulli(½)`,
//! `ε ~ N(0, I)`; `x̃_t = I_t(x0, x1) + σ_t ε` if `b = 0` and `I_{1−t}(x0, x1) + σ_{1−t} ε` if
//! `b = 1`, with the **same** `ε` for both branches. The coefficients `(α, β, σ_t)` of each
//! branch come from the core crate's [`StochasticInterpolant::branch`], so any symmetric
//! interpolant it accepts (linear, trigonometric, custom) is trained with exactly the
//! semantics the exact numerics use; the paper's choice is linear with
//! `σ_t = sqrt(σ·t(1−t))` (§5.1).
//!
//! **Variants** (App. C, [`Variant`]): `mgm` (flipped, `t ~ U[0, ½]`), `midpoint` (`t = ½`)
//! and `naive` (no flip, `t ~ U[0, 1]`, Eq. 3). **Noise** (Table 1b/1c): `σ` is used when
//! updating the generator and `σ'` when updating the critic; Table 1b sets both to `σ`,
//! Table 1c uses `σ = 0` with a critic-only `σ' > 0`.
//!
//! **Shapes.** Nothing here assumes a data shape: `x0`, `x1`, `ε` and `x̃_t` are `[N, ...]`
//! (`[N, D]` for toys, `[N, C, H, W]` for images); `t` is `[N]` and is broadcast as
//! `[N, 1, ..., 1]`. Losses sum over all non-batch dimensions and average over the batch, as in
//! Algorithm 2.

use crate::error::TrainError;
use crate::precision::Precision;
use midpoint::interpolant::{Branch, Interpolant, NoiseSchedule, Observation};
use midpoint::montecarlo::TimeLaw;
use midpoint::StochasticInterpolant;
use tch::{nn, Device, Kind, Tensor};

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
    /// `σ'` of the critic step (Table 1c; equal to `sigma` for Table 1b).
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
    /// The critic step (noise `σ'`).
    Critic,
    /// The generator step (noise `σ`).
    Generator,
}

/// One draw of the flipped observation for a batch.
#[derive(Debug)]
pub struct Draw {
    /// `t`, shape `[N]`, float32 on the batch's device (what the critic sees).
    pub t: Tensor,
    /// `b` (1 = flipped branch), shape `[N]`, float32.
    pub b: Tensor,
    /// `ε`, the shape of `x0`.
    pub eps: Tensor,
    /// `x̃_t`, the shape of `x0`; carries gradients of `x0` (and `x1`).
    pub x_tilde: Tensor,
}

/// A one-step generator `G_θ: z ↦ x0` on tensors `[N, ...]`.
pub trait Generator {
    /// `G(z)`; `train` is false when the sample only feeds the critic's update (networks with
    /// dropout switch it off then, as SiD does).
    fn generate(&self, z: &Tensor, train: bool) -> Tensor;
}

/// A displacement-field model `f_ψ(x̃, t)`: `x̃` `[N, ...]`, `t` `[N]` ↦ `[N, ...]` (the shape
/// of `x̃`).
pub trait Field {
    /// `f(x̃, t)`; `train` is false while the field is frozen for the generator's update.
    fn field(&self, x: &Tensor, t: &Tensor, train: bool) -> Tensor;
}

impl<F: Fn(&Tensor) -> Tensor> Generator for F {
    fn generate(&self, z: &Tensor, _train: bool) -> Tensor {
        self(z)
    }
}

impl<F: Fn(&Tensor, &Tensor) -> Tensor> Field for F {
    fn field(&self, x: &Tensor, t: &Tensor, _train: bool) -> Tensor {
        self(x, t)
    }
}

/// The optimizer of a [`Network`]: libtorch's Adam (tch's `nn::Optimizer`; the toy trainer
/// and the critic checks, whose recorded results were made with it) or the hand-written
/// [`crate::adam::Adam`] with the same update, whose moments a checkpoint can hold (image
/// MGM, for exact resume). Both use `β1 = 0`, `β2 = 0.999`, `ε = 1e-8` (App. B).
pub enum Optimizer {
    /// libtorch's `torch::optim::Adam` (state not readable from Rust).
    Torch(nn::Optimizer),
    /// [`crate::adam::Adam`] at learning rate `lr` (state in plain tensors).
    Saveable {
        /// The optimizer.
        adam: crate::adam::Adam,
        /// Its learning rate.
        lr: f64,
    },
}

impl Optimizer {
    /// Zeroes the gradients, back-propagates `loss`, takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) {
        match self {
            Optimizer::Torch(opt) => opt.backward_step(loss),
            Optimizer::Saveable { adam, lr } => {
                adam.zero_grad();
                loss.backward();
                adam.step(*lr);
            }
        }
    }

    /// Sets the learning rate.
    pub fn set_lr(&mut self, new: f64) {
        match self {
            Optimizer::Torch(opt) => opt.set_lr(new),
            Optimizer::Saveable { lr, .. } => *lr = new,
        }
    }

    /// The hand-written Adam, if this is one (for checkpoints).
    pub fn saveable(&self) -> Option<&crate::adam::Adam> {
        match self {
            Optimizer::Torch(_) => None,
            Optimizer::Saveable { adam, .. } => Some(adam),
        }
    }

    /// The hand-written Adam, mutably, if this is one (for resume).
    pub fn saveable_mut(&mut self) -> Option<&mut crate::adam::Adam> {
        match self {
            Optimizer::Torch(_) => None,
            Optimizer::Saveable { adam, .. } => Some(adam),
        }
    }
}

/// A network with its variables and its optimizer.
pub struct Network<N> {
    /// The module.
    pub net: N,
    /// Its variables (frozen while the other network is updated through it).
    pub vs: nn::VarStore,
    /// Its Adam optimizer.
    pub opt: Optimizer,
}

impl<N> Network<N> {
    /// Wraps `net` (whose variables live in `vs`) with libtorch's [`adam`] at learning rate `lr`.
    pub fn new(net: N, vs: nn::VarStore, lr: f64) -> Result<Self, TrainError> {
        let opt = Optimizer::Torch(adam(&vs, lr)?);
        Ok(Network { net, vs, opt })
    }

    /// Wraps `net` with the hand-written [`crate::adam::Adam`] (`β1 = 0`) at learning rate
    /// `lr`, whose state can be checkpointed.
    pub fn with_saveable_adam(net: N, vs: nn::VarStore, lr: f64) -> Result<Self, TrainError> {
        check_lr(lr)?;
        let config = crate::adam::AdamConfig {
            beta1: 0.0,
            ..Default::default()
        };
        let adam = crate::adam::Adam::new(&vs, config);
        Ok(Network {
            net,
            vs,
            opt: Optimizer::Saveable { adam, lr },
        })
    }
}

fn check_lr(lr: f64) -> Result<(), TrainError> {
    if !(lr.is_finite() && lr > 0.0) {
        return Err(TrainError::InvalidOption(format!(
            "learning rate must be finite and > 0, got {lr}"
        )));
    }
    Ok(())
}

/// Adam with `β1 = 0`, `β2 = 0.999`, `ε = 1e-8`, no weight decay (App. B).
pub fn adam(vs: &nn::VarStore, lr: f64) -> Result<nn::Optimizer, TrainError> {
    check_lr(lr)?;
    use nn::OptimizerConfig;
    Ok(nn::Adam::default().beta1(0.0).build(vs, lr)?)
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

/// The critic's loss `L_ψ = mean_n ‖pred_n − (x1_n − x0_n)‖²` (Algorithm 1), with the target
/// `x1 − x0` stopped: its gradient reaches `pred` only (`∂L/∂pred = 2(pred − Δ)/N`).
pub fn critic_loss(pred: &Tensor, x0: &Tensor, x1: &Tensor) -> Tensor {
    let target = (x1 - x0).detach();
    batch_mean_sq_sum(&(pred - target).square())
}

/// The generator's loss `L_θ = mean_n [2⟨pred_n, x1_n − x0_n⟩ − ‖pred_n‖²]` (Algorithm 1,
/// Eq. 10), where `pred = f_ψ(x̃_t, t)`. Nothing is stopped: `∂L/∂pred = 2(Δ − pred)/N` and
/// `∂L/∂x0 = −2·pred/N` directly, plus whatever reaches `x0` through `pred`. The critic must be
/// frozen by the caller ([`Mgm::generator_step`] does).
pub fn generator_loss(pred: &Tensor, x0: &Tensor, x1: &Tensor) -> Tensor {
    let residual: Tensor = (x1 - x0) * 2.0 - pred;
    (pred * residual)
        .flatten(1, -1)
        .sum_dim_intlist([1i64].as_slice(), false, None::<Kind>)
        .mean(None::<Kind>)
}

/// Algorithm 1's observation model with its two noise levels.
#[derive(Debug, Clone)]
pub struct Mgm {
    variant: Variant,
    critic_si: StochasticInterpolant,
    generator_si: StochasticInterpolant,
    precision: Precision,
}

/// Losses of one [`MgmTrainer::step`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StepLosses {
    /// `L_ψ` of the critic step (before its update).
    pub critic: f64,
    /// `L_θ` of the generator step (before its update).
    pub generator: f64,
}

fn finite(which: &'static str, loss: &Tensor, step: usize) -> Result<f64, TrainError> {
    let value = f64::try_from(loss)?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(TrainError::NonFiniteLoss { which, value, step })
    }
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
            critic_si: si(config.critic_sigma)?,
            generator_si: si(config.sigma)?,
            precision: Precision::Fp32,
        })
    }

    /// The same objective with the forward passes and losses in `precision` (bf16 autocast:
    /// [`crate::precision`]); the backward passes and the optimizers stay fp32.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The precision of the forward passes and losses.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The stochastic interpolant of one side (`σ'` for the critic, `σ` for the generator).
    pub fn interpolant(&self, side: Side) -> &StochasticInterpolant {
        match side {
            Side::Critic => &self.critic_si,
            Side::Generator => &self.generator_si,
        }
    }

    /// Draws `(t, b, ε)` (in this order: `t`, `b` on torch's CPU generator, `ε` on the batch's
    /// device) and builds `x̃_t` by [`observe`].
    pub fn draw(&self, side: Side, x0: &Tensor, x1: &Tensor) -> Result<Draw, TrainError> {
        let n = x0.size().first().copied().unwrap_or(0);
        let (t, b) = sample_times(self.variant, n);
        let eps = x0.randn_like().detach();
        let x_tilde = observe(self.interpolant(side), x0, x1, &t, &b, &eps)?;
        let dev = (Kind::Float, x0.device());
        let t = Tensor::from_slice(&t).to_kind(dev.0).to_device(dev.1);
        let b: Vec<f32> = b.iter().map(|&b| f32::from(u8::from(b))).collect();
        let b = Tensor::from_slice(&b).to_device(dev.1);
        Ok(Draw { t, b, eps, x_tilde })
    }

    /// `L_ψ` on a fresh draw (noise `σ'`) with its graph: `x0` is detached, the critic runs in
    /// training mode.
    pub fn critic_objective<F: Field>(
        &self,
        critic: &F,
        x0: &Tensor,
        x1: &Tensor,
    ) -> Result<Tensor, TrainError> {
        let x0 = x0.detach();
        let d = self.draw(Side::Critic, &x0, x1)?;
        let pred = critic.field(&d.x_tilde, &d.t, true);
        Ok(critic_loss(&pred, &x0, x1))
    }

    /// `L_θ` on a fresh draw (noise `σ`) with its graph: `x0 = G(z)` in training mode, the
    /// critic in evaluation mode; gradients reach `θ` through the target and through `x̃_t`.
    /// Freezing the critic's variables is the caller's business ([`Mgm::generator_step`]).
    pub fn generator_objective<G: Generator, F: Field>(
        &self,
        generator: &G,
        critic: &F,
        z: &Tensor,
        x1: &Tensor,
    ) -> Result<Tensor, TrainError> {
        let x0 = generator.generate(z, true);
        let d = self.draw(Side::Generator, &x0, x1)?;
        let pred = critic.field(&d.x_tilde, &d.t, false);
        Ok(generator_loss(&pred, &x0, x1))
    }

    /// One critic update on `(x0, x1)`: `L_ψ` on a fresh draw with noise `σ'`, then one Adam
    /// step on `ψ`. `x0` is detached here, so passing `G(z)` with a graph is harmless (the
    /// trainer computes it under `no_grad` anyway). Returns `L_ψ` before the update; a
    /// non-finite loss is an error and updates nothing.
    pub fn critic_step<F: Field>(
        &self,
        critic: &mut Network<F>,
        x0: &Tensor,
        x1: &Tensor,
        step: usize,
    ) -> Result<f64, TrainError> {
        let loss = self
            .precision
            .autocast(x1.device(), || self.critic_objective(&critic.net, x0, x1))??;
        let value = finite("critic", &loss, step)?;
        critic.opt.backward_step(&loss);
        Ok(value)
    }

    /// One generator update on `(z, x1)`: `x0 = G(z)` with gradients, `L_θ` on a fresh draw
    /// with noise `σ`, the critic frozen (no gradients into `ψ`), one Adam step on `θ`.
    /// Returns `L_θ` before the update; a non-finite loss is an error and updates nothing.
    pub fn generator_step<G: Generator, F: Field>(
        &self,
        generator: &mut Network<G>,
        critic: &mut Network<F>,
        z: &Tensor,
        x1: &Tensor,
        step: usize,
    ) -> Result<f64, TrainError> {
        critic.vs.freeze();
        let result = (|| {
            let loss = self.precision.autocast(x1.device(), || {
                self.generator_objective(&generator.net, &critic.net, z, x1)
            })??;
            let value = finite("generator", &loss, step)?;
            generator.opt.backward_step(&loss);
            Ok(value)
        })();
        critic.vs.unfreeze();
        result
    }
}

/// Exponential moving average of a network's weights, `ema ← d·ema + (1 − d)·θ` after every
/// generator update (App. B: decay 0.999, used for evaluation). `vs` holds a second instance of
/// the network (same variable names); build the module on it, then call [`Ema::new`].
pub struct Ema {
    /// The averaged variables.
    pub vs: nn::VarStore,
    /// `d`.
    pub decay: f64,
}

impl Ema {
    /// Starts the average at the current weights of `src`; `decay ∈ [0, 1)`.
    pub fn new(mut vs: nn::VarStore, src: &nn::VarStore, decay: f64) -> Result<Self, TrainError> {
        if !(0.0..1.0).contains(&decay) {
            return Err(TrainError::InvalidOption(format!(
                "EMA decay must be in [0, 1), got {decay}"
            )));
        }
        vs.copy(src)?;
        vs.freeze();
        Ok(Ema { vs, decay })
    }

    /// One update towards the current weights of `src`.
    pub fn update(&mut self, src: &nn::VarStore) -> Result<(), TrainError> {
        let src = src.variables();
        tch::no_grad(|| {
            for (name, mut avg) in self.vs.variables() {
                let cur = src.get(&name).ok_or_else(|| {
                    TrainError::InvalidOption(format!("EMA: variable {name} missing in the source"))
                })?;
                let next = &avg * self.decay + cur * (1.0 - self.decay);
                avg.copy_(&next);
            }
            Ok(())
        })
    }
}

/// A generator, a critic and Algorithm 1's step counter.
pub struct MgmTrainer<G, F> {
    /// The objective and its interpolants.
    pub mgm: Mgm,
    /// `G_θ` with its optimizer.
    pub generator: Network<G>,
    /// `f_ψ` with its optimizer.
    pub critic: Network<F>,
    step: usize,
}

impl<G: Generator, F: Field> MgmTrainer<G, F> {
    /// Starts at step 0.
    pub fn new(mgm: Mgm, generator: Network<G>, critic: Network<F>) -> Self {
        MgmTrainer {
            mgm,
            generator,
            critic,
            step: 0,
        }
    }

    /// Steps done so far.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Sets the step counter (resuming from a checkpoint written after `k` steps).
    pub fn set_steps_done(&mut self, k: usize) {
        self.step = k;
    }

    /// One iteration of Algorithm 1: a critic step on one fresh batch `(z, x1) = batch()`,
    /// then a generator step on another fresh batch. `x0 = G(z)` is computed without a graph
    /// (and with `train = false`) for the critic step, in the objective's precision.
    pub fn step(
        &mut self,
        batch: &mut dyn FnMut() -> Result<(Tensor, Tensor), TrainError>,
    ) -> Result<StepLosses, TrainError> {
        let (z, x1) = batch()?;
        let x0 = self.mgm.precision.autocast(z.device(), || {
            tch::no_grad(|| self.generator.net.generate(&z, false))
        })?;
        let critic = self
            .mgm
            .critic_step(&mut self.critic, &x0, &x1, self.step)?;
        let (z, x1) = batch()?;
        let generator =
            self.mgm
                .generator_step(&mut self.generator, &mut self.critic, &z, &x1, self.step)?;
        self.step += 1;
        Ok(StepLosses { critic, generator })
    }
}
