//! The quantiles of the 95% intervals: normal for the conditional standard error and the
//! `D(t)` profile, Student's `t` with `G − 1` degrees of freedom for the jackknife.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The 97.5% quantile of the standard normal law.
pub(crate) const Z95: f64 = 1.959_963_984_540_054;

/// The 97.5% quantile of Student's t with `df` degrees of freedom.
pub(crate) fn student_t_975(df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df.max(1) as f64)
        .map(|t| t.inverse_cdf(0.975))
        .unwrap_or(Z95)
}
