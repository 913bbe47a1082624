//! Training data: the CIFAR-10 binary loader on files written here in the exact format
//! (values, labels, [−1, 1] scaling, flips; truncated, wrong-size and missing files), the PNG
//! folder loader (valid images, a wrong-size image, a non-PNG), and the batch order.

use midpoint_train::data::cifar::{self, Split, RECORDS, RECORD_BYTES};
use midpoint_train::data::{BatchOrder, DataError, ImageSet};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Pixel `(c, y, x)` of image `n` in the synthetic files.
fn pixel(n: usize, c: usize, y: usize, x: usize) -> u8 {
    ((n * 31 + c * 1024 + y * 32 + x * 7) % 256) as u8
}

/// Label of image `n`.
fn label(n: usize) -> u8 {
    ((n * 7 + 3) % 10) as u8
}

/// A CIFAR-10 batch file holding images `first .. first + 10,000`.
fn write_batch(path: &Path, first: usize) {
    let mut bytes = Vec::with_capacity(RECORDS * RECORD_BYTES);
    for i in 0..RECORDS {
        let n = first + i;
        bytes.push(label(n));
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    bytes.push(pixel(n, c, y, x));
                }
            }
        }
    }
    std::fs::write(path, bytes).unwrap();
}

fn u8_at(t: &Tensor, idx: [i64; 4]) -> u8 {
    t.int64_value(&idx) as u8
}

#[test]
fn cifar10_binary_batches_load_scale_flip_and_refuse_bad_files() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&dir).unwrap();
    for f in 0..5 {
        write_batch(&dir.join(format!("data_batch_{}.bin", f + 1)), f * RECORDS);
    }
    write_batch(&dir.join("test_batch.bin"), 77);

    // The parent folder and the batch folder both work.
    let train = ImageSet::open(root.path()).unwrap();
    assert_eq!(train.len(), 50_000);
    assert_eq!(train.images().size(), [50_000, 3, 32, 32]);
    let labels = train.labels().unwrap();
    for n in [0usize, 1, 9_999, 10_000, 31_337, 49_999] {
        assert_eq!(labels[n], label(n), "label {n}");
        for (c, y, x) in [(0, 0, 0), (1, 5, 17), (2, 31, 31), (0, 31, 0)] {
            let got = u8_at(train.images(), [n as i64, c, y, x]);
            assert_eq!(
                got,
                pixel(n, c as usize, y as usize, x as usize),
                "{n} {c} {y} {x}"
            );
        }
    }
    let test = cifar::load(&dir, Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(u8_at(test.images(), [5, 2, 3, 4]), pixel(82, 2, 3, 4));
    assert_eq!(ImageSet::open(&dir).unwrap().len(), 50_000);

    // Scaling v/127.5 − 1, and flips mirror the last axis.
    let idx = [3i64, 40_000];
    let b = train.batch(&idx, &[false, true], Device::Cpu);
    assert_eq!(b.size(), [2, 3, 32, 32]);
    assert_eq!(b.kind(), Kind::Float);
    for (j, &n) in idx.iter().enumerate() {
        for (c, y, x) in [(0, 0, 0), (2, 7, 30), (1, 31, 5)] {
            let src_x = if j == 1 { 31 - x } else { x };
            let v = pixel(n as usize, c, y, src_x) as f64;
            let got = b.double_value(&[j as i64, c as i64, y as i64, x as i64]);
            assert!((got - (v / 127.5 - 1.0)).abs() < 1e-6, "{n} {c} {y} {x}");
        }
    }
    let min = b.min().double_value(&[]);
    let max = b.max().double_value(&[]);
    assert!((-1.0..=1.0).contains(&min) && (-1.0..=1.0).contains(&max));
    // 0 ↦ −1 and 255 ↦ 1 exactly.
    let ext = ImageSet::new(
        Tensor::from_slice(&[0u8, 255]).reshape([2, 1, 1, 1]),
        None,
        "x".into(),
    );
    let e = ext.batch(&[0, 1], &[false, false], Device::Cpu);
    assert_eq!(Vec::<f32>::try_from(e.flatten(0, -1)).unwrap(), [-1.0, 1.0]);

    // Truncated by one byte: refused, naming the file.
    let f3 = dir.join("data_batch_3.bin");
    let full = (RECORDS * RECORD_BYTES) as u64;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f3)
        .unwrap()
        .set_len(full - 1)
        .unwrap();
    let err = ImageSet::open(root.path()).unwrap_err();
    assert!(matches!(err, DataError::CifarSize { size, .. } if size == full - 1));
    let msg = err.to_string();
    assert!(
        msg.contains("data_batch_3.bin") && msg.contains("truncated"),
        "{msg}"
    );
    // One record too many: wrong size too.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f3)
        .unwrap()
        .set_len(full + RECORD_BYTES as u64)
        .unwrap();
    assert!(matches!(
        ImageSet::open(root.path()).unwrap_err(),
        DataError::CifarSize { .. }
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f3)
        .unwrap()
        .set_len(full)
        .unwrap();
    // A missing batch file.
    std::fs::remove_file(dir.join("data_batch_5.bin")).unwrap();
    let err = ImageSet::open(root.path()).unwrap_err();
    assert!(matches!(err, DataError::Read { .. }));
    assert!(err.to_string().contains("data_batch_5.bin"), "{err}");
}

fn write_png(path: &Path, w: u32, h: u32, color: png::ColorType, data: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

/// RGB bytes (HWC) of test image `k`.
fn rgb(k: usize) -> Vec<u8> {
    (0..32 * 32 * 3)
        .map(|i| ((i * 13 + k * 101) % 256) as u8)
        .collect()
}

#[test]
fn png_folder_loads_rgb_and_rgba_and_refuses_bad_images() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    write_png(&d.join("a.png"), 32, 32, png::ColorType::Rgb, &rgb(0));
    write_png(&d.join("sub/b.png"), 32, 32, png::ColorType::Rgb, &rgb(1));
    let rgba: Vec<u8> = rgb(2)
        .chunks(3)
        .flat_map(|p| [p[0], p[1], p[2], 200])
        .collect();
    write_png(&d.join("c.PNG"), 32, 32, png::ColorType::Rgba, &rgba);
    std::fs::write(d.join("notes.txt"), "ignored").unwrap();
    let set = ImageSet::open(d).unwrap();
    assert_eq!(set.len(), 3);
    assert!(set.labels().is_none());
    // Sorted paths: a.png, c.PNG, sub/b.png. HWC byte (y, x, c) lands at CHW (c, y, x).
    for (n, k) in [(0i64, 0usize), (1, 2), (2, 1)] {
        let src = rgb(k);
        for (c, y, x) in [(0usize, 0usize, 0usize), (2, 9, 4), (1, 31, 31)] {
            let want = src[(y * 32 + x) * 3 + c];
            assert_eq!(u8_at(set.images(), [n, c as i64, y as i64, x as i64]), want);
        }
    }

    // A 16×16 image: refused, naming the file and its size.
    write_png(
        &d.join("small.png"),
        16,
        16,
        png::ColorType::Rgb,
        &[7u8; 16 * 16 * 3],
    );
    let err = ImageSet::open(d).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::ImageShape {
                width: 16,
                height: 16,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("small.png"));
    std::fs::remove_file(d.join("small.png")).unwrap();
    // Grayscale: refused.
    write_png(
        &d.join("gray.png"),
        32,
        32,
        png::ColorType::Grayscale,
        &[7u8; 32 * 32],
    );
    assert!(matches!(
        ImageSet::open(d).unwrap_err(),
        DataError::ImageShape { .. }
    ));
    std::fs::remove_file(d.join("gray.png")).unwrap();
    // Not a PNG at all.
    std::fs::write(d.join("fake.png"), b"GIF89a not a png").unwrap();
    let err = ImageSet::open(d).unwrap_err();
    assert!(matches!(err, DataError::NotPng { .. }), "{err}");
    assert!(err.to_string().contains("fake.png"));
    // No images at all; not a folder.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        ImageSet::open(empty.path()).unwrap_err(),
        DataError::Empty { .. }
    ));
    assert!(ImageSet::open(&d.join("nope")).is_err());
}

/// Each epoch is a permutation; the order and flips are functions of (seed, step) only.
/// Flip frequency over 20,000 draws: SE 0.0035, tolerance 6 SE = 0.021 (false failure < 1e-8).
#[test]
fn batch_order_is_a_function_of_seed_and_step() {
    let n = 10;
    let mut order = BatchOrder::new(n, 5);
    // Batches of 4: steps 0..5 cover two epochs exactly.
    let seq: Vec<i64> = (0..5).flat_map(|k| order.indices(k, 4)).collect();
    for epoch in seq.chunks(n) {
        let mut e = epoch.to_vec();
        e.sort();
        assert_eq!(e, (0..n as i64).collect::<Vec<_>>());
    }
    assert_ne!(&seq[..n], &seq[n..], "epochs are reshuffled");
    // Out of order and from a fresh instance: the same batches.
    let mut fresh = BatchOrder::new(n, 5);
    assert_eq!(fresh.indices(3, 4), seq[12..16]);
    assert_eq!(fresh.indices(1, 4), seq[4..8]);
    assert_ne!(BatchOrder::new(n, 6).indices(0, 10), seq[..10]);
    assert_eq!(order.flips(7, 8, true), fresh.flips(7, 8, true));
    assert_eq!(order.flips(7, 8, false), vec![false; 8]);
    let flips: Vec<bool> = (0..20).flat_map(|k| order.flips(k, 1000, true)).collect();
    let rate = flips.iter().filter(|&&f| f).count() as f64 / flips.len() as f64;
    assert!((rate - 0.5).abs() < 0.021, "{rate}");
}
