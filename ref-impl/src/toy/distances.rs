//! Two more distances between generated samples and the target, for the flow-map comparison
//! (issue 17; the papers name KL and W2 but not their estimators, flow-maps.md §1.9):
//!
//! * [`sliced_w2`]: the sliced squared Wasserstein-2 distance, `E_θ W2²(θᵀX, θᵀY)` over
//!   directions uniform on the sphere, each 1-D distance exact from sorted projections (equal
//!   sample sizes).
//! * [`histogram_kl`]: `KL(target ‖ model)` between 2-D histograms (the direction [FMM] writes,
//!   `KL(ρ1‖ρ̂1)`), plug-in with half a count added to every bin of both (the Jeffreys prior),
//!   so that an empty model bin under target mass costs a finite, large amount.
//!
//! Both are biased upward at finite `n`; report them beside the same number for an independent
//! target sample of the same size (the floor a perfect generator reaches).

use crate::error::TrainError;
use ndarray::ArrayView2;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

fn check(x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>, what: &str) -> Result<(), TrainError> {
    if x.ncols() != y.ncols() || x.nrows() < 2 || y.nrows() < 2 {
        return Err(TrainError::InvalidOption(format!(
            "{what}: samples of {}×{} and {}×{} (need ≥ 2 rows each, equal dimensions)",
            x.nrows(),
            x.ncols(),
            y.nrows(),
            y.ncols()
        )));
    }
    Ok(())
}

/// Sliced `W2²` between the rows of `x` and `y` (same number of rows) over `directions` random
/// directions drawn from `seed`. The directions are drawn up front and each one's value is
/// computed independently, so the result does not depend on the thread count.
pub fn sliced_w2(
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    directions: usize,
    seed: u64,
) -> Result<f64, TrainError> {
    check(x, y, "sliced W2")?;
    if x.nrows() != y.nrows() || directions == 0 {
        return Err(TrainError::InvalidOption(format!(
            "sliced W2 needs equal sample sizes and ≥ 1 direction, got {}, {} and {directions}",
            x.nrows(),
            y.nrows()
        )));
    }
    let d = x.ncols();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let dirs: Vec<Vec<f64>> = (0..directions)
        .map(|_| {
            let g: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
            let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
            g.iter().map(|v| v / norm).collect()
        })
        .collect();
    let sorted = |a: ArrayView2<'_, f64>, th: &[f64]| -> Vec<f64> {
        let mut p: Vec<f64> = a
            .rows()
            .into_iter()
            .map(|r| r.iter().zip(th).map(|(u, v)| u * v).sum())
            .collect();
        p.sort_by(f64::total_cmp);
        p
    };
    let per: Vec<f64> = dirs
        .par_iter()
        .map(|th| {
            let (a, b) = (sorted(x, th), sorted(y, th));
            a.iter()
                .zip(&b)
                .map(|(u, v)| (u - v) * (u - v))
                .sum::<f64>()
                / a.len() as f64
        })
        .collect();
    Ok(per.iter().sum::<f64>() / directions as f64)
}

/// `KL(p ‖ q)` between the 2-D histograms of `target` (p) and `model` (q) on `bins × bins`
/// equal cells over `[lo, hi]²` (points outside count in the edge cells), with half a count
/// added to every cell of both.
pub fn histogram_kl(
    target: ArrayView2<'_, f64>,
    model: ArrayView2<'_, f64>,
    bins: usize,
    lo: f64,
    hi: f64,
) -> Result<f64, TrainError> {
    check(target, model, "histogram KL")?;
    if target.ncols() != 2 || bins == 0 || hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater)
    {
        return Err(TrainError::InvalidOption(format!(
            "histogram KL is for 2-D samples on a non-empty range with ≥ 1 bin (got d = {}, {bins} bins, [{lo}, {hi}])",
            target.ncols()
        )));
    }
    let cell =
        |v: f64| (((v - lo) / (hi - lo) * bins as f64).floor().max(0.0) as usize).min(bins - 1);
    let counts = |a: ArrayView2<'_, f64>| {
        let mut c = vec![0.0f64; bins * bins];
        for r in a.rows() {
            c[cell(r[0]) * bins + cell(r[1])] += 1.0;
        }
        let total = a.nrows() as f64 + 0.5 * (bins * bins) as f64;
        c.iter().map(|k| (k + 0.5) / total).collect::<Vec<f64>>()
    };
    let (p, q) = (counts(target), counts(model));
    Ok(p.iter().zip(&q).map(|(a, b)| a * (a / b).ln()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand_distr::Normal;

    fn gaussian(n: usize, seed: u64) -> Array2<f64> {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let g = Normal::new(0.0, 1.0).unwrap();
        Array2::from_shape_fn((n, 2), |_| g.sample(&mut rng))
    }

    #[test]
    fn sliced_w2_of_a_shift_is_its_squared_length_over_the_dimension() {
        // y = x + a: every 1-D distance is exactly (θᵀa)², whose mean over the circle is |a|²/2,
        // with variance |a|⁴/8 per direction. 512 directions: SE = |a|²/√4096 = |a|²/64;
        // tolerance 6 SE (false failure ~2e-9).
        let x = gaussian(500, 1);
        let a = [1.5, -2.0];
        let y = Array2::from_shape_fn((500, 2), |(i, j)| x[[i, j]] + a[j]);
        let len2 = a[0] * a[0] + a[1] * a[1];
        let v = sliced_w2(x.view(), y.view(), 512, 7).unwrap();
        assert!(
            (v - len2 / 2.0).abs() < 6.0 * len2 / 64.0,
            "{v} vs {}",
            len2 / 2.0
        );
        assert_eq!(sliced_w2(x.view(), x.view(), 16, 7).unwrap(), 0.0);
        assert!(sliced_w2(x.view(), gaussian(400, 2).view(), 4, 0).is_err());
        // The same directions whatever the thread count: pinned to one thread, the same value.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let one = pool.install(|| sliced_w2(x.view(), y.view(), 512, 7).unwrap());
        assert_eq!(one, v);
    }

    #[test]
    fn histogram_kl_is_zero_for_equal_histograms_and_matches_a_hand_count() {
        let x = gaussian(1000, 3);
        assert_eq!(
            histogram_kl(x.view(), x.view(), 10, -3.0, 3.0).unwrap(),
            0.0
        );
        // One bin per axis split at 0 (2 × 2 cells): p = 2 points in cell (0,0), q = 2 points in
        // cell (1,1). With half counts: p = (2.5, .5, .5, .5)/4, q = (.5, .5, .5, 2.5)/4.
        let p = ndarray::array![[-1.0, -1.0], [-0.5, -0.5]];
        let q = ndarray::array![[1.0, 1.0], [0.5, 0.5]];
        let want = 2.5 / 4.0 * (2.5f64 / 0.5).ln() + 0.5 / 4.0 * (0.5f64 / 2.5).ln();
        let got = histogram_kl(p.view(), q.view(), 2, -2.0, 2.0).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert!(histogram_kl(x.view(), x.view(), 10, 1.0, 1.0).is_err());
    }
}
