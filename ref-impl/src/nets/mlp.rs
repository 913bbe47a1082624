//! Toy networks: an MLP generator `G_θ: z ↦ x0` and an MLP displacement field
//! `f_ψ(x̃, t)` with a sinusoidal time embedding (paper §3.4; Fig. 3).
//!
//! One type per block, configured by [`MlpConfig`], read top to bottom:
//!
//! ```text
//! t ──► TimeEmbedding ───────────────┐ (per block, added before the nonlinearity)
//! x ──► Linear(in → width) ──► Block ──► ... ──► Block ──► SiLU ──► Linear(width → out)
//! Block:  h ↦ h + fc2(SiLU(fc1(h) + emb_proj(e)))
//! ```
//!
//! Initialisation: PyTorch's `nn.Linear` default, `U(±1/sqrt(fan_in))` for weights and biases
//! (tch's own default is Kaiming-uniform with the ReLU gain, √6 times wider, which made the
//! untrained generator's outputs tens of units wide), and `fc2` of every block starts at zero
//! so that each block starts as the identity.

use crate::train::network::{Field, Generator};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Sinusoidal time features `[t, sin(π 2^k t), cos(π 2^k t)]_{k<K}` (periods `2, 1, ½, ...`),
/// then `SiLU(Linear(2K + 1 → width))`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TimeEmbeddingConfig {
    /// Number `K` of sine/cosine pairs.
    pub frequencies: i64,
}

impl Default for TimeEmbeddingConfig {
    fn default() -> Self {
        TimeEmbeddingConfig { frequencies: 6 }
    }
}

/// Shape of an [`Mlp`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MlpConfig {
    /// Input dimension (data or latent).
    pub in_dim: i64,
    /// Output dimension.
    pub out_dim: i64,
    /// Hidden width.
    pub width: i64,
    /// Number of residual [`Block`]s.
    pub blocks: usize,
    /// Time embedding (critic) or none (generator).
    pub time: Option<TimeEmbeddingConfig>,
}

impl MlpConfig {
    /// A generator `R^latent → R^dim`: width 256, 3 blocks, no time input.
    pub fn generator(latent: i64, dim: i64) -> Self {
        MlpConfig {
            in_dim: latent,
            out_dim: dim,
            width: 256,
            blocks: 3,
            time: None,
        }
    }

    /// A displacement field `R^dim × [0, 1] → R^dim`: width 256, 3 blocks, 6 frequencies.
    pub fn field(dim: i64) -> Self {
        MlpConfig {
            in_dim: dim,
            out_dim: dim,
            width: 256,
            blocks: 3,
            time: Some(TimeEmbeddingConfig::default()),
        }
    }
}

/// A linear layer with PyTorch's default initialisation, or all zeros (`zero`).
fn linear(vs: nn::Path, in_dim: i64, out_dim: i64, zero: bool) -> nn::Linear {
    let bound = 1.0 / (in_dim as f64).sqrt();
    let init = if zero {
        nn::Init::Const(0.0)
    } else {
        nn::Init::Uniform {
            lo: -bound,
            up: bound,
        }
    };
    nn::linear(
        vs,
        in_dim,
        out_dim,
        nn::LinearConfig {
            ws_init: init,
            bs_init: Some(init),
            bias: true,
        },
    )
}

/// `t ↦ SiLU(W·features(t) + c)`.
#[derive(Debug)]
pub struct TimeEmbedding {
    frequencies: Tensor,
    proj: nn::Linear,
}

impl TimeEmbedding {
    /// Builds the embedding under `vs`.
    pub fn new(vs: &nn::Path, config: TimeEmbeddingConfig, width: i64) -> Self {
        let k = config.frequencies;
        let frequencies = (Tensor::arange(k, (Kind::Float, vs.device())).exp2()
            * std::f64::consts::PI)
            .reshape([1, k]);
        let proj = linear(vs / "proj", 2 * k + 1, width, false);
        TimeEmbedding { frequencies, proj }
    }

    /// `t` of shape `[N]` ↦ `[N, width]`.
    pub fn forward(&self, t: &Tensor) -> Tensor {
        let t = t.to_kind(Kind::Float).reshape([-1, 1]);
        let phase = &t * &self.frequencies;
        let features = Tensor::cat(&[t, phase.sin(), phase.cos()], 1);
        self.proj.forward(&features).silu()
    }
}

/// Residual block `h ↦ h + fc2(SiLU(fc1(h) + proj(e)))`.
#[derive(Debug)]
pub struct Block {
    fc1: nn::Linear,
    fc2: nn::Linear,
    emb: Option<nn::Linear>,
}

impl Block {
    /// Builds the block under `vs`; `with_time` adds the projection of the time embedding.
    pub fn new(vs: &nn::Path, width: i64, with_time: bool) -> Self {
        Block {
            fc1: linear(vs / "fc1", width, width, false),
            fc2: linear(vs / "fc2", width, width, true),
            emb: with_time.then(|| linear(vs / "emb", width, width, false)),
        }
    }

    /// `h` `[N, width]`, optional time embedding `e` `[N, width]`.
    pub fn forward(&self, h: &Tensor, e: Option<&Tensor>) -> Tensor {
        let mut a = self.fc1.forward(h);
        if let (Some(proj), Some(e)) = (&self.emb, e) {
            a += proj.forward(e);
        }
        h + self.fc2.forward(&a.silu())
    }
}

/// The MLP of the module docs; a [`Generator`] when built without time, a [`Field`] with.
#[derive(Debug)]
pub struct Mlp {
    config: MlpConfig,
    input: nn::Linear,
    time: Option<TimeEmbedding>,
    blocks: Vec<Block>,
    output: nn::Linear,
}

impl Mlp {
    /// Builds the network under `vs` (initialisation as in the module docs).
    pub fn new(vs: &nn::Path, config: MlpConfig) -> Self {
        let w = config.width;
        let time = config
            .time
            .map(|tc| TimeEmbedding::new(&(vs / "time"), tc, w));
        Mlp {
            config,
            input: linear(vs / "input", config.in_dim, w, false),
            blocks: (0..config.blocks)
                .map(|i| Block::new(&(vs / "blocks" / i), w, time.is_some()))
                .collect(),
            time,
            output: linear(vs / "output", w, config.out_dim, false),
        }
    }

    /// The configuration.
    pub fn config(&self) -> MlpConfig {
        self.config
    }

    /// `x` `[N, in_dim]`, `t` `[N]` (ignored without a time embedding) ↦ `[N, out_dim]`.
    pub fn forward(&self, x: &Tensor, t: Option<&Tensor>) -> Tensor {
        let e = match (&self.time, t) {
            (Some(emb), Some(t)) => Some(emb.forward(t)),
            _ => None,
        };
        let mut h = self.input.forward(x);
        for block in &self.blocks {
            h = block.forward(&h, e.as_ref());
        }
        self.output.forward(&h.silu())
    }
}

impl Generator for Mlp {
    fn generate(&self, z: &Tensor, _train: bool) -> Tensor {
        self.forward(z, None)
    }
}

impl Field for Mlp {
    fn field(&self, x: &Tensor, t: &Tensor, _train: bool) -> Tensor {
        self.forward(x, Some(t))
    }
}
