//! Single-head self-attention over the `H·W` positions of a `UNetBlock` (EDM `UNetBlock`
//! with `num_heads = 1`).
//!
//! `qkv = conv1x1(norm2(x))` has `3C` channels **interleaved**: channel `3c + j` belongs to
//! `q` (`j = 0`), `k` (`j = 1`) or `v` (`j = 2`) — EDM's
//! `reshape(N, C, 3, H·W).unbind(2)`. Weights `softmax_k(q·k/sqrt(C))` are computed in fp32,
//! `a = Σ_k w·v`, and the block returns `(proj(a) + x)·sqrt(½)` with `proj` zero-initialised.

use super::layers::{Conv2d, GroupNorm, InitScale};
use tch::{nn, Kind, Tensor};

/// `(q, k, v)`, each `[N, C, H·W]`, from the interleaved `qkv` `[N, 3C, H, W]`.
pub fn split_qkv(qkv: &Tensor) -> (Tensor, Tensor, Tensor) {
    let (n, c3) = (qkv.size()[0], qkv.size()[1]);
    let parts = qkv.reshape([n, c3 / 3, 3, -1]).unbind(2);
    let mut it = parts.into_iter();
    let (q, k, v) = (it.next(), it.next(), it.next());
    (q.expect("q part"), k.expect("k part"), v.expect("v part"))
}

/// Attention weights `w[n, i, j] = softmax_j(Σ_c q[n,c,i]·k[n,c,j] / sqrt(C))`, computed in
/// fp32 and returned in `q`'s dtype (EDM `AttentionOp`); f64 inputs stay f64 (where EDM would
/// round them to fp32), so that f64 tests of derivatives through the network see no fp32 step.
pub fn attention_weights(q: &Tensor, k: &Tensor) -> Tensor {
    let c = q.size()[1] as f64;
    let kind = if q.kind() == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    };
    let qf = q.to_kind(kind);
    let kf = (k / c.sqrt()).to_kind(kind);
    // [N, C, Q]ᵀ·[N, C, K] = [N, Q, K]
    let logits = qf.transpose(1, 2).bmm(&kf);
    // softmax written out: libtorch 2.11's fused softmax (and log_softmax, and SDPA) cannot be
    // back-propagated through its forward-mode tangent (an in-place write into a saved
    // exponential; checked in PyTorch 2.11), which the flow-map losses need. The same
    // arithmetic as the fused kernel: exp(a − max) / Σ exp(a − max).
    let e = (&logits - logits.amax([2].as_slice(), true).detach()).exp();
    (&e / e.sum_dim_intlist([2].as_slice(), true, kind)).to_kind(q.kind())
}

/// The attention part of a block: `norm2`, `qkv`, `proj`.
#[derive(Debug)]
pub struct Attention {
    norm2: GroupNorm,
    qkv: Conv2d,
    proj: Conv2d,
}

impl Attention {
    /// For `channels` channels; variables `norm2`, `qkv`, `proj` under `vs` (EDM's names).
    pub fn new(vs: &nn::Path, channels: i64) -> Self {
        Attention {
            norm2: GroupNorm::new(vs / "norm2", channels, 1e-6),
            qkv: Conv2d::new(vs / "qkv", channels, 3 * channels, 1, InitScale::Attention),
            proj: Conv2d::new(vs / "proj", channels, channels, 1, InitScale::Zero),
        }
    }

    /// `x` `[N, C, H, W]` ↦ `(proj(a) + x)·sqrt(½)`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (q, k, v) = split_qkv(&self.qkv.forward(&self.norm2.forward(x)));
        let w = attention_weights(&q, &k);
        // a[n, c, i] = Σ_j w[n, i, j]·v[n, c, j]
        let a = v.bmm(&w.transpose(1, 2)).reshape(x.size());
        (self.proj.forward(&a) + x) * std::f64::consts::FRAC_1_SQRT_2
    }
}
