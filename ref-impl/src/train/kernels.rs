//! Multi-tensor kernels for the optimizer and the EMA (`csrc/optim_kernels.cpp`): the same
//! updates as [`crate::train::adam::Adam`]'s and [`crate::train::ema::Ema`]'s per-tensor loops,
//! in a few library calls for all tensors instead of several small kernels per tensor.
//!
//! On a GPU the per-tensor loops launch ~7 kernels per parameter tensor (ddpm++ has ~300 of
//! them, ×3 networks' worth of Adam and EMA work per MGM iteration); these paths launch a
//! handful in all. Which one pays is measured, not assumed (`bench optim`, docs/performance.md).
//! The paths agree with the plain loops to float tolerance, not bit for bit (different
//! operation order), so the plain loops stay the default: a run's numbers do not change unless
//! asked.

use tch::Tensor;

mod ffi {
    use torch_sys::C_tensor;
    extern "C" {
        pub fn midpoint_adam_foreach(
            params: *const *mut C_tensor,
            grads: *const *mut C_tensor,
            exp_avgs: *const *mut C_tensor,
            exp_avg_sqs: *const *mut C_tensor,
            n: i64,
            step: i64,
            lr: f64,
            beta1: f64,
            beta2: f64,
            eps: f64,
            err: *mut std::os::raw::c_char,
            err_len: i64,
        ) -> i32;
        pub fn midpoint_adam_fused(
            params: *const *mut C_tensor,
            grads: *const *mut C_tensor,
            exp_avgs: *const *mut C_tensor,
            exp_avg_sqs: *const *mut C_tensor,
            n: i64,
            step: i64,
            lr: f64,
            beta1: f64,
            beta2: f64,
            eps: f64,
            err: *mut std::os::raw::c_char,
            err_len: i64,
        ) -> i32;
        pub fn midpoint_foreach_lerp(
            ema: *const *mut C_tensor,
            src: *const *mut C_tensor,
            n: i64,
            weight: f64,
            err: *mut std::os::raw::c_char,
            err_len: i64,
        ) -> i32;
    }
}

/// How [`crate::train::adam::Adam`] applies its update.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AdamKernel {
    /// One tensor at a time (`torch.optim.Adam(foreach=False)`), the reference.
    #[default]
    Plain,
    /// `torch.optim.Adam(foreach=True)`: seven `_foreach_*` calls for all tensors.
    Foreach,
    /// `torch.optim.Adam(fused=True)`: one `_fused_adam_` call.
    Fused,
}

/// How [`crate::train::ema::Ema`] applies its update.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EmaKernel {
    /// One tensor at a time, `ema·d + θ·(1 − d)` (the reference).
    #[default]
    Plain,
    /// One `_foreach_lerp_` for all tensors, `ema + (1 − d)·(θ − ema)`.
    Foreach,
}

/// The kernels of a run's optimizers and EMA (`--adam-kernel`, `--ema-kernel`). Not part of
/// a run's settings: a resumed run may change them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Kernels {
    /// Every Adam of the run.
    pub adam: AdamKernel,
    /// Every EMA of the run.
    pub ema: EmaKernel,
}

/// The moments and parameters of one Adam update, index-aligned.
pub struct AdamTensors<'a> {
    /// Parameters, updated in place.
    pub params: &'a [Tensor],
    /// Their gradients.
    pub grads: &'a [Tensor],
    /// First moments, updated in place.
    pub exp_avgs: &'a [Tensor],
    /// Second moments, updated in place.
    pub exp_avg_sqs: &'a [Tensor],
}

fn ptrs(ts: &[Tensor]) -> Vec<*mut torch_sys::C_tensor> {
    ts.iter().map(|t| t.as_ptr() as *mut _).collect()
}

fn call(f: impl FnOnce(*mut std::os::raw::c_char, i64) -> i32) -> Result<(), tch::TchError> {
    crate::shim::call(f).map_err(tch::TchError::Torch)
}

/// One Adam update of `t` at step `step` (1-based, after this update) with the
/// `Foreach` or `Fused` kernel (`Plain` is [`crate::train::adam::Adam`]'s own loop). Errors if
/// the lists differ in length, a gradient or moment differs from its parameter in shape, dtype
/// or device, or libtorch refuses the tensors.
#[allow(clippy::too_many_arguments)]
pub fn adam_step(
    kernel: AdamKernel,
    t: &AdamTensors<'_>,
    step: i64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
) -> Result<(), tch::TchError> {
    let n = t.params.len();
    if [t.grads.len(), t.exp_avgs.len(), t.exp_avg_sqs.len()] != [n; 3] {
        return Err(tch::TchError::Torch(format!(
            "adam_step: {n} parameters but {}, {} and {} gradients and moments",
            t.grads.len(),
            t.exp_avgs.len(),
            t.exp_avg_sqs.len()
        )));
    }
    // libtorch's CPU `_fused_adam_` does not check shapes (a gradient with more elements
    // than its parameter is read past the parameter's size, silently): check here, on the host.
    for (i, p) in t.params.iter().enumerate() {
        for (what, other) in [
            ("gradient", &t.grads[i]),
            ("exp_avg", &t.exp_avgs[i]),
            ("exp_avg_sq", &t.exp_avg_sqs[i]),
        ] {
            if other.size() != p.size() || other.kind() != p.kind() || other.device() != p.device()
            {
                return Err(tch::TchError::Torch(format!(
                    "adam_step: parameter {i} is {:?} {:?} on {:?} but its {what} is {:?} {:?} on {:?}",
                    p.size(),
                    p.kind(),
                    p.device(),
                    other.size(),
                    other.kind(),
                    other.device()
                )));
            }
        }
    }
    let (p, g, m, v) = (
        ptrs(t.params),
        ptrs(t.grads),
        ptrs(t.exp_avgs),
        ptrs(t.exp_avg_sqs),
    );
    let f = match kernel {
        AdamKernel::Foreach => ffi::midpoint_adam_foreach,
        AdamKernel::Fused => ffi::midpoint_adam_fused,
        AdamKernel::Plain => {
            return Err(tch::TchError::Torch(
                "adam_step: the plain kernel is Adam's own loop".into(),
            ))
        }
    };
    // SAFETY: the pointers come from live tensors borrowed for the call; the C++ side copies
    // the at::Tensor handles (sharing storage) and catches every exception.
    call(|err, len| unsafe {
        f(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            n as i64,
            step,
            lr,
            beta1,
            beta2,
            eps,
            err,
            len,
        )
    })
}

/// `ema[i] ← ema[i] + weight·(src[i] − ema[i])` for all `i`, in one `_foreach_lerp_`.
pub fn foreach_lerp(ema: &[Tensor], src: &[Tensor], weight: f64) -> Result<(), tch::TchError> {
    if ema.len() != src.len() {
        return Err(tch::TchError::Torch(format!(
            "foreach_lerp: {} averages but {} sources",
            ema.len(),
            src.len()
        )));
    }
    let (e, s) = (ptrs(ema), ptrs(src));
    // SAFETY: as in adam_step.
    call(|err, len| unsafe {
        ffi::midpoint_foreach_lerp(e.as_ptr(), s.as_ptr(), e.len() as i64, weight, err, len)
    })
}
