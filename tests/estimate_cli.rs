//! The `midpoint estimate` command end to end: JSON fields, --plot, input formats, and
//! one-line errors that name the file.

use ndarray::{Array2, ShapeBuilder};
use ndarray_npy::WriteNpyExt;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_midpoint"))
}

fn normal(n: usize, d: usize, shift: f64, seed: u64) -> Array2<f64> {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| {
        let z: f64 = StandardNormal.sample(&mut rng);
        shift + z
    })
}

fn write(dir: &Path, name: &str, a: &Array2<f64>) -> PathBuf {
    let p = dir.join(name);
    midpoint::io::write_samples(&p, a).unwrap();
    p
}

/// Runs the command; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `estimate --x0 X0 --x1 X1 EXTRA...`; returns (exit code, stdout, stderr).
fn estimate(x0: &Path, x1: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "estimate",
        "--x0",
        x0.to_str().unwrap(),
        "--x1",
        x1.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn json_output_has_the_documented_fields_and_plot_is_a_png() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.npy", &normal(400, 3, 0.0, 1));
    // Second set: float32, Fortran order.
    let b64 = normal(300, 3, 0.8, 2);
    let b32 =
        Array2::from_shape_vec((300, 3).f(), b64.t().iter().map(|&v| v as f32).collect()).unwrap();
    assert!(b32.t().is_standard_layout(), "array is in Fortran order");
    let b = dir.path().join("b.npy");
    b32.write_npy(std::fs::File::create(&b).unwrap()).unwrap();
    let header = std::fs::read(&b).unwrap();
    assert!(String::from_utf8_lossy(&header[..120]).contains("'fortran_order': True"));
    let png = dir.path().join("profile.png");
    let (code, out, err) = run(&[
        "estimate",
        "--x0",
        a.to_str().unwrap(),
        "--x1",
        b.to_str().unwrap(),
        "--json",
        "--quiet",
        "--permutations",
        "99",
        "--seed",
        "4",
        "--plot",
        png.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in [
        "estimate",
        "std_error",
        "ci95",
        "p_value",
        "n0",
        "n1",
        "dim",
        "divergence",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {out}");
    }
    assert_eq!(v["n0"], 400);
    assert_eq!(v["n1"], 300);
    assert_eq!(v["dim"], 3);
    assert_eq!(v["divergence"], "tmid");
    assert_eq!(v["ci95"].as_array().unwrap().len(), 2);
    assert!(v["p_value"].as_f64().unwrap() <= 0.02);
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 5000);
    // Same seed, same answer (CSV input with a header gives the same numbers as .npy).
    let csv = dir.path().join("a.csv");
    let mut text = String::from("x,y,z\n");
    for row in normal(400, 3, 0.0, 1).rows() {
        let f: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
        text += &f.join(",");
        text += "\n";
    }
    std::fs::write(&csv, text).unwrap();
    let (code2, out2, _) = run(&[
        "estimate",
        "--x0",
        csv.to_str().unwrap(),
        "--x1",
        b.to_str().unwrap(),
        "--json",
        "--quiet",
        "--permutations",
        "99",
        "--seed",
        "4",
    ]);
    assert_eq!(code2, 0);
    assert_eq!(out, out2);
}

#[test]
fn text_output_mentions_estimate_and_p_value() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.csv", &normal(200, 1, 0.0, 1));
    let b = write(dir.path(), "b.csv", &normal(200, 1, 0.0, 2));
    let (code, out, err) = run(&[
        "estimate",
        "--x0",
        a.to_str().unwrap(),
        "--x1",
        b.to_str().unwrap(),
        "--divergence",
        "mid",
        "--critic",
        "knn",
        "--permutations",
        "50",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("D_mid") && out.contains("estimate") && out.contains("p = "),
        "{out}"
    );
    // stderr is not a TTY here: no progress bar; only the kNN critic's SE warning.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("warning: the kNN critic has no jackknife"),
        "{err}"
    );
}

/// Every bad input: exit code 1, exactly one line on stderr, naming the file and the problem.
#[test]
fn bad_inputs_give_one_line_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = write(d, "good.csv", &normal(100, 2, 0.0, 1));
    let good3 = write(d, "good3.npy", &normal(100, 3, 0.0, 1));
    // Another seed: the first rows of `good` would be shared rows, refused before the size.
    let small = write(d, "small.npy", &normal(10, 2, 0.0, 5));
    let nan = d.join("nan.csv");
    std::fs::write(&nan, "1,2\n3,nan\n").unwrap();
    let inf = d.join("inf.csv");
    std::fs::write(&inf, "1,2\n3,inf\n").unwrap();
    let ragged = d.join("ragged.csv");
    std::fs::write(&ragged, "1,2\n3,4,5\n").unwrap();
    let garbage = d.join("garbage.npy");
    std::fs::write(&garbage, "not an npy file").unwrap();
    let missing = d.join("missing.npy");
    let txt = d.join("data.txt");
    std::fs::write(&txt, "1,2\n").unwrap();
    let cases: Vec<(&Path, &Path, &str)> = vec![
        (&good, &nan, "non-finite value at row 1, column 1"),
        (&inf, &good, "non-finite value at row 1, column 1"),
        (&good, &ragged, "row has 3 fields, expected 2"),
        (&good, &good3, "dimension 3 does not match"),
        (&good, &small, "too few for 2 folds"),
        (&garbage, &good, "invalid .npy file"),
        (&good, &missing, "missing.npy"),
        (&txt, &good, "unknown extension"),
    ];
    for (x0, x1, want) in cases {
        let (code, out, err) = run(&[
            "estimate",
            "--x0",
            x0.to_str().unwrap(),
            "--x1",
            x1.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(code, 1, "{x0:?} {x1:?}: {err}");
        assert!(out.is_empty());
        assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
        assert!(err.contains(want), "{err} lacks {want:?}");
        let bad = if want.contains("dimension")
            || want.contains("few")
            || want.contains("missing")
            || want.contains("ragged")
            || want.contains("row has")
            || want.contains("column 1") && x1 == nan
        {
            x1
        } else {
            x0
        };
        let name = bad.file_name().unwrap().to_str().unwrap();
        assert!(err.contains(name), "{err} does not name {name}");
    }
    // Invalid option values are one line too.
    let (code, _, err) = estimate(&good, &good, &["--folds", "1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("folds") && err.trim_end().lines().count() == 1,
        "{err}"
    );
}

/// An output that could not be written is refused before the computation, in one line with
/// nothing on stdout (the plot's folder missing, or the plot path a folder); the estimate
/// itself is never computed and then thrown away.
#[test]
fn an_unwritable_plot_path_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.npy", &normal(200, 2, 0.0, 1));
    let b = write(dir.path(), "b.npy", &normal(200, 2, 0.5, 2));
    let missing = dir.path().join("no/such/folder/p.png");
    let folder = dir.path().join("p.png");
    std::fs::create_dir(&folder).unwrap();
    for (plot, says) in [(&missing, "does not exist"), (&folder, "is a folder")] {
        let (code, out, err) = estimate(&a, &b, &["--quiet", "--plot", plot.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("--plot") && err.contains(says), "{err}");
    }
}

/// Conditions that qualify a result reach the user: one `warning:` line each on stderr (also
/// with --quiet, which silences progress only) and a `warnings` list in the JSON; samples that
/// are one sample twice are refused in one line. Each case failed before: the same file twice
/// gave a confident −481 ± 13 in the issue, and nothing said the interval of a high-d estimate
/// bounds D from below.
#[test]
fn warnings_reach_stderr_and_the_json_and_one_sample_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = write(d, "a.npy", &normal(200, 3, 0.0, 1));
    let b = write(d, "b.npy", &normal(200, 3, 0.5, 2));
    let (code, out, err) = estimate(&a, &a, &["--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains("x0 and x1 share 200 rows (of 200 and 200)"),
        "{err}"
    );

    let json = |x0: &Path, x1: &Path, extra: &[&str]| {
        let mut args = vec!["--json", "--quiet", "--test", "none"];
        args.extend_from_slice(extra);
        let (code, out, err) = estimate(x0, x1, &args);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        (v, err)
    };
    // d = 3, RFF: nothing to say.
    let (v, err) = json(&a, &b, &[]);
    assert_eq!(v["warnings"], serde_json::json!([]));
    assert!(err.is_empty(), "{err}");
    // d = 22: the critic has no product terms.
    let a22 = write(d, "a22.npy", &normal(200, 22, 0.0, 3));
    let b22 = write(d, "b22.npy", &normal(200, 22, 0.1, 4));
    let (v, err) = json(&a22, &b22, &[]);
    assert_eq!(v["warnings"][0]["kind"], "lower_bound", "{v}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("warning: d = 22 > 21: "), "{err}");
    // The kNN critic's SE is the conditional one.
    let (v, err) = json(&a, &b, &["--critic", "knn"]);
    assert_eq!(v["warnings"][0]["kind"], "conditional_se", "{v}");
    assert_eq!(v["se_method"], "conditional");
    assert!(
        err.starts_with("warning: the kNN critic has no jackknife"),
        "{err}"
    );
}
