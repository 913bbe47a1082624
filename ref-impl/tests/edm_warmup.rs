//! The denoising warmup on the tiny network (CPU): exact resume (an interrupted run, resumed,
//! reproduces the losses and final state of an uninterrupted one bit for bit), refusal of
//! mismatched options and corrupt checkpoints, the EDM schedules, the sample grid, and the
//! `warmup`, `bench warmup` and `info --arch` commands.

use midpoint_train::data::ImageSet;
use midpoint_train::methods::warmup::{
    read_losses, run, RunOptions, WarmupOptions, CHECKPOINT, LOSSES,
};
use midpoint_train::nets::edm::UNetConfig;
use midpoint_train::train::checkpoint;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

/// Tests that train share torch's global generator and thread count: one at a time.
static TORCH: Mutex<()> = Mutex::new(());

fn options() -> WarmupOptions {
    let mut o = WarmupOptions::edm(UNetConfig::tiny());
    o.batch = 4;
    o.lr_rampup_kimg = 0.0; // weights change from the first step
    o.ema_halflife_kimg = 0.01;
    o.xflip = true;
    o.seed = 3;
    o
}

/// 10 random images: batches of 4 wrap around epochs at steps 2, 4, ...
fn data() -> ImageSet {
    tch::manual_seed(99);
    let images = Tensor::randint(256, [10, 3, 32, 32], (Kind::Uint8, Device::Cpu));
    ImageSet::new(images, None, "random".into())
}

fn run_opts(out: &Path, steps: u64, resume: bool, every: u64) -> RunOptions {
    RunOptions {
        max_seconds: None,
        steps,
        out: out.to_path_buf(),
        resume,
        overwrite: false,
        checkpoint_every: every,
        grid_every: 0,
        progress: false,
        kernels: Default::default(),
        replica: None,
    }
}

fn losses(out: &Path) -> Vec<(u64, u64)> {
    read_losses(&out.join(LOSSES))
        .unwrap()
        .iter()
        .map(|r| (r.step, r.loss.to_bits()))
        .collect()
}

#[test]
fn interrupted_and_resumed_run_is_bit_identical() {
    let _g = TORCH.lock().unwrap();
    tch::set_num_threads(1);
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));

    // A: 5 steps in one go.
    let sa = run(&data, options(), &run_opts(&a, 5, false, 100), Device::Cpu).unwrap();
    assert_eq!((sa.run.start_step, sa.run.steps), (0, 5));
    let la = losses(&a);
    assert_eq!(la.len(), 5);
    assert!(la.iter().all(|(_, l)| f64::from_bits(*l).is_finite()));

    // B: 2 steps (checkpoint at 2), resumed to 3 (checkpoint at 3, log through step 2), then
    // "killed" before its step-3 checkpoint reached the disk: the step-2 checkpoint is put back
    // while the log keeps step 2's line. Resumed to 5.
    run(&data, options(), &run_opts(&b, 2, false, 2), Device::Cpu).unwrap();
    let ck = checkpoint::load(&b.join(CHECKPOINT)).unwrap();
    assert_eq!(ck.metadata["step"], "2");
    let at2 = dir.path().join("at2.safetensors");
    std::fs::copy(b.join(CHECKPOINT), &at2).unwrap();
    run(&data, options(), &run_opts(&b, 3, true, 2), Device::Cpu).unwrap();
    assert_eq!(losses(&b), la[..3], "resumed once");
    std::fs::copy(&at2, b.join(CHECKPOINT)).unwrap();
    let sb = run(&data, options(), &run_opts(&b, 5, true, 2), Device::Cpu).unwrap();
    assert_eq!((sb.run.start_step, sb.run.steps), (2, 5));
    assert_eq!(losses(&b), la, "losses of the resumed run, bit for bit");

    // Final states agree bit for bit: weights, EMA, Adam moments.
    let (ca, cb) = (
        checkpoint::load(&a.join(CHECKPOINT)).unwrap(),
        checkpoint::load(&b.join(CHECKPOINT)).unwrap(),
    );
    assert_eq!(ca.tensors.len(), cb.tensors.len());
    for (name, t) in &ca.tensors {
        let u = &cb.tensors[name];
        assert!(t.eq_tensor(u).all().int64_value(&[]) == 1, "{name}");
    }
    assert_eq!(ca.metadata, cb.metadata);
    assert_eq!(ca.metadata["step"], "5");
    assert!(ca.tensors.keys().any(|k| k.starts_with("ema.")));
    assert!(ca.tensors.keys().any(|k| k.starts_with("adam.exp_avg_sq.")));
    // The EMA lags the weights after training.
    let w = &ca.tensors["net.enc.32x32_conv.weight"];
    let e = &ca.tensors["ema.enc.32x32_conv.weight"];
    assert!((w - e).abs().max().double_value(&[]) > 0.0);

    // The final grid: 8×8 tiles of 32×32 RGB.
    let grid = sa.run.grid.unwrap();
    let reader = png::Decoder::new(std::fs::File::open(&grid).unwrap())
        .read_info()
        .unwrap();
    assert_eq!((reader.info().width, reader.info().height), (256, 256));
    assert_eq!(reader.info().color_type, png::ColorType::Rgb);
}

#[test]
fn resume_refuses_other_options_missing_and_corrupt_checkpoints() {
    let _g = TORCH.lock().unwrap();
    tch::set_num_threads(1);
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    run(&data, options(), &run_opts(&out, 1, false, 1), Device::Cpu).unwrap();
    // A fresh run never overwrites a checkpoint.
    let e = run(&data, options(), &run_opts(&out, 2, false, 1), Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("--resume"), "{e}");
    // Other options: refused with the differing option named.
    let mut other = options();
    other.lr = 2e-3;
    let e = run(&data, other, &run_opts(&out, 2, true, 1), Device::Cpu).unwrap_err();
    assert!(
        e.to_string().contains("lr: checkpoint 0.001, now 0.002"),
        "{e}"
    );
    // No checkpoint to resume.
    let e = run(
        &data,
        options(),
        &run_opts(&dir.path().join("none"), 2, true, 1),
        Device::Cpu,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no checkpoint"), "{e}");
    // Corrupt: one byte of a tensor changed.
    let path = out.join(CHECKPOINT);
    let before = losses(&out);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let e = run(&data, options(), &run_opts(&out, 2, true, 1), Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    // Truncated.
    std::fs::write(&path, &bytes[..n / 2]).unwrap();
    let e = run(&data, options(), &run_opts(&out, 2, true, 1), Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    // Nothing was trained or logged by the refused runs.
    assert_eq!(losses(&out), before);
}

/// A warmup resumed on other images is refused (the checkpoint records what it was trained
/// on, whatever path the images came from), and `overwrite` replaces a run on purpose.
#[test]
fn resume_on_other_data_is_refused_and_overwrite_replaces_the_run() {
    let _g = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    run(&data, options(), &run_opts(&out, 1, false, 1), Device::Cpu).unwrap();
    let before = losses(&out);
    // The same images, one pixel changed.
    let images = data.all().shallow_clone();
    let bytes = ((images + 1.0) * 127.5).round().to_kind(Kind::Uint8);
    let _ = bytes.get(0).get(0).get(0).get(0).fill_(7);
    let other = ImageSet::new(bytes, None, "random".into());
    let e = run(&other, options(), &run_opts(&out, 2, true, 1), Device::Cpu).unwrap_err();
    assert!(
        e.to_string().contains("trained on 10 images 3x32x32"),
        "{e}"
    );
    assert_eq!(losses(&out), before);
    // The same images under another name resume.
    let renamed = ImageSet::new(
        ((data.all() + 1.0) * 127.5).round().to_kind(Kind::Uint8),
        None,
        "elsewhere".into(),
    );
    run(
        &renamed,
        options(),
        &run_opts(&out, 2, true, 1),
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(losses(&out).len(), 2);
    // --overwrite: a new run of one step, the old log gone.
    let mut again = run_opts(&out, 1, false, 1);
    again.overwrite = true;
    run(&other, options(), &again, Device::Cpu).unwrap();
    assert_eq!(losses(&out).len(), 1);
    // Both flags at once are refused.
    let mut both = run_opts(&out, 1, true, 1);
    both.overwrite = true;
    let e = run(&data, options(), &both, Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("give one of them"), "{e}");
}

/// EDM's schedules: lr ramps linearly over `lr_rampup_kimg`; the EMA β is 0 at step 0 (the
/// EMA starts as a copy), then `0.5^(B / min(halflife, k·B·ratio))`.
#[test]
fn max_seconds_stops_early_with_the_final_checkpoint_and_grid() {
    let _g = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // One step always takes longer than a nanosecond: the run stops after its first step.
    let opts = RunOptions {
        max_seconds: Some(1e-9),
        ..run_opts(&out, 50, false, 1000)
    };
    let s = run(&data(), options(), &opts, Device::Cpu).unwrap();
    assert_eq!((s.run.steps, s.run.time_limited), (1, true));
    assert_eq!(
        checkpoint::load(&out.join(CHECKPOINT)).unwrap().metadata["step"],
        "1"
    );
    assert!(out.join("grids/step_0000001.png").exists());
    let bad = RunOptions {
        max_seconds: Some(0.0),
        ..run_opts(&dir.path().join("bad"), 5, false, 1000)
    };
    let e = run(&data(), options(), &bad, Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("--max-seconds"), "{e}");
}

#[test]
fn edm_learning_rate_and_ema_schedules() {
    let mut o = WarmupOptions::edm(UNetConfig::tiny());
    assert_eq!(o.lr_at(0), 0.0);
    // 10,000 kimg at 512 images per step: full lr from step 19,532 (= ceil(1e7 / 512)).
    assert!((o.lr_at(9766) - 1e-3 * 9766.0 * 512.0 / 1e7).abs() < 1e-15);
    assert_eq!(o.lr_at(19_532), 1e-3);
    assert_eq!(o.ema_beta_at(0), 0.0);
    // Step 100: half-life min(500k, 51,200·0.05 = 2,560) images.
    assert!((o.ema_beta_at(100) - 0.5f64.powf(512.0 / 2560.0)).abs() < 1e-15);
    // Late: half-life 500k images.
    assert!((o.ema_beta_at(1_000_000) - 0.5f64.powf(512.0 / 500_000.0)).abs() < 1e-15);
    o.lr_rampup_kimg = 0.0;
    assert_eq!(o.lr_at(0), 1e-3);
    for bad in [f64::NAN, -1.0, 0.0] {
        let mut b = o.clone();
        b.tau_max = bad;
        assert!(b.validate().is_err());
        let mut b = o.clone();
        b.lr = bad;
        assert!(b.validate().is_err());
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_midpoint-train"))
}

fn one_line_error(o: &Output) -> String {
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(e.trim_end().lines().count(), 1, "{e:?}");
    e
}

fn write_pngs(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for k in 0..n {
        let data: Vec<u8> = (0..32 * 32 * 3)
            .map(|i| ((i * 7 + k * 61) % 256) as u8)
            .collect();
        let f = std::fs::File::create(dir.join(format!("{k:03}.png"))).unwrap();
        let mut enc = png::Encoder::new(f, 32, 32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(&data).unwrap();
    }
}

#[test]
fn warmup_command_runs_resumes_and_fails_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    write_pngs(&imgs, 6);
    let out = dir.path().join("out");
    let args_b = |steps: &str, batch: &str| {
        let mut c = bin();
        c.args([
            "warmup",
            "--arch",
            "tiny",
            "--batch",
            batch,
            "--device",
            "cpu",
            "--threads",
            "1",
        ])
        .args([
            "--quiet",
            "--checkpoint-every",
            "1",
            "--lr-rampup-kimg",
            "0",
            "--xflip",
        ])
        .args(["--steps", steps, "--data"])
        .arg(&imgs)
        .arg("--out")
        .arg(&out);
        c
    };
    let args = |steps: &str| args_b(steps, "4");
    let o = args("2").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["steps"], 2);
    assert_eq!(v["images"], 6);
    assert_eq!(v["params"], UNetConfig::tiny().param_count());
    for f in [
        CHECKPOINT,
        LOSSES,
        "grids/step_0000001.png",
        "grids/step_0000002.png",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let o = args("3").arg("--resume").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["start_step"].as_u64(), v["steps"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(read_losses(&out.join(LOSSES)).unwrap().len(), 3);
    // Errors: no data, a bad --arch, a bad --tau-max, resuming with another batch size.
    let e = one_line_error(&args_b("1", "2").arg("--resume").output().unwrap());
    assert!(e.contains("batch: checkpoint 4, now 2"), "{e}");
    let mut c = bin();
    c.args(["warmup", "--steps", "1", "--out"])
        .arg(dir.path().join("x"))
        .arg("--data")
        .arg(dir.path().join("missing"));
    one_line_error(&c.output().unwrap());
    let mut c = bin();
    c.args(["warmup", "--arch", "huge", "--steps", "1", "--out"])
        .arg(dir.path().join("y"))
        .arg("--data")
        .arg(&imgs);
    let e = one_line_error(&c.output().unwrap());
    assert!(e.contains("unknown --arch"), "{e}");
    let mut c = bin();
    c.args([
        "warmup",
        "--arch",
        "tiny",
        "--tau-max=-1",
        "--steps",
        "1",
        "--out",
    ])
    .arg(dir.path().join("z"))
    .arg("--data")
    .arg(&imgs);
    let e = one_line_error(&c.output().unwrap());
    assert!(e.contains("--tau-max"), "{e}");
}

#[test]
fn bench_and_info_commands() {
    let o = bin()
        .args([
            "bench", "warmup", "--arch", "tiny", "--batch", "4", "--steps", "2",
        ])
        .args([
            "--warmup-steps",
            "0",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--peak-tflops",
            "1",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ips = v["images_per_s"].as_f64().unwrap();
    assert!(ips > 0.0);
    let fwd = UNetConfig::tiny().forward_flops();
    assert!((v["forward_gflop_per_image"].as_f64().unwrap() - fwd / 1e9).abs() < 1e-12);
    let bound = 1e12 / (3.0 * fwd);
    assert!((v["flop_bound_images_per_s"].as_f64().unwrap() - bound).abs() < 1e-9 * bound);
    assert!((v["flop_bound_fraction"].as_f64().unwrap() - ips / bound).abs() < 1e-12);
    one_line_error(
        &bin()
            .args([
                "bench", "warmup", "--arch", "tiny", "--steps", "0", "--device", "cpu",
            ])
            .output()
            .unwrap(),
    );

    for (arch, params) in [("ddpmpp", 55_733_891i64), ("ddpmpp-noaug", 55_732_739)] {
        let o = bin()
            .args(["info", "--arch", arch, "--json"])
            .output()
            .unwrap();
        assert!(o.status.success());
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["params"], params);
        assert_eq!(v["params_from_config"], params);
        assert_eq!(v["config"]["channel_mult"], serde_json::json!([2, 2, 2]));
        assert_eq!(v["config"]["dropout"], 0.13);
    }
    let o = bin().args(["info", "--arch", "tiny"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("params"));
    one_line_error(&bin().args(["info", "--arch", "nope"]).output().unwrap());
}
