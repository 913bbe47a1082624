//! A user's own training images: every `*.png` file under a folder (recursively, in sorted
//! path order), each a 32×32 8-bit RGB image (an alpha channel, if present, is dropped).
//! Other files are ignored; a `.png` that does not decode, or has another size or colour type,
//! is an error naming the file.

use super::{DataError, ImageSet};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Image side.
pub const SIDE: u32 = 32;

fn png_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::read(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| DataError::read(dir, e))?.path();
        if path.is_dir() {
            png_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Decodes one image into CHW `u8` (3·32·32 bytes).
pub fn read_png(path: &Path) -> Result<Vec<u8>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::read(path, e))?;
    let not_png = |e: png::DecodingError| DataError::NotPng {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .map_err(not_png)?;
    let (w, h, color, depth) = {
        let info = reader.info();
        (info.width, info.height, info.color_type, info.bit_depth)
    };
    let channels = match (color, depth) {
        (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
        (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
        _ => 0,
    };
    if w != SIDE || h != SIDE || channels == 0 {
        return Err(DataError::ImageShape {
            path: path.to_path_buf(),
            width: w,
            height: h,
            color: format!("{color:?} {}-bit", depth as u8),
        });
    }
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).map_err(not_png)?;
    let hwc = &buf[..frame.buffer_size()];
    let plane = (SIDE * SIDE) as usize;
    let mut chw = vec![0u8; 3 * plane];
    for (p, px) in hwc.chunks_exact(channels).enumerate() {
        for c in 0..3 {
            chw[c * plane + p] = px[c];
        }
    }
    Ok(chw)
}

/// Loads every PNG under `dir`.
pub fn load(dir: &Path) -> Result<ImageSet, DataError> {
    let mut files = Vec::new();
    png_files(dir, &mut files)?;
    if files.is_empty() {
        return Err(DataError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    files.sort();
    let mut pixels = Vec::with_capacity(files.len() * 3 * (SIDE * SIDE) as usize);
    for f in &files {
        pixels.extend(read_png(f)?);
    }
    let n = files.len() as i64;
    let s = SIDE as i64;
    let images = Tensor::from_data_size(&pixels, &[n, 3, s, s], Kind::Uint8);
    Ok(ImageSet::new(
        images,
        None,
        format!("{n} PNG images ({})", dir.display()),
    ))
}
