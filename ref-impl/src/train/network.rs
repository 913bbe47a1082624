//! What a training method needs of its networks: the two roles of a one-step method (a
//! generator `G_θ: z ↦ x` and a time-dependent field `f_ψ(x, t)`, §3.4 and App. C), and a
//! [`Network`]: a module with its variables and its optimizer (Adam with `β1 = 0`, App. B).
//!
//! Nothing here knows which objective trains the networks.

use crate::error::TrainError;
use tch::{nn, Tensor};

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
/// [`crate::train::adam::Adam`] with the same update, whose moments a checkpoint can hold (image
/// MGM, for exact resume). Both use `β1 = 0`, `β2 = 0.999`, `ε = 1e-8` (App. B).
pub enum Optimizer {
    /// libtorch's `torch::optim::Adam` (state not readable from Rust).
    Torch(nn::Optimizer),
    /// [`crate::train::adam::Adam`] at learning rate `lr` (state in plain tensors).
    Saveable {
        /// The optimizer.
        adam: crate::train::adam::Adam,
        /// Its learning rate.
        lr: f64,
    },
}

impl Optimizer {
    /// Zeroes the gradients, back-propagates `loss`, takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<(), tch::TchError> {
        match self {
            Optimizer::Torch(opt) => {
                opt.backward_step(loss);
                Ok(())
            }
            Optimizer::Saveable { adam, lr } => {
                adam.zero_grad();
                loss.backward();
                adam.step(*lr)
            }
        }
    }

    fn zero_grad(&mut self) {
        match self {
            Optimizer::Torch(opt) => opt.zero_grad(),
            Optimizer::Saveable { adam, .. } => adam.zero_grad(),
        }
    }

    fn step(&mut self) -> Result<(), tch::TchError> {
        match self {
            Optimizer::Torch(opt) => {
                opt.step();
                Ok(())
            }
            Optimizer::Saveable { adam, lr } => adam.step(*lr),
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
    pub fn saveable(&self) -> Option<&crate::train::adam::Adam> {
        match self {
            Optimizer::Torch(_) => None,
            Optimizer::Saveable { adam, .. } => Some(adam),
        }
    }

    /// The hand-written Adam, mutably, if this is one (for resume).
    pub fn saveable_mut(&mut self) -> Option<&mut crate::train::adam::Adam> {
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
        Self::with_adam(net, vs, AdamSettings::paper(lr))
    }

    /// Wraps `net` with libtorch's Adam at `settings` (validated).
    pub fn with_adam(net: N, vs: nn::VarStore, settings: AdamSettings) -> Result<Self, TrainError> {
        settings.validate()?;
        use nn::OptimizerConfig;
        let opt = nn::Adam::default()
            .beta1(settings.beta1)
            .beta2(settings.beta2)
            .build(&vs, settings.lr)?;
        Ok(Network {
            net,
            vs,
            opt: Optimizer::Torch(opt),
        })
    }

    /// Applies the Adam updates with `kernel`; only the saveable Adam has other kernels than
    /// the plain one.
    pub fn set_adam_kernel(
        &mut self,
        kernel: crate::train::kernels::AdamKernel,
    ) -> Result<(), TrainError> {
        match self.opt.saveable_mut() {
            Some(adam) => adam.set_kernel(kernel),
            None if kernel == crate::train::kernels::AdamKernel::Plain => {}
            None => {
                return Err(TrainError::InvalidOption(format!(
                    "Adam kernel {kernel:?}: this network uses libtorch's own Adam, which has only the plain kernel here"
                )))
            }
        }
        Ok(())
    }

    /// One update on `loss`: zero the gradients, back-propagate, measure the gradient's global
    /// norm over the trainable variables, rescale it to at most `clip` if given (PyTorch's
    /// `clip_grad_norm_`), take one optimizer step. Returns the norm before clipping (a
    /// health signal: [`crate::methods::mgm`] logs it every step). Errors only when a
    /// multi-tensor Adam kernel is refused by libtorch.
    pub fn update(&mut self, loss: &Tensor, clip: Option<f64>) -> Result<f64, TrainError> {
        self.update_averaged(loss, clip, None)
    }

    /// [`Network::update`] as one rank of a data-parallel job: the gradients are averaged
    /// over the ranks right after the backward pass, so the norm, the clipping and the Adam
    /// step see the global batch's gradient (the same on every rank).
    pub fn update_averaged(
        &mut self,
        loss: &Tensor,
        clip: Option<f64>,
        replica: Option<&crate::dist::Replica>,
    ) -> Result<f64, TrainError> {
        self.opt.zero_grad();
        loss.backward();
        if let Some(r) = replica {
            r.average_gradients(&self.vs)?;
        }
        let grads: Vec<Tensor> = self
            .vs
            .trainable_variables()
            .iter()
            .map(Tensor::grad)
            .filter(Tensor::defined)
            .collect();
        let norm = if grads.is_empty() {
            0.0
        } else {
            let squares: Vec<Tensor> = grads
                .iter()
                .map(|g| g.to_kind(tch::Kind::Float).square().sum(tch::Kind::Float))
                .collect();
            f64::try_from(Tensor::stack(&squares, 0).sum(tch::Kind::Float).sqrt())
                .unwrap_or(f64::NAN)
        };
        if let Some(max) = clip {
            // The same rule as torch.nn.utils.clip_grad_norm_ (scale = max / (norm + 1e-6)).
            let scale = max / (norm + 1e-6);
            if scale < 1.0 {
                tch::no_grad(|| {
                    for g in &grads {
                        let _ = g.shallow_clone().g_mul_scalar_(scale);
                    }
                });
            }
        }
        self.opt.step()?;
        Ok(norm)
    }

    /// Wraps `net` with the hand-written [`crate::train::adam::Adam`] (`β1 = 0`) at learning rate
    /// `lr`, whose state can be checkpointed.
    pub fn with_saveable_adam(net: N, vs: nn::VarStore, lr: f64) -> Result<Self, TrainError> {
        Self::with_saveable_adam_settings(net, vs, AdamSettings::paper(lr))
    }

    /// [`Network::with_saveable_adam`] with any `β1`, `β2` (the flow-map methods use Adam's
    /// defaults, 0.9 and 0.999).
    pub fn with_saveable_adam_settings(
        net: N,
        vs: nn::VarStore,
        settings: AdamSettings,
    ) -> Result<Self, TrainError> {
        settings.validate()?;
        let lr = settings.lr;
        let config = crate::train::adam::AdamConfig {
            beta1: settings.beta1,
            beta2: settings.beta2,
            ..Default::default()
        };
        let adam = crate::train::adam::Adam::new(&vs, config);
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

/// Learning rate and moment decays of an Adam optimizer (`ε = 1e-8`, no weight decay).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamSettings {
    /// Learning rate.
    pub lr: f64,
    /// `β1` (App. B: 0).
    pub beta1: f64,
    /// `β2` (App. B: PyTorch's default 0.999).
    pub beta2: f64,
}

impl AdamSettings {
    /// App. B's Adam: `β1 = 0`, `β2 = 0.999`, at learning rate `lr`.
    pub fn paper(lr: f64) -> Self {
        AdamSettings {
            lr,
            beta1: 0.0,
            beta2: 0.999,
        }
    }

    /// `lr` finite and > 0, `β1, β2 ∈ [0, 1)`.
    pub fn validate(&self) -> Result<(), TrainError> {
        check_lr(self.lr)?;
        for (name, b) in [("β1", self.beta1), ("β2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(TrainError::InvalidOption(format!(
                    "Adam {name} must be in [0, 1), got {b}"
                )));
            }
        }
        Ok(())
    }
}

/// Adam with `β1 = 0`, `β2 = 0.999`, `ε = 1e-8`, no weight decay (App. B).
pub fn adam(vs: &nn::VarStore, lr: f64) -> Result<nn::Optimizer, TrainError> {
    check_lr(lr)?;
    use nn::OptimizerConfig;
    Ok(nn::Adam::default().beta1(0.0).build(vs, lr)?)
}

/// The number of trainable parameters of `vs`.
pub fn param_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}
