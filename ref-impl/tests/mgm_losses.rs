//! Algorithm 1's pieces against values computed by hand on a tiny batch: the flipped
//! observation, both losses and their gradients (sign and stop-gradient errors fail here), the
//! frozen critic in the generator step, and Adam with β1 = 0.

use midpoint::StochasticInterpolant;
use midpoint_train::methods::mgm::{field_loss, generator_loss, observe, Mgm, MgmConfig, Variant};
use midpoint_train::train::network::{adam, Network};
use std::sync::Mutex;
use tch::{nn, Kind, Tensor};

/// libtorch's RNG and thread pool are global: tests in this binary take turns.
static TORCH: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    let g = TORCH.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    g
}

fn t2(v: [[f64; 2]; 2]) -> Tensor {
    Tensor::from_slice(&[v[0][0], v[0][1], v[1][0], v[1][1]])
        .reshape([2, 2])
        .to_kind(Kind::Double)
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "entry {i}: got {g}, want {w}");
    }
}

// The batch used throughout (N = 2, D = 2).
const X0: [[f64; 2]; 2] = [[1.0, 2.0], [-1.0, 0.0]];
const X1: [[f64; 2]; 2] = [[3.0, -1.0], [0.5, 2.0]];
const EPS: [[f64; 2]; 2] = [[0.2, -0.4], [1.0, 0.5]];
const P: [[f64; 2]; 2] = [[0.5, -1.0], [2.0, 0.25]];

#[test]
fn flipped_observation_by_hand() {
    let _g = lock();
    // σ = 0.5: γ(t) = sqrt(0.5·t(1−t)). Row 0: b = 0, t = 0.25 → 0.75·x0 + 0.25·x1 + γ ε.
    // Row 1: b = 1, t = 0.4 → I_{0.6}(x0, x1) = 0.4·x0 + 0.6·x1, plus the same-form γ ε.
    let si = StochasticInterpolant::linear(0.5).unwrap();
    let x = observe(
        &si,
        &t2(X0),
        &t2(X1),
        &[0.25, 0.4],
        &[false, true],
        &t2(EPS),
    )
    .unwrap();
    let g0 = (0.5f64 * 0.25 * 0.75).sqrt();
    let g1 = (0.5f64 * 0.4 * 0.6).sqrt();
    let want = [
        1.5 + 0.2 * g0,
        1.25 - 0.4 * g0,
        -0.1 + 1.0 * g1,
        1.2 + 0.5 * g1,
    ];
    assert_close(&values(&x), &want, 1e-12);
    // Without the flip the same row 1 would be 0.6·x0 + 0.4·x1 + γ ε = (−0.4 + γ, 0.8 + γ/2).
    let x = observe(
        &si,
        &t2(X0),
        &t2(X1),
        &[0.25, 0.4],
        &[false, false],
        &t2(EPS),
    )
    .unwrap();
    assert_close(
        &values(&x).split_off(2),
        &[-0.4 + g1, 0.8 + 0.5 * g1],
        1e-12,
    );
    // Shapes are checked.
    assert!(observe(&si, &t2(X0), &t2(X1), &[0.25], &[false], &t2(EPS)).is_err());
}

#[test]
fn critic_loss_value_and_stopped_target() {
    let _g = lock();
    // Δ = x1 − x0 = [[2, −3], [1.5, 2]]; ‖P − Δ‖² = 2.25 + 4 = 6.25 and 0.25 + 3.0625 = 3.3125;
    // mean 4.78125. ∂L/∂P = 2(P − Δ)/N = P − Δ; no gradient may reach x0 or x1.
    let x0 = t2(X0).set_requires_grad(true);
    let x1 = t2(X1).set_requires_grad(true);
    let p = t2(P).set_requires_grad(true);
    let loss = field_loss(&p, &x0, &x1);
    assert!((f64::try_from(&loss).unwrap() - 4.78125).abs() < 1e-12);
    loss.backward();
    assert_close(&values(&p.grad()), &[-1.5, 2.0, 0.5, -1.75], 1e-12);
    for x in [&x0, &x1] {
        let g = x.grad();
        assert!(
            !g.defined() || values(&g).iter().all(|v| *v == 0.0),
            "the critic's target x1 − x0 must be stopped"
        );
    }
}

#[test]
fn generator_loss_value_and_gradients() {
    let _g = lock();
    // 2⟨P, Δ⟩ − ‖P‖²: row 0: 2(1 + 3) − 1.25 = 6.75; row 1: 2(3 + 0.5) − 4.0625 = 2.9375;
    // mean 4.84375. ∂L/∂P = Δ − P, ∂L/∂x0 = −P, ∂L/∂x1 = P (N = 2).
    let x0 = t2(X0).set_requires_grad(true);
    let x1 = t2(X1).set_requires_grad(true);
    let p = t2(P).set_requires_grad(true);
    let loss = generator_loss(&p, &x0, &x1);
    assert!((f64::try_from(&loss).unwrap() - 4.84375).abs() < 1e-12);
    loss.backward();
    assert_close(&values(&p.grad()), &[1.5, -2.0, -0.5, 1.75], 1e-12);
    assert_close(&values(&x0.grad()), &[-0.5, 1.0, -2.0, -0.25], 1e-12);
    assert_close(&values(&x1.grad()), &[0.5, -1.0, 2.0, 0.25], 1e-12);
}

#[test]
fn generator_gradient_flows_through_the_observation() {
    let _g = lock();
    // Critic f(x̃) = A x̃. L = (1/N) Σ_n 2⟨A x̃_n, Δ_n⟩ − ‖A x̃_n‖² with x̃_n = a_n x0_n + b_n x1_n
    // + γ_n ε_n, so ∂L/∂x0_n = (1/N)[a_n Aᵀ(2Δ_n − 2A x̃_n) − 2A x̃_n]: the first term exists only
    // if gradients pass through x̃ (into f), the second only through the target x1 − x0.
    let a = [[0.5, -0.2], [0.3, 1.1]];
    let si = StochasticInterpolant::linear(0.5).unwrap();
    let (t, b) = ([0.25, 0.4], [false, true]);
    let x0 = t2(X0).set_requires_grad(true);
    let x1 = t2(X1);
    let xt = observe(&si, &x0, &x1, &t, &b, &t2(EPS)).unwrap();
    let pred = xt.matmul(&t2(a).tr());
    generator_loss(&pred, &x0, &x1).backward();

    let coef_x0 = [0.75, 0.4]; // α of row 0 (b = 0, t = ¼) and of row 1 (b = 1: β(0.4) = 0.4)
    let xt_v = values(&xt);
    let mut want = Vec::new();
    for n in 0..2 {
        let x = [xt_v[2 * n], xt_v[2 * n + 1]];
        let f = [
            a[0][0] * x[0] + a[0][1] * x[1],
            a[1][0] * x[0] + a[1][1] * x[1],
        ];
        let delta = [X1[n][0] - X0[n][0], X1[n][1] - X0[n][1]];
        let r = [2.0 * delta[0] - 2.0 * f[0], 2.0 * delta[1] - 2.0 * f[1]];
        for i in 0..2 {
            let through_f = coef_x0[n] * (a[0][i] * r[0] + a[1][i] * r[1]);
            want.push((through_f - 2.0 * f[i]) / 2.0);
        }
    }
    assert_close(&values(&x0.grad()), &want, 1e-12);
}

#[test]
fn generator_objective_differentiates_through_generator_and_observation() {
    let _g = lock();
    // Midpoint variant with σ = 0 makes the draw deterministic: x̃ = (x0 + x1)/2 whatever b.
    // G(z) = W z (W = I + small), f(x̃) = A x̃. With r_n = 2Δ_n − 2f_n,
    // ∂L/∂x0_n = (1/N)[½ Aᵀ r_n − 2 f_n] and ∂L/∂W = Σ_n ∂L/∂x0_n z_nᵀ. Dropping the path
    // through x̃ (a detach in the wrong place) removes the first term and fails this test.
    let mgm = Mgm::new(&MgmConfig::linear(Variant::Midpoint, 0.0)).unwrap();
    let w0 = [[1.1, 0.2], [-0.3, 0.9]];
    let a = [[0.5, -0.2], [0.3, 1.1]];
    let w = t2(w0).set_requires_grad(true);
    let am = t2(a);
    let generator = |z: &Tensor| z.matmul(&w.tr());
    let critic = |x: &Tensor, _t: &Tensor| x.matmul(&am.tr());
    let z = t2(EPS);
    let loss = mgm
        .generator_objective(&generator, &critic, &z, &t2(X1))
        .unwrap();
    loss.backward();
    let mut want = [[0.0; 2]; 2];
    for n in 0..2 {
        let x0 = [
            w0[0][0] * EPS[n][0] + w0[0][1] * EPS[n][1],
            w0[1][0] * EPS[n][0] + w0[1][1] * EPS[n][1],
        ];
        let xt = [0.5 * (x0[0] + X1[n][0]), 0.5 * (x0[1] + X1[n][1])];
        let f = [
            a[0][0] * xt[0] + a[0][1] * xt[1],
            a[1][0] * xt[0] + a[1][1] * xt[1],
        ];
        let r = [
            2.0 * (X1[n][0] - x0[0]) - 2.0 * f[0],
            2.0 * (X1[n][1] - x0[1]) - 2.0 * f[1],
        ];
        for i in 0..2 {
            let g = (0.5 * (a[0][i] * r[0] + a[1][i] * r[1]) - 2.0 * f[i]) / 2.0;
            for j in 0..2 {
                want[i][j] += g * EPS[n][j];
            }
        }
    }
    assert_close(
        &values(&w.grad()),
        &[want[0][0], want[0][1], want[1][0], want[1][1]],
        1e-12,
    );
}

fn linear_net(vs: &nn::VarStore, d: i64) -> nn::Linear {
    nn::linear(vs.root() / "l", d, d, Default::default())
}

fn snapshot(vs: &nn::VarStore) -> Vec<f64> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars.iter().flat_map(|(_, t)| values(&t.detach())).collect()
}

#[test]
fn generator_step_freezes_the_critic_and_critic_step_moves_it() {
    let _g = lock();
    use tch::nn::Module;
    tch::manual_seed(0);
    let mgm = Mgm::new(&MgmConfig::linear(Variant::Mgm, 0.05)).unwrap();
    let gvs = nn::VarStore::new(tch::Device::Cpu);
    let cvs = nn::VarStore::new(tch::Device::Cpu);
    let gl = linear_net(&gvs, 2);
    let cl = linear_net(&cvs, 2);
    let mut generator = Network::new(move |z: &Tensor| gl.forward(z), gvs, 1e-2).unwrap();
    let mut critic = Network::new(move |x: &Tensor, _t: &Tensor| cl.forward(x), cvs, 1e-2).unwrap();
    let z = Tensor::randn([16, 2], (Kind::Float, tch::Device::Cpu));
    let x1 = Tensor::randn([16, 2], (Kind::Float, tch::Device::Cpu)) + 3.0;

    let (g_before, c_before) = (snapshot(&generator.vs), snapshot(&critic.vs));
    mgm.generator_step(&mut generator, &mut critic, &z, &x1, 0)
        .unwrap();
    assert_ne!(snapshot(&generator.vs), g_before, "the generator must move");
    assert_eq!(
        snapshot(&critic.vs),
        c_before,
        "the critic must stay frozen"
    );
    for v in critic.vs.trainable_variables() {
        assert!(!v.grad().defined(), "no gradient may reach the critic");
        assert!(v.requires_grad(), "the critic must be unfrozen afterwards");
    }

    let x0 = tch::no_grad(|| {
        midpoint_train::train::network::Generator::generate(&generator.net, &z, false)
    });
    let g_mid = snapshot(&generator.vs);
    mgm.field_step(&mut critic, &x0, &x1, 1).unwrap();
    assert_ne!(snapshot(&critic.vs), c_before, "the critic must move");
    assert_eq!(snapshot(&generator.vs), g_mid);
}

#[test]
fn non_finite_loss_is_an_error_and_updates_nothing() {
    let _g = lock();
    use tch::nn::Module;
    let mgm = Mgm::new(&MgmConfig::linear(Variant::Mgm, 0.0)).unwrap();
    let cvs = nn::VarStore::new(tch::Device::Cpu);
    let cl = linear_net(&cvs, 2);
    let mut critic = Network::new(move |x: &Tensor, _t: &Tensor| cl.forward(x), cvs, 1e-2).unwrap();
    let before = snapshot(&critic.vs);
    let x0 = Tensor::zeros([4, 2], (Kind::Float, tch::Device::Cpu));
    let x1 = Tensor::full([4, 2], f64::NAN, (Kind::Float, tch::Device::Cpu));
    let e = mgm.field_step(&mut critic, &x0, &x1, 7).unwrap_err();
    assert!(
        matches!(
            e,
            midpoint_train::TrainError::NonFiniteLoss {
                which: "critic",
                step: 7,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(snapshot(&critic.vs), before);
}

#[test]
fn adam_has_beta1_zero() {
    let _g = lock();
    // One scalar w, loss c_k·w with c_1 = 1, c_2 = −3, lr = 0.01. With β1 = 0 the second
    // update is −lr·c_2/(sqrt(v̂_2) + 1e-8), v̂_2 = (0.999·0.001·1 + 0.001·9)/(1 − 0.999²)
    // = 5.0020...: Δw_2 = +0.013413...; with β1 = 0.9 it would be 0.00494.
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let w = vs.root().var("w", &[1], nn::Init::Const(0.0));
    let mut opt = adam(&vs, 0.01).unwrap();
    opt.backward_step(&(&w * 1.0).sum(Kind::Float));
    let w1 = values(&w.detach())[0];
    opt.backward_step(&(&w * -3.0).sum(Kind::Float));
    let w2 = values(&w.detach())[0];
    let v2 = (0.999 * 0.001 * 1.0 + 0.001 * 9.0) / (1.0 - 0.999f64 * 0.999);
    let want = 0.01 * 3.0 / (v2.sqrt() + 1e-8);
    assert!((w1 + 0.01).abs() < 1e-6, "first step {w1}");
    assert!(
        (w2 - w1 - want).abs() < 1e-6,
        "second step {} vs {want}",
        w2 - w1
    );
    assert!(adam(&vs, 0.0).is_err() && adam(&vs, f64::NAN).is_err());
}

/// The saveable optimizer of image MGM ([`Network::with_saveable_adam`], the hand-written
/// Adam) takes the same two hand-computed β1 = 0 steps as `adam_has_beta1_zero`, and refuses
/// a bad learning rate.
#[test]
fn saveable_adam_has_beta1_zero() {
    let _g = lock();
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let w = vs.root().var("w", &[1], nn::Init::Const(0.0));
    let mut net = Network::with_saveable_adam((), vs, 0.01).unwrap();
    net.opt.backward_step(&(&w * 1.0).sum(Kind::Float)).unwrap();
    let w1 = values(&w.detach())[0];
    net.opt
        .backward_step(&(&w * -3.0).sum(Kind::Float))
        .unwrap();
    let w2 = values(&w.detach())[0];
    let v2 = (0.999 * 0.001 * 1.0 + 0.001 * 9.0) / (1.0 - 0.999f64 * 0.999);
    let want = 0.01 * 3.0 / (v2.sqrt() + 1e-8);
    assert!((w1 + 0.01).abs() < 1e-6, "first step {w1}");
    assert!(
        (w2 - w1 - want).abs() < 1e-6,
        "second step {} vs {want}",
        w2 - w1
    );
    assert_eq!(net.opt.saveable().unwrap().steps(), 2);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    assert!(Network::with_saveable_adam((), vs, f64::NAN).is_err());
}

/// `Network::update` reports the gradient's global norm before clipping and clips as
/// `torch.nn.utils.clip_grad_norm_`: for loss `3·w1 + 4·w2` the gradient is (3, 4), norm 5.
/// With SGD-like Adam on the first step the update is `−lr·sign(g)` whatever the scale, so the
/// clip is checked on the gradients themselves, and Adam's settings (β1, β2) are honoured.
#[test]
fn update_reports_the_gradient_norm_and_clips_it() {
    let _g = lock();
    use midpoint_train::train::network::AdamSettings;
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let w1 = vs.root().var("w1", &[1], nn::Init::Const(0.0));
    let w2 = vs.root().var("w2", &[1], nn::Init::Const(0.0));
    let mut net = Network::with_adam((), vs, AdamSettings::paper(0.01)).unwrap();
    let loss = || (&w1 * 3.0 + &w2 * 4.0).sum(Kind::Float);
    assert!((net.update(&loss(), None).unwrap() - 5.0).abs() < 1e-6);
    assert!((values(&w1.grad())[0] - 3.0).abs() < 1e-6);
    // Clipped to 1: the gradient becomes (0.6, 0.8) (up to the 1e-6 of PyTorch's rule).
    assert!((net.update(&loss(), Some(1.0)).unwrap() - 5.0).abs() < 1e-6);
    assert!((values(&w1.grad())[0] - 0.6).abs() < 1e-5);
    assert!((values(&w2.grad())[0] - 0.8).abs() < 1e-5);
    // A clip above the norm changes nothing.
    net.update(&loss(), Some(10.0)).unwrap();
    assert!((values(&w2.grad())[0] - 4.0).abs() < 1e-6);

    // β1 = 0.9: after gradients 1 then −3 the second step is
    // −lr·m̂/(sqrt(v̂) + ε) with m̂ = (0.9·0.1·1 + 0.1·(−3))/(1 − 0.81) = −1.1052...
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let w = vs.root().var("w", &[1], nn::Init::Const(0.0));
    let settings = AdamSettings {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
    };
    let mut net = Network::with_adam((), vs, settings).unwrap();
    net.update(&(&w * 1.0).sum(Kind::Float), None).unwrap();
    let a = values(&w.detach())[0];
    net.update(&(&w * -3.0).sum(Kind::Float), None).unwrap();
    let b = values(&w.detach())[0];
    let m = (0.9 * 0.1 * 1.0 + 0.1 * -3.0) / (1.0 - 0.81);
    let v = (0.999 * 0.001 * 1.0 + 0.001 * 9.0) / (1.0 - 0.999f64 * 0.999);
    assert!((b - a + 0.01 * m / v.sqrt()).abs() < 1e-6, "{}", b - a);
    for bad in [
        AdamSettings {
            beta1: 1.0,
            ..settings
        },
        AdamSettings {
            beta2: -0.1,
            ..settings
        },
        AdamSettings {
            lr: 0.0,
            ..settings
        },
    ] {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        assert!(Network::with_adam((), vs, bad).is_err());
    }
    assert!(Mgm::new(&MgmConfig::linear(Variant::Mgm, 0.0))
        .unwrap()
        .with_clip(Some(0.0))
        .is_err());
}

/// With `c` critic steps per iteration, iteration `k` reads data batches `(c + 1)k, ...,
/// (c + 1)k + c`, the field moves `c` times and the generator once; `c = 0` is refused.
#[test]
fn critic_steps_read_their_own_batches() {
    let _g = lock();
    use midpoint_train::methods::mgm::MgmTrainer;
    use midpoint_train::train::ema::Ema;
    use midpoint_train::train::method::Batches;
    use tch::nn::Module;
    struct Recorder(Vec<u64>);
    impl Batches for Recorder {
        fn batch(
            &mut self,
            index: u64,
            n: i64,
            device: tch::Device,
        ) -> Result<Tensor, midpoint_train::TrainError> {
            self.0.push(index);
            Ok(Tensor::randn([n, 2], (Kind::Float, device)) + 3.0)
        }
    }
    tch::manual_seed(0);
    let build = || {
        let gvs = nn::VarStore::new(tch::Device::Cpu);
        let cvs = nn::VarStore::new(tch::Device::Cpu);
        let gl = linear_net(&gvs, 2);
        let cl = linear_net(&cvs, 2);
        let g = Network::new(move |z: &Tensor| gl.forward(z), gvs, 1e-2).unwrap();
        let c = Network::new(move |x: &Tensor, _t: &Tensor| cl.forward(x), cvs, 1e-2).unwrap();
        let mgm = Mgm::new(&MgmConfig::linear(Variant::Mgm, 0.05)).unwrap();
        MgmTrainer::new(mgm, g, c)
    };
    assert!(build().with_critic_steps(0).is_err());
    let mut trainer = build().with_critic_steps(3).unwrap();
    let ema_vs = nn::VarStore::new(tch::Device::Cpu);
    let _ = linear_net(&ema_vs, 2);
    let mut ema = Ema::new(ema_vs, &trainer.generator.vs, 0.9).unwrap();
    let mut data = Recorder(Vec::new());
    for _ in 0..2 {
        let l = trainer.step_on(&mut data, &mut ema, 8, &[2], &[2]).unwrap();
        assert!(l.critic.is_finite() && l.critic_rel > 0.0 && l.grad_critic > 0.0);
        assert!(l.grad_generator > 0.0 && l.raw_std > 0.0);
    }
    assert_eq!(data.0, vec![0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(trainer.steps_done(), 2);
}
