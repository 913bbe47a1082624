//! The Gaussian oracle of the flow-map losses (`../shared/notes/flow-maps.md` §5.4): for
//! `ρ0 = N(0, I)`, `ρ1 = N(μ, diag(σ1²))` (anisotropic), an independent coupling and the
//! linear interpolant, the marginal is `N(tμ, diag(σ_t²))` with `σ_t² = (1−t)² + t²σ1²`, the
//! exact flow map is `X_{s,t}(x) = m_t + (σ_t/σ_s)(x − m_s)` and its velocity
//! `b_t(x) = μ + ((tσ1² − (1−t))/σ_t²)(x − m_t)`, all written here in tch ops so that the
//! losses' own JVPs differentiate them. Every residual must vanish there to 1e-10 in f64 on
//! both JVP routes, be clearly positive for a perturbed map, and the index errors of the
//! printed formulas must show.

use midpoint_train::methods::flow_map::map::{map, per_sample, Diagonal, TwoTime};
use midpoint_train::methods::flow_map::residuals::{
    diagonal, eulerian, fmm, lagrangian, mean_square, progressive, semigroup,
};
use midpoint_train::train::jvp::{jvp, JvpRoute};
use tch::{Device, Kind, Tensor};

const O: (Kind, Device) = (Kind::Double, Device::Cpu);
const ROUTES: [JvpRoute; 2] = [JvpRoute::ForwardMode, JvpRoute::DoubleBackward];

struct Gauss {
    mu: Tensor,
    s1: Tensor,
}

impl Gauss {
    fn new() -> Gauss {
        Gauss {
            mu: Tensor::from_slice(&[1.0f64, -0.5, 2.0]).reshape([1, 3]),
            s1: Tensor::from_slice(&[0.6f64, 1.5, 0.3]).reshape([1, 3]),
        }
    }
    fn m(&self, t: &Tensor) -> Tensor {
        t.reshape([-1, 1]) * &self.mu
    }
    fn sd(&self, t: &Tensor) -> Tensor {
        let t = t.reshape([-1, 1]);
        let one_minus: Tensor = 1.0 - &t;
        (one_minus.square() + t.square() * self.s1.square()).sqrt()
    }
    fn exact(&self, x: &Tensor, s: &Tensor, t: &Tensor) -> Tensor {
        self.m(t) + self.sd(t) / self.sd(s) * (x - self.m(s))
    }
    fn b(&self, x: &Tensor, t: &Tensor) -> Tensor {
        let tt = t.reshape([-1, 1]);
        let one_minus: Tensor = 1.0 - &tt;
        let c = (&tt * self.s1.square() - one_minus) / self.sd(t).square();
        &self.mu + c * (x - self.m(t))
    }
    /// `v_{s,t} = (X_{s,t}(x) − x)/(t − s)`, and `b_s` on the diagonal (a safe denominator
    /// there, so that no 0/0 reaches a gradient).
    fn v(&self, x: &Tensor, s: &Tensor, t: &Tensor) -> Tensor {
        let gap = (t - s).reshape([-1, 1]);
        let on = gap.abs().lt(1e-12);
        let safe = gap.where_self(&on.logical_not(), &gap.ones_like());
        let off = (self.exact(x, s, t) - x) / safe;
        self.b(x, s).where_self(&on, &off)
    }
    fn draws(&self, n: i64) -> (Tensor, Tensor) {
        (
            Tensor::randn([n, 3], O),
            &self.mu + &self.s1 * Tensor::randn([n, 3], O),
        )
    }
}

fn interpolant(x0: &Tensor, x1: &Tensor, t: &Tensor) -> Tensor {
    (1.0 - per_sample(t, x0)) * x0 + per_sample(t, x0) * x1
}

fn max_abs(r: &Tensor) -> f64 {
    r.abs().max().double_value(&[])
}

/// Everything the residuals are evaluated on: pairs, `s < t`, `γ`.
struct Batch {
    x0: Tensor,
    x1: Tensor,
    s: Tensor,
    t: Tensor,
    gamma: Tensor,
}

impl Batch {
    fn new(g: &Gauss, n: i64) -> Batch {
        tch::manual_seed(1);
        let (x0, x1) = g.draws(n);
        let s = Tensor::rand([n], O) * 0.9;
        let t = &s + Tensor::rand([n], O) * (1.0 - &s);
        Batch {
            x0,
            x1,
            s,
            t,
            gamma: Tensor::rand([n], O),
        }
    }
    fn i_s(&self) -> Tensor {
        interpolant(&self.x0, &self.x1, &self.s)
    }
    fn i_t(&self) -> Tensor {
        interpolant(&self.x0, &self.x1, &self.t)
    }
    fn i_dot(&self) -> Tensor {
        &self.x1 - &self.x0
    }
}

/// Every residual of the module at the two-time velocity `v` (and `b` as the teacher), as
/// `(name, residual)`.
fn all_residuals(
    v: &dyn TwoTime,
    g: &Gauss,
    bt: &Batch,
    route: JvpRoute,
) -> Vec<(&'static str, Tensor)> {
    let teacher = |x: &Tensor, t: &Tensor| g.b(x, t);
    let exact = |x: &Tensor, s: &Tensor, t: &Tensor| g.v(x, s, t);
    let (i_s, i_t) = (bt.i_s(), bt.i_t());
    let own = Diagonal(v);
    let a_s = v.v(&i_s, &bt.s, &bt.s);
    let b_s = g.b(&i_s, &bt.s);
    let half = bt.gamma.full_like(0.5);
    let (s, t) = (&bt.s, &bt.t);
    let (fmm_d, fmm_inv) = fmm(v, &i_t, &bt.i_dot(), s, t, route).unwrap();
    vec![
        (
            "LSD",
            lagrangian(v, &own, &i_s, s, t, false, route).unwrap(),
        ),
        (
            "LMD",
            lagrangian(v, &teacher, &i_s, s, t, true, route).unwrap(),
        ),
        ("ESD", eulerian(v, &i_s, s, t, &a_s, route).unwrap()),
        ("EMD", eulerian(v, &i_s, s, t, &b_s, route).unwrap()),
        ("PSD-U", semigroup(v, &i_s, s, t, &bt.gamma, true)),
        ("PSD-M", semigroup(v, &i_s, s, t, &half, true)),
        ("FMM ∂_t − b_t(I_t)", &fmm_d + bt.i_dot() - g.b(&i_t, t)),
        ("FMM invertibility", fmm_inv),
        (
            "PFMM (exact teacher)",
            progressive(v, &exact, &i_s, s, t, 4),
        ),
    ]
}

#[test]
fn every_residual_vanishes_at_the_exact_flow_map_on_both_routes() {
    let g = Gauss::new();
    let bt = Batch::new(&g, 64);
    let v = |x: &Tensor, s: &Tensor, t: &Tensor| g.v(x, s, t);
    // The oracle itself: X_{s,t} of the exact v is the exact map, and ∂_t X = b_t(X).
    let x = bt.i_s();
    assert!(max_abs(&(map(&v, &x, &bt.s, &bt.t) - g.exact(&x, &bt.s, &bt.t))) < 1e-12);
    for route in ROUTES {
        for (name, r) in all_residuals(&v, &g, &bt, route) {
            let worst = max_abs(&r);
            assert!(worst < 1e-10, "{route:?} {name}: max |r| = {worst:e}");
        }
    }
}

#[test]
fn every_residual_is_clearly_positive_for_a_perturbed_map() {
    // v + 0.2·(s + 2t)·tanh(x): smooth, nonlinear in x, not a flow map of any velocity.
    let g = Gauss::new();
    let bt = Batch::new(&g, 256);
    let v = |x: &Tensor, s: &Tensor, t: &Tensor| {
        g.v(x, s, t) + per_sample(&(s + t * 2.0), x) * x.tanh() * 0.2
    };
    for route in ROUTES {
        for (name, r) in all_residuals(&v, &g, &bt, route) {
            let r = mean_square(&r).double_value(&[]);
            assert!(r > 1e-3, "{route:?} {name}: mean |r|² = {r:e}");
        }
    }
}

#[test]
fn the_printed_index_errors_leave_residuals_at_the_exact_map() {
    // [SD] eq. 14 (v_{t,t}(I_s) as ESD's tangent), [FMM] Alg. 2 (b_t(I_s) as EMD's), the
    // total-derivative reading of FMM, and PFMM's printed grid t_k = s + (k−1)(t − s).
    let g = Gauss::new();
    let bt = Batch::new(&g, 256);
    let v = |x: &Tensor, s: &Tensor, t: &Tensor| g.v(x, s, t);
    let (i_s, i_t) = (bt.i_s(), bt.i_t());
    let ms = |r: &Tensor| mean_square(r).double_value(&[]);
    for route in ROUTES {
        let esd = eulerian(&v, &i_s, &bt.s, &bt.t, &v(&i_s, &bt.t, &bt.t), route).unwrap();
        assert!(ms(&esd) > 1e-2, "{route:?} ESD as printed: {}", ms(&esd));
        let emd = eulerian(&v, &i_s, &bt.s, &bt.t, &g.b(&i_s, &bt.t), route).unwrap();
        assert!(ms(&emd) > 1e-2, "{route:?} EMD as printed: {}", ms(&emd));
        // d/dt X_{s,t}(X_{t,s}(I_t)) with I_t moving too.
        let ones = bt.t.ones_like();
        let (_, total) = jvp(
            route,
            |p| {
                let it = interpolant(&bt.x0, &bt.x1, &p[0]);
                map(&v, &map(&v, &it, &p[0], &bt.s), &bt.s, &p[0])
            },
            &[&bt.t],
            &[&ones],
        )
        .unwrap();
        let r = &total - g.b(&i_t, &bt.t);
        assert!(ms(&r) > 1e-1, "{route:?} FMM total derivative: {}", ms(&r));
    }
    // The printed grid: K compositions of steps of size t − s end at s + (K − 1)(t − s) ≠ t.
    let exact = |x: &Tensor, s: &Tensor, t: &Tensor| g.v(x, s, t);
    let mut y = i_s.shallow_clone();
    for k in 1..4 {
        let a = &bt.s + (&bt.t - &bt.s) * (k - 1) as f64;
        let b = &bt.s + (&bt.t - &bt.s) * k as f64;
        y = map(&exact, &y, &a, &b);
    }
    let r = map(&v, &i_s, &bt.s, &bt.t) - y;
    assert!(ms(&r) > 1e-1, "PFMM printed grid: {}", ms(&r));
}

#[test]
fn the_semigroup_residual_is_the_map_residual_over_the_gap() {
    // (t − s)·r_PSD = X_{s,t}(x) − X_{u,t}(X_{s,u}(x)) for any v ([SD] eq. 23 from 15).
    let g = Gauss::new();
    let bt = Batch::new(&g, 32);
    let v = |x: &Tensor, s: &Tensor, t: &Tensor| x.sin() * per_sample(&(s - t * 3.0), x) + 1.0;
    let x = bt.i_s();
    let u = &bt.gamma * &bt.s + (1.0 - &bt.gamma) * &bt.t;
    let lhs = per_sample(&(&bt.t - &bt.s), &x) * semigroup(&v, &x, &bt.s, &bt.t, &bt.gamma, false);
    let rhs = map(&v, &x, &bt.s, &bt.t) - map(&v, &map(&v, &x, &bt.s, &u), &u, &bt.t);
    assert!(max_abs(&(lhs - rhs)) < 1e-12);
}

#[test]
fn the_diagonal_loss_at_the_exact_velocity_is_the_irreducible_variance() {
    // At fixed t, E|b_t(I_t) − İ|² = Σ_i (1 + σ1ᵢ² − c_i²σ_{t,i}²), c = (tσ1² − (1−t))/σ_t²
    // (İ = x1 − x0 has variance 1 + σ1², and b_t(I_t) is its conditional mean). Monte Carlo
    // with n = 200k: tolerance 6 SE of the sample mean (false failure ~2e-9).
    let g = Gauss::new();
    tch::manual_seed(5);
    let n = 200_000;
    let (x0, x1) = g.draws(n);
    let tv = 0.3;
    let t = Tensor::full([n], tv, O);
    let v = |x: &Tensor, s: &Tensor, t: &Tensor| g.v(x, s, t);
    let r = diagonal(&v, &interpolant(&x0, &x1, &t), &(&x1 - &x0), &t);
    let per = r
        .square()
        .sum_dim_intlist([1].as_slice(), false, Kind::Double);
    let mean = per.mean(Kind::Double).double_value(&[]);
    let se = per.std(true).double_value(&[]) / (n as f64).sqrt();
    let s1: Vec<f64> = Vec::try_from(g.s1.flatten(0, -1)).unwrap();
    let exact: f64 = s1
        .iter()
        .map(|s| {
            let var = (1.0 - tv).powi(2) + tv * tv * s * s;
            let c = (tv * s * s - (1.0 - tv)) / var;
            1.0 + s * s - c * c * var
        })
        .sum();
    assert!(
        (mean - exact).abs() < 6.0 * se,
        "{mean} vs {exact} (SE {se})"
    );
}
