//! `--precision bf16` (issue 5): the autocast scope really runs convolutions and matmuls in
//! bf16 and restores the previous state, and image MGM in bf16 keeps fp32 weights and Adam
//! state while its losses move by bf16 rounding only.

use midpoint::{Gaussian, Law};
use midpoint_train::data::LawImages;
use midpoint_train::methods::mgm::image::{ImageMgm, ImageMgmConfig};
use midpoint_train::nets::edm::UNetConfig;
use midpoint_train::train::precision::{autocast_state, Precision};
use ndarray::Array1;
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

static TORCH: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    let g = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    g
}

#[test]
fn bf16_scope_casts_matmul_and_conv_and_restores_the_state() {
    let _g = lock();
    let cpu = Device::Cpu;
    assert!(!autocast_state(cpu).unwrap().0);
    tch::manual_seed(0);
    let a = Tensor::randn([4, 8], (Kind::Float, cpu));
    let w = Tensor::randn([2, 3, 3, 3], (Kind::Float, cpu));
    let x = Tensor::randn([1, 3, 5, 5], (Kind::Float, cpu));
    let run = |p: Precision| {
        p.autocast(cpu, || {
            let state = autocast_state(cpu).unwrap();
            // Nested scope: leaving it must not switch the outer one off.
            let inner = p.autocast(cpu, || a.matmul(&a.tr())).unwrap();
            let after_inner = autocast_state(cpu).unwrap();
            let conv = x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
            // mse_loss is on autocast's fp32 list (on the CPU as on CUDA).
            let fp32_op = conv.mse_loss(&conv.zeros_like(), tch::Reduction::Mean);
            (
                state,
                inner.kind(),
                after_inner,
                conv.kind(),
                fp32_op.kind(),
            )
        })
        .unwrap()
    };
    let (state, mm, after, conv, fp32_op) = run(Precision::Bf16);
    assert_eq!(state, (true, Some(Kind::BFloat16)));
    assert_eq!(after, (true, Some(Kind::BFloat16)));
    assert_eq!(
        (mm, conv, fp32_op),
        (Kind::BFloat16, Kind::BFloat16, Kind::Float)
    );
    assert!(!autocast_state(cpu).unwrap().0);
    let (state, mm, _, conv, fp32_op) = run(Precision::Fp32);
    assert!(!state.0);
    assert_eq!((mm, conv, fp32_op), (Kind::Float, Kind::Float, Kind::Float));
}

fn config(precision: Precision) -> ImageMgmConfig {
    let arch = UNetConfig {
        name: "tiny8".into(),
        img_resolution: 8,
        attn_resolutions: vec![4],
        ..UNetConfig::tiny()
    };
    ImageMgmConfig {
        batch: 4,
        lr: 1e-3,
        seed: 3,
        precision,
        ..ImageMgmConfig::paper(arch)
    }
}

fn images() -> LawImages {
    let d = 3 * 8 * 8;
    let mean = Array1::from_shape_fn(d, |i| 0.5 * ((i as f64) * 0.37).sin());
    let law: Law = Gaussian::isotropic(mean, 0.04).unwrap().into();
    LawImages::new(law, [3, 8, 8], 11).unwrap()
}

#[test]
fn bf16_mgm_step_takes_the_bf16_path_with_fp32_state() {
    let _g = lock();
    let mut data = images();
    let mut fp32 = ImageMgm::from_random_init(config(Precision::Fp32), Device::Cpu).unwrap();
    let mut bf16 = ImageMgm::from_random_init(config(Precision::Bf16), Device::Cpu).unwrap();
    // Same seed, same initial weights: the runs differ only in arithmetic.
    for ((n, a), (_, b)) in fp32.state().iter().zip(bf16.state().iter()) {
        assert!(a.equal(b), "{n} differs before any step");
    }
    let before: Vec<Tensor> = bf16.state().iter().map(|(_, t)| t.copy()).collect();
    let mut losses = Vec::new();
    for _ in 0..3 {
        let (a, b) = (fp32.step(&mut data).unwrap(), bf16.step(&mut data).unwrap());
        assert!(b.critic.is_finite() && b.generator.is_finite(), "{b:?}");
        losses.push((a, b));
    }
    let rel = |a: f64, b: f64| (a - b).abs() / a.abs().max(1e-12);
    // The fp32 CPU path is deterministic, so any difference is the bf16 arithmetic.
    // Step 0: the critic's loss is bit-identical, since EDM's near-zero output layers (weights
    // ×1e-5) make f_ψ's output tiny and its bf16 rounding falls below the fp32 resolution of
    // L_ψ; the generator's loss already differs, through G's bf16 forward.
    let (a, b) = losses[0];
    assert_eq!(a.critic, b.critic);
    assert!(rel(a.generator, b.generator) > 0.0, "{a:?} {b:?}");
    // Step 2, after two updates: rounding to bf16 (8 significant bits, relative error ≤ 2^-9
    // ≈ 2e-3 per cast) moves both losses by more than 1e-6 relative and, as the same
    // computation, by less than 5%.
    let (a, b) = losses[2];
    for (name, x, y) in [
        ("critic", a.critic, b.critic),
        ("generator", a.generator, b.generator),
    ] {
        let r = rel(x, y);
        assert!(
            r > 1e-6 && r < 0.05,
            "{name}: fp32 {x}, bf16 {y} (relative {r:e})"
        );
    }
    // Weights, EMA and Adam moments stay fp32 and were updated.
    let mut moved = 0;
    for ((name, t), b) in bf16.state().iter().zip(&before) {
        assert_eq!(t.kind(), Kind::Float, "{name}");
        if !t.equal(b) {
            moved += 1;
        }
    }
    assert!(moved > 0, "no weight moved in the bf16 step");
    let adam = bf16.trainer().generator.opt.saveable().unwrap();
    for (name, t) in adam.state("adam_g") {
        assert_eq!(t.kind(), Kind::Float, "{name}");
    }
}
