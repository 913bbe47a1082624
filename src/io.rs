//! File formats: endpoint laws as JSON, sample sets as `.npy` or CSV.
//!
//! Law files are exactly `{"kind":"gaussian","mean":[..],"cov":[[..],..]}` or
//! `{"kind":"discrete","points":[[..],..],"weights":[..]}` (unknown fields are refused so that
//! typos do not pass silently). Sample files hold one sample per row: `.npy` with dtype
//! `f8`/`f4` in C or Fortran order (a 1-D array is one column), or CSV with an optional header
//! row. Every error names the file and the problem.

use crate::law::{Discrete, Gaussian, Law, LawError};
use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyError, ReadNpyExt, WriteNpyExt};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Opening, reading or writing failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        message: String,
    },
    /// Malformed JSON or a JSON law of the wrong shape.
    #[error("{path}: invalid law JSON: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The JSON parsed but the law is invalid.
    #[error("{path}: {source}")]
    Law {
        /// The file.
        path: PathBuf,
        /// Why the law was refused.
        source: LawError,
    },
    /// Malformed `.npy`.
    #[error("{path}: invalid .npy file: {message}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Malformed CSV.
    #[error("{path}: line {line}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A NaN or ±∞ sample value.
    #[error("{path}: non-finite value at row {row}, column {col}")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// 0-based row.
        row: usize,
        /// 0-based column.
        col: usize,
    },
    /// No samples.
    #[error("{path}: no samples")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Neither `.npy` nor `.csv`.
    #[error("{path}: unknown extension (expected .npy or .csv)")]
    UnknownExtension {
        /// The file.
        path: PathBuf,
    },
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum LawSpec {
    Gaussian {
        mean: Vec<f64>,
        cov: Vec<Vec<f64>>,
    },
    Discrete {
        points: Vec<Vec<f64>>,
        weights: Vec<f64>,
    },
}

fn rows_to_array(rows: &[Vec<f64>], what: &'static str) -> Result<Array2<f64>, LawError> {
    let n = rows.len();
    let d = rows.first().map_or(0, |r| r.len());
    for (row, r) in rows.iter().enumerate() {
        if r.len() != d {
            return Err(match what {
                "cov" => LawError::CovarianceShape {
                    rows: n,
                    cols: r.len(),
                    dim: d,
                },
                _ => LawError::RaggedPoints {
                    row,
                    len: r.len(),
                    dim: d,
                },
            });
        }
    }
    Ok(Array2::from_shape_fn((n, d), |(i, j)| rows[i][j]))
}

/// Parses a law from JSON text (see the module docs for the format).
///
/// ```
/// let law = midpoint::io::law_from_json(
///     r#"{"kind":"discrete","points":[[0.0],[1.0]],"weights":[0.5,0.5]}"#).unwrap();
/// assert_eq!(law.dim(), 1);
/// assert!(midpoint::io::law_from_json(r#"{"kind":"gaussian","mean":[0]}"#).is_err());
/// ```
pub fn law_from_json(text: &str) -> Result<Law, FormatError> {
    parse_law(text, Path::new("<json>"))
}

fn parse_law(text: &str, path: &Path) -> Result<Law, FormatError> {
    let spec: LawSpec = serde_json::from_str(text).map_err(|e| FormatError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let law_err = |source| FormatError::Law {
        path: path.to_path_buf(),
        source,
    };
    match spec {
        LawSpec::Gaussian { mean, cov } => {
            let cov = rows_to_array(&cov, "cov").map_err(law_err)?;
            Ok(Gaussian::new(Array1::from(mean), cov)
                .map_err(law_err)?
                .into())
        }
        LawSpec::Discrete { points, weights } => {
            let points = rows_to_array(&points, "points").map_err(law_err)?;
            Ok(Discrete::new(points, Array1::from(weights))
                .map_err(law_err)?
                .into())
        }
    }
}

/// Reads a law from a JSON file.
pub fn read_law(path: &Path) -> Result<Law, FormatError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    parse_law(&text, path)
}

/// The JSON text of a law (the format [`law_from_json`] reads).
///
/// ```
/// use midpoint::law::{Gaussian, Law};
/// let law: Law = Gaussian::isotropic(ndarray::array![1.0], 2.0).unwrap().into();
/// let text = midpoint::io::law_to_json(&law);
/// assert_eq!(text, r#"{"kind":"gaussian","mean":[1.0],"cov":[[2.0]]}"#);
/// ```
pub fn law_to_json(law: &Law) -> String {
    let rows = |a: ndarray::ArrayView2<'_, f64>| -> Vec<Vec<f64>> {
        a.rows().into_iter().map(|r| r.to_vec()).collect()
    };
    let spec = match law {
        Law::Gaussian(g) => LawSpec::Gaussian {
            mean: g.mean().to_vec(),
            cov: rows(g.cov()),
        },
        Law::Discrete(p) => LawSpec::Discrete {
            points: rows(p.points()),
            weights: p.weights().to_vec(),
        },
    };
    serde_json::to_string(&spec).expect("laws serialize")
}

fn io_err(path: &Path, e: std::io::Error) -> FormatError {
    FormatError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn npy_err(path: &Path, e: ReadNpyError) -> FormatError {
    let message = match e {
        ReadNpyError::WrongDescriptor(d) => {
            format!("dtype {d} is not supported (use float64 or float32)")
        }
        ReadNpyError::WrongNdim(want, got) => {
            format!("array has {got} dimensions, expected {want:?} (samples × dimension)")
        }
        ReadNpyError::MissingData => "file is truncated (fewer values than the header says)".into(),
        ReadNpyError::ExtraBytes(n) => format!("{n} unexpected bytes after the data"),
        other => other.to_string(),
    };
    FormatError::Npy {
        path: path.to_path_buf(),
        message,
    }
}

fn read_npy(path: &Path) -> Result<Array2<f64>, FormatError> {
    let open = || {
        File::open(path)
            .map(BufReader::new)
            .map_err(|e| io_err(path, e))
    };
    match Array2::<f64>::read_npy(open()?) {
        Ok(a) => return Ok(a),
        Err(ReadNpyError::WrongDescriptor(_)) | Err(ReadNpyError::WrongNdim(_, _)) => {}
        Err(e) => return Err(npy_err(path, e)),
    }
    if let Ok(a) = Array2::<f32>::read_npy(open()?) {
        return Ok(a.mapv(f64::from));
    }
    if let Ok(a) = Array1::<f64>::read_npy(open()?) {
        let n = a.len();
        return Ok(a.into_shape_with_order((n, 1)).expect("column"));
    }
    match Array1::<f32>::read_npy(open()?) {
        Ok(a) => {
            let n = a.len();
            Ok(a.mapv(f64::from)
                .into_shape_with_order((n, 1))
                .expect("column"))
        }
        Err(_) => Err(npy_err(path, Array2::<f64>::read_npy(open()?).unwrap_err())),
    }
}

fn read_csv(path: &Path) -> Result<Array2<f64>, FormatError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(File::open(path).map_err(|e| io_err(path, e))?);
    let mut values = Vec::new();
    let mut dim = None;
    let mut rows = 0usize;
    let mut first = true;
    for (k, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| FormatError::Csv {
            path: path.to_path_buf(),
            line: e.position().map_or(k as u64 + 1, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = rec.position().map_or(k as u64 + 1, |p| p.line());
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        let is_first = std::mem::replace(&mut first, false);
        let parsed: Result<Vec<f64>, _> = rec.iter().map(|f| f.parse::<f64>()).collect();
        let parsed = match parsed {
            Ok(p) => p,
            // A first row that does not parse is a header.
            Err(_) if is_first => continue,
            Err(_) => {
                let bad = rec.iter().find(|f| f.parse::<f64>().is_err()).unwrap_or("");
                return Err(FormatError::Csv {
                    path: path.to_path_buf(),
                    line,
                    message: format!("{bad:?} is not a number"),
                });
            }
        };
        match dim {
            None => dim = Some(parsed.len()),
            Some(d) if d != parsed.len() => {
                return Err(FormatError::Csv {
                    path: path.to_path_buf(),
                    line,
                    message: format!("row has {} fields, expected {d}", parsed.len()),
                })
            }
            _ => {}
        }
        values.extend(parsed);
        rows += 1;
    }
    let d = dim.unwrap_or(0);
    Ok(Array2::from_shape_vec((rows, d), values).expect("rectangular"))
}

/// Reads a sample set (`.npy` or `.csv`, one sample per row) and checks it is non-empty and
/// finite.
pub fn read_samples(path: &Path) -> Result<Array2<f64>, FormatError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let a = match ext.as_deref() {
        Some("npy") => read_npy(path)?,
        Some("csv") => read_csv(path)?,
        _ => {
            return Err(FormatError::UnknownExtension {
                path: path.to_path_buf(),
            })
        }
    };
    if a.nrows() == 0 || a.ncols() == 0 {
        return Err(FormatError::Empty {
            path: path.to_path_buf(),
        });
    }
    if let Some(((row, col), _)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(FormatError::NonFinite {
            path: path.to_path_buf(),
            row,
            col,
        });
    }
    Ok(a)
}

/// Writes a sample set as `.npy` (float64, C order) or CSV (no header, full precision).
pub fn write_samples(path: &Path, samples: &Array2<f64>) -> Result<(), FormatError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let file = File::create(path).map_err(|e| io_err(path, e))?;
    let mut w = BufWriter::new(file);
    match ext.as_deref() {
        Some("npy") => samples
            .as_standard_layout()
            .write_npy(&mut w)
            .map_err(|e| FormatError::Io {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?,
        Some("csv") => {
            for row in samples.rows() {
                let line: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
                writeln!(w, "{}", line.join(",")).map_err(|e| io_err(path, e))?;
            }
        }
        _ => {
            return Err(FormatError::UnknownExtension {
                path: path.to_path_buf(),
            })
        }
    }
    w.flush().map_err(|e| io_err(path, e))
}
