//! What the exact routes of [`super`] return: a value of `D(t)` (Eq. 1) with its error bound
//! and the [`Method`] that obtained it (every public result reports it), and the
//! rounding-level bound of a closed form.

/// How a value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// A closed-form expression (exact up to floating-point rounding).
    ClosedForm,
    /// Deterministic quadrature with an error bound.
    Quadrature,
    /// Monte Carlo with the exact field; the bound is a 95% interval half-width.
    MonteCarlo,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::ClosedForm => "closed-form",
            Method::Quadrature => "quadrature",
            Method::MonteCarlo => "monte-carlo",
        })
    }
}

/// An exact (non-random) value with its error bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exact {
    pub value: f64,
    pub error: f64,
    pub method: Method,
    pub evals: u64,
}

impl Exact {
    /// A quadrature result: `value` with error bound `error` after `evals` integrand calls.
    pub(crate) fn quadrature(value: f64, error: f64, evals: u64) -> Exact {
        Exact {
            value,
            error,
            method: Method::Quadrature,
            evals,
        }
    }
}

/// Rounding-level bound for a closed form: a few ulps per term of the sums involved.
pub(crate) fn rounding_bound(terms: f64, magnitude: f64) -> f64 {
    8.0 * f64::EPSILON * terms * magnitude.abs()
}
