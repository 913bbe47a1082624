//! The noise-level embedding of `ddpm++` (EDM `PositionalEmbedding` with `endpoint = True`,
//! then the mapping layers of `SongUNet`):
//!
//! ```text
//! c ↦ [sin(c·f_i), cos(c·f_i)]_i,  f_i = (1/10000)^(i/(C/2 − 1)),  i = 0..C/2   (sin half first)
//!   (+ map_augment(augment_labels), bias-free, when given)
//!   ↦ silu(map_layer0(·)) ↦ silu(map_layer1(·))                                  width C → E
//! ```

use super::layers::Linear;
use tch::{nn, Kind, Tensor};

/// Positional features of `c` `[N]` with `channels` columns: sines first, then cosines (EDM
/// computes `[cos, sin]` and swaps the halves in `SongUNet.forward`). fp32, as EDM's
/// `x.ger(freqs)` on its fp32 noise labels; f64 labels stay f64 (derivative tests).
pub fn positional_features(c: &Tensor, channels: i64) -> Tensor {
    let half = channels / 2;
    let kind = if c.kind() == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    };
    let i = Tensor::arange(half, (kind, c.device()));
    let freqs = (i / (half - 1).max(1) as f64 * (1.0f64 / 10000.0).ln()).exp();
    let phase = c.to_kind(kind).reshape([-1, 1]) * freqs.reshape([1, half]);
    Tensor::cat(&[phase.sin(), phase.cos()], 1)
}

/// `c_noise ↦ emb` (`[N]` ↦ `[N, E]`).
#[derive(Debug)]
pub struct NoiseEmbedding {
    noise_channels: i64,
    map_augment: Option<Linear>,
    map_layer0: Linear,
    map_layer1: Linear,
}

impl NoiseEmbedding {
    /// Variables `map_augment` (if `augment_dim > 0`), `map_layer0`, `map_layer1` under `vs`.
    pub fn new(vs: &nn::Path, noise_channels: i64, emb_channels: i64, augment_dim: i64) -> Self {
        NoiseEmbedding {
            noise_channels,
            map_augment: (augment_dim > 0)
                .then(|| Linear::new(vs / "map_augment", augment_dim, noise_channels, false)),
            map_layer0: Linear::new(vs / "map_layer0", noise_channels, emb_channels, true),
            map_layer1: Linear::new(vs / "map_layer1", emb_channels, emb_channels, true),
        }
    }

    /// `c_noise` `[N]`, optional augmentation labels `[N, augment_dim]` ↦ `[N, E]`.
    pub fn forward(&self, c_noise: &Tensor, augment_labels: Option<&Tensor>) -> Tensor {
        let mut emb = positional_features(c_noise, self.noise_channels);
        if let (Some(map), Some(labels)) = (&self.map_augment, augment_labels) {
            emb += map.forward(labels);
        }
        let emb = self.map_layer0.forward(&emb).silu();
        self.map_layer1.forward(&emb).silu()
    }
}
