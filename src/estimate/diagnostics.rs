//! Diagnostics behind `docs/two-sample.md` (cargo feature `diagnostics`): the exact sign-flip
//! test, whose critics are refitted under every sign vector (Prop. 3.2), beside the naive
//! randomization that holds them fixed.

use ndarray::ArrayView2;

use super::crossfit;
use super::error::{check_samples, EstimateError, Sample};
use super::options::EstimateOptions;
use super::signflip;

/// p-values of the exact (refitted) sign-flip test and of the naive one that flips held-out
/// terms with the critics held fixed, on the same data and sign vectors. Used by the
/// calibration report (`examples/report`) to show why the refit is needed.
pub fn signflip_diagnostics(
    x0: ArrayView2<'_, f64>,
    x1: ArrayView2<'_, f64>,
    opts: &EstimateOptions,
) -> Result<(f64, f64), EstimateError> {
    opts.validate()?;
    check_samples(x0, Sample::X0)?;
    check_samples(x1, Sample::X1)?;
    let fit = crossfit::run(
        x0,
        x1,
        opts,
        crossfit::Needs {
            q: true,
            jackknife: false,
        },
        &|_| {},
    )?;
    let q = fit.quadratic.as_ref().expect("Q requested");
    let exact = signflip::test(q, opts.resamples(), opts.seed, &|_| {});
    Ok((
        exact.p_value,
        signflip::fixed_critic_p_value(q, opts.resamples(), opts.seed),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::estimate;
    use ndarray::Array2;

    /// The exact p-value is the one `estimate` reports for the same data, options and seed
    /// (the same `Q` and sign vectors; the jackknife, off here, changes only the order of the
    /// sums in `Q`, and ties within rounding count either way), and both p-values are of the
    /// form `(1 + count)/(B + 1)`. Would catch the diagnostics drifting from the test they are
    /// meant to diagnose.
    #[test]
    fn exact_p_value_is_the_estimates() {
        let x0 = Array2::from_shape_fn((150, 2), |(i, j)| ((i * 37 + j * 11) % 101) as f64 / 25.0);
        let x1 = Array2::from_shape_fn((150, 2), |(i, j)| ((i * 53 + j * 7) % 97) as f64 / 25.0);
        let opts = EstimateOptions {
            resamples: Some(99),
            seed: 4,
            ..EstimateOptions::default()
        };
        let (exact, naive) = signflip_diagnostics(x0.view(), x1.view(), &opts).unwrap();
        let reported = estimate(x0.view(), x1.view(), &opts).unwrap().p_value;
        assert_eq!(Some(exact), reported);
        for p in [exact, naive] {
            let count = p * 100.0 - 1.0;
            assert!((0.0..=99.0).contains(&count), "{p}");
            assert!((count - count.round()).abs() < 1e-9, "{p}");
        }
    }
}
