//! The joint law of `(X̃_t, Δ)`, `Δ = X1 − X0`, as a finite mixture with affine conditional
//! means — the representation every exact computation in this crate rests on.
//!
//! Condition on the flip `B` and on the atom of each discrete endpoint. What remains is
//! Gaussian: `X̃_t = α·X0 + β·X1 + γ·ε` with `(α, β) = (α(t), β(t))` for `B = 0` and
//! `(β(t), α(t))` for `B = 1` (Eq. 7), `γ = σ_t`. So `X̃_t` is a mixture of components
//! `N(μ_k, C_k)` (or atoms, where `C_k = 0`), and inside component `k`
//!
//! ```text
//! E[Δ | X̃_t = x, k] = c_k + A_k (x − μ_k),   A_k = Cov(Δ, X̃ | k) · C_k⁻¹.
//! ```
//!
//! | p0, p1       | C_k                  | Cov(Δ, X̃ | k) | c_k        |
//! |--------------|----------------------|---------------|------------|
//! | N, N         | α²S0 + β²S1 + γ²I    | βS1 − αS0     | m1 − m0    |
//! | N, discrete  | α²S0 + γ²I           | −αS0          | y_j − m0   |
//! | discrete, N  | β²S1 + γ²I           | βS1           | m1 − x_i   |
//! | discrete ×2  | γ²I                  | 0             | y_j − x_i  |
//!
//! The displacement field is then `m_t(x) = Σ_k w_k(x) (c_k + A_k (x − μ_k))` with posterior
//! weights `w_k ∝ π_k N(x; μ_k, C_k)`, computed in log space. Atoms carry positive mass and
//! take precedence over continuous components at their location.
//!
//! Components that share a covariance `C_k` form a *class* (all atoms of a discrete law in one
//! branch do, and for `S0 = S1` or `t = ½` both branches do), so the whitening solve is done
//! once per class and each component costs O(d). Gains are stored once per distinct matrix.
//! Components of a class whose means coincide under [`crate::grouping`]'s rule are identical
//! Gaussians whose posterior weights stay in the ratio of their priors, so pooling them
//! (weights added, offsets *and gains* averaged with those weights) is exact. This is what
//! makes `p0 = p1` collapse to a zero field, and the equal-covariance case a single class.

use crate::grouping::{coincide, group_rows};
use crate::interpolant::{Observation, StochasticInterpolant};
use crate::law::{Discrete, Gaussian, Law};
use crate::linalg::Square;

/// Covariance below this (largest diagonal entry) is treated as an atom: it is under the
/// resolution of the coincidence rule for any location of magnitude above 1e-134.
const ATOMIC_VARIANCE: f64 = 1e-280;

/// Components sharing one covariance.
#[derive(Debug, Clone)]
pub(crate) struct Class {
    /// `C_k`, diagonal whenever the endpoint covariances are (then everything below is).
    pub cov: Square,
    pub chol: Square,
    /// `L⁻¹` (lower triangular): whitening by a multiply, no divisions in the hot loop.
    pub chol_inv: Square,
    /// `−½ log det(2π C)`.
    pub log_norm: f64,
    pub start: usize,
    pub end: usize,
}

/// One Gaussian component.
#[derive(Debug, Clone)]
pub(crate) struct Component {
    pub log_weight: f64,
    pub mean: Vec<f64>,
    /// `L⁻¹ μ` with `L` the class's Cholesky factor.
    pub white: Vec<f64>,
    pub offset: Vec<f64>,
    /// Index into [`Posterior::gains`] of `A_k = Cov(Δ, X̃ | k) C_k⁻¹`; `None` when zero.
    pub gain: Option<usize>,
}

/// One atom of `X̃_t` (all coinciding triples pooled).
#[derive(Debug, Clone)]
pub(crate) struct Atom {
    pub location: Vec<f64>,
    pub mass: f64,
    /// `m_t` at the atom: `E[Δ | X̃_t = location]`.
    pub field: Vec<f64>,
}

/// Reusable buffers for [`Posterior::field_into`]; one per thread.
#[derive(Debug, Clone)]
pub struct FieldScratch {
    lr: Vec<f64>,
    y: Vec<f64>,
    v: Vec<f64>,
    av: Vec<f64>,
}

/// `(X̃_t, Δ)` at one time `t` for one pair of laws and one observation model.
#[derive(Debug, Clone)]
pub struct Posterior {
    dim: usize,
    pub(crate) classes: Vec<Class>,
    pub(crate) comps: Vec<Component>,
    /// Distinct gain matrices `A`.
    pub(crate) gains: Vec<Square>,
    /// Sorted by first coordinate.
    pub(crate) atoms: Vec<Atom>,
    atom_scale: f64,
    atom_tol: f64,
}

struct RawComp {
    weight: f64,
    mean: Vec<f64>,
    offset: Vec<f64>,
    gain: Option<Square>,
}

/// A class before component merging: covariance, its Cholesky factor, `−½ log det(2πC)`
/// and components.
struct BuiltClass {
    cov: Square,
    chol: Square,
    log_norm: f64,
    comps: Vec<RawComp>,
}

struct RawClass {
    /// `None`: atomic.
    cov: Option<Square>,
    /// `Cov(Δ, X̃)`; `None` when zero.
    cross: Option<Square>,
    comps: Vec<RawComp>,
}

fn add_scaled(out: &mut [f64], a: f64, x: &[f64]) {
    out.iter_mut().zip(x).for_each(|(o, xi)| *o += a * xi);
}

fn combo(a: f64, x: &[f64], b: f64, y: &[f64]) -> Vec<f64> {
    x.iter().zip(y).map(|(xi, yi)| a * xi + b * yi).collect()
}

fn diff(x: &[f64], y: &[f64]) -> Vec<f64> {
    x.iter().zip(y).map(|(xi, yi)| xi - yi).collect()
}

/// Coincidence of two matrices under [`crate::grouping`]'s rule; the entries a diagonal one
/// omits are zeros, which change neither side of the rule.
fn coincide_square(a: &Square, b: &Square, tol: f64) -> bool {
    if a.is_diagonal() == b.is_diagonal() {
        coincide(a.entries(), b.entries(), tol)
    } else {
        coincide(&a.dense(), &b.dense(), tol)
    }
}

/// A branch's class when one endpoint is Gaussian, `N(m, S)`, and the other discrete (rows 2
/// and 3 of the table above): the Gaussian enters `X̃` with coefficient `c` (`α` for `X0`, `β`
/// for `X1`), so `C = c²S + γ²I` and `Cov(Δ, X̃) = ∓c·S`; one component per atom `y`, at
/// `α·x0 + β·x1` with offset `x1 − x0`, of weight `pb` times the atom's.
fn mixed_class(
    n: &Gaussian,
    q: &Discrete,
    gaussian_is_x0: bool,
    (a, b, g2): (f64, f64, f64),
    pb: f64,
) -> RawClass {
    let s = n.cov_square();
    let m = n.mean().to_vec();
    let (c, c_delta) = if gaussian_is_x0 { (a, -a) } else { (b, b) };
    let mut cov = s.scaled(c * c);
    cov.add_identity(g2);
    let comps = q
        .points()
        .rows()
        .into_iter()
        .zip(q.weights())
        .map(|(y, &w)| {
            let y = y.to_vec();
            let (x0, x1) = if gaussian_is_x0 { (&m, &y) } else { (&y, &m) };
            RawComp {
                weight: pb * w,
                mean: combo(a, x0, b, x1),
                offset: diff(x1, x0),
                gain: None,
            }
        })
        .collect();
    RawClass {
        cov: (c != 0.0 || g2 != 0.0).then_some(cov),
        cross: Some(s.scaled(c_delta)),
        comps,
    }
}

impl Posterior {
    /// Builds the mixture at time `t` (not validated here: callers check `t` and dimensions).
    pub(crate) fn new(
        p0: &Law,
        p1: &Law,
        si: &StochasticInterpolant,
        t: f64,
        obs: Observation,
        atom_tol: f64,
    ) -> Posterior {
        let d = p0.dim();
        let mut raw: Vec<RawClass> = Vec::new();
        for &(branch, pb) in obs.branches() {
            let c = si.branch(t, branch);
            let (a, b, g2) = (c.alpha, c.beta, c.gamma * c.gamma);
            let class = match (p0, p1) {
                (Law::Gaussian(n0), Law::Gaussian(n1)) => {
                    let (s0, s1) = (n0.cov_square(), n1.cov_square());
                    let m0 = n0.mean().to_vec();
                    let m1 = n1.mean().to_vec();
                    let mut cov = Square::combo(a * a, &s0, b * b, &s1);
                    cov.add_identity(g2);
                    RawClass {
                        cov: (a != 0.0 || b != 0.0 || g2 != 0.0).then_some(cov),
                        cross: Some(Square::combo(-a, &s0, b, &s1)),
                        comps: vec![RawComp {
                            weight: pb,
                            mean: combo(a, &m0, b, &m1),
                            offset: diff(&m1, &m0),
                            gain: None,
                        }],
                    }
                }
                (Law::Gaussian(n0), Law::Discrete(q1)) => mixed_class(n0, q1, true, (a, b, g2), pb),
                (Law::Discrete(q0), Law::Gaussian(n1)) => {
                    mixed_class(n1, q0, false, (a, b, g2), pb)
                }
                (Law::Discrete(q0), Law::Discrete(q1)) => {
                    let mut comps = Vec::with_capacity(q0.len() * q1.len());
                    for (x, &wx) in q0.points().rows().into_iter().zip(q0.weights()) {
                        let x = x.to_vec();
                        for (y, &wy) in q1.points().rows().into_iter().zip(q1.weights()) {
                            let y = y.to_vec();
                            comps.push(RawComp {
                                weight: pb * wx * wy,
                                mean: combo(a, &x, b, &y),
                                offset: diff(&y, &x),
                                gain: None,
                            });
                        }
                    }
                    RawClass {
                        cov: (g2 != 0.0).then_some(Square::scaled_identity(d, g2)),
                        cross: None,
                        comps,
                    }
                }
            };
            raw.push(class);
        }
        Self::assemble(d, raw, atom_tol)
    }

    fn assemble(d: usize, raw: Vec<RawClass>, atom_tol: f64) -> Posterior {
        let mut atoms_raw: Vec<RawComp> = Vec::new();
        let mut classes: Vec<BuiltClass> = Vec::new();
        for rc in raw {
            let chol = rc.cov.as_ref().and_then(|cov| {
                let max_diag = (0..d).map(|i| cov.diag(i)).fold(0.0, f64::max);
                if max_diag <= ATOMIC_VARIANCE {
                    None
                } else {
                    cov.cholesky()
                }
            });
            let (cov, chol) = match (rc.cov, chol) {
                (Some(cov), Some(chol)) => (cov, chol),
                _ => {
                    atoms_raw.extend(rc.comps);
                    continue;
                }
            };
            let log_norm =
                -0.5 * (chol.log_det_from_chol() + d as f64 * (2.0 * std::f64::consts::PI).ln());
            let gain = rc
                .cross
                .filter(|k| k.entries().iter().any(|&v| v != 0.0))
                .map(|k| k.mul(&chol.inverse_from_chol()));
            let mut comps = rc.comps;
            comps.iter_mut().for_each(|c| c.gain = gain.clone());
            match classes
                .iter()
                .position(|c2| coincide_square(&c2.cov, &cov, atom_tol))
            {
                Some(i) => classes[i].comps.extend(comps),
                None => classes.push(BuiltClass {
                    cov,
                    chol,
                    log_norm,
                    comps,
                }),
            }
        }

        let mut out_classes = Vec::new();
        let mut comps = Vec::new();
        let mut gains: Vec<Square> = Vec::new();
        for BuiltClass {
            cov,
            chol,
            log_norm,
            comps: raw_comps,
        } in classes
        {
            let start = comps.len();
            for merged in merge_by_location(d, raw_comps, atom_tol) {
                if merged.weight <= 0.0 {
                    continue;
                }
                let mut white = merged.mean.clone();
                chol.solve_lower_in_place(&mut white);
                let gain = merged.gain.map(|a| {
                    gains
                        .iter()
                        .position(|g| coincide_square(g, &a, atom_tol))
                        .unwrap_or_else(|| {
                            gains.push(a);
                            gains.len() - 1
                        })
                });
                comps.push(Component {
                    log_weight: merged.weight.ln(),
                    mean: merged.mean,
                    white,
                    offset: merged.offset,
                    gain,
                });
            }
            let chol_inv = chol.lower_inverse();
            out_classes.push(Class {
                cov,
                chol,
                chol_inv,
                log_norm,
                start,
                end: comps.len(),
            });
        }

        let mut atoms: Vec<Atom> = merge_by_location(d, atoms_raw, atom_tol)
            .into_iter()
            .filter(|a| a.weight > 0.0)
            .map(|a| Atom {
                location: a.mean,
                mass: a.weight,
                field: a.offset,
            })
            .collect();
        atoms.sort_by(|a, b| a.location[0].total_cmp(&b.location[0]));
        let atom_scale = atoms
            .iter()
            .flat_map(|a| a.location.iter())
            .fold(0.0f64, |m, x| m.max(x.abs()));
        Posterior {
            dim: d,
            classes: out_classes,
            comps,
            gains,
            atoms,
            atom_scale,
            atom_tol,
        }
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The classes that hold at least one component.
    pub(crate) fn nonempty_classes(&self) -> impl Iterator<Item = &Class> {
        self.classes.iter().filter(|c| c.end > c.start)
    }

    /// Scratch buffers sized for this posterior.
    pub fn scratch(&self) -> FieldScratch {
        FieldScratch {
            lr: vec![0.0; self.comps.len()],
            y: vec![0.0; self.dim],
            v: vec![0.0; self.dim * self.gains.len()],
            av: vec![0.0; self.dim],
        }
    }

    pub(crate) fn find_atom(&self, x: &[f64]) -> Option<&Atom> {
        if self.atoms.is_empty() {
            return None;
        }
        let xs = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let window = self.atom_tol * (1.0 + xs.max(self.atom_scale));
        let lo = self
            .atoms
            .partition_point(|a| a.location[0] < x[0] - window);
        self.atoms[lo..]
            .iter()
            .take_while(|a| a.location[0] <= x[0] + window)
            .find(|a| coincide(&a.location, x, self.atom_tol))
    }

    /// `m_t(x) = E[Δ | X̃_t = x]` into `out`. Returns `false` where `X̃_t` has no mass near `x`
    /// (off the atoms of a purely atomic law, or so far out that every density underflows).
    pub fn field_into(&self, x: &[f64], out: &mut [f64], s: &mut FieldScratch) -> bool {
        if let Some(atom) = self.find_atom(x) {
            out.copy_from_slice(&atom.field);
            return true;
        }
        self.continuous_field_into(x, out, s)
    }

    /// The field of the continuous part alone (atoms ignored): what the density part of
    /// `X̃_t` sees almost everywhere.
    pub(crate) fn continuous_field_into(
        &self,
        x: &[f64],
        out: &mut [f64],
        s: &mut FieldScratch,
    ) -> bool {
        self.continuous_core(x, out, s).is_some()
    }

    /// The hot loop of field evaluation; returns `(max log-responsibility, Σ exp(lr − max))`.
    #[inline]
    fn continuous_core(
        &self,
        x: &[f64],
        out: &mut [f64],
        s: &mut FieldScratch,
    ) -> Option<(f64, f64)> {
        let d = self.dim;
        if self.comps.is_empty() {
            return None;
        }
        let mut max = f64::NEG_INFINITY;
        for class in &self.classes {
            class.chol_inv.lower_matvec(x, &mut s.y);
            let base = class.log_norm;
            for k in class.start..class.end {
                let c = &self.comps[k];
                let q: f64 =
                    s.y.iter()
                        .zip(&c.white)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                let lr = c.log_weight + base - 0.5 * q;
                s.lr[k] = lr;
                max = max.max(lr);
            }
        }
        if !max.is_finite() {
            return None;
        }
        let mut total = 0.0;
        for lr in s.lr.iter_mut() {
            // The leading component needs no exp (one fewer per point for two components).
            *lr = if *lr == max { 1.0 } else { (*lr - max).exp() };
            total += *lr;
        }
        let inv_total = 1.0 / total;
        out.iter_mut().for_each(|o| *o = 0.0);
        if !self.gains.is_empty() {
            s.v.iter_mut().for_each(|v| *v = 0.0);
        }
        for (k, c) in self.comps.iter().enumerate() {
            let w = s.lr[k] * inv_total;
            add_scaled(out, w, &c.offset);
            if let Some(g) = c.gain {
                let v = &mut s.v[g * d..(g + 1) * d];
                for i in 0..d {
                    v[i] += w * (x[i] - c.mean[i]);
                }
            }
        }
        for (g, a) in self.gains.iter().enumerate() {
            a.matvec(&s.v[g * d..(g + 1) * d], &mut s.av);
            add_scaled(out, 1.0, &s.av);
        }
        Some((max, total))
    }
}

/// Pools components whose means coincide: weights add, offsets and gains average with the
/// weights (a missing gain counts as zero; a pooled gain that cancels to rounding level is
/// dropped).
fn merge_by_location(d: usize, comps: Vec<RawComp>, tol: f64) -> Vec<RawComp> {
    if comps.len() <= 1 {
        return comps;
    }
    let means: Vec<f64> = comps.iter().flat_map(|c| c.mean.iter().copied()).collect();
    let (ids, n) = group_rows(&means, d, tol);
    // (pooled component with weighted sums, largest |gain entry| seen)
    let mut out: Vec<Option<(RawComp, f64)>> = (0..n).map(|_| None).collect();
    for (c, &g) in comps.into_iter().zip(&ids) {
        let gmax = c.gain.as_ref().map_or(0.0, |a| {
            a.entries().iter().fold(0.0f64, |m, v| m.max(v.abs()))
        });
        let entry = out[g].get_or_insert_with(|| {
            (
                RawComp {
                    weight: 0.0,
                    mean: c.mean.clone(),
                    offset: vec![0.0; d],
                    gain: None,
                },
                0.0,
            )
        });
        entry.0.weight += c.weight;
        add_scaled(&mut entry.0.offset, c.weight, &c.offset);
        if let Some(a) = &c.gain {
            let acc = entry.0.gain.get_or_insert_with(|| a.zeros_like());
            acc.add_scaled(c.weight, a);
        }
        entry.1 = entry.1.max(gmax);
    }
    out.into_iter()
        .flatten()
        .map(|(mut c, gmax)| {
            if c.weight > 0.0 {
                let w = c.weight;
                c.offset.iter_mut().for_each(|o| *o /= w);
                if let Some(a) = c.gain.as_mut() {
                    a.entries_mut().iter_mut().for_each(|v| *v /= w);
                }
                let pooled = c.gain.as_ref().map_or(0.0, |a| {
                    a.entries().iter().fold(0.0f64, |m, v| m.max(v.abs()))
                });
                if pooled <= tol * gmax {
                    c.gain = None;
                }
            }
            c
        })
        .collect()
}
