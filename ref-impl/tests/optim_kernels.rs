//! The multi-tensor and fused kernels of Adam and the EMA (`train::kernels`) against the plain
//! per-tensor loops and against hand-computed updates. Deterministic (fixed seeds, CPU
//! kernels), so every tolerance is a rounding bound, not a statistical one.

use midpoint_train::train::adam::{Adam, AdamConfig};
use midpoint_train::train::ema::Ema;
use midpoint_train::train::kernels::{adam_step, foreach_lerp, AdamKernel, AdamTensors, EmaKernel};
use std::sync::Mutex;
use tch::{nn, Device, Kind, Tensor};

/// torch's RNG is global: tests that seed it take turns.
static TORCH_RNG: Mutex<()> = Mutex::new(());

const SHAPES: [&[i64]; 5] = [&[7], &[3, 4], &[2, 3, 3, 3], &[1], &[5, 2]];

/// A store with one variable per shape (the third frozen, as a parameter with no gradient).
fn store(kind: Kind, seed: i64) -> (nn::VarStore, Vec<Tensor>) {
    tch::manual_seed(seed);
    let mut vs = nn::VarStore::new(Device::Cpu);
    for (i, s) in SHAPES.iter().enumerate() {
        let _ = vs.root().randn(&format!("v{i}"), s, 0.0, 1.0);
    }
    if kind == Kind::Double {
        vs.double(); // replaces the variables: read them back by name
    }
    let vars: Vec<Tensor> = (0..SHAPES.len())
        .map(|i| vs.variables()[&format!("v{i}")].shallow_clone())
        .collect();
    let _ = vars[2].shallow_clone().requires_grad_(false);
    (vs, vars)
}

/// The loss of step `k`: `Σ_i Σ c_{ik} ⊙ v_i²/2 + d_{ik} ⊙ v_i` with fixed random `c, d`.
fn loss(vars: &[Tensor], k: i64) -> Tensor {
    tch::manual_seed(1000 + k);
    let mut total = Tensor::zeros([], (vars[0].kind(), Device::Cpu));
    for v in vars.iter().filter(|v| v.requires_grad()) {
        let c = Tensor::rand_like(v);
        let d = Tensor::randn_like(v);
        total += (c * v.square() / 2.0 + d * v).sum(v.kind());
    }
    total
}

fn run_adam(kernel: AdamKernel, kind: Kind, config: AdamConfig, steps: i64) -> Vec<Tensor> {
    let (vs, vars) = store(kind, 7);
    let mut adam = Adam::new(&vs, config).with_kernel(kernel);
    for k in 0..steps {
        adam.zero_grad();
        loss(&vars, k).backward();
        adam.step(0.05).unwrap();
    }
    assert_eq!(adam.steps(), steps);
    vars.iter().map(|v| v.detach().copy()).collect()
}

fn max_abs_diff(a: &[Tensor], b: &[Tensor]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

/// Foreach and fused Adam follow the plain loop for 30 steps, in f64 to 1e-12 (the
/// operations are the same up to their order; after 30 steps of size ≤ lr = 0.05 the rounding
/// is ~30·1e-16 relative) and in f32 to 1e-5 (the same bound with f32's 6e-8, ×~50 for the
/// division by sqrt(v̂) of gradients near zero). The frozen variable does not move; with
/// β1 = 0 (MGM) and the EDM default (0.9) alike.
#[test]
fn foreach_and_fused_adam_follow_the_plain_loop() {
    let _g = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    for beta1 in [0.0, 0.9] {
        let config = AdamConfig {
            beta1,
            ..AdamConfig::default()
        };
        for (kind, tol) in [(Kind::Double, 1e-12), (Kind::Float, 1e-5)] {
            let plain = run_adam(AdamKernel::Plain, kind, config, 30);
            let (_, init) = store(kind, 7);
            assert!(max_abs_diff(&plain, &init) > 0.3, "the plain run moved");
            assert_eq!(max_abs_diff(&plain[2..3], &init[2..3]), 0.0, "frozen stays");
            for kernel in [AdamKernel::Foreach, AdamKernel::Fused] {
                let other = run_adam(kernel, kind, config, 30);
                let diff = max_abs_diff(&plain, &other);
                assert!(
                    diff <= tol,
                    "{kernel:?} {kind:?} β1 = {beta1}: max |Δθ| = {diff:e} > {tol:e}"
                );
            }
        }
    }
}

/// Every kernel takes the two hand-computed β1 = 0 steps of a scalar with losses `w` then
/// `−3w` at lr 0.01: `Δw_1 = −lr·1/(1 + 1e-8)`, and `Δw_2 = lr·3/(sqrt(v̂_2) + 1e-8)` with
/// `v̂_2 = (0.999·0.001 + 0.001·9)/(1 − 0.999²)`.
#[test]
fn every_adam_kernel_takes_the_hand_computed_steps() {
    let v2 = (0.999 * 0.001 * 1.0 + 0.001 * 9.0) / (1.0 - 0.999f64 * 0.999);
    let want2 = 0.01 * 3.0 / (v2.sqrt() + 1e-8);
    for kernel in [AdamKernel::Plain, AdamKernel::Foreach, AdamKernel::Fused] {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().var("w", &[1], nn::Init::Const(0.0));
        vs.double();
        let w = vs.variables()["w"].shallow_clone();
        let config = AdamConfig {
            beta1: 0.0,
            ..AdamConfig::default()
        };
        let mut adam = Adam::new(&vs, config).with_kernel(kernel);
        let mut step = |c: f64| {
            adam.zero_grad();
            (&w * c).sum(Kind::Double).backward();
            adam.step(0.01).unwrap();
            w.double_value(&[0])
        };
        let w1 = step(1.0);
        let w2 = step(-3.0);
        assert!((w1 + 0.01 / (1.0 + 1e-8)).abs() < 1e-15, "{kernel:?}: {w1}");
        assert!((w2 - w1 - want2).abs() < 1e-15, "{kernel:?}: {}", w2 - w1);
    }
}

/// The foreach EMA follows the plain one (decay 0.9 for 20 updates, and EDM's lerp form), in
/// f64 to 1e-14 and f32 to 1e-6 (|values| ≤ ~4, 20 roundings of 6e-8 relative).
#[test]
fn the_foreach_ema_follows_the_plain_one() {
    let _g = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    for (kind, tol) in [(Kind::Double, 1e-14), (Kind::Float, 1e-6)] {
        let mut results = vec![];
        for kernel in [EmaKernel::Plain, EmaKernel::Foreach] {
            let (vs, vars) = store(kind, 3);
            let (ema_vs, _) = store(kind, 4);
            let mut ema = Ema::new(ema_vs, &vs, 0.9).unwrap();
            ema.kernel = kernel;
            for k in 0..20 {
                tch::manual_seed(50 + k);
                tch::no_grad(|| {
                    for v in &vars {
                        let _ = v.shallow_clone().g_add_(&Tensor::randn_like(v));
                    }
                });
                if k % 2 == 0 {
                    ema.update(&vs).unwrap();
                } else {
                    ema.update_lerp(&vs, 0.8).unwrap();
                }
            }
            let mut names: Vec<_> = ema.vs.variables().into_iter().collect();
            names.sort_by(|a, b| a.0.cmp(&b.0));
            results.push(names.into_iter().map(|(_, t)| t.copy()).collect::<Vec<_>>());
        }
        let diff = max_abs_diff(&results[0], &results[1]);
        assert!(diff <= tol, "{kind:?}: {diff:e}");
        assert!(
            max_abs_diff(&results[0], &store(kind, 3).1) > 0.5,
            "it moved"
        );
    }
}

/// Tensors libtorch refuses come back as an error with its message, not an abort; lists of
/// different lengths are refused before any call.
#[test]
fn refused_tensors_are_errors() {
    let p = [Tensor::zeros([3], (Kind::Float, Device::Cpu))];
    let g = [Tensor::ones([4], (Kind::Float, Device::Cpu))];
    let m = [Tensor::zeros([3], (Kind::Float, Device::Cpu))];
    let v = [Tensor::zeros([3], (Kind::Float, Device::Cpu))];
    for kernel in [AdamKernel::Foreach, AdamKernel::Fused] {
        let t = AdamTensors {
            params: &p,
            grads: &g,
            exp_avgs: &m,
            exp_avg_sqs: &v,
        };
        // libtorch's CPU fused kernel would take this silently (it reads the first 3 of 4).
        let err = adam_step(kernel, &t, 1, 0.1, 0.9, 0.999, 1e-8).unwrap_err();
        assert!(
            err.to_string().contains("gradient is [4]"),
            "{kernel:?}: {err}"
        );
        assert_eq!(
            p[0].abs().sum(Kind::Float).double_value(&[]),
            0.0,
            "untouched"
        );
        let short = AdamTensors {
            params: &p,
            grads: &[],
            exp_avgs: &m,
            exp_avg_sqs: &v,
        };
        let err = adam_step(kernel, &short, 1, 0.1, 0.9, 0.999, 1e-8).unwrap_err();
        assert!(err.to_string().contains("1 parameters but 0"), "{err}");
    }
    let err = foreach_lerp(&p, &g, 0.5).unwrap_err();
    assert!(err.to_string().contains("must match"), "{err}");
    assert!(foreach_lerp(&p, &[], 0.5).is_err());
}
