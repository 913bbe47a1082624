//! Memory checks before large allocations, so that an impossible size ends in a clear error
//! instead of an abort ("memory allocation of … bytes failed", exit 134).
//!
//! Rust aborts the process when an allocation fails; nothing can catch it afterwards. So the
//! commands that allocate from a user's number (`sample -n`) or from a file's header (`.npy`
//! shapes) compute the bytes first, with overflow checks, and compare them with the memory
//! the system says is available (`MemAvailable` of `/proc/meminfo` on Linux; elsewhere only
//! overflow is caught).

/// Why a size was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourceError {
    /// The size does not fit in 128 bits of bytes (or in the address space).
    #[error("{what}: the size overflows ({detail})")]
    Overflow {
        /// What would have been allocated.
        what: String,
        /// The numbers that overflowed.
        detail: String,
    },
    /// More memory than the system has available.
    #[error("{what} needs {} but only {} of memory is available", human_bytes(*bytes), human_bytes(u128::from(*available)))]
    TooLarge {
        /// What would have been allocated.
        what: String,
        /// Bytes it needs.
        bytes: u128,
        /// Bytes available.
        available: u64,
    },
}

/// `MemAvailable` in bytes (Linux), `None` where it cannot be read.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The bytes of `count` items of `item_bytes` each, refused when the product overflows or
/// exceeds the available memory.
pub fn check_fits(what: &str, count: &[u128], item_bytes: u128) -> Result<u128, ResourceError> {
    let overflow = || ResourceError::Overflow {
        what: what.to_string(),
        detail: format!(
            "{} items of {item_bytes} bytes",
            count
                .iter()
                .map(u128::to_string)
                .collect::<Vec<_>>()
                .join(" × ")
        ),
    };
    let bytes = count
        .iter()
        .try_fold(item_bytes, |acc, &c| acc.checked_mul(c))
        .ok_or_else(overflow)?;
    if bytes > isize::MAX as u128 {
        return Err(overflow());
    }
    match available_memory() {
        Some(available) if bytes > u128::from(available) => Err(ResourceError::TooLarge {
            what: what.to_string(),
            bytes,
            available,
        }),
        _ => Ok(bytes),
    }
}

/// `12.3 GiB`-style sizes (binary units).
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_that_cannot_exist_are_refused_and_small_ones_pass() {
        assert_eq!(check_fits("x", &[1000, 2], 8), Ok(16_000));
        assert!(matches!(
            check_fits("x", &[u128::MAX, 2], 8),
            Err(ResourceError::Overflow { .. })
        ));
        // 1e14 samples of dimension 2: 1.6 PB, more than any machine has.
        let e = check_fits("1e14 samples", &[100_000_000_000_000, 2], 8).unwrap_err();
        if available_memory().is_some() {
            assert!(matches!(e, ResourceError::TooLarge { .. }), "{e}");
            assert!(e.to_string().contains("PiB"), "{e}");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
