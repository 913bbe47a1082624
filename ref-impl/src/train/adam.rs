//! Adam with its state in plain tensors, so that a checkpoint can hold it (tch's
//! `nn::Optimizer` wraps libtorch's C++ optimizer, whose moment buffers tch does not expose).
//!
//! The update is PyTorch's `torch.optim.Adam` (single-tensor path, no weight decay, no
//! AMSGrad): with gradient `g` at step `t = 1, 2, ...`,
//! `m ← β1·m + (1 − β1)·g`, `v ← β2·v + (1 − β2)·g²`,
//! `θ ← θ − (lr/(1 − β1^t))·m / (sqrt(v)/sqrt(1 − β2^t) + ε)`.
//! Parameters without a gradient are skipped, as PyTorch skips them (here they share the
//! global step count `t`; no parameter of these networks receives gradients on some steps and
//! not on others).
//!
//! The update can run one tensor at a time (the default, the reference) or through libtorch's
//! multi-tensor or fused kernels ([`crate::train::kernels::AdamKernel`]), which agree with it
//! to float tolerance.

use crate::train::checkpoint::{Checkpoint, CheckpointError};
use crate::train::kernels::{adam_step, AdamKernel, AdamTensors};
use std::path::Path;
use tch::{nn, Tensor};

/// `β1`, `β2`, `ε`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    /// `β1` (EDM: 0.9; MGM: 0).
    pub beta1: f64,
    /// `β2` (0.999).
    pub beta2: f64,
    /// `ε` (1e-8).
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// The optimizer over the trainable variables of one `VarStore`, in name order.
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    kernel: AdamKernel,
    step: i64,
    names: Vec<String>,
    params: Vec<Tensor>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
}

impl Adam {
    /// Zero moments for every trainable variable of `vs`.
    pub fn new(vs: &nn::VarStore, config: AdamConfig) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |t: &Tensor| t.zeros_like().detach();
        Adam {
            config,
            kernel: AdamKernel::Plain,
            step: 0,
            exp_avg: vars.iter().map(|(_, t)| zeros(t)).collect(),
            exp_avg_sq: vars.iter().map(|(_, t)| zeros(t)).collect(),
            names: vars.iter().map(|(n, _)| n.clone()).collect(),
            params: vars.into_iter().map(|(_, t)| t).collect(),
        }
    }

    /// The same optimizer applying its update with `kernel`.
    pub fn with_kernel(mut self, kernel: AdamKernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// Sets the kernel of the next updates.
    pub fn set_kernel(&mut self, kernel: AdamKernel) {
        self.kernel = kernel;
    }

    /// The kernel of the update.
    pub fn kernel(&self) -> AdamKernel {
        self.kernel
    }

    /// Steps taken.
    pub fn steps(&self) -> i64 {
        self.step
    }

    /// Zeroes the gradients.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// One update with learning rate `lr` from the current gradients. Errors only from the
    /// multi-tensor kernels (libtorch refusing the tensors); the step count is then unchanged.
    pub fn step(&mut self, lr: f64) -> Result<(), tch::TchError> {
        let AdamConfig { beta1, beta2, eps } = self.config;
        if self.kernel != AdamKernel::Plain {
            return self.step_multi(lr);
        }
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - beta1.powi(t);
        let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        tch::no_grad(|| {
            for ((p, m), v) in self
                .params
                .iter_mut()
                .zip(&mut self.exp_avg)
                .zip(&mut self.exp_avg_sq)
            {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = m.lerp_(&g, 1.0 - beta1);
                let _ = v.g_mul_scalar_(beta2);
                let _ = v.addcmul_(&g, &(&g * (1.0 - beta2)));
                let denom = v.sqrt() / bc2_sqrt + eps;
                let update = &*m / denom * (lr / bc1);
                let _ = p.g_sub_(&update);
            }
        });
        Ok(())
    }

    fn step_multi(&mut self, lr: f64) -> Result<(), tch::TchError> {
        let AdamConfig { beta1, beta2, eps } = self.config;
        let (mut params, mut grads, mut m, mut v) = (vec![], vec![], vec![], vec![]);
        for ((p, e), s) in self.params.iter().zip(&self.exp_avg).zip(&self.exp_avg_sq) {
            let g = p.grad();
            if g.defined() {
                params.push(p.shallow_clone());
                grads.push(g);
                m.push(e.shallow_clone());
                v.push(s.shallow_clone());
            }
        }
        let tensors = AdamTensors {
            params: &params,
            grads: &grads,
            exp_avgs: &m,
            exp_avg_sqs: &v,
        };
        adam_step(self.kernel, &tensors, self.step + 1, lr, beta1, beta2, eps)?;
        self.step += 1;
        Ok(())
    }

    /// The moments as `(prefix.exp_avg.<name>, ...)`, `(prefix.exp_avg_sq.<name>, ...)`.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.names.len());
        for ((n, m), v) in self.names.iter().zip(&self.exp_avg).zip(&self.exp_avg_sq) {
            out.push((format!("{prefix}.exp_avg.{n}"), m.shallow_clone()));
            out.push((format!("{prefix}.exp_avg_sq.{n}"), v.shallow_clone()));
        }
        out
    }

    /// Checks that `ckpt` has every moment under `prefix` with the right shape (nothing is
    /// changed when it does not).
    pub fn check_state(
        &self,
        ckpt: &Checkpoint,
        path: &Path,
        prefix: &str,
    ) -> Result<(), CheckpointError> {
        for (n, m) in self.names.iter().zip(&self.exp_avg) {
            for which in ["exp_avg", "exp_avg_sq"] {
                let t = ckpt.tensor(path, &format!("{prefix}.{which}.{n}"))?;
                if t.size() != m.size() {
                    return Err(CheckpointError::content(
                        path,
                        format!(
                            "{prefix}.{which}.{n}: shape {:?}, expected {:?}",
                            t.size(),
                            m.size()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Restores moments (after [`Adam::check_state`]) and the step count.
    pub fn load_state(&mut self, ckpt: &Checkpoint, prefix: &str, step: i64) {
        tch::no_grad(|| {
            for ((n, m), v) in self
                .names
                .iter()
                .zip(&mut self.exp_avg)
                .zip(&mut self.exp_avg_sq)
            {
                m.copy_(&ckpt.tensors[&format!("{prefix}.exp_avg.{n}")]);
                v.copy_(&ckpt.tensors[&format!("{prefix}.exp_avg_sq.{n}")]);
            }
        });
        self.step = step;
    }
}
