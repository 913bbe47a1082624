//! Rows shared by `X0` and `X1`.
//!
//! The estimate needs two independent samples: its held-out terms share no sample with the
//! critic's training data only because the folds cut `X0` and `X1` separately (step 2 of the
//! procedure, Prop. 3.3). A row present in both sets is in a critic's training pairs and in
//! its held-out pairs at once, the critic fits it, and the held-out cross term goes negative:
//! one file given as both samples (`N(0, I_2000)`, 1000 rows) gave −481 ± 13 for a divergence
//! that cannot be negative.
//!
//! Data from a discrete law repeat rows within each sample, and then shared rows between the
//! samples are expected, not a sign of reuse; so the check applies only when neither sample
//! repeats a row of its own (continuous data, where two independent draws never coincide).
//! Then half or more of the smaller sample shared is refused ([`EstimateError::SharedRows`]),
//! and fewer shared rows give a warning.

use super::error::EstimateError;
use super::warnings::{self, Warning};
use ndarray::ArrayView2;
use std::collections::HashSet;

/// A row as bit patterns, `−0.0` read as `0.0` (the same number).
fn key(row: ndarray::ArrayView1<'_, f64>) -> Vec<u64> {
    row.iter().map(|&v| (v + 0.0).to_bits()).collect()
}

/// How many rows a sample repeats (rows equal to an earlier row), and its distinct rows.
fn distinct(x: ArrayView2<'_, f64>) -> (usize, HashSet<Vec<u64>>) {
    let mut seen = HashSet::with_capacity(x.nrows());
    let repeats = x
        .rows()
        .into_iter()
        .filter(|r| !seen.insert(key(*r)))
        .count();
    (repeats, seen)
}

/// The rows of `x1` that are rows of `x0` (counting each distinct row once), if neither
/// sample repeats a row of its own; `None` when one does (the check does not apply).
pub(crate) fn shared_rows(x0: ArrayView2<'_, f64>, x1: ArrayView2<'_, f64>) -> Option<usize> {
    let (r0, rows0) = distinct(x0);
    if r0 > 0 {
        return None;
    }
    let mut shared = HashSet::new();
    let mut seen1 = HashSet::with_capacity(x1.nrows());
    for r in x1.rows() {
        let k = key(r);
        if !seen1.insert(k.clone()) {
            return None;
        }
        if rows0.contains(&k) {
            shared.insert(k);
        }
    }
    Some(shared.len())
}

/// Refuses samples that share half or more of the smaller one's rows; warns for fewer.
pub(crate) fn check_independent(
    x0: ArrayView2<'_, f64>,
    x1: ArrayView2<'_, f64>,
) -> Result<Option<Warning>, EstimateError> {
    let (n0, n1) = (x0.nrows(), x1.nrows());
    match shared_rows(x0, x1) {
        Some(s) if 2 * s >= n0.min(n1) => Err(EstimateError::SharedRows { shared: s, n0, n1 }),
        Some(s) if s > 0 => Ok(Some(warnings::shared_rows(s, n0, n1))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::warnings::WarningKind;
    use ndarray::Array2;

    fn distinct_rows(n: usize, d: usize, offset: f64) -> Array2<f64> {
        Array2::from_shape_fn((n, d), |(i, j)| offset + (i * d + j) as f64 * 0.37)
    }

    #[test]
    fn the_same_sample_twice_is_refused() {
        // The case: one file as both inputs. −0.0 and 0.0 are one number.
        let mut x = distinct_rows(100, 3, 0.0);
        let mut y = x.clone();
        x[[0, 0]] = -0.0;
        y[[0, 0]] = 0.0;
        let e = check_independent(x.view(), y.view()).unwrap_err();
        assert_eq!(
            e,
            EstimateError::SharedRows {
                shared: 100,
                n0: 100,
                n1: 100
            }
        );
        // A subset of the other sample is refused too (half of the smaller one).
        let half = x.slice(ndarray::s![..50, ..]).to_owned();
        let other = distinct_rows(50, 3, 1e6);
        let sub = ndarray::concatenate![ndarray::Axis(0), half, other];
        assert!(check_independent(x.view(), sub.view()).is_err());
    }

    #[test]
    fn a_few_shared_rows_warn_and_none_pass() {
        let x = distinct_rows(100, 3, 0.0);
        let mut y = distinct_rows(100, 3, 1e6);
        assert_eq!(check_independent(x.view(), y.view()).unwrap(), None);
        y.row_mut(7).assign(&x.row(3));
        y.row_mut(9).assign(&x.row(4));
        let w = check_independent(x.view(), y.view()).unwrap().unwrap();
        assert_eq!(w.kind, WarningKind::SharedRows);
        assert!(
            w.message
                .starts_with("x0 and x1 share 2 rows (of 100 and 100)"),
            "{w}"
        );
    }

    #[test]
    fn discrete_samples_that_repeat_rows_are_not_checked() {
        // Two independent samples of a law with 3 atoms share all their values; that is not
        // reuse, and must not be refused.
        let x = Array2::from_shape_fn((60, 1), |(i, _)| (i % 3) as f64);
        let y = Array2::from_shape_fn((60, 1), |(i, _)| ((i + 1) % 3) as f64);
        assert_eq!(shared_rows(x.view(), y.view()), None);
        assert_eq!(check_independent(x.view(), y.view()).unwrap(), None);
    }
}
