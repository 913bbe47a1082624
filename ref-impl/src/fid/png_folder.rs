//! A folder of PNG images as batches of `uint8 [N, 3, H, W]`.
//!
//! Files ending in `.png` (any case) anywhere below the folder, in path order (EDM's
//! `generate.py` writes samples into numbered subfolders). Like the reference tools'
//! `PIL.Image.convert('RGB')`: grayscale is replicated to three channels, alpha is dropped,
//! palettes are expanded (16-bit samples are reduced to their high byte). All images must have the same
//! size, as in a dataset. Decoding runs in parallel (rayon) one batch at a time.

use super::preprocess::ImageBatch;
use super::FidError;
use png::{ColorType, Decoder, Transformations};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The PNG files of a folder.
#[derive(Debug, Clone)]
pub struct PngFolder {
    root: PathBuf,
    files: Vec<PathBuf>,
}

fn image_err(path: &Path, message: impl Into<String>) -> FidError {
    FidError::Image {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn collect_pngs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FidError> {
    let entries = std::fs::read_dir(dir).map_err(|e| image_err(dir, e.to_string()))?;
    for entry in entries {
        let path = entry.map_err(|e| image_err(dir, e.to_string()))?.path();
        if path.is_dir() {
            collect_pngs(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Decodes one PNG to `(height, width, RGB bytes in HWC order)`.
pub fn read_rgb(path: &Path) -> Result<(usize, usize, Vec<u8>), FidError> {
    let file = std::fs::File::open(path).map_err(|e| image_err(path, e.to_string()))?;
    let mut decoder = Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(Transformations::normalize_to_color8());
    let bad = |e: png::DecodingError| image_err(path, format!("not a readable PNG ({e})"));
    let mut reader = decoder.read_info().map_err(bad)?;
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = match info.color_type {
        ColorType::Grayscale => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        ColorType::Indexed => {
            return Err(image_err(path, "palette not expanded by the decoder"));
        }
    };
    let row = info.line_size;
    let mut rgb = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        let line = &buf[y * row..y * row + w * channels];
        for px in line.chunks_exact(channels) {
            match channels {
                1 | 2 => rgb.extend_from_slice(&[px[0], px[0], px[0]]),
                _ => rgb.extend_from_slice(&px[..3]),
            }
        }
    }
    Ok((h, w, rgb))
}

impl PngFolder {
    /// Lists the PNG files below `root`; an error if there are none.
    pub fn open(root: &Path) -> Result<Self, FidError> {
        if !root.is_dir() {
            return Err(image_err(root, "not a folder"));
        }
        let mut files = Vec::new();
        collect_pngs(root, &mut files)?;
        if files.is_empty() {
            return Err(image_err(root, "no .png images in this folder"));
        }
        files.sort();
        Ok(PngFolder {
            root: root.to_path_buf(),
            files,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True if there are no images (never, after [`PngFolder::open`]).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Decodes images `range` into one batch; all must have the size `expect` (height,
    /// width) when given.
    fn batch(
        &self,
        range: std::ops::Range<usize>,
        expect: Option<(usize, usize)>,
    ) -> Result<(ImageBatch, (usize, usize)), FidError> {
        let images = self.files[range]
            .par_iter()
            .map(|p| read_rgb(p).map(|img| (p, img)))
            .collect::<Result<Vec<_>, _>>()?;
        let (h, w) = expect.unwrap_or((images[0].1 .0, images[0].1 .1));
        let mut data = Vec::with_capacity(images.len() * h * w * 3);
        for (p, (ih, iw, rgb)) in &images {
            if (*ih, *iw) != (h, w) {
                return Err(image_err(
                    p,
                    format!("is {ih}×{iw} but the folder's first image is {h}×{w}"),
                ));
            }
            data.extend_from_slice(rgb);
        }
        let t = Tensor::from_slice(&data)
            .f_view([images.len() as i64, h as i64, w as i64, 3])?
            .f_permute([0, 3, 1, 2])?
            .f_contiguous()?;
        Ok((ImageBatch::Bytes(t), (h, w)))
    }

    /// The images in batches of `batch_size` (the last may be smaller).
    pub fn batches(
        &self,
        batch_size: usize,
    ) -> impl Iterator<Item = Result<ImageBatch, FidError>> + '_ {
        let step = batch_size.max(1);
        let mut size = None;
        (0..self.files.len()).step_by(step).map(move |start| {
            let end = (start + step).min(self.files.len());
            let (b, hw) = self.batch(start..end, size)?;
            size = Some(hw);
            Ok(b)
        })
    }

    /// Number of batches of `batch_size`.
    pub fn num_batches(&self, batch_size: usize) -> usize {
        self.files.len().div_ceil(batch_size.max(1))
    }
}
