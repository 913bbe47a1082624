//! The instruction sets that the vectorized loops — the Rao–Blackwellized Monte Carlo kernel
//! of `D(t)` (Eq. 1) and the random-feature map of the estimator's critic (Prop. 3.3) — are
//! compiled for, and [`on_isa!`], which builds one loop for each and runs the one asked for.
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

/// `on_isa!(isa, body[generics](arg: Type, …) -> Ret)` calls `body(arg, …)` compiled for
/// `isa`, which the caller must have checked the CPU runs ([`Isa::detect`]): it defines an
/// AVX-512 and an AVX2 copy of the call (`body` must be `#[inline(always)]`, so that it is
/// compiled inside each) and takes the baseline build otherwise. Used as the tail expression
/// of a function whose parameters are the listed arguments.
macro_rules! on_isa {
    ($isa:expr, $body:ident[$($gen:tt)*]($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?) => {{
        #[cfg(target_arch = "x86_64")]
        {
            use $crate::vecmath::Isa;
            #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
            unsafe fn avx512<$($gen)*>($($arg: $ty),*) $(-> $ret)? {
                $body($($arg),*)
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<$($gen)*>($($arg: $ty),*) $(-> $ret)? {
                $body($($arg),*)
            }
            match $isa {
                // SAFETY: `Isa::detect` found the features on this CPU.
                Isa::Avx512 => return unsafe { avx512($($arg),*) },
                // SAFETY: as above.
                Isa::Avx2 => return unsafe { avx2($($arg),*) },
                Isa::Baseline => {}
            }
        }
        let _ = $isa;
        $body($($arg),*)
    }};
}
pub(crate) use on_isa;
