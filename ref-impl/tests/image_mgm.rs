//! MGM on images (issue 5): the generator and the field start from the warmup's weights, the
//! floor on `t` is applied exactly where documented and makes `t = 0` finite, the defaults are
//! the paper's best row, one step is deterministic and its EMA is exact, and the run state
//! round-trips.

use midpoint::{Gaussian, Law};
use midpoint_train::data::LawImages;
use midpoint_train::methods::mgm::image::{ImageMgm, ImageMgmConfig};
use midpoint_train::methods::mgm::Variant;
use midpoint_train::nets::edm::precond::SIGMA_MIN;
use midpoint_train::nets::edm::{EdmPrecond, UNetConfig};
use midpoint_train::train::method::Batches;
use midpoint_train::train::network::{Field, Generator};
use ndarray::Array1;
use std::collections::HashMap;
use std::sync::Mutex;
use tch::{nn, Device, Kind, Tensor};

static TORCH: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    let g = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    g
}

/// The tiny test network at 8×8 (two levels, attention at 4×4): every block type, fast.
fn tiny8() -> UNetConfig {
    UNetConfig {
        name: "tiny8".into(),
        img_resolution: 8,
        attn_resolutions: vec![4],
        ..UNetConfig::tiny()
    }
}

fn config() -> ImageMgmConfig {
    ImageMgmConfig {
        batch: 4,
        lr: 1e-3,
        ema_decay: 0.9,
        seed: 3,
        ..ImageMgmConfig::paper(tiny8())
    }
}

fn images(seed: u64) -> LawImages {
    let d = 3 * 8 * 8;
    let mean = Array1::from_shape_fn(d, |i| 0.5 * ((i as f64) * 0.37).sin());
    let law: Law = Gaussian::isotropic(mean, 0.04).unwrap().into();
    LawImages::new(law, [3, 8, 8], seed).unwrap()
}

fn warmup(config: &UNetConfig, seed: i64) -> (nn::VarStore, EdmPrecond) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = EdmPrecond::new(&vs.root(), config).unwrap();
    // Move the zero-initialised output layers off (almost) zero so that F matters.
    tch::no_grad(|| {
        for (_, mut t) in vs.variables() {
            let noise = t.randn_like() * 0.05;
            let _ = t.g_add_(&noise);
        }
    });
    (vs, net)
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.equal(b)
}

#[test]
fn paper_defaults_are_table_1c_and_appendix_b() {
    let c = ImageMgmConfig::paper(UNetConfig::ddpmpp());
    assert_eq!(c.variant, Variant::Mgm);
    assert_eq!((c.sigma, c.critic_sigma), (0.0, 0.01));
    assert_eq!((c.lr, c.batch, c.ema_decay), (1e-5, 256, 0.999));
    assert_eq!(c.t_floor, 0.002);
    assert_eq!(c.image_shape(), [3, 32, 32]);
}

#[test]
fn bad_settings_are_refused() {
    let _g = lock();
    for bad in [
        ImageMgmConfig {
            variant: Variant::Naive,
            ..config()
        },
        ImageMgmConfig {
            batch: 0,
            ..config()
        },
        ImageMgmConfig {
            t_floor: 0.0,
            ..config()
        },
        ImageMgmConfig {
            t_floor: f64::NAN,
            ..config()
        },
        ImageMgmConfig {
            critic_sigma: -0.1,
            ..config()
        },
        ImageMgmConfig {
            lr: 0.0,
            ..config()
        },
        ImageMgmConfig {
            ema_decay: 1.0,
            ..config()
        },
    ] {
        assert!(
            ImageMgm::from_random_init(bad.clone(), Device::Cpu).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn generator_field_and_ema_start_from_the_warmup() {
    let _g = lock();
    let (wvs, wnet) = warmup(&tiny8(), 1);
    let run = ImageMgm::from_warmup(&wvs, config(), Device::Cpu).unwrap();
    let w = wvs.variables();
    let t = run.trainer();
    for vs in [&t.generator.vs, &t.field.vs, run.ema().1] {
        let v = vs.variables();
        assert_eq!(v.len(), w.len());
        for (name, x) in &v {
            assert!(same(x, &w[name]), "{name}");
        }
    }
    // G(z) = D(2.5 z; 2.5) and f(x, t) = D(x; t) of the warmup network, bit for bit.
    tch::manual_seed(2);
    let z = Tensor::randn([3, 3, 8, 8], (Kind::Float, Device::Cpu));
    let g = tch::no_grad(|| t.generator.net.generate(&z, false));
    let want = tch::no_grad(|| wnet.denoise_at(&(&z * 2.5), 2.5, false));
    assert!(same(&g, &want));
    assert!(same(&run.samples(&z), &want), "EMA generator = warmup");
    let ts = Tensor::from_slice(&[0.1f32, 0.25, 0.5]);
    let f = tch::no_grad(|| t.field.net.field(&z, &ts, false));
    let want = tch::no_grad(|| wnet.denoise(&z, &ts, None, false));
    assert!(same(&f, &want));
    // The three copies are independent variables, not aliases of the warmup.
    tch::no_grad(|| {
        let _ = wvs
            .variables()
            .values()
            .next()
            .unwrap()
            .shallow_clone()
            .fill_(7.0);
    });
    assert!(same(&run.samples(&z), &g));
}

#[test]
fn warmup_of_another_architecture_is_refused() {
    let _g = lock();
    let other = UNetConfig {
        model_channels: 8,
        ..tiny8()
    };
    let (wvs, _) = warmup(&other, 1);
    let err = ImageMgm::from_warmup(&wvs, config(), Device::Cpu)
        .err()
        .expect("shape mismatch must be an error");
    assert!(err.to_string().contains("shape"), "{err}");
    let (wvs, _) = warmup(
        &UNetConfig {
            num_blocks: 2,
            ..tiny8()
        },
        1,
    );
    let err = ImageMgm::from_warmup(&wvs, config(), Device::Cpu)
        .err()
        .expect("extra blocks must be an error");
    assert!(err.to_string().contains("variables"), "{err}");
}

/// The floor acts exactly as documented: `f(x, t) = D(x; max(t, 0.002))` bit for bit, for `t`
/// below, at and above the floor; `t = 0` gives a finite field although `D(x; 0)` is NaN
/// (`c_noise = ln 0 / 4 = −∞`), which is why the floor exists.
#[test]
fn t_floor_makes_t_zero_finite_and_applies_only_below_the_floor() {
    let _g = lock();
    let (wvs, wnet) = warmup(&tiny8(), 4);
    let run = ImageMgm::from_warmup(&wvs, config(), Device::Cpu).unwrap();
    let field = &run.trainer().field.net;
    assert_eq!(field.sigma_min, SIGMA_MIN);
    tch::manual_seed(5);
    let x = Tensor::randn([6, 3, 8, 8], (Kind::Float, Device::Cpu));
    let t = [0.0f32, 1e-4, 0.0019, 0.002, 0.0021, 0.37];
    let floored: Vec<f32> = t.iter().map(|&t| t.max(0.002)).collect();
    let f = tch::no_grad(|| field.field(&x, &Tensor::from_slice(&t), false));
    let want = tch::no_grad(|| wnet.denoise(&x, &Tensor::from_slice(&floored), None, false));
    assert!(same(&f, &want), "f(x, t) = D(x; max(t, 0.002))");
    assert_eq!(f.isfinite().all().int64_value(&[]), 1, "finite at t = 0");
    // Above the floor the noise level is t itself (not the floor): D(x; 0.0021) ≠ D(x; 0.002).
    let at = |s: f32| tch::no_grad(|| wnet.denoise_at(&x.narrow(0, 0, 1), s as f64, false));
    assert!(!same(&at(0.0021), &at(0.002)));
    // Without the floor, t = 0 is NaN.
    let raw = tch::no_grad(|| wnet.denoise(&x, &Tensor::from_slice(&[0.0f32; 6]), None, false));
    assert_eq!(raw.isnan().any().int64_value(&[]), 1);
}

#[test]
fn steps_are_finite_reproducible_and_the_ema_is_exact() {
    let _g = lock();
    let (wvs, _) = warmup(&tiny8(), 6);
    let mut a = ImageMgm::from_warmup(&wvs, config(), Device::Cpu).unwrap();
    let mut b = ImageMgm::from_warmup(&wvs, config(), Device::Cpu).unwrap();
    let before: HashMap<String, Tensor> =
        a.state().into_iter().map(|(n, t)| (n, t.copy())).collect();
    let (mut da, mut db) = (images(9), images(9));
    let la = a.step(&mut da).unwrap();
    let lb = b.step(&mut db).unwrap();
    assert!(la.critic.is_finite() && la.generator.is_finite(), "{la:?}");
    assert_eq!(la, lb, "same seed, same data: same losses");
    let after: HashMap<String, Tensor> = a.state().into_iter().collect();
    for (name, t) in b.state() {
        assert!(
            same(&t, &after[&name]),
            "{name} differs between identical runs"
        );
    }
    // Both networks moved; the EMA is exactly d·w0 + (1 − d)·w1 of the generator's weights.
    let moved = |p: &str| {
        after
            .iter()
            .filter(|(n, _)| n.starts_with(p))
            .any(|(n, t)| !same(t, &before[n]))
    };
    assert!(moved("generator.") && moved("field.") && moved("ema."));
    let d = config().ema_decay;
    for (name, e) in after.iter().filter(|(n, _)| n.starts_with("ema.")) {
        let g = name.replacen("ema.", "generator.", 1);
        let want = &before[name] * d + &after[&g] * (1.0 - d);
        assert!(same(e, &want), "{name}");
    }
    // The next step uses other batches and other noise: other losses.
    let la2 = a.step(&mut da).unwrap();
    assert_ne!(la2, la);
    assert_eq!(a.steps_done(), 2);
}

#[test]
fn state_round_trips_and_wrong_state_is_refused() {
    let _g = lock();
    let mut a = ImageMgm::from_random_init(config(), Device::Cpu).unwrap();
    a.step(&mut images(1)).unwrap();
    let saved: HashMap<String, Tensor> =
        a.state().into_iter().map(|(n, t)| (n, t.copy())).collect();
    let mut b = ImageMgm::from_random_init(
        ImageMgmConfig {
            seed: 99,
            ..config()
        },
        Device::Cpu,
    )
    .unwrap();
    let z = a.grid_latents(4);
    assert!(!same(&a.samples(&z), &b.samples(&z)));
    b.load_state(&saved).unwrap();
    assert!(same(&a.samples(&z), &b.samples(&z)));
    let mut missing: HashMap<String, Tensor> = saved
        .iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect();
    missing.remove(saved.keys().find(|k| k.starts_with("field.")).unwrap());
    assert!(b.load_state(&missing).is_err());
    let mut wrong = saved;
    let k = wrong.keys().next().unwrap().clone();
    wrong.insert(k, Tensor::zeros([1], (Kind::Float, Device::Cpu)));
    assert!(b.load_state(&wrong).is_err());
}

#[test]
fn wrong_data_shape_is_an_error_not_a_panic() {
    let _g = lock();
    struct Wrong;
    impl Batches for Wrong {
        fn batch(
            &mut self,
            _: u64,
            n: i64,
            d: Device,
        ) -> Result<Tensor, midpoint_train::TrainError> {
            Ok(Tensor::zeros([n, 3, 16, 16], (Kind::Float, d)))
        }
    }
    let mut run = ImageMgm::from_random_init(config(), Device::Cpu).unwrap();
    let err = run.step(&mut Wrong).unwrap_err();
    assert!(err.to_string().contains("shape"), "{err}");
    assert_eq!(run.steps_done(), 0);
}

#[test]
fn midpoint_variant_trains_too() {
    let _g = lock();
    let mut run = ImageMgm::from_random_init(
        ImageMgmConfig {
            variant: Variant::Midpoint,
            ..config()
        },
        Device::Cpu,
    )
    .unwrap();
    let l = run.step(&mut images(2)).unwrap();
    assert!(l.critic.is_finite() && l.generator.is_finite());
}

/// The training set as an image source: batches of one epoch visit every image exactly once
/// (scaled to `[−1, 1]`), a batch is a pure function of its index, and an empty set is refused.
#[test]
fn data_images_visit_each_image_once_per_epoch() {
    use midpoint_train::data::DataImages;
    use midpoint_train::data::ImageSet;
    let _g = lock();
    // Image i is the constant 40·i (u8), i.e. 40·i/127.5 − 1 after scaling.
    let images = Tensor::arange(6, (Kind::Uint8, Device::Cpu)).reshape([6, 1, 1, 1]) * 40;
    let images = images.expand([6, 3, 8, 8], false).contiguous();
    let set = ImageSet::new(images, None, "six constant images".into());
    let mut data = DataImages::new(set, 9, false).unwrap();
    let mut seen = Vec::new();
    for k in 0..3 {
        let x = data.batch(k, 2, Device::Cpu).unwrap();
        assert_eq!(x.size(), [2, 3, 8, 8]);
        for v in Vec::<f32>::try_from(x.reshape([2, -1]).select(1, 0)).unwrap() {
            seen.push(((v + 1.0) * 127.5 / 40.0).round() as i64);
        }
        assert!(x.equal(&data.batch(k, 2, Device::Cpu).unwrap()));
    }
    seen.sort_unstable();
    assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
    assert!(data.describe().contains("6 images"), "{}", data.describe());
    let empty = ImageSet::new(
        Tensor::zeros([0, 3, 8, 8], (Kind::Uint8, Device::Cpu)),
        None,
        "none".into(),
    );
    assert!(DataImages::new(empty, 0, false).is_err());
}
