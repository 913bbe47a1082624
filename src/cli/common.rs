//! What several subcommands share: printing a line to a stdout that may be closed
//! ([`outln!`]), and the `--interpolant` and `--sigma` arguments (Eq. 6–7, `σ_t =
//! sqrt(σ·t(1−t))`), and the check that an output file can be written before any work
//! ([`check_writable`]).

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

/// Refuses, before any work is done, an output `path` that could not be written at the end: a
/// folder, a missing folder, or one this user cannot create files in (tried with a temporary
/// file, removed at once). Writing can still fail later (a full disk), which callers report
/// after printing what they computed.
pub(crate) fn check_writable(path: &std::path::Path, flag: &str) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!("{flag} {}: is a folder; give a file name", path.display());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "{flag} {}: the folder {} does not exist",
            path.display(),
            dir.display()
        );
    }
    tempfile::Builder::new()
        .prefix(".midpoint-write-check")
        .tempfile_in(dir)
        .map_err(|e| {
            anyhow::anyhow!(
                "{flag} {}: cannot create files in {}: {e}",
                path.display(),
                dir.display()
            )
        })?;
    Ok(())
}
