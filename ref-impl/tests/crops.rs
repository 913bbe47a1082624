//! `midpoint-train crops` (issue 5's data set of photograph crops): held-out crops share no
//! pixel with training crops (checked on the decoded pixels of an image whose colours encode
//! their own coordinates), the counts follow the split rule, PNG and JPEG are read, grayscale
//! and too-small images are skipped, the output loads as a `--data` folder, and bad inputs end
//! in clear errors.

use midpoint_train::data::ImageSet;
use midpoint_train::image::crops::{build, CropConfig, Split};
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

/// `R = x`, `G = y`, `B = (7x + 3y) mod 256`: every pixel names its position (w, h ≤ 256).
fn coordinate_image(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([x as u8, y as u8, ((7 * x + 3 * y) % 256) as u8])
    })
}

fn sources(dir: &Path) {
    coordinate_image(200, 130)
        .save(dir.join("coords.png"))
        .unwrap();
    let photo = image::RgbImage::from_fn(150, 140, |x, y| {
        image::Rgb([
            (x * 3 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    photo.save(dir.join("photo.jpg")).unwrap();
    image::GrayImage::from_fn(100, 100, |x, _| image::Luma([x as u8]))
        .save(dir.join("gray.png"))
        .unwrap();
    coordinate_image(70, 40)
        .save(dir.join("small.png"))
        .unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
}

fn config() -> CropConfig {
    CropConfig {
        size: 32,
        held_out_fraction: 0.2,
        per_image: Some(12),
        seed: 1,
    }
}

#[test]
fn held_out_crops_share_no_pixel_with_training_crops() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    sources(src.path());
    let s = build(src.path(), out.path(), &config()).unwrap();
    // coords.png: 3×2 cells of 64, round(0.2·6) = 1 held out, round(12·5/6) = 10 training
    // crops; photo.jpg: 2×2 cells, round(0.8) = 1 held out, round(12·3/4) = 9 training crops.
    assert_eq!(s.images, ["coords.png", "photo.jpg"]);
    assert_eq!((s.train, s.held_out), (19, 5));
    let skipped: Vec<(&str, &str)> = s
        .skipped
        .iter()
        .map(|k| (k.image.as_str(), k.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0], ("gray.png", "grayscale"));
    assert!(
        skipped[1].0 == "small.png" && skipped[1].1.contains("0 cell"),
        "{skipped:?}"
    );

    let mut pixels = [HashSet::new(), HashSet::new()];
    for c in s.crops.iter().filter(|c| c.image == "coords.png") {
        let img = image::open(out.path().join(&c.file)).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (32, 32));
        for (i, j, p) in img.enumerate_pixels() {
            // Each crop is the 32×32 block of the source at its recorded corner.
            assert_eq!(
                p.0,
                coordinate_image(256, 256).get_pixel(c.x + i, c.y + j).0,
                "{}",
                c.file
            );
            pixels[(c.split == Split::HeldOut) as usize].insert((c.x + i, c.y + j));
        }
    }
    assert!(!pixels[0].is_empty() && !pixels[1].is_empty());
    assert!(
        pixels[0].is_disjoint(&pixels[1]),
        "a held-out pixel is also a training pixel"
    );

    // The folders are what --data and --fid-ref read.
    assert_eq!(ImageSet::open(&out.path().join("train")).unwrap().len(), 19);
    assert_eq!(
        ImageSet::open(&out.path().join("held-out")).unwrap().len(),
        5
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("crops.json")).unwrap())
            .unwrap();
    assert_eq!(json["crops"].as_array().unwrap().len(), 24);

    // Same seed, same crops; another seed, other positions.
    let again = tempfile::tempdir().unwrap();
    assert_eq!(
        build(src.path(), again.path(), &config()).unwrap().crops,
        s.crops
    );
    let other = tempfile::tempdir().unwrap();
    let c2 = CropConfig {
        seed: 2,
        ..config()
    };
    assert_ne!(build(src.path(), other.path(), &c2).unwrap().crops, s.crops);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let out = tempfile::tempdir().unwrap();
    let err =
        |from: &Path, out: &Path, c: &CropConfig| build(from, out, c).unwrap_err().to_string();

    let empty = tempfile::tempdir().unwrap();
    assert!(err(empty.path(), &out.path().join("a"), &config()).contains("no .png, .jpg or .jpeg"));

    let corrupt = tempfile::tempdir().unwrap();
    std::fs::write(corrupt.path().join("bad.png"), b"\x89PNG not really").unwrap();
    let e = err(corrupt.path(), &out.path().join("b"), &config());
    assert!(e.contains("bad.png") && e.contains("not a readable"), "{e}");

    let small = tempfile::tempdir().unwrap();
    coordinate_image(70, 40)
        .save(small.path().join("small.png"))
        .unwrap();
    let e = err(small.path(), &out.path().join("c"), &config());
    assert!(
        e.contains("no usable image") && e.contains("small.png"),
        "{e}"
    );
    let big = CropConfig {
        size: 200,
        held_out_fraction: 0.0,
        ..config()
    };
    let src = tempfile::tempdir().unwrap();
    coordinate_image(150, 150)
        .save(src.path().join("x.png"))
        .unwrap();
    assert!(err(src.path(), &out.path().join("d"), &big).contains("no usable image"));

    for f in [1.0, -0.1, f64::NAN] {
        let c = CropConfig {
            held_out_fraction: f,
            ..config()
        };
        assert!(err(src.path(), &out.path().join("e"), &c).contains("--held-out-fraction"));
    }
    // An output folder that already holds crops is not mixed into.
    let used = out.path().join("used");
    build(
        src.path(),
        &used,
        &CropConfig {
            per_image: Some(2),
            ..config()
        },
    )
    .unwrap();
    assert!(err(src.path(), &used, &config()).contains("already holds files"));
}

#[test]
fn cli_builds_crops_and_fails_in_one_line() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    coordinate_image(128, 128)
        .save(src.path().join("a.png"))
        .unwrap();
    let bin = env!("CARGO_BIN_EXE_midpoint-train");
    let o = Command::new(bin)
        .args(["crops", "--from", src.path().to_str().unwrap(), "--out"])
        .arg(out.path().join("c"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // 2×2 cells, 1 held out, default 4 crops per cell: 12 training and 4 held-out crops.
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("12 training and 4 held-out crops"));
    let empty = tempfile::tempdir().unwrap();
    let o = Command::new(bin)
        .args(["crops", "--from", empty.path().to_str().unwrap(), "--out"])
        .arg(out.path().join("d"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr)
            .trim_end()
            .lines()
            .count(),
        1
    );
}
