//! `midpoint-train crops`: a small data set of `size × size` RGB crops of photographs, split
//! into training and held-out crops that share no pixel (issue 5's run on the natural images
//! of scikit-image).
//!
//! **Split.** Each image is cut into a grid of disjoint square cells of side `2·size` (the
//! ragged right and bottom edges are dropped). The cells are shuffled (seeded by the run seed
//! and the image's position in sorted path order) and `round(f·cells)` of them, at least one
//! and at most all but one, become held-out cells. Every crop lies entirely inside one cell,
//! so a held-out crop never shares a pixel with a training crop; crops of the same split may
//! overlap (there are `(size + 1)²` positions in a cell).
//!
//! **Crops.** `per_image` crops per image (default: `4·cells`, about as many pixels as the
//! cells hold), `round(per_image · train cells / cells)` from training cells and the rest from
//! held-out cells; each picks a cell of its split and an offset in it uniformly.
//!
//! **Inputs.** Every `*.png`, `*.jpg` and `*.jpeg` directly in the folder (sorted). Colour
//! images (RGB, RGBA with alpha dropped, 8 or 16 bit) are used; **grayscale images are
//! skipped** (this set is about colour photographs; a gray crop among colour ones would be an
//! easy outlier for FID), and so are images with fewer than two cells; both are listed in
//! `crops.json`. A file that does not decode is an error naming it, as are a folder with no
//! usable image and an output folder that already holds crops.
//!
//! **Outputs** (8-bit RGB PNG, what `--data` and `--fid-ref` read for `size = 32`):
//! `OUT/train/<stem>_<k>.png`, `OUT/held-out/<stem>_<k>.png`, and `OUT/crops.json` with the
//! settings and, per crop, its source image, split and top-left corner.

use crate::data::order::derive_seed;
use crate::error::TrainError;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::{Path, PathBuf};

/// Stream of the per-image generators.
const CROP_STREAM: u64 = 0x4352_4f50;

/// Settings of the crop builder.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CropConfig {
    /// Side of the square crops.
    pub size: u32,
    /// Fraction `f ∈ [0, 1)` of each image's cells held out.
    pub held_out_fraction: f64,
    /// Crops per image (`None`: `4·cells`).
    pub per_image: Option<usize>,
    /// Seed.
    pub seed: u64,
}

/// Which part of the split a crop belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// `OUT/train/`.
    Train,
    /// `OUT/held-out/`.
    HeldOut,
}

impl Split {
    /// The folder name.
    pub fn dir(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::HeldOut => "held-out",
        }
    }
}

/// One written crop.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Crop {
    /// Path relative to the output folder.
    pub file: String,
    /// Source image (file name).
    pub image: String,
    /// Train or held-out.
    pub split: Split,
    /// Left column in the source.
    pub x: u32,
    /// Top row in the source.
    pub y: u32,
}

/// A source image that gave no crops, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    /// File name.
    pub image: String,
    /// Why.
    pub reason: String,
}

/// What the builder did (`crops.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CropSummary {
    /// Settings.
    pub config: CropConfig,
    /// Source folder.
    pub from: String,
    /// Images used.
    pub images: Vec<String>,
    /// Images skipped.
    pub skipped: Vec<Skipped>,
    /// Training crops written.
    pub train: usize,
    /// Held-out crops written.
    pub held_out: usize,
    /// Every crop.
    pub crops: Vec<Crop>,
}

fn invalid(m: String) -> TrainError {
    TrainError::InvalidOption(m)
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// Decodes `path` as 8-bit RGB, or `Ok(None)` for a grayscale image.
fn read_rgb(path: &Path) -> Result<Option<image::RgbImage>, TrainError> {
    let img = image::open(path)
        .map_err(|e| TrainError::io(path, format!("not a readable PNG/JPEG image ({e})")))?;
    if !img.color().has_color() {
        return Ok(None);
    }
    Ok(Some(img.to_rgb8()))
}

/// Writes the crops of every colour image in `from` to `out` (see the module docs).
pub fn build(from: &Path, out: &Path, config: &CropConfig) -> Result<CropSummary, TrainError> {
    let size = config.size;
    if size == 0 {
        return Err(invalid("--size must be at least 1".into()));
    }
    let f = config.held_out_fraction;
    if !(0.0..1.0).contains(&f) {
        return Err(invalid(format!(
            "--held-out-fraction must be in [0, 1), got {f}"
        )));
    }
    if config.per_image == Some(0) {
        return Err(invalid("--per-image must be at least 1".into()));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(from)
        .map_err(|e| TrainError::io(from, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| TrainError::io(from, e)))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.is_file() && is_image(p));
    files.sort();
    if files.is_empty() {
        return Err(invalid(format!(
            "{}: no .png, .jpg or .jpeg files",
            from.display()
        )));
    }
    for split in [Split::Train, Split::HeldOut] {
        let dir = out.join(split.dir());
        if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
            return Err(invalid(format!(
                "{} already holds files; give an empty or new --out",
                dir.display()
            )));
        }
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
    }
    let cell = 2 * size;
    let mut summary = CropSummary {
        config: config.clone(),
        from: from.display().to_string(),
        images: Vec::new(),
        skipped: Vec::new(),
        train: 0,
        held_out: 0,
        crops: Vec::new(),
    };
    for (index, path) in files.iter().enumerate() {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let skip = |reason: String| Skipped {
            image: name.clone(),
            reason,
        };
        let Some(img) = read_rgb(path)? else {
            summary.skipped.push(skip("grayscale".into()));
            continue;
        };
        let (cols, rows) = (img.width() / cell, img.height() / cell);
        let cells = (cols * rows) as usize;
        let needed = if f > 0.0 { 2 } else { 1 };
        if cells < needed {
            summary.skipped.push(skip(format!(
                "{}×{} holds {cells} cell(s) of {cell}×{cell} (crops of {size}: cells of twice the side), needs {needed}",
                img.width(),
                img.height()
            )));
            continue;
        }
        let mut rng =
            Xoshiro256PlusPlus::seed_from_u64(derive_seed(config.seed, CROP_STREAM, index as u64));
        let mut order: Vec<usize> = (0..cells).collect();
        order.shuffle(&mut rng);
        let held = if f > 0.0 {
            ((f * cells as f64).round() as usize).clamp(1, cells - 1)
        } else {
            0
        };
        let (held_cells, train_cells) = order.split_at(held);
        let per_image = config.per_image.unwrap_or(4 * cells);
        let n_train = ((per_image * train_cells.len()) as f64 / cells as f64).round() as usize;
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        for k in 0..per_image {
            let (split, pool) = if k < n_train || held_cells.is_empty() {
                (Split::Train, train_cells)
            } else {
                (Split::HeldOut, held_cells)
            };
            let c = pool[rng.random_range(0..pool.len())] as u32;
            let x = (c % cols) * cell + rng.random_range(0..=cell - size);
            let y = (c / cols) * cell + rng.random_range(0..=cell - size);
            let crop = image::imageops::crop_imm(&img, x, y, size, size).to_image();
            let file = format!("{}/{stem}_{k:05}.png", split.dir());
            let dest = out.join(&file);
            midpoint::io::write_atomically(&dest, |tmp| {
                crop.save_with_format(tmp, image::ImageFormat::Png)
                    .map_err(|e| e.to_string())
            })?;
            match split {
                Split::Train => summary.train += 1,
                Split::HeldOut => summary.held_out += 1,
            }
            summary.crops.push(Crop {
                file,
                image: name.clone(),
                split,
                x,
                y,
            });
        }
        summary.images.push(name);
    }
    if summary.images.is_empty() {
        let why: Vec<String> = summary
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.image, s.reason))
            .collect();
        return Err(invalid(format!(
            "{}: no usable image ({})",
            from.display(),
            why.join("; ")
        )));
    }
    let json = out.join("crops.json");
    let text = serde_json::to_string_pretty(&summary).map_err(|e| TrainError::io(&json, e))?;
    crate::train::run_dir::write_atomic(&json, (text + "\n").as_bytes())?;
    Ok(summary)
}
