//! The generator's gradient of Algorithm 1, with the critic frozen at its optimum, against
//! finite differences of the core crate's **exact** divergence (Prop. 3.3 + the envelope
//! theorem), for an affine generator and a Gaussian target.
//!
//! **Claim.** Write `J(θ, f) = ∫₀^½ E[2⟨f_t(X̃_t), Δ⟩ − ‖f_t(X̃_t)‖²] dt` with `Δ = X1 − X0`,
//! `X0 = G_θ(Z)`. Prop. 3.3: `D_t-mid^{I,σ}(p_θ, p_1) = max_f J(θ, f)`, attained at the flipped
//! field `f* = m̃_t` of `(p_θ, p_1)`. The first variation of `J` in `f` vanishes at `f*`
//! (`J(θ, f) = D − E‖f − m̃_t‖²`), so by the envelope (Danskin) theorem
//! `∇_θ D_t-mid(p_θ, p_1) = ∂_θ J(θ, f)|_{f = f*_θ}`: differentiate through the samples
//! (`X0 = G_θ(Z)` inside `Δ` **and** inside `X̃_t`) with `f` held fixed. That is exactly what the
//! trainer's generator step does with a frozen critic, so with the frozen critic set to the exact
//! field the expected gradient of its loss `L_θ` must equal `c · ∇_θ D`.
//!
//! **The factor `c`.** The core's `d_tmid` is `∫₀^½ D(t) dt` (Eq. 8, *not* averaged over `t`;
//! see `midpoint::divergence`), while `L_θ` averages over `t ~ U[0, ½]`, whose density is 2:
//! `E[L_θ] = 2 ∫₀^½ J_t dt`, so `c = 2` for `mgm`. The `midpoint` variant fixes `t = ½`, where
//! the flip is void and `E[L_θ] = D(½) = D_mid` (the core's `d_mid`): `c = 1`.
//!
//! **Setup.** `p_θ = N(μ, AAᵀ)` from `G_θ(z) = μ + A z`, `z ~ N(0, I_d)`, `θ = (μ, A)` as f64
//! leaf tensors; the frozen critic is the exact flipped field of `(p_θ, p_1)` written in tch ops
//! ([`ExactField`]: autograd flows through its input `x̃` as through a network, not through its
//! dependence on `θ`, which is built from plain numbers). It is itself checked against the
//! core's `midpoint::field::displacement_field`. Losses come from the trainer's own
//! `Mgm::generator_objective` (its `observe` and `generator_loss`); the field sees `t` as the
//! float32 tensor the trainer hands every network, so it is the optimum at `t` rounded to
//! float32 — a relative perturbation of `t` below 6e-8, whose effect on the gradient is of that
//! order, far below the Monte Carlo error.
//!
//! **Monte Carlo.** `R` independent batches of `N` draws (fixed seeds); the per-component
//! standard error `SE` is the batch-to-batch standard deviation over `√R`. **Reference**:
//! `c ·` central differences of the core's exact value (quadrature to relative 1e-12, or closed
//! form) in each coordinate of `θ`, at steps `h` and `h/2`; the step's error estimate `|FD(h) −
//! FD(h/2)|` (three times the leading `O(h²)` error of `FD(h/2)`) plus the quadrature's error
//! bound divided by the step is asserted below `SE/10`.
//!
//! **Assertions.** `|MC − FD| ≤ 5 SE` per component. For `K` components tested at 5 SE each the
//! false-failure probability of a fresh seed is, by the union bound, `≈ K · 5.7e-7` with
//! two-sided normal tails; since `SE` is itself estimated from `R = 400` batches the Student-t
//! tail (399 degrees of freedom) applies, `8.6e-7` per component. The eight cases here
//! (`d ∈ {1, 2}` × `σ ∈ {0, 0.5}` × `mgm`, `midpoint`) have `K = 4·2 + 4·6 = 32` components:
//! `≈ 2.8e-5` in all. To keep the test from being vacuous, `SE < |FD|/10` for the largest component of each case. The
//! path-dropping test shows that the 5-SE check would catch a trainer that stopped either of the
//! two gradient paths. The `#[ignore]` tests measure (and print) what a learned critic and the
//! critic-only noise of Table 1c do to the gradient.

use midpoint::divergence::{d_mid, d_tmid, ExactOptions, Method};
use midpoint::field::displacement_field;
use midpoint::interpolant::Observation;
use midpoint::{Gaussian, Law, StochasticInterpolant};
use midpoint_train::methods::mgm::{generator_loss, Mgm, MgmConfig, Side, Variant};
use midpoint_train::nets::mlp::{Mlp, MlpConfig};
use midpoint_train::train::network::{Field, Generator, Network};
use ndarray::{Array1, Array2};
use std::sync::Mutex;
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

/// libtorch's RNG and thread pool are global: tests in this binary take turns.
static TORCH: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    let g = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    g
}

const DOUBLE: (Kind, Device) = (Kind::Double, Device::Cpu);

fn tensor(v: &[f64], shape: &[i64]) -> Tensor {
    Tensor::from_slice(v).reshape(shape)
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

/// `p_θ = N(μ, AAᵀ)` and the target `p_1 = N(m1, S1)`, matrices row-major `d × d`.
#[derive(Debug, Clone)]
struct Problem {
    d: usize,
    mu: Vec<f64>,
    a: Vec<f64>,
    m1: Vec<f64>,
    s1: Vec<f64>,
}

impl Problem {
    /// `N(0.2, 0.8²)` against `N(0.7, 1.3²)`.
    fn one_d() -> Self {
        Problem {
            d: 1,
            mu: vec![0.2],
            a: vec![0.8],
            m1: vec![0.7],
            s1: vec![1.3 * 1.3],
        }
    }

    /// A full (non-triangular) `A` against a correlated, non-isotropic target.
    fn two_d() -> Self {
        Problem {
            d: 2,
            mu: vec![0.3, -0.4],
            a: vec![0.9, -0.2, 0.3, 0.6],
            m1: vec![1.0, 0.5],
            s1: vec![1.5, 0.4, 0.4, 0.8],
        }
    }

    fn of_dim(d: usize) -> Self {
        match d {
            1 => Self::one_d(),
            2 => Self::two_d(),
            _ => unreachable!("cases are d = 1 and d = 2"),
        }
    }

    /// `θ = (μ, vec A)`: the order of the gradient components.
    fn theta(&self) -> Vec<f64> {
        [self.mu.as_slice(), self.a.as_slice()].concat()
    }

    fn with_theta(&self, theta: &[f64]) -> Self {
        Problem {
            mu: theta[..self.d].to_vec(),
            a: theta[self.d..].to_vec(),
            ..self.clone()
        }
    }

    fn names(&self) -> Vec<String> {
        let d = self.d;
        (0..d)
            .map(|i| format!("μ[{i}]"))
            .chain((0..d * d).map(|k| format!("A[{},{}]", k / d, k % d)))
            .collect()
    }

    /// `S0 = AAᵀ`.
    fn s0(&self) -> Vec<f64> {
        let d = self.d;
        let mut s = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                s[i * d + j] = (0..d).map(|k| self.a[i * d + k] * self.a[j * d + k]).sum();
            }
        }
        s
    }

    /// `(p_θ, p_1)` as the core's laws.
    fn laws(&self) -> (Law, Law) {
        let d = self.d;
        let gaussian = |m: &[f64], s: Vec<f64>| -> Law {
            Gaussian::new(
                Array1::from(m.to_vec()),
                Array2::from_shape_vec((d, d), s).unwrap(),
            )
            .unwrap()
            .into()
        };
        (
            gaussian(&self.mu, self.s0()),
            gaussian(&self.m1, self.s1.clone()),
        )
    }

    /// `n` draws of `p_1` from torch's stream.
    fn sample_target(&self, n: i64) -> Tensor {
        let d = self.d as i64;
        let chol = tensor(&self.s1, &[d, d]).linalg_cholesky(false);
        Tensor::randn([n, d], DOUBLE).matmul(&chol.tr()) + tensor(&self.m1, &[d])
    }
}

/// `G_θ(z) = μ + A z` with `θ = (μ, A)` as leaf tensors that require gradients.
struct Affine {
    mu: Tensor,
    a: Tensor,
}

impl Affine {
    fn new(p: &Problem) -> Self {
        let d = p.d as i64;
        Affine {
            mu: tensor(&p.mu, &[d]).set_requires_grad(true),
            a: tensor(&p.a, &[d, d]).set_requires_grad(true),
        }
    }
}

impl Generator for Affine {
    fn generate(&self, z: &Tensor, _train: bool) -> Tensor {
        &self.mu + z.matmul(&self.a.tr())
    }
}

/// The exact flipped displacement field `m̃_t` of `(N(m0, S0), N(m1, S1))` for the linear
/// interpolant with `σ_t² = σ·t(1−t)`, in tch ops (differentiable in `x`; the laws are
/// constants). Branch `B = 0` observes `(1−t)X0 + tX1 + σ_t ε`, `B = 1` observes
/// `tX0 + (1−t)X1 + σ_t ε`; in the branch with coefficients `(α, β)`, `X̃ ~ N(μ_k, C_k)` with
/// `μ_k = α m0 + β m1`, `C_k = α²S0 + β²S1 + σ_t² I` and
/// `E[Δ | X̃ = x, k] = (m1 − m0) + (βS1 − αS0) C_k⁻¹ (x − μ_k)`; the field weighs the two by
/// their posterior probabilities (equal priors ½, softmax of the log densities).
struct ExactField {
    m0: Tensor,
    s0: Tensor,
    m1: Tensor,
    s1: Tensor,
    sigma: f64,
}

impl ExactField {
    fn new(p: &Problem, sigma: f64) -> Self {
        let d = p.d as i64;
        ExactField {
            m0: tensor(&p.mu, &[d]),
            s0: tensor(&p.s0(), &[d, d]),
            m1: tensor(&p.m1, &[d]),
            s1: tensor(&p.s1, &[d, d]),
            sigma,
        }
    }
}

impl Field for ExactField {
    fn field(&self, x: &Tensor, t: &Tensor, _train: bool) -> Tensor {
        let d = self.m0.size()[0];
        let t = t.to_kind(Kind::Double);
        let s = t.ones_like() - &t;
        let noise = (&t * &s * self.sigma).reshape([-1, 1, 1]) * Tensor::eye(d, DOUBLE);
        let (mut log_density, mut conditional) = (Vec::new(), Vec::new());
        for (alpha, beta) in [(&s, &t), (&t, &s)] {
            let (a1, b1) = (alpha.reshape([-1, 1]), beta.reshape([-1, 1]));
            let (a2, b2) = (alpha.reshape([-1, 1, 1]), beta.reshape([-1, 1, 1]));
            let mean = &a1 * &self.m0 + &b1 * &self.m1;
            let cov = a2.square() * &self.s0 + b2.square() * &self.s1 + &noise;
            let cross = &b2 * &self.s1 - &a2 * &self.s0;
            let chol = cov.linalg_cholesky(false);
            let r = (x - mean).unsqueeze(-1);
            let solved = r.cholesky_solve(&chol, false);
            let log_det = chol.diagonal(0, -2, -1).log().sum_dim_intlist(
                [-1i64].as_slice(),
                false,
                None::<Kind>,
            ) * 2.0;
            let quad = (&r * &solved).sum_dim_intlist([1i64, 2].as_slice(), false, None::<Kind>);
            log_density.push((quad + log_det) * -0.5);
            conditional.push(cross.matmul(&solved).squeeze_dim(-1) + (&self.m1 - &self.m0));
        }
        let w = Tensor::stack(&log_density, 1).softmax(1, Kind::Double);
        w.select(1, 0).unsqueeze(1) * &conditional[0]
            + w.select(1, 1).unsqueeze(1) * &conditional[1]
    }
}

/// A float32 network fed and read in float64 (the casts are differentiable).
struct DoubleIo(Mlp);

impl Field for DoubleIo {
    fn field(&self, x: &Tensor, t: &Tensor, train: bool) -> Tensor {
        self.0
            .field(&x.to_kind(Kind::Float), t, train)
            .to_kind(Kind::Double)
    }
}

/// `E[L_θ] = c · (the core's exact value)`: `t ~ U[0, ½]` has density 2, so `E_t[J_t] =
/// 2 ∫₀^½ J_t dt = 2 D_t-mid` for `mgm`; `t = ½` gives `D(½) = D_mid` for `midpoint`.
fn loss_factor(variant: Variant) -> f64 {
    match variant {
        Variant::Mgm => 2.0,
        Variant::Midpoint => 1.0,
        Variant::Naive => unreachable!("the naive objective is not a divergence"),
    }
}

/// The core's exact `D_t-mid^{lin,σ}` (`mgm`) or `D_mid` (`midpoint`) with its error bound.
fn exact_value(p: &Problem, variant: Variant, sigma: f64) -> (f64, f64) {
    let (p0, p1) = p.laws();
    let si = StochasticInterpolant::linear(sigma).unwrap();
    let opts = ExactOptions {
        rel_tol: 1e-12,
        ..ExactOptions::default()
    };
    let e = match variant {
        Variant::Mgm => d_tmid(&p0, &p1, &si, &opts),
        Variant::Midpoint => d_mid(&p0, &p1, &si, &opts),
        Variant::Naive => unreachable!("the naive objective is not a divergence"),
    }
    .unwrap();
    assert_ne!(e.method, Method::MonteCarlo, "need an exact route: {e:?}");
    (e.value, e.error_bound)
}

/// `c · ∇_θ` of the exact value by central differences, with an error estimate per component.
struct Reference {
    grad: Vec<f64>,
    error: Vec<f64>,
}

/// Central differences at steps `h` and `h/2`; the reference is the `h/2` one, its error
/// estimate `|FD(h) − FD(h/2)|` (three times the leading `O(h²)` term) plus the quadrature's
/// error bounds over the step.
fn reference_gradient(p: &Problem, variant: Variant, sigma: f64) -> Reference {
    const H: f64 = 1e-3;
    let theta = p.theta();
    let c = loss_factor(variant);
    let central = |i: usize, h: f64| -> (f64, f64) {
        let at = |s: f64| {
            let mut th = theta.clone();
            th[i] += s * h;
            exact_value(&p.with_theta(&th), variant, sigma)
        };
        let ((plus, e_plus), (minus, e_minus)) = (at(1.0), at(-1.0));
        ((plus - minus) / (2.0 * h), (e_plus + e_minus) / (2.0 * h))
    };
    let (mut grad, mut error) = (Vec::new(), Vec::new());
    for i in 0..theta.len() {
        let (coarse, _) = central(i, H);
        let (fine, quad) = central(i, H / 2.0);
        grad.push(c * fine);
        error.push(c * ((coarse - fine).abs() + quad));
    }
    Reference { grad, error }
}

/// Which gradient paths of `L_θ` reach `θ`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Paths {
    /// Both (the trainer's `Mgm::generator_objective`).
    Full,
    /// Only through `x̃_t` (inside the critic): `x0` detached in the target `Δ`.
    ObservationOnly,
    /// Only through `Δ`: `x̃_t` built from a detached `x0`.
    TargetOnly,
}

/// Per-component mean and standard error of the batch gradients.
#[derive(Debug, Clone)]
struct McGradient {
    mean: Vec<f64>,
    se: Vec<f64>,
}

/// Monte Carlo budget: `batches` independent batches of `n` draws.
#[derive(Debug, Clone, Copy)]
struct Budget {
    batches: usize,
    n: i64,
}

/// `∂L_θ/∂θ` of each of `batches` batches (torch seeded with `seed`; `z`, then `x1`, then the
/// trainer's `(t, b, ε)` of each batch). The same seed gives the same draws whatever `paths`
/// and `field` are (common random numbers for paired comparisons).
fn batch_gradients<F: Field>(
    p: &Problem,
    mgm: &Mgm,
    field: &F,
    paths: Paths,
    budget: Budget,
    seed: i64,
) -> Vec<Vec<f64>> {
    tch::manual_seed(seed);
    let gen = Affine::new(p);
    (0..budget.batches)
        .map(|_| {
            let z = Tensor::randn([budget.n, p.d as i64], DOUBLE);
            let x1 = p.sample_target(budget.n);
            let loss = match paths {
                Paths::Full => mgm.generator_objective(&gen, field, &z, &x1).unwrap(),
                Paths::ObservationOnly | Paths::TargetOnly => {
                    let x0 = gen.generate(&z, true);
                    let (observed, target) = if paths == Paths::ObservationOnly {
                        (x0.shallow_clone(), x0.detach())
                    } else {
                        (x0.detach(), x0.shallow_clone())
                    };
                    let draw = mgm.draw(Side::Generator, &observed, &x1).unwrap();
                    let pred = field.field(&draw.x_tilde, &draw.t, false);
                    generator_loss(&pred, &target, &x1)
                }
            };
            let grads = Tensor::run_backward(&[&loss], &[&gen.mu, &gen.a], false, false);
            grads.iter().flat_map(values).collect()
        })
        .collect()
}

impl McGradient {
    /// Mean and standard error (batch-to-batch standard deviation over `√R`) of `R` batches.
    fn of(batches: &[Vec<f64>]) -> Self {
        let r = batches.len() as f64;
        let k = batches[0].len();
        let mean: Vec<f64> = (0..k)
            .map(|i| batches.iter().map(|g| g[i]).sum::<f64>() / r)
            .collect();
        let se = (0..k)
            .map(|i| {
                let ss: f64 = batches.iter().map(|g| (g[i] - mean[i]).powi(2)).sum();
                (ss / (r - 1.0) / r).sqrt()
            })
            .collect();
        McGradient { mean, se }
    }

    /// The same of the batch-by-batch differences `a − b` (paired on common draws).
    fn paired(a: &[Vec<f64>], b: &[Vec<f64>]) -> Self {
        let diff: Vec<Vec<f64>> = a
            .iter()
            .zip(b)
            .map(|(x, y)| x.iter().zip(y).map(|(u, v)| u - v).collect())
            .collect();
        Self::of(&diff)
    }
}

fn mc_gradient<F: Field>(
    p: &Problem,
    mgm: &Mgm,
    field: &F,
    paths: Paths,
    budget: Budget,
    seed: i64,
) -> McGradient {
    McGradient::of(&batch_gradients(p, mgm, field, paths, budget, seed))
}

fn mgm(variant: Variant, sigma: f64, critic_sigma: f64) -> Mgm {
    Mgm::new(&MgmConfig {
        critic_sigma,
        ..MgmConfig::linear(variant, sigma)
    })
    .unwrap()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    norm(&a.iter().zip(b).map(|(x, y)| x - y).collect::<Vec<_>>())
}

/// One table row per component: MC ± SE, reference, and the deviation in SEs.
fn table(p: &Problem, mc: &McGradient, reference: &Reference) -> String {
    let mut s = String::new();
    for (i, name) in p.names().iter().enumerate() {
        let dev = (mc.mean[i] - reference.grad[i]) / mc.se[i];
        s += &format!(
            "  {name:7} MC {:+.6} ± {:.6}   FD {:+.6} (err {:.1e})   {dev:+.2} SE\n",
            mc.mean[i], mc.se[i], reference.grad[i], reference.error[i]
        );
    }
    s
}

const BUDGET: Budget = Budget {
    batches: 400,
    n: 2048,
};

/// The MC gradient with the exact critic frozen matches `c · ∇D` within 5 SE per component, on
/// the problem of dimension `d`, at `σ = 0` and `σ = 0.5`.
fn check_frozen_optimal_critic(d: usize, variant: Variant, seed: i64) {
    let p = Problem::of_dim(d);
    for sigma in [0.0, 0.5] {
        let start = Instant::now();
        let reference = reference_gradient(&p, variant, sigma);
        let fd_time = start.elapsed();
        let field = ExactField::new(&p, sigma);
        let mc = mc_gradient(
            &p,
            &mgm(variant, sigma, sigma),
            &field,
            Paths::Full,
            BUDGET,
            seed,
        );
        let report = format!(
            "{} d = {d}, σ = {sigma} (FD {:.1?}, MC {:.1?}):\n{}",
            variant.name(),
            fd_time,
            start.elapsed() - fd_time,
            table(&p, &mc, &reference)
        );
        eprint!("{report}");
        for i in 0..mc.mean.len() {
            assert!(
                reference.error[i] < mc.se[i] / 10.0,
                "FD too coarse\n{report}"
            );
            assert!(
                (mc.mean[i] - reference.grad[i]).abs() <= 5.0 * mc.se[i],
                "{} deviates by more than 5 SE\n{report}",
                p.names()[i]
            );
        }
        let largest = (0..mc.mean.len())
            .max_by(|&i, &j| reference.grad[i].abs().total_cmp(&reference.grad[j].abs()))
            .unwrap();
        assert!(
            mc.se[largest] < reference.grad[largest].abs() / 10.0,
            "vacuous: SE not small against the gradient\n{report}"
        );
    }
}

#[test]
fn exact_tch_field_matches_the_core_field() {
    let _g = lock();
    // Points well inside and in the tails, at times from near 0 to ½, both dimensions, both σ.
    for d in [1usize, 2] {
        let p = Problem::of_dim(d);
        let (p0, p1) = p.laws();
        for sigma in [0.0, 0.5] {
            let si = StochasticInterpolant::linear(sigma).unwrap();
            let field = ExactField::new(&p, sigma);
            for t in [0.01, 0.2, 0.37, 0.5] {
                let core = displacement_field(&p0, &p1, &si, t, Observation::Flipped).unwrap();
                let points: Vec<f64> = (0..5 * d)
                    .map(|k| -3.0 + 1.7 * k as f64 / d as f64)
                    .collect();
                let xs = tensor(&points, &[5, d as i64]);
                // The trainer hands t to networks as float32; 0.01, 0.2, 0.37 are not
                // representable, so feed double here to compare the same t.
                let got = values(&field.field(&xs, &Tensor::full([5], t, DOUBLE), false));
                let want = core
                    .eval_batch(
                        Array2::from_shape_vec((5, d), points.clone())
                            .unwrap()
                            .view(),
                    )
                    .unwrap();
                for (g, w) in got.iter().zip(want.iter()) {
                    assert!(
                        (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
                        "d = {d}, σ = {sigma}, t = {t}: tch {got:?} vs core {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn mgm_gradient_with_exact_critic_is_the_exact_gradient_1d() {
    let _g = lock();
    check_frozen_optimal_critic(1, Variant::Mgm, 11);
}

#[test]
fn mgm_gradient_with_exact_critic_is_the_exact_gradient_2d() {
    let _g = lock();
    check_frozen_optimal_critic(2, Variant::Mgm, 12);
}

#[test]
fn midpoint_gradient_with_exact_critic_is_the_exact_gradient_1d() {
    let _g = lock();
    check_frozen_optimal_critic(1, Variant::Midpoint, 13);
}

#[test]
fn midpoint_gradient_with_exact_critic_is_the_exact_gradient_2d() {
    let _g = lock();
    check_frozen_optimal_critic(2, Variant::Midpoint, 14);
}

/// Dropping either gradient path moves the MC gradient away from `c · ∇D` by more than 5 SE in
/// some component (so the 5-SE check above catches such a regression), and the two partial
/// gradients add up to the full one on the same draws.
#[test]
fn dropping_either_gradient_path_is_detected() {
    let _g = lock();
    for (d, variant, sigma) in [(2, Variant::Mgm, 0.5), (1, Variant::Midpoint, 0.0)] {
        let p = Problem::of_dim(d);
        let reference = reference_gradient(&p, variant, sigma);
        let field = ExactField::new(&p, sigma);
        let mgm = mgm(variant, sigma, sigma);
        let run = |paths| mc_gradient(&p, &mgm, &field, paths, BUDGET, 21);
        let (full, obs, target) = (
            run(Paths::Full),
            run(Paths::ObservationOnly),
            run(Paths::TargetOnly),
        );
        let mut report = format!("{} d = {d}, σ = {sigma}:\n", variant.name());
        for (name, mc) in [("full", &full), ("x̃ only", &obs), ("Δ only", &target)] {
            report += &format!("{name}:\n{}", table(&p, mc, &reference));
        }
        eprint!("{report}");
        for i in 0..full.mean.len() {
            let sum = obs.mean[i] + target.mean[i];
            assert!(
                (sum - full.mean[i]).abs() <= 1e-9 * (1.0 + full.mean[i].abs()),
                "paths do not add up\n{report}"
            );
        }
        for mc in [&obs, &target] {
            let worst = (0..mc.mean.len())
                .map(|i| (mc.mean[i] - reference.grad[i]).abs() / mc.se[i])
                .fold(0.0, f64::max);
            assert!(worst > 5.0, "a dropped path goes unnoticed\n{report}");
        }
    }
}

/// `E‖f − m̃_t‖² / E‖m̃_t‖²` over the field step's observation law (noise `σ'` =
/// `critic_sigma`, that of `mgm`'s field side), on `n` draws seeded with `seed`: how far a critic
/// is from the optimum of Prop. 3.3.
fn relative_field_error<F: Field>(
    p: &Problem,
    mgm: &Mgm,
    critic_sigma: f64,
    critic: &F,
    (n, seed): (i64, i64),
) -> f64 {
    tch::manual_seed(seed);
    let exact = ExactField::new(p, critic_sigma);
    tch::no_grad(|| {
        let z = Tensor::randn([n, p.d as i64], DOUBLE);
        let x0 = Affine::new(p).generate(&z, false);
        let x1 = p.sample_target(n);
        let draw = mgm.draw(Side::Field, &x0, &x1).unwrap();
        let m = exact.field(&draw.x_tilde, &draw.t, false);
        let f = critic.field(&draw.x_tilde, &draw.t, false);
        f64::try_from((f - &m).square().sum(Kind::Double) / m.square().sum(Kind::Double)).unwrap()
    })
}

/// Measurement (printed): the generator's gradient `g_k` from an MLP critic trained for `k`
/// steps of the trainer's `Mgm::field_step` (fresh init, width 64, Adam β1 = 0, batch 256, lr
/// 1e-3, then 1e-4 for the last 10000 steps; the generator fixed) against `c · ∇D`, and against
/// the exact critic's gradient `g*` on the same draws (paired, so its noise is that of the
/// difference), with the critic's relative L² error `E‖f − m̃‖²/E‖m̃‖²`.
#[test]
#[ignore = "measurement (~5 min); run with --ignored --nocapture"]
fn learned_critic_gradient_error() {
    let _g = lock();
    const CHECKPOINTS: [(usize, f64); 9] = [
        (0, 1e-3),
        (1, 1e-3),
        (10, 1e-3),
        (100, 1e-3),
        (1000, 1e-3),
        (3000, 1e-3),
        (10000, 1e-3),
        (30000, 1e-3),
        (40000, 1e-4),
    ];
    let budget = Budget {
        batches: 200,
        n: 2048,
    };
    for (d, sigma) in [(1, 0.0), (2, 0.0), (2, 0.5)] {
        let p = Problem::of_dim(d);
        let variant = Variant::Mgm;
        let mgm = mgm(variant, sigma, sigma);
        let reference = reference_gradient(&p, variant, sigma);
        let g_norm = norm(&reference.grad);
        let exact_batches = batch_gradients(
            &p,
            &mgm,
            &ExactField::new(&p, sigma),
            Paths::Full,
            budget,
            5,
        );
        let exact = McGradient::of(&exact_batches);
        println!(
            "mgm d = {d}, σ = {sigma}: ‖c∇D‖ = {g_norm:.4}; exact critic: ‖g* − c∇D‖/‖c∇D‖ = {:.4} (noise ‖SE‖/‖c∇D‖ = {:.4})",
            distance(&exact.mean, &reference.grad) / g_norm,
            norm(&exact.se) / g_norm
        );
        tch::manual_seed(100);
        let vs = nn::VarStore::new(Device::Cpu);
        let mlp = Mlp::new(
            &vs.root(),
            MlpConfig {
                width: 64,
                ..MlpConfig::field(d as i64)
            },
        );
        let mut critic = Network::new(DoubleIo(mlp), vs, 1e-3).unwrap();
        let gen = Affine::new(&p);
        let mut done = 0;
        let start = Instant::now();
        for (k, lr) in CHECKPOINTS {
            tch::manual_seed(1000 + k as i64);
            critic.opt.set_lr(lr);
            while done < k {
                let z = Tensor::randn([256, d as i64], DOUBLE);
                let x0 = tch::no_grad(|| gen.generate(&z, false));
                let x1 = p.sample_target(256);
                mgm.field_step(&mut critic, &x0, &x1, done).unwrap();
                done += 1;
            }
            critic.vs.freeze();
            let batches = batch_gradients(&p, &mgm, &critic.net, Paths::Full, budget, 5);
            critic.vs.unfreeze();
            let g = McGradient::of(&batches);
            let diff = McGradient::paired(&batches, &exact_batches);
            assert!(g.mean.iter().all(|v| v.is_finite()));
            println!(
                "  k = {k:5} (lr {lr:.0e}): ‖g_k − c∇D‖/‖c∇D‖ = {:.4} (noise {:.4})   ‖g_k − g*‖/‖c∇D‖ = {:.4} (noise {:.4})   critic L² error {:.4}   ({:.0?})",
                distance(&g.mean, &reference.grad) / g_norm,
                norm(&g.se) / g_norm,
                norm(&diff.mean) / g_norm,
                norm(&diff.se) / g_norm,
                relative_field_error(&p, &mgm, sigma, &critic.net, (1 << 16, 6)),
                start.elapsed()
            );
        }
    }
}

/// Measurement (printed): Table 1c's critic-only noise. The generator side uses `σ = 0`, the
/// frozen critic is the exact field for `σ'`; the MC gradient `g` is compared with `c · ∇D_t-mid`
/// at `σ = 0` and at `σ'`, directly and through the paired difference `g − g₀` against the exact
/// `σ = 0` critic on the same draws (`E g₀ = c∇D(0)`, which the tests above check), whose noise
/// is much smaller.
#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn critic_only_noise_gradient() {
    let _g = lock();
    for d in [1, 2] {
        let p = Problem::of_dim(d);
        let variant = Variant::Mgm;
        let at_zero = reference_gradient(&p, variant, 0.0);
        let zero_norm = norm(&at_zero.grad);
        let g0 = batch_gradients(
            &p,
            &mgm(variant, 0.0, 0.0),
            &ExactField::new(&p, 0.0),
            Paths::Full,
            BUDGET,
            31,
        );
        for critic_sigma in [0.01, 0.2] {
            let at_critic = reference_gradient(&p, variant, critic_sigma);
            let batches = batch_gradients(
                &p,
                &mgm(variant, 0.0, critic_sigma),
                &ExactField::new(&p, critic_sigma),
                Paths::Full,
                BUDGET,
                31,
            );
            let mc = McGradient::of(&batches);
            let bias = McGradient::paired(&batches, &g0);
            let shift: Vec<f64> = at_critic
                .grad
                .iter()
                .zip(&at_zero.grad)
                .map(|(a, b)| a - b)
                .collect();
            println!(
                "mgm d = {d}, σ = 0, σ' = {critic_sigma}: direct ‖g − c∇D(0)‖/‖c∇D(0)‖ = {:.4}, ‖g − c∇D(σ')‖/‖c∇D(0)‖ = {:.4} (noise {:.4}); paired ‖E[g − g₀]‖/‖c∇D(0)‖ = {:.5} (noise {:.5}), ‖E[g − g₀] − c(∇D(σ') − ∇D(0))‖/‖c∇D(0)‖ = {:.5}; ‖c∇D(σ') − c∇D(0)‖/‖c∇D(0)‖ = {:.5}",
                distance(&mc.mean, &at_zero.grad) / zero_norm,
                distance(&mc.mean, &at_critic.grad) / zero_norm,
                norm(&mc.se) / zero_norm,
                norm(&bias.mean) / zero_norm,
                norm(&bias.se) / zero_norm,
                distance(&bias.mean, &shift) / zero_norm,
                norm(&shift) / zero_norm,
            );
            let names = p.names();
            for i in 0..names.len() {
                println!(
                    "  {:7} E[g − g₀] {:+.6} ± {:.6}   c∇D(0) {:+.6}   c(∇D(σ') − ∇D(0)) {:+.6}",
                    names[i], bias.mean[i], bias.se[i], at_zero.grad[i], shift[i]
                );
            }
        }
    }
}
