//! A user's own training images: every `*.png` file under a folder (recursively, in sorted
//! path order), all of one size and one colour model: 8-bit RGB (an alpha channel, if present,
//! is dropped) or 8-bit grayscale (one channel; an alpha channel is dropped too). Other files
//! are ignored; a `.png` that does not decode, or differs in size or colour model from the
//! first image, is an error naming the file.
//!
//! **Class folders.** When every image sits in a folder named by a number `0..=255` directly
//! under `dir` (`dir/3/0042.png`, the layout of torchvision's `ImageFolder`), those numbers are
//! the images' labels; `scripts/digits/export.py` writes the digits that way. Otherwise the
//! set has no labels. Labels are used only by the feature network
//! ([`crate::image::feature_net`]); the generative methods ignore them.

use super::{DataError, ImageSet};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

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

/// One decoded image: CHW `u8` pixels, its channels (1 or 3), height and width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// `channels · height · width` bytes, channel-major.
    pub chw: Vec<u8>,
    /// 1 (grayscale) or 3 (RGB).
    pub channels: u32,
    /// Rows.
    pub height: u32,
    /// Columns.
    pub width: u32,
}

/// Decodes one 8-bit RGB, RGBA, grayscale or grayscale+alpha PNG into CHW `u8` (alpha dropped).
pub fn read_png(path: &Path) -> Result<Decoded, DataError> {
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
    // (bytes per pixel in the file, channels kept)
    let (stride, channels) = match (color, depth) {
        (png::ColorType::Rgb, png::BitDepth::Eight) => (3, 3),
        (png::ColorType::Rgba, png::BitDepth::Eight) => (4, 3),
        (png::ColorType::Grayscale, png::BitDepth::Eight) => (1, 1),
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => (2, 1),
        _ => {
            return Err(DataError::ImageShape {
                path: path.to_path_buf(),
                width: w,
                height: h,
                color: format!("{color:?} {}-bit", depth as u8),
                expected: "an 8-bit RGB or grayscale image".into(),
            })
        }
    };
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).map_err(not_png)?;
    let hwc = &buf[..frame.buffer_size()];
    let plane = (w * h) as usize;
    let mut chw = vec![0u8; channels * plane];
    for (p, px) in hwc.chunks_exact(stride).enumerate() {
        for c in 0..channels {
            chw[c * plane + p] = px[c];
        }
    }
    Ok(Decoded {
        chw,
        channels: channels as u32,
        height: h,
        width: w,
    })
}

/// The label of `file` when it sits directly in a folder `dir/<0..=255>/`.
fn class_label(dir: &Path, file: &Path) -> Option<u8> {
    let rel = file.strip_prefix(dir).ok()?;
    let mut parts = rel.components();
    let class = parts.next()?.as_os_str().to_str()?;
    (parts.count() == 1).then_some(())?;
    class.parse::<u8>().ok()
}

/// Loads every PNG under `dir` (see the module docs for shapes and labels).
pub fn load(dir: &Path) -> Result<ImageSet, DataError> {
    let mut files = Vec::new();
    png_files(dir, &mut files)?;
    if files.is_empty() {
        return Err(DataError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    files.sort();
    let first = read_png(&files[0])?;
    let (c, h, w) = (first.channels, first.height, first.width);
    let model = |c: u32| if c == 1 { "grayscale" } else { "RGB" };
    let mut pixels = Vec::with_capacity(files.len() * first.chw.len());
    pixels.extend_from_slice(&first.chw);
    for f in &files[1..] {
        let img = read_png(f)?;
        if (img.channels, img.height, img.width) != (c, h, w) {
            return Err(DataError::ImageShape {
                path: f.clone(),
                width: img.width,
                height: img.height,
                color: model(img.channels).into(),
                expected: format!(
                    "{w}x{h} {} like the first image {}",
                    model(c),
                    files[0].display()
                ),
            });
        }
        pixels.extend(img.chw);
    }
    let labels: Option<Vec<u8>> = files.iter().map(|f| class_label(dir, f)).collect();
    let n = files.len() as i64;
    let images = Tensor::from_data_size(&pixels, &[n, c as i64, h as i64, w as i64], Kind::Uint8);
    let what = format!("{w}x{h} {}", model(c));
    let source = match &labels {
        Some(_) => format!("{n} {what} PNG images in class folders ({})", dir.display()),
        None => format!("{n} {what} PNG images ({})", dir.display()),
    };
    Ok(ImageSet::new(images, labels, source))
}
