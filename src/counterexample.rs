//! The finite-variance counterexample to Theorem 3.1: two different laws with `D_mid = 0`.
//!
//! Theorem 3.1 (`D_mid(p0, p1) = 0 ⇔ p0 = p1`, Eq. 2) assumes bounded endpoints; its proof uses
//! moment generating functions. With only finite variance the statement fails:
//!
//! - `p0` has the density [`f0`]`(x) = (3/π)·((1 − cos x)/x²)²` (mean 0, variance 3). Its
//!   characteristic function [`psi0`] is the cubic B-spline `ψ0`, supported on `[−2, 2]`.
//! - `p1` is the lattice law `P(X1 = k·h) = h·f0(k·h)`, `k ∈ ℤ` ([`Lattice`]). By Poisson
//!   summation its characteristic function is the `2π/h`-periodic repetition of `ψ0`
//!   ([`Lattice::psi1`]). For `h = π/2` ([`GAP_SPACING`]) the copies do not overlap, so
//!   `ψ1 = ψ0` on `[−2, 2]`, `ψ0ψ1' = ψ1ψ0'` everywhere, and `D_mid = 0` although `p0 ≠ p1`.
//!   For `h = 2π/3` ([`OVERLAP_SPACING`]) the copies overlap and `D_mid > 0`.
//!
//! For the flipped linear interpolant with `σ = 0` (Eq. 4) and `t ∈ (0, ½]` this module
//! computes the exact field `m_t(x) = E[X1 − X0 | X̃_t = x]` ([`field`]) and
//! `D(t) = E[m_t(X̃_t)²]` ([`d_t`], [`d_mid`]). Given `X̃_t = x`, `X1 = y_k = k·h` and the branch
//! `B`, write `X̃_t = α·X0 + β·X1` with `(α, β) = (1 − t, t)` for `B = 0` and `(t, 1 − t)` for
//! `B = 1`; then `X0 = z = (x − β·y_k)/α`, the joint density is
//! `r_{k,B}(x) = ½·h·f0(y_k)·f0(z)/α` and `Δ = y_k − z = (y_k − x)/α`. With `S = Σ r` (the
//! density of `X̃_t`) and `N = Σ r·Δ`, `m_t = N/S` and `D(t) = ∫ N²/S dx`.
//!
//! ## Error bound
//!
//! [`d_t`] returns [`Method::Quadrature`] with `error_bound` the sum of
//!
//! 1. **Lattice truncation (proven, pointwise).** Only lattice points near the two places where
//!    a term can be large (`y_k ≈ 0`, and `z ≈ 0` i.e. `y_k ≈ x/β`) are summed. The others are
//!    bounded with `f0(u) ≤ 12/(π u⁴)`, convexity of the bounding function (the midpoint rule
//!    under-estimates a convex integral) and closed-form integrals, giving `0 ≤ S − S_K ≤ s̄`
//!    and `|N − N_K| ≤ n̄`, hence `N²/S ∈ [(|N_K| − n̄)₊²/(S_K + s̄), (|N_K| + n̄)²/S_K]`. The
//!    windows grow until the width of that interval is below `η·N_K²/S_K + η_abs·w(x)`
//!    with `w(x) = 1/(π(1 + x²))`, so the integrated truncation error is at most
//!    `η·∫N_K²/S_K + η_abs`.
//! 2. **Quadrature** of `∫_{−X}^{X} N_K²/S_K` by [`crate::quad::integrate_pieces`] on panels
//!    aligned with the oscillation of `f0` (its a-posteriori estimate, as everywhere in
//!    [`crate::quad`]).
//! 3. **The `|x| > X` tail (extrapolated, an estimate).** The integrand decays only like
//!    `1/x²` (`X̃_t` has `x⁻⁴` tails and `m_t(x)` grows like `x`), so a proven tail bound
//!    (Cauchy–Schwarz: `E[Δ²; |X̃_t| > X]`) is `O(1/X)`, impractical for any useful accuracy.
//!    Instead: `S` and `N` are Fourier transforms of compactly supported
//!    piecewise polynomials whose break points are multiples of `ω₀ = 1/(q·t(1−t))` for
//!    `t = p/q`, so for `x > 0` they are finite sums `Σ_n c_n(x)/xⁿ` with `c_n` periodic of
//!    period `P = 2π/ω₀`. On the ladder `X_i = M·2^i·P` the truncated integral
//!    `Q(X) = ∫_{−X}^{X} N²/S` therefore has an expansion in powers of `1/X` with constant
//!    coefficients, and polynomial (Richardson) extrapolation in `1/X` to `0` gives `D(t)`.
//!    The reported tail error is the spread of the extrapolation table (see [`Breakdown`]);
//!    it is an a-posteriori estimate under that expansion, not a proof. The errors of items
//!    1–2 are propagated through the extrapolation weights.
//!
//! A one-sided statement needs no extrapolation: `N²/S ≥ 0`, so `D(t) ≥ Q(X)` for every `X`,
//! and `Q(X)` minus its quadrature estimate and proven lattice bound is a lower bound on `D(t)`
//! ([`Breakdown::lower_bound`], [`d_t_restricted`]).
//!
//! See `theory/counterexample.md` for the derivations and `tests/counterexample.rs` for the
//! checks.
//!
//! ```
//! use midpoint::counterexample::{d_mid, d_t, GAP_SPACING};
//! let mid = d_mid(GAP_SPACING, 1e-12).unwrap();
//! assert!(mid.value.abs() < 1e-12 && mid.error_bound < 1e-10);
//! let early = d_t(GAP_SPACING, 0.3, 1e-6).unwrap();
//! assert!(early.value - early.error_bound > 0.019);
//! ```

use crate::divergence::{Evaluation, Method};
use crate::error::DivergenceError;
use crate::quad::{integrate_pieces, QuadResult};
use std::cell::RefCell;
use std::f64::consts::PI;

/// The lattice spacing `h = π/2` of the counterexample: the `4`-periodic copies of `ψ0` only
/// touch, so `D_mid = 0` although `p0 ≠ p1`.
pub const GAP_SPACING: f64 = PI / 2.0;

/// The contrast spacing `h = 2π/3`: the `3`-periodic copies of `ψ0` overlap on `[−2, 2]` and
/// `D_mid > 0`.
pub const OVERLAP_SPACING: f64 = 2.0 * PI / 3.0;

/// `E(X1 − X0)² = Var X0 + Var X1 = 3 + 3`, the Jensen bound on every `D(t)`; `rel_tol` is
/// relative to it.
pub const JENSEN_SCALE: f64 = 6.0;

/// Largest denominator `q` of `t = p/q` accepted (the extrapolation period grows with `q`).
pub const MAX_T_DENOMINATOR: u32 = 64;

/// Largest `n` of a spacing `h = 2π/n` accepted.
pub const MAX_LATTICE_PERIOD: u32 = 16;

/// `sin(u)/u`, exact at `u = 0`.
fn sinc(u: f64) -> f64 {
    if u.abs() < 1e-4 {
        // Taylor: the next term u⁴/120 is below 1e-18 here.
        1.0 - u * u / 6.0
    } else {
        u.sin() / u
    }
}

/// The density of `p0`, `f0(x) = (3/π)·((1 − cos x)/x²)²` (Section 3.1 counterexample to
/// Thm. 3.1).
///
/// Evaluated as `(3/(4π))·sinc⁴(x/2)` because `(1 − cos x)/x² = ½·(sin(x/2)/(x/2))²`: the
/// direct form loses all digits near `0` (`1 − cos x` cancels) and is `0/0` at `0`.
///
/// ```
/// use midpoint::counterexample::f0;
/// assert!((f0(0.0) - 3.0 / (4.0 * std::f64::consts::PI)).abs() < 1e-17);
/// let x = 3.0f64;
/// let direct = 3.0 / std::f64::consts::PI * ((1.0 - x.cos()) / (x * x)).powi(2);
/// assert!((f0(x) - direct).abs() < 1e-16);
/// ```
pub fn f0(x: f64) -> f64 {
    let s = sinc(0.5 * x);
    let s2 = s * s;
    3.0 / (4.0 * PI) * s2 * s2
}

/// The bound `f0(x) ≤ 12/(π x⁴)` (from `(1 − cos x)² ≤ 4`), used for every truncated sum.
const F0_TAIL: f64 = 12.0 / PI;

/// The characteristic function of `p0`: `ψ0(u) = E e^{iuX0} = (3/2)·(Λ∗Λ)(u)` with the triangle
/// `Λ(u) = (1 − |u|)₊`, i.e. `1 − (3/2)u² + (3/4)|u|³` on `|u| ≤ 1`, `(2 − |u|)³/4` on
/// `1 ≤ |u| ≤ 2`, and `0` beyond.
///
/// ```
/// use midpoint::counterexample::psi0;
/// assert_eq!(psi0(0.0), 1.0);
/// assert_eq!(psi0(2.5), 0.0);
/// assert!((psi0(1.0) - 0.25).abs() < 1e-16);
/// ```
pub fn psi0(u: f64) -> f64 {
    let a = u.abs();
    if a <= 1.0 {
        1.0 - 1.5 * a * a + 0.75 * a * a * a
    } else if a <= 2.0 {
        let b = 2.0 - a;
        0.25 * b * b * b
    } else {
        0.0
    }
}

/// `ψ0'(u)` (continuous; `ψ0` is a C² cubic spline with knots at `−2, …, 2`).
///
/// ```
/// use midpoint::counterexample::{psi0, psi0_prime};
/// let (u, e) = (0.7, 1e-6);
/// let fd = (psi0(u + e) - psi0(u - e)) / (2.0 * e);
/// assert!((psi0_prime(u) - fd).abs() < 1e-9);
/// ```
pub fn psi0_prime(u: f64) -> f64 {
    let a = u.abs();
    let d = if a <= 1.0 {
        -3.0 * a + 2.25 * a * a
    } else if a <= 2.0 {
        let b = 2.0 - a;
        -0.75 * b * b
    } else {
        0.0
    };
    d * u.signum()
}

/// The lattice law `p1`: `P(X1 = k·h) = h·f0(k·h)`, `k ∈ ℤ`, for a spacing `h = 2π/n` with an
/// integer `n ∈ [2, MAX_LATTICE_PERIOD]`.
///
/// Why only these spacings: the weights sum to `ψ1(0) = Σ_m ψ0(2πm/h)` (Poisson summation),
/// which is `1` iff `2π/h ≥ 2`; and an integer `n` makes `(1 − cos kh)²` `n`-periodic in `k`
/// and the far field of [`d_t`] periodic (the extrapolation in `X` needs that).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lattice {
    h: f64,
    n: u32,
    /// `(1 − cos(ρh))²` for `ρ = 0, …, n − 1`.
    residue: [f64; MAX_LATTICE_PERIOD as usize],
}

impl Lattice {
    /// Validates `spacing = 2π/n` (to 1e-12 relative) with `2 ≤ n ≤ MAX_LATTICE_PERIOD`.
    ///
    /// ```
    /// use midpoint::counterexample::{Lattice, GAP_SPACING};
    /// assert_eq!(Lattice::new(GAP_SPACING).unwrap().period(), 4);
    /// assert!(Lattice::new(1.0).is_err());
    /// assert!(Lattice::new(f64::NAN).is_err());
    /// ```
    pub fn new(spacing: f64) -> Result<Self, DivergenceError> {
        let bad = || {
            DivergenceError::InvalidOption(format!(
                "lattice spacing must be 2π/n with an integer n in [2, {MAX_LATTICE_PERIOD}], got \
                 {spacing}"
            ))
        };
        if !(spacing.is_finite() && spacing > 0.0) {
            return Err(bad());
        }
        let ratio = 2.0 * PI / spacing;
        let n = ratio.round();
        if !((2.0..=MAX_LATTICE_PERIOD as f64).contains(&n) && (ratio - n).abs() <= 1e-12 * n) {
            return Err(bad());
        }
        let n = n as u32;
        let h = 2.0 * PI / n as f64;
        let mut residue = [0.0; MAX_LATTICE_PERIOD as usize];
        for (rho, c) in residue.iter_mut().enumerate().take(n as usize) {
            // 1 − cos ρh = 2 sin²(ρh/2), accurate also where cos ρh ≈ 1.
            let s = (0.5 * rho as f64 * h).sin();
            *c = (2.0 * s * s).powi(2);
        }
        Ok(Lattice { h, n, residue })
    }

    /// The spacing `h = 2π/n`.
    pub fn spacing(&self) -> f64 {
        self.h
    }

    /// `n = 2π/h`, the period of `ψ1`.
    pub fn period(&self) -> u32 {
        self.n
    }

    /// `P(X1 = k·h) = h·f0(k·h)`, evaluated as `h·(3/π)·(1 − cos kh)²/(kh)⁴` with the
    /// `n`-periodic numerator tabulated (exact trigonometry, no `sin` per term).
    ///
    /// ```
    /// use midpoint::counterexample::{f0, Lattice, GAP_SPACING};
    /// let l = Lattice::new(GAP_SPACING).unwrap();
    /// let k = 7;
    /// assert!((l.weight(k) - GAP_SPACING * f0(k as f64 * GAP_SPACING)).abs() < 1e-17);
    /// ```
    pub fn weight(&self, k: i64) -> f64 {
        if k == 0 {
            return self.h * f0(0.0);
        }
        let y = k as f64 * self.h;
        let y2 = y * y;
        self.h * 3.0 / PI * self.residue[k.rem_euclid(self.n as i64) as usize] / (y2 * y2)
    }

    /// A proven bound on the mass outside `|k| ≤ k_max`:
    /// `Σ_{|k|>K} h·f0(kh) ≤ 2·(12/π)·h⁻³·Σ_{k>K} k⁻⁴ ≤ (8/π)·h⁻³·(K + ½)⁻³`
    /// (`k⁻⁴` is convex, so each term is below its integral over `[k − ½, k + ½]`).
    ///
    /// ```
    /// use midpoint::counterexample::{Lattice, GAP_SPACING};
    /// let l = Lattice::new(GAP_SPACING).unwrap();
    /// assert!(l.tail_mass_bound(1000) < 1e-9);
    /// ```
    pub fn tail_mass_bound(&self, k_max: u64) -> f64 {
        let k = k_max as f64 + 0.5;
        8.0 / (PI * self.h.powi(3) * k * k * k)
    }

    /// The characteristic function of `p1`: `ψ1(u) = Σ_m ψ0(u − m·2π/h)` (Poisson summation;
    /// only the copies with `|u − m·n| < 2` are nonzero).
    ///
    /// ```
    /// use midpoint::counterexample::{psi0, Lattice, GAP_SPACING, OVERLAP_SPACING};
    /// let gap = Lattice::new(GAP_SPACING).unwrap();
    /// assert_eq!(gap.psi1(1.3), psi0(1.3)); // a single copy on [−2, 2]
    /// assert_eq!(gap.psi1(4.5), psi0(0.5)); // 4-periodic
    /// let overlap = Lattice::new(OVERLAP_SPACING).unwrap();
    /// assert!(overlap.psi1(1.3) > psi0(1.3)); // the copy at 3 reaches into [−2, 2]
    /// ```
    pub fn psi1(&self, u: f64) -> f64 {
        let n = self.n as f64;
        let m0 = (u / n).round();
        (-1..=1).map(|j| psi0(u - (m0 + j as f64) * n)).sum()
    }

    /// `ψ1'(u)`.
    pub fn psi1_prime(&self, u: f64) -> f64 {
        let n = self.n as f64;
        let m0 = (u / n).round();
        (-1..=1).map(|j| psi0_prime(u - (m0 + j as f64) * n)).sum()
    }
}

/// `t = p/q` with `q ≤ MAX_T_DENOMINATOR`, to 1e-12.
fn rational(t: f64) -> Option<(u32, u32)> {
    (1..=MAX_T_DENOMINATOR).find_map(|q| {
        let p = (t * q as f64).round();
        ((t - p / q as f64).abs() <= 1e-12).then_some((p as u32, q))
    })
}

/// Checks `t ∈ (0, ½]` and returns its rational form.
fn check_t(t: f64) -> Result<(u32, u32), DivergenceError> {
    if !(t > 0.0 && t <= 0.5) {
        if t == 0.0 {
            // At t = 0 the observation is X0 or X1 itself (atoms mixed with a density): a
            // different computation, and α or β below would vanish.
            return Err(DivergenceError::InvalidOption(
                "t must be in (0, 1/2]; t = 0 is excluded".to_string(),
            ));
        }
        return Err(DivergenceError::TimeOutOfRange {
            t,
            lo: 0.0,
            hi: 0.5,
        });
    }
    rational(t).ok_or_else(|| {
        DivergenceError::InvalidOption(format!(
            "t = {t} must be a rational p/q with q ≤ {MAX_T_DENOMINATOR}: the extrapolation of the \
             |x| > X tail needs the period 2π·q·t(1−t) of the far field"
        ))
    })
}

fn check_rel_tol(rel_tol: f64) -> Result<(), DivergenceError> {
    if (1e-15..=0.1).contains(&rel_tol) {
        Ok(())
    } else {
        Err(DivergenceError::InvalidOption(format!(
            "rel_tol must be in [1e-15, 0.1], got {rel_tol}"
        )))
    }
}

/// `C(n, k)` for the small arguments of the partial fractions below.
fn binomial(n: i32, k: i32) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// `∫_a^b v^{−j} dv` for `0 < a ≤ b`.
fn power_integral(j: i32, a: f64, b: f64) -> f64 {
    if j == 1 {
        (b / a).ln()
    } else {
        let e = 1.0 - j as f64;
        (a.powf(e) - b.powf(e)) / (j as f64 - 1.0)
    }
}

/// `∫_{u1}^{u2} dy / (y^m (c − y)^n)` for `0 < u1 ≤ u2 < c`, by the partial fractions
/// `1/(y^m (c−y)^n) = Σ_{j≤m} C(m+n−1−j, n−1) c^{j−m−n} y^{−j}
///                  + Σ_{j≤n} C(m+n−1−j, m−1) c^{j−m−n} (c−y)^{−j}`
/// (all terms positive, so no cancellation).
fn middle_integral(m: i32, n: i32, u1: f64, u2: f64, c: f64) -> f64 {
    let near0: f64 = (1..=m)
        .map(|j| binomial(m + n - 1 - j, n - 1) * c.powi(j - m - n) * power_integral(j, u1, u2))
        .sum();
    let near_c: f64 = (1..=n)
        .map(|j| {
            binomial(m + n - 1 - j, m - 1) * c.powi(j - m - n) * power_integral(j, c - u2, c - u1)
        })
        .sum();
    near0 + near_c
}

/// Truncated sums at `x ≥ 0`, with proven bounds on what the excluded lattice points
/// contribute.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    /// `S_K = Σ_{k ∈ window} r_k`.
    s: f64,
    /// `N_K = Σ_{k ∈ window} r_k Δ_k`.
    n: f64,
    /// `Σ_{k ∉ window} r_k ≤ s_bar`.
    s_bar: f64,
    /// `Σ_{k ∉ window} r_k |Δ_k| ≤ n_bar`.
    n_bar: f64,
    /// Terms summed.
    terms: u64,
}

impl Sums {
    fn add(&mut self, o: Sums) {
        self.s += o.s;
        self.n += o.n;
        self.s_bar += o.s_bar;
        self.n_bar += o.n_bar;
        self.terms += o.terms;
    }
}

/// `[lo, hi]` minus the (disjoint) intervals `covered`.
fn subtract(lo: i64, hi: i64, covered: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut pieces = vec![(lo, hi)];
    for &(a, b) in covered {
        pieces = pieces
            .into_iter()
            .flat_map(|(l, h)| {
                if b < l || a > h {
                    vec![(l, h)]
                } else {
                    let mut v = vec![];
                    if l < a {
                        v.push((l, a - 1));
                    }
                    if b < h {
                        v.push((b + 1, h));
                    }
                    v
                }
            })
            .collect();
    }
    pieces
}

/// Recompute `sin` exactly after this many steps of the rotation recurrence (its rounding
/// grows linearly, so the drift stays at a few ulp).
const RESEED: usize = 32;

/// One branch `X̃ = α·X0 + β·X1` at one `x ≥ 0`, summed over windows that grow.
struct Branch<'a> {
    lattice: &'a Lattice,
    x: f64,
    alpha: f64,
    beta: f64,
    /// `½·multiplicity/α`.
    pref: f64,
    /// `c = x/β`, where `z = 0`.
    c: f64,
    kc: i64,
    covered: Vec<(i64, i64)>,
    s: f64,
    n: f64,
    terms: u64,
}

impl<'a> Branch<'a> {
    fn new(lattice: &'a Lattice, x: f64, (alpha, beta, mult): (f64, f64, f64)) -> Self {
        let c = x / beta;
        Branch {
            lattice,
            x,
            alpha,
            beta,
            pref: 0.5 * mult / alpha,
            c,
            kc: (c / lattice.h).round() as i64,
            covered: vec![],
            s: 0.0,
            n: 0.0,
            terms: 0,
        }
    }

    /// Adds `r_k` and `r_k Δ_k` for `k = lo..=hi`.
    ///
    /// `w_k f0(z_k) = h(3/π)(1 − cos kh)²/(kh)⁴ · (3/(4π)) sin⁴(φ)/φ⁴` with `φ = z_k/2`, and
    /// `φ` steps by `−βh/(2α)`: the sines come from a rotation recurrence (re-seeded every
    /// [`RESEED`] steps) instead of one `sin` per term, which was most of the cost.
    fn sum_range(&mut self, lo: i64, hi: i64) {
        let l = self.lattice;
        let (h, x, alpha, beta) = (l.h, self.x, self.alpha, self.beta);
        let step = beta * h / (2.0 * alpha);
        let (st, ct) = step.sin_cos();
        let f0_scale = 3.0 / (4.0 * PI);
        let w_scale = h * 3.0 / PI;
        let (mut sp, mut cp) = (0.0f64, 0.0f64);
        let (mut s, mut nn) = (0.0, 0.0);
        let mut rho = lo.rem_euclid(l.n as i64) as usize;
        for (i, k) in (lo..=hi).enumerate() {
            let y = k as f64 * h;
            let phi = 0.5 * (x - beta * y) / alpha;
            if i % RESEED == 0 {
                (sp, cp) = phi.sin_cos();
            }
            let fz = if phi.abs() < 1e-4 {
                f0(2.0 * phi)
            } else {
                let q = sp / phi;
                let q2 = q * q;
                f0_scale * q2 * q2
            };
            let w = if k == 0 {
                h * f0(0.0)
            } else {
                let y2 = y * y;
                w_scale * l.residue[rho] / (y2 * y2)
            };
            let r = self.pref * w * fz;
            s += r;
            nn += r * (y - x) / alpha;
            (sp, cp) = (sp * ct - cp * st, cp * ct + sp * st);
            rho += 1;
            if rho == l.n as usize {
                rho = 0;
            }
        }
        self.s += s;
        self.n += nn;
        self.terms += (hi - lo + 1) as u64;
    }

    /// Grows the windows to `|y| ≤ R` and `|z| ≤ R` and returns the sums with the bounds on
    /// everything outside.
    fn at_radius(&mut self, radius: f64) -> Sums {
        let h = self.lattice.h;
        let (x, alpha, beta, c, kc) = (self.x, self.alpha, self.beta, self.c, self.kc);
        let k0 = (radius / h).ceil() as i64;
        let k1 = (alpha * radius / (beta * h)).ceil().max(1.0) as i64;
        let merged = kc - k1 <= k0 + 1;
        let windows = if merged {
            vec![((-k0).min(kc - k1), k0.max(kc + k1))]
        } else {
            vec![(-k0, k0), (kc - k1, kc + k1)]
        };
        for &(lo, hi) in &windows {
            for (a, b) in subtract(lo, hi, &self.covered) {
                self.sum_range(a, b);
            }
        }
        self.covered.clone_from(&windows);
        let (k_lo, k_hi) = (windows[0].0, windows[windows.len() - 1].1);
        // Excluded terms: r ≤ pref·h·(12/π)²/(y⁴ z⁴) = a/(y⁴ (c − y)⁴) since z = β(c − y)/α.
        let a = self.pref * h * F0_TAIL * F0_TAIL * (alpha / beta).powi(4);
        let (mut s_bar, mut n_bar) = (0.0, 0.0);
        // y ≥ b: |Δ| = (y − x)/α ≤ y/α and y⁻⁴ ≤ b⁻⁴; Σ (y − c)⁻⁴ ≤ (1/h)∫_{b−h/2}^∞.
        let b = (k_hi + 1) as f64 * h;
        let gap = 3.0 * h * (b - 0.5 * h - c).powi(3);
        s_bar += a / (b.powi(4) * gap);
        n_bar += a / (alpha * b.powi(3) * gap);
        // y ≤ a_lo < 0: |Δ| = (x − y)/α ≤ (c − y)/α and c − y ≥ c − a_lo; Σ y⁻⁴ ≤ (1/h)∫.
        let a_lo = (k_lo - 1) as f64 * h;
        let far = c - a_lo;
        let gap = 3.0 * h * (-a_lo - 0.5 * h).powi(3);
        s_bar += a / (far.powi(4) * gap);
        n_bar += a / (alpha * far.powi(3) * gap);
        // Between the windows, 0 < y < c: 1/(y^m (c−y)⁴) is log-convex, hence convex, so the
        // sum is below (1/h)·∫ over the cells; |Δ| = |y − x|/α ≤ (y + x)/α.
        if !merged {
            let (u1, u2) = ((k0 as f64 + 0.5) * h, ((kc - k1) as f64 - 0.5) * h);
            s_bar += a / h * middle_integral(4, 4, u1, u2, c);
            n_bar += a / (alpha * h)
                * (middle_integral(3, 4, u1, u2, c) + x * middle_integral(4, 4, u1, u2, c));
        }
        Sums {
            s: self.s,
            n: self.n,
            s_bar,
            n_bar,
            terms: self.terms,
        }
    }
}

/// A time `t` with its branches.
#[derive(Debug, Clone, Copy)]
struct Setup {
    lattice: Lattice,
    /// `(α, β, multiplicity)`: at `t = ½` the branches coincide and one is counted twice.
    branches: [(f64, f64, f64); 2],
    n_branches: usize,
}

/// Largest `|x|` the field accepts: beyond it `x − β·k·h` loses the digits that fix the
/// phase of `f0` (absolute error `~1e−16·|x|`), and `k` nears the range of `i64`.
pub const MAX_ABS_X: f64 = 1e12;

/// Window radius (in units of the arguments `y` and `z` of `f0`) to start from.
const R_START: f64 = 16.0;
/// Window radius beyond which refinement gives up (the tolerance is then out of reach).
const R_MAX: f64 = 65536.0;

impl Setup {
    fn new(lattice: Lattice, t: f64) -> Self {
        let (branches, n_branches) = if t == 0.5 {
            ([(0.5, 0.5, 2.0), (0.5, 0.5, 0.0)], 1)
        } else {
            ([(1.0 - t, t, 1.0), (t, 1.0 - t, 1.0)], 2)
        };
        Setup {
            lattice,
            branches,
            n_branches,
        }
    }

    /// Sums at `x ≥ 0` over the lattice points within `radius` of the two centres of each
    /// branch (`|y| ≤ R` or `|z| ≤ R`), with bounds on the rest.
    #[cfg(test)]
    fn sums(&self, x: f64, radius: f64) -> Sums {
        let mut s = Sums::default();
        for b in &self.branches[..self.n_branches] {
            s.add(Branch::new(&self.lattice, x, *b).at_radius(radius));
        }
        s
    }

    /// Field and integrand at `x`, windows grown until the truncation interval of `N²/S` is
    /// narrower than `eta·N_K²/S_K + eta_abs·w(x)`.
    fn point(&self, x: f64, eta: f64, eta_abs: f64) -> Result<FieldPoint, DivergenceError> {
        if !x.is_finite() {
            return Err(DivergenceError::NonFinitePoint);
        }
        if x.abs() > MAX_ABS_X {
            return Err(DivergenceError::InvalidOption(format!(
                "|x| = {} exceeds {MAX_ABS_X:e}: lattice positions k·h are no longer resolved \
                 to the phase of f0 in double precision",
                x.abs()
            )));
        }
        let (ax, sign) = (x.abs(), if x < 0.0 { -1.0 } else { 1.0 });
        let allowed_abs = eta_abs / (PI * (1.0 + x * x));
        let mut branches: Vec<Branch> = self.branches[..self.n_branches]
            .iter()
            .map(|b| Branch::new(&self.lattice, ax, *b))
            .collect();
        let mut radius = R_START;
        loop {
            let mut s = Sums::default();
            for b in &mut branches {
                s.add(b.at_radius(radius));
            }
            let i_k = s.n * s.n / s.s;
            let nn = s.n.abs();
            let up = (2.0 * nn * s.n_bar + s.n_bar * s.n_bar) / s.s;
            let down = if s.n_bar >= nn {
                i_k
            } else {
                (nn * nn * s.s_bar + (2.0 * nn * s.n_bar - s.n_bar * s.n_bar) * s.s)
                    / (s.s * (s.s + s.s_bar))
            };
            let width = up.max(down);
            if width <= eta * i_k + allowed_abs || radius >= R_MAX {
                if width > eta * i_k + allowed_abs {
                    return Err(DivergenceError::InvalidOption(format!(
                        "rel_tol too small: the lattice sums at x = {x} would need windows wider \
                         than {R_MAX}"
                    )));
                }
                return Ok(FieldPoint {
                    x,
                    density: s.s,
                    density_bound: s.s_bar,
                    flux: sign * s.n,
                    flux_bound: s.n_bar,
                    m: sign * s.n / s.s,
                    integrand: i_k,
                    integrand_bound: width,
                    terms: s.terms,
                });
            }
            radius *= 2.0;
        }
    }
}

/// The exact field at one point, from truncated lattice sums with proven truncation bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldPoint {
    /// The point `x`.
    pub x: f64,
    /// `S_K(x)`, the truncated density of `X̃_t` at `x`; the exact density is in
    /// `[S_K, S_K + density_bound]`.
    pub density: f64,
    /// Bound on the excluded lattice terms of the density.
    pub density_bound: f64,
    /// `N_K(x) = Σ r·Δ` (truncated); the exact value is within `flux_bound`.
    pub flux: f64,
    /// Bound on the excluded lattice terms of the flux.
    pub flux_bound: f64,
    /// `m_t(x) ≈ N_K/S_K`.
    pub m: f64,
    /// `N_K²/S_K`, the integrand of `D(t)`; the exact `N²/S` is within `integrand_bound`.
    pub integrand: f64,
    /// Proven bound on `|N²/S − N_K²/S_K|`.
    pub integrand_bound: f64,
    /// Lattice terms summed.
    pub terms: u64,
}

/// The field `m_t(x) = E[X1 − X0 | X̃_t = x]`, the density of `X̃_t` and the integrand of
/// `D(t)` at `x`, for `p0` = [`f0`] and `p1` the lattice with `spacing`, `t ∈ (0, ½]`.
///
/// The lattice windows grow until the proven truncation bound on the integrand is below
/// `rel_tol·N_K²/S_K + rel_tol·JENSEN_SCALE/(π(1 + x²))`.
///
/// ```
/// use midpoint::counterexample::{field, GAP_SPACING};
/// let p = field(GAP_SPACING, 0.5, 1.7, 1e-10).unwrap();
/// // D_mid = 0: the exact midpoint flux vanishes, so the truncated sum is within its bound.
/// assert!(p.flux.abs() <= p.flux_bound + 1e-15 * p.density);
/// let q = field(GAP_SPACING, 0.2, 1.7, 1e-10).unwrap();
/// assert!(q.m.abs() > 0.1 && q.integrand_bound < 1e-9 * q.integrand.max(1.0));
/// ```
pub fn field(spacing: f64, t: f64, x: f64, rel_tol: f64) -> Result<FieldPoint, DivergenceError> {
    let lattice = Lattice::new(spacing)?;
    check_t(t)?;
    check_rel_tol(rel_tol)?;
    Setup::new(lattice, t).point(x, rel_tol, rel_tol * JENSEN_SCALE)
}

/// Levels of the extrapolation ladder `X_i = M·2^i·P`.
const LEVELS: usize = 5;
/// The ladder starts at the first `M·P` (power-of-two `M`) beyond this.
const X_START: f64 = 20.0;

/// The pieces of a [`d_t`] computation.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    /// Period `P = 2π·q·t(1−t)` of the far field (`t = p/q`).
    pub period: f64,
    /// The ladder `X_i`.
    pub cutoffs: Vec<f64>,
    /// `Q(X_i) = ∫_{−X_i}^{X_i} N_K²/S_K dx`.
    pub partial: Vec<f64>,
    /// Quadrature error estimate of each `Q(X_i)`.
    pub quadrature_error: Vec<f64>,
    /// Proven lattice-truncation bound of each `Q(X_i)`.
    pub lattice_error: Vec<f64>,
    /// Extrapolation weights `c_i` (`D ≈ Σ c_i Q(X_i)`, `Σ c_i = 1`).
    pub weights: Vec<f64>,
    /// The extrapolated `D(t)`.
    pub value: f64,
    /// Extrapolation error estimate: the larger distance from `value` to the extrapolations
    /// that leave out the first or the last level.
    pub tail_error: f64,
    /// Quadrature and lattice errors carried through the extrapolation: with segment errors
    /// `e_j` of `∫_{X_{j−1} < |x| < X_j}`, `Σ_j |Σ_{i≥j} c_i|·e_j`.
    pub propagated_error: f64,
    /// `Q(X_last) − its errors`: a lower bound on `D(t)` that needs no extrapolation (the
    /// integrand is nonnegative).
    pub lower_bound: f64,
    /// Integrand evaluations.
    pub evals: u64,
}

/// Lagrange weights of the nodes `s` for extrapolation to `0`.
fn extrapolation_weights(s: &[f64]) -> Vec<f64> {
    (0..s.len())
        .map(|i| {
            (0..s.len())
                .filter(|&j| j != i)
                .map(|j| s[j] / (s[j] - s[i]))
                .product()
        })
        .collect()
}

fn extrapolate(s: &[f64], q: &[f64]) -> f64 {
    extrapolation_weights(s)
        .iter()
        .zip(q)
        .map(|(c, v)| c * v)
        .sum()
}

/// Shared state of the integrations of one `(spacing, t)`.
struct Integrator {
    setup: Setup,
    eta: f64,
    eta_abs: f64,
    /// Panel width: the period `P` split so that each panel holds about half an oscillation of
    /// the fastest far-field term `cos(2x/t)`… `cos(x/t)`.
    panel: f64,
    period: f64,
}

impl Integrator {
    fn new(spacing: f64, t: f64, rel_tol: f64) -> Result<Self, DivergenceError> {
        let lattice = Lattice::new(spacing)?;
        let (_, q) = check_t(t)?;
        check_rel_tol(rel_tol)?;
        let period = 2.0 * PI * q as f64 * t * (1.0 - t);
        let panels = (period / (PI * t)).ceil();
        Ok(Integrator {
            setup: Setup::new(lattice, t),
            // A third of the budget to the truncation relative to the integrand, a tenth as an
            // absolute floor (what matters where the integrand vanishes, as for D_mid).
            eta: 0.3 * rel_tol,
            eta_abs: 0.1 * rel_tol * JENSEN_SCALE,
            panel: period / panels,
            period,
        })
    }

    /// `2∫_a^b N_K²/S_K dx` (`0 ≤ a < b`) to absolute tolerance `tol`.
    fn integrate(&self, a: f64, b: f64, tol: f64) -> Result<QuadResult, DivergenceError> {
        let failure = RefCell::new(None);
        let f = |x: f64| match self.setup.point(x, self.eta, self.eta_abs) {
            Ok(p) => 2.0 * p.integrand,
            Err(e) => {
                failure.borrow_mut().get_or_insert(e);
                f64::NAN
            }
        };
        let mut breaks = vec![a];
        let mut x = (a / self.panel).floor() * self.panel + self.panel;
        while x < b - 1e-9 * self.panel {
            breaks.push(x);
            x += self.panel;
        }
        breaks.push(b);
        let r = integrate_pieces(&f, &breaks, tol);
        if let Some(e) = failure.into_inner() {
            return Err(e);
        }
        r.map_err(|_| {
            DivergenceError::InvalidOption("quadrature met a non-finite integrand".to_string())
        })
    }

    /// Proven lattice bound on `2∫_a^b` given its value `v` and quadrature error `e`:
    /// `η·(v + e) + η_abs·∫_{±[a,b]} w`.
    fn lattice_error(&self, v: f64, e: f64, a: f64, b: f64) -> f64 {
        self.eta * (v + e) + self.eta_abs * 2.0 / PI * (b.atan() - a.atan())
    }
}

/// [`d_t`] with all its pieces.
///
/// ```
/// use midpoint::counterexample::{d_t_breakdown, GAP_SPACING};
/// let b = d_t_breakdown(GAP_SPACING, 0.3, 1e-6).unwrap();
/// assert_eq!(b.cutoffs.len(), 5);
/// assert!(b.lower_bound > 0.0 && b.lower_bound <= b.value);
/// assert!((b.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
/// ```
pub fn d_t_breakdown(spacing: f64, t: f64, rel_tol: f64) -> Result<Breakdown, DivergenceError> {
    let it = Integrator::new(spacing, t, rel_tol)?;
    let m0 = (X_START / it.period).log2().ceil().exp2().max(1.0);
    let cutoffs: Vec<f64> = (0..LEVELS)
        .map(|i| m0 * (1u64 << i) as f64 * it.period)
        .collect();
    // Each segment [X_{i−1}, X_i] gets a share of the quadrature budget proportional to its
    // length; the whole ladder gets a third of rel_tol·JENSEN_SCALE.
    let tol = 0.3 * rel_tol * JENSEN_SCALE;
    let total = cutoffs[LEVELS - 1];
    let (mut seg_value, mut seg_quad, mut seg_lat) = (vec![], vec![], vec![]);
    let (mut evals, mut a) = (0u64, 0.0);
    for &b in &cutoffs {
        let r = it.integrate(a, b, tol * (b - a) / total)?;
        evals += r.evals;
        seg_value.push(r.value);
        seg_quad.push(r.error);
        seg_lat.push(it.lattice_error(r.value, r.error, a, b));
        a = b;
    }
    let cumulative = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .scan(0.0, |acc, x| {
                *acc += x;
                Some(*acc)
            })
            .collect()
    };
    let partial = cumulative(&seg_value);
    let s: Vec<f64> = cutoffs.iter().map(|x| 1.0 / x).collect();
    let weights = extrapolation_weights(&s);
    let value: f64 = weights.iter().zip(&partial).map(|(c, v)| c * v).sum();
    let without_first = extrapolate(&s[1..], &partial[1..]);
    let without_last = extrapolate(&s[..LEVELS - 1], &partial[..LEVELS - 1]);
    let tail_error = (value - without_first)
        .abs()
        .max((value - without_last).abs());
    // D ≈ Σ_i c_i Q_i = Σ_j C_j v_j with C_j = Σ_{i≥j} c_i: segment j's error enters with
    // weight |C_j| (tighter than Σ_i |c_i|·err(Q_i), which would count it once per level).
    let propagated_error = (0..LEVELS)
        .map(|j| weights[j..].iter().sum::<f64>().abs() * (seg_quad[j] + seg_lat[j]))
        .sum();
    let (quadrature_error, lattice_error) = (cumulative(&seg_quad), cumulative(&seg_lat));
    let last = LEVELS - 1;
    Ok(Breakdown {
        period: it.period,
        lower_bound: partial[last] - quadrature_error[last] - lattice_error[last],
        cutoffs,
        partial,
        quadrature_error,
        lattice_error,
        weights,
        value,
        tail_error,
        propagated_error,
        evals,
    })
}

/// `D(t) = E[m_t(X̃_t)²]` for `p0` = [`f0`], `p1` the lattice with `spacing`, the flipped
/// linear interpolant with `σ = 0` (Eq. 4, the integrand of Def. 3.2), `t ∈ (0, ½]` a rational
/// `p/q` with `q ≤ MAX_T_DENOMINATOR`.
///
/// `rel_tol` is relative to [`JENSEN_SCALE`] (`D(t) ≤ 6`). The result is
/// [`Method::Quadrature`]; `error_bound` = extrapolation estimate + propagated quadrature
/// estimate + proven lattice-truncation bound (see the module documentation for what each
/// part means).
///
/// ```
/// use midpoint::counterexample::{d_t, GAP_SPACING};
/// use midpoint::divergence::Method;
/// let e = d_t(GAP_SPACING, 0.25, 1e-6).unwrap();
/// assert_eq!(e.method, Method::Quadrature);
/// assert!(e.value > 0.0 && e.error_bound < 1e-4);
/// assert!(d_t(GAP_SPACING, 0.6, 1e-6).is_err());
/// assert!(d_t(1.0, 0.25, 1e-6).is_err());
/// ```
pub fn d_t(spacing: f64, t: f64, rel_tol: f64) -> Result<Evaluation, DivergenceError> {
    let b = d_t_breakdown(spacing, t, rel_tol)?;
    Ok(Evaluation {
        value: b.value,
        error_bound: b.tail_error + b.propagated_error,
        method: Method::Quadrature,
        std_error: None,
        samples: None,
    })
}

/// The Midpoint Divergence `D_mid = D(½)` (Eq. 2) of `p0` = [`f0`] and the lattice with
/// `spacing`: `0` for [`GAP_SPACING`] (the counterexample), positive for [`OVERLAP_SPACING`].
///
/// ```
/// use midpoint::counterexample::{d_mid, OVERLAP_SPACING};
/// let e = d_mid(OVERLAP_SPACING, 1e-8).unwrap();
/// assert!(e.value - e.error_bound > 2e-3);
/// ```
pub fn d_mid(spacing: f64, rel_tol: f64) -> Result<Evaluation, DivergenceError> {
    d_t(spacing, 0.5, rel_tol)
}

/// `E[m_t(X̃_t)²; |X̃_t| ≤ x_max] = ∫_{−x_max}^{x_max} N²/S dx`: the part of `D(t)` that needs
/// no extrapolation, hence a lower bound on it with a bound made only of the quadrature
/// estimate and the proven lattice truncation.
///
/// ```
/// use midpoint::counterexample::{d_t_restricted, GAP_SPACING};
/// let e = d_t_restricted(GAP_SPACING, 0.1, 10.0, 1e-8).unwrap();
/// assert!(e.value > 1.0 && e.error_bound < 1e-6);
/// ```
pub fn d_t_restricted(
    spacing: f64,
    t: f64,
    x_max: f64,
    rel_tol: f64,
) -> Result<Evaluation, DivergenceError> {
    let it = Integrator::new(spacing, t, rel_tol)?;
    if !(x_max.is_finite() && x_max > 0.0) {
        return Err(DivergenceError::InvalidOption(format!(
            "x_max must be positive and finite, got {x_max}"
        )));
    }
    let r = it.integrate(0.0, x_max, 0.3 * rel_tol * JENSEN_SCALE)?;
    Ok(Evaluation {
        value: r.value,
        error_bound: r.error + it.lattice_error(r.value, r.error, 0.0, x_max),
        method: Method::Quadrature,
        std_error: None,
        samples: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_fractions_match_a_direct_integral() {
        // ∫_1^3 dy/(y⁴(5−y)⁴) by a fine midpoint rule.
        let (u1, u2, c) = (1.0, 3.0, 5.0);
        let n = 200_000;
        let dy = (u2 - u1) / n as f64;
        let direct: f64 = (0..n)
            .map(|i| {
                let y = u1 + (i as f64 + 0.5) * dy;
                dy / (y.powi(4) * (c - y).powi(4))
            })
            .sum();
        let closed = middle_integral(4, 4, u1, u2, c);
        assert!(
            (closed - direct).abs() < 1e-9 * direct,
            "{closed} vs {direct}"
        );
        let direct3: f64 = (0..n)
            .map(|i| {
                let y = u1 + (i as f64 + 0.5) * dy;
                dy / (y.powi(3) * (c - y).powi(4))
            })
            .sum();
        let closed3 = middle_integral(3, 4, u1, u2, c);
        assert!(
            (closed3 - direct3).abs() < 1e-9 * direct3,
            "{closed3} vs {direct3}"
        );
    }

    #[test]
    fn rationals_are_recognized() {
        assert_eq!(rational(0.1), Some((1, 10)));
        assert_eq!(rational(0.3), Some((3, 10)));
        assert_eq!(rational(0.5), Some((1, 2)));
        assert_eq!(rational(std::f64::consts::FRAC_1_SQRT_2 / 2.0), None);
    }

    #[test]
    fn truncation_bounds_hold_against_wider_windows() {
        // The excluded-term bounds at radius R must cover what a much wider window adds.
        for &(spacing, t) in &[
            (GAP_SPACING, 0.1),
            (GAP_SPACING, 0.5),
            (OVERLAP_SPACING, 0.3),
        ] {
            let s = Setup::new(Lattice::new(spacing).unwrap(), t);
            for &x in &[0.0, 0.3, 2.0, 17.0, 150.0] {
                let narrow = s.sums(x, 16.0);
                let wide = s.sums(x, 4096.0);
                let ds = wide.s - narrow.s;
                let dn = (wide.n - narrow.n).abs();
                assert!(
                    ds >= -1e-15 * wide.s && ds <= narrow.s_bar,
                    "{t} {x}: {ds} {narrow:?}"
                );
                assert!(
                    dn <= narrow.n_bar + 1e-15 * wide.s,
                    "{t} {x}: {dn} {narrow:?}"
                );
            }
        }
    }

    #[test]
    fn recurrence_matches_direct_terms() {
        // The rotation recurrence and tabulated weights against f0 and the weight formula
        // term by term, over ranges longer than the re-seeding interval.
        let lattice = Lattice::new(OVERLAP_SPACING).unwrap();
        for &(x, branch) in &[(0.7, (0.8, 0.2, 1.0)), (123.4, (0.3, 0.7, 1.0))] {
            let (alpha, beta, _) = branch;
            let mut b = Branch::new(&lattice, x, branch);
            b.sum_range(-300, 700);
            let (mut s, mut n) = (0.0, 0.0);
            for k in -300i64..=700 {
                let y = k as f64 * lattice.spacing();
                let r = 0.5 / alpha * lattice.spacing() * f0(y) * f0((x - beta * y) / alpha);
                s += r;
                n += r * (y - x) / alpha;
            }
            assert!((b.s - s).abs() <= 1e-13 * s, "{} vs {s}", b.s);
            assert!((b.n - n).abs() <= 1e-13 * s * (x + 700.0), "{} vs {n}", b.n);
        }
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert!(matches!(
            d_t(GAP_SPACING, 0.7, 1e-6),
            Err(DivergenceError::TimeOutOfRange { .. })
        ));
        assert!(matches!(
            d_t(GAP_SPACING, -0.1, 1e-6),
            Err(DivergenceError::TimeOutOfRange { .. })
        ));
        assert!(matches!(
            d_t(GAP_SPACING, f64::NAN, 1e-6),
            Err(DivergenceError::TimeOutOfRange { .. })
        ));
        assert!(matches!(
            d_t(GAP_SPACING, 0.0, 1e-6),
            Err(DivergenceError::InvalidOption(_))
        ));
        assert!(matches!(
            d_t(GAP_SPACING, 0.123456789, 1e-6),
            Err(DivergenceError::InvalidOption(_))
        ));
        assert!(matches!(
            d_t(2.0 * PI, 0.25, 1e-6),
            Err(DivergenceError::InvalidOption(_))
        ));
        assert!(matches!(
            d_t(-1.0, 0.25, 1e-6),
            Err(DivergenceError::InvalidOption(_))
        ));
        assert!(matches!(
            d_t(GAP_SPACING, 0.25, 0.0),
            Err(DivergenceError::InvalidOption(_))
        ));
        assert!(matches!(
            field(GAP_SPACING, 0.25, f64::INFINITY, 1e-6),
            Err(DivergenceError::NonFinitePoint)
        ));
        assert!(matches!(
            d_t_restricted(GAP_SPACING, 0.25, -1.0, 1e-6),
            Err(DivergenceError::InvalidOption(_))
        ));
    }
}
