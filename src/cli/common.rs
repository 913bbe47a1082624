//! What several subcommands share: printing a line to a stdout that may be closed
//! ([`outln!`]), and the `--interpolant` and `--sigma` arguments (Eq. 6–7, `σ_t =
//! sqrt(σ·t(1−t))`).

/// Seconds as `20 s`, `12 min`, `3.5 h`, `40 days` (the up-front cost lines of `exact` and
/// `estimate`).
pub(crate) fn duration(s: f64) -> String {
    match s {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.0} days", s / 86_400.0),
    }
}

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

/// Progress off a terminal: the percentage reached, if `done` of `total` units passed a new
/// tenth since `tenth` (which is advanced), and the seconds left at the rate of the `spent`
/// seconds so far (units assumed to cost alike). Shared by `estimate` and `exact`, which
/// word their lines differently.
pub fn tenth_passed(done: u64, total: u64, tenth: &mut u64, spent: f64) -> Option<(u64, f64)> {
    let done = done.min(total);
    let now = (done * 10).checked_div(total).unwrap_or(10);
    if now <= *tenth {
        return None;
    }
    *tenth = now;
    let left = spent * (total - done) as f64 / done.max(1) as f64;
    Some((now * 10, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_sensible_units() {
        assert_eq!(duration(20.4), "20 s");
        assert_eq!(duration(720.0), "12 min");
        assert_eq!(duration(12_600.0), "3.5 h");
        assert_eq!(duration(3_456_000.0), "40 days");
    }
}
