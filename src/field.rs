//! The exact displacement field `m_t(x) = E[X1 − X0 | X̃_t = x]` for Gaussian and discrete
//! endpoints: the symmetrized field `ṽ_t` of Eq. 5 (flipped observation, Eq. 4/7) or the
//! Flow Matching velocity `v_t` of Eq. 1 (unflipped observation).
//!
//! Posterior weights are computed in log space (log-sum-exp), so the field stays finite far
//! in the tails where every density underflows. For atomic `X̃_t` (discrete laws, σ = 0) the
//! field is defined on the atoms only; triples that coincide are pooled under the rule of
//! [`crate::grouping`].

use crate::error::{check_dims, check_time, DivergenceError};
use crate::grouping::DEFAULT_ATOM_TOL;
use crate::interpolant::{Observation, StochasticInterpolant};
use crate::law::Law;
pub use crate::posterior::FieldScratch;
use crate::posterior::Posterior;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

/// The exact field at one time `t`.
#[derive(Debug, Clone)]
pub struct DisplacementField {
    posterior: Posterior,
    t: f64,
    observation: Observation,
}

/// Builds the exact displacement field of `(p0, p1)` at time `t ∈ [0, 1]` (Eq. 5 for
/// [`Observation::Flipped`], Eq. 1 for [`Observation::Unflipped`]).
///
/// ```
/// use midpoint::field::displacement_field;
/// use midpoint::interpolant::{Observation, StochasticInterpolant};
/// use midpoint::law::{Gaussian, Law};
/// use ndarray::array;
/// let p: Law = Gaussian::isotropic(array![0.0, 0.0], 1.0).unwrap().into();
/// let si = StochasticInterpolant::linear(0.1).unwrap();
/// // Prop. 3.2: with p0 = p1 the flipped field vanishes at every t ...
/// let f = displacement_field(&p, &p, &si, 0.2, Observation::Flipped).unwrap();
/// assert!(f.eval(array![3.0, -1.0].view()).unwrap().iter().all(|v| v.abs() < 1e-14));
/// // ... while the unflipped Flow Matching velocity does not (§3.2).
/// let v = displacement_field(&p, &p, &si, 0.2, Observation::Unflipped).unwrap();
/// assert!(v.eval(array![3.0, -1.0].view()).unwrap()[0].abs() > 0.1);
/// ```
pub fn displacement_field(
    p0: &Law,
    p1: &Law,
    si: &StochasticInterpolant,
    t: f64,
    observation: Observation,
) -> Result<DisplacementField, DivergenceError> {
    check_dims(p0, p1)?;
    check_time(t, 0.0, 1.0)?;
    Ok(DisplacementField {
        posterior: Posterior::new(p0, p1, si, t, observation, DEFAULT_ATOM_TOL),
        t,
        observation,
    })
}

impl DisplacementField {
    /// The time `t`.
    pub fn t(&self) -> f64 {
        self.t
    }

    /// Flipped or not.
    pub fn observation(&self) -> Observation {
        self.observation
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.posterior.dim()
    }

    /// Buffers for [`DisplacementField::eval_into`]; one per thread.
    pub fn scratch(&self) -> FieldScratch {
        self.posterior.scratch()
    }

    /// `m_t(x)` into `out` without allocating.
    pub fn eval_into(
        &self,
        x: &[f64],
        out: &mut [f64],
        scratch: &mut FieldScratch,
    ) -> Result<(), DivergenceError> {
        let d = self.dim();
        if x.len() != d || out.len() != d {
            return Err(DivergenceError::PointDimension {
                expected: d,
                got: x.len(),
            });
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(DivergenceError::NonFinitePoint);
        }
        if self.posterior.field_into(x, out, scratch) {
            Ok(())
        } else {
            Err(DivergenceError::OutsideSupport)
        }
    }

    /// `m_t(x)` at one point.
    pub fn eval(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>, DivergenceError> {
        let mut out = Array1::zeros(self.dim());
        let x = x.to_vec();
        let mut s = self.scratch();
        self.eval_into(&x, out.as_slice_mut().expect("contiguous"), &mut s)?;
        Ok(out)
    }

    /// `m_t` at every row of `xs`, in parallel (row order preserved).
    ///
    /// ```
    /// use midpoint::field::displacement_field;
    /// use midpoint::interpolant::{Observation, StochasticInterpolant};
    /// use midpoint::law::{Gaussian, Law};
    /// let p0: Law = Gaussian::isotropic(ndarray::array![0.0], 1.0).unwrap().into();
    /// let p1: Law = Gaussian::isotropic(ndarray::array![2.0], 1.0).unwrap().into();
    /// let si = StochasticInterpolant::linear(0.0).unwrap();
    /// let f = displacement_field(&p0, &p1, &si, 0.5, Observation::Flipped).unwrap();
    /// let m = f.eval_batch(ndarray::array![[0.0], [5.0]].view()).unwrap();
    /// assert_eq!(m, ndarray::array![[2.0], [2.0]]); // equal covariances: constant field
    /// ```
    pub fn eval_batch(&self, xs: ArrayView2<'_, f64>) -> Result<Array2<f64>, DivergenceError> {
        let d = self.dim();
        if xs.ncols() != d {
            return Err(DivergenceError::PointDimension {
                expected: d,
                got: xs.ncols(),
            });
        }
        let mut out = Array2::zeros(xs.dim());
        out.axis_chunks_iter_mut(Axis(0), 1024)
            .into_par_iter()
            .zip(xs.axis_chunks_iter(Axis(0), 1024).into_par_iter())
            .try_for_each(|(mut o, x)| {
                let mut s = self.scratch();
                let mut xi = vec![0.0; d];
                let mut oi = vec![0.0; d];
                for (mut orow, xrow) in o.rows_mut().into_iter().zip(x.rows()) {
                    xi.iter_mut().zip(xrow).for_each(|(a, b)| *a = *b);
                    self.eval_into(&xi, &mut oi, &mut s)?;
                    orow.iter_mut().zip(&oi).for_each(|(a, b)| *a = *b);
                }
                Ok::<(), DivergenceError>(())
            })?;
        Ok(out)
    }
}
