//! Training images: CIFAR-10 in its binary form ([`cifar`]) or any folder of PNG images of one
//! size, RGB or grayscale ([`png_folder`]), held in memory as `u8` and turned into batches in `[−1, 1]` with
//! optional horizontal flips; [`order`] says which images (and flips) step `k` uses, as a pure
//! function of `(seed, k)`.

pub mod cifar;
pub mod order;
pub mod png_folder;
pub mod source;

use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

pub use order::BatchOrder;
pub use source::{DataImages, LawImages};

/// Why a data set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be opened or read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        message: String,
    },
    /// A CIFAR-10 batch file of the wrong size (truncated, or not a batch file).
    #[error("{path}: {size} bytes, expected {expected} (10,000 records of 1 label byte + 3,072 pixel bytes): truncated or not a CIFAR-10 binary batch file")]
    CifarSize {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// 30,730,000.
        expected: u64,
    },
    /// A file with a `.png` name that does not decode as PNG.
    #[error("{path}: not a readable PNG image ({message})")]
    NotPng {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// A PNG of an unsupported colour type, or of another size or colour model than the
    /// folder's first image.
    #[error("{path}: {width}x{height} {color}, expected {expected}")]
    ImageShape {
        /// The file.
        path: PathBuf,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Colour type and bit depth.
        color: String,
        /// What was expected.
        expected: String,
    },
    /// Neither CIFAR-10 batch files nor PNG images in the folder.
    #[error("{dir}: neither CIFAR-10 binary batches (data_batch_1.bin ... data_batch_5.bin, directly or in cifar-10-batches-bin/) nor .png images found")]
    Empty {
        /// The folder.
        dir: PathBuf,
    },
}

impl DataError {
    pub(crate) fn read(path: &Path, e: impl std::fmt::Display) -> Self {
        DataError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Images as `u8` `[N, C, H, W]` on the CPU (CHW; C = 3 for RGB, 1 for grayscale), with labels
/// when the source has them (CIFAR-10, or PNG class folders).
#[derive(Debug)]
pub struct ImageSet {
    images: Tensor,
    labels: Option<Vec<u8>>,
    source: String,
}

impl Clone for ImageSet {
    /// Shares the image tensor (a shallow clone: no pixel is copied).
    fn clone(&self) -> Self {
        ImageSet {
            images: self.images.shallow_clone(),
            labels: self.labels.clone(),
            source: self.source.clone(),
        }
    }
}

impl ImageSet {
    /// `u8` images `[N, 3, H, W]` (moved to the CPU), optional labels, a description.
    pub fn new(images: Tensor, labels: Option<Vec<u8>>, source: String) -> Self {
        ImageSet {
            images: images.to_device(Device::Cpu).to_kind(Kind::Uint8),
            labels,
            source,
        }
    }

    /// Opens `dir`: CIFAR-10's training batches when `dir` (or `dir/cifar-10-batches-bin`)
    /// holds `data_batch_1.bin`, otherwise every `.png` file under `dir`.
    pub fn open(dir: &Path) -> Result<Self, DataError> {
        for cand in [dir.to_path_buf(), dir.join("cifar-10-batches-bin")] {
            if cand.join("data_batch_1.bin").exists() {
                return cifar::load(&cand, cifar::Split::Train);
            }
        }
        if !dir.is_dir() {
            return Err(DataError::read(dir, "not a folder"));
        }
        png_folder::load(dir)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.size()[0] as usize
    }

    /// No images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `u8` images.
    pub fn images(&self) -> &Tensor {
        &self.images
    }

    /// Labels (CIFAR-10, or PNG images in class folders).
    pub fn labels(&self) -> Option<&[u8]> {
        self.labels.as_deref()
    }

    /// Where the images came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// What identifies the images, whatever path they were read from: their count and shape
    /// and a 64-bit FNV-1a hash of their bytes (labels included), e.g. `1442 images 1x8x8,
    /// FNV-1a 64 0123456789abcdef`. Checkpoints record it so that a resume on other data is
    /// refused.
    pub fn fingerprint(&self) -> String {
        let size = self.images.size();
        let bytes = Vec::<u8>::try_from(self.images.reshape([-1])).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in bytes.iter().chain(self.labels.iter().flatten()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let shape: Vec<String> = size[1..].iter().map(i64::to_string).collect();
        format!("{} images {}, FNV-1a 64 {h:016x}", size[0], shape.join("x"))
    }

    /// Every image as fp32 `[N, C, H, W]` in `[−1, 1]` on the CPU, unflipped, in order.
    pub fn all(&self) -> Tensor {
        self.images.to_kind(Kind::Float) / 127.5 - 1.0
    }

    /// Images `indices` as fp32 `[B, C, H, W]` on `device`, scaled `v ↦ v/127.5 − 1` to
    /// `[−1, 1]`, image `i` mirrored left–right when `flips[i]`.
    pub fn batch(&self, indices: &[i64], flips: &[bool], device: Device) -> Tensor {
        let idx = Tensor::from_slice(indices);
        let x = self.images.index_select(0, &idx).to_kind(Kind::Float) / 127.5 - 1.0;
        let mask: Vec<u8> = flips.iter().map(|&f| u8::from(f)).collect();
        let mask = Tensor::from_slice(&mask)
            .to_kind(Kind::Bool)
            .reshape([-1, 1, 1, 1]);
        x.flip([3]).where_self(&mask, &x).to_device(device)
    }
}
