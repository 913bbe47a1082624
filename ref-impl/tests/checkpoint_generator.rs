//! The generator of an image checkpoint (what `fid --checkpoint` and `image-metrics
//! --checkpoint` sample): for each kind of checkpoint, the samples are bit for bit those of
//! the method's own evaluated model (the EMA, not the raw network), a flow map samples at the
//! asked number of steps, and what cannot be done is a typed error.

use midpoint::{Gaussian, Law};
use midpoint_train::data::LawImages;
use midpoint_train::error::TrainError;
use midpoint_train::image::checkpoint_generator::CheckpointGenerator;
use midpoint_train::methods::flow_map::image::{FlowMapImage, FlowMapImageConfig};
use midpoint_train::methods::flow_map::kind::FlowMapKind;
use midpoint_train::methods::mgm::image::{ImageMgm, ImageMgmConfig};
use midpoint_train::methods::warmup::{Warmup, WarmupOptions};
use midpoint_train::nets::edm::UNetConfig;
use midpoint_train::train::method::{Batches, Method};
use ndarray::Array1;
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

/// Torch's random stream is global: one test at a time.
static TORCH: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    let g = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    g
}

fn tiny8() -> UNetConfig {
    UNetConfig {
        name: "tiny8".into(),
        img_resolution: 8,
        attn_resolutions: vec![4],
        ..UNetConfig::tiny()
    }
}

fn images() -> LawImages {
    let d = 3 * 8 * 8;
    let mean = Array1::from_shape_fn(d, |i| 0.5 * ((i as f64) * 0.37).sin());
    let law: Law = Gaussian::isotropic(mean, 0.04).unwrap().into();
    LawImages::new(law, [3, 8, 8], 7).unwrap()
}

fn latents() -> Tensor {
    tch::manual_seed(11);
    Tensor::randn([3, 3, 8, 8], (Kind::Float, Device::Cpu))
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.equal(b)
}

#[test]
fn an_mgm_checkpoint_samples_its_ema_generator() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mgm.safetensors");
    let config = ImageMgmConfig {
        batch: 4,
        lr: 1e-3,
        ema_decay: 0.5,
        seed: 2,
        ..ImageMgmConfig::paper(tiny8())
    };
    let mut run = ImageMgm::from_random_init(config, Device::Cpu).unwrap();
    let mut data = images();
    for _ in 0..2 {
        run.step(&mut data).unwrap();
    }
    run.save(&path, &data.describe()).unwrap();
    let z = latents();
    let g = CheckpointGenerator::open(&path, Device::Cpu, None).unwrap();
    assert_eq!(g.image_shape(), [3, 8, 8]);
    assert_eq!(g.steps(), 1);
    assert!(g.describe().contains("MGM"), "{}", g.describe());
    let x = g.sample(&z);
    assert!(same(&x, &run.samples(&z)));
    // The EMA, not the raw generator: after two updates at decay 0.5 they differ.
    let raw = run.sample_raw(&z).unwrap();
    assert!(!same(&x, &raw));
    // One step only.
    let e = CheckpointGenerator::open(&path, Device::Cpu, Some(2))
        .err()
        .unwrap();
    assert!(
        matches!(e, TrainError::InvalidOption(ref m) if m.contains("one-step")),
        "{e}"
    );
    assert!(CheckpointGenerator::open(&path, Device::Cpu, Some(1)).is_ok());
}

#[test]
fn a_warmup_checkpoint_samples_its_one_step_generator() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warmup.safetensors");
    let options = WarmupOptions {
        batch: 4,
        lr_rampup_kimg: 0.0,
        ema_halflife_kimg: 0.001,
        ..WarmupOptions::edm(tiny8())
    };
    let mut w = Warmup::new(options, Device::Cpu).unwrap();
    let mut data = images();
    for _ in 0..2 {
        w.train_step(&mut data).unwrap();
    }
    w.save(&path).unwrap();
    let z = latents();
    let g = CheckpointGenerator::open(&path, Device::Cpu, None).unwrap();
    assert!(same(&g.sample(&z), &w.samples(&z)));
    assert!(g.describe().contains("warmup"), "{}", g.describe());
    assert!(CheckpointGenerator::open(&path, Device::Cpu, Some(4)).is_err());
}

#[test]
fn a_flow_map_checkpoint_samples_its_ema_map_at_the_asked_steps() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fmm.safetensors");
    let mut cfg = FlowMapImageConfig::new(FlowMapKind::Fmm, tiny8(), 20);
    cfg.batch = 4;
    cfg.ema_decay = 0.5;
    let mut run = FlowMapImage::new(cfg, Device::Cpu).unwrap();
    let mut data = images();
    for _ in 0..2 {
        run.step(&mut data).unwrap();
    }
    run.save(&path, &data.describe()).unwrap();
    let z = latents();
    // The run's own steps (banded FMM: 4) by default, any other on request.
    let g = CheckpointGenerator::open(&path, Device::Cpu, None).unwrap();
    assert_eq!(g.steps(), 4);
    assert!(same(&g.sample(&z), &run.sample_steps(&z, 4, true)));
    let g2 = CheckpointGenerator::open(&path, Device::Cpu, Some(2)).unwrap();
    let x2 = g2.sample(&z);
    assert!(same(&x2, &run.sample_steps(&z, 2, true)));
    assert!(!same(&x2, &g.sample(&z)));
    assert!(
        !same(&x2, &run.sample_steps(&z, 2, false)),
        "the EMA, not the raw map"
    );
    assert!(CheckpointGenerator::open(&path, Device::Cpu, Some(0)).is_err());
}

#[test]
fn other_files_are_refused_with_their_format() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    // A well-formed checkpoint of another kind (the toy trainer's format).
    let ckpt = dir.path().join("toy.safetensors");
    let meta = std::collections::BTreeMap::from([(
        "format".to_string(),
        "midpoint-mgm-toy-v1".to_string(),
    )]);
    let t = Tensor::zeros([2], (Kind::Float, Device::Cpu));
    midpoint_train::train::checkpoint::save(&ckpt, &[("w".to_string(), t)], &meta).unwrap();
    let e = CheckpointGenerator::open(&ckpt, Device::Cpu, None)
        .err()
        .unwrap();
    assert!(e.to_string().contains("midpoint-mgm-toy-v1"), "{e}");
    let e = CheckpointGenerator::open(&dir.path().join("none"), Device::Cpu, None)
        .err()
        .unwrap();
    assert!(e.to_string().contains("none"), "{e}");
}
