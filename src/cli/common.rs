//! What several subcommands share: printing a line to a stdout that may be closed
//! ([`outln!`]), and the `--interpolant` and `--sigma` arguments (Eq. 6–7, `σ_t =
//! sqrt(σ·t(1−t))`).

/// `println!` that reports a closed stdout as an error instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::common::emit(format_args!($($arg)*)) };
}

/// Writes one line to stdout; a closed pipe (`midpoint demo | head`) surfaces as an error
/// that `main` treats as a normal end rather than a panic.
pub(crate) fn emit(line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// `linear` or `trig` plus `σ` → the stochastic interpolant.
pub(crate) fn interpolant(
    name: &str,
    sigma: f64,
) -> anyhow::Result<midpoint::StochasticInterpolant> {
    Ok(midpoint::StochasticInterpolant::new(
        midpoint::Interpolant::from_name(name)?,
        midpoint::NoiseSchedule::sqrt_bridge(sigma)?,
    ))
}
