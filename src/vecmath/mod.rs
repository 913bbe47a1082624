//! Straight-line arithmetic for the block Monte Carlo kernel of `D(t)` (Eq. 1;
//! `montecarlo::fast_path`): eight interleaved xoshiro256++ streams, Box–Muller normals,
//! `exp` and `ln`; and the `cos` of the random features of the estimator's critic
//! (Prop. 3.3). [`isa`] says which instruction sets the loops over them are compiled for.
//!
//! Why by hand: `rand_distr`'s ziggurat and libm's `exp`/`ln` are scalar and branchy, so a loop
//! over a block of draws that calls them cannot be vectorized, and they cost most of a draw's
//! time. Everything here is branch-free code on `f64`/`u64` lanes (selects, not jumps) that
//! the compiler turns into vector instructions for whatever the caller's target features
//! allow. Rust never fuses `a * b + c` into an FMA on its own, so every function returns the
//! same bits on every instruction set: the block kernel is bit-identical with or without
//! AVX-512 (tested in `montecarlo::fast_path`).
//!
//! Accuracy (tested below against `std` over dense grids): `exp` and `ln` within 4 ulp,
//! `sin`/`cos` on `[−π/4, π/4]` within 2 ulp. The normals are exact Box–Muller pairs up to
//! those roundings; the radius uses a 52-bit uniform on `(0, 1]`, so `|z|` never exceeds
//! `√(2·52·ln 2) ≈ 8.49` — the mass beyond that is `e^{−36}` ≈ 2e-16 per pair, far below any
//! Monte Carlo resolution.

mod isa;

pub(crate) use isa::{on_isa, Isa};

/// Lanes per step of [`Xoshiro8`].
pub(crate) const LANES: usize = 8;

/// Eight independent xoshiro256++ streams advanced together (lane `l` of state word `w` in
/// `s[w][l]`), so one step yields eight `u64`s from vectorizable shifts, xors and adds.
#[derive(Debug, Clone)]
pub(crate) struct Xoshiro8 {
    s: [[u64; LANES]; 4],
}

impl Xoshiro8 {
    /// Seeds the eight streams from 32 outputs of `rng` (a lane that came out all zero, the
    /// one state xoshiro cannot leave, is redrawn).
    pub fn from_rng<R: rand::RngCore>(rng: &mut R) -> Self {
        let mut s = [[0u64; LANES]; 4];
        for l in 0..LANES {
            while (0..4).all(|w| s[w][l] == 0) {
                for word in s.iter_mut() {
                    word[l] = rng.next_u64();
                }
            }
        }
        Xoshiro8 { s }
    }

    /// One xoshiro256++ step on every lane.
    #[inline(always)]
    pub fn next(&mut self) -> [u64; LANES] {
        let [s0, s1, s2, s3] = &mut self.s;
        let mut out = [0u64; LANES];
        for l in 0..LANES {
            out[l] = s0[l]
                .wrapping_add(s3[l])
                .rotate_left(23)
                .wrapping_add(s0[l]);
            let t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(45);
        }
        out
    }

    /// Fills `out` (length a multiple of [`LANES`]).
    #[inline(always)]
    pub fn fill(&mut self, out: &mut [u64]) {
        debug_assert_eq!(out.len() % LANES, 0);
        for c in out.chunks_exact_mut(LANES) {
            c.copy_from_slice(&self.next());
        }
    }
}

/// `[1, 2)` from the top 52 bits of `u` (exponent bits set by hand: no integer→float
/// conversion, which has no vector instruction before AVX-512DQ).
#[inline(always)]
fn one_to_two(u: u64) -> f64 {
    f64::from_bits(0x3FF0_0000_0000_0000 | (u >> 12))
}

/// A uniform on `[0, 1)` with 52 random bits.
#[inline(always)]
pub(crate) fn unit(u: u64) -> f64 {
    one_to_two(u) - 1.0
}

/// A uniform on `(0, 1]` with 52 random bits (`ln` of it is finite).
#[inline(always)]
fn unit_left_open(u: u64) -> f64 {
    2.0 - one_to_two(u)
}

/// `ln 2 = LN2_HI + LN2_LO`, the high part with 32 significant bits so `k·LN2_HI` is exact
/// for `|k| < 2^21` (fdlibm's split).
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
/// `1.5·2^52`: adding it rounds a float of magnitude < 2^51 to an integer held in the low bits.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// `e^x` for any `x` (NaN stays NaN; below −708 it returns `e^{−708}` ≈ 3e-308 rather than a
/// subnormal or 0, above 709 it returns `e^{709}`), within 4 ulp where it does not clamp.
///
/// `x = k ln 2 + r` with `|r| ≤ ½ ln 2` (Cody–Waite, two-part `ln 2`), `e^r` by its Taylor
/// series to `r^13/13!` (the next term is below 4e-18), `2^k` built in the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    let c = x.clamp(-708.0, 709.0);
    let x = if x.is_nan() { x } else { c };
    let shifted = x.mul_add(std::f64::consts::LOG2_E, ROUND);
    let k = shifted - ROUND;
    let r = (-k).mul_add(LN2_LO, (-k).mul_add(LN2_HI, x));
    const C: [f64; 14] = taylor_exp();
    let mut p = C[13];
    for &c in C[..13].iter().rev() {
        p = p.mul_add(r, c);
    }
    // The integer k sits in the low bits of `shifted`.
    let ki = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i64;
    p * f64::from_bits(((ki + 1023) as u64) << 52)
}

/// `v ← scale·cos(v + shift)` over a slice: the random-feature columns of
/// [`crate::estimate::rff::FeatureMap::features`], compiled for the widest instruction set
/// this CPU runs ([`Isa`]). The feature map compiled for baseline x86-64 ran this loop two
/// doubles at a time, 43% of a whole `midpoint estimate` at `n = 2000`, `d = 10`
/// (`perf record`); AVX2 and AVX-512 take four and eight. [`cos`] has no `mul_add` for the
/// compiler to contract, so every instruction set computes the same bits (tested).
pub fn cos_shifted_in_place(col: &mut [f64], shift: f64, scale: f64) {
    cos_shifted_on(Isa::detect(), col, shift, scale)
}

/// [`cos_shifted_in_place`] compiled for `isa`, which the caller must have checked the CPU runs.
pub(crate) fn cos_shifted_on(isa: Isa, col: &mut [f64], shift: f64, scale: f64) {
    on_isa!(isa, cos_shifted[](col: &mut [f64], shift: f64, scale: f64))
}

/// The loop of [`cos_shifted_on`], compiled into each instruction set's copy.
#[inline(always)]
fn cos_shifted(col: &mut [f64], shift: f64, scale: f64) {
    for v in col.iter_mut() {
        *v = scale * cos(*v + shift);
    }
}

/// `cos x` for the random-feature map ([`crate::estimate::rff`]): Cody–Waite reduction to `r ∈ [−π, π]` and the Taylor series
/// to `r²⁴/24!` (truncation below `π²⁶/26! ≈ 1e-13`), branch-free so that the feature loop
/// vectorizes; libm's `cos` was 40% of the run time at `n = 10⁶`. Absolute error below
/// `1e-12` for `|x| < 10⁴` (tested), far below the Monte Carlo error of random features.
#[inline(always)]
pub fn cos(x: f64) -> f64 {
    const INV_TAU: f64 = 1.0 / std::f64::consts::TAU;
    const TAU_HI: f64 = std::f64::consts::TAU;
    const TAU_LO: f64 = 2.449_293_598_294_706_4e-16;
    // Round to nearest without a libm call (valid for |x/2π| < 2⁵¹).
    let k = (x * INV_TAU + ROUND) - ROUND;
    let r = (x - k * TAU_HI) - k * TAU_LO;
    let z = r * r;
    // cos r = Σₙ (−1)ⁿ zⁿ/(2n)!, n = 0..12, in Horner form.
    const C: [f64; 13] = [
        1.0,
        -1.0 / 2.0,
        1.0 / 24.0,
        -1.0 / 720.0,
        1.0 / 40_320.0,
        -1.0 / 3_628_800.0,
        1.0 / 479_001_600.0,
        -1.0 / 87_178_291_200.0,
        1.0 / 20_922_789_888_000.0,
        -1.0 / 6_402_373_705_728_000.0,
        1.0 / 2_432_902_008_176_640_000.0,
        -1.0 / 1_124_000_727_777_607_680_000.0,
        1.0 / 620_448_401_733_239_439_360_000.0,
    ];
    let mut acc = C[12];
    for i in (0..12).rev() {
        acc = acc * z + C[i];
    }
    acc
}

/// `1/n!` for `n = 0..13`.
const fn taylor_exp() -> [f64; 14] {
    let mut c = [1.0; 14];
    let mut n = 1;
    while n < 14 {
        c[n] = c[n - 1] / n as f64;
        n += 1;
    }
    c
}

/// `ln x` for positive, normal, finite `x` (what [`normal_pair`] feeds it), within 4 ulp.
///
/// `x = 2^e m` with `m ∈ [√½, √2)`; `ln m = 2 atanh(s)`, `s = (m − 1)/(m + 1)`, `|s| ≤ 0.1716`,
/// by its series to `s^23` (next term below 1e-18 relative).
#[inline(always)]
pub(crate) fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    // Biased exponent as a float, again without an integer conversion.
    let biased = f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52)) - 4_503_599_627_370_496.0;
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let e = biased - 1023.0 + if big { 1.0 } else { 0.0 };
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let mut p: f64 = 1.0 / 23.0;
    let mut k = 21.0;
    while k > 1.0 {
        p = p.mul_add(z, 1.0 / k);
        k -= 2.0;
    }
    // ln m = 2s + 2s·z·p; e·ln 2 split so the large part is exact.
    let two_s = 2.0 * s;
    e.mul_add(LN2_HI, e.mul_add(LN2_LO, (two_s * z).mul_add(p, two_s)))
}

/// `(sin a, cos a)` for `|a| ≤ π/4` by Taylor series (to `a^17` and `a^16`), within 2 ulp.
#[inline(always)]
pub(crate) fn sin_cos_small(a: f64) -> (f64, f64) {
    let z = a * a;
    const S: [f64; 9] = taylor_sin();
    const C: [f64; 9] = taylor_cos();
    let mut ps = S[8];
    let mut pc = C[8];
    for j in (0..8).rev() {
        ps = ps.mul_add(z, S[j]);
        pc = pc.mul_add(z, C[j]);
    }
    (a * ps, pc)
}

/// `(−1)^j / (2j+1)!`.
const fn taylor_sin() -> [f64; 9] {
    let mut c = [1.0; 9];
    let mut j = 1;
    while j < 9 {
        let n = 2 * j + 1;
        c[j] = -c[j - 1] / ((n - 1) * n) as f64;
        j += 1;
    }
    c
}

/// `(−1)^j / (2j)!`.
const fn taylor_cos() -> [f64; 9] {
    let mut c = [1.0; 9];
    let mut j = 1;
    while j < 9 {
        let n = 2 * j;
        c[j] = -c[j - 1] / ((n - 1) * n) as f64;
        j += 1;
    }
    c
}

/// Two independent standard normals from two uniform `u64`s (Box–Muller).
///
/// The radius is `√(−2 ln U₁)`, `U₁ ∈ (0, 1]`. The angle is drawn as `a` uniform on
/// `[−π/4, π/4)` (top 52 bits of `u2`) followed by one of the eight symmetries of the square
/// (low 3 bits of `u2`: swap, negate one, negate the other), which maps the sector onto the
/// whole circle uniformly — the same law as `θ = 2πU₂` with no argument reduction.
#[inline(always)]
pub(crate) fn normal_pair(u1: u64, u2: u64) -> (f64, f64) {
    let r = (-2.0 * ln(unit_left_open(u1))).sqrt();
    let a = std::f64::consts::FRAC_PI_4 * (2.0 * unit(u2) - 1.0);
    let (s, c) = sin_cos_small(a);
    let swap = u2 & 1 != 0;
    let (p, q) = if swap { (s, c) } else { (c, s) };
    let p = f64::from_bits(p.to_bits() ^ ((u2 & 2) << 62));
    let q = f64::from_bits(q.to_bits() ^ ((u2 & 4) << 61));
    (r * p, r * q)
}

/// Fills `out` (even length) with standard normals, taking `out.len()` words from `rng`
/// through `bits` (scratch of the same length).
#[inline(always)]
pub(crate) fn fill_normals(rng: &mut Xoshiro8, bits: &mut [u64], out: &mut [f64]) {
    let n = out.len();
    debug_assert!(n % (2 * LANES) == 0 && bits.len() == n);
    rng.fill(bits);
    let (u1, u2) = bits.split_at(n / 2);
    let (z1, z2) = out.split_at_mut(n / 2);
    for i in 0..n / 2 {
        let (a, b) = normal_pair(u1[i], u2[i]);
        z1[i] = a;
        z2[i] = b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// The random-feature loop gives the same bits on every instruction set this CPU runs
    /// (results must not depend on the machine); would catch a contracted FMA or a reordered
    /// reduction in the wide builds.
    #[test]
    fn cos_columns_are_bit_identical_across_instruction_sets() {
        let x: Vec<f64> = (0..1001).map(|i| (i as f64 * 0.731).sin() * 40.0).collect();
        let mut want = x.clone();
        cos_shifted_on(Isa::Baseline, &mut want, 1.3, 0.0625);
        for (i, w) in want.iter().enumerate() {
            assert!((w - 0.0625 * (x[i] + 1.3).cos()).abs() < 1e-13, "{i}");
        }
        #[cfg(target_arch = "x86_64")]
        for isa in [Isa::Avx2, Isa::Avx512] {
            if Isa::detect() as u8 >= isa as u8 {
                let mut got = x.clone();
                cos_shifted_on(isa, &mut got, 1.3, 0.0625);
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa:?}"
                );
            }
        }
    }

    /// Distance in units in the last place between two finite floats of the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    /// Each lane is exactly the xoshiro256++ stream its state defines: lane 3 of `Xoshiro8`
    /// seeded like a scalar generator reproduces the scalar generator's outputs.
    #[test]
    fn lanes_are_xoshiro256plusplus() {
        let mut seed_rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut x8 = Xoshiro8::from_rng(&mut seed_rng);
        let state: Vec<u8> = (0..4).flat_map(|w| x8.s[w][3].to_le_bytes()).collect();
        let mut scalar = Xoshiro256PlusPlus::from_seed(state.try_into().unwrap());
        for _ in 0..100 {
            assert_eq!(x8.next()[3], rand::RngCore::next_u64(&mut scalar));
        }
    }

    /// Against `f64::exp` on 2·10⁶ points spread over the whole unclamped range, plus the
    /// range reduction's edges (`x` near multiples of `½ ln 2`).
    #[test]
    fn exp_within_4_ulp() {
        let mut worst = 0;
        let n = 2_000_000;
        for i in 0..=n {
            let x = -708.0 + 1417.0 * i as f64 / n as f64;
            worst = worst.max(ulps(exp(x), x.exp()));
        }
        for k in -1000..1000 {
            for dx in [-1e-12, 0.0, 1e-12] {
                let x = (k as f64 + 0.5) * std::f64::consts::LN_2 + dx;
                if x.abs() < 708.0 {
                    worst = worst.max(ulps(exp(x), x.exp()));
                }
            }
        }
        assert!(worst <= 4, "worst {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(-1e300), exp(-708.0));
        assert_eq!(exp(f64::INFINITY), exp(709.0));
    }

    /// Against `f64::ln` on every input [`normal_pair`] can produce a radius from (a dense
    /// grid of `(0, 1]`, exact powers of two and the √2 switch included) and beyond.
    #[test]
    fn ln_within_4_ulp() {
        let mut worst = 0;
        let mut check = |x: f64| {
            let (a, b) = (ln(x), x.ln());
            // Near x = 1 the value is tiny: compare in absolute terms there (1 ulp of ln 2).
            if b.abs() < 1e-3 {
                assert!(
                    (a - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(1e-300) + 1e-19,
                    "{x}"
                );
            } else {
                worst = worst.max(ulps(a, b));
            }
        };
        for i in 1..=2_000_000u64 {
            check(i as f64 / 2_000_000.0);
            check(2f64.powi(-52) * i as f64);
        }
        for e in -60..60 {
            let p = 2f64.powi(e);
            let below_sqrt2 = f64::from_bits(std::f64::consts::SQRT_2.to_bits() - 1);
            for m in [1.0, std::f64::consts::SQRT_2, below_sqrt2, 1.999_999_999] {
                check(p * m);
            }
        }
        assert!(worst <= 4, "worst {worst} ulp");
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn fast_cos_matches_libm() {
        // Would catch a wrong reduction constant or coefficient.
        let mut worst = 0.0f64;
        for i in 0..2_000_001 {
            let x = -1e4 + 1e-2 * i as f64 + 1e-7 * (i % 7) as f64;
            worst = worst.max((cos(x) - x.cos()).abs());
        }
        assert!(worst < 1e-12, "max error {worst}");
    }

    #[test]
    fn sin_cos_within_2_ulp() {
        let n = 1_000_000;
        for i in 0..=n {
            let a = std::f64::consts::FRAC_PI_4 * (2.0 * i as f64 / n as f64 - 1.0);
            let (s, c) = sin_cos_small(a);
            assert!(ulps(c, a.cos()) <= 2, "cos {a}");
            if a != 0.0 {
                assert!(ulps(s, a.sin()) <= 2, "sin {a}");
            }
        }
    }

    /// 2²⁰ normals: Kolmogorov–Smirnov distance to Φ below the α = 1e-6 critical value
    /// (√(ln(2/α)/2)/√n ≈ 2.69/√n), and the pair correlation, the mean and E[z⁴] = 3 within
    /// 6 standard errors. Catches a wrong angle map (a cone instead of the circle), a wrong
    /// radius, or pairs that are not independent. False failure ≈ 1e-6 + 3·2e-9.
    #[test]
    fn normals_have_the_standard_normal_law() {
        use statrs::distribution::{ContinuousCDF, Normal};
        let n = 1 << 20;
        let mut rng = Xoshiro8::from_rng(&mut Xoshiro256PlusPlus::seed_from_u64(11));
        let mut bits = vec![0u64; n];
        let mut z = vec![0.0; n];
        fill_normals(&mut rng, &mut bits, &mut z);
        let (z1, z2) = z.split_at(n / 2);
        let cross: f64 = z1.iter().zip(z2).map(|(a, b)| a * b).sum::<f64>() / (n / 2) as f64;
        assert!(
            cross.abs() < 6.0 / ((n / 2) as f64).sqrt(),
            "pair correlation {cross}"
        );
        let mean = z.iter().sum::<f64>() / n as f64;
        assert!(mean.abs() < 6.0 / (n as f64).sqrt(), "mean {mean}");
        // Var(z⁴) = E z⁸ − 9 = 105 − 9 = 96.
        let m4 = z.iter().map(|v| v.powi(4)).sum::<f64>() / n as f64;
        assert!(
            (m4 - 3.0).abs() < 6.0 * (96.0 / n as f64).sqrt(),
            "E z^4 = {m4}"
        );
        z.sort_by(f64::total_cmp);
        let phi = Normal::standard();
        let ks = z
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let f = phi.cdf(v);
                (f - i as f64 / n as f64).max((i + 1) as f64 / n as f64 - f)
            })
            .fold(0.0, f64::max);
        assert!(ks < 2.69 / (n as f64).sqrt(), "KS distance {ks}");
    }
}
