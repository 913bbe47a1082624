//! Images to Inception input: quantization (FID step 1) and normalization (step 3).

use super::FidError;
use tch::{Kind, Tensor};

/// A batch of RGB images, `[N, 3, H, W]` (NCHW).
#[derive(Debug)]
pub enum ImageBatch {
    /// `uint8` pixels as stored (reference images: the raw training images).
    Bytes(Tensor),
    /// Generator output in [−1, 1] (any float kind); quantized by [`quantize`] first, as the
    /// protocol writes samples to 8-bit images before measuring them.
    Signed(Tensor),
}

impl ImageBatch {
    /// Number of images.
    pub fn len(&self) -> usize {
        let t = match self {
            ImageBatch::Bytes(t) | ImageBatch::Signed(t) => t,
        };
        t.size().first().copied().unwrap_or(0).max(0) as usize
    }

    /// True for a batch of no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `uint8 [N, 3, H, W]` pixels, checked (shape, kind, finite values).
    pub fn to_bytes(&self) -> Result<Tensor, FidError> {
        let t = match self {
            ImageBatch::Bytes(t) | ImageBatch::Signed(t) => t,
        };
        let size = t.size();
        if size.len() != 4 || size[1] != 3 || size[0] < 1 || size[2] < 1 || size[3] < 1 {
            return Err(FidError::Batch(format!(
                "expected [N ≥ 1, 3, H ≥ 1, W ≥ 1] (NCHW RGB), got {size:?}"
            )));
        }
        match self {
            ImageBatch::Bytes(t) if t.kind() == Kind::Uint8 => Ok(t.shallow_clone()),
            ImageBatch::Bytes(t) => Err(FidError::Batch(format!(
                "byte images must be uint8, got {:?}",
                t.kind()
            ))),
            ImageBatch::Signed(t) => quantize(t),
        }
    }
}

/// `x ∈ [−1, 1]` → `uint8` by `clamp(x·127.5 + 128, 0, 255)` truncated toward zero (NVlabs'
/// `(x * 127.5 + 128).clamp(0, 255).to(torch.uint8)`). Refuses NaN and ±∞, which would
/// otherwise become arbitrary bytes.
pub fn quantize(x: &Tensor) -> Result<Tensor, FidError> {
    if !x.is_floating_point() {
        return Err(FidError::Batch(format!(
            "images in [-1, 1] must be floating point, got {:?}",
            x.kind()
        )));
    }
    let finite = x.f_isfinite()?.f_all()?.int64_value(&[]) != 0;
    if !finite {
        return Err(FidError::Batch(
            "images contain NaN or infinite values".into(),
        ));
    }
    // In the input's own kind, as the reference code computes it on the generator's tensor.
    let v = x
        .f_mul_scalar(127.5)?
        .f_add_scalar(128.0)?
        .f_clamp(0.0, 255.0)?;
    Ok(v.f_to_kind(Kind::Uint8)?)
}

/// `(v − 128)/128` on float pixel values `v ∈ [0, 255]`: the TF Inception input range
/// [−1, 0.9921875].
pub fn normalize(v: &Tensor) -> Result<Tensor, FidError> {
    Ok(v.f_sub_scalar(128.0)?.f_div_scalar(128.0)?)
}
