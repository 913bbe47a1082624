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

/// A weighted point set as far as squared distances to another one need it.
struct Cloud {
    /// Total weight `W`.
    weight: f64,
    /// Weighted mean `μ`.
    mean: Vec<f64>,
    /// `V = Σ w‖x − μ‖²`.
    scatter: f64,
}

impl Cloud {
    /// The cloud of rows `rows` of the row-major `loc` (dimension `d`) with weights `w`.
    fn new(loc: &[f64], d: usize, rows: impl Iterator<Item = (usize, f64)> + Clone) -> Cloud {
        let weight: f64 = rows.clone().map(|(_, w)| w).sum();
        let mut mean = vec![0.0; d];
        for (i, w) in rows.clone() {
            mean.iter_mut()
                .zip(&loc[i * d..(i + 1) * d])
                .for_each(|(m, x)| *m += w * x);
        }
        if weight > 0.0 {
            mean.iter_mut().for_each(|m| *m /= weight);
        }
        let scatter = rows
            .map(|(i, w)| {
                let x = &loc[i * d..(i + 1) * d];
                w * x
                    .iter()
                    .zip(&mean)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
            })
            .sum();
        Cloud {
            weight,
            mean,
            scatter,
        }
    }

    /// `Σ_{u∈P} Σ_{v∈Q} w(u) w'(v) ‖u − v‖² = W W' ‖μ − μ'‖² + W' V + W V'`: expanding
    /// `‖u − v‖²` about the means, the cross terms sum to zero. Every term is nonnegative, so
    /// no cancellation, and the cost is that of the two clouds, not of their pairs.
    fn cross(&self, q: &Cloud) -> f64 {
        let dm: f64 = self
            .mean
            .iter()
            .zip(&q.mean)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        self.weight * q.weight * dm + q.weight * self.scatter + self.weight * q.scatter
    }
}

/// `D(t)` at generic `t` for discrete `p0`, `p1` and `σ = 0` (the formula above).
///
/// Computed without visiting the pairs (issue 16: a million points took hours): writing
/// `a = p0(u)p1(v)`, `b = p0(v)p1(u)`, a pair where only one of them is nonzero contributes
/// `‖v − u‖²(a + b)/2`, and those pairs are the products of whole point sets — points of `p0`
/// only against points of `p1`, shared points against points of `p1` only — summed by
/// [`Cloud::cross`]. Pairs of shared points, where `r = p1/p0` takes the values `r_u`, `r_v`,
/// contribute `p0(u)p0(v)‖v − u‖²(r_v − r_u)²/(2(r_u + r_v))`: zero within a group of equal
/// ratios, and a constant times a cloud cross term between two groups. Cost: `O(n log n)`
/// grouping, `O(n d)` sums and `O(G² d)` for the `G` distinct ratios on the common support
/// (`G = 1` for `p0 = p1`; `G ≈ n` only when the two laws weight one support differently
/// everywhere, which is then quadratic again).
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
    generic_flipped_terms(p0, p1, tol).0
}

/// [`generic_flipped`] and the number of terms summed (for a rounding bound).
pub(crate) fn generic_flipped_terms(p0: &Discrete, p1: &Discrete, tol: f64) -> (f64, usize) {
    let (loc, d, w0, w1) = union_support(p0, p1, tol);
    let n = w0.len();
    let only0 = Cloud::new(
        &loc,
        d,
        (0..n).filter(|&i| w1[i] == 0.0).map(|i| (i, w0[i])),
    );
    let only1 = Cloud::new(
        &loc,
        d,
        (0..n).filter(|&i| w0[i] == 0.0).map(|i| (i, w1[i])),
    );
    let to1 = Cloud::new(&loc, d, (0..n).filter(|&i| w1[i] > 0.0).map(|i| (i, w1[i])));
    let shared: Vec<usize> = (0..n).filter(|&i| w0[i] > 0.0 && w1[i] > 0.0).collect();
    let shared0 = Cloud::new(&loc, d, shared.iter().map(|&i| (i, w0[i])));
    // Pairs with one nonzero product, both orders: ‖v − u‖² p0(u)p1(v) for u in p0 only and
    // v in p1, and for u shared and v in p1 only.
    let mut total = only0.cross(&to1) + shared0.cross(&only1);
    // Shared points grouped by their ratio r = p1/p0 (equal ratios contribute nothing).
    let mut by_ratio: Vec<(f64, usize)> = shared.iter().map(|&i| (w1[i] / w0[i], i)).collect();
    by_ratio.sort_by(|a, b| a.0.total_cmp(&b.0));
    let groups: Vec<(f64, Cloud)> = by_ratio
        .chunk_by(|a, b| a.0 == b.0)
        .map(|g| {
            (
                g[0].0,
                Cloud::new(&loc, d, g.iter().map(|&(_, i)| (i, w0[i]))),
            )
        })
        .collect();
    for (i, (ri, gi)) in groups.iter().enumerate() {
        for (rj, gj) in &groups[i + 1..] {
            // Both orders of each pair: 2 · (r_j − r_i)²/(2(r_i + r_j)).
            total += (rj - ri) * (rj - ri) / (ri + rj) * gi.cross(gj);
        }
    }
    (total, n + groups.len() * groups.len())
}

/// `E‖X1 − X0‖²` for independent discrete `X0 ~ p0`, `X1 ~ p1`: the unflipped `D(t)` at
/// generic `t` when `σ = 0`, and therefore the naive integral of Eq. 3. Cost `O((n0 + n1) d)`.
///
/// ```
/// use midpoint::discrete::mean_sq_displacement;
/// use midpoint::law::Discrete;
/// use ndarray::array;
/// let p = Discrete::uniform(array![[0.0], [2.0]]).unwrap();
/// assert_eq!(mean_sq_displacement(&p, &p), 2.0); // ½·0 + ½·4
/// ```
pub fn mean_sq_displacement(p0: &Discrete, p1: &Discrete) -> f64 {
    // Σ_x Σ_y p0(x)p1(y)‖y − x‖² as one cloud cross term: O((n0 + n1) d), not O(n0 n1 d).
    let d = p0.dim();
    let cloud = |q: &Discrete| {
        let loc: Vec<f64> = q.points().iter().copied().collect();
        Cloud::new(&loc, d, q.weights().iter().copied().enumerate())
    };
    cloud(p0).cross(&cloud(p1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The pairwise sum of the module formula, as it was computed before issue 16: the
    /// oracle for the grouped computation.
    fn pairwise(p0: &Discrete, p1: &Discrete, tol: f64) -> f64 {
        let (loc, d, w0, w1) = union_support(p0, p1, tol);
        let n = w0.len();
        let mut total = 0.0;
        for u in 0..n {
            for v in 0..n {
                let (a, b) = (w0[u] * w1[v], w0[v] * w1[u]);
                if u == v || a + b == 0.0 {
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

    fn law(points: &[(f64, f64, f64)], d: usize) -> Discrete {
        let pts = ndarray::Array2::from_shape_fn((points.len(), d), |(i, k)| {
            if k == 0 {
                points[i].0
            } else {
                points[i].1
            }
        });
        let total: f64 = points.iter().map(|p| p.2).sum();
        Discrete::new(pts, points.iter().map(|p| p.2 / total).collect()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// The grouped sums equal the pairwise formula: supports partly shared (points drawn
        /// from a small grid so that they often coincide), ratios equal and unequal, d = 1, 2.
        /// A wrong set in a cross term, a missing factor 2 or a sign in the ratio term would
        /// be off by far more than 1e-12 relative.
        #[test]
        fn grouped_sums_match_the_pairs(
            a in proptest::collection::vec((0..4i32, 0..3i32, 1..4i32), 1..7),
            b in proptest::collection::vec((0..4i32, 0..3i32, 1..4i32), 1..7),
            d in 1..3usize,
        ) {
            let f = |v: &Vec<(i32, i32, i32)>| {
                v.iter().map(|&(x, y, w)| (x as f64 * 0.7, y as f64 - 1.0, w as f64)).collect::<Vec<_>>()
            };
            let (p0, p1) = (law(&f(&a), d), law(&f(&b), d));
            let want = pairwise(&p0, &p1, 1e-12);
            let got = generic_flipped(&p0, &p1, 1e-12);
            prop_assert!((got - want).abs() <= 1e-12 * want.abs().max(1e-300) + 1e-15, "{got} vs {want}");
            let mut msd = 0.0;
            for (x, wx) in p0.points().rows().into_iter().zip(p0.weights()) {
                for (y, wy) in p1.points().rows().into_iter().zip(p1.weights()) {
                    msd += wx * wy * x.iter().zip(y).map(|(a, b)| (b - a) * (b - a)).sum::<f64>();
                }
            }
            let got = mean_sq_displacement(&p0, &p1);
            prop_assert!((got - msd).abs() <= 1e-12 * msd.max(1e-300) + 1e-15, "{got} vs {msd}");
        }
    }

    /// p0 = p1 stays exactly zero, as the pairwise formula gives it.
    #[test]
    fn equal_laws_give_exactly_zero() {
        let p = law(&[(0.0, 1.0, 1.0), (2.0, -1.0, 3.0), (0.5, 0.5, 2.0)], 2);
        assert_eq!(generic_flipped(&p, &p, 1e-12), 0.0);
    }
}
