//! Image grids as PNG: `N` images `[N, C, H, W]` (C = 3, or 1 for grayscale shown as gray RGB)
//! in `[−1, 1]` tiled `cols` per row. Images smaller than [`MIN_SIDE`] are enlarged by pixel
//! repetition, with a 2-pixel gray gap, so that a grid of 8×8 digits can be judged by eye.

use crate::error::TrainError;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Images are shown at least this many pixels high (integer nearest-neighbour enlargement).
pub const MIN_SIDE: i64 = 32;

/// Writes the grid (values clamped to `[−1, 1]`, mapped to `0..=255` by `round((v + 1)·127.5)`).
pub fn write_grid(path: &Path, images: &Tensor, cols: i64) -> Result<(), TrainError> {
    let size = images.size();
    if size.len() != 4 || !(size[1] == 3 || size[1] == 1) || size[2] <= 0 || cols <= 0 {
        return Err(TrainError::InvalidOption(format!(
            "image grid needs [N, 3 or 1, H, W] images and cols > 0, got {size:?}"
        )));
    }
    let scale = (MIN_SIDE + size[2] - 1) / size[2];
    let images = images
        .to_device(Device::Cpu)
        .expand([size[0], 3, size[2], size[3]], false)
        .repeat_interleave_self_int(scale, 2, None)
        .repeat_interleave_self_int(scale, 3, None);
    // Enlarged images get a 2-pixel mid-gray gap (value 0) on the right and bottom, so that
    // digits whose strokes reach the border stay apart.
    let gap = if scale > 1 { 2 } else { 0 };
    let images = images.constant_pad_nd([0, gap, 0, gap]);
    let (n, h, w) = (size[0], size[2] * scale + gap, size[3] * scale + gap);
    let rows = (n + cols - 1) / cols;
    let pad = rows * cols - n;
    let x = ((images
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .clamp(-1.0, 1.0)
        + 1.0)
        * 127.5)
        .round()
        .to_kind(Kind::Uint8);
    let x = if pad > 0 {
        Tensor::cat(
            &[x, Tensor::zeros([pad, 3, h, w], (Kind::Uint8, Device::Cpu))],
            0,
        )
    } else {
        x
    };
    // [rows, cols, 3, h, w] → [rows, h, cols, w, 3]
    let hwc = x
        .reshape([rows, cols, 3, h, w])
        .permute([0, 3, 1, 4, 2])
        .contiguous();
    let mut bytes = vec![0u8; hwc.numel()];
    hwc.copy_data_u8(&mut bytes, hwc.numel());
    // Encoded into a temporary file renamed into place: never a half-written grid.
    midpoint::io::write_atomically(path, |tmp| {
        let file = std::fs::File::create(tmp).map_err(|e| e.to_string())?;
        let mut enc = png::Encoder::new(
            std::io::BufWriter::new(file),
            (cols * w) as u32,
            (rows * h) as u32,
        );
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&bytes).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())
    })?;
    Ok(())
}
