//! Closed forms for two discrete laws and the deterministic interpolant (σ = 0).
//!
//! `X̃_t` is then atomic. The `B = 1` branch with `(X0, X1) = (v, u)` lands on the same point
//! as the `B = 0` branch with `(u, v)`; for built-in interpolants no other triples coincide
//! except at finitely many `t`, so at every other `t` (summing over ordered pairs `u ≠ v` of
//! the union of the supports)
//!
//! ```text
//! D(t) = Σ_{u≠v} ‖v − u‖² (p0(u)p1(v) − p0(v)p1(u))² / (2 (p0(u)p1(v) + p0(v)p1(u)))
//! ```
//!
//! which does not depend on `t` (derivation: `theory/discrete-closed-form.md`). The unflipped
//! observation pools nothing at generic `t`, so there `D_naive(t) = E‖X1 − X0‖²`.

use crate::grouping::group_rows;
use crate::law::Discrete;

/// Union support of two discrete laws with each law's mass on it: `(points, dim, p0, p1)`.
fn union_support(p0: &Discrete, p1: &Discrete, tol: f64) -> (Vec<f64>, usize, Vec<f64>, Vec<f64>) {
    let d = p0.dim();
    let pts: Vec<f64> = p0
        .points()
        .iter()
        .chain(p1.points().iter())
        .copied()
        .collect();
    let (ids, n) = group_rows(&pts, d, tol);
    let mut loc = vec![0.0; n * d];
    let mut seen = vec![false; n];
    let (mut w0, mut w1) = (vec![0.0; n], vec![0.0; n]);
    for (i, &g) in ids.iter().enumerate() {
        if !seen[g] {
            loc[g * d..(g + 1) * d].copy_from_slice(&pts[i * d..(i + 1) * d]);
            seen[g] = true;
        }
        if i < p0.len() {
            w0[g] += p0.weights()[i];
        } else {
            w1[g] += p1.weights()[i - p0.len()];
        }
    }
    (loc, d, w0, w1)
}

/// `D(t)` at generic `t` for discrete `p0`, `p1` and `σ = 0` (the formula above).
///
/// ```
/// use midpoint::discrete::generic_flipped;
/// use midpoint::law::Discrete;
/// use ndarray::array;
/// // δ_0 against δ_1: Δ = 1 surely, so D = 1 — the ordered pairs (0, 1) and (1, 0) each
/// // contribute 1·1/(2·1) = ½.
/// let a = Discrete::new(array![[0.0]], array![1.0]).unwrap();
/// let b = Discrete::new(array![[1.0]], array![1.0]).unwrap();
/// assert_eq!(generic_flipped(&a, &b, 1e-12), 1.0);
/// assert_eq!(generic_flipped(&a, &a, 1e-12), 0.0);
/// ```
pub fn generic_flipped(p0: &Discrete, p1: &Discrete, tol: f64) -> f64 {
    let (loc, d, w0, w1) = union_support(p0, p1, tol);
    let n = w0.len();
    let mut total = 0.0;
    for u in 0..n {
        for v in 0..n {
            if u == v {
                continue;
            }
            let (a, b) = (w0[u] * w1[v], w0[v] * w1[u]);
            if a + b == 0.0 {
                continue;
            }
            let dist2: f64 = (0..d)
                .map(|k| (loc[v * d + k] - loc[u * d + k]).powi(2))
                .sum();
            total += dist2 * (a - b) * (a - b) / (2.0 * (a + b));
        }
    }
    total
}

/// `E‖X1 − X0‖²` for independent discrete `X0 ~ p0`, `X1 ~ p1`: the unflipped `D(t)` at
/// generic `t` when `σ = 0`, and therefore the naive integral of Eq. 3.
///
/// ```
/// use midpoint::discrete::mean_sq_displacement;
/// use midpoint::law::Discrete;
/// use ndarray::array;
/// let p = Discrete::uniform(array![[0.0], [2.0]]).unwrap();
/// assert_eq!(mean_sq_displacement(&p, &p), 2.0); // ½·0 + ½·4
/// ```
pub fn mean_sq_displacement(p0: &Discrete, p1: &Discrete) -> f64 {
    let mut total = 0.0;
    for (x, wx) in p0.points().rows().into_iter().zip(p0.weights()) {
        for (y, wy) in p1.points().rows().into_iter().zip(p1.weights()) {
            let dist2: f64 = x.iter().zip(y).map(|(a, b)| (b - a) * (b - a)).sum();
            total += wx * wy * dist2;
        }
    }
    total
}
