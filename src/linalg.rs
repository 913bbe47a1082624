//! Small dense linear algebra on row-major `d × d` slices.
//!
//! Factorizations go through faer (sequentially, so results never depend on the thread
//! count); the hot loops of field evaluation use the hand-written triangular solve and
//! mat-vec below, which work on caller-provided buffers and never allocate. [`Square`] carries
//! diagonality explicitly, so that diagonal covariances (the exact Gaussian routes after a
//! rotation into a common eigenbasis) cost `O(d)` per operation instead of `O(d³)`.

use faer::{Mat, Side};

fn to_mat(a: &[f64], d: usize) -> Mat<f64> {
    Mat::from_fn(d, d, |i, j| a[i * d + j])
}

fn from_mat(m: faer::MatRef<'_, f64>) -> Vec<f64> {
    let (r, c) = (m.nrows(), m.ncols());
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            out[i * c + j] = m[(i, j)];
        }
    }
    out
}

/// Lower Cholesky factor of a symmetric positive definite matrix, or `None`.
pub fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let llt = to_mat(a, d).llt(Side::Lower).ok()?;
    let l = from_mat(llt.L());
    if l.iter().all(|x| x.is_finite()) {
        Some(l)
    } else {
        None
    }
}

/// Solves `L y = b` in place (`L` lower triangular, row-major).
#[inline]
pub fn solve_lower_in_place(l: &[f64], d: usize, b: &mut [f64]) {
    for i in 0..d {
        let row = &l[i * d..i * d + i];
        let mut acc = b[i];
        for (lij, bj) in row.iter().zip(b.iter()) {
            acc -= lij * bj;
        }
        b[i] = acc / l[i * d + i];
    }
}

/// Solves `Lᵀ y = b` in place.
#[inline]
pub fn solve_upper_t_in_place(l: &[f64], d: usize, b: &mut [f64]) {
    for i in (0..d).rev() {
        let mut acc = b[i];
        for j in i + 1..d {
            acc -= l[j * d + i] * b[j];
        }
        b[i] = acc / l[i * d + i];
    }
}

/// `A⁻¹` for SPD `A` given its Cholesky factor.
pub fn inverse_from_chol(l: &[f64], d: usize) -> Vec<f64> {
    let mut inv = vec![0.0; d * d];
    let mut col = vec![0.0; d];
    for j in 0..d {
        col.iter_mut().for_each(|c| *c = 0.0);
        col[j] = 1.0;
        solve_lower_in_place(l, d, &mut col);
        solve_upper_t_in_place(l, d, &mut col);
        for i in 0..d {
            inv[i * d + j] = col[i];
        }
    }
    // Symmetrize: the two triangular solves leave rounding-level asymmetry.
    for i in 0..d {
        for j in 0..i {
            let s = 0.5 * (inv[i * d + j] + inv[j * d + i]);
            inv[i * d + j] = s;
            inv[j * d + i] = s;
        }
    }
    inv
}

/// `y = A x` for row-major `A` (`rows × cols`).
#[inline]
pub fn matvec(a: &[f64], rows: usize, cols: usize, x: &[f64], y: &mut [f64]) {
    for i in 0..rows {
        let row = &a[i * cols..(i + 1) * cols];
        y[i] = row.iter().zip(x).map(|(p, q)| p * q).sum();
    }
}

/// `‖x‖² = Σ xᵢ²`, summed in order.
#[inline]
pub fn norm2(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum()
}

/// The first `D` entries of `v` as an array (fixed-dimension code paths unroll over it).
pub fn fixed_vector<const D: usize>(v: &[f64]) -> [f64; D] {
    let mut a = [0.0; D];
    a.copy_from_slice(&v[..D]);
    a
}

/// A row-major `D × D` slice as an array of rows.
pub fn fixed_matrix<const D: usize>(v: &[f64]) -> [[f64; D]; D] {
    let mut a = [[0.0; D]; D];
    for i in 0..D {
        a[i].copy_from_slice(&v[i * D..(i + 1) * D]);
    }
    a
}

/// `C = A B` for row-major `A` (`n × k`) and `B` (`k × m`).
pub fn matmul(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * m];
    for i in 0..n {
        for p in 0..k {
            let aip = a[i * k + p];
            if aip == 0.0 {
                continue;
            }
            for j in 0..m {
                c[i * m + j] += aip * b[p * m + j];
            }
        }
    }
    c
}

/// Orthonormal basis (row-major `d × r`) of the span of `vectors` (each of length `d`): the
/// left singular vectors whose singular values exceed `rel_tol` times the largest. An SVD of
/// the vectors themselves (not an eigen-decomposition of their scatter matrix, which squares
/// the condition number) so that an exactly rank-r set comes out with rank r.
pub fn span_basis(vectors: &[Vec<f64>], d: usize, rel_tol: f64) -> (Vec<f64>, usize) {
    let m = vectors.len();
    if m == 0 {
        return (Vec::new(), 0);
    }
    let a = Mat::from_fn(d, m, |i, j| vectors[j][i]);
    let svd = a.thin_svd().expect("SVD of a small finite matrix");
    let k = d.min(m);
    let sv: Vec<f64> = (0..k).map(|i| svd.S()[i]).collect();
    let smax = sv.iter().fold(0.0f64, |acc, v| acc.max(*v));
    let keep: Vec<usize> = (0..k)
        .filter(|&i| smax > 0.0 && sv[i] > rel_tol * smax)
        .collect();
    let r = keep.len();
    let u = svd.U();
    let mut q = vec![0.0; d * r];
    for i in 0..d {
        for (c, &j) in keep.iter().enumerate() {
            q[i * r + c] = u[(i, j)];
        }
    }
    (q, r)
}

/// Inverse of a lower-triangular row-major matrix (lower triangular again).
pub(crate) fn lower_inverse(l: &[f64], d: usize) -> Vec<f64> {
    let mut inv = vec![0.0; d * d];
    let mut col = vec![0.0; d];
    for c in 0..d {
        col.iter_mut().for_each(|x| *x = 0.0);
        col[c] = 1.0;
        solve_lower_in_place(l, d, &mut col);
        (0..d).for_each(|i| inv[i * d + c] = col[i]);
    }
    inv
}

/// A square `d × d` matrix that knows when it is diagonal.
///
/// The exact Gaussian routes build a handful of these per time node (Eq. 5's class
/// covariances, their Cholesky factors and the gains `A_k`); once the laws are rotated into
/// a common eigenbasis every one of them is diagonal, and keeping only the diagonal makes a
/// time node cost `O(d)` instead of the `O(d³)` of dense factorizations (issue 16). Dense
/// matrices are row-major; every operation gives the dense result, so callers never branch
/// on the representation.
#[derive(Debug, Clone, PartialEq)]
pub enum Square {
    /// A general matrix, row-major, `d²` entries.
    Dense(Vec<f64>),
    /// A diagonal matrix, its `d` diagonal entries.
    Diagonal(Vec<f64>),
}

impl Square {
    /// `s·I` in dimension `d`.
    pub fn scaled_identity(d: usize, s: f64) -> Square {
        Square::Diagonal(vec![s; d])
    }

    /// The dimension `d`.
    pub fn dim(&self) -> usize {
        match self {
            Square::Diagonal(v) => v.len(),
            Square::Dense(v) => (v.len() as f64).sqrt().round() as usize,
        }
    }

    /// The stored entries (the diagonal, or all `d²`): what a coincidence test or a largest
    /// entry needs, since the omitted entries are zeros.
    pub fn entries(&self) -> &[f64] {
        match self {
            Square::Diagonal(v) | Square::Dense(v) => v,
        }
    }

    /// The stored entries, mutably.
    pub fn entries_mut(&mut self) -> &mut [f64] {
        match self {
            Square::Diagonal(v) | Square::Dense(v) => v,
        }
    }

    /// Whether only the diagonal is stored.
    pub fn is_diagonal(&self) -> bool {
        matches!(self, Square::Diagonal(_))
    }

    /// The row-major `d × d` matrix (borrowed when already dense).
    pub fn dense(&self) -> std::borrow::Cow<'_, [f64]> {
        match self {
            Square::Dense(v) => std::borrow::Cow::Borrowed(v),
            Square::Diagonal(v) => {
                let d = v.len();
                let mut a = vec![0.0; d * d];
                v.iter().enumerate().for_each(|(i, x)| a[i * d + i] = *x);
                std::borrow::Cow::Owned(a)
            }
        }
    }

    /// Entry `(i, i)`.
    pub fn diag(&self, i: usize) -> f64 {
        match self {
            Square::Diagonal(v) => v[i],
            Square::Dense(v) => v[i * self.dim() + i],
        }
    }

    /// `a·X + b·Y`, diagonal when both are.
    pub fn combo(a: f64, x: &Square, b: f64, y: &Square) -> Square {
        match (x, y) {
            (Square::Diagonal(u), Square::Diagonal(v)) => {
                Square::Diagonal(u.iter().zip(v).map(|(p, q)| a * p + b * q).collect())
            }
            _ => Square::Dense(
                x.dense()
                    .iter()
                    .zip(y.dense().iter())
                    .map(|(p, q)| a * p + b * q)
                    .collect(),
            ),
        }
    }

    /// `X·s`.
    pub fn scaled(&self, s: f64) -> Square {
        let scale = |v: &[f64]| v.iter().map(|x| x * s).collect();
        match self {
            Square::Diagonal(v) => Square::Diagonal(scale(v)),
            Square::Dense(v) => Square::Dense(scale(v)),
        }
    }

    /// `X + s·I` in place.
    pub fn add_identity(&mut self, s: f64) {
        let d = self.dim();
        match self {
            Square::Diagonal(v) => v.iter_mut().for_each(|x| *x += s),
            Square::Dense(v) => (0..d).for_each(|i| v[i * d + i] += s),
        }
    }

    /// `X += w·Y` in place (becomes dense unless both are diagonal).
    pub fn add_scaled(&mut self, w: f64, y: &Square) {
        if let (Square::Diagonal(u), Square::Diagonal(v)) = (&mut *self, y) {
            u.iter_mut().zip(v).for_each(|(p, q)| *p += w * q);
            return;
        }
        let mut a = self.dense().into_owned();
        a.iter_mut()
            .zip(y.dense().iter())
            .for_each(|(p, q)| *p += w * q);
        *self = Square::Dense(a);
    }

    /// Zero of the same representation.
    pub fn zeros_like(&self) -> Square {
        match self {
            Square::Diagonal(v) => Square::Diagonal(vec![0.0; v.len()]),
            Square::Dense(v) => Square::Dense(vec![0.0; v.len()]),
        }
    }

    /// Lower Cholesky factor of a symmetric positive definite matrix, or `None`.
    pub fn cholesky(&self) -> Option<Square> {
        match self {
            Square::Diagonal(v) => {
                let l: Vec<f64> = v.iter().map(|x| x.sqrt()).collect();
                // sqrt of a negative is NaN; a zero pivot is as singular as faer's refusal.
                l.iter()
                    .all(|x| x.is_finite() && *x > 0.0)
                    .then_some(Square::Diagonal(l))
            }
            Square::Dense(a) => cholesky(a, self.dim()).map(Square::Dense),
        }
    }

    /// `log det A` from the Cholesky factor `L` of `A` (`self`).
    pub fn log_det_from_chol(&self) -> f64 {
        (0..self.dim()).map(|i| 2.0 * self.diag(i).ln()).sum()
    }

    /// `A⁻¹` for SPD `A` given its Cholesky factor `L` (`self`).
    pub fn inverse_from_chol(&self) -> Square {
        match self {
            Square::Diagonal(l) => Square::Diagonal(l.iter().map(|x| 1.0 / (x * x)).collect()),
            Square::Dense(l) => Square::Dense(inverse_from_chol(l, self.dim())),
        }
    }

    /// `L⁻¹` of a lower-triangular `L` (`self`).
    pub fn lower_inverse(&self) -> Square {
        match self {
            Square::Diagonal(l) => Square::Diagonal(l.iter().map(|x| 1.0 / x).collect()),
            Square::Dense(l) => Square::Dense(lower_inverse(l, self.dim())),
        }
    }

    /// `X Y`.
    pub fn mul(&self, y: &Square) -> Square {
        let d = self.dim();
        match (self, y) {
            (Square::Diagonal(u), Square::Diagonal(v)) => {
                Square::Diagonal(u.iter().zip(v).map(|(p, q)| p * q).collect())
            }
            (Square::Diagonal(u), Square::Dense(b)) => {
                Square::Dense((0..d * d).map(|k| u[k / d] * b[k]).collect())
            }
            (Square::Dense(a), Square::Diagonal(v)) => {
                Square::Dense((0..d * d).map(|k| a[k] * v[k % d]).collect())
            }
            (Square::Dense(a), Square::Dense(b)) => Square::Dense(matmul(a, b, d, d, d)),
        }
    }

    /// `X B` for a row-major `d × r` matrix `B`.
    pub fn mul_rect(&self, b: &[f64], r: usize) -> Vec<f64> {
        let d = self.dim();
        match self {
            Square::Diagonal(u) => (0..d * r).map(|k| u[k / r.max(1)] * b[k]).collect(),
            Square::Dense(a) => matmul(a, b, d, d, r),
        }
    }

    /// Solves `L y = b` in place for lower-triangular `L` (`self`).
    #[inline]
    pub fn solve_lower_in_place(&self, b: &mut [f64]) {
        match self {
            Square::Diagonal(l) => b.iter_mut().zip(l).for_each(|(x, li)| *x /= li),
            Square::Dense(l) => solve_lower_in_place(l, l.len() / b.len().max(1), b),
        }
    }

    /// `y = L x` for lower-triangular `L` (`self`): the whitening multiply of field
    /// evaluation.
    #[inline]
    pub fn lower_matvec(&self, x: &[f64], y: &mut [f64]) {
        match self {
            Square::Diagonal(l) => {
                for ((yi, li), xi) in y.iter_mut().zip(l).zip(x) {
                    *yi = li * xi;
                }
            }
            Square::Dense(l) => {
                let d = y.len();
                for i in 0..d {
                    let row = &l[i * d..i * d + i + 1];
                    y[i] = row.iter().zip(x).map(|(p, q)| p * q).sum();
                }
            }
        }
    }

    /// `y = X x`.
    #[inline]
    pub fn matvec(&self, x: &[f64], y: &mut [f64]) {
        match self {
            Square::Diagonal(u) => {
                for ((yi, ui), xi) in y.iter_mut().zip(u).zip(x) {
                    *yi = ui * xi;
                }
            }
            Square::Dense(a) => matvec(a, y.len(), x.len(), x, y),
        }
    }

    /// `tr(X Yᵀ) = Σ_ij X_ij Y_ij`.
    pub fn frobenius_dot(&self, y: &Square) -> f64 {
        match (self, y) {
            (Square::Diagonal(u), Square::Diagonal(v)) => u.iter().zip(v).map(|(p, q)| p * q).sum(),
            _ => self
                .dense()
                .iter()
                .zip(y.dense().iter())
                .map(|(p, q)| p * q)
                .sum(),
        }
    }

    /// `tr(A C Aᵀ)` with `A` = `self`.
    pub fn trace_acat(&self, c: &Square) -> f64 {
        match (self, c) {
            (Square::Diagonal(a), Square::Diagonal(c)) => {
                a.iter().zip(c).map(|(x, ci)| x * x * ci).sum()
            }
            _ => {
                let ac = self.mul(c);
                ac.frobenius_dot(self)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_times_matrix_is_identity() {
        let a = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0];
        let l = cholesky(&a, 3).unwrap();
        let inv = inverse_from_chol(&l, 3);
        let id = matmul(&a, &inv, 3, 3, 3);
        for i in 0..3 {
            for j in 0..3 {
                let e = if i == j { 1.0 } else { 0.0 };
                assert!((id[i * 3 + j] - e).abs() < 1e-14);
            }
        }
        // det = 4(6−0.04) − 1(2−0.1) + 0.5(0.2−1.5) = 23.84 − 1.9 − 0.65 = 21.29
        assert!((Square::Dense(l).log_det_from_chol() - 21.29f64.ln()).abs() < 1e-13);
    }

    #[test]
    fn span_of_parallel_vectors_has_rank_one() {
        // Would catch a rank test that counts rounding-level directions.
        let v = vec![
            vec![0.3, -0.1, 0.7],
            vec![0.6, -0.2, 1.4],
            vec![-0.3, 0.1, -0.7],
        ];
        let (q, r) = span_basis(&v, 3, 1e-12);
        assert_eq!(r, 1);
        let n = (0.09f64 + 0.01 + 0.49).sqrt();
        assert!((q[0].abs() - 0.3 / n).abs() < 1e-14 && (q[2].abs() - 0.7 / n).abs() < 1e-14);
        let (_, r) = span_basis(&[vec![1.0, 0.0, 0.0], vec![0.0, 1e-6, 0.0]], 3, 1e-12);
        assert_eq!(r, 2);
    }
}
