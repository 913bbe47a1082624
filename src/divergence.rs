//! Exact values of the midpoint divergences between two endpoint laws.
//!
//! | function        | quantity                                             | paper  |
//! |-----------------|------------------------------------------------------|--------|
//! | [`d_t`]         | `D(t) = E‖E[Δ | X̃_t]‖²`, flipped observation         | Eq. 5, integrand of Eq. 8 |
//! | [`d_mid`]       | `D_mid = D(½)`                                       | Eq. 2 (σ = 0, linear) |
//! | [`d_tmid`]      | `D_t-mid^{I,σ} = ∫₀^½ D(t) dt` (not averaged over t) | Eq. 8, Def. 3.2 |
//! | [`d_t_unflipped`]| `E‖E[Δ | X_t]‖²`, unflipped observation             | integrand of Eq. 3 |
//! | [`d_naive`]     | `∫₀¹ E‖E[Δ | X_t]‖² dt`                              | Eq. 3 |
//!
//! Each result carries the [`Method`] that produced it and an error bound: closed forms are
//! exact up to rounding; quadrature targets a relative error of [`ExactOptions::rel_tol`]
//! (1e-10 by default) with the bound described in [`crate::quad`]; where neither applies
//! (several covariance classes in `d ≥ 3`, or mixtures too large for quadrature) the value is
//! a Rao–Blackwellized Monte Carlo estimate with the exact field, and the bound is the
//! half-width of its 95% interval.

use crate::discrete;
use crate::error::{check_dims, check_time, DivergenceError};
pub use crate::exact::Method;
use crate::exact::{d_of_posterior, eigenframe, Exact};
use crate::grouping::DEFAULT_ATOM_TOL;
use crate::interpolant::{Observation, StochasticInterpolant};
use crate::law::{Discrete, Law};
use crate::montecarlo::{rao_blackwell, Setup, TimeLaw};
use crate::posterior::Posterior;
use crate::quad::{integrate, NonFiniteIntegrand};
use std::cell::Cell;

/// Accuracy and fallback settings of the exact computations.
#[derive(Debug, Clone, PartialEq)]
pub struct ExactOptions {
    /// Target relative error of quadrature (default 1e-10).
    pub rel_tol: f64,
    /// Coincidence tolerance for atoms (default [`DEFAULT_ATOM_TOL`]).
    pub atom_tol: f64,
    /// Largest quadrature work (estimated integrand evaluations × mixture size, summed over
    /// the time nodes of a time integral) before falling back to Monte Carlo (default 2e9,
    /// about a minute of one core).
    pub max_work: f64,
    /// Monte Carlo draws when it comes to that (default 2²²).
    pub mc_samples: usize,
    /// Seed of the Monte Carlo fallback.
    pub seed: u64,
}

impl Default for ExactOptions {
    fn default() -> Self {
        ExactOptions {
            rel_tol: 1e-10,
            atom_tol: DEFAULT_ATOM_TOL,
            max_work: 2e9,
            mc_samples: 1 << 22,
            seed: 0,
        }
    }
}

impl ExactOptions {
    fn validate(&self) -> Result<(), DivergenceError> {
        let bad = |what: &str| Err(DivergenceError::InvalidOption(what.to_string()));
        if !(self.rel_tol > 0.0 && self.rel_tol < 1.0) {
            return bad("rel_tol must be in (0, 1)");
        }
        if !(self.atom_tol >= 0.0 && self.atom_tol < 1e-3) {
            return bad("atom_tol must be in [0, 1e-3)");
        }
        if self.mc_samples < 2 {
            return bad("mc_samples must be at least 2");
        }
        Ok(())
    }
}

/// A computed divergence value.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// The value.
    pub value: f64,
    /// Error bound: rounding for closed forms, quadrature bound, or 95% half-width for Monte
    /// Carlo.
    pub error_bound: f64,
    /// How the value was obtained.
    pub method: Method,
    /// Standard error (Monte Carlo only).
    pub std_error: Option<f64>,
    /// Monte Carlo draws (Monte Carlo only).
    pub samples: Option<u64>,
}

impl Evaluation {
    fn exact(e: Exact) -> Self {
        Evaluation {
            value: e.value,
            error_bound: e.error,
            method: e.method,
            std_error: None,
            samples: None,
        }
    }

    fn monte_carlo(e: crate::montecarlo::McEstimate) -> Self {
        Evaluation {
            value: e.estimate,
            error_bound: 1.959_963_984_540_054 * e.std_error,
            method: Method::MonteCarlo,
            std_error: Some(e.std_error),
            samples: Some(e.samples),
        }
    }
}

/// The divergences the CLI and [`divergence`] know by name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Divergence {
    /// `D_mid` (Eq. 2; `D(½)` of the given interpolant).
    Mid,
    /// `D_t-mid^{I,σ}` (Eq. 8).
    TMid,
    /// The naive unflipped integral (Eq. 3).
    Naive,
    /// `D(t)` of the flipped observation at one `t`.
    AtT(f64),
}

impl Divergence {
    /// Name used in reports: `mid`, `tmid`, `naive`, `at-t`.
    pub fn name(&self) -> &'static str {
        match self {
            Divergence::Mid => "mid",
            Divergence::TMid => "tmid",
            Divergence::Naive => "naive",
            Divergence::AtT(_) => "at-t",
        }
    }
}

/// Computes a named divergence.
pub fn divergence(
    p0: &Law,
    p1: &Law,
    si: &StochasticInterpolant,
    which: Divergence,
    opts: &ExactOptions,
) -> Result<Evaluation, DivergenceError> {
    divergence_with_progress(p0, p1, si, which, opts, &|_| {})
}

/// What a long exact computation reports while it works (issue 16), to the callback of
/// [`divergence_with_progress`]. Reporting never changes a result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExactProgress {
    /// Once, before the bulk of the work: the route taken and its estimated cost.
    Plan(Plan),
    /// `done` of about `total` units of the plan (time nodes of a time integral; `total`
    /// grows when the adaptive rule needs more).
    Step {
        /// Units done.
        done: u64,
        /// Units expected.
        total: u64,
    },
}

/// The route of a computation and its estimated cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// [`Method::Quadrature`]: quadrature over `t` of exact `D(t)`, in units of time nodes;
    /// [`Method::MonteCarlo`]: no exact route, in units of draws.
    pub method: Method,
    /// Units expected.
    pub units: u64,
    /// Estimated seconds: units × the measured time of one probe unit (quadrature), or × the
    /// measured time to build one mixture (Monte Carlo with a uniform time law builds one per
    /// draw), divided among the threads.
    pub seconds: f64,
}

/// Time nodes a time integral usually takes (Clenshaw–Curtis on `[0, 1]` after the `u⁴`
/// substitution); the estimate of [`Plan::units`].
const EXPECTED_T_NODES: u64 = 65;

/// Mixtures above this many components are refused ([`DivergenceError::MixtureTooLarge`]):
/// at some hundred bytes per component they would not fit in memory.
const MAX_COMPONENTS: f64 = 1e8;

/// Components of `X̃_t` at a generic time (both branches), from the laws' sizes alone.
fn mixture_size(p0: &Law, p1: &Law) -> f64 {
    let n = |p: &Law| match p {
        Law::Gaussian(_) => 1.0,
        Law::Discrete(q) => q.len() as f64,
    };
    2.0 * n(p0) * n(p1)
}

/// Refuses a mixture too large to build ([`MAX_COMPONENTS`]), judged from the laws' sizes
/// before anything is allocated.
fn check_mixture_size(p0: &Law, p1: &Law) -> Result<(), DivergenceError> {
    let components = mixture_size(p0, p1);
    if components > MAX_COMPONENTS {
        return Err(DivergenceError::MixtureTooLarge { components });
    }
    Ok(())
}

/// [`divergence`], reporting its route, estimated cost and progress to `progress`.
pub fn divergence_with_progress(
    p0: &Law,
    p1: &Law,
    si: &StochasticInterpolant,
    which: Divergence,
    opts: &ExactOptions,
    progress: &dyn Fn(ExactProgress),
) -> Result<Evaluation, DivergenceError> {
    match which {
        Divergence::Mid => d_at(p0, p1, si, 0.5, Observation::Flipped, opts, progress),
        Divergence::TMid => d_tmid_with(p0, p1, si, opts, progress),
        Divergence::Naive => d_naive_with(p0, p1, si, opts, progress),
        Divergence::AtT(t) => d_at(p0, p1, si, t, Observation::Flipped, opts, progress),
    }
}

/// The Monte Carlo plan: `draws` draws, each costing about `per_draw` seconds.
fn mc_plan(draws: usize, per_draw: f64) -> Plan {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Plan {
        method: Method::MonteCarlo,
        units: draws as u64,
        seconds: draws as f64 * per_draw / threads as f64,
    }
}

/// `E‖X1 − X0‖²`, the scale every `D(t)` is bounded by (Jensen).
fn displacement_scale(p0: &Law, p1: &Law) -> f64 {
    let (m0, m1) = (p0.mean(), p1.mean());
    (p0.second_moment() + p1.second_moment() - 2.0 * m0.dot(&m1)).max(0.0)
}

fn quad_err(_: NonFiniteIntegrand) -> DivergenceError {
    DivergenceError::InvalidOption(
        "quadrature met a non-finite integrand (laws too extreme for double precision)".to_string(),
    )
}

/// Runs `eval` at a coarse tolerance, then, unless that already meets `rel_tol` relative to
/// the coarse value (or is a closed form), again at `rel_tol × value` (floored at 1e-16 of
/// the scale, below which double precision cannot resolve the value anyway).
fn two_pass(
    scale: f64,
    rel_tol: f64,
    eval: &dyn Fn(f64) -> Result<Option<Exact>, NonFiniteIntegrand>,
) -> Result<Option<Exact>, DivergenceError> {
    two_pass_from(scale, rel_tol, 1e-4 * scale, eval)
}

/// [`two_pass`] whose first pass targets `first_tol` — `rel_tol` times a guess of the value
/// when there is one, which usually makes the first pass the last.
fn two_pass_from(
    scale: f64,
    rel_tol: f64,
    first_tol: f64,
    eval: &dyn Fn(f64) -> Result<Option<Exact>, NonFiniteIntegrand>,
) -> Result<Option<Exact>, DivergenceError> {
    let floor = 1e-16 * scale.max(f64::MIN_POSITIVE);
    let coarse = match eval(first_tol.max(floor)).map_err(quad_err)? {
        None => return Ok(None),
        Some(c) => c,
    };
    let target = (rel_tol * coarse.value.abs()).max(floor);
    if coarse.method == Method::ClosedForm || coarse.error <= target {
        return Ok(Some(coarse));
    }
    eval(target).map_err(quad_err)
}

fn d_at(
    p0: &Law,
    p1: &Law,
    si: &StochasticInterpolant,
    t: f64,
    obs: Observation,
    opts: &ExactOptions,
    progress: &dyn Fn(ExactProgress),
) -> Result<Evaluation, DivergenceError> {
    check_dims(p0, p1)?;
    check_time(t, 0.0, 1.0)?;
    opts.validate()?;
    check_mixture_size(p0, p1)?;
    // The exact routes run in a frame where the covariances are diagonal (D is rotation
    // invariant); the Monte Carlo fallback keeps the laws as given, so its draws for a seed
    // stay what they were.
    let frame = eigenframe(p0, p1, opts.atom_tol);
    let (q0, q1) = frame.as_ref().map_or((p0, p1), |(a, b)| (a, b));
    let post = Posterior::new(q0, q1, si, t, obs, opts.atom_tol);
    let scale = displacement_scale(p0, p1);
    match two_pass(scale, opts.rel_tol, &|tol| {
        d_of_posterior(&post, tol, opts.max_work)
    })? {
        Some(e) => Ok(Evaluation::exact(e)),
        None => {
            // One mixture serves every draw at a fixed t; a draw costs about a field
            // evaluation, O(components · d).
            let per_draw = 2e-9 * mixture_size(p0, p1) * p0.dim() as f64;
            progress(ExactProgress::Plan(mc_plan(opts.mc_samples, per_draw)));
            rao_blackwell(
                &Setup::new(p0, p1, si).observed(obs).at(TimeLaw::Fixed(t)),
                opts.mc_samples,
                opts.seed,
            )
            .map(Evaluation::monte_carlo)
        }
    }
}

/// `D(t) = E‖E[X1 − X0 | X̃_t]‖²` for the flipped observation of Eq. 7, `t ∈ [0, 1]`
/// (`D(t) = D(1 − t)` by construction).
///
/// ```
/// use midpoint::divergence::{d_t, ExactOptions, Method};
/// use midpoint::interpolant::StochasticInterpolant;
/// use midpoint::law::{Gaussian, Law};
/// use ndarray::array;
/// let p0: Law = Gaussian::isotropic(array![0.0], 1.0).unwrap().into();
/// let p1: Law = Gaussian::isotropic(array![0.0], 4.0).unwrap().into();
/// let si = StochasticInterpolant::linear(0.0).unwrap();
/// let e = d_t(&p0, &p1, &si, 0.2, &ExactOptions::default()).unwrap();
/// assert_eq!(e.method, Method::Quadrature);
/// assert!(e.value > 0.0 && e.error_bound < 1e-9 * e.value);
/// ```
pub fn d_t(
    p0: &Law,
    p1: &Law,
    si: &StochasticInterpolant,
    t: f64,
    opts: &ExactOptions,
) -> Result<Evaluation, DivergenceError> {
    d_at(p0, p1, si, t, Observation::Flipped, opts, &|_| {})
}

/// The Midpoint Divergence `D_mid = D(½)` (Eq. 2 for the linear interpolant with σ = 0; the
/// generalized version otherwise). For Gaussians it is closed form:
/// `‖m1−m0‖² + tr((S1−S0)(S0+S1+σI)⁻¹(S1−S0))` for the paper's interpolant.
///
/// ```
/// use midpoint::divergence::{d_mid, ExactOptions, Method};
/// use midpoint::interpolant::StochasticInterpolant;
/// use midpoint::law::{Gaussian, Law};
/// use ndarray::array;
/// let p0: Law = Gaussian::isotropic(array![0.0], 1.0).unwrap().into();
/// let p1: Law = Gaussian::isotropic(array![2.0], 3.0).unwrap().into();
/// let si = StochasticInterpolant::linear(0.0).unwrap();
/// let e = d_mid(&p0, &p1, &si, &ExactOptions::default()).unwrap();
/// assert_eq!(e.method, Method::ClosedForm);
/// assert!((e.value - (4.0 + 4.0 / 4.0)).abs() < 1e-14);
/// ```
pub fn d_mid(
    p0: &Law,
    p1: &Law,
    si: &StochasticInterpolant,
    opts: &ExactOptions,
) -> Result<Evaluation, DivergenceError> {
    d_t(p0, p1, si, 0.5, opts)
}

/// `E‖E[X1 − X0 | X_t]‖²` for the unflipped observation (the integrand of Eq. 3).
///
/// ```
/// use midpoint::divergence::{d_t_unflipped, ExactOptions};
/// use midpoint::interpolant::StochasticInterpolant;
/// use midpoint::law::{Gaussian, Law};
/// let p: Law = Gaussian::isotropic(ndarray::array![0.0], 1.0).unwrap().into();
/// let si = StochasticInterpolant::linear(0.0).unwrap();
/// let t = 0.2;
/// let e = d_t_unflipped(&p, &p, &si, t, &ExactOptions::default()).unwrap();
/// // (2t−1)²/((1−t)²+t²): nonzero although p0 = p1 — the failure of Eq. 3.
/// let want = (2.0 * t - 1.0f64).powi(2) / ((1.0 - t) * (1.0 - t) + t * t);
/// assert!((e.value - want).abs() < 1e-14);
/// ```
pub fn d_t_unflipped(
    p0: &Law,
    p1: &Law,
    si: &StochasticInterpolant,
    t: f64,
    opts: &ExactOptions,
) -> Result<Evaluation, DivergenceError> {
    d_at(p0, p1, si, t, Observation::Unflipped, opts, &|_| {})
}

/// `∫_lo^hi D(t) dt` by quadrature over `t` of exact `D(t)`, or `None` if `D(t)` has no exact
/// route (judged at the generic time `probe`). Also returns the seconds it took to build the
/// probe's mixture, the cost of one Monte Carlo draw should it come to that.
fn integrate_over_t(
    (p0, p1, si): (&Law, &Law, &StochasticInterpolant),
    obs: Observation,
    (lo, hi): (f64, f64),
    probe: f64,
    opts: &ExactOptions,
    progress: &dyn Fn(ExactProgress),
) -> Result<(Option<Exact>, f64), DivergenceError> {
    // Quadrature runs in a frame where the covariances are diagonal (D is rotation invariant).
    let frame = eigenframe(p0, p1, opts.atom_tol);
    let (p0, p1) = frame.as_ref().map_or((p0, p1), |(a, b)| (a, b));
    // Timed from here: the rotation above is paid once, not per node.
    let started = std::time::Instant::now();
    let probe_post = Posterior::new(p0, p1, si, probe, obs, opts.atom_tol);
    let build = started.elapsed().as_secs_f64();
    // The time integral costs about T_NODES evaluations of D(t).
    const T_NODES: f64 = 100.0;
    if T_NODES * crate::exact::quadrature_work(&probe_post) > opts.max_work {
        return Ok((None, build));
    }
    let scale = displacement_scale(p0, p1) * (hi - lo);
    // A rough D(probe)·(hi − lo) sets the first pass's tolerance (see `two_pass_from`).
    let guess = match d_of_posterior(&probe_post, 1e-3 * scale, opts.max_work).map_err(quad_err)? {
        None => return Ok((None, build)),
        Some(e) => e.value.abs() * (hi - lo),
    };
    // One node costs about what the probe cost (its mixture and a coarse D(t)).
    let per_node = started.elapsed().as_secs_f64();
    progress(ExactProgress::Plan(Plan {
        method: Method::Quadrature,
        units: EXPECTED_T_NODES,
        seconds: per_node * EXPECTED_T_NODES as f64,
    }));
    let nodes = Cell::new(0u64);
    // D(t) may be non-smooth where components shrink to atoms (t → 0, and t → 1 without the
    // flip; e.g. ~ t·sqrt(log 1/t), or a jump exactly at t = 0). Each segment is therefore
    // integrated in u ∈ [0, 1] with t = lo + len·u⁴, which makes the integrand smooth enough
    // for Clenshaw–Curtis and never evaluates D at the end itself (the weight 4u³ vanishes
    // there).
    // Without the flip the far end is mapped back to the near one by swapping the laws:
    // D_unflipped(p0, p1; t) = D_unflipped(p1, p0; 1 − t) for a symmetric interpolant, and a
    // small 1 − t is then represented with full relative precision.
    let segments: Vec<(&Law, &Law, f64)> = match obs {
        Observation::Flipped => vec![(p0, p1, hi - lo)],
        Observation::Unflipped => vec![(p0, p1, 0.5 * (hi - lo)), (p1, p0, 0.5 * (hi - lo))],
    };
    let eval = |tol: f64| -> Result<Option<Exact>, NonFiniteIntegrand> {
        let inner_err = Cell::new(0.0f64);
        let inner_evals = Cell::new(0u64);
        let missing = Cell::new(false);
        // Inner errors integrate to at most (hi − lo)·max error: give each D(t) tol/(2(hi−lo)).
        let inner_tol = 0.5 * tol / (hi - lo);
        let d_of_t = |a: &Law, b: &Law, t: f64| -> f64 {
            nodes.set(nodes.get() + 1);
            let done = nodes.get();
            progress(ExactProgress::Step {
                done,
                total: EXPECTED_T_NODES.max(done),
            });
            let post = Posterior::new(a, b, si, t, obs, opts.atom_tol);
            match d_of_posterior(&post, inner_tol, opts.max_work) {
                Ok(Some(e)) => {
                    inner_err.set(inner_err.get().max(e.error));
                    inner_evals.set(inner_evals.get() + e.evals);
                    e.value
                }
                Ok(None) => {
                    missing.set(true);
                    0.0
                }
                Err(_) => f64::NAN,
            }
        };
        let (mut value, mut error, mut evals) = (0.0, 0.0, 0);
        for &(a, b, len) in &segments {
            let f = |u: f64| {
                let u3 = u * u * u;
                if u3 == 0.0 {
                    return 0.0;
                }
                d_of_t(a, b, lo + len * u3 * u) * 4.0 * len * u3
            };
            let q = integrate(&f, 0.0, 1.0, 0.5 * tol / segments.len() as f64)?;
            value += q.value;
            error += q.error;
            evals += q.evals;
        }
        if missing.get() {
            return Ok(None);
        }
        Ok(Some(Exact {
            value,
            error: error + (hi - lo) * inner_err.get(),
            method: Method::Quadrature,
            evals: evals + inner_evals.get(),
        }))
    };
    Ok((
        two_pass_from(scale, opts.rel_tol, opts.rel_tol * guess, &eval)?,
        build,
    ))
}

/// The generalized time-integrated Midpoint Divergence `D_t-mid^{I,σ} = ∫₀^½ D(t) dt`
/// (Eq. 8; Def. 3.2 for the linear interpolant with σ = 0). Not averaged over `t`.
///
/// Two discrete laws with `σ = 0` and a built-in interpolant have the closed form
/// `½ · D(t)` at generic `t` ([`crate::discrete::generic_flipped`]).
///
/// ```
/// use midpoint::divergence::{d_tmid, ExactOptions, Method};
/// use midpoint::interpolant::StochasticInterpolant;
/// use midpoint::law::{Discrete, Law};
/// use ndarray::array;
/// let p0: Law = Discrete::new(array![[0.0]], array![1.0]).unwrap().into();
/// let p1: Law = Discrete::new(array![[1.0]], array![1.0]).unwrap().into();
/// let si = StochasticInterpolant::linear(0.0).unwrap();
/// let e = d_tmid(&p0, &p1, &si, &ExactOptions::default()).unwrap();
/// assert_eq!((e.value, e.method), (0.5, Method::ClosedForm)); // ∫₀^½ 1 dt
/// ```
pub fn d_tmid(
    p0: &Law,
    p1: &Law,
    si: &StochasticInterpolant,
    opts: &ExactOptions,
) -> Result<Evaluation, DivergenceError> {
    d_tmid_with(p0, p1, si, opts, &|_| {})
}

/// [`d_tmid`] reporting to `progress`.
fn d_tmid_with(
    p0: &Law,
    p1: &Law,
    si: &StochasticInterpolant,
    opts: &ExactOptions,
    progress: &dyn Fn(ExactProgress),
) -> Result<Evaluation, DivergenceError> {
    let discrete = |a: &Discrete, b: &Discrete| {
        let (v, terms) = discrete::generic_flipped_terms(a, b, opts.atom_tol);
        (0.5 * v, terms)
    };
    time_integral(
        (p0, p1, si),
        Observation::Flipped,
        TimeLaw::TMID,
        opts,
        discrete,
        progress,
    )
}

/// The naive unflipped time integral `∫₀¹ E‖E[X1 − X0 | X_t]‖² dt` (Eq. 3), which is not a
/// divergence: it is positive for `p0 = p1`.
///
/// ```
/// use midpoint::divergence::{d_naive, ExactOptions};
/// use midpoint::interpolant::StochasticInterpolant;
/// use midpoint::law::{Gaussian, Law};
/// let p: Law = Gaussian::isotropic(ndarray::array![0.0], 1.0).unwrap().into();
/// let si = StochasticInterpolant::linear(0.0).unwrap();
/// let e = d_naive(&p, &p, &si, &ExactOptions::default()).unwrap();
/// // ∫₀¹ (2t−1)²/((1−t)²+t²) dt = 2 − π/2.
/// assert!((e.value - (2.0 - std::f64::consts::FRAC_PI_2)).abs() < 1e-9);
/// ```
pub fn d_naive(
    p0: &Law,
    p1: &Law,
    si: &StochasticInterpolant,
    opts: &ExactOptions,
) -> Result<Evaluation, DivergenceError> {
    d_naive_with(p0, p1, si, opts, &|_| {})
}

/// [`d_naive`] reporting to `progress`.
fn d_naive_with(
    p0: &Law,
    p1: &Law,
    si: &StochasticInterpolant,
    opts: &ExactOptions,
    progress: &dyn Fn(ExactProgress),
) -> Result<Evaluation, DivergenceError> {
    let discrete =
        |a: &Discrete, b: &Discrete| (discrete::mean_sq_displacement(a, b), a.len() + b.len());
    time_integral(
        (p0, p1, si),
        Observation::Unflipped,
        TimeLaw::NAIVE,
        opts,
        discrete,
        progress,
    )
}

/// `∫ D(t) dt` over the uniform time law `time` for observation `obs`: `discrete` gives the
/// closed form (value, terms summed) for two discrete laws without noise; otherwise
/// quadrature over `t` of exact `D(t)`, or Monte Carlo where `D(t)` has no exact route.
fn time_integral(
    (p0, p1, si): (&Law, &Law, &StochasticInterpolant),
    obs: Observation,
    time: TimeLaw,
    opts: &ExactOptions,
    discrete: impl Fn(&Discrete, &Discrete) -> (f64, usize),
    progress: &dyn Fn(ExactProgress),
) -> Result<Evaluation, DivergenceError> {
    check_dims(p0, p1)?;
    opts.validate()?;
    if let (Law::Discrete(a), Law::Discrete(b)) = (p0, p1) {
        if si.noise().is_zero() && si.interpolant().is_builtin() {
            let (v, terms) = discrete(a, b);
            return Ok(closed_form(v, terms));
        }
    }
    check_mixture_size(p0, p1)?;
    let TimeLaw::Uniform { lo, hi } = time else {
        unreachable!("a time integral has a uniform time law")
    };
    match integrate_over_t((p0, p1, si), obs, (lo, hi), 0.2113, opts, progress)? {
        (Some(e), _) => Ok(Evaluation::exact(e)),
        (None, build) => {
            // With a uniform time law each draw builds its own mixture, as the probe did.
            progress(ExactProgress::Plan(mc_plan(opts.mc_samples, build)));
            rao_blackwell(
                &Setup::new(p0, p1, si).observed(obs).at(time),
                opts.mc_samples,
                opts.seed,
            )
            .map(Evaluation::monte_carlo)
        }
    }
}

fn closed_form(value: f64, terms: usize) -> Evaluation {
    Evaluation {
        value,
        error_bound: 8.0 * f64::EPSILON * terms as f64 * value.abs(),
        method: Method::ClosedForm,
        std_error: None,
        samples: None,
    }
}
