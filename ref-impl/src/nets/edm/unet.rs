//! `SongUNet` in the `ddpm++` configuration (EDM `training/networks.py`): the raw network
//! `F(x, c_noise)` that [`super::EdmPrecond`] wraps.
//!
//! ```text
//! c_noise ─► NoiseEmbedding ─► emb (to every block)
//! x ─► stem conv 3×3 ─► encoder blocks ──(every output kept as a skip)──┐
//!   ─► decoder blocks (a block wider than the running x takes cat(x, skip.pop()))
//!   ─► GroupNorm ─► silu ─► conv 3×3 (zero-init) ─► F
//! ```
//!
//! The layout comes from [`UNetConfig::layout`]; variable names are EDM's
//! (`enc.32x32_conv.weight`, `dec.16x16_block4.qkv.weight`, `dec.32x32_aux_conv.bias`, ...).

use super::block::UNetBlock;
use super::config::{BlockSpec, UNetConfig};
use super::embedding::NoiseEmbedding;
use super::layers::{Conv2d, GroupNorm, InitScale};
use crate::error::TrainError;
use tch::{nn, Tensor};

/// The network `F(x, c_noise)`.
#[derive(Debug)]
pub struct SongUNet {
    config: UNetConfig,
    embedding: NoiseEmbedding,
    stem: Conv2d,
    encoder: Vec<UNetBlock>,
    decoder: Vec<UNetBlock>,
    out_norm: GroupNorm,
    out_conv: Conv2d,
}

impl SongUNet {
    /// Builds the network under `vs` after [`UNetConfig::validate`].
    pub fn new(vs: &nn::Path, config: &UNetConfig) -> Result<Self, TrainError> {
        config.validate()?;
        let layout = config.layout();
        let (emb, drop) = (config.emb_channels(), config.dropout);
        let res = config.img_resolution;
        let c = config.img_channels;
        let block = |spec: &BlockSpec| UNetBlock::new(&sub_path(vs, &spec.name), spec, emb, drop);
        let top = format!("{res}x{res}");
        Ok(SongUNet {
            embedding: NoiseEmbedding::new(vs, config.noise_channels(), emb, config.augment_dim),
            stem: Conv2d::new(
                vs / "enc" / format!("{top}_conv"),
                c,
                layout.stem_channels,
                3,
                InitScale::Xavier,
            ),
            encoder: layout.encoder.iter().map(block).collect(),
            decoder: layout.decoder.iter().map(block).collect(),
            out_norm: GroupNorm::new(
                vs / "dec" / format!("{top}_aux_norm"),
                layout.out_channels_in,
                1e-6,
            ),
            out_conv: Conv2d::new(
                vs / "dec" / format!("{top}_aux_conv"),
                layout.out_channels_in,
                c,
                3,
                InitScale::Zero,
            ),
            config: config.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// `x` `[N, C, H, W]`, `c_noise` `[N]`, optional augmentation labels ↦ `[N, C, H, W]`;
    /// dropout only when `train`.
    pub fn forward(
        &self,
        x: &Tensor,
        c_noise: &Tensor,
        augment_labels: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let emb = self.embedding.forward(c_noise, augment_labels);
        self.forward_embedded(x, &emb, train)
    }

    /// The noise embedding `emb` of `c_noise` (and augmentation labels) that every block sees.
    pub fn embed(&self, c_noise: &Tensor, augment_labels: Option<&Tensor>) -> Tensor {
        self.embedding.forward(c_noise, augment_labels)
    }

    /// The network after its noise embedding: `x` and an embedding `emb` `[N, E]` ↦ the
    /// output (what [`SongUNet::forward`] does with `embedding(c_noise)`; a two-time network
    /// passes a combination of two embeddings, [`super::two_time`]).
    pub fn forward_embedded(&self, x: &Tensor, emb: &Tensor, train: bool) -> Tensor {
        let mut x = self.stem.forward(x);
        let mut skips = vec![x.shallow_clone()];
        for block in &self.encoder {
            x = block.forward(&x, emb, train);
            skips.push(x.shallow_clone());
        }
        for block in &self.decoder {
            if x.size()[1] != block.spec().in_channels {
                let skip = skips
                    .pop()
                    .expect("layout pairs every cat block with a skip");
                x = Tensor::cat(&[x, skip], 1);
            }
            x = block.forward(&x, emb, train);
        }
        self.out_conv.forward(&self.out_norm.forward(&x).silu())
    }
}

/// The path `enc` / `16x16_block0` of the dotted name `enc.16x16_block0` (tch joins path
/// components with dots and refuses dots inside one).
pub(crate) fn sub_path<'a>(vs: &nn::Path<'a>, dotted: &str) -> nn::Path<'a> {
    let mut parts = dotted.split('.');
    let first = vs.sub(parts.next().unwrap_or(dotted));
    parts.fold(first, |p, part| p.sub(part))
}
