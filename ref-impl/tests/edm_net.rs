//! EDM `ddpm++` network: the exact parameter counts of EDM's CIFAR-10 network, the
//! initialisation of the notes, the interleaved `qkv` split, the preconditioning coefficients
//! at σ = 2.5, the folded log-normal noise law, output shapes and the MGM adapters.

use midpoint_train::nets::edm::attention::{attention_weights, split_qkv};
use midpoint_train::nets::edm::config::Resample;
use midpoint_train::nets::edm::layers::{init_bound, GroupNorm, InitScale};
use midpoint_train::nets::edm::loss::loss_weight;
use midpoint_train::nets::edm::{
    denoising_loss, Coefficients, DenoiserField, EdmPrecond, NoiseLaw, OneStepGenerator, UNetConfig,
};
use midpoint_train::train::network::{Field, Generator};
use statrs::distribution::{ContinuousCDF, Normal};
use tch::{nn, Device, Kind, Tensor};

fn build(config: &UNetConfig) -> (nn::VarStore, EdmPrecond) {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = EdmPrecond::new(&vs.root(), config).unwrap();
    (vs, net)
}

fn numel(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// Largest |w| of a variable.
fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

/// The numbers EDM's own code gives for its CIFAR-10 `ddpm++` network (notes/edm-ddpmpp.md),
/// counted from the configuration and from the variables of the built network. The built
/// network's initialisation is checked on the same instance: every "zero-init" weight within
/// 1e-5 of its Xavier bound (and not exactly zero), `qkv` within sqrt(0.2) of it, others
/// filling their Xavier range, biases 0, GroupNorm scales 1.
#[test]
fn cifar10_ddpmpp_has_edm_parameter_count_and_initialisation() {
    for (config, expected) in [
        (UNetConfig::ddpmpp(), 55_733_891i64),
        (UNetConfig::ddpmpp_noaug(), 55_732_739),
    ] {
        assert_eq!(config.param_count(), expected, "{}", config.name);
        if config.augment_dim == 0 {
            continue; // building once is enough for the initialisation checks
        }
        let (vs, _net) = build(&config);
        assert_eq!(numel(&vs), expected, "{} built", config.name);
        let vars = vs.variables();
        let mut zero_init = 0;
        for (name, t) in &vars {
            let m = max_abs(t);
            let size = t.size();
            if name.ends_with(".bias") && !name.contains("norm") {
                assert_eq!(m, 0.0, "{name}: biases start at 0");
                continue;
            }
            if name.contains("norm") {
                let want = if name.ends_with(".weight") { 1.0 } else { 0.0 };
                assert!(t.eq(want).all().int64_value(&[]) == 1, "{name}");
                continue;
            }
            let (fan_in, fan_out) = match size.len() {
                4 => (size[1] * size[2] * size[3], size[0] * size[2] * size[3]),
                _ => (size[1], size[0]),
            };
            let scale = if name.ends_with("conv1.weight")
                || name.ends_with("proj.weight")
                || name.ends_with("aux_conv.weight")
            {
                zero_init += 1;
                InitScale::Zero
            } else if name.ends_with("qkv.weight") {
                InitScale::Attention
            } else {
                InitScale::Xavier
            };
            let bound = init_bound(fan_in, fan_out, scale);
            // Every tensor has ≥ 1152 entries: the largest of ≥ 1152 uniforms on (−b, b) is
            // below 0.95·b with probability 0.95^1152 < 1e-25.
            // (1 + 1e-6): the bound is rounded to f32 before drawing.
            let ok = m <= bound * (1.0 + 1e-6) && m > 0.95 * bound;
            assert!(ok, "{name}: max {m} vs bound {bound}");
        }
        // conv1 of 33 blocks, proj of 6 attention blocks, the output conv.
        assert_eq!(zero_init, 33 + 6 + 1);
        // GroupNorm: min(32, C/4) groups, so 32 in this network (every C ≥ 128).
        let scratch = nn::VarStore::new(Device::Cpu);
        for (c, g) in [(128, 32), (256, 32), (384, 32), (512, 32), (16, 4), (32, 8)] {
            assert_eq!(GroupNorm::new(scratch.root() / "gn", c, 1e-6).groups(), g);
        }
        assert!(vars.contains_key("dec.32x32_block4.conv1.weight"));
        assert!(vars.contains_key("dec.16x16_block4.qkv.weight"));
        assert!(vars.contains_key("map_augment.weight"));
    }
}

/// The layout of the notes: 32×32 decoder's last block takes 256 + 128 = 384 channels, the
/// first 8×8 decoder block has attention, attention at 16×16 in the encoder (4 blocks) and in
/// the decoder's last 16×16 block.
#[test]
fn ddpmpp_layout_matches_notes() {
    let layout = UNetConfig::ddpmpp().layout();
    assert_eq!(layout.encoder.len(), 4 + 5 + 5);
    assert_eq!(layout.decoder.len(), 7 + 6 + 6);
    let last = layout.decoder.last().unwrap();
    assert_eq!((last.in_channels, last.out_channels), (384, 256));
    assert_eq!(layout.encoder[0].in_channels, 128);
    let attn: Vec<&str> = layout
        .encoder
        .iter()
        .chain(&layout.decoder)
        .filter(|b| b.attention)
        .map(|b| b.name.as_str())
        .collect();
    assert_eq!(
        attn,
        [
            "enc.16x16_block0",
            "enc.16x16_block1",
            "enc.16x16_block2",
            "enc.16x16_block3",
            "dec.8x8_in0",
            "dec.16x16_block4"
        ]
    );
    let resampling: Vec<(&str, Resample)> = layout
        .encoder
        .iter()
        .chain(&layout.decoder)
        .filter(|b| b.resample != Resample::None)
        .map(|b| (b.name.as_str(), b.resample))
        .collect();
    assert_eq!(
        resampling,
        [
            ("enc.16x16_down", Resample::Down),
            ("enc.8x8_down", Resample::Down),
            ("dec.16x16_up", Resample::Up),
            ("dec.32x32_up", Resample::Up)
        ]
    );
    // Notes: about 21.2 GMAC = 42.4 GFLOP per image (3 significant digits).
    let gflop = UNetConfig::ddpmpp().forward_flops() / 1e9;
    assert!((gflop - 42.4).abs() < 0.1, "{gflop} GFLOP");
}

/// `qkv` channel `3c + j` goes to q (j = 0), k (j = 1), v (j = 2): a tensor whose channel `i`
/// holds the value `i` at every position splits into q = 0, 3, 6, ..., k = 1, 4, 7, ...
#[test]
fn qkv_channels_are_interleaved() {
    let c = 4;
    let qkv = Tensor::arange(3 * c, (Kind::Float, Device::Cpu))
        .reshape([1, 3 * c, 1, 1])
        .expand([2, 3 * c, 2, 3], false)
        .contiguous();
    let (q, k, v) = split_qkv(&qkv);
    assert_eq!(q.size(), [2, c, 6]);
    for (part, j) in [(&q, 0.0), (&k, 1.0), (&v, 2.0)] {
        for ch in 0..c {
            let want = 3.0 * ch as f64 + j;
            let got = part.select(1, ch);
            assert!(
                got.eq(want).all().int64_value(&[]) == 1,
                "channel {ch}, part {j}"
            );
        }
    }
}

/// Softmax over keys of `q·k/sqrt(C)`, by hand for C = 2, two positions.
#[test]
fn attention_weights_by_hand() {
    // q[:, :, 0] = (1, 0), q[:, :, 1] = (0, 2); k[:, :, 0] = (1, 1), k[:, :, 1] = (2, 0)
    let q = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 2.0]).reshape([1, 2, 2]);
    let k = Tensor::from_slice(&[1.0f32, 2.0, 1.0, 0.0]).reshape([1, 2, 2]);
    let w = attention_weights(&q, &k);
    let s = 2f64.sqrt();
    // logits row 0: (1·1 + 0·1, 1·2 + 0·0)/√2 = (1, 2)/√2; row 1: (0 + 2, 0)/√2 = (2, 0)/√2
    let softmax = |a: f64, b: f64| {
        let (ea, eb) = ((a / s).exp(), (b / s).exp());
        (ea / (ea + eb), eb / (ea + eb))
    };
    let (w00, w01) = softmax(1.0, 2.0);
    let (w10, w11) = softmax(2.0, 0.0);
    let got = Vec::<f32>::try_from(w.flatten(0, -1)).unwrap();
    for (g, want) in got.iter().zip([w00, w01, w10, w11]) {
        assert!((*g as f64 - want).abs() < 1e-6, "{g} vs {want}");
    }
}

/// Notes: at σ = 2.5, c_skip 0.03846, c_out 0.49029, c_in 0.39223, c_noise 0.22907 (5 places).
#[test]
fn preconditioning_coefficients_at_2_5() {
    let c = Coefficients::at(2.5, 0.5);
    for (got, want) in [
        (c.c_skip, 0.03846),
        (c.c_out, 0.49029),
        (c.c_in, 0.39223),
        (c.c_noise, 0.22907),
    ] {
        assert!((got - want).abs() <= 5e-6, "{got} vs {want}");
    }
    // λ(σ) = 1/c_out²
    assert!((loss_weight(2.5, 0.5) - 1.0 / (c.c_out * c.c_out)).abs() < 1e-12);
}

/// `D(x; σ) = c_skip·x + c_out·F(c_in·x, c_noise)` on the tiny network (eval mode), with the
/// coefficients computed in double precision independently of the tensor code.
#[test]
fn denoiser_applies_the_coefficients_and_keeps_shapes() {
    tch::manual_seed(1);
    let (vs, net) = build(&UNetConfig::tiny());
    // Give the zero-initialised layers weight so that F is not ≈ 0.
    tch::no_grad(|| {
        for (_, mut t) in vs.variables() {
            let r = t.randn_like() * 0.05;
            t.copy_(&(&t + r));
        }
    });
    let x = Tensor::randn([3, 3, 32, 32], (Kind::Float, Device::Cpu));
    let sigmas = [0.1, 1.0, 2.5];
    let sigma = Tensor::from_slice(&sigmas.map(|s| s as f32));
    let d = net.denoise(&x, &sigma, None, false);
    assert_eq!(d.size(), [3, 3, 32, 32]);
    for (i, &s) in sigmas.iter().enumerate() {
        let c = Coefficients::at(s, 0.5);
        let xi = x.narrow(0, i as i64, 1);
        let noise = Tensor::from_slice(&[c.c_noise as f32]);
        let f = net.unet.forward(&(&xi * c.c_in), &noise, None, false);
        let want = &xi * c.c_skip + f * c.c_out;
        let err = max_abs(&(d.narrow(0, i as i64, 1) - want));
        assert!(err < 1e-5, "σ = {s}: {err}");
    }
    // Augmentation labels change the output; dropout (train) makes two calls differ; eval
    // mode is deterministic.
    let aug = Tensor::ones([3, 9], (Kind::Float, Device::Cpu));
    assert!(max_abs(&(net.denoise(&x, &sigma, Some(&aug), false) - &d)) > 1e-6);
    assert_eq!(max_abs(&(net.denoise(&x, &sigma, None, false) - &d)), 0.0);
    let t1 = net.denoise(&x, &sigma, None, true);
    let t2 = net.denoise(&x, &sigma, None, true);
    assert!(max_abs(&(t1 - t2)) > 1e-6);
}

/// `G(z) = D(2.5·z; 2.5)` and `f(x, t) = D(x; max(t, σ_min))` through the MGM traits.
#[test]
fn mgm_adapters() {
    tch::manual_seed(2);
    let config = UNetConfig::tiny();
    let vs = nn::VarStore::new(Device::Cpu);
    let gen = OneStepGenerator::new(EdmPrecond::new(&vs.root(), &config).unwrap());
    let z = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let g = gen.generate(&z, false);
    let want = gen.net.denoise_at(&(&z * 2.5), 2.5, false);
    assert_eq!(max_abs(&(&g - want)), 0.0);
    assert_eq!(g.size(), [2, 3, 32, 32]);
    let field = DenoiserField::new(EdmPrecond::new(&vs.root().sub("f"), &config).unwrap());
    let t = Tensor::from_slice(&[0.0f32, 0.3]);
    let f = field.field(&z, &t, false);
    assert!(
        f.isfinite().all().int64_value(&[]) == 1,
        "t = 0 is floored at σ_min"
    );
    let want = field
        .net
        .denoise(&z, &Tensor::from_slice(&[0.002f32, 0.3]), None, false);
    assert_eq!(max_abs(&(f - want)), 0.0);
}

/// The folded log-normal: values above ln τ_max are reflected; no sample exceeds τ_max; the
/// empirical CDF of 20,000 draws is within the Kolmogorov–Smirnov bound of the folded CDF
/// `F(σ) = Φ((s − μ)/ς) + 1 − Φ((2 ln τ_max − s − μ)/ς)`, `s = ln σ ≤ ln τ_max`. The bound
/// `c/√n` with `c = sqrt(ln(2/α)/2)` for α = 1e-6 fails a correct sampler with probability
/// ≤ 1e-6 (asymptotic Kolmogorov tail `2e^{−2c²}`).
#[test]
fn folded_log_normal_never_exceeds_tau_max_and_matches_its_law() {
    let law = NoiseLaw::folded(2.5).unwrap();
    let l = 2.5f64.ln();
    let s = Tensor::from_slice(&[l - 0.7, l, l + 0.3, l + 4.0]).to_kind(Kind::Double);
    let folded = Vec::<f64>::try_from(law.fold(&s)).unwrap();
    for (got, want) in folded.iter().zip([l - 0.7, l, l - 0.3, l - 4.0]) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    assert!(NoiseLaw::folded(0.0).is_err() && NoiseLaw::folded(f64::NAN).is_err());

    tch::manual_seed(3);
    let n = 20_000usize;
    let mut sig = Vec::<f32>::try_from(law.sample(n as i64, Device::Cpu)).unwrap();
    assert!(sig.iter().all(|&v| v > 0.0 && v <= 2.5), "σ ≤ τ_max");
    sig.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let normal = Normal::new(-1.2, 1.2).unwrap();
    let cdf = |sigma: f64| {
        let s = sigma.ln();
        normal.cdf(s) + 1.0 - normal.cdf(2.0 * l - s)
    };
    let mut d = 0.0f64;
    for (i, &v) in sig.iter().enumerate() {
        let f = cdf(v as f64);
        d = d
            .max((f - i as f64 / n as f64).abs())
            .max(((i + 1) as f64 / n as f64 - f).abs());
    }
    let c = ((2.0f64 / 1e-6).ln() / 2.0).sqrt();
    assert!(d < c / (n as f64).sqrt(), "KS distance {d}");
    // A clamp at τ_max instead of the fold would put an atom of P(n' > ln 2.5) = 0.039 at
    // 2.5, far above the KS bound 0.019: the check tells folding from clamping.
}

/// The loss equals `mean_n λ(σ_n)‖D(y_n + σ_n ε_n; σ_n) − y_n‖²` computed image by image.
#[test]
fn denoising_loss_by_image() {
    tch::manual_seed(4);
    let (_vs, net) = build(&UNetConfig::tiny());
    let y = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let eps = y.randn_like();
    let sigmas = [0.3f32, 2.0];
    let sigma = Tensor::from_slice(&sigmas);
    let loss = denoising_loss(&net, &y, &sigma, &eps, false).double_value(&[]);
    let mut want = 0.0;
    for (i, &s) in sigmas.iter().enumerate() {
        let yi = y.narrow(0, i as i64, 1);
        let ei = eps.narrow(0, i as i64, 1);
        let d = net.denoise_at(&(&yi + &ei * s as f64), s as f64, false);
        want += loss_weight(s as f64, 0.5) * (d - yi).square().sum(Kind::Double).double_value(&[]);
    }
    want /= 2.0;
    assert!((loss - want).abs() < 1e-4 * want, "{loss} vs {want}");
}
