//! `ddpm++` as a two-time network `v_{s,t}(x)` for the flow-map baselines: `s` and `t` are each
//! embedded as EDM embeds its noise level (positional features, then two mapping layers, each
//! time with its own weights) and the two embeddings are added where `SongUNet` uses its single
//! one, so every block sees both ([FMM] §4 concatenates ADM's two embeddings; a sum keeps
//! EDM's block shapes). The time enters as `c = 4(t − ½)`, spanning `[−2, 2]` like EDM's noise
//! labels `ln(σ)/4` over its σ range, so the positional features resolve time as finely as
//! EDM's resolve noise and a time derivative picks up a factor 4 at most per frequency.

use super::config::UNetConfig;
use super::embedding::NoiseEmbedding;
use super::unet::SongUNet;
use crate::error::TrainError;
use tch::{nn, Tensor};

/// The network; variables as `SongUNet`'s, plus `map_s.*` for the embedding of `s`.
#[derive(Debug)]
pub struct TwoTimeUNet {
    unet: SongUNet,
    s_embedding: NoiseEmbedding,
}

/// The label of time `t` fed to the positional features.
pub fn time_label(t: &Tensor) -> Tensor {
    (t - 0.5) * 4.0
}

impl TwoTimeUNet {
    /// Builds the network under `vs` (EDM's initialisation for both embeddings).
    pub fn new(vs: &nn::Path, config: &UNetConfig) -> Result<Self, TrainError> {
        let unet = SongUNet::new(vs, config)?;
        let s_embedding = NoiseEmbedding::new(
            &(vs / "map_s"),
            config.noise_channels(),
            config.emb_channels(),
            0,
        );
        Ok(TwoTimeUNet { unet, s_embedding })
    }

    /// The configuration.
    pub fn config(&self) -> &UNetConfig {
        self.unet.config()
    }

    /// `v_{s,t}(x)`: `x` `[N, C, H, W]`, `s`, `t` `[N]`; dropout only when `train`.
    pub fn forward(&self, x: &Tensor, s: &Tensor, t: &Tensor, train: bool) -> Tensor {
        let emb =
            self.unet.embed(&time_label(t), None) + self.s_embedding.forward(&time_label(s), None);
        self.unet.forward_embedded(x, &emb, train)
    }
}
