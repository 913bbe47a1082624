//! The instruction sets that the vectorized loops — the Rao–Blackwellized Monte Carlo kernel
//! of `D(t)` (Eq. 1) and the random-feature map of the estimator's critic (Prop. 3.3) — are
//! compiled for, the widest of them detected at run time.
//!
//! No loop uses an operation whose rounding depends on the vector width (Rust never contracts
//! `a * b + c` into an FMA on its own), so every instruction set gives the same bits: a seed
//! reproduces its results on any machine (tested in [`super`] and in the Monte Carlo kernel).

/// Instruction sets the vectorized loops are compiled for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Isa {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The widest one this CPU runs.
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq") {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }
}
