//! Every bad input of the guide's list gets its typed error — never a panic or a silent
//! wrong answer: NaN/Inf, mismatched dimensions, empty or one-sample inputs, non-symmetric
//! interpolants, σ < 0, t outside its range, malformed JSON/NPY/CSV.

use midpoint::divergence::{d_mid, d_t, d_tmid, ExactOptions};
use midpoint::error::DivergenceError;
use midpoint::field::displacement_field;
use midpoint::interpolant::InterpolantError;
use midpoint::io::{law_from_json, read_samples, FormatError};
use midpoint::montecarlo::{rao_blackwell, variational, Setup, TimeLaw};
use midpoint::{
    Discrete, Gaussian, Interpolant, Law, LawError, NoiseSchedule, Observation,
    StochasticInterpolant,
};
use ndarray::{array, Array1, Array2};
use ndarray_npy::WriteNpyExt;
use std::io::Write;

fn g1() -> Law {
    Gaussian::isotropic(array![0.0], 1.0).unwrap().into()
}

#[test]
fn gaussian_laws_refuse_bad_parameters() {
    use LawError::*;
    assert!(matches!(
        Gaussian::new(array![f64::NAN], array![[1.0]]),
        Err(NonFinite { what: "mean", .. })
    ));
    assert!(matches!(
        Gaussian::new(array![0.0], array![[f64::INFINITY]]),
        Err(NonFinite {
            what: "covariance",
            ..
        })
    ));
    assert!(matches!(
        Gaussian::new(array![0.0, 0.0], array![[1.0]]),
        Err(CovarianceShape { .. })
    ));
    assert!(matches!(
        Gaussian::new(Array1::zeros(0), Array2::zeros((0, 0))),
        Err(ZeroDimension)
    ));
    assert!(matches!(
        Gaussian::new(array![0.0, 0.0], array![[1.0, 0.2], [0.3, 1.0]]),
        Err(NotSymmetric { .. })
    ));
    assert!(matches!(
        Gaussian::new(array![0.0, 0.0], array![[1.0, 2.0], [2.0, 1.0]]),
        Err(NotPositiveDefinite)
    ));
    // Positive semi-definite is not enough: the law would have no density.
    assert!(matches!(
        Gaussian::new(array![0.0, 0.0], array![[1.0, 1.0], [1.0, 1.0]]),
        Err(NotPositiveDefinite)
    ));
    assert!(matches!(
        Gaussian::isotropic(array![0.0], -1.0),
        Err(NotPositiveDefinite)
    ));
}

#[test]
fn discrete_laws_refuse_bad_parameters() {
    use LawError::*;
    assert!(matches!(
        Discrete::new(Array2::zeros((0, 2)), Array1::zeros(0)),
        Err(NoPoints)
    ));
    assert!(matches!(
        Discrete::new(Array2::zeros((2, 0)), array![0.5, 0.5]),
        Err(ZeroDimension)
    ));
    assert!(matches!(
        Discrete::new(array![[0.0], [1.0]], array![1.0]),
        Err(WeightCount {
            weights: 1,
            points: 2
        })
    ));
    assert!(matches!(
        Discrete::new(array![[0.0], [1.0]], array![1.2, -0.2]),
        Err(NegativeWeight { index: 1, .. })
    ));
    assert!(matches!(
        Discrete::new(array![[0.0], [1.0]], array![0.5, f64::NAN]),
        Err(NonFinite {
            what: "weights",
            ..
        })
    ));
    assert!(matches!(
        Discrete::new(array![[f64::NAN], [1.0]], array![0.5, 0.5]),
        Err(NonFinite { what: "points", .. })
    ));
    assert!(matches!(
        Discrete::new(array![[0.0], [1.0]], array![0.5, 0.4]),
        Err(WeightSum { .. })
    ));
    let mut rng = <rand_xoshiro::Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(0);
    assert!(matches!(g1().sample(0, &mut rng), Err(NoSamples(0))));
}

#[test]
fn interpolants_must_be_symmetric() {
    assert!(matches!(
        Interpolant::custom("t²", |t| 1.0 - t * t, |t| t * t),
        Err(InterpolantError::NotSymmetric { .. })
    ));
    assert!(matches!(
        Interpolant::custom("half", |t| 0.5 - 0.5 * t, |t| 0.5 * t),
        Err(InterpolantError::Endpoints { .. })
    ));
    assert!(matches!(
        Interpolant::custom(
            "nan",
            |t| if t > 0.3 && t < 0.4 {
                f64::NAN
            } else {
                1.0 - t
            },
            |t| t
        ),
        Err(InterpolantError::NonFinite { .. })
    ));
    assert!(matches!(
        Interpolant::from_name("cubic"),
        Err(InterpolantError::Unknown(_))
    ));
    assert!(matches!(
        NoiseSchedule::sqrt_bridge(-0.1),
        Err(InterpolantError::InvalidSigma(_))
    ));
    assert!(matches!(
        NoiseSchedule::sqrt_bridge(f64::INFINITY),
        Err(InterpolantError::InvalidSigma(_))
    ));
    assert!(matches!(
        NoiseSchedule::custom("skew", |t| t * (1.0 - t) * (1.0 + t)),
        Err(InterpolantError::NoiseNotSymmetric { .. })
    ));
    assert!(matches!(
        NoiseSchedule::custom("ends", |_| 0.1),
        Err(InterpolantError::NoiseAtEndpoints { .. })
    ));
    assert!(matches!(
        NoiseSchedule::custom("neg", |t| -t * (1.0 - t)),
        Err(InterpolantError::NegativeNoise { .. })
    ));
}

#[test]
fn divergences_refuse_bad_arguments() {
    let si = StochasticInterpolant::linear(0.0).unwrap();
    let o = ExactOptions::default();
    let p2: Law = Gaussian::isotropic(array![0.0, 0.0], 1.0).unwrap().into();
    assert_eq!(
        d_mid(&g1(), &p2, &si, &o).unwrap_err(),
        DivergenceError::DimensionMismatch { d0: 1, d1: 2 }
    );
    assert!(matches!(
        d_tmid(&g1(), &p2, &si, &o),
        Err(DivergenceError::DimensionMismatch { .. })
    ));
    for t in [-0.1, 1.0000001, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                d_t(&g1(), &g1(), &si, t, &o),
                Err(DivergenceError::TimeOutOfRange { .. })
            ),
            "t = {t}"
        );
        assert!(matches!(
            displacement_field(&g1(), &g1(), &si, t, Observation::Flipped),
            Err(DivergenceError::TimeOutOfRange { .. })
        ));
    }
    let bad = ExactOptions {
        rel_tol: 0.0,
        ..ExactOptions::default()
    };
    assert!(matches!(
        d_mid(&g1(), &g1(), &si, &bad),
        Err(DivergenceError::InvalidOption(_))
    ));
    let bad = ExactOptions {
        mc_samples: 1,
        ..ExactOptions::default()
    };
    assert!(matches!(
        d_tmid(&g1(), &g1(), &si, &bad),
        Err(DivergenceError::InvalidOption(_))
    ));
}

#[test]
fn fields_refuse_bad_points() {
    let si = StochasticInterpolant::linear(0.0).unwrap();
    let f = displacement_field(&g1(), &g1(), &si, 0.3, Observation::Flipped).unwrap();
    assert!(matches!(
        f.eval(array![0.0, 1.0].view()),
        Err(DivergenceError::PointDimension {
            expected: 1,
            got: 2
        })
    ));
    assert!(matches!(
        f.eval(array![f64::NAN].view()),
        Err(DivergenceError::NonFinitePoint)
    ));
    assert!(matches!(
        f.eval_batch(array![[0.0, 1.0]].view()),
        Err(DivergenceError::PointDimension { .. })
    ));
    // An atomic X̃_t (discrete laws, σ = 0) has no field off its atoms.
    let p: Law = Discrete::uniform(array![[0.0], [1.0]]).unwrap().into();
    let f = displacement_field(&p, &p, &si, 0.3, Observation::Flipped).unwrap();
    assert!(matches!(
        f.eval(array![0.123].view()),
        Err(DivergenceError::OutsideSupport)
    ));
    assert!(f.eval(array![0.3].view()).is_ok()); // (1−t)·0 + t·1
}

#[test]
fn monte_carlo_refuses_bad_arguments() {
    let si = StochasticInterpolant::linear(0.0).unwrap();
    let p = g1();
    let s = Setup::new(&p, &p, &si);
    assert!(matches!(
        rao_blackwell(&s, 1, 0),
        Err(DivergenceError::TooFewSamples { n: 1, min: 2 })
    ));
    assert!(matches!(
        rao_blackwell(&s, 0, 0),
        Err(DivergenceError::TooFewSamples { .. })
    ));
    let backwards = s.at(TimeLaw::Uniform { lo: 0.4, hi: 0.2 });
    assert!(matches!(
        rao_blackwell(&backwards, 100, 0),
        Err(DivergenceError::TimeOutOfRange { .. })
    ));
    assert!(matches!(
        rao_blackwell(&s.at(TimeLaw::Fixed(2.0)), 100, 0),
        Err(DivergenceError::TimeOutOfRange { .. })
    ));
    let nan_critic = |_t: f64, _x: &[f64], out: &mut [f64]| out[0] = f64::NAN;
    assert!(matches!(
        variational(&s, &nan_critic, 100, 0),
        Err(DivergenceError::NonFiniteCritic)
    ));
    let p2: Law = Gaussian::isotropic(array![0.0, 0.0], 1.0).unwrap().into();
    assert!(matches!(
        rao_blackwell(&Setup::new(&p, &p2, &si), 100, 0),
        Err(DivergenceError::DimensionMismatch { .. })
    ));
}

#[test]
fn law_json_is_parsed_strictly() {
    let err = |text: &str| law_from_json(text).unwrap_err();
    assert!(matches!(err("{"), FormatError::Json { .. }));
    assert!(matches!(
        err(r#"{"kind":"poisson","rate":1}"#),
        FormatError::Json { .. }
    ));
    assert!(matches!(
        err(r#"{"kind":"gaussian","mean":[0]}"#),
        FormatError::Json { .. }
    ));
    assert!(matches!(
        err(r#"{"kind":"gaussian","mean":[0],"cov":[[1]],"extra":1}"#),
        FormatError::Json { .. }
    ));
    assert!(matches!(
        err(r#"{"kind":"gaussian","mean":[0],"cov":[[1]],"means":[0]}"#),
        FormatError::Json { .. }
    ));
    assert!(matches!(
        err(r#"{"kind":"gaussian","mean":["a"],"cov":[[1]]}"#),
        FormatError::Json { .. }
    ));
    // NaN is not JSON; a number too large for f64 is refused by the parser.
    assert!(matches!(
        err(r#"{"kind":"gaussian","mean":[NaN],"cov":[[1]]}"#),
        FormatError::Json { .. }
    ));
    assert!(matches!(
        err(r#"{"kind":"gaussian","mean":[1e999],"cov":[[1]]}"#),
        FormatError::Json { .. }
    ));
    assert!(matches!(
        err(r#"{"kind":"discrete","points":[[0,1],[2]],"weights":[0.5,0.5]}"#),
        FormatError::Law {
            source: LawError::RaggedPoints { row: 1, .. },
            ..
        }
    ));
    assert!(matches!(
        err(r#"{"kind":"gaussian","mean":[0,0],"cov":[[1,0],[0]]}"#),
        FormatError::Law {
            source: LawError::CovarianceShape { .. },
            ..
        }
    ));
    assert!(matches!(
        err(r#"{"kind":"discrete","points":[[0],[1]],"weights":[0.9,0.3]}"#),
        FormatError::Law {
            source: LawError::WeightSum { .. },
            ..
        }
    ));
    // Round trip of a valid law.
    let law = law_from_json(r#"{"kind":"gaussian","mean":[1.5],"cov":[[2.0]]}"#).unwrap();
    assert_eq!(
        midpoint::io::law_to_json(&law),
        r#"{"kind":"gaussian","mean":[1.5],"cov":[[2.0]]}"#
    );
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

#[test]
fn sample_files_are_read_or_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // CSV: header optional, blank lines skipped.
    let ok = write(&dir, "ok.csv", b"x,y\n1,2\n\n3,4.5\n");
    assert_eq!(read_samples(&ok).unwrap(), array![[1.0, 2.0], [3.0, 4.5]]);
    let ragged = write(&dir, "ragged.csv", b"1,2\n3\n");
    let e = read_samples(&ragged).unwrap_err();
    assert!(matches!(e, FormatError::Csv { line: 2, .. }), "{e}");
    assert!(e.to_string().contains("ragged.csv"));
    let nan = write(&dir, "nan.csv", b"1,2\nnan,4\n");
    assert!(matches!(
        read_samples(&nan),
        Err(FormatError::NonFinite { row: 1, col: 0, .. })
    ));
    let text = write(&dir, "text.csv", b"1,2\nthree,4\n");
    assert!(matches!(
        read_samples(&text),
        Err(FormatError::Csv { line: 2, .. })
    ));
    let empty = write(&dir, "empty.csv", b"");
    assert!(matches!(
        read_samples(&empty),
        Err(FormatError::Empty { .. })
    ));
    let header_only = write(&dir, "header.csv", b"a,b\n");
    assert!(matches!(
        read_samples(&header_only),
        Err(FormatError::Empty { .. })
    ));
    assert!(matches!(
        read_samples(&dir.path().join("missing.csv")),
        Err(FormatError::Io { .. })
    ));
    assert!(matches!(
        read_samples(&write(&dir, "x.txt", b"1")),
        Err(FormatError::UnknownExtension { .. })
    ));
    // Cut off in the middle of a number (`4.5` became `4.`): refused, naming the last line,
    // though every field still parses.
    let cut = write(&dir, "cut.csv", b"1,2\n3,4.");
    let e = read_samples(&cut).unwrap_err();
    assert!(matches!(e, FormatError::Csv { line: 2, .. }), "{e}");
    assert!(e.to_string().contains("cut off"), "{e}");
    // Windows line ends are complete lines.
    let crlf = write(&dir, "crlf.csv", b"1,2\r\n3,4\r\n");
    assert_eq!(read_samples(&crlf).unwrap(), array![[1.0, 2.0], [3.0, 4.0]]);

    // NPY: f64 and f32, C and Fortran order, 1-D as one column.
    let a = array![[1.0f64, 2.0], [3.0, 4.0], [5.0, 6.0]];
    let mut buf = Vec::new();
    a.write_npy(&mut buf).unwrap();
    assert_eq!(read_samples(&write(&dir, "c.npy", &buf)).unwrap(), a);
    let mut buf = Vec::new();
    a.t()
        .as_standard_layout()
        .reversed_axes()
        .write_npy(&mut buf)
        .unwrap();
    assert_eq!(read_samples(&write(&dir, "f.npy", &buf)).unwrap(), a);
    let mut buf = Vec::new();
    a.mapv(|v| v as f32).write_npy(&mut buf).unwrap();
    assert_eq!(read_samples(&write(&dir, "f32.npy", &buf)).unwrap(), a);
    let mut buf = Vec::new();
    array![1.0f64, 2.0].write_npy(&mut buf).unwrap();
    assert_eq!(
        read_samples(&write(&dir, "col.npy", &buf)).unwrap(),
        array![[1.0], [2.0]]
    );
    // Truncated data, integer dtype, 3-D array, garbage.
    let mut buf = Vec::new();
    a.write_npy(&mut buf).unwrap();
    let cut = &buf[..buf.len() - 5];
    assert!(matches!(
        read_samples(&write(&dir, "cut.npy", cut)),
        Err(FormatError::Npy { .. })
    ));
    let mut buf = Vec::new();
    array![[1i64, 2]].write_npy(&mut buf).unwrap();
    let e = read_samples(&write(&dir, "int.npy", &buf)).unwrap_err();
    assert!(
        matches!(e, FormatError::Npy { .. }) && e.to_string().contains("int.npy"),
        "{e}"
    );
    let mut buf = Vec::new();
    ndarray::Array3::<f64>::zeros((2, 2, 2))
        .write_npy(&mut buf)
        .unwrap();
    assert!(matches!(
        read_samples(&write(&dir, "3d.npy", &buf)),
        Err(FormatError::Npy { .. })
    ));
    assert!(matches!(
        read_samples(&write(&dir, "junk.npy", b"not numpy")),
        Err(FormatError::Npy { .. })
    ));
    let mut buf = Vec::new();
    array![[1.0f64, f64::INFINITY]].write_npy(&mut buf).unwrap();
    assert!(matches!(
        read_samples(&write(&dir, "inf.npy", &buf)),
        Err(FormatError::NonFinite { row: 0, col: 1, .. })
    ));
}

/// Writers never leave a partial or emptied file: an unknown extension creates nothing and keeps
/// an existing file, and a write that fails part-way leaves the old file whole and no
/// temporary file behind.
#[test]
fn sample_writers_check_first_and_replace_atomically() {
    use midpoint::io::{write_atomically, write_samples};
    let dir = tempfile::tempdir().unwrap();
    let x = array![[1.0, 2.0], [3.0, 4.0]];
    let mine = write(&dir, "mine.dat", b"precious");
    assert!(matches!(
        write_samples(&mine, &x),
        Err(FormatError::UnknownExtension { .. })
    ));
    assert_eq!(std::fs::read(&mine).unwrap(), b"precious");
    let new = dir.path().join("new.txt");
    assert!(write_samples(&new, &x).is_err());
    assert!(!new.exists(), "a refused name is not created");

    let old = dir.path().join("x.csv");
    write_samples(&old, &x).unwrap();
    let before = std::fs::read(&old).unwrap();
    let e = write_atomically(&old, |tmp| {
        std::fs::write(tmp, b"1,2\n3,").unwrap();
        Err("disk full".into())
    })
    .unwrap_err();
    assert!(e.to_string().contains("disk full"), "{e}");
    assert_eq!(std::fs::read(&old).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&old).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
}

/// A `.npy` header that claims more data than the file holds is refused before anything is
/// allocated from it (it used to abort the process with "memory allocation failed").
#[test]
fn npy_headers_claiming_more_than_the_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let header_file = |name: &str, shape: &str, data: &[u8]| {
        let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
        let mut header = dict.into_bytes();
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(b' ');
        }
        header.push(b'\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(data);
        write(&dir, name, &bytes)
    };
    let data: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    // The header is right: read.
    let ok = header_file("ok.npy", "(2, 2)", &data);
    assert_eq!(read_samples(&ok).unwrap(), array![[1.0, 2.0], [3.0, 4.0]]);
    for (name, shape, says) in [
        ("huge.npy", "(1000000000000, 2)", "truncated or corrupt"),
        (
            "short.npy",
            "(3, 2)",
            "needs 48 bytes of data but the file holds 32",
        ),
        (
            "overflow.npy",
            "(18446744073709551615, 18446744073709551615, 18446744073709551615)",
            "overflows",
        ),
    ] {
        let p = header_file(name, shape, &data);
        let e = read_samples(&p).unwrap_err();
        assert!(matches!(e, FormatError::Npy { .. }), "{name}: {e}");
        assert!(e.to_string().contains(says), "{name}: {e}");
    }
}

/// Two discrete laws of 10⁴ points with noise make a mixture of 2·10⁸ components: refused at
/// once with its size (issue 16), where it used to run out of memory building it; without
/// noise the same pair has a closed form and is computed.
#[test]
fn mixtures_too_large_to_build_are_refused() {
    let n = 10_000;
    let pts = |shift: f64| Array2::from_shape_fn((n, 1), |(i, _)| i as f64 * 1e-3 + shift);
    let p0: Law = Discrete::uniform(pts(0.0)).unwrap().into();
    let p1: Law = Discrete::uniform(pts(0.5)).unwrap().into();
    let noisy = StochasticInterpolant::linear(0.1).unwrap();
    let opts = ExactOptions::default();
    for r in [
        d_tmid(&p0, &p1, &noisy, &opts),
        d_mid(&p0, &p1, &noisy, &opts),
    ] {
        assert!(
            matches!(r, Err(DivergenceError::MixtureTooLarge { components }) if components == 2e8),
            "{r:?}"
        );
    }
    let plain = StochasticInterpolant::linear(0.0).unwrap();
    assert!(d_tmid(&p0, &p1, &plain, &opts).is_ok());
}
