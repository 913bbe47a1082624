//! Jacobian-vector products through a network, differentiable in its parameters: what the
//! flow-map losses need inside the loss (`../shared/notes/flow-maps.md`): a time derivative
//! `∂_t X_{s,t}(x)` (LSD, LMD, FMM's Lagrangian form) or a derivative along a velocity,
//! `∇_x X_{s,t}(x)·b` (ESD, EMD).
//!
//! Two routes, the same numbers (tested against each other and against central differences,
//! in f64, for the product and for the parameter gradient taken through it):
//!
//! * [`JvpRoute::ForwardMode`]: libtorch's forward-mode AD. The inputs become dual tensors
//!   (tch's `_make_dual`) inside a forward-AD level that `csrc/torch_shim.cpp` opens and closes
//!   (tch binds no level), the network runs once carrying the tangents, and `_unpack_dual`
//!   returns `(f(p), Jv)`. With grad mode on, the tangent arithmetic is recorded like any
//!   other, so a loss on `Jv` trains through it (reverse over forward).
//! * [`JvpRoute::DoubleBackward`]: for `y = f(p)` and a dummy cotangent `u`, `g(u) = Jᵀu` is
//!   linear in `u`, so `Jv = ∂⟨g(u), v⟩/∂u`; both backward passes keep their graphs. It needs
//!   no binding beyond tch's, and costs about two backward passes on top of the forward one.
//!
//! Costs against a plain forward pass are in `docs/performance.md`, "Flow maps: the cost of a
//! JVP" (`cargo run --release -p midpoint-train --example jvp_cost`).

use std::sync::Mutex;
use tch::{TchError, Tensor};

/// How a Jacobian-vector product is computed.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum JvpRoute {
    /// Dual tensors in one forward pass (libtorch forward-mode AD).
    #[default]
    ForwardMode,
    /// Two backward passes through a dummy cotangent.
    DoubleBackward,
}

/// `(f(p), J_f(p)·v)` for primals `p` and tangents `v` (one per primal, same shapes), with
/// both outputs differentiable in whatever `f`, the primals and the tangents depend on.
///
/// Every primal must reach the output: the double-backward route refuses a gradient for an
/// unused input, and the forward route refuses an output that carries no tangent.
pub fn jvp(
    route: JvpRoute,
    f: impl FnOnce(&[Tensor]) -> Tensor,
    primals: &[&Tensor],
    tangents: &[&Tensor],
) -> Result<(Tensor, Tensor), TchError> {
    if primals.len() != tangents.len() {
        return Err(TchError::Shape(format!(
            "jvp: {} primals but {} tangents",
            primals.len(),
            tangents.len()
        )));
    }
    for (p, v) in primals.iter().zip(tangents) {
        if p.size() != v.size() {
            return Err(TchError::Shape(format!(
                "jvp: a primal of shape {:?} has a tangent of shape {:?}",
                p.size(),
                v.size()
            )));
        }
    }
    match route {
        JvpRoute::ForwardMode => forward_mode(f, primals, tangents),
        JvpRoute::DoubleBackward => double_backward(f, primals, tangents),
    }
}

mod ffi {
    extern "C" {
        pub fn midpoint_fwad_enter(level: *mut i64) -> i32;
        pub fn midpoint_fwad_exit(level: i64) -> i32;
    }
}

/// libtorch keeps one forward-AD level for the whole process (a second is an error, not a
/// nesting), so concurrent callers (test threads, data-parallel workers) take turns.
static LEVEL: Mutex<()> = Mutex::new(());

/// An open forward-AD level, closed on drop (also when `f` panics).
struct DualLevel(i64);

impl DualLevel {
    fn enter() -> Result<Self, TchError> {
        let mut level = 0i64;
        // SAFETY: the shim writes one i64 and catches every C++ exception.
        match unsafe { ffi::midpoint_fwad_enter(&mut level) } {
            0 => Ok(DualLevel(level)),
            _ => Err(TchError::Torch(
                "jvp: libtorch refused a forward-AD level (one is already open)".into(),
            )),
        }
    }
}

impl Drop for DualLevel {
    fn drop(&mut self) {
        // SAFETY: releases the level this guard entered; exceptions are caught in the shim.
        let _ = unsafe { ffi::midpoint_fwad_exit(self.0) };
    }
}

fn forward_mode(
    f: impl FnOnce(&[Tensor]) -> Tensor,
    primals: &[&Tensor],
    tangents: &[&Tensor],
) -> Result<(Tensor, Tensor), TchError> {
    let _turn = LEVEL.lock().unwrap_or_else(|e| e.into_inner());
    let level = DualLevel::enter()?;
    let duals = primals
        .iter()
        .zip(tangents)
        .map(|(p, v)| Tensor::f_internal_make_dual(p, v, level.0))
        .collect::<Result<Vec<_>, _>>()?;
    let out = f(&duals);
    let (primal, tangent) = Tensor::f_internal_unpack_dual(&out, level.0)?;
    if !tangent.defined() {
        return Err(TchError::Torch(
            "jvp: the output does not depend on the primals".into(),
        ));
    }
    // Copies taken before the level closes: closing it strips the tangent from `out`'s view,
    // not from these (ordinary tensors with their autograd graphs).
    let result = (primal.shallow_clone(), tangent.shallow_clone());
    drop(level);
    Ok(result)
}

fn double_backward(
    f: impl FnOnce(&[Tensor]) -> Tensor,
    primals: &[&Tensor],
    tangents: &[&Tensor],
) -> Result<(Tensor, Tensor), TchError> {
    // A primal without a gradient (data, times) is differentiated through a leaf copy; one
    // with (a map's own output fed back in) keeps its graph.
    let inputs: Vec<Tensor> = primals
        .iter()
        .map(|p| {
            if p.requires_grad() {
                p.shallow_clone()
            } else {
                p.detach().set_requires_grad(true)
            }
        })
        .collect();
    let out = f(&inputs);
    let u = out.zeros_like().set_requires_grad(true);
    let vjp = Tensor::f_run_backward(&[(&out * &u).sum(None)], &inputs, true, true)?;
    if let Some(i) = vjp.iter().position(|g| !g.defined()) {
        return Err(TchError::Torch(format!(
            "jvp: the output does not depend on primal {i}"
        )));
    }
    let along: Tensor = vjp
        .iter()
        .zip(tangents)
        .map(|(g, v)| (g * *v).sum(None))
        .fold(Tensor::zeros([], (out.kind(), out.device())), |a, b| a + b);
    let jv = Tensor::f_run_backward(&[along], &[&u], true, true)?
        .pop()
        .expect("one input");
    Ok((out, jv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module};
    use tch::{Device, Kind};

    /// A small two-time flow map `X_{s,t}(x) = x + (t − s)·v(x, s, t)` (as in
    /// `flow-maps-checks/fwad_check.py`), in f64.
    struct Map {
        vs: nn::VarStore,
        net: nn::Sequential,
    }

    impl Map {
        fn new(seed: i64) -> Map {
            tch::manual_seed(seed);
            let mut vs = nn::VarStore::new(Device::Cpu);
            let p = vs.root();
            let net = nn::seq()
                .add(nn::linear(&p / "l1", 4, 32, Default::default()))
                .add_fn(|x| x.gelu("none"))
                .add(nn::linear(&p / "l2", 32, 32, Default::default()))
                .add_fn(|x| x.silu())
                .add(nn::linear(&p / "l3", 32, 2, Default::default()));
            vs.double();
            Map { vs, net }
        }

        fn x(&self, x: &Tensor, s: &Tensor, t: &Tensor) -> Tensor {
            let h = Tensor::cat(&[x, &s.unsqueeze(1), &t.unsqueeze(1)], 1);
            let v = self.net.forward(&h) * (t * 3.0).sin().unsqueeze(1);
            x + (t - s).unsqueeze(1) * v
        }

        fn grads(&self, loss: &Tensor) -> Vec<Tensor> {
            let vars = self.vs.trainable_variables();
            Tensor::run_backward(&[loss], &vars, false, false)
        }
    }

    fn data(n: i64) -> (Tensor, Tensor, Tensor) {
        tch::manual_seed(11);
        let o = (Kind::Double, Device::Cpu);
        (
            Tensor::randn([n, 2], o),
            Tensor::rand([n], o),
            Tensor::rand([n], o),
        )
    }

    fn max_abs(a: &Tensor) -> f64 {
        a.abs().max().double_value(&[])
    }

    const ROUTES: [JvpRoute; 2] = [JvpRoute::ForwardMode, JvpRoute::DoubleBackward];

    #[test]
    fn the_time_derivative_matches_central_differences_and_trains_the_same() {
        // ∂_t X by each route against (X(t+h) − X(t−h))/2h, whose error is O(h²·X''') ≈ 1e-10
        // at h = 1e-5 (f64 rounding adds ~ε/h ≈ 1e-11): tolerance 1e-7. Then the parameter
        // gradient of ‖∂_t X‖² through the JVP against that of the same loss on the difference
        // quotient (the same O(h²) error): tolerance 1e-6, relative.
        let m = Map::new(3);
        let (x, s, t) = data(6);
        let ones = t.ones_like();
        let h = 1e-5;
        let fd = (m.x(&x, &s, &(&t + h)) - m.x(&x, &s, &(&t - h))) / (2.0 * h);
        let g_fd = m.grads(&fd.square().sum(None));
        for route in ROUTES {
            let (out, dt) = jvp(route, |p| m.x(&x, &s, &p[0]), &[&t], &[&ones]).unwrap();
            assert!(max_abs(&(&out - m.x(&x, &s, &t))) == 0.0, "{route:?}");
            assert!(
                max_abs(&(&dt - &fd)) < 1e-7,
                "{route:?} {}",
                max_abs(&(&dt - &fd))
            );
            let g_jvp = m.grads(&dt.square().sum(None));
            for (a, b) in g_jvp.iter().zip(&g_fd) {
                let scale = max_abs(b).max(1e-3);
                assert!(
                    max_abs(&(a - b)) / scale < 1e-6,
                    "{route:?} {}",
                    max_abs(&(a - b))
                );
            }
        }
    }

    #[test]
    fn the_routes_agree_with_each_other_and_with_the_per_coordinate_backward() {
        // A third, exact route (fwad_check.py's): each row depends on its own t only, so
        // column k of ∂_t X is the gradient of Σ_rows X[:, k] with respect to t. No truncation
        // anywhere, so all three agree to rounding (1e-12), and so do the parameter gradients.
        let m = Map::new(5);
        let (x, s, t) = data(5);
        let ones = t.ones_like();
        let tt = t.detach().set_requires_grad(true);
        let out = m.x(&x, &s, &tt);
        let cols: Vec<Tensor> = (0..2)
            .map(|k| {
                Tensor::run_backward(&[out.select(1, k).sum(None)], &[&tt], true, true)
                    .pop()
                    .unwrap()
            })
            .collect();
        let reference = Tensor::stack(&cols, 1);
        let g_ref = m.grads(&reference.square().sum(None));
        for route in ROUTES {
            let (_, dt) = jvp(route, |p| m.x(&x, &s, &p[0]), &[&t], &[&ones]).unwrap();
            assert!(max_abs(&(&dt - &reference)) < 1e-12, "{route:?}");
            let g = m.grads(&dt.square().sum(None));
            for (a, b) in g.iter().zip(&g_ref) {
                assert!(max_abs(&(a - b)) < 1e-12, "{route:?} {}", max_abs(&(a - b)));
            }
        }
    }

    #[test]
    fn a_derivative_along_the_network_own_velocity_matches_differences_and_trains_the_same() {
        // ESD's shape: ∂_s X + ∇_x X·b with the tangent b = v_{s,s}(x) from the network itself,
        // not detached ([SD] §3: no stop-gradient), so the parameter gradient also flows through
        // the tangent. Against the directional difference quotient (O(h²), tolerance 1e-7) for
        // the value; the two routes' parameter gradients agree to rounding (1e-12).
        let m = Map::new(7);
        let (x, s, t) = data(4);
        let velocity = || m.x(&x, &s, &(&s + 1.0)) - &x;
        let ones = s.ones_like();
        let h = 1e-5;
        let fd = {
            let b = velocity().detach();
            (m.x(&(&x + &b * h), &(&s + h), &t) - m.x(&(&x - &b * h), &(&s - h), &t)) / (2.0 * h)
        };
        let mut grads = Vec::new();
        for route in ROUTES {
            let b = velocity();
            assert!(b.requires_grad());
            let (_, jb) = jvp(route, |p| m.x(&p[0], &p[1], &t), &[&x, &s], &[&b, &ones]).unwrap();
            assert!(
                max_abs(&(&jb - &fd)) < 1e-7,
                "{route:?} {}",
                max_abs(&(&jb - &fd))
            );
            grads.push(m.grads(&jb.square().sum(None)));
        }
        for (a, b) in grads[0].iter().zip(&grads[1]) {
            assert!(max_abs(&(a - b)) < 1e-12, "{}", max_abs(&(a - b)));
        }
    }

    #[test]
    fn the_edm_network_runs_in_forward_mode_and_matches_the_other_route() {
        // Every layer of ddpm++ (convolutions, group norms, attention, resampling) has a
        // forward-mode formula: the two routes agree on the tiny network in f64, for the
        // product along the noise input and along x together, and for the parameter gradient.
        use crate::nets::edm::{SongUNet, UNetConfig};
        tch::manual_seed(1);
        let config = UNetConfig::named("tiny").unwrap();
        let mut vs = nn::VarStore::new(Device::Cpu);
        let net = SongUNet::new(&vs.root(), &config).unwrap();
        vs.double();
        let r = config.img_resolution;
        let o = (Kind::Double, Device::Cpu);
        let x = Tensor::randn([2, config.img_channels, r, r], o);
        let c = Tensor::rand([2], o);
        let vx = Tensor::randn_like(&x);
        let vc = c.ones_like();
        let vars = vs.trainable_variables();
        let mut results = Vec::new();
        for route in ROUTES {
            let (_, jv) = jvp(
                route,
                |p| net.forward(&p[0], &p[1], None, false),
                &[&x, &c],
                &[&vx, &vc],
            )
            .unwrap();
            // A variable that only shifts the output (the last bias) has no gradient through
            // the product: undefined from libtorch, zero here.
            let g: Vec<Tensor> =
                Tensor::run_backward(&[jv.square().sum(None)], &vars, false, false)
                    .into_iter()
                    .zip(&vars)
                    .map(|(g, v)| if g.defined() { g } else { v.zeros_like() })
                    .collect();
            results.push((jv, g));
        }
        let (a, b) = (&results[0], &results[1]);
        let scale = max_abs(&b.0);
        assert!(scale > 0.0, "a zero product tests nothing");
        // And against central differences (O(h²) at h = 1e-5: relative 1e-6).
        let h = 1e-5;
        let fd = (net.forward(&(&x + &vx * h), &(&c + h), None, false)
            - net.forward(&(&x - &vx * h), &(&c - h), None, false))
            / (2.0 * h);
        assert!(
            max_abs(&(&a.0 - &fd)) < 1e-6 * scale.max(1.0),
            "{}",
            max_abs(&(&a.0 - &fd))
        );
        assert!(max_abs(&(&a.0 - &b.0)) < 1e-10 * scale.max(1.0));
        for (ga, gb) in a.1.iter().zip(&b.1) {
            let s = max_abs(gb).max(1e-6);
            assert!(
                max_abs(&(ga - gb)) / s < 1e-9,
                "{}",
                max_abs(&(ga - gb)) / s
            );
        }
    }

    #[test]
    fn mismatched_tangents_and_unused_primals_are_errors() {
        let (x, s, _) = data(3);
        let bad = Tensor::zeros([2], (Kind::Double, Device::Cpu));
        let c = x.ones_like();
        for route in ROUTES {
            assert!(jvp(route, |p| &p[0] * 2.0, &[&s], &[&bad]).is_err());
            assert!(jvp(route, |p| &p[0] * 2.0, &[&x, &s], &[&x]).is_err());
            assert!(
                jvp(route, |_| c.shallow_clone(), &[&x], &[&x]).is_err(),
                "{route:?}"
            );
        }
        // The refused call closed its level: the forward route works again.
        let ones = s.ones_like();
        assert!(jvp(JvpRoute::ForwardMode, |p| &p[0] * 2.0, &[&s], &[&ones]).is_ok());
    }
}
