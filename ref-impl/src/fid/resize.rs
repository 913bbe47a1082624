//! TF-legacy bilinear resize (FID step 2).
//!
//! NVlabs' detector resizes with `affine_grid` + `grid_sample(bilinear, padding=border,
//! align_corners=False)` and a theta shift of `1/in − 1/out`; unnormalizing the grid shows that
//! output pixel `i` then samples input coordinate
//!
//! ```text
//! p = i · in / out,   clamped to [0, in − 1]
//! ```
//!
//! which is TensorFlow-1's legacy `resize_bilinear`. libtorch's
//! `upsample_bilinear2d(align_corners=false)` samples `(i + ½)·in/out − ½` instead and gives
//! other features, so it is not used. Bilinear interpolation is separable: rows first, then
//! columns, each a gather of two taps and a blend, all on the input's device.

use super::FidError;
use tch::{Kind, Tensor};

/// The two source taps and the weight of the second for every output index of one axis:
/// `p = min(i·input/output, input − 1)`, `lo = ⌊p⌋`, `hi = min(lo + 1, input − 1)`,
/// `w = p − lo`; output `i` is `(1 − w)·x[lo] + w·x[hi]`.
pub fn taps(input: usize, output: usize) -> (Vec<i64>, Vec<i64>, Vec<f64>) {
    let last = input.saturating_sub(1) as f64;
    let mut lo = Vec::with_capacity(output);
    let mut hi = Vec::with_capacity(output);
    let mut w = Vec::with_capacity(output);
    for i in 0..output {
        let p = (i as f64 * input as f64 / output as f64).min(last);
        let l = p.floor();
        lo.push(l as i64);
        hi.push(((l as usize) + 1).min(input - 1) as i64);
        w.push(p - l);
    }
    (lo, hi, w)
}

/// One axis (`dim` 2 or 3) of a float `[N, C, H, W]` tensor resized to `output`.
fn resize_axis(x: &Tensor, dim: i64, output: usize) -> Result<Tensor, FidError> {
    let input = x.size()[dim as usize] as usize;
    let (lo, hi, w) = taps(input, output);
    let device = x.device();
    let lo = Tensor::from_slice(&lo).to_device(device);
    let hi = Tensor::from_slice(&hi).to_device(device);
    let mut shape = vec![1i64; 4];
    shape[dim as usize] = output as i64;
    let w = Tensor::from_slice(&w)
        .to_kind(x.kind())
        .to_device(device)
        .f_view(shape.as_slice())?;
    let a = x.f_index_select(dim, &lo)?;
    let b = x.f_index_select(dim, &hi)?;
    Ok(a.f_mul(&(1.0 - &w))?.f_add(&b.f_mul(&w)?)?)
}

/// Resizes a float `[N, C, H, W]` batch to `[N, C, out_h, out_w]` with the TF-legacy
/// bilinear convention (module docs); no rounding afterwards.
pub fn resize_tf_legacy(x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor, FidError> {
    let size = x.size();
    if size.len() != 4 || size[2] < 1 || size[3] < 1 {
        return Err(FidError::Batch(format!(
            "resize expects [N, C, H, W] with H, W ≥ 1, got {size:?}"
        )));
    }
    if !matches!(
        x.kind(),
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    ) {
        return Err(FidError::Batch(format!(
            "resize expects a floating-point tensor, got {:?}",
            x.kind()
        )));
    }
    if out_h < 1 || out_w < 1 {
        return Err(FidError::InvalidOption(format!(
            "resize to {out_h}×{out_w}"
        )));
    }
    let rows = resize_axis(x, 2, out_h)?;
    resize_axis(&rows, 3, out_w)
}
