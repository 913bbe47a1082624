//! Configuration of the `SongUNet` (EDM's `ddpm++` network) and its layout.
//!
//! The layout (which block sits where, with how many channels) is derived here once, from the
//! configuration, and used by both the builder ([`super::SongUNet`]) and the analytic counts
//! ([`UNetConfig::param_count`], [`UNetConfig::forward_flops`]), so the parameter count of a
//! configuration is known without building it. Block names follow EDM's `SongUNet`
//! (`enc.16x16_block0`, `dec.32x32_up`, ...), so the variable names of a built network match
//! EDM's state dict.

use crate::error::TrainError;

/// Hyper-parameters of a `SongUNet` (EDM `training/networks.py`, `ddpm++` settings fixed:
/// positional noise embedding with `channel_mult_noise = 1`, standard encoder and decoder,
/// resampling filter `[1, 1]`, one attention head, skip scale `sqrt(½)`, GroupNorm `eps 1e-6`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UNetConfig {
    /// Name (`ddpmpp`, `ddpmpp-noaug`, `tiny`, `digits`).
    pub name: String,
    /// Image side (32 for CIFAR-10).
    pub img_resolution: i64,
    /// Image channels (3).
    pub img_channels: i64,
    /// Width of the augmentation-label input (9 in EDM's CIFAR-10 runs, 0 for none). The
    /// labels are optional at run time; without them this input adds nothing.
    pub augment_dim: i64,
    /// Base channel count (128).
    pub model_channels: i64,
    /// Channel multiplier per resolution level (`[2, 2, 2]`).
    pub channel_mult: Vec<i64>,
    /// Embedding width = `model_channels · channel_mult_emb` (4 → 512).
    pub channel_mult_emb: i64,
    /// Residual blocks per resolution (4).
    pub num_blocks: usize,
    /// Resolutions with self-attention (`[16]`).
    pub attn_resolutions: Vec<i64>,
    /// Dropout probability of the residual blocks in training mode (0.13).
    pub dropout: f64,
}

/// How a block resamples its input (before `conv0` and the skip path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Resample {
    /// Same resolution.
    None,
    /// 2×2 average pooling (EDM's `[1, 1]` filter with stride 2).
    Down,
    /// 2× nearest-neighbour repetition (EDM's transposed `[1, 1]` filter).
    Up,
}

/// One `UNetBlock` of the layout.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BlockSpec {
    /// Variable path, e.g. `enc.16x16_block0`.
    pub name: String,
    /// Input channels (including a concatenated skip in the decoder).
    pub in_channels: i64,
    /// Output channels.
    pub out_channels: i64,
    /// Output resolution.
    pub resolution: i64,
    /// Single-head self-attention after the residual part.
    pub attention: bool,
    /// Resampling.
    pub resample: Resample,
}

impl BlockSpec {
    /// EDM adds a 1×1 skip convolution when the channels change or the block resamples
    /// (`resample_proj = True`); otherwise the skip is the identity.
    pub fn has_skip_conv(&self) -> bool {
        self.in_channels != self.out_channels || self.resample != Resample::None
    }
}

/// The whole layout: stem convolution, encoder blocks, decoder blocks, output layer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Layout {
    /// Channels of the stem conv `img_channels → model_channels`.
    pub stem_channels: i64,
    /// Encoder blocks in order (every output, and the stem's, is kept as a skip).
    pub encoder: Vec<BlockSpec>,
    /// Decoder blocks in order (a block whose `in_channels` exceed the running width takes
    /// `cat(x, skip)`).
    pub decoder: Vec<BlockSpec>,
    /// Channels entering the output GroupNorm → SiLU → conv 3×3.
    pub out_channels_in: i64,
}

/// Names accepted by [`UNetConfig::named`].
pub const ARCH_NAMES: [&str; 4] = ["ddpmpp", "ddpmpp-noaug", "tiny", "digits"];

impl UNetConfig {
    /// EDM's unconditional CIFAR-10 `ddpm++` network (`augment_dim = 9`):
    /// 55,733,891 parameters.
    pub fn ddpmpp() -> Self {
        UNetConfig {
            name: "ddpmpp".into(),
            img_resolution: 32,
            img_channels: 3,
            augment_dim: 9,
            model_channels: 128,
            channel_mult: vec![2, 2, 2],
            channel_mult_emb: 4,
            num_blocks: 4,
            attn_resolutions: vec![16],
            dropout: 0.13,
        }
    }

    /// The same without the augmentation-label input: 55,732,739 parameters.
    pub fn ddpmpp_noaug() -> Self {
        UNetConfig {
            name: "ddpmpp-noaug".into(),
            augment_dim: 0,
            ..Self::ddpmpp()
        }
    }

    /// A small network for tests and CPU runs with every feature of `ddpm++` (two levels,
    /// attention at 16×16, channel change in the first block, augmentation input).
    pub fn tiny() -> Self {
        UNetConfig {
            name: "tiny".into(),
            img_resolution: 32,
            img_channels: 3,
            augment_dim: 9,
            model_channels: 16,
            channel_mult: vec![1, 2],
            channel_mult_emb: 2,
            num_blocks: 1,
            attn_resolutions: vec![16],
            dropout: 0.13,
        }
    }

    /// The `ddpm++` blocks sized for 8×8 grayscale images (scikit-learn's digits,
    /// `scripts/digits/export.sh`), small enough to train on a CPU: two levels (8×8 and 4×4),
    /// 16 and 32 channels, two residual blocks per level, attention at 4×4, no augmentation
    /// input, dropout 0.1 (1,442 training images: EDM's CIFAR-10 dropout is 0.13).
    pub fn digits() -> Self {
        UNetConfig {
            name: "digits".into(),
            img_resolution: 8,
            img_channels: 1,
            augment_dim: 0,
            model_channels: 16,
            channel_mult: vec![1, 2],
            channel_mult_emb: 4,
            num_blocks: 2,
            attn_resolutions: vec![4],
            dropout: 0.1,
        }
    }

    /// One of [`ARCH_NAMES`].
    pub fn named(name: &str) -> Result<Self, TrainError> {
        match name {
            "ddpmpp" => Ok(Self::ddpmpp()),
            "ddpmpp-noaug" => Ok(Self::ddpmpp_noaug()),
            "tiny" => Ok(Self::tiny()),
            "digits" => Ok(Self::digits()),
            other => Err(TrainError::InvalidOption(format!(
                "unknown --arch {other:?} (expected one of {})",
                ARCH_NAMES.join(", ")
            ))),
        }
    }

    /// Embedding width (`model_channels · channel_mult_emb`).
    pub fn emb_channels(&self) -> i64 {
        self.model_channels * self.channel_mult_emb
    }

    /// Noise-embedding width (`model_channels`, `channel_mult_noise = 1`).
    pub fn noise_channels(&self) -> i64 {
        self.model_channels
    }

    /// Checks that the layout is buildable: positive sizes, a resolution divisible by
    /// `2^(levels−1)`, GroupNorm-compatible channel counts, dropout in `[0, 1)`.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidOption(format!("{}: {m}", self.name)));
        if self.channel_mult.is_empty() || self.num_blocks == 0 {
            return bad("channel_mult and num_blocks must be non-empty / positive".into());
        }
        if self.img_resolution <= 0 || self.img_channels <= 0 || self.model_channels <= 0 {
            return bad("resolution and channel counts must be positive".into());
        }
        let levels = self.channel_mult.len() as u32 - 1;
        if self.img_resolution % (1 << levels) != 0 {
            return bad(format!(
                "resolution {} is not divisible by 2^{levels}",
                self.img_resolution
            ));
        }
        let min_c = self.model_channels * self.channel_mult.iter().min().copied().unwrap_or(1);
        if min_c.min(self.model_channels) < 4 || self.channel_mult.iter().any(|&m| m <= 0) {
            return bad("every block needs at least 4 channels (GroupNorm)".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        Ok(())
    }

    /// The layout of EDM's `SongUNet.__init__` for this configuration.
    pub fn layout(&self) -> Layout {
        let mc = self.model_channels;
        let last = self.channel_mult.len() - 1;
        let block = |name: String, cin: i64, cout: i64, res: i64, attention, resample| BlockSpec {
            name,
            in_channels: cin,
            out_channels: cout,
            resolution: res,
            attention,
            resample,
        };
        let mut encoder = Vec::new();
        let mut skips = vec![mc];
        let mut cout = mc;
        for (level, &mult) in self.channel_mult.iter().enumerate() {
            let res = self.img_resolution >> level;
            if level > 0 {
                let down = block(
                    format!("enc.{res}x{res}_down"),
                    cout,
                    cout,
                    res,
                    false,
                    Resample::Down,
                );
                encoder.push(down);
                skips.push(cout);
            }
            for idx in 0..self.num_blocks {
                let cin = cout;
                cout = mc * mult;
                let attn = self.attn_resolutions.contains(&res);
                let name = format!("enc.{res}x{res}_block{idx}");
                encoder.push(block(name, cin, cout, res, attn, Resample::None));
                skips.push(cout);
            }
        }
        let mut decoder = Vec::new();
        for (level, &mult) in self.channel_mult.iter().enumerate().rev() {
            let res = self.img_resolution >> level;
            if level == last {
                let r = Resample::None;
                decoder.push(block(
                    format!("dec.{res}x{res}_in0"),
                    cout,
                    cout,
                    res,
                    true,
                    r,
                ));
                decoder.push(block(
                    format!("dec.{res}x{res}_in1"),
                    cout,
                    cout,
                    res,
                    false,
                    r,
                ));
            } else {
                let name = format!("dec.{res}x{res}_up");
                decoder.push(block(name, cout, cout, res, false, Resample::Up));
            }
            for idx in 0..=self.num_blocks {
                let cin = cout + skips.pop().expect("one skip per decoder block");
                cout = mc * mult;
                let attn = idx == self.num_blocks && self.attn_resolutions.contains(&res);
                let name = format!("dec.{res}x{res}_block{idx}");
                decoder.push(block(name, cin, cout, res, attn, Resample::None));
            }
        }
        Layout {
            stem_channels: mc,
            encoder,
            decoder,
            out_channels_in: cout,
        }
    }

    /// Number of trainable parameters, counted from the layout: Linear `in·out (+out)`,
    /// Conv `in·out·k² + out`, GroupNorm `2C`.
    pub fn param_count(&self) -> i64 {
        let (emb, noise, c) = (
            self.emb_channels(),
            self.noise_channels(),
            self.img_channels,
        );
        let linear = |i: i64, o: i64| i * o + o;
        let conv = |i: i64, o: i64, k: i64| i * o * k * k + o;
        let norm = |ch: i64| 2 * ch;
        let block = |b: &BlockSpec| {
            let (i, o) = (b.in_channels, b.out_channels);
            let mut n = norm(i) + conv(i, o, 3) + linear(emb, o) + norm(o) + conv(o, o, 3);
            if b.has_skip_conv() {
                n += conv(i, o, 1);
            }
            if b.attention {
                n += norm(o) + conv(o, 3 * o, 1) + conv(o, o, 1);
            }
            n
        };
        let layout = self.layout();
        let mapping = self.augment_dim * noise + linear(noise, emb) + linear(emb, emb);
        let stem = conv(c, layout.stem_channels, 3);
        let blocks: i64 = layout
            .encoder
            .iter()
            .chain(&layout.decoder)
            .map(block)
            .sum();
        let out = norm(layout.out_channels_in) + conv(layout.out_channels_in, c, 3);
        mapping + stem + blocks + out
    }

    /// Forward cost of one image in floating-point operations (2 per multiply-add), counting
    /// convolutions, linear layers and the two attention products (`q·k` and `w·v`,
    /// `C·(HW)²` multiply-adds each); normalisations and activations are left out (< 1%).
    pub fn forward_flops(&self) -> f64 {
        let (emb, noise, c) = (
            self.emb_channels(),
            self.noise_channels(),
            self.img_channels,
        );
        let conv = |i: i64, o: i64, k: i64, res: i64| (i * o * k * k * res * res) as f64;
        let block = |b: &BlockSpec| {
            let (i, o, r) = (b.in_channels, b.out_channels, b.resolution);
            // conv0 runs after resampling, at the output resolution.
            let mut macs = conv(i, o, 3, r) + conv(o, o, 3, r) + (emb * o) as f64;
            if b.has_skip_conv() {
                macs += conv(i, o, 1, r);
            }
            if b.attention {
                let hw = (r * r) as f64;
                macs += conv(o, 3 * o, 1, r) + conv(o, o, 1, r) + 2.0 * o as f64 * hw * hw;
            }
            macs
        };
        let layout = self.layout();
        let res = self.img_resolution;
        let mapping = (self.augment_dim * noise + noise * emb + emb * emb) as f64;
        let stem = conv(c, layout.stem_channels, 3, res);
        let blocks: f64 = layout
            .encoder
            .iter()
            .chain(&layout.decoder)
            .map(block)
            .sum();
        let out = conv(layout.out_channels_in, c, 3, res);
        2.0 * (mapping + stem + blocks + out)
    }
}
