//! `D(t) = E‖m_t(X̃_t)‖²` from the mixture representation of [`crate::posterior`], by the
//! cheapest exact route that applies:
//!
//! 1. **Atoms** contribute `Σ_a P(a)‖m_t(a)‖²` exactly.
//! 2. **One continuous component** (e.g. Gaussian endpoints at `t = ½`, or the unflipped
//!    observation): `m_t` is affine and `E‖m_t‖² = π(‖c‖² + tr(A C Aᵀ))` — closed form.
//! 3. **One covariance class** (equal covariances: Gaussians with `S0 = S1` in any `d`, or
//!    discrete laws with noise): in whitened coordinates the posterior weights depend on `x`
//!    only through its projection `u` on the span of the whitened mean differences, of
//!    dimension `r ≤ K − 1`. With `Q` an orthonormal basis of that span, `G_k = A_k L`,
//!    `δ_k = Qᵀ L⁻¹(μ_k − μ_0)` and `W_g` the weight of the components with gain `g`,
//!    ```text
//!    E[‖m_t‖² | u] = ‖Σ_k w_k(u) (c_k + G_k Q (u − δ_k))‖² + Σ_{g,h} W_g W_h T_gh,
//!    T_gh = tr(G_g G_hᵀ) − tr(G_g Q (G_h Q)ᵀ),
//!    ```
//!    so `D(t)` is an `r`-dimensional integral whatever `d` is (theory/gaussian-closed-form.md).
//!    Used when `r ≤ 2`.
//! 4. **General** mixtures in `d ≤ 2`: each component's expectation by quadrature in its own
//!    Cholesky coordinates `x = μ_j + L_j s`, the field evaluated relative to `μ_j`, with break
//!    points at every narrower component. In one dimension [`one_d`] does the same faster
//!    wherever no break points are needed.
//!
//! Anything else (several covariance classes in `d ≥ 3`, or a mixture too large for the work
//! budget) is reported as needing Monte Carlo.

//!
//! Before any of this, [`eigenframe`] rotates both laws into a common eigenbasis of their
//! Gaussian covariances where one is cheap to find (`S0 = S1`, or one law Gaussian): `D` is
//! rotation invariant, and every matrix above is then diagonal, so routes 2 and 3 cost `O(d)`
//! per time node instead of `O(d³)`.
//!
//! Files: [`value`] (the result and its [`Method`]), [`frame`] (the rotation), [`reduced`]
//! (route 3), [`general`] (route 4) and [`one_d`] (route 4 in one dimension); this one picks
//! the route.

mod frame;
mod general;
mod one_d;
mod reduced;
mod value;

pub(crate) use frame::eigenframe;
pub(crate) use value::Exact;
pub use value::Method;

use crate::linalg::norm2;
use crate::posterior::{Class, Posterior};
use crate::quad::NonFiniteIntegrand;
use value::rounding_bound;

/// Nodes per dimension assumed by the work estimate.
const NODES_PER_DIM: f64 = 300.0;

/// Estimated integrand evaluations × cost per evaluation, to decide against quadrature.
pub(crate) fn quadrature_work(post: &Posterior) -> f64 {
    let k = post.comps.len() as f64;
    let d = post.dim() as f64;
    let r = if post.nonempty_classes().count() == 1 {
        (k - 1.0).min(d)
    } else {
        d
    };
    k * k * d * NODES_PER_DIM.powf(r)
}

/// `D(t)` for this posterior to absolute tolerance `tol`, or `None` when no exact route
/// applies within `max_work`.
pub(crate) fn d_of_posterior(
    post: &Posterior,
    tol: f64,
    max_work: f64,
) -> Result<Option<Exact>, NonFiniteIntegrand> {
    let d = post.dim();
    let atom_part: f64 = post.atoms.iter().map(|a| a.mass * norm2(&a.field)).sum();
    let atom_round = rounding_bound((post.atoms.len() * d) as f64, atom_part);
    let closed = |v: f64, round: f64| Exact {
        value: atom_part + v,
        error: atom_round + round,
        method: Method::ClosedForm,
        evals: 0,
    };
    if post.comps.is_empty() {
        return Ok(Some(closed(0.0, 0.0)));
    }
    let classes: Vec<&Class> = post.nonempty_classes().collect();
    if post.comps.len() == 1 {
        let (class, c) = (classes[0], &post.comps[0]);
        let mut v = norm2(&c.offset);
        if let Some(g) = c.gain {
            v += post.gains[g].trace_acat(&class.cov);
        }
        let v = c.log_weight.exp() * v;
        return Ok(Some(closed(v, rounding_bound((d * d * d) as f64, v))));
    }
    if quadrature_work(post) > max_work {
        return Ok(None);
    }
    let q = if classes.len() == 1 {
        match reduced::reduced(post, classes[0], tol)? {
            Some(q) => q,
            None => return Ok(None),
        }
    } else if d <= 2 {
        general::general(post, tol)?
    } else {
        return Ok(None);
    };
    Ok(Some(Exact {
        value: atom_part + q.value,
        error: atom_round + q.error,
        method: q.method,
        evals: q.evals,
    }))
}
