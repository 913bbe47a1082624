//! The error type of field, divergence and estimator computations.

use crate::interpolant::InterpolantError;
use crate::law::LawError;

/// Why a displacement field, divergence or Monte Carlo estimate could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DivergenceError {
    /// `p0` and `p1` live in different dimensions.
    #[error("p0 has dimension {d0} but p1 has dimension {d1}")]
    DimensionMismatch {
        /// Dimension of `p0`.
        d0: usize,
        /// Dimension of `p1`.
        d1: usize,
    },
    /// A point passed to the field has the wrong length.
    #[error("point has {got} coordinates, the laws have dimension {expected}")]
    PointDimension {
        /// Law dimension.
        expected: usize,
        /// Point length.
        got: usize,
    },
    /// `t` is NaN or outside its range.
    #[error("t = {t} is outside [{lo}, {hi}]")]
    TimeOutOfRange {
        /// The time given.
        t: f64,
        /// Lower end.
        lo: f64,
        /// Upper end.
        hi: f64,
    },
    /// A point with a NaN or ±∞ coordinate.
    #[error("point has a non-finite coordinate")]
    NonFinitePoint,
    /// The field was asked for at a point where `X̃_t` has no mass (an atomic law off its atoms).
    #[error("the field is undefined here: X̃_t has no mass at this point (atomic law)")]
    OutsideSupport,
    /// Too few Monte Carlo samples for a standard error.
    #[error("need at least {min} Monte Carlo samples, got {n}")]
    TooFewSamples {
        /// Samples asked for.
        n: usize,
        /// Minimum.
        min: usize,
    },
    /// A user-supplied function returned NaN or ±∞.
    #[error("the critic f returned a non-finite value")]
    NonFiniteCritic,
    /// `X̃_t` is a mixture too large to hold: every exact route and the Monte Carlo fallback
    /// (which evaluates the exact field) would need it in memory.
    #[error(
        "X̃_t is a mixture of {components:.2e} components (two discrete laws with noise): too \
         large for the exact field; estimate the divergence from samples (midpoint estimate)"
    )]
    MixtureTooLarge {
        /// Components of the mixture at a generic time.
        components: f64,
    },
    /// A tolerance or option out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// From the interpolant.
    #[error(transparent)]
    Interpolant(#[from] InterpolantError),
    /// From a law.
    #[error(transparent)]
    Law(#[from] LawError),
}

/// Checks `t ∈ [lo, hi]` (and not NaN).
pub(crate) fn check_time(t: f64, lo: f64, hi: f64) -> Result<(), DivergenceError> {
    if t >= lo && t <= hi {
        Ok(())
    } else {
        Err(DivergenceError::TimeOutOfRange { t, lo, hi })
    }
}

/// Checks both laws have the same dimension and returns it.
pub(crate) fn check_dims(
    p0: &crate::law::Law,
    p1: &crate::law::Law,
) -> Result<usize, DivergenceError> {
    let (d0, d1) = (p0.dim(), p1.dim());
    if d0 != d1 {
        return Err(DivergenceError::DimensionMismatch { d0, d1 });
    }
    Ok(d0)
}
