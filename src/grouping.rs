//! When two floating-point locations are "the same point".
//!
//! Discrete endpoint laws make `X̃_t` atomic (σ = 0), and the exact displacement field must
//! pool every `(X0, X1, B)` triple that lands on the same location. Locations are computed as
//! `α·x + β·y` in floating point, so two triples that coincide in exact arithmetic may differ
//! by a few units in the last place. The rule used throughout this crate:
//!
//! > `u` and `v` coincide iff `‖u − v‖_∞ ≤ τ · (1 + max(‖u‖_∞, ‖v‖_∞))`, with `τ = 1e-12`
//! > by default ([`DEFAULT_ATOM_TOL`]); coincidence is then closed transitively.
//!
//! Rounding in `α·x + β·y` is a few ulps (≈ 1e-16 relative), so `τ = 1e-12` leaves a margin
//! of about 4,000 ulps, while two genuinely distinct inputs closer than 1e-12 relative are
//! below what double precision inputs resolve in practice. The absolute floor (the `1 +`)
//! keeps points near the origin from being split by cancellation.
//! `theory/discrete-closed-form.md` discusses the rule.

/// Default relative tolerance `τ` of the coincidence rule.
pub const DEFAULT_ATOM_TOL: f64 = 1e-12;

/// The coincidence rule for two points of equal length.
///
/// ```
/// use midpoint::grouping::coincide;
/// assert!(coincide(&[0.1 + 0.2], &[0.3], 1e-12));
/// assert!(!coincide(&[0.3], &[0.3 + 1e-9], 1e-12));
/// ```
#[inline]
pub fn coincide(u: &[f64], v: &[f64], tol: f64) -> bool {
    let mut diff = 0.0f64;
    let mut scale = 0.0f64;
    for (a, b) in u.iter().zip(v) {
        diff = diff.max((a - b).abs());
        scale = scale.max(a.abs()).max(b.abs());
    }
    diff <= tol * (1.0 + scale)
}

/// Groups the rows of a row-major `n × d` point array under the coincidence rule (closed
/// transitively). Returns a group id per row, numbered in order of first appearance, and the
/// number of groups. Cost: a sort plus a sweep, `O(n log n + n·w·d)` with `w` the number of
/// points within the tolerance window along the first coordinate.
///
/// ```
/// use midpoint::grouping::group_rows;
/// let pts = [0.0, 1.0, 1.0 + 1e-15, 2.0];
/// let (ids, n) = group_rows(&pts, 1, 1e-12);
/// assert_eq!((ids, n), (vec![0, 1, 1, 2], 3));
/// ```
pub fn group_rows(points: &[f64], dim: usize, tol: f64) -> (Vec<usize>, usize) {
    assert!(dim > 0 && points.len() % dim == 0);
    let n = points.len() / dim;
    let row = |i: usize| &points[i * dim..(i + 1) * dim];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| row(a)[0].total_cmp(&row(b)[0]));
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    // Largest magnitude, to size the sweep window conservatively.
    let scale = points.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let window = tol * (1.0 + scale);
    for (k, &i) in order.iter().enumerate() {
        for &j in &order[k + 1..] {
            if row(j)[0] - row(i)[0] > window {
                break;
            }
            if coincide(row(i), row(j), tol) {
                let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                if ri != rj {
                    parent[ri.max(rj)] = ri.min(rj);
                }
            }
        }
    }
    let mut ids = vec![usize::MAX; n];
    let mut root_id = vec![usize::MAX; n];
    let mut count = 0;
    for i in 0..n {
        let r = find(&mut parent, i);
        if root_id[r] == usize::MAX {
            root_id[r] = count;
            count += 1;
        }
        ids[i] = root_id[r];
    }
    (ids, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitive_chains_are_one_group() {
        // Three points each within tolerance of the next, but not first-to-last.
        let e = 0.8e-12;
        let (ids, n) = group_rows(&[0.0, 0.0, e, 0.0, 2.0 * e, 0.0], 2, 1e-12);
        assert_eq!(n, 1);
        assert_eq!(ids, vec![0, 0, 0]);
    }

    #[test]
    fn distinct_points_stay_apart_in_every_coordinate() {
        // Same first coordinate, different second: must not be merged.
        let (ids, n) = group_rows(&[1.0, 0.0, 1.0, 1e-6, 1.0, 0.0], 2, 1e-12);
        assert_eq!(n, 2);
        assert_eq!(ids, vec![0, 1, 0]);
    }
}
