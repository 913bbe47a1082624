//! Random endpoint laws for the property tests.
//!
//! Gaussians: mean in [−1.5, 1.5]^d, covariance `A Aᵀ + 0.2 I` with `A` uniform in [−1, 1],
//! so eigenvalues lie in [0.2, d + 0.2] (well conditioned, every shape of correlation).
//! Discrete laws: 1–4 points on the grid {−2, −1, −½, 0, ½, 1, 2}^d, so two laws often share
//! support points (the case where flipped branches pool), with weights bounded away from 0.
#![allow(dead_code)]

use midpoint::{Discrete, Gaussian, Law, StochasticInterpolant};
use ndarray::{Array1, Array2};
use proptest::prelude::*;

pub fn gaussian(d: usize) -> impl Strategy<Value = Law> {
    (
        prop::collection::vec(-1.5f64..1.5, d),
        prop::collection::vec(-1.0f64..1.0, d * d),
    )
        .prop_map(move |(m, a)| {
            let a = Array2::from_shape_vec((d, d), a).unwrap();
            let cov = a.dot(&a.t()) + Array2::<f64>::eye(d) * 0.2;
            Gaussian::new(Array1::from(m), cov).unwrap().into()
        })
}

pub fn gaussian_any_dim(max_d: usize) -> impl Strategy<Value = Law> {
    (1..=max_d).prop_flat_map(gaussian)
}

pub fn gaussian_pair(max_d: usize) -> impl Strategy<Value = (Law, Law)> {
    (1..=max_d).prop_flat_map(|d| (gaussian(d), gaussian(d)))
}

const GRID: [f64; 7] = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0];

pub fn discrete(d: usize) -> impl Strategy<Value = Law> {
    (1usize..=4)
        .prop_flat_map(move |n| {
            (
                prop::collection::vec(0usize..GRID.len(), n * d),
                prop::collection::vec(0.1f64..1.0, n),
            )
        })
        .prop_map(move |(idx, w)| {
            let n = w.len();
            let pts = Array2::from_shape_fn((n, d), |(i, j)| GRID[idx[i * d + j]]);
            let total: f64 = w.iter().sum();
            let w = Array1::from_iter(w.iter().map(|x| x / total));
            Discrete::new(pts, w).unwrap().into()
        })
}

pub fn discrete_pair(max_d: usize) -> impl Strategy<Value = (Law, Law)> {
    (1..=max_d).prop_flat_map(|d| (discrete(d), discrete(d)))
}

/// One Gaussian and one discrete law (in either order) in dimension 1.
pub fn mixed_pair() -> impl Strategy<Value = (Law, Law)> {
    (gaussian(1), discrete(1), any::<bool>())
        .prop_map(|(g, p, flip)| if flip { (p, g) } else { (g, p) })
}

/// Any pair whose exact values come from closed forms or quadrature (d ≤ 2 or 1).
pub fn exact_pair() -> impl Strategy<Value = (Law, Law)> {
    prop_oneof![gaussian_pair(2), discrete_pair(2), mixed_pair()]
}

/// A pair and an interpolant whose divergences all have exact routes within the default work
/// budget: 2-D discrete pairs only with σ = 0 (with noise their time integrals fall back to
/// Monte Carlo — that route is tested in monte_carlo.rs).
pub fn exact_case() -> impl Strategy<Value = (Law, Law, StochasticInterpolant)> {
    prop_oneof![
        (gaussian_pair(2), interpolant()).prop_map(|((a, b), s)| (a, b, s)),
        (discrete_pair(1), interpolant()).prop_map(|((a, b), s)| (a, b, s)),
        (mixed_pair(), interpolant()).prop_map(|((a, b), s)| (a, b, s)),
        (discrete_pair(2), deterministic()).prop_map(|((a, b), s)| (a, b, s)),
    ]
}

/// Linear or trigonometric interpolant with σ = 0.
pub fn deterministic() -> impl Strategy<Value = StochasticInterpolant> {
    prop_oneof![Just("linear"), Just("trig")].prop_map(|name| {
        StochasticInterpolant::new(
            midpoint::Interpolant::from_name(name).unwrap(),
            midpoint::NoiseSchedule::sqrt_bridge(0.0).unwrap(),
        )
    })
}

/// Asserts a value came from an exact route.
pub fn is_exact(e: &midpoint::Evaluation) -> bool {
    e.method != midpoint::Method::MonteCarlo
}

pub fn interpolant() -> impl Strategy<Value = StochasticInterpolant> {
    (
        prop_oneof![Just("linear"), Just("trig")],
        prop_oneof![Just(0.0), 0.01f64..0.5],
    )
        .prop_map(|(name, sigma)| {
            StochasticInterpolant::new(
                midpoint::Interpolant::from_name(name).unwrap(),
                midpoint::NoiseSchedule::sqrt_bridge(sigma).unwrap(),
            )
        })
}

/// Whether two laws are the same law (same kind, parameters equal to 1e-12).
pub fn same_law(a: &Law, b: &Law) -> bool {
    let close = |x: &[f64], y: &[f64]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-12)
    };
    match (a, b) {
        (Law::Gaussian(g), Law::Gaussian(h)) => {
            close(g.mean().as_slice().unwrap(), h.mean().as_slice().unwrap())
                && close(
                    &g.cov().iter().copied().collect::<Vec<_>>(),
                    &h.cov().iter().copied().collect::<Vec<_>>(),
                )
        }
        (Law::Discrete(p), Law::Discrete(q)) => {
            // Compare as measures: every point of p has the same mass in q.
            p.len() == q.len()
                && p.points()
                    .rows()
                    .into_iter()
                    .zip(p.weights())
                    .all(|(x, w)| {
                        q.points()
                            .rows()
                            .into_iter()
                            .zip(q.weights())
                            .any(|(y, v)| {
                                close(x.as_slice().unwrap(), y.as_slice().unwrap())
                                    && (w - v).abs() < 1e-12
                            })
                    })
        }
        _ => false,
    }
}

/// `|a − b| ≤ bound_a + bound_b + slack·max(|a|, |b|)`: two exact values agree within their
/// error bounds plus rounding.
pub fn agree(a: &midpoint::Evaluation, b: &midpoint::Evaluation, slack: f64) -> bool {
    (a.value - b.value).abs()
        <= a.error_bound + b.error_bound + slack * a.value.abs().max(b.value.abs()) + 1e-15
}
