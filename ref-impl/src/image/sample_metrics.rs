//! Three measures of generated images against held-out images of a small set (issue 15 §3),
//! each beside what the training images themselves score, so that "as good as data" has a
//! number:
//!
//! * **Fréchet distance** of the [`FeatureNet`] features (FID's formula, `fid::frechet_distance`,
//!   on a network trained on the training split). Its reference is the training set's own
//!   distance to the held-out set; generate as many images as there are training images to
//!   compare like with like (the distance is biased upward at small `n`).
//! * **`D_t-mid`** (Eq. 8, linear interpolant, σ = 0) of the core crate's cross-fitted estimator
//!   ([`midpoint::estimate`]: RFF critics, jackknife CI, exact sign-flip p-value) on the pixels,
//!   generated images as `X0`, held-out as `X1`; it pairs `min(n0, n1)` rows.
//! * **Nearest training image** (L2 in pixel space, values in `[−1, 1]`): the distance `d1` to
//!   the closest and `d2` to the second closest training image. A generator that memorizes moves
//!   `d1` below the held-out images' own `d1`; a sample with `d1/d2 < 1/3` is counted as a
//!   near-copy (the criterion of Yoon et al. 2023, "Diffusion probabilistic models generalize
//!   when they fail to memorize"), as are exact copies (`d1 = 0`).
//!
//! Generated images are first quantized to 8 bits, like images written to disk.

use super::feature_net::{FeatureNet, FEATURES};
use crate::data::ImageSet;
use crate::error::TrainError;
use crate::fid::{frechet_distance, FeatureAccumulator};
use midpoint::estimate::{estimate, DivergenceKind, EstimateError, EstimateOptions};
use tch::{Device, Kind, Tensor};

/// The core estimator's `D_t-mid` between generated and held-out images.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TmidSummary {
    /// Estimate.
    pub estimate: f64,
    /// Jackknife standard error.
    pub std_error: f64,
    /// 95% interval.
    pub ci95: [f64; 2],
    /// Sign-flip p-value of `p_generated = p_heldout`.
    pub p_value: Option<f64>,
    /// Pairs used.
    pub pairs: usize,
    /// The estimator's warnings that qualify this value (`midpoint::estimate::warnings`).
    pub warnings: Vec<String>,
}

/// Nearest-training-image distances of one image set.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Nearest {
    /// Median of `d1`.
    pub median: f64,
    /// Mean of `d1`.
    pub mean: f64,
    /// 5% quantile of `d1`.
    pub q05: f64,
    /// Fraction with `d1/d2 < 1/3`.
    pub near_copies: f64,
    /// Fraction with `d1 = 0` (an exact copy after 8-bit quantization).
    pub exact_copies: f64,
}

/// Everything [`measure`] reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageMetrics {
    /// Generated images.
    pub n_generated: usize,
    /// Held-out images.
    pub n_heldout: usize,
    /// Training images.
    pub n_train: usize,
    /// Fréchet distance (feature network) of the generated images to the held-out ones.
    pub frechet: f64,
    /// The same for the training images (the floor a generator cannot be expected to beat).
    pub frechet_train: f64,
    /// Core-estimator `D_t-mid(generated, held-out)` on pixels; `None` where the estimator
    /// refuses the pair (the generated set *is* largely the held-out set, so there is no
    /// second sample to compare with), with the reason in `tmid_refused`.
    pub tmid: Option<TmidSummary>,
    /// Why `tmid` is absent.
    pub tmid_refused: Option<String>,
    /// Nearest training image of each generated image.
    pub nearest_generated: Nearest,
    /// Nearest training image of each held-out image (the reference).
    pub nearest_heldout: Nearest,
}

/// 8-bit quantization of images in `[−1, 1]` (`round((v + 1)·127.5)/127.5 − 1`, clamped).
pub fn quantize(x: &Tensor) -> Tensor {
    (((x.to_kind(Kind::Float).clamp(-1.0, 1.0) + 1.0) * 127.5).round() / 127.5) - 1.0
}

fn stats(net: &FeatureNet, x: &Tensor) -> Result<crate::fid::Statistics, TrainError> {
    let f = net.features(x)?;
    let mut acc = FeatureAccumulator::new(FEATURES as usize, Device::Cpu);
    acc.push(&f.to_device(Device::Cpu))?;
    Ok(acc.finish()?)
}

fn rows(x: &Tensor) -> Result<ndarray::Array2<f64>, TrainError> {
    let n = x.size()[0];
    let flat = x
        .to_device(Device::Cpu)
        .to_kind(Kind::Double)
        .reshape([n, -1])
        .contiguous();
    let d = flat.size()[1] as usize;
    let v: Vec<f64> = Vec::<f64>::try_from(flat.flatten(0, -1))?;
    ndarray::Array2::from_shape_vec((n as usize, d), v)
        .map_err(|e| TrainError::InvalidOption(e.to_string()))
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Nearest and second-nearest distances of each row of `x` to the rows of `train`.
pub fn nearest(x: &Tensor, train: &Tensor) -> Result<Nearest, TrainError> {
    let (n, m) = (x.size()[0], train.size()[0]);
    if n == 0 || m < 2 {
        return Err(TrainError::InvalidOption(format!(
            "nearest-image distances need ≥ 1 image and ≥ 2 training images, got {n} and {m}"
        )));
    }
    let a = x.to_kind(Kind::Double).reshape([n, -1]);
    let b = train.to_kind(Kind::Double).reshape([m, -1]);
    let (d1, d2) = {
        // Exact differences (mode 2), not the matmul expansion, so that a copy is at distance 0.
        let d = Tensor::cdist(&a, &b, 2.0, 2);
        let (v, _) = d.topk(2, 1, false, true);
        (
            Vec::<f64>::try_from(v.select(1, 0))?,
            Vec::<f64>::try_from(v.select(1, 1))?,
        )
    };
    let k = n as f64;
    let near = d1.iter().zip(&d2).filter(|(a, b)| **a < **b / 3.0).count() as f64 / k;
    let exact = d1.iter().filter(|a| **a == 0.0).count() as f64 / k;
    let mut s = d1.clone();
    s.sort_by(f64::total_cmp);
    Ok(Nearest {
        median: quantile(&s, 0.5),
        mean: s.iter().sum::<f64>() / k,
        q05: quantile(&s, 0.05),
        near_copies: near,
        exact_copies: exact,
    })
}

/// Measures `generated` (`[N, C, H, W]` in `[−1, 1]`, any device) against `heldout`, with
/// `train` as the memorization reference; `seed` fixes the estimator's random choices.
pub fn measure(
    generated: &Tensor,
    train: &ImageSet,
    heldout: &ImageSet,
    net: &FeatureNet,
    seed: u64,
) -> Result<ImageMetrics, TrainError> {
    let (tr, ho) = (train.all(), heldout.all());
    let gen = quantize(&generated.to_device(Device::Cpu));
    if gen.size()[1..] != ho.size()[1..] || tr.size()[1..] != ho.size()[1..] {
        return Err(TrainError::InvalidOption(format!(
            "image shapes differ: generated {:?}, held-out {:?}, training {:?}",
            &gen.size()[1..],
            &ho.size()[1..],
            &tr.size()[1..]
        )));
    }
    let ho_stats = stats(net, &ho)?;
    let frechet = frechet_distance(&stats(net, &gen)?, &ho_stats)?;
    let frechet_train = frechet_distance(&stats(net, &tr)?, &ho_stats)?;
    let opts = EstimateOptions {
        divergence: DivergenceKind::TMid,
        seed,
        ..EstimateOptions::default()
    };
    // Held-out images handed back as "generated" are refused by the estimator (one sample
    // twice); the other measures still mean something then, so they are kept.
    let (tmid, tmid_refused) = match estimate(rows(&gen)?.view(), rows(&ho)?.view(), &opts) {
        Ok(r) => (
            Some(TmidSummary {
                estimate: r.estimate,
                std_error: r.std_error,
                ci95: r.ci95,
                p_value: r.p_value,
                pairs: r.pairs,
                warnings: r.warnings.iter().map(|w| w.message.clone()).collect(),
            }),
            None,
        ),
        Err(e @ EstimateError::SharedRows { .. }) => (None, Some(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    Ok(ImageMetrics {
        n_generated: gen.size()[0] as usize,
        n_heldout: heldout.len(),
        n_train: train.len(),
        frechet,
        frechet_train,
        tmid,
        tmid_refused,
        nearest_generated: nearest(&gen, &tr)?,
        nearest_heldout: nearest(&ho, &tr)?,
    })
}
