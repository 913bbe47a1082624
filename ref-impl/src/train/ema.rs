//! Exponential moving averages of a network's weights (App. B: the generator's EMA, decay
//! 0.999, is what is evaluated; EDM's warmup uses a half-life rule, [`Ema::update_lerp`]).

use crate::error::TrainError;
use crate::train::kernels::{foreach_lerp, EmaKernel};
use tch::{nn, Tensor};

/// Exponential moving average of a network's weights, `ema ← d·ema + (1 − d)·θ` after every
/// generator update (App. B: decay 0.999, used for evaluation). `vs` holds a second instance of
/// the network (same variable names); build the module on it, then call [`Ema::new`].
pub struct Ema {
    /// The averaged variables.
    pub vs: nn::VarStore,
    /// `d`.
    pub decay: f64,
    /// How the update is applied (one tensor at a time by default).
    pub kernel: EmaKernel,
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
        Ok(Ema {
            vs,
            decay,
            kernel: EmaKernel::Plain,
        })
    }

    /// One update towards the current weights of `src`.
    pub fn update(&mut self, src: &nn::VarStore) -> Result<(), TrainError> {
        let d = self.decay;
        if self.kernel == EmaKernel::Foreach {
            return self.update_foreach(src, 1.0 - d);
        }
        self.update_with(src, |avg, cur| avg * d + cur * (1.0 - d))
    }

    /// One update with a step-dependent factor: `ema ← θ + β·(ema − θ)` (EDM's warmup, whose
    /// `β` follows a half-life in images; `decay` is not used).
    pub fn update_lerp(&mut self, src: &nn::VarStore, beta: f64) -> Result<(), TrainError> {
        if self.kernel == EmaKernel::Foreach {
            return self.update_foreach(src, 1.0 - beta);
        }
        self.update_with(src, |avg, cur| cur.lerp(avg, beta))
    }

    /// `ema ← ema + w·(θ − ema)` for every variable in one `_foreach_lerp_`.
    fn update_foreach(&mut self, src: &nn::VarStore, w: f64) -> Result<(), TrainError> {
        let src = src.variables();
        let mut avgs = Vec::with_capacity(src.len());
        let mut curs = Vec::with_capacity(src.len());
        for (name, avg) in self.vs.variables() {
            let cur = src.get(&name).ok_or_else(|| {
                TrainError::InvalidOption(format!("EMA: variable {name} missing in the source"))
            })?;
            avgs.push(avg);
            curs.push(cur.shallow_clone());
        }
        Ok(foreach_lerp(&avgs, &curs, w)?)
    }

    /// `ema ← next(ema, θ)` for every variable, without gradients.
    fn update_with(
        &mut self,
        src: &nn::VarStore,
        next: impl Fn(&Tensor, &Tensor) -> Tensor,
    ) -> Result<(), TrainError> {
        let src = src.variables();
        tch::no_grad(|| {
            for (name, mut avg) in self.vs.variables() {
                let cur = src.get(&name).ok_or_else(|| {
                    TrainError::InvalidOption(format!("EMA: variable {name} missing in the source"))
                })?;
                let value = next(&avg, cur);
                avg.copy_(&value);
            }
            Ok(())
        })
    }
}
