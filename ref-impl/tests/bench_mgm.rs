//! `bench mgm` and `bench matmul` (issue 5's GPU figures) on the CPU with tiny sizes: the JSON
//! fields are consistent with one another (9 forward-equivalents per image, the bound from the
//! peak), the peak can be measured in-process, and bad options end in one line.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_midpoint-train"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[test]
fn bench_mgm_reports_a_consistent_flop_bound() {
    for precision in ["fp32", "bf16"] {
        let v = json(&run(&[
            "bench",
            "mgm",
            "--arch",
            "tiny",
            "--batch",
            "2",
            "--steps",
            "1",
            "--warmup-steps",
            "0",
            "--precision",
            precision,
            "--device",
            "cpu",
            "--threads",
            "1",
            "--measure-peak",
            "--peak-n",
            "64",
            "--peak-reps",
            "2",
            "--json",
        ]));
        let f = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k}: {v}"));
        assert_eq!(v["precision"], precision);
        assert_eq!(f("forward_equivalents"), 9.0);
        assert!(close(f("images_per_s"), 2.0 * f("iterations_per_s")));
        let per_image = 9.0 * f("forward_gflop_per_image") * 1e9;
        assert!(close(
            f("achieved_tflops"),
            f("images_per_s") * per_image / 1e12
        ));
        assert!(close(
            f("flop_bound_images_per_s"),
            f("peak_tflops") * 1e12 / per_image
        ));
        assert!(close(
            f("flop_bound_fraction"),
            f("images_per_s") / f("flop_bound_images_per_s")
        ));
        // On the CPU the peak is an fp32 (or bf16) matmul, and there is no GPU memory figure.
        let dtype = if precision == "bf16" { "bf16" } else { "fp32" };
        let source = v["peak_source"].as_str().unwrap();
        assert!(
            source.contains(&format!("--dtype {dtype} --n 64")),
            "{source}"
        );
        assert!(v["peak_gpu_memory_bytes"].is_null());
        assert!(v["peak_gpu_memory_note"]
            .as_str()
            .unwrap()
            .contains("not on CUDA"));
        assert!(v["last_losses"]["critic"].as_f64().unwrap().is_finite());
    }
    // A given peak is used as is.
    let v = json(&run(&[
        "bench",
        "mgm",
        "--arch",
        "tiny",
        "--batch",
        "2",
        "--steps",
        "1",
        "--warmup-steps",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--peak-tflops",
        "2.5",
        "--json",
    ]));
    assert_eq!(v["peak_tflops"].as_f64(), Some(2.5));
}

#[test]
fn bench_matmul_rate_is_two_n_cubed_per_second() {
    for dtype in ["fp32", "bf16"] {
        let v = json(&run(&[
            "bench",
            "matmul",
            "--dtype",
            dtype,
            "--n",
            "48",
            "--reps",
            "3",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--json",
        ]));
        let (s, t) = (
            v["seconds"].as_f64().unwrap(),
            v["tflops"].as_f64().unwrap(),
        );
        assert!(s > 0.0);
        assert!(close(t, 2.0 * 48f64.powi(3) * 3.0 / s / 1e12), "{v}");
        assert_eq!(v["dtype"], dtype);
    }
}

#[test]
fn bad_bench_options_fail_in_one_line() {
    for args in [
        vec!["bench", "matmul", "--dtype", "tf32", "--device", "cpu"],
        vec!["bench", "matmul", "--n", "0", "--device", "cpu"],
        vec![
            "bench", "mgm", "--arch", "tiny", "--steps", "0", "--device", "cpu",
        ],
        vec![
            "bench",
            "mgm",
            "--arch",
            "tiny",
            "--steps",
            "1",
            "--device",
            "cpu",
            "--peak-tflops",
            "0",
        ],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(e.trim_end().lines().count(), 1, "{args:?}: {e}");
    }
}

/// `--peer` puts the peer's figure and our ratio in the JSON (ours / theirs, and the kernels
/// and switches the bench ran with); a peer of another batch is refused before any work, in
/// one line; `bench optim` times every kernel of Adam and the EMA.
#[test]
fn bench_mgm_compares_with_the_peer_and_bench_optim_times_each_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.json");
    std::fs::write(
        &peer,
        "{\"peer\": \"pytorch-eager EDM SongUNet\", \"mode\": \"mgm\", \"torch\": \"2.11.0\", \"precision\": \"fp32\", \"batch\": 2, \"images_per_s\": 4.0, \"peak_gpu_memory_bytes\": null, \"gpu\": null}\n",
    )
    .unwrap();
    let peer = peer.to_str().unwrap();
    let base = [
        "bench",
        "mgm",
        "--arch",
        "tiny",
        "--steps",
        "1",
        "--warmup-steps",
        "0",
        "--device",
        "cpu",
        "--json",
        "--peer",
        peer,
        "--adam-kernel",
        "fused",
        "--ema-kernel",
        "foreach",
    ];
    let v = json(&run(&[&base[..], &["--batch", "2"]].concat()));
    let ratio = v["peer"]["speed_ratio"].as_f64().unwrap();
    assert!(
        close(ratio, v["images_per_s"].as_f64().unwrap() / 4.0),
        "{v}"
    );
    assert_eq!(v["kernels"]["adam"], "fused");
    assert_eq!(v["kernels"]["ema"], "foreach");
    assert_eq!(v["tf32_matmul"], false);
    let o = run(&[&base[..], &["--batch", "3"]].concat());
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("batch 2") && e.trim_end().lines().count() == 1,
        "{e}"
    );

    let v = json(&run(&[
        "bench",
        "optim",
        "--arch",
        "tiny",
        "--reps",
        "2",
        "--warmup-reps",
        "0",
        "--device",
        "cpu",
        "--json",
    ]));
    let names: Vec<&str> = v["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["update"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "adam plain",
            "adam foreach",
            "adam fused",
            "ema plain",
            "ema foreach"
        ]
    );
    assert!(v["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["ms"].as_f64().unwrap() > 0.0));
}

/// `bench mgm --profile DIR` writes the Kineto profiler's Chrome trace and the per-operator
/// table of the iterations after the timed ones, and reports the largest entries (on the
/// CPU: operators, led by the convolutions' backward and forward).
#[test]
fn bench_mgm_profiles_where_the_time_goes() {
    let dir = tempfile::tempdir().unwrap();
    let prof = dir.path().join("prof");
    let v = json(&run(&[
        "bench",
        "mgm",
        "--arch",
        "tiny",
        "--batch",
        "2",
        "--steps",
        "1",
        "--warmup-steps",
        "0",
        "--device",
        "cpu",
        "--json",
        "--profile",
        prof.to_str().unwrap(),
        "--profile-iterations",
        "1",
    ]));
    let trace: serde_json::Value =
        serde_json::from_slice(&std::fs::read(prof.join("trace.json")).unwrap()).unwrap();
    assert!(trace["traceEvents"]
        .as_array()
        .is_some_and(|e| !e.is_empty()));
    let table = std::fs::read_to_string(prof.join("ops.tsv")).unwrap();
    assert!(table.starts_with("device\tname\tcalls\ttotal_us\n"));
    assert!(table.contains("aten::convolution"), "{table}");
    let top = v["profile"]["top"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 20);
    assert!(top
        .iter()
        .any(|op| op["name"].as_str().unwrap().contains("onvolution")));
}
