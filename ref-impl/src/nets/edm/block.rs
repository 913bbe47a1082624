//! The residual block of `ddpm++` (EDM `UNetBlock` with `adaptive_scale = False`,
//! `resample_proj = True`, `skip_scale = sqrt(½)`, `eps = 1e-6`):
//!
//! ```text
//! h = conv0_3x3(resample(silu(norm0(x))))
//! h = silu(norm1(h + affine(emb)))            embedding added before norm1
//! h = conv1_3x3(dropout(h))                    conv1 zero-initialised
//! x = (h + skip(resample(x)))·sqrt(½)          skip = 1×1 conv if channels change or resampling
//! x = attention(x)                             optional (see [`super::attention`])
//! ```

use super::attention::Attention;
use super::config::{BlockSpec, Resample};
use super::layers::{Conv2d, GroupNorm, InitScale, Linear};
use tch::{nn, Tensor};

/// 2×2 average pooling or 2× nearest repetition: EDM's `[1, 1]` resampling filter.
pub fn resample(x: &Tensor, how: Resample) -> Tensor {
    match how {
        Resample::None => x.shallow_clone(),
        Resample::Down => x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None),
        Resample::Up => {
            let (h, w) = (x.size()[2], x.size()[3]);
            x.upsample_nearest2d([2 * h, 2 * w], 2.0, 2.0)
        }
    }
}

/// One `UNetBlock`.
#[derive(Debug)]
pub struct UNetBlock {
    spec: BlockSpec,
    dropout: f64,
    norm0: GroupNorm,
    conv0: Conv2d,
    affine: Linear,
    norm1: GroupNorm,
    conv1: Conv2d,
    skip: Option<Conv2d>,
    attention: Option<Attention>,
}

impl UNetBlock {
    /// Builds the block of `spec` under `vs` (variable names as in EDM).
    pub fn new(vs: &nn::Path, spec: &BlockSpec, emb_channels: i64, dropout: f64) -> Self {
        let (i, o) = (spec.in_channels, spec.out_channels);
        UNetBlock {
            spec: spec.clone(),
            dropout,
            norm0: GroupNorm::new(vs / "norm0", i, 1e-6),
            conv0: Conv2d::new(vs / "conv0", i, o, 3, InitScale::Xavier),
            affine: Linear::new(vs / "affine", emb_channels, o, true),
            norm1: GroupNorm::new(vs / "norm1", o, 1e-6),
            conv1: Conv2d::new(vs / "conv1", o, o, 3, InitScale::Zero),
            skip: spec
                .has_skip_conv()
                .then(|| Conv2d::new(vs / "skip", i, o, 1, InitScale::Xavier)),
            attention: spec.attention.then(|| Attention::new(vs, o)),
        }
    }

    /// The block's place in the layout.
    pub fn spec(&self) -> &BlockSpec {
        &self.spec
    }

    /// `x` `[N, in, H, W]`, `emb` `[N, emb_channels]` ↦ `[N, out, H', W']`; dropout only when
    /// `train`.
    pub fn forward(&self, x: &Tensor, emb: &Tensor, train: bool) -> Tensor {
        let how = self.spec.resample;
        let h = self
            .conv0
            .forward(&resample(&self.norm0.forward(x).silu(), how));
        let e = self.affine.forward(emb).unsqueeze(2).unsqueeze(3);
        let h = self.norm1.forward(&(h + e)).silu();
        let h = self.conv1.forward(&h.dropout(self.dropout, train));
        let skip = match &self.skip {
            Some(conv) => conv.forward(&resample(x, how)),
            None => x.shallow_clone(),
        };
        let x = (h + skip) * std::f64::consts::FRAC_1_SQRT_2;
        match &self.attention {
            Some(attn) => attn.forward(&x),
            None => x,
        }
    }
}
