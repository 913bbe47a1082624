//! The small-image path of issue 15 §3: grayscale PNG folders with class-folder labels, grids
//! of 1-channel images, the feature network and the sample metrics (nearest training image,
//! 8-bit quantization, invariants of the report when the "generated" images are real ones).

use midpoint_train::data::{DataError, ImageSet};
use midpoint_train::image::feature_net::{FeatureNet, FeatureNetTraining};
use midpoint_train::image::sample_metrics::{measure, nearest, quantize};
use midpoint_train::train::grid::write_grid;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn write_gray(path: &Path, side: u32, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), side, side);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

/// An 8×8 image of class `c` (0: top half bright, 1: bottom half bright) with a per-image
/// brightness `v`; the rest is background 0.
fn two_class_image(c: u8, v: u8) -> Vec<u8> {
    (0..64)
        .map(|i| {
            let top = i / 8 < 4;
            if top == (c == 0) {
                v
            } else {
                0
            }
        })
        .collect()
}

/// `n` images per class in class folders under `dir`.
fn write_two_classes(dir: &Path, n: usize, offset: usize) {
    for c in 0..2u8 {
        for k in 0..n {
            let v = (120 + ((k + offset) * 37) % 136) as u8;
            write_gray(
                &dir.join(format!("{c}/{k:03}.png")),
                8,
                &two_class_image(c, v),
            );
        }
    }
}

#[test]
fn grayscale_class_folders_load_with_labels_and_mixed_shapes_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path();
    let img: Vec<u8> = (0..64).map(|i| (i * 4) as u8).collect();
    write_gray(&d.join("0/a.png"), 8, &img);
    write_gray(&d.join("7/b.png"), 8, &[9u8; 64]);
    let set = ImageSet::open(d).unwrap();
    assert_eq!(set.images().size(), [2, 1, 8, 8]);
    assert_eq!(set.labels(), Some(&[0u8, 7][..]));
    // Pixel (y, x) of a.png is (8y + x)·4; [−1, 1] scaling of `all`.
    let all = set.all();
    for (y, x) in [(0i64, 0i64), (3, 5), (7, 7)] {
        let want = ((8 * y + x) * 4) as f64 / 127.5 - 1.0;
        assert!((all.double_value(&[0, 0, y, x]) - want).abs() < 1e-6);
    }
    // A file outside a class folder: no labels at all.
    write_gray(&d.join("loose.png"), 8, &[1u8; 64]);
    assert!(ImageSet::open(d).unwrap().labels().is_none());
    std::fs::remove_file(d.join("loose.png")).unwrap();
    // Another size, or RGB among grayscale: refused, naming the file.
    write_gray(&d.join("7/c.png"), 16, &[1u8; 256]);
    let err = ImageSet::open(d).unwrap_err();
    assert!(
        matches!(err, DataError::ImageShape { width: 16, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("c.png"), "{err}");
    std::fs::remove_file(d.join("7/c.png")).unwrap();
    let file = std::fs::File::create(d.join("7/rgb.png")).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 8, 8);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .unwrap()
        .write_image_data(&[5u8; 192])
        .unwrap();
    let err = ImageSet::open(d).unwrap_err();
    assert!(
        err.to_string().contains("rgb.png") && err.to_string().contains("grayscale"),
        "{err}"
    );
}

#[test]
fn grids_of_small_grayscale_images_are_enlarged_gray_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.png");
    // Two 8×8 images: the first −1 everywhere but pixel (2, 3) = 1; the second all 0.
    let x = Tensor::full([2, 1, 8, 8], -1.0, (Kind::Float, Device::Cpu));
    let _ = x.get(0).get(0).get(2).get(3).fill_(1.0);
    let _ = x.get(1).fill_(0.0);
    write_grid(&path, &x, 2).unwrap();
    let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    // 8 → 32 pixels (×4 repetition) + a 2-pixel gray gap, two images side by side, RGB.
    assert_eq!((info.width, info.height), (68, 34));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let at = |y: usize, x: usize| &buf[(y * 68 + x) * 3..(y * 68 + x) * 3 + 3];
    for (y, x, v) in [
        (0, 0, 0u8),
        (9, 13, 255),
        (8, 12, 255),
        (11, 15, 255),
        (12, 15, 0),
        (5, 40, 128),
    ] {
        assert_eq!(at(y, x), [v, v, v], "pixel ({y}, {x})");
    }
    // Neither 2 nor 4 channels.
    let bad = Tensor::zeros([1, 2, 8, 8], (Kind::Float, Device::Cpu));
    assert!(write_grid(&path, &bad, 1).is_err());
}

/// Distances worked out by hand: training images 0, 1 and 3 (1 pixel, constant), a query at
/// 0.9 → d1 = 0.1, d2 = 0.9 (a near-copy: 0.1 < 0.9/3), a query at 2 → d1 = d2 = 1.
#[test]
fn nearest_training_image_distances_match_hand_values() {
    let t = |v: &[f64]| Tensor::from_slice(v).reshape([-1, 1, 1, 1]);
    let train = t(&[0.0, 1.0, 3.0]);
    let r = nearest(&t(&[0.9, 2.0]), &train).unwrap();
    assert!((r.mean - 0.55).abs() < 1e-12 && (r.median - 0.55).abs() < 1e-12);
    assert!((r.q05 - (0.1 + 0.05 * 0.9)).abs() < 1e-12);
    assert_eq!((r.near_copies, r.exact_copies), (0.5, 0.0));
    let r = nearest(&t(&[1.0]), &train).unwrap();
    assert_eq!((r.median, r.near_copies, r.exact_copies), (0.0, 1.0, 1.0));
    assert!(nearest(&t(&[1.0]), &t(&[0.0])).is_err());
    // Quantization: 8-bit levels, clamped.
    let q = quantize(&Tensor::from_slice(&[-3.0f32, 0.0, 0.004, 1.0]));
    // 0 → 127.5 rounds half to even (torch's rule): 128.
    let want = [-1.0, 128.0 / 127.5 - 1.0, 128.0 / 127.5 - 1.0, 1.0];
    for (i, w) in want.iter().enumerate() {
        assert!((q.double_value(&[i as i64]) - w).abs() < 1e-6, "{i}");
    }
}

/// The feature network separates two classes (which half is bright) far above chance on both
/// splits after 150 steps, survives
/// a save/load round trip bit for bit, and refuses unlabelled images and foreign files. The
/// sample metrics of the held-out images against themselves have Fréchet distance 0 (80 images:
/// a full-rank 64 × 64 covariance, so the matrix square root is well conditioned) and the held-out images' own nearest-image distances; their `D_t-mid` is refused (one sample
/// twice) without losing the other measures.
#[test]
fn feature_net_trains_round_trips_and_gives_the_metrics_their_invariants() {
    let root = tempfile::tempdir().unwrap();
    let (tr, ho) = (root.path().join("train"), root.path().join("held-out"));
    write_two_classes(&tr, 24, 0);
    write_two_classes(&ho, 40, 5);
    let train = ImageSet::open(&tr).unwrap();
    let heldout = ImageSet::open(&ho).unwrap();
    let training = FeatureNetTraining {
        steps: 150,
        batch: 16,
        ..FeatureNetTraining::default()
    };
    let net = FeatureNet::train(&train, Some(&heldout), training, Device::Cpu).unwrap();
    // Chance is 0.5; with 48 and 80 images a network that learned nothing scores above 0.9
    // with probability below 1e-8 (binomial tail).
    assert!(net.info().train_accuracy > 0.9, "{:?}", net.info());
    assert!(
        net.info().heldout_accuracy.unwrap() > 0.9,
        "{:?}",
        net.info()
    );
    let path = root.path().join("net.safetensors");
    net.save(&path).unwrap();
    let back = FeatureNet::load(&path, Device::Cpu).unwrap();
    assert_eq!(back.info(), net.info());
    let x = heldout.all();
    let diff = (net.features(&x).unwrap() - back.features(&x).unwrap())
        .abs()
        .max();
    assert_eq!(diff.double_value(&[]), 0.0);
    // Wrong shape, no labels, not a feature network.
    assert!(net
        .features(&Tensor::zeros([1, 1, 16, 16], (Kind::Float, Device::Cpu)))
        .is_err());
    let unlabelled = ImageSet::new(train.images().shallow_clone(), None, "x".into());
    let err = FeatureNet::train(&unlabelled, None, training, Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("class folders"), "{err}");
    std::fs::write(root.path().join("junk.safetensors"), b"not a file").unwrap();
    assert!(FeatureNet::load(&root.path().join("junk.safetensors"), Device::Cpu).is_err());

    let m = measure(&x, &train, &heldout, &net, 0).unwrap();
    assert!(m.frechet.abs() < 1e-6, "{}", m.frechet);
    assert_eq!(m.nearest_generated, m.nearest_heldout);
    assert_eq!((m.n_generated, m.n_heldout, m.n_train), (80, 80, 48));
    // The held-out set as "generated" is one sample twice: refused, the rest still measured.
    assert!(m.tmid.is_none());
    assert!(m.tmid_refused.as_deref().unwrap().contains("80"), "{m:?}");
    // The training images as "generated": every one an exact copy.
    let copies = measure(&train.all(), &train, &heldout, &net, 0).unwrap();
    assert_eq!(copies.nearest_generated.exact_copies, 1.0);
    assert!((copies.frechet - copies.frechet_train).abs() < 1e-9);
    // Most training images are also held-out images here (both splits draw their brightness
    // from the same 136 values), so D_t-mid is refused for them too.
    assert!(copies.tmid.is_none() && copies.tmid_refused.is_some());
    // Dimmed held-out images share no row with the held-out set: D_t-mid is measured.
    let dim = measure(&(&x * 0.5), &train, &heldout, &net, 0).unwrap();
    let t = dim.tmid.expect("dimmed images are a second sample");
    assert!(t.ci95[0] <= t.estimate && t.estimate <= t.ci95[1], "{t:?}");
    assert!(dim.tmid_refused.is_none());
}
