//! Checkpoints of image MGM (issue 5): N + M steps in one go and N steps, a checkpoint, and M
//! resumed steps give bit-identical losses and weights on the CPU (Adam's moments, the step
//! and the per-step seeds are restored); a checkpoint of other settings (precision included), of other training
//! images, or a corrupt or truncated file is refused with the reason.

use midpoint::{Gaussian, Law};
use midpoint_train::data::LawImages;
use midpoint_train::methods::mgm::image::{ImageMgm, ImageMgmConfig};
use midpoint_train::nets::edm::UNetConfig;
use midpoint_train::train::method::Batches;
use midpoint_train::train::precision::Precision;
use ndarray::Array1;
use std::sync::Mutex;
use tch::Device;

static TORCH: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    let g = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    g
}

fn config() -> ImageMgmConfig {
    let arch = UNetConfig {
        name: "tiny8".into(),
        img_resolution: 8,
        attn_resolutions: vec![4],
        ..UNetConfig::tiny()
    };
    ImageMgmConfig {
        batch: 3,
        lr: 1e-3,
        ema_decay: 0.9,
        seed: 5,
        ..ImageMgmConfig::paper(arch)
    }
}

fn images() -> LawImages {
    let d = 3 * 8 * 8;
    let mean = Array1::from_shape_fn(d, |i| 0.5 * ((i as f64) * 0.37).sin());
    let law: Law = Gaussian::isotropic(mean, 0.04).unwrap().into();
    LawImages::new(law, [3, 8, 8], 11).unwrap()
}

fn bits(losses: &[(f64, f64)]) -> Vec<(u64, u64)> {
    losses
        .iter()
        .map(|(c, g)| (c.to_bits(), g.to_bits()))
        .collect()
}

fn steps(run: &mut ImageMgm, data: &mut LawImages, n: usize) -> Vec<(f64, f64)> {
    (0..n)
        .map(|_| {
            let l = run.step(data).unwrap();
            assert!(l.critic.is_finite() && l.generator.is_finite());
            (l.critic, l.generator)
        })
        .collect()
}

#[test]
fn resume_is_bit_identical_on_cpu() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let mut data = images();
    let mut whole = ImageMgm::from_random_init(config(), Device::Cpu).unwrap();
    let all = steps(&mut whole, &mut data, 5);

    let mut first = ImageMgm::from_random_init(config(), Device::Cpu).unwrap();
    let mut part = steps(&mut first, &mut data, 3);
    first.save(&path, &data.describe()).unwrap();
    drop(first);
    let mut resumed = ImageMgm::resume(&path, config(), &data.describe(), Device::Cpu).unwrap();
    assert_eq!(resumed.steps_done(), 3);
    part.extend(steps(&mut resumed, &mut data, 2));
    assert_eq!(bits(&part), bits(&all));
    for ((n, a), (m, b)) in whole.state().iter().zip(resumed.state().iter()) {
        assert_eq!(n, m);
        assert!(a.equal(b), "{n} differs after resume");
    }

    // The checkpoint holds non-zero second moments of both Adams (a resume that restarted
    // Adam would take different steps: with β1 = 0 the first step is ±lr per weight).
    let ckpt = midpoint_train::train::checkpoint::load(&path).unwrap();
    for prefix in ["adam_g.exp_avg_sq.", "adam_f.exp_avg_sq."] {
        let total: f64 = ckpt
            .tensors
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, t)| t.abs().sum(tch::Kind::Double).double_value(&[]))
            .sum();
        assert!(total > 0.0, "{prefix}: {total}");
    }
    assert_eq!(ckpt.metadata["step"], "3");
    assert_eq!(ckpt.metadata["adam_g_step"], "3");
}

#[test]
fn other_settings_data_and_corrupt_files_are_refused() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let mut data = images();
    let mut run = ImageMgm::from_random_init(config(), Device::Cpu).unwrap();
    steps(&mut run, &mut data, 1);
    run.save(&path, &data.describe()).unwrap();

    let other = ImageMgmConfig {
        lr: 2e-3,
        ..config()
    };
    let e = ImageMgm::resume(&path, other, &data.describe(), Device::Cpu)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("lr: checkpoint 0.001, now 0.002"),
        "{e}"
    );
    // The precision is part of the settings: an fp32 checkpoint does not resume as bf16.
    let bf16 = ImageMgmConfig {
        precision: Precision::Bf16,
        ..config()
    };
    let e = ImageMgm::resume(&path, bf16, &data.describe(), Device::Cpu)
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .contains("precision: checkpoint \"fp32\", now \"bf16\""),
        "{e}"
    );
    let e = ImageMgm::resume(&path, config(), "cifar-10 train", Device::Cpu)
        .err()
        .unwrap();
    assert!(e.to_string().contains("trained on"), "{e}");

    let bytes = std::fs::read(&path).unwrap();
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    std::fs::write(&path, &flipped).unwrap();
    let e = ImageMgm::resume(&path, config(), &data.describe(), Device::Cpu)
        .err()
        .unwrap();
    assert!(e.to_string().contains("checksum"), "{e}");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = ImageMgm::resume(&path, config(), &data.describe(), Device::Cpu)
        .err()
        .unwrap();
    assert!(e.to_string().contains("truncated"), "{e}");
}

/// `--critic-warmup 2`: the first two iterations change the field and leave the generator and
/// its EMA untouched (bit for bit), the third changes the generator; a checkpoint taken inside
/// the warmup resumes bit-identically across its end, with the generator's Adam at step 1.
#[test]
fn critic_warmup_updates_only_the_field_and_resumes_across_its_end() {
    let _g = lock();
    let cfg = ImageMgmConfig {
        critic_warmup: 2,
        critic_lr: Some(3e-3),
        ..config()
    };
    let part = |run: &ImageMgm, prefix: &str| -> Vec<tch::Tensor> {
        run.state()
            .into_iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, t)| t.copy())
            .collect()
    };
    let same = |a: &[tch::Tensor], b: &[tch::Tensor]| a.iter().zip(b).all(|(x, y)| x.equal(y));
    let mut data = images();
    let mut whole = ImageMgm::from_random_init(cfg.clone(), Device::Cpu).unwrap();
    let (g0, f0, e0) = (
        part(&whole, "generator."),
        part(&whole, "field."),
        part(&whole, "ema."),
    );
    let mut all = steps(&mut whole, &mut data, 2);
    assert!(
        same(&g0, &part(&whole, "generator.")),
        "generator moved in the warmup"
    );
    assert!(same(&e0, &part(&whole, "ema.")), "EMA moved in the warmup");
    assert!(
        !same(&f0, &part(&whole, "field.")),
        "field did not move in the warmup"
    );
    all.extend(steps(&mut whole, &mut data, 2));
    assert!(
        !same(&g0, &part(&whole, "generator.")),
        "generator did not move after it"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let mut first = ImageMgm::from_random_init(cfg.clone(), Device::Cpu).unwrap();
    let mut resumed_losses = steps(&mut first, &mut data, 1);
    first.save(&path, &data.describe()).unwrap();
    let mut resumed = ImageMgm::resume(&path, cfg.clone(), &data.describe(), Device::Cpu).unwrap();
    resumed_losses.extend(steps(&mut resumed, &mut data, 3));
    assert_eq!(bits(&resumed_losses), bits(&all));
    resumed.save(&path, &data.describe()).unwrap();
    let meta = midpoint_train::train::checkpoint::load(&path)
        .unwrap()
        .metadata;
    assert_eq!(
        (meta["step"].as_str(), meta["adam_g_step"].as_str()),
        ("4", "2")
    );
    // Another warmup length is another run.
    let other = ImageMgmConfig {
        critic_warmup: 3,
        ..cfg
    };
    let err = match ImageMgm::resume(&path, other, &data.describe(), Device::Cpu) {
        Ok(_) => panic!("a checkpoint of another --critic-warmup was resumed"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("critic_warmup"), "{err}");
}

/// The multi-tensor kernels (`--adam-kernel fused --ema-kernel foreach`) change only the
/// rounding: after 4 iterations every weight, moment and EMA entry is within 1e-5 of the plain
/// run's (1% of one Adam move, which is ≈ lr = 1e-3 per weight with β1 = 0: a kernel that got
/// the update wrong by more than 1% would fail), and the losses agree to 1e-6 relative. The
/// kernels are not settings: a plain run's checkpoint resumes with them.
#[test]
fn kernels_change_only_rounding_and_a_run_resumes_with_other_kernels() {
    use midpoint_train::train::kernels::{AdamKernel, EmaKernel, Kernels};
    let _g = lock();
    let fast = Kernels {
        adam: AdamKernel::Fused,
        ema: EmaKernel::Foreach,
    };
    let mut data = images();
    let mut plain = ImageMgm::from_random_init(config(), Device::Cpu).unwrap();
    let a = steps(&mut plain, &mut data, 4);
    let mut other = ImageMgm::from_random_init(config(), Device::Cpu)
        .unwrap()
        .with_kernels(fast)
        .unwrap();
    let b = steps(&mut other, &mut data, 4);
    for ((c1, g1), (c2, g2)) in a.iter().zip(&b) {
        assert!((c1 - c2).abs() <= 1e-6 * c1.abs().max(1.0), "{c1} {c2}");
        assert!((g1 - g2).abs() <= 1e-6 * g1.abs().max(1.0), "{g1} {g2}");
    }
    let mut worst = 0.0f64;
    for ((n, x), (m, y)) in plain.state().iter().zip(other.state().iter()) {
        assert_eq!(n, m);
        worst = worst.max((x - y).abs().max().double_value(&[]));
    }
    assert!(worst <= 1e-5, "largest difference {worst:e}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    plain.save(&path, &data.describe()).unwrap();
    let mut resumed = ImageMgm::resume(&path, config(), &data.describe(), Device::Cpu)
        .unwrap()
        .with_kernels(fast)
        .unwrap();
    assert_eq!(steps(&mut resumed, &mut data, 1).len(), 1);
}
