//! Feature statistics (FID step 5): `μ = mean(f)`, `Σ = (Σ f fᵀ − N μμᵀ)/(N − 1)`, in float64.
//!
//! Streaming, as NVlabs/EDM compute them: `Σ f` and `Σ f fᵀ` are accumulated batch by batch
//! in float64 on the features' device, so 50,000 images never need to be held at once.

use super::inception::Inception;
use super::preprocess::ImageBatch;
use super::FidError;
use crate::train::progress::Progress;
use ndarray::{Array1, Array2};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Mean and covariance of a set of feature vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Statistics {
    /// `μ`, `[d]`.
    pub mu: Array1<f64>,
    /// `Σ` with the `N − 1` denominator, `[d, d]`, symmetric.
    pub sigma: Array2<f64>,
    /// `N`, the number of images.
    pub count: u64,
}

impl Statistics {
    /// Feature dimension `d`.
    pub fn dim(&self) -> usize {
        self.mu.len()
    }

    /// Checks shapes, `N ≥ 2`, finite values and symmetry of `Σ` (exact: we store it
    /// symmetrized).
    pub fn validate(&self) -> Result<(), FidError> {
        let d = self.mu.len();
        if d == 0 || self.sigma.dim() != (d, d) {
            return Err(FidError::Statistics(format!(
                "mu has {d} entries but sigma is {:?}",
                self.sigma.dim()
            )));
        }
        if self.count < 2 {
            return Err(FidError::Statistics(format!(
                "{} image(s): a covariance needs at least 2",
                self.count
            )));
        }
        if !self
            .mu
            .iter()
            .chain(self.sigma.iter())
            .all(|v| v.is_finite())
        {
            return Err(FidError::Statistics(
                "mu or sigma contains NaN or infinite values".into(),
            ));
        }
        if self.sigma != self.sigma.t() {
            return Err(FidError::Statistics("sigma is not symmetric".into()));
        }
        Ok(())
    }
}

/// Running `N`, `Σ f` and `Σ f fᵀ` in float64 on one device.
#[derive(Debug)]
pub struct FeatureAccumulator {
    dim: usize,
    count: u64,
    sum: Tensor,
    sum_outer: Tensor,
}

impl FeatureAccumulator {
    /// Empty sums for `dim`-dimensional features on `device`.
    pub fn new(dim: usize, device: Device) -> Self {
        let d = dim as i64;
        FeatureAccumulator {
            dim,
            count: 0,
            sum: Tensor::zeros([d], (Kind::Double, device)),
            sum_outer: Tensor::zeros([d, d], (Kind::Double, device)),
        }
    }

    /// Images added so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds a `[n, dim]` batch of features (any float kind, any device); refuses NaN/∞.
    pub fn push(&mut self, features: &Tensor) -> Result<(), FidError> {
        let size = features.size();
        if size.len() != 2 || size[1] != self.dim as i64 {
            return Err(FidError::Batch(format!(
                "features must be [n, {}], got {size:?}",
                self.dim
            )));
        }
        let f = features
            .f_to_device(self.sum.device())?
            .f_to_kind(Kind::Double)?;
        if f.f_isfinite()?.f_all()?.int64_value(&[]) == 0 {
            return Err(FidError::Batch(
                "features contain NaN or infinite values".into(),
            ));
        }
        self.sum += f.f_sum_dim_intlist(0, false, Kind::Double)?;
        self.sum_outer += f.f_tr()?.f_mm(&f)?;
        self.count += size[0] as u64;
        Ok(())
    }

    /// Sums the accumulators of every rank of `group` into each (the features of a data-parallel
    /// FID, each rank having pushed its share of the images).
    pub fn all_reduce(&mut self, group: &crate::dist::ProcessGroup) -> Result<(), FidError> {
        use crate::dist::ReduceOp;
        let fail = |e: crate::dist::DistError| FidError::Statistics(e.to_string());
        group.all_reduce(&self.sum, ReduceOp::Sum).map_err(fail)?;
        group
            .all_reduce(&self.sum_outer, ReduceOp::Sum)
            .map_err(fail)?;
        let count = Tensor::from_slice(&[self.count as f64]).to_device(self.sum.device());
        group.all_reduce(&count, ReduceOp::Sum).map_err(fail)?;
        self.count = count.double_value(&[0]).round() as u64;
        Ok(())
    }

    /// `μ` and `Σ = (Σ f fᵀ − N μμᵀ)/(N − 1)`, symmetrized (the sum of outer products is
    /// symmetric up to the rounding of the matrix product).
    pub fn finish(&self) -> Result<Statistics, FidError> {
        if self.count < 2 {
            return Err(FidError::Statistics(format!(
                "{} image(s): a covariance needs at least 2",
                self.count
            )));
        }
        let d = self.dim;
        let n = self.count as f64;
        let sum = to_vec(&self.sum)?;
        let outer = to_vec(&self.sum_outer)?;
        let mu = Array1::from_iter(sum.iter().map(|s| s / n));
        let mut sigma = Array2::<f64>::zeros((d, d));
        for i in 0..d {
            for j in 0..=i {
                let sym = 0.5 * (outer[i * d + j] + outer[j * d + i]);
                let v = (sym - n * mu[i] * mu[j]) / (n - 1.0);
                sigma[(i, j)] = v;
                sigma[(j, i)] = v;
            }
        }
        let stats = Statistics {
            mu,
            sigma,
            count: self.count,
        };
        stats.validate()?;
        Ok(stats)
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f64>, FidError> {
    let flat = t.f_to_device(Device::Cpu)?.f_contiguous()?.f_view([-1])?;
    Ok(Vec::<f64>::try_from(&flat)?)
}

/// Statistics of every image a source yields: features of each batch by `inception`, summed
/// in float64 ([`FeatureAccumulator`]). The source is anything that yields batches (a PNG
/// folder, a generator drawing samples, a dataset); its own error type `E` passes through,
/// ours converts into it. `progress` advances once per batch.
pub fn statistics_from_batches<E, I>(
    inception: &Inception,
    batches: I,
    progress: &Progress,
) -> Result<Statistics, E>
where
    I: IntoIterator<Item = Result<ImageBatch, E>>,
    E: From<FidError>,
{
    Ok(statistics_from_batches_timed(inception, batches, progress)?.0)
}

/// Where the time of [`statistics_from_batches_timed`] went, in seconds of wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StreamTiming {
    /// Making the batches (reading files, or generating samples), the device synchronised
    /// after each so that its queued kernels count here and not in the features.
    pub source_seconds: f64,
    /// Resize, Inception and the float64 sums of every batch.
    pub feature_seconds: f64,
    /// `μ` and `Σ` from the sums (copied to the host, formed in float64).
    pub statistics_seconds: f64,
}

/// [`statistics_from_batches`] with the time of each phase. The device of `inception` is
/// synchronised after each batch is made ([`FeatureAccumulator::push`] reads a finiteness
/// flag back, which synchronises after the features): one wait per batch, which costs little
/// at FID batch sizes and keeps the phases apart.
pub fn statistics_from_batches_timed<E, I>(
    inception: &Inception,
    batches: I,
    progress: &Progress,
) -> Result<(Statistics, StreamTiming), E>
where
    I: IntoIterator<Item = Result<ImageBatch, E>>,
    E: From<FidError>,
{
    let device = inception.device();
    let mut acc = FeatureAccumulator::new(super::FEATURE_DIM, device);
    let mut timing = StreamTiming::default();
    let mut source = batches.into_iter();
    loop {
        let start = Instant::now();
        let Some(batch) = source.next() else { break };
        let batch = batch?;
        crate::device::synchronize(device);
        let made = Instant::now();
        timing.source_seconds += (made - start).as_secs_f64();
        let f = inception.features(&batch)?;
        acc.push(&f)?;
        timing.feature_seconds += made.elapsed().as_secs_f64();
        progress.inc();
    }
    progress.finish();
    let start = Instant::now();
    let stats = acc.finish()?;
    timing.statistics_seconds = start.elapsed().as_secs_f64();
    Ok((stats, timing))
}
