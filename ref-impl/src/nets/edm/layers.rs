//! The three layers of EDM's networks with EDM's initialisation: [`Linear`], [`Conv2d`]
//! (padding `k/2`) and [`GroupNorm`] (`min(32, C/4)` groups).
//!
//! Weights are Xavier-uniform, `sqrt(6/(fan_in + fan_out))·U(−1, 1)` with `fan = channels·k²`
//! for convolutions, times an [`InitScale`]; biases start at 0; GroupNorm starts at scale 1,
//! shift 0.

use tch::{nn, Tensor};

/// Factor on the Xavier-uniform weights (EDM's `init`, `init_zero`, `init_attn`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitScale {
    /// 1.
    Xavier,
    /// 1e-5: "zero-init" layers start near zero but not at zero (`conv1`, `proj`, the output
    /// conv).
    Zero,
    /// `sqrt(0.2)`: the attention `qkv` projection.
    Attention,
}

impl InitScale {
    /// The factor.
    pub fn factor(self) -> f64 {
        match self {
            InitScale::Xavier => 1.0,
            InitScale::Zero => 1e-5,
            InitScale::Attention => 0.2f64.sqrt(),
        }
    }
}

/// Half-width of the initial weight distribution: `scale · sqrt(6/(fan_in + fan_out))`.
pub fn init_bound(fan_in: i64, fan_out: i64, scale: InitScale) -> f64 {
    scale.factor() * (6.0 / (fan_in + fan_out) as f64).sqrt()
}

fn xavier(vs: &nn::Path, shape: &[i64], fan_in: i64, fan_out: i64, scale: InitScale) -> Tensor {
    let b = init_bound(fan_in, fan_out, scale);
    vs.var("weight", shape, nn::Init::Uniform { lo: -b, up: b })
}

/// `y = x·Wᵀ + b` (EDM `Linear`).
#[derive(Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// `in_features → out_features`, with or without bias.
    pub fn new(vs: nn::Path, in_features: i64, out_features: i64, bias: bool) -> Self {
        let weight = xavier(
            &vs,
            &[out_features, in_features],
            in_features,
            out_features,
            InitScale::Xavier,
        );
        let bias = bias.then(|| vs.zeros("bias", &[out_features]));
        Linear { weight, bias }
    }

    /// `x` `[N, in]` ↦ `[N, out]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, self.bias.as_ref())
    }
}

/// A `k×k` convolution with stride 1, padding `k/2` and a bias (EDM `Conv2d` without its
/// fused resampling, which the blocks do separately).
#[derive(Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Tensor,
    padding: i64,
}

impl Conv2d {
    /// `in_channels → out_channels` with kernel `k` and initial scale `scale`.
    pub fn new(
        vs: nn::Path,
        in_channels: i64,
        out_channels: i64,
        k: i64,
        scale: InitScale,
    ) -> Self {
        let weight = xavier(
            &vs,
            &[out_channels, in_channels, k, k],
            in_channels * k * k,
            out_channels * k * k,
            scale,
        );
        let bias = vs.zeros("bias", &[out_channels]);
        Conv2d {
            weight,
            bias,
            padding: k / 2,
        }
    }

    /// `x` `[N, in, H, W]` ↦ `[N, out, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(
            &self.weight,
            Some(&self.bias),
            [1, 1],
            [self.padding, self.padding],
            [1, 1],
            1,
        )
    }
}

/// Group normalisation over `min(32, C/4)` groups with an affine map (EDM `GroupNorm`).
#[derive(Debug)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: i64,
    eps: f64,
}

impl GroupNorm {
    /// For `channels` channels with the given `eps` (1e-6 throughout `ddpm++`).
    pub fn new(vs: nn::Path, channels: i64, eps: f64) -> Self {
        GroupNorm {
            weight: vs.ones("weight", &[channels]),
            bias: vs.zeros("bias", &[channels]),
            groups: 32.min(channels / 4),
            eps,
        }
    }

    /// The number of groups.
    pub fn groups(&self) -> i64 {
        self.groups
    }

    /// `x` `[N, C, H, W]` ↦ same shape.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.group_norm(
            self.groups,
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
            true,
        )
    }
}
