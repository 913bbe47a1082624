//! Why an estimate could not be computed ([`EstimateError`]), which input sample set an
//! error is about, and the checks of the inputs (non-empty, finite) that come before any
//! estimate of Eq. 2 or Eq. 8.

use crate::interpolant::InterpolantError;
use ndarray::ArrayView2;

/// Which input sample set an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// `X0`.
    X0,
    /// `X1`.
    X1,
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sample::X0 => "x0",
            Sample::X1 => "x1",
        })
    }
}

/// Why an estimate could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EstimateError {
    /// A sample set without rows or columns.
    #[error("{which}: no samples (the array is {rows}×{cols})")]
    Empty {
        /// Which set.
        which: Sample,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// `X0` and `X1` have different numbers of columns.
    #[error("x0 has dimension {d0} but x1 has dimension {d1}")]
    DimensionMismatch {
        /// Columns of `X0`.
        d0: usize,
        /// Columns of `X1`.
        d1: usize,
    },
    /// A NaN or ±∞ sample value.
    #[error("{which}: non-finite value at row {row}, column {col}")]
    NonFinite {
        /// Which set.
        which: Sample,
        /// 0-based row.
        row: usize,
        /// 0-based column.
        col: usize,
    },
    /// Too few samples for the folds.
    #[error("{which}: {n} samples are too few for {folds} folds (need at least {need}: {per_fold} per fold)")]
    TooFewSamples {
        /// The smaller set.
        which: Sample,
        /// Its size.
        n: usize,
        /// Folds asked for.
        folds: usize,
        /// Samples needed.
        need: usize,
        /// Pairs needed per fold.
        per_fold: usize,
    },
    /// `X0` and `X1` share half or more of the smaller sample's rows, neither repeating its
    /// own ([`overlap`](super::overlap)): not two independent samples.
    #[error("x0 and x1 share {shared} rows (of {n0} and {n1}), and neither repeats a row of its own: they are not two independent samples (the same file twice?); the estimate needs independent samples and shared rows drive it below zero")]
    SharedRows {
        /// Distinct rows found in both.
        shared: usize,
        /// Rows of `X0`.
        n0: usize,
        /// Rows of `X1`.
        n1: usize,
    },
    /// An option out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// From the interpolant.
    #[error(transparent)]
    Interpolant(#[from] InterpolantError),
    /// A linear-algebra failure (e.g. an eigendecomposition did not converge).
    #[error("numerical failure: {0}")]
    Numerical(String),
}

impl EstimateError {
    /// The sample set the error is about, if any (the CLI names its file).
    ///
    /// ```
    /// use midpoint::estimate::{estimate, EstimateError, EstimateOptions, Sample};
    /// let x0 = ndarray::Array2::<f64>::zeros((100, 2));
    /// let mut x1 = x0.clone();
    /// x1[[3, 0]] = f64::NAN;
    /// let e = estimate(x0.view(), x1.view(), &EstimateOptions::default()).unwrap_err();
    /// assert_eq!(e.sample(), Some(Sample::X1));
    /// assert_eq!(e.to_string(), "x1: non-finite value at row 3, column 0");
    /// ```
    pub fn sample(&self) -> Option<Sample> {
        match self {
            EstimateError::Empty { which, .. }
            | EstimateError::NonFinite { which, .. }
            | EstimateError::TooFewSamples { which, .. } => Some(*which),
            _ => None,
        }
    }
}

/// Checks a sample set: non-empty and finite.
pub(crate) fn check_samples(x: ArrayView2<'_, f64>, which: Sample) -> Result<(), EstimateError> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(EstimateError::Empty {
            which,
            rows: x.nrows(),
            cols: x.ncols(),
        });
    }
    if let Some(((row, col), _)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(EstimateError::NonFinite { which, row, col });
    }
    Ok(())
}
