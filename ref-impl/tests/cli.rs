//! The `midpoint-train` binary: one-line errors with non-zero exit codes, `info --json`, and a
//! small `toy` run that writes every output file.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_midpoint-train"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn stderr_one_line(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        e.trim_end().lines().count(),
        1,
        "stderr must be one line: {e:?}"
    );
    e
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// A toy run small enough for a test (moons, a width-16 MLP, a few steps) into `out`, with
/// `extra` flags added (they must not repeat the flags set here).
fn tiny_toy(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "toy",
        "--data",
        "moons",
        "--batch",
        "16",
        "--eval-samples",
        "100",
        "--eval-steps",
        "2",
        "--width",
        "16",
        "--blocks",
        "1",
        "--device",
        "cpu",
        "--quiet",
        "--out",
    ];
    args.push(out.to_str().unwrap());
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn info_json_reports_device_and_torch() {
    let o = run(&["info", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["cuda_available"].is_boolean());
    assert!(v["device"].is_string());
    assert!(v["torch_version"].as_str().unwrap().starts_with("2.11.0"));
}

#[test]
fn bad_flags_fail_with_one_line() {
    for args in [
        vec!["toy", "--data", "moons", "--variant", "fancy", "--out", "x"],
        vec!["toy", "--data", "moons", "--steps", "many", "--out", "x"],
        vec!["critic-check", "--p0", "a.json"],
        vec!["nonsense"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        stderr_one_line(&o);
    }
}

#[test]
fn bad_inputs_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corrupt = write(d, "corrupt.json", "{\"kind\":\"gaussian\",\"mean\":[0");
    let not_pd = write(
        d,
        "notpd.json",
        r#"{"kind":"gaussian","mean":[0,0],"cov":[[1,2],[2,1]]}"#,
    );
    let ok = write(
        d,
        "ok.json",
        r#"{"kind":"gaussian","mean":[0],"cov":[[1]]}"#,
    );
    let ok2 = write(
        d,
        "ok2.json",
        r#"{"kind":"gaussian","mean":[0,1],"cov":[[1,0],[0,1]]}"#,
    );
    let out = d.join("out");
    let out = out.to_str().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "critic-check".into(),
                "--p0".into(),
                corrupt.clone(),
                "--p1".into(),
                ok.clone(),
            ],
            "invalid law JSON",
        ),
        (
            vec![
                "critic-check".into(),
                "--p0".into(),
                ok.clone(),
                "--p1".into(),
                "/nonexistent.json".into(),
            ],
            "nonexistent.json",
        ),
        (
            vec![
                "critic-check".into(),
                "--p0".into(),
                ok.clone(),
                "--p1".into(),
                ok2.clone(),
                "--steps".into(),
                "5".into(),
            ],
            "dimension",
        ),
        (
            vec![
                "toy".into(),
                "--data".into(),
                format!("law:{not_pd}"),
                "--out".into(),
                out.into(),
            ],
            "positive definite",
        ),
        (
            vec![
                "toy".into(),
                "--data".into(),
                "moons".into(),
                "--eval-samples".into(),
                "100000000000000".into(),
                "--out".into(),
                out.into(),
            ],
            "only",
        ),
        (
            vec![
                "toy".into(),
                "--data".into(),
                "spiral".into(),
                "--out".into(),
                out.into(),
            ],
            "unknown data",
        ),
        (
            vec![
                "toy".into(),
                "--data".into(),
                "moons".into(),
                "--lr=-1".into(),
                "--out".into(),
                out.into(),
            ],
            "learning rate",
        ),
        (
            vec![
                "toy".into(),
                "--data".into(),
                "moons".into(),
                "--device".into(),
                "tpu".into(),
                "--out".into(),
                out.into(),
            ],
            "unknown device",
        ),
        (
            vec![
                "toy".into(),
                "--data".into(),
                "moons".into(),
                "--sigma=-0.1".into(),
                "--out".into(),
                out.into(),
            ],
            "σ must be finite",
        ),
    ];
    for (args, want) in cases {
        let o = bin().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = stderr_one_line(&o);
        assert!(
            e.starts_with("error: ") && e.contains(want),
            "{args:?}: {e}"
        );
    }
}

#[test]
fn diverging_loss_fails_with_one_line() {
    // Target coordinates of 1e30 overflow float32 in ‖f − (x1 − x0)‖²: the very first critic
    // loss is +∞, which must stop the run with a typed error (not a panic, not NaN weights).
    let dir = tempfile::tempdir().unwrap();
    let huge = write(
        dir.path(),
        "huge.json",
        r#"{"kind":"gaussian","mean":[1e30,0],"cov":[[1,0],[0,1]]}"#,
    );
    let out = dir.path().join("out");
    let o = run(&[
        "toy",
        "--data",
        &format!("law:{huge}"),
        "--steps",
        "10",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr_one_line(&o);
    assert!(
        e.contains("critic loss is not finite") && e.contains("step 0"),
        "{e}"
    );
}

#[test]
fn small_toy_run_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = run(&[
        "toy",
        "--data",
        "8gaussians",
        "--variant",
        "naive",
        "--steps",
        "30",
        "--batch",
        "64",
        "--eval-samples",
        "200",
        "--eval-steps",
        "20",
        "--width",
        "32",
        "--blocks",
        "1",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "samples.npy",
        "target.npy",
        "metrics.json",
        "losses.csv",
        "scatter.png",
        "losses.png",
    ] {
        let len = std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 100, "{f} missing or empty");
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for key in [
        "energy_distance",
        "tmid_estimate",
        "tmid_std_error",
        "tmid_core_estimate",
        "tmid_core_std_error",
        "tmid_core_p_value",
        "tmid_cross_check_z",
    ] {
        assert!(m[key].as_f64().unwrap().is_finite(), "{key}");
    }
    assert_eq!(m["config"]["variant"], "naive");
    let samples = midpoint::io::read_samples(&out.join("samples.npy")).unwrap();
    assert_eq!(samples.dim(), (200, 2));
    let lines = std::fs::read_to_string(out.join("losses.csv")).unwrap();
    assert_eq!(lines.lines().count(), 31);

    // The panels command reads the run back.
    let png = dir.path().join("panels.png");
    let o = run(&[
        "panels",
        "--run",
        out.to_str().unwrap(),
        "--run",
        out.to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
}

/// A folder that holds a run is never overwritten by accident: a second `toy` run into it is
/// refused in one line naming `--overwrite`, which replaces the run and removes the old run's
/// outputs (a stale evaluation log included) but no file of the user's; while a run holds the
/// folder, another is refused with the holder's pid.
#[test]
fn toy_refuses_a_folder_holding_a_run_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let toy = |extra: &[&str]| {
        let mut e = vec!["--steps", "5", "--threads", "1"];
        e.extend_from_slice(extra);
        tiny_toy(&out, &e)
    };
    let o = toy(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let samples = std::fs::read(out.join("samples.npy")).unwrap();
    std::fs::write(
        out.join("energy_distance.jsonl"),
        "{\"step\":0,\"stale\":1}\n",
    )
    .unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();

    let o = toy(&["--seed", "1"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr_one_line(&o);
    assert!(
        e.contains("already holds a run") && e.contains("--overwrite"),
        "{e}"
    );
    assert_eq!(std::fs::read(out.join("samples.npy")).unwrap(), samples);

    // Held by a live run (this process): refused with the holder named.
    let held = midpoint_train::train::run_folder::RunFolder::claim(
        &out,
        midpoint_train::train::run_folder::Claim::Resume,
    )
    .unwrap();
    let o = toy(&["--seed", "1", "--overwrite"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr_one_line(&o);
    assert!(
        e.contains("in use by another run") && e.contains(&format!("pid {}", std::process::id())),
        "{e}"
    );
    drop(held);

    let o = toy(&["--seed", "1", "--overwrite"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_ne!(std::fs::read(out.join("samples.npy")).unwrap(), samples);
    let curve = std::fs::read_to_string(out.join("energy_distance.jsonl")).unwrap_or_default();
    assert!(!curve.contains("stale"), "{curve}");
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
}

/// `--threads` beyond the CPU count is cut to it, with one line saying so (it used to start
/// that many OpenMP threads).
#[test]
fn threads_beyond_the_cpus_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = tiny_toy(&out, &["--steps", "2", "--threads", "100000"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = String::from_utf8_lossy(&o.stderr);
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert!(
        e.contains(&format!(
            "--threads 100000: this machine has {cpus} logical CPUs; using {cpus}"
        )),
        "{e}"
    );
}

/// Side commands check their output files before any work: a missing folder or a folder given
/// as a file name ends in one line naming the flag, before the inputs are even opened (which
/// here do not exist either: their error would come first otherwise).
#[test]
fn side_commands_check_their_outputs_first() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/folder/out.json");
    let missing = missing.to_str().unwrap();
    let folder = dir.path().to_str().unwrap();
    for (args, says) in [
        (
            vec![
                "image-metrics",
                "--train",
                "/nonexistent/a",
                "--heldout",
                "/nonexistent/b",
                "--features",
                "/nonexistent/f.safetensors",
                "--images",
                "/nonexistent/i",
                "--out",
                missing,
            ],
            "--out: the folder",
        ),
        (
            vec!["panels", "--run", "/nonexistent/r", "--out", folder],
            "--out: is a folder",
        ),
        (
            vec!["fid-ref", "--data", "/nonexistent/d", "--out", missing],
            "--out: the folder",
        ),
        (
            vec!["feature-net", "--train", "/nonexistent/t", "--out", missing],
            "--out: the folder",
        ),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = stderr_one_line(&o);
        assert!(e.contains(says), "{args:?}: {e}");
    }
}

#[test]
fn flowmap_runs_write_their_outputs_and_refuse_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lsd");
    let o = run(&[
        "flowmap",
        "--data",
        "moons",
        "--method",
        "lsd",
        "--steps",
        "30",
        "--batch",
        "16",
        "--width",
        "16",
        "--blocks",
        "1",
        "--eval-samples",
        "64",
        "--eval-steps",
        "1,2",
        "--curve-every",
        "10",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "metrics.json",
        "samples_1.npy",
        "samples_2.npy",
        "target.npy",
        "losses.csv",
        "curve.csv",
        "scatter.png",
        "losses.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["at_steps"].as_array().unwrap().len(), 2);
    // A teacher that takes every step, and step counts of 0, are one-line errors.
    for bad in [
        vec!["--method", "lmd", "--steps", "10", "--teacher-steps", "10"],
        vec!["--method", "fm", "--eval-steps", "0"],
    ] {
        let mut args = vec![
            "flowmap", "--data", "moons", "--device", "cpu", "--quiet", "--out",
        ];
        let o2 = dir.path().join("bad");
        args.push(o2.to_str().unwrap());
        args.extend(bad.iter().copied());
        let o = run(&args);
        assert!(!o.status.success());
        let e = stderr_one_line(&o);
        assert!(e.contains("teacher") || e.contains("eval-steps"), "{e}");
    }
}

#[test]
fn flowmap_image_checkpoints_and_resumes_past_its_first_length() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fmm");
    let args = |steps: &str, resume: bool| {
        let mut v = vec![
            "flowmap-image",
            "--method",
            "fmm",
            "--synthetic",
            "--arch",
            "tiny",
            "--batch",
            "2",
            "--grid-every",
            "2",
            "--checkpoint-every",
            "2",
            "--fid-every",
            "0",
            "--final-fid",
            "0",
            "--device",
            "cpu",
            "--quiet",
            "--steps",
        ];
        v.push(steps);
        v.push("--out");
        v.push(out.to_str().unwrap());
        if resume {
            v.push("--resume");
        }
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let o = bin().args(args("2", false)).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("checkpoint.safetensors").is_file());
    assert!(out.join("grids/step_0000002.png").is_file());
    let o = bin().args(args("3", true)).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("3 steps (1 now)"));
    // Without a reference, FID is refused up front.
    let o = run(&[
        "flowmap-image",
        "--method",
        "fm",
        "--synthetic",
        "--arch",
        "tiny",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr_one_line(&o).contains("--fid-ref"));
}
