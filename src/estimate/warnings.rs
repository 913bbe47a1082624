//! What the caller of an estimate must know to read it ([`Warning`]): conditions under which
//! the estimate is computed as documented but its interval does not mean what a 95% interval
//! of `D_mid` (Eq. 2) or `D_t-mid` (Eq. 8) should. The report carries them (`warnings` in the
//! JSON) and the CLI prints each as one line on stderr.
//!
//! Each warning names its cause and what would remove it; the measurements behind the numbers
//! are in `docs/two-sample.md`, "High dimension".

use super::options::DivergenceKind;
use super::rff;

/// One condition that qualifies an estimate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Warning {
    /// What kind of condition.
    pub kind: WarningKind,
    /// One line for a person: the cause, its effect on the estimate, and the remedy.
    pub message: String,
}

/// The conditions [`Warning`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// `X0` and `X1` share rows although neither repeats a row of its own
    /// ([`overlap`](super::overlap)).
    SharedRows,
    /// The standard error is conditional on the critics (no jackknife).
    ConditionalSe,
    /// The critic cannot represent the field, so the estimate bounds `D` from below.
    LowerBound,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// `shared` distinct rows of `X0` are also rows of `X1`, neither repeating its own.
pub(crate) fn shared_rows(shared: usize, n0: usize, n1: usize) -> Warning {
    Warning {
        kind: WarningKind::SharedRows,
        message: format!(
            "x0 and x1 share {shared} rows (of {n0} and {n1}) though neither repeats a row of its \
             own, so they look drawn from the same data; the estimate assumes two independent \
             samples and shared rows pull it down: drop them from one side"
        ),
    }
}

/// The RFF critic's jackknife did not run: `need` bytes for its fewest groups against
/// `budget` (the jackknife's fixed budget or the memory available).
pub(crate) fn conditional_se_rff(features: usize, need: u64, budget: u64, why: &str) -> Warning {
    Warning {
        kind: WarningKind::ConditionalSe,
        message: format!(
            "no jackknife: with {features} critic features its refits need {} but {why} is {}; \
             the standard error is the one given the critics, blind to their noise, and the \
             interval too narrow where the critics are noisy (high d, small n); \
             use --features to lower the features, or fewer dimensions",
            crate::resources::human_bytes(need as u128),
            crate::resources::human_bytes(budget as u128),
        ),
    }
}

/// The kNN critic's standard error (always conditional).
pub(crate) fn conditional_se_knn() -> Warning {
    Warning {
        kind: WarningKind::ConditionalSe,
        message: "the kNN critic has no jackknife: the standard error is the one given the \
                  critics, blind to their noise, and its intervals were not measured for \
                  coverage; the default RFF critic's were"
            .into(),
    }
}

/// The RFF critic in dimension `d`, if it has no product terms there.
///
/// Why from `d` alone, and why no `n` would do: above `d = 21` the critic is random features
/// plus linear terms ([`rff::quadratic_terms`]), and the fields of even a Gaussian shift are
/// near products `x·g(μᵀx)` near `t = 0`. Measured (`docs/two-sample.md`, "High dimension"),
/// `D_t-mid` between `N(0, I)` and `N(μ, I)`, `‖μ‖ = 1`: 17–38% recovered at `d = 32` and 64
/// for every `n` from 10³ to 1.6·10⁴, the interval narrowing around the low value as `n` grew
/// (`d = 32`, `n = 1.6·10⁴`: 0.49 ± 0.02 for an exact 1.50). Under `p0 = p1` the field is 0,
/// there is nothing to underfit, and the interval and the sign-flip test stay valid.
pub(crate) fn lower_bound(d: usize, divergence: DivergenceKind) -> Option<Warning> {
    if rff::quadratic_terms(d + 1) > 0 {
        return None;
    }
    let name = match divergence {
        DivergenceKind::Mid => "D_mid",
        DivergenceKind::TMid => "D_t-mid",
    };
    Some(Warning {
        kind: WarningKind::LowerBound,
        message: format!(
            "d = {d} > {}: the critic has no product terms, so it underfits curved fields and \
             the estimate and its interval bound {name} from below, however large n is (a \
             Gaussian shift's D_t-mid was 17-38% recovered at d = 32 and 64 for n from 1000 to \
             16000, the interval narrowing around the low value); the test's p-value stays \
             valid, and equal laws still give 0 without bias",
            max_quadratic_dim()
        ),
    })
}

/// The largest `d` whose critic has the product terms.
fn max_quadratic_dim() -> usize {
    (1..)
        .take_while(|&d| rff::quadratic_terms(d + 1) > 0)
        .last()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lower_bound_warning_starts_where_the_product_terms_stop() {
        // Would catch a warning that fires while the critic still has its products (d ≤ 21:
        // (d+1)(d+2)/2 ≤ 253), or stays silent after.
        assert_eq!(max_quadratic_dim(), 21);
        assert!(lower_bound(21, DivergenceKind::TMid).is_none());
        let w = lower_bound(22, DivergenceKind::Mid).expect("d = 22 has no products");
        assert_eq!(w.kind, WarningKind::LowerBound);
        assert!(w.message.starts_with("d = 22 > 21:"), "{}", w.message);
        assert!(
            w.message.contains("bound D_mid from below"),
            "{}",
            w.message
        );
    }
}
