//! Endpoint laws `p0`, `p1`: Gaussian `N(m, S)` in any dimension and discrete laws on finitely
//! many points. Both validate at construction and sample without allocating per draw.

use crate::grouping::{group_rows, DEFAULT_ATOM_TOL};
use crate::linalg::{self, Square};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use ndarray_rand::RandomExt;
use rand::Rng;
use rand_distr::weighted::WeightedAliasIndex;
use rand_distr::{Distribution, StandardNormal};

/// Why an endpoint law was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LawError {
    /// Zero-dimensional law.
    #[error("a law needs dimension ≥ 1")]
    ZeroDimension,
    /// A NaN or ±∞ entry.
    #[error("{what} has a non-finite entry at index {index}")]
    NonFinite {
        /// Which array.
        what: &'static str,
        /// Flat index of the entry.
        index: usize,
    },
    /// Covariance shape does not match the mean.
    #[error("covariance is {rows}×{cols} but the mean has dimension {dim}")]
    CovarianceShape {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Mean length.
        dim: usize,
    },
    /// Covariance is not symmetric.
    #[error("covariance is not symmetric: S[{i}][{j}] = {sij} but S[{j}][{i}] = {sji}")]
    NotSymmetric {
        /// Row.
        i: usize,
        /// Column.
        j: usize,
        /// `S[i][j]`.
        sij: f64,
        /// `S[j][i]`.
        sji: f64,
    },
    /// Covariance is not positive definite.
    #[error("covariance is not positive definite (Cholesky failed or a pivot is ≤ 1e-13 of the largest diagonal entry)")]
    NotPositiveDefinite,
    /// A discrete law without points.
    #[error("a discrete law needs at least one support point")]
    NoPoints,
    /// Points of different lengths.
    #[error("support point {row} has {len} coordinates, expected {dim}")]
    RaggedPoints {
        /// Index of the offending point.
        row: usize,
        /// Its length.
        len: usize,
        /// Length of the first point.
        dim: usize,
    },
    /// Weights and points disagree in number.
    #[error("{weights} weights for {points} support points")]
    WeightCount {
        /// Number of weights.
        weights: usize,
        /// Number of points.
        points: usize,
    },
    /// A negative weight.
    #[error("weight {index} is negative: {value}")]
    NegativeWeight {
        /// Index.
        index: usize,
        /// Value.
        value: f64,
    },
    /// Weights do not sum to one.
    #[error("weights sum to {sum}, not 1 (tolerance 1e-9)")]
    WeightSum {
        /// The sum.
        sum: f64,
    },
    /// Sample count of zero where samples are required.
    #[error("asked for {0} samples")]
    NoSamples(usize),
}

/// Multivariate normal `N(m, S)` with `S` symmetric positive definite.
#[derive(Debug, Clone)]
pub struct Gaussian {
    mean: Array1<f64>,
    cov: Array2<f64>,
    /// Lower Cholesky factor of `cov`, row-major.
    chol: Vec<f64>,
    /// Whether every off-diagonal entry of `cov` is zero: the exact routes then keep only
    /// diagonals (`O(d)` per time node instead of `O(d³)`).
    diagonal: bool,
}

impl Gaussian {
    /// Validates and builds `N(mean, cov)`. The covariance must be finite, symmetric to
    /// `1e-12·max|S|`, and positive definite (its Cholesky factor must exist with every pivot
    /// above `1e-13 × max diagonal`, i.e. condition number below roughly 1e13).
    ///
    /// ```
    /// use midpoint::law::Gaussian;
    /// use ndarray::array;
    /// let g = Gaussian::new(array![0.0, 1.0], array![[2.0, 0.5], [0.5, 1.0]]).unwrap();
    /// assert_eq!(g.dim(), 2);
    /// assert!(Gaussian::new(array![0.0], array![[-1.0]]).is_err());
    /// assert!(Gaussian::new(array![0.0, 0.0], array![[1.0, 0.5], [0.4, 1.0]]).is_err());
    /// ```
    pub fn new(mean: Array1<f64>, cov: Array2<f64>) -> Result<Self, LawError> {
        let d = mean.len();
        if d == 0 {
            return Err(LawError::ZeroDimension);
        }
        check_finite("mean", mean.iter())?;
        if cov.nrows() != d || cov.ncols() != d {
            return Err(LawError::CovarianceShape {
                rows: cov.nrows(),
                cols: cov.ncols(),
                dim: d,
            });
        }
        check_finite("covariance", cov.iter())?;
        let max_abs = cov.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for i in 0..d {
            for j in 0..i {
                let (a, b) = (cov[[i, j]], cov[[j, i]]);
                if (a - b).abs() > 1e-12 * max_abs {
                    return Err(LawError::NotSymmetric {
                        i,
                        j,
                        sij: a,
                        sji: b,
                    });
                }
            }
        }
        // Symmetrize exactly so that downstream algebra sees a symmetric matrix.
        let cov = (&cov + &cov.t()) * 0.5;
        let diagonal = cov.indexed_iter().all(|((i, j), v)| i == j || *v == 0.0);
        let chol = if diagonal {
            // The factor of a diagonal matrix is its square root: no O(d³) factorization.
            let mut l = vec![0.0; d * d];
            for i in 0..d {
                l[i * d + i] = cov[[i, i]].sqrt();
            }
            l.iter()
                .all(|x| x.is_finite())
                .then_some(l)
                .ok_or(LawError::NotPositiveDefinite)?
        } else {
            let flat: Vec<f64> = cov.iter().copied().collect();
            linalg::cholesky(&flat, d).ok_or(LawError::NotPositiveDefinite)?
        };
        let max_diag = (0..d).map(|i| cov[[i, i]]).fold(0.0f64, f64::max);
        let min_pivot = (0..d)
            .map(|i| chol[i * d + i].powi(2))
            .fold(f64::MAX, f64::min);
        if min_pivot.is_nan() || min_pivot <= 1e-13 * max_diag {
            return Err(LawError::NotPositiveDefinite);
        }
        Ok(Gaussian {
            mean,
            cov,
            chol,
            diagonal,
        })
    }

    /// `N(mean, var·I)`.
    ///
    /// ```
    /// use midpoint::law::Gaussian;
    /// let g = Gaussian::isotropic(ndarray::array![1.0, 2.0], 0.5).unwrap();
    /// assert_eq!(g.cov()[[1, 1]], 0.5);
    /// ```
    pub fn isotropic(mean: Array1<f64>, var: f64) -> Result<Self, LawError> {
        let d = mean.len();
        Self::new(mean, Array2::eye(d) * var)
    }

    /// Dimension `d`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Mean `m`.
    pub fn mean(&self) -> ArrayView1<'_, f64> {
        self.mean.view()
    }

    /// Covariance `S`.
    pub fn cov(&self) -> ArrayView2<'_, f64> {
        self.cov.view()
    }

    /// `S` as a [`Square`], diagonal when `S` is.
    pub(crate) fn cov_square(&self) -> Square {
        if self.diagonal {
            Square::Diagonal(self.cov.diag().to_vec())
        } else {
            Square::Dense(self.cov.iter().copied().collect())
        }
    }

    /// Lower Cholesky factor `L` of `S` (`S = L Lᵀ`), row-major `d × d`.
    pub fn chol(&self) -> &[f64] {
        &self.chol
    }

    /// Draws one sample into `out` (length `d`) without allocating.
    #[inline]
    pub fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, z: &mut [f64], out: &mut [f64]) {
        let d = self.dim();
        for zi in z.iter_mut() {
            *zi = StandardNormal.sample(rng);
        }
        for i in 0..d {
            let row = &self.chol[i * d..i * d + i + 1];
            let mut acc = self.mean[i];
            for (l, zk) in row.iter().zip(z.iter()) {
                acc += l * zk;
            }
            out[i] = acc;
        }
    }
}

/// A discrete law `Σ_i w_i δ_{x_i}` on finitely many points.
#[derive(Debug, Clone)]
pub struct Discrete {
    points: Array2<f64>,
    weights: Array1<f64>,
    alias: WeightedAliasIndex<f64>,
}

impl Discrete {
    /// Validates and builds the law. Points must be finite; weights finite, non-negative and
    /// summing to 1 within 1e-9 (they are then renormalized exactly). Points with weight 0 are
    /// dropped, and points that coincide under [`crate::grouping`]'s rule are merged (weights
    /// added, first coordinates kept), so the support is a set of distinct points.
    ///
    /// ```
    /// use midpoint::law::Discrete;
    /// use ndarray::array;
    /// let p = Discrete::new(array![[0.0], [1.0], [1.0]], array![0.5, 0.25, 0.25]).unwrap();
    /// assert_eq!(p.len(), 2); // the repeated point was merged
    /// assert!(Discrete::new(array![[0.0]], array![0.9]).is_err());
    /// ```
    pub fn new(points: Array2<f64>, weights: Array1<f64>) -> Result<Self, LawError> {
        let (n, d) = points.dim();
        if n == 0 {
            return Err(LawError::NoPoints);
        }
        if d == 0 {
            return Err(LawError::ZeroDimension);
        }
        if weights.len() != n {
            return Err(LawError::WeightCount {
                weights: weights.len(),
                points: n,
            });
        }
        check_finite("points", points.iter())?;
        check_finite("weights", weights.iter())?;
        if let Some((index, &value)) = weights.iter().enumerate().find(|(_, w)| **w < 0.0) {
            return Err(LawError::NegativeWeight { index, value });
        }
        let sum: f64 = weights.sum();
        if (sum - 1.0).abs() > 1e-9 {
            return Err(LawError::WeightSum { sum });
        }
        let flat: Vec<f64> = points.iter().copied().collect();
        let (ids, groups) = group_rows(&flat, d, DEFAULT_ATOM_TOL);
        let mut merged_w = vec![0.0; groups];
        let mut first = vec![usize::MAX; groups];
        for (i, &g) in ids.iter().enumerate() {
            merged_w[g] += weights[i];
            if first[g] == usize::MAX {
                first[g] = i;
            }
        }
        let keep: Vec<usize> = (0..groups).filter(|&g| merged_w[g] > 0.0).collect();
        let total: f64 = keep.iter().map(|&g| merged_w[g]).sum();
        let mut pts = Array2::zeros((keep.len(), d));
        let mut w = Array1::zeros(keep.len());
        for (k, &g) in keep.iter().enumerate() {
            pts.row_mut(k).assign(&points.row(first[g]));
            w[k] = merged_w[g] / total;
        }
        let alias = WeightedAliasIndex::new(w.to_vec()).map_err(|_| LawError::WeightSum { sum })?;
        Ok(Discrete {
            points: pts,
            weights: w,
            alias,
        })
    }

    /// Uniform law on the given points.
    ///
    /// ```
    /// let p = midpoint::law::Discrete::uniform(ndarray::array![[0.0], [2.0]]).unwrap();
    /// assert_eq!(p.weights()[1], 0.5);
    /// ```
    pub fn uniform(points: Array2<f64>) -> Result<Self, LawError> {
        let n = points.nrows();
        if n == 0 {
            return Err(LawError::NoPoints);
        }
        Self::new(points, Array1::from_elem(n, 1.0 / n as f64))
    }

    /// Number of (distinct) support points.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Always false: a discrete law has at least one point.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Dimension `d`.
    pub fn dim(&self) -> usize {
        self.points.ncols()
    }

    /// Support points, one per row.
    pub fn points(&self) -> ArrayView2<'_, f64> {
        self.points.view()
    }

    /// Probabilities of the support points.
    pub fn weights(&self) -> ArrayView1<'_, f64> {
        self.weights.view()
    }

    /// Draws the index of one support point (Walker's alias method, O(1)).
    #[inline]
    pub fn sample_index<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        self.alias.sample(rng)
    }
}

/// An endpoint law: Gaussian or discrete.
#[derive(Debug, Clone)]
pub enum Law {
    /// `N(m, S)`.
    Gaussian(Gaussian),
    /// Finite support.
    Discrete(Discrete),
}

impl From<Gaussian> for Law {
    fn from(g: Gaussian) -> Self {
        Law::Gaussian(g)
    }
}

impl From<Discrete> for Law {
    fn from(p: Discrete) -> Self {
        Law::Discrete(p)
    }
}

impl Law {
    /// Dimension `d`.
    pub fn dim(&self) -> usize {
        match self {
            Law::Gaussian(g) => g.dim(),
            Law::Discrete(p) => p.dim(),
        }
    }

    /// `E[X]`.
    ///
    /// ```
    /// use midpoint::law::{Discrete, Law};
    /// let p: Law = Discrete::new(ndarray::array![[0.0], [4.0]], ndarray::array![0.75, 0.25])
    ///     .unwrap().into();
    /// assert_eq!(p.mean()[0], 1.0);
    /// ```
    pub fn mean(&self) -> Array1<f64> {
        match self {
            Law::Gaussian(g) => g.mean().to_owned(),
            Law::Discrete(p) => p.points().t().dot(&p.weights()),
        }
    }

    /// `E‖X‖²`.
    pub fn second_moment(&self) -> f64 {
        match self {
            Law::Gaussian(g) => g.mean().dot(&g.mean()) + g.cov().diag().sum(),
            Law::Discrete(p) => p
                .points()
                .rows()
                .into_iter()
                .zip(p.weights())
                .map(|(x, w)| w * x.dot(&x))
                .sum(),
        }
    }

    /// Draws one sample into `out` (length `d`); `scratch` must have length `d` too.
    #[inline]
    pub fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, scratch: &mut [f64], out: &mut [f64]) {
        match self {
            Law::Gaussian(g) => g.sample_into(rng, scratch, out),
            Law::Discrete(p) => {
                let i = p.sample_index(rng);
                out.copy_from_slice(p.points.row(i).as_slice().expect("standard layout"));
            }
        }
    }

    /// `n` independent samples, one per row.
    ///
    /// ```
    /// use midpoint::law::{Gaussian, Law};
    /// use rand::SeedableRng;
    /// let law: Law = Gaussian::isotropic(ndarray::array![0.0, 0.0], 1.0).unwrap().into();
    /// let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
    /// let x = law.sample(10, &mut rng).unwrap();
    /// assert_eq!(x.dim(), (10, 2));
    /// ```
    pub fn sample<R: Rng>(&self, n: usize, rng: &mut R) -> Result<Array2<f64>, LawError> {
        if n == 0 {
            return Err(LawError::NoSamples(0));
        }
        match self {
            Law::Gaussian(g) => {
                // All draws at once: X = Z Lᵀ + m with Z an n × d array of standard normals.
                let d = g.dim();
                let z = Array2::<f64>::random_using((n, d), StandardNormal, rng);
                let l = Array2::from_shape_vec((d, d), g.chol.clone()).expect("d × d");
                Ok(z.dot(&l.t()) + &g.mean)
            }
            Law::Discrete(p) => {
                let mut out = Array2::zeros((n, p.dim()));
                for mut row in out.rows_mut() {
                    row.assign(&p.points.row(p.sample_index(rng)));
                }
                Ok(out)
            }
        }
    }
}

fn check_finite<'a>(what: &'static str, xs: impl Iterator<Item = &'a f64>) -> Result<(), LawError> {
    for (index, x) in xs.enumerate() {
        if !x.is_finite() {
            return Err(LawError::NonFinite { what, index });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::SeedableRng;

    #[test]
    fn gaussian_sample_moments() {
        // Sample mean of 200k draws of N(m, S): each coordinate's standard error is
        // sqrt(S_ii / n) ≤ 0.0032; 6 SE bounds the false-failure rate near 2e-9 per coordinate.
        let g = Gaussian::new(array![1.0, -2.0], array![[2.0, 0.6], [0.6, 1.0]]).unwrap();
        let law = Law::from(g);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
        let n = 200_000;
        let x = law.sample(n, &mut rng).unwrap();
        let m = x.mean_axis(ndarray::Axis(0)).unwrap();
        assert!((m[0] - 1.0).abs() < 6.0 * (2.0f64 / n as f64).sqrt());
        assert!((m[1] + 2.0).abs() < 6.0 * (1.0f64 / n as f64).sqrt());
        // Cross moment E[(x0−m0)(x1−m1)] = 0.6; its SE is sqrt((S00 S11 + S01²)/n) ≈ 0.0036.
        let c: f64 = x
            .rows()
            .into_iter()
            .map(|r| (r[0] - 1.0) * (r[1] + 2.0))
            .sum::<f64>()
            / n as f64;
        assert!((c - 0.6).abs() < 6.0 * ((2.0 + 0.36) / n as f64).sqrt());
    }

    #[test]
    fn discrete_frequencies() {
        // Frequency of a point with p = 0.2 over 100k draws: SE = sqrt(0.16/1e5) = 0.00126.
        let p = Discrete::new(array![[0.0], [1.0], [2.0]], array![0.2, 0.3, 0.5]).unwrap();
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let n = 100_000;
        let hits = (0..n).filter(|_| p.sample_index(&mut rng) == 0).count();
        assert!((hits as f64 / n as f64 - 0.2).abs() < 6.0 * 0.00126);
    }

    #[test]
    fn bad_laws_are_refused() {
        assert_eq!(
            Gaussian::new(array![0.0, f64::NAN], Array2::eye(2)).unwrap_err(),
            LawError::NonFinite {
                what: "mean",
                index: 1
            }
        );
        assert!(matches!(
            Gaussian::new(array![0.0, 0.0], Array2::eye(3)),
            Err(LawError::CovarianceShape { .. })
        ));
        assert_eq!(
            Gaussian::new(array![0.0, 0.0], array![[1.0, 1.0], [1.0, 1.0]]).unwrap_err(),
            LawError::NotPositiveDefinite
        );
        assert!(matches!(
            Discrete::new(array![[0.0], [1.0]], array![1.5, -0.5]),
            Err(LawError::NegativeWeight { index: 1, .. })
        ));
        assert!(matches!(
            Discrete::new(array![[0.0], [1.0]], array![0.5]),
            Err(LawError::WeightCount { .. })
        ));
        assert!(matches!(
            Discrete::new(Array2::zeros((0, 1)), Array1::zeros(0)),
            Err(LawError::NoPoints)
        ));
    }
}
