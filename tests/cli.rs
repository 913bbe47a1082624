//! The `midpoint` binary end to end: formats, JSON fields, one-line errors, exit codes.

use std::process::Command;

fn midpoint(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_midpoint"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn exact_prints_the_documented_json() {
    let dir = tempfile::tempdir().unwrap();
    let p0 = write(
        &dir,
        "p0.json",
        r#"{"kind":"gaussian","mean":[0.0],"cov":[[1.0]]}"#,
    );
    let p1 = write(
        &dir,
        "p1.json",
        r#"{"kind":"gaussian","mean":[2.0],"cov":[[3.0]]}"#,
    );
    let out = midpoint(&[
        "exact",
        "--p0",
        &p0,
        "--p1",
        &p1,
        "--divergence",
        "mid",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["divergence"], "mid");
    assert_eq!(v["method"], "closed-form");
    // ‖m1−m0‖² + (S1−S0)²/(S0+S1) = 4 + 1.
    assert!((v["value"].as_f64().unwrap() - 5.0).abs() < 1e-13);
    assert!(v["error_bound"].as_f64().unwrap() < 1e-12);
    let out = midpoint(&[
        "exact",
        "--p0",
        &p0,
        "--p1",
        &p1,
        "--divergence",
        "at-t",
        "--t",
        "0.2",
        "--sigma",
        "0.1",
        "--interpolant",
        "trig",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["method"], "quadrature");
    assert_eq!(v["t"], 0.2);
    // Text mode names the quantity and the method.
    let out = midpoint(&["exact", "--p0", &p0, "--p1", &p1, "--divergence", "tmid"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("D_t-mid = ") && text.contains("(quadrature)"),
        "{text}"
    );
}

#[test]
fn exact_errors_are_one_line_and_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        &dir,
        "good.json",
        r#"{"kind":"gaussian","mean":[0.0],"cov":[[1.0]]}"#,
    );
    let bad = write(
        &dir,
        "bad.json",
        r#"{"kind":"gaussian","mean":[0.0],"cov":[[-1.0]]}"#,
    );
    let two = write(
        &dir,
        "two.json",
        r#"{"kind":"gaussian","mean":[0.0,0.0],"cov":[[1.0,0.0],[0.0,1.0]]}"#,
    );
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["exact", "--p0", &good, "--p1", &bad, "--divergence", "mid"],
            "bad.json",
        ),
        (
            vec![
                "exact",
                "--p0",
                &good,
                "--p1",
                missing,
                "--divergence",
                "mid",
            ],
            "missing.json",
        ),
        (
            vec!["exact", "--p0", &good, "--p1", &two, "--divergence", "mid"],
            "dimension",
        ),
        (
            vec![
                "exact",
                "--p0",
                &good,
                "--p1",
                &good,
                "--divergence",
                "at-t",
            ],
            "--t",
        ),
        (
            vec![
                "exact",
                "--p0",
                &good,
                "--p1",
                &good,
                "--divergence",
                "mid",
                "--t",
                "0.3",
            ],
            "--t",
        ),
        (
            vec![
                "exact",
                "--p0",
                &good,
                "--p1",
                &good,
                "--divergence",
                "at-t",
                "--t",
                "1.5",
            ],
            "outside",
        ),
        (
            vec![
                "exact",
                "--p0",
                &good,
                "--p1",
                &good,
                "--divergence",
                "mid",
                "--sigma",
                "-1",
            ],
            "σ",
        ),
        (
            vec![
                "exact",
                "--p0",
                &good,
                "--p1",
                &good,
                "--divergence",
                "mid",
                "--interpolant",
                "cubic",
            ],
            "cubic",
        ),
        (
            vec![
                "exact",
                "--p0",
                &good,
                "--p1",
                &good,
                "--divergence",
                "sideways",
            ],
            "sideways",
        ),
        (
            vec!["sample", "--law", &good, "-n", "0", "-o", "x.npy"],
            "-n",
        ),
    ];
    for (args, needle) in cases {
        let out = midpoint(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn sample_writes_npy_and_csv_that_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let law = write(
        &dir,
        "law.json",
        r#"{"kind":"discrete","points":[[0.0,1.0],[2.0,3.0]],"weights":[0.25,0.75]}"#,
    );
    for name in ["x.npy", "x.csv"] {
        let out_path = dir.path().join(name);
        let out = midpoint(&[
            "sample",
            "--law",
            &law,
            "-n",
            "1000",
            "--seed",
            "7",
            "-o",
            out_path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let x = midpoint::io::read_samples(&out_path).unwrap();
        assert_eq!(x.dim(), (1000, 2));
        // Every row is a support point; the frequency of (2, 3) is 0.75 ± 6 SE
        // (SE = sqrt(0.75·0.25/1000) = 0.0137; false-failure probability ≈ 2e-9).
        let hits = x
            .rows()
            .into_iter()
            .filter(|r| r[0] == 2.0 && r[1] == 3.0)
            .count();
        assert!(x
            .rows()
            .into_iter()
            .all(|r| (r[0] == 0.0 && r[1] == 1.0) || (r[0] == 2.0 && r[1] == 3.0)));
        assert!((hits as f64 / 1000.0 - 0.75).abs() < 6.0 * 0.0137);
    }
    // Same seed, same samples.
    let a = dir.path().join("a.npy");
    let b = dir.path().join("b.npy");
    for p in [&a, &b] {
        midpoint(&[
            "sample",
            "--law",
            &law,
            "-n",
            "50",
            "--seed",
            "3",
            "-o",
            p.to_str().unwrap(),
        ]);
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn demo_prints_the_table() {
    let out = midpoint(&["demo", "--samples", "20000"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for row in ["N(0,1) vs N(1,1)", "3-point vs 3-point", "N(0,1) vs itself"] {
        assert!(text.contains(row), "{text}");
    }
    assert!(text.contains("closed-form") && text.contains("quadrature"));
}

/// `sample -o` checks the extension before it touches anything: an existing file of unknown
/// kind is left as it was, and a refused new name is not created.
#[test]
fn sample_with_an_unknown_extension_touches_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let law = write(
        &dir,
        "law.json",
        r#"{"kind":"gaussian","mean":[0.0],"cov":[[1.0]]}"#,
    );
    let mine = dir.path().join("notes.dat");
    std::fs::write(&mine, "precious").unwrap();
    let fresh = dir.path().join("fresh.txt");
    for target in [&mine, &fresh] {
        let out = midpoint(&[
            "sample",
            "--law",
            &law,
            "-n",
            "5",
            "-o",
            target.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    }
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "precious");
    assert!(!fresh.exists());
}

/// A sample count no machine could hold ends in one line before anything is allocated (it used
/// to abort with "memory allocation … failed", exit 134).
#[test]
fn sample_refuses_a_size_beyond_memory() {
    let dir = tempfile::tempdir().unwrap();
    let law = write(
        &dir,
        "law.json",
        r#"{"kind":"gaussian","mean":[0.0,0.0],"cov":[[1.0,0.0],[0.0,1.0]]}"#,
    );
    let out_path = dir.path().join("x.npy");
    let out = midpoint(&[
        "sample",
        "--law",
        &law,
        "-n",
        "100000000000000",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(
        e.contains("-n 100000000000000") && e.contains("available"),
        "{e}"
    );
    assert!(!out_path.exists());
}
