//! CIFAR-10 in its binary form (<https://www.cs.toronto.edu/~kriz/cifar.html>):
//! `cifar-10-batches-bin/data_batch_1.bin ... data_batch_5.bin` (training) and
//! `test_batch.bin`, each exactly 10,000 records of 1 label byte followed by 3,072 pixel bytes
//! (1,024 red, 1,024 green, 1,024 blue, rows top to bottom) — already the CHW layout.

use super::{DataError, ImageSet};
use std::path::Path;
use tch::{Kind, Tensor};

/// Records per batch file.
pub const RECORDS: usize = 10_000;
/// Bytes per record: label + 3·32·32 pixels.
pub const RECORD_BYTES: usize = 1 + 3 * 32 * 32;

/// Which files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `data_batch_1.bin ... data_batch_5.bin` (50,000 images).
    Train,
    /// `test_batch.bin` (10,000 images).
    Test,
}

impl Split {
    /// File names of the split.
    pub fn files(self) -> Vec<String> {
        match self {
            Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            Split::Test => vec!["test_batch.bin".into()],
        }
    }
}

/// Reads one split from the folder `dir` that holds the batch files. Every file must exist and
/// be exactly 30,730,000 bytes, so a truncated download is refused, not half-read.
pub fn load(dir: &Path, split: Split) -> Result<ImageSet, DataError> {
    let files = split.files();
    let expected = (RECORDS * RECORD_BYTES) as u64;
    // Sizes first: a bad last file is reported before 150 MB are read.
    for name in &files {
        let path = dir.join(name);
        let size = std::fs::metadata(&path)
            .map_err(|e| DataError::read(&path, e))?
            .len();
        if size != expected {
            return Err(DataError::CifarSize {
                path,
                size,
                expected,
            });
        }
    }
    let n = RECORDS * files.len();
    let mut pixels = Vec::with_capacity(n * (RECORD_BYTES - 1));
    let mut labels = Vec::with_capacity(n);
    for name in &files {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| DataError::read(&path, e))?;
        if bytes.len() as u64 != expected {
            return Err(DataError::CifarSize {
                path,
                size: bytes.len() as u64,
                expected,
            });
        }
        for record in bytes.chunks_exact(RECORD_BYTES) {
            labels.push(record[0]);
            pixels.extend_from_slice(&record[1..]);
        }
    }
    let images = Tensor::from_data_size(&pixels, &[n as i64, 3, 32, 32], Kind::Uint8);
    Ok(ImageSet::new(
        images,
        Some(labels),
        format!("CIFAR-10 {split:?} ({})", dir.display()),
    ))
}
