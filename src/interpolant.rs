//! Symmetric stochastic interpolants (paper §2.2 and §3.3, Eq. 6–7).
//!
//! A stochastic interpolant is `X_t = I_t(X0, X1) + σ_t ε` (Eq. 6). This crate works with
//! interpolants that are linear in the endpoints,
//!
//! ```text
//! I_t(x0, x1) = α(t)·x0 + β(t)·x1,
//! ```
//!
//! which covers the paper's linear interpolant and the trigonometric one, and is what makes
//! Gaussian and discrete endpoint laws exactly computable: conditional on which branch of the
//! flip was taken, `(Δ, X̃_t)` is then jointly Gaussian (or atomic).
//!
//! The paper's flipped observation (Eq. 7) needs the symmetry `I_t(x0,x1) = I_{1−t}(x1,x0)`,
//! i.e. `β(t) = α(1−t)`, and `σ_t = σ_{1−t}`, `σ_0 = σ_1 = 0`. Every constructor here checks
//! these and refuses anything else with an [`InterpolantError`].

use std::fmt;
use std::sync::Arc;

/// Number of grid intervals on which custom coefficient functions are checked.
const CHECK_GRID: usize = 1024;
/// Tolerance of the symmetry and endpoint checks, relative to `max(1, |value|)`.
const CHECK_TOL: f64 = 1e-12;

/// Runs `check` at the `CHECK_GRID + 1` equally spaced times of `[0, 1]`, in order, up to the
/// first error.
fn on_check_grid(
    check: impl FnMut(f64) -> Result<(), InterpolantError>,
) -> Result<(), InterpolantError> {
    (0..=CHECK_GRID)
        .map(|i| i as f64 / CHECK_GRID as f64)
        .try_for_each(check)
}

/// `v`, or the error that names `what` non-finite at `t`.
fn finite(what: &'static str, t: f64, v: f64) -> Result<f64, InterpolantError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(InterpolantError::NonFinite { what, t })
    }
}

/// Why an interpolant or noise schedule was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InterpolantError {
    /// `I_t(x0,x1) ≠ I_{1−t}(x1,x0)`, seen as `β(t) ≠ α(1−t)`.
    #[error("interpolant is not symmetric: β(t) = {beta_t} but α(1−t) = {alpha_flip} at t = {t} (need I_t(x0,x1) = I_(1−t)(x1,x0))")]
    NotSymmetric {
        /// Where the check failed.
        t: f64,
        /// `β(t)`.
        beta_t: f64,
        /// `α(1−t)`.
        alpha_flip: f64,
    },
    /// `I_0 ≠ x0` or `I_1 ≠ x1`.
    #[error("interpolant must satisfy I_0(x0,x1) = x0 and I_1(x0,x1) = x1, but α(0) = {alpha0}, β(0) = {beta0}, α(1) = {alpha1}, β(1) = {beta1}")]
    Endpoints {
        /// `α(0)` (must be 1).
        alpha0: f64,
        /// `β(0)` (must be 0).
        beta0: f64,
        /// `α(1)` (must be 0).
        alpha1: f64,
        /// `β(1)` (must be 1).
        beta1: f64,
    },
    /// `σ_t ≠ σ_{1−t}`.
    #[error(
        "noise schedule is not symmetric: σ_t = {sigma_t} but σ_(1−t) = {sigma_flip} at t = {t}"
    )]
    NoiseNotSymmetric {
        /// Where the check failed.
        t: f64,
        /// `σ_t`.
        sigma_t: f64,
        /// `σ_{1−t}`.
        sigma_flip: f64,
    },
    /// `σ_0 ≠ 0` or `σ_1 ≠ 0`.
    #[error("noise schedule must vanish at both ends, but σ_0 = {sigma0} and σ_1 = {sigma1}")]
    NoiseAtEndpoints {
        /// `σ_0`.
        sigma0: f64,
        /// `σ_1`.
        sigma1: f64,
    },
    /// `σ_t < 0` somewhere.
    #[error("noise schedule is negative at t = {t}: σ_t = {sigma_t}")]
    NegativeNoise {
        /// Where.
        t: f64,
        /// The value.
        sigma_t: f64,
    },
    /// The scale `σ` of `σ_t = sqrt(σ·t(1−t))` is negative or not finite.
    #[error("σ must be finite and ≥ 0, got {0}")]
    InvalidSigma(f64),
    /// A coefficient function returned NaN or ±∞.
    #[error("{what} is not finite at t = {t}")]
    NonFinite {
        /// Which function.
        what: &'static str,
        /// Where.
        t: f64,
    },
    /// An interpolant name that is not built in.
    #[error("unknown interpolant {0:?} (built in: linear, trig)")]
    Unknown(String),
}

type Coefficient = Arc<dyn Fn(f64) -> f64 + Send + Sync>;

/// The deterministic part `I_t(x0, x1) = α(t)·x0 + β(t)·x1` of a stochastic interpolant.
#[derive(Clone)]
pub enum Interpolant {
    /// `I_t = (1−t)·x0 + t·x1`: Flow Matching's interpolant and the paper's choice (§5.1).
    Linear,
    /// `I_t = cos(πt/2)·x0 + sin(πt/2)·x1`: the trigonometric interpolant of Albergo &
    /// Vanden-Eijnden; symmetric because `sin(πt/2) = cos(π(1−t)/2)`.
    Trigonometric,
    /// User-supplied coefficient functions, validated by [`Interpolant::custom`].
    Custom {
        /// A name for reports.
        name: String,
        /// `α(t)`.
        alpha: Coefficient,
        /// `β(t)`.
        beta: Coefficient,
    },
}

impl Interpolant {
    /// A custom interpolant `I_t = α(t)·x0 + β(t)·x1`, accepted only if it is a symmetric
    /// interpolant: `α(0) = β(1) = 1`, `β(0) = α(1) = 0` and `β(t) = α(1−t)`, checked on a grid of
    /// 1025 points to 1e-12 (relative to `max(1, |α|)`).
    ///
    /// ```
    /// use midpoint::interpolant::Interpolant;
    /// // t² is not symmetric: β(t) = t² but α(1−t) = 1 − (1−t)² ≠ t².
    /// let bad = Interpolant::custom("square", |t| 1.0 - t * t, |t| t * t);
    /// assert!(bad.is_err());
    /// let ok = Interpolant::custom("smoothstep", |t| 1.0 - t * t * (3.0 - 2.0 * t),
    ///                              |t| t * t * (3.0 - 2.0 * t)).unwrap();
    /// assert_eq!(ok.coefficients(0.25).1, 0.25 * 0.25 * 2.5);
    /// ```
    pub fn custom(
        name: &str,
        alpha: impl Fn(f64) -> f64 + Send + Sync + 'static,
        beta: impl Fn(f64) -> f64 + Send + Sync + 'static,
    ) -> Result<Self, InterpolantError> {
        let interp = Interpolant::Custom {
            name: name.to_string(),
            alpha: Arc::new(alpha),
            beta: Arc::new(beta),
        };
        interp.validate()?;
        Ok(interp)
    }

    /// Parses a built-in name: `linear` or `trig` (also `trigonometric`).
    ///
    /// ```
    /// use midpoint::interpolant::Interpolant;
    /// assert_eq!(Interpolant::from_name("trig").unwrap().name(), "trig");
    /// assert!(Interpolant::from_name("cubic").is_err());
    /// ```
    pub fn from_name(name: &str) -> Result<Self, InterpolantError> {
        match name {
            "linear" => Ok(Interpolant::Linear),
            "trig" | "trigonometric" => Ok(Interpolant::Trigonometric),
            other => Err(InterpolantError::Unknown(other.to_string())),
        }
    }

    /// Short name used in reports and on the command line.
    pub fn name(&self) -> &str {
        match self {
            Interpolant::Linear => "linear",
            Interpolant::Trigonometric => "trig",
            Interpolant::Custom { name, .. } => name,
        }
    }

    /// `(α(t), β(t))`.
    ///
    /// ```
    /// use midpoint::interpolant::Interpolant;
    /// assert_eq!(Interpolant::Linear.coefficients(0.25), (0.75, 0.25));
    /// ```
    #[inline]
    pub fn coefficients(&self, t: f64) -> (f64, f64) {
        match self {
            Interpolant::Linear => (1.0 - t, t),
            Interpolant::Trigonometric => {
                let (s, c) = (std::f64::consts::FRAC_PI_2 * t).sin_cos();
                (c, s)
            }
            Interpolant::Custom { alpha, beta, .. } => (alpha(t), beta(t)),
        }
    }

    /// Whether this is one of the built-in interpolants, for which `α(t) ≠ β(t)` except at
    /// `t = ½` and distinct endpoint pairs land on distinct points except at isolated `t`
    /// (used by the discrete closed forms; see `theory/discrete-closed-form.md`).
    pub fn is_builtin(&self) -> bool {
        !matches!(self, Interpolant::Custom { .. })
    }

    fn validate(&self) -> Result<(), InterpolantError> {
        let (a0, b0) = self.coefficients(0.0);
        let (a1, b1) = self.coefficients(1.0);
        let near = |x: f64, y: f64| (x - y).abs() <= CHECK_TOL * x.abs().max(1.0);
        if !(near(a0, 1.0) && near(b0, 0.0) && near(a1, 0.0) && near(b1, 1.0)) {
            return Err(InterpolantError::Endpoints {
                alpha0: a0,
                beta0: b0,
                alpha1: a1,
                beta1: b1,
            });
        }
        on_check_grid(|t| {
            let (a, b) = self.coefficients(t);
            finite("α(t)", t, a)?;
            finite("β(t)", t, b)?;
            let (a_flip, _) = self.coefficients(1.0 - t);
            if !near(a_flip, b) {
                return Err(InterpolantError::NotSymmetric {
                    t,
                    beta_t: b,
                    alpha_flip: a_flip,
                });
            }
            Ok(())
        })
    }
}

impl fmt::Debug for Interpolant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Interpolant({})", self.name())
    }
}

/// The noise schedule `σ_t` of a stochastic interpolant (Eq. 6).
#[derive(Clone)]
pub enum NoiseSchedule {
    /// `σ_t = sqrt(σ·t(1−t))` with `σ ≥ 0`: the paper's schedule (§5.1); `σ = 0` is the
    /// deterministic interpolant.
    SqrtBridge {
        /// The scale `σ`.
        sigma: f64,
    },
    /// User-supplied `σ_t`, validated by [`NoiseSchedule::custom`].
    Custom {
        /// A name for reports.
        name: String,
        /// `σ_t`.
        sigma_t: Coefficient,
    },
}

impl NoiseSchedule {
    /// The paper's schedule `σ_t = sqrt(σ·t(1−t))`; refuses `σ < 0` and non-finite `σ`.
    ///
    /// ```
    /// use midpoint::interpolant::NoiseSchedule;
    /// let s = NoiseSchedule::sqrt_bridge(0.01).unwrap();
    /// assert!((s.sigma_t(0.5) - 0.05).abs() < 1e-15);
    /// assert!(NoiseSchedule::sqrt_bridge(-1.0).is_err());
    /// ```
    pub fn sqrt_bridge(sigma: f64) -> Result<Self, InterpolantError> {
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(InterpolantError::InvalidSigma(sigma));
        }
        Ok(NoiseSchedule::SqrtBridge { sigma })
    }

    /// A custom `σ_t`, accepted only if `σ_t ≥ 0`, `σ_t = σ_{1−t}` and `σ_0 = σ_1 = 0`
    /// (checked on a grid of 1025 points to 1e-12; values at the ends within 1e-12 of zero
    /// are clamped to zero when used).
    ///
    /// ```
    /// use midpoint::interpolant::NoiseSchedule;
    /// let sine = NoiseSchedule::custom("sine", |t| 0.1 * (std::f64::consts::PI * t).sin());
    /// assert!(sine.is_ok());
    /// // Not symmetric in t:
    /// assert!(NoiseSchedule::custom("skew", |t| t * (1.0 - t) * t).is_err());
    /// ```
    pub fn custom(
        name: &str,
        sigma_t: impl Fn(f64) -> f64 + Send + Sync + 'static,
    ) -> Result<Self, InterpolantError> {
        let s = NoiseSchedule::Custom {
            name: name.to_string(),
            sigma_t: Arc::new(sigma_t),
        };
        s.validate()?;
        Ok(s)
    }

    /// `σ_t`.
    #[inline]
    pub fn sigma_t(&self, t: f64) -> f64 {
        match self {
            NoiseSchedule::SqrtBridge { sigma } => (sigma * t * (1.0 - t)).max(0.0).sqrt(),
            NoiseSchedule::Custom { sigma_t, .. } => {
                if t == 0.0 || t == 1.0 {
                    0.0
                } else {
                    sigma_t(t)
                }
            }
        }
    }

    /// Whether `σ_t = 0` for every `t` (the deterministic interpolant).
    pub fn is_zero(&self) -> bool {
        matches!(self, NoiseSchedule::SqrtBridge { sigma } if *sigma == 0.0)
    }

    /// Short description for reports.
    pub fn describe(&self) -> String {
        match self {
            NoiseSchedule::SqrtBridge { sigma } => format!("sqrt({sigma}·t(1−t))"),
            NoiseSchedule::Custom { name, .. } => name.clone(),
        }
    }

    fn raw_sigma_t(&self, t: f64) -> f64 {
        match self {
            NoiseSchedule::Custom { sigma_t, .. } => sigma_t(t),
            _ => self.sigma_t(t),
        }
    }

    fn validate(&self) -> Result<(), InterpolantError> {
        let (s0, s1) = (self.raw_sigma_t(0.0), self.raw_sigma_t(1.0));
        // Exact zero is too strict for schedules like sin(πt), whose sin(π) is 1.2e-16.
        if !(s0.abs() <= CHECK_TOL && s1.abs() <= CHECK_TOL) {
            return Err(InterpolantError::NoiseAtEndpoints {
                sigma0: s0,
                sigma1: s1,
            });
        }
        on_check_grid(|t| {
            let s = finite("σ_t", t, self.raw_sigma_t(t))?;
            if s < 0.0 {
                return Err(InterpolantError::NegativeNoise { t, sigma_t: s });
            }
            let flip = self.raw_sigma_t(1.0 - t);
            if (flip - s).abs() > CHECK_TOL * s.abs().max(1.0) {
                Err(InterpolantError::NoiseNotSymmetric {
                    t,
                    sigma_t: s,
                    sigma_flip: flip,
                })
            } else {
                Ok(())
            }
        })
    }
}

impl fmt::Debug for NoiseSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoiseSchedule({})", self.describe())
    }
}

/// Which branch of the flip (Eq. 7) produced the observation: `B = 0` observes
/// `I_t(X0, X1) + σ_t ε`, `B = 1` observes `I_{1−t}(X0, X1) + σ_{1−t} ε`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    /// `B = 0`.
    Forward,
    /// `B = 1`.
    Flipped,
}

/// How `X̃_t` is observed: with the random flip of Eq. 7 (the paper's construction) or without
/// it (Eq. 1/6, the naive construction of Eq. 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// `X̃_t` as in Eq. 4/7: `B ~ Bernoulli(½)` unobserved.
    Flipped,
    /// `X_t` as in Eq. 1/6: always the `B = 0` branch.
    Unflipped,
}

impl Observation {
    /// The branches with their probabilities.
    pub fn branches(self) -> &'static [(Branch, f64)] {
        match self {
            Observation::Flipped => &[(Branch::Forward, 0.5), (Branch::Flipped, 0.5)],
            Observation::Unflipped => &[(Branch::Forward, 1.0)],
        }
    }
}

/// The coefficients of one branch at one time: the observation is
/// `x̃ = alpha·x0 + beta·x1 + gamma·ε`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BranchCoefficients {
    /// Coefficient of `X0`.
    pub alpha: f64,
    /// Coefficient of `X1`.
    pub beta: f64,
    /// Noise level `σ_t`.
    pub gamma: f64,
}

/// A symmetric stochastic interpolant `(I_t, σ_t)` (Eq. 6 with the symmetry of §3.3).
///
/// ```
/// use midpoint::interpolant::{StochasticInterpolant, Branch};
/// let si = StochasticInterpolant::linear(0.0).unwrap();
/// let c = si.branch(0.25, Branch::Flipped);
/// // B = 1 observes I_{1−t}(x0, x1) = t·x0 + (1−t)·x1.
/// assert_eq!((c.alpha, c.beta, c.gamma), (0.25, 0.75, 0.0));
/// ```
#[derive(Debug, Clone)]
pub struct StochasticInterpolant {
    interpolant: Interpolant,
    noise: NoiseSchedule,
}

impl StochasticInterpolant {
    /// Combines an interpolant and a noise schedule (both validated at construction).
    pub fn new(interpolant: Interpolant, noise: NoiseSchedule) -> Self {
        StochasticInterpolant { interpolant, noise }
    }

    /// The paper's interpolant: linear `I_t` and `σ_t = sqrt(σ·t(1−t))` (§5.1).
    pub fn linear(sigma: f64) -> Result<Self, InterpolantError> {
        Ok(Self::new(
            Interpolant::Linear,
            NoiseSchedule::sqrt_bridge(sigma)?,
        ))
    }

    /// The interpolant `I_t`.
    pub fn interpolant(&self) -> &Interpolant {
        &self.interpolant
    }

    /// The noise schedule `σ_t`.
    pub fn noise(&self) -> &NoiseSchedule {
        &self.noise
    }

    /// Coefficients of one branch of Eq. 7 at time `t`. Both branches are computed from the
    /// same `(α(t), β(t))` pair (`B = 1` uses `I_{1−t}(x0,x1) = I_t(x1,x0)`), so that the two
    /// branches of coinciding endpoint pairs land on bit-identical points.
    #[inline]
    pub fn branch(&self, t: f64, branch: Branch) -> BranchCoefficients {
        let (a, b) = self.interpolant.coefficients(t);
        let gamma = self.noise.sigma_t(t);
        match branch {
            Branch::Forward => BranchCoefficients {
                alpha: a,
                beta: b,
                gamma,
            },
            Branch::Flipped => BranchCoefficients {
                alpha: b,
                beta: a,
                gamma,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_symmetric_interpolants() {
        // Would catch a builtin whose formula breaks Eq. 7's symmetry or endpoint conditions.
        Interpolant::Linear.validate().unwrap();
        Interpolant::Trigonometric.validate().unwrap();
        NoiseSchedule::sqrt_bridge(0.3).unwrap().validate().unwrap();
    }

    #[test]
    fn refuses_asymmetric_and_bad_endpoints() {
        let e = Interpolant::custom("sq", |t| 1.0 - t * t, |t| t * t).unwrap_err();
        assert!(matches!(e, InterpolantError::NotSymmetric { .. }));
        let e = Interpolant::custom("half", |t| 0.5 * (1.0 - t), |t| 0.5 * t).unwrap_err();
        assert!(matches!(e, InterpolantError::Endpoints { .. }));
        let e = NoiseSchedule::custom("const", |_| 0.1).unwrap_err();
        assert!(matches!(e, InterpolantError::NoiseAtEndpoints { .. }));
        let e = NoiseSchedule::custom("neg", |t| -t * (1.0 - t)).unwrap_err();
        assert!(matches!(e, InterpolantError::NegativeNoise { .. }));
        let e =
            NoiseSchedule::custom("nan", |t| if t == 0.5 { f64::NAN } else { 0.0 }).unwrap_err();
        assert!(matches!(e, InterpolantError::NonFinite { .. }));
        assert!(matches!(
            NoiseSchedule::sqrt_bridge(f64::NAN),
            Err(InterpolantError::InvalidSigma(_))
        ));
    }
}
