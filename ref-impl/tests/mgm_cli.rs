//! `midpoint-train mgm`: a tiny run on synthetic images writes its losses, grids, loss plot
//! and summary; bad invocations end in one line with a non-zero exit code.

use midpoint_train::image::fid_eval::read_losses;
use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_midpoint-train"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn one_line_error(o: &Output) -> String {
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(e.trim_end().lines().count(), 1, "{e:?}");
    e
}

/// Width and height of a PNG file.
fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    (info.width, info.height)
}

const TINY: [&str; 14] = [
    "mgm",
    "--init",
    "random",
    "--synthetic",
    "--arch",
    "tiny",
    "--batch",
    "2",
    "--checkpoint-every",
    "0",
    "--fid-every",
    "0",
    "--final-fid",
    "0",
];

#[test]
fn tiny_run_writes_losses_grids_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = TINY.to_vec();
    let out_s = out.to_str().unwrap();
    args.extend([
        "--steps",
        "3",
        "--grid-every",
        "2",
        "--out",
        out_s,
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
    ]);
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let losses = read_losses(&out.join("losses.jsonl")).unwrap();
    assert_eq!(losses.iter().map(|l| l.step).collect::<Vec<_>>(), [0, 1, 2]);
    for l in &losses {
        assert!(l.critic.is_finite() && l.generator.is_finite() && l.images_per_s > 0.0);
    }
    // Grids at the start, at step 2 and at the end: 8×8 images of 32×32.
    for step in [0, 2, 3] {
        let g = out.join("grids").join(format!("step_{step:07}.png"));
        assert_eq!(png_size(&g), (256, 256), "{}", g.display());
    }
    assert!(png_size(&out.join("losses.png")).0 > 0);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["steps"], 3);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["config"]["critic_sigma"], 0.01);
    assert_eq!(config["config"]["sigma"], 0.0);
    assert_eq!(config["config"]["variant"], "mgm");
    assert_eq!(config["config"]["t_floor"], 0.002);
}

#[test]
fn bf16_run_stops_at_max_seconds_and_records_its_precision() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = TINY.to_vec();
    // One step takes longer than a nanosecond: the run ends after its first step.
    args.extend([
        "--steps",
        "50",
        "--max-seconds",
        "1e-9",
        "--precision",
        "bf16",
        "--grid-every",
        "0",
        "--out",
        out.to_str().unwrap(),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
    ]);
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let losses = read_losses(&out.join("losses.jsonl")).unwrap();
    assert_eq!(losses.len(), 1);
    assert!(losses[0].critic.is_finite() && losses[0].generator.is_finite());
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap()
    };
    let summary = read("summary.json");
    assert_eq!(
        (summary["steps"].as_u64(), summary["time_limited"].as_bool()),
        (Some(1), Some(true))
    );
    let config = read("config.json");
    assert_eq!(config["config"]["precision"], "bf16");
    assert_eq!(config["options"]["max_seconds"], 1e-9);
}

#[test]
fn bad_invocations_end_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out_s = out.to_str().unwrap();
    // Neither --warmup nor --init; neither --data nor --synthetic: usage errors (exit 2).
    let o = run(&["mgm", "--synthetic", "--out", out_s]);
    one_line_error(&o);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["mgm", "--init", "random", "--out", out_s]);
    one_line_error(&o);
    // Bad values: exit 1 with the reason.
    for (flag, value, says) in [
        ("--arch", "huge", "arch"),
        ("--variant", "naive", "mgm or midpoint"),
        ("--critic-sigma", "-0.5", "σ"),
        ("--lr", "0", "learning rate"),
        ("--ema", "1", "EMA"),
        ("--max-seconds", "0", "--max-seconds"),
    ] {
        let mut args = TINY.to_vec();
        let flag_value = format!("{flag}={value}");
        args.extend([
            "--steps",
            "1",
            "--out",
            out_s,
            "--device",
            "cpu",
            &flag_value,
        ]);
        let o = run(&args);
        let e = one_line_error(&o);
        assert!(e.contains(says), "{flag} {value}: {e}");
    }
    // Asking for FID without a reference: a clear error, not a panic.
    let base = [
        "mgm",
        "--init",
        "random",
        "--synthetic",
        "--arch",
        "tiny",
        "--batch",
        "2",
        "--steps",
        "2",
        "--out",
        out_s,
        "--device",
        "cpu",
        "--grid-every",
        "0",
    ];
    let mut args = base.to_vec();
    args.extend([
        "--checkpoint-every",
        "0",
        "--final-fid",
        "0",
        "--fid-every",
        "1",
    ]);
    let e = one_line_error(&run(&args));
    assert!(e.contains("FID"), "{e}");
    // A warmup checkpoint that does not exist: the reason, naming the file.
    let e = one_line_error(&run(&[
        "mgm",
        "--warmup",
        "w.safetensors",
        "--synthetic",
        "--out",
        out_s,
        "--device",
        "cpu",
    ]));
    assert!(e.contains("w.safetensors"), "{e}");
    // --resume without a checkpoint in --out.
    let mut args = base.to_vec();
    args.extend(["--fid-every", "0", "--final-fid", "0", "--resume"]);
    let e = one_line_error(&run(&args));
    assert!(e.contains("checkpoint"), "{e}");
}

/// `kill -9` between checkpoints, then `--resume`: the resumed run replays the steps after its
/// checkpoint, and `losses.jsonl` must hold each step exactly once (it is cut back to the
/// checkpoint, a line torn by the kill included). Killed twice, at whatever step the run has
/// reached; the test does not depend on where.
#[test]
fn killed_and_resumed_run_logs_each_step_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let log = out.join("losses.jsonl");
    let args = |steps: &str| -> Vec<String> {
        // TINY, with a checkpoint every 3 steps.
        let mut a: Vec<String> = TINY.iter().map(|s| s.to_string()).collect();
        let every = a.iter().position(|s| s == "--checkpoint-every").unwrap() + 1;
        a[every] = "3".into();
        a.extend(
            [
                "--grid-every",
                "0",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--quiet",
                "--steps",
                steps,
                "--out",
            ]
            .map(String::from),
        );
        a.push(out.to_str().unwrap().to_string());
        a
    };
    let lines = || {
        std::fs::read_to_string(&log)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    for kill in 0..2 {
        let mut a = args("100000");
        if kill > 0 {
            a.push("--resume".into());
        }
        let before = lines();
        let mut child = Command::new(env!("CARGO_BIN_EXE_midpoint-train"))
            .args(&a)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Past a checkpoint and a few steps beyond it (or 5 minutes: the test then fails below).
        let start = std::time::Instant::now();
        while lines() < before.max(3) + 5 && start.elapsed().as_secs() < 300 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let killed_at = lines();
    assert!(killed_at >= 8, "the run never got going: {killed_at} lines");
    let target = killed_at + 2;
    let o = Command::new(env!("CARGO_BIN_EXE_midpoint-train"))
        .args(args(&target.to_string()))
        .arg("--resume")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let steps: Vec<usize> = read_losses(&log).unwrap().iter().map(|l| l.step).collect();
    assert_eq!(steps, (0..target).collect::<Vec<_>>());
}
