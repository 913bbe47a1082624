//! File formats: endpoint laws as JSON, sample sets as `.npy` or CSV.
//!
//! Law files are exactly `{"kind":"gaussian","mean":[..],"cov":[[..],..]}` or
//! `{"kind":"discrete","points":[[..],..],"weights":[..]}` (unknown fields are refused so that
//! typos do not pass silently). Sample files hold one sample per row: `.npy` with dtype
//! `f8`/`f4` in C or Fortran order (a 1-D array is one column), or CSV with an optional header
//! row. Every error names the file and the problem.
//!
//! Every file is written atomically ([`write_atomically`]): a kill or a full disk never leaves a
//! partial file under the final name, nor replaces an old file with a partial one.

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

/// Checks a `.npy` header's shape against the file's length and the available memory before
/// anything is allocated from it: a header that claims more data than the file holds (a
/// truncated or corrupt file, or a hostile one) would otherwise make the reader allocate the
/// claimed size and abort the process. A header this cannot parse is left to the reader,
/// which reports it.
fn check_npy_header(path: &Path) -> Result<(), FormatError> {
    use std::io::Read;
    let npy = |message: String| FormatError::Npy {
        path: path.to_path_buf(),
        message,
    };
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let len = f.metadata().map_err(|e| io_err(path, e))?.len();
    let mut head = [0u8; 12];
    if len < 12 || f.read_exact(&mut head).is_err() || &head[..6] != b"\x93NUMPY" {
        return Ok(());
    }
    let (header_len, start) = match head[6] {
        1 => (u64::from(u16::from_le_bytes([head[8], head[9]])), 10u64),
        2 | 3 => (
            u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]])),
            12,
        ),
        _ => return Ok(()),
    };
    if start + header_len > len {
        return Err(npy(format!(
            "the header claims {header_len} bytes but the file has {len}: it is truncated"
        )));
    }
    let mut header = vec![0u8; header_len.min(1 << 20) as usize];
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut skip = vec![0u8; start as usize];
    f.read_exact(&mut skip)
        .and_then(|_| f.read_exact(&mut header))
        .map_err(|e| io_err(path, e))?;
    let header = String::from_utf8_lossy(&header);
    let item = header
        .split("'descr'")
        .nth(1)
        .and_then(|r| r.split('\'').nth(1))
        .and_then(|d| d.trim_start_matches(['<', '>', '|', '=']).get(1..))
        .and_then(|n| n.parse::<u128>().ok());
    let shape = header
        .split("'shape'")
        .nth(1)
        .and_then(|r| Some(&r[r.find('(')? + 1..r.find(')')?]))
        .map(|inner| {
            inner
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| t.parse::<u128>().ok())
                .collect::<Option<Vec<u128>>>()
        });
    let (Some(item), Some(Some(shape))) = (item, shape) else {
        return Ok(());
    };
    let shown = shape
        .iter()
        .map(u128::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let data = u128::from(len - start - header_len);
    let need = shape
        .iter()
        .try_fold(item, |acc, &c| acc.checked_mul(c))
        .ok_or_else(|| npy(format!("the header's shape ({shown}) overflows")))?;
    if need > data {
        return Err(npy(format!(
            "the header's shape ({shown}) needs {need} bytes of data but the file holds {data}: it is truncated or corrupt"
        )));
    }
    crate::resources::check_fits(&format!("{} ({shown})", path.display()), &shape, item)
        .map_err(|e| npy(e.to_string()))?;
    Ok(())
}

fn read_npy(path: &Path) -> Result<Array2<f64>, FormatError> {
    check_npy_header(path)?;
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
    refuse_cut_off(path)?;
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

/// Refuses a text file whose last line has no line end. Every CSV writer we know of (ours,
/// numpy's `savetxt`, pandas, spreadsheets) ends each line, so a missing last line end means
/// the file was cut off, perhaps in the middle of a number that would still parse (`0.123`
/// cut to `0.1`): reading it would give a silently wrong sample.
fn refuse_cut_off(path: &Path) -> Result<(), FormatError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let len = f.metadata().map_err(|e| io_err(path, e))?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8];
    f.seek(SeekFrom::End(-1))
        .and_then(|_| f.read_exact(&mut last))
        .map_err(|e| io_err(path, e))?;
    if last[0] == b'\n' || last[0] == b'\r' {
        return Ok(());
    }
    f.rewind().map_err(|e| io_err(path, e))?;
    let mut lines = 1u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Err(FormatError::Csv {
        path: path.to_path_buf(),
        line: lines,
        message: "the last line has no line end, so the file looks cut off (a number in it may \
                  have lost digits); if the file is complete, end it with a newline"
            .into(),
    })
}

/// The two sample-file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// `.npy`.
    Npy,
    /// `.csv`.
    Csv,
}

/// The format of a sample file by its extension (`.npy` or `.csv`, any case); any other name
/// is an [`FormatError::UnknownExtension`]. Writers call it before touching the file.
pub fn check_extension(path: &Path) -> Result<SampleFormat, FormatError> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("npy") => Ok(SampleFormat::Npy),
        Some("csv") => Ok(SampleFormat::Csv),
        _ => Err(FormatError::UnknownExtension {
            path: path.to_path_buf(),
        }),
    }
}

/// Writes a sample set as `.npy` (float64, C order) or CSV (no header, full precision, every
/// line ended), atomically ([`write_atomically`]). The extension is checked first: an unknown
/// one creates nothing and leaves an existing file alone.
pub fn write_samples(path: &Path, samples: &Array2<f64>) -> Result<(), FormatError> {
    let csv = check_extension(path)? == SampleFormat::Csv;
    write_atomically(path, |tmp| {
        let file = File::create(tmp).map_err(|e| e.to_string())?;
        let mut w = BufWriter::new(file);
        if csv {
            for row in samples.rows() {
                let line: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
                writeln!(w, "{}", line.join(",")).map_err(|e| e.to_string())?;
            }
        } else {
            samples
                .as_standard_layout()
                .write_npy(&mut w)
                .map_err(|e| e.to_string())?;
        }
        w.flush().map_err(|e| e.to_string())
    })
}

/// Refuses, before any work is done, an output `path` that could not be written at the end: a
/// folder, a missing folder, or one this user cannot create files in (tried with a temporary
/// file, removed at once). `flag` names the option in the message. Writing can still fail
/// later (a full disk); callers then report it after printing what they computed.
pub fn check_writable(path: &Path, flag: &str) -> Result<(), FormatError> {
    let fail = |message: String| FormatError::Io {
        path: path.to_path_buf(),
        message: format!("{flag}: {message}"),
    };
    if path.is_dir() {
        return Err(fail("is a folder; give a file name".into()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(fail(format!("the folder {} does not exist", dir.display())));
    }
    tempfile::Builder::new()
        .prefix(".midpoint-write-check")
        .tempfile_in(dir)
        .map_err(|e| fail(format!("cannot create files in {}: {e}", dir.display())))?;
    Ok(())
}

/// Writes `path` through a temporary file in the same folder: `write` gets the temporary
/// file's path (which keeps `path`'s extension, for writers that choose a format by it) and
/// writes it whole; the file is then synced and renamed over `path`. So a kill, a full disk or
/// a failing `write` leaves `path` as it was (absent, or the old file), never partial, and no
/// temporary file behind. An existing file's permissions are kept; a new one gets 0644 (Unix).
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), FormatError> {
    let fail = |message: String| FormatError::Io {
        path: path.to_path_buf(),
        message,
    };
    let name = path
        .file_name()
        .ok_or_else(|| fail("not a file name".into()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let suffix = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(&suffix)
        .tempfile_in(dir)
        .map_err(|e| fail(e.to_string()))?;
    write(tmp.path()).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o644);
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
            .map_err(|e| fail(e.to_string()))?;
    }
    // `write` may have reopened the file by name; the inode is the same.
    File::open(tmp.path())
        .and_then(|f| f.sync_all())
        .map_err(|e| fail(e.to_string()))?;
    tmp.persist(path).map_err(|e| fail(e.error.to_string()))?;
    Ok(())
}
