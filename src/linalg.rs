//! Small dense linear algebra on row-major `d × d` slices.
//!
//! Factorizations go through faer (sequentially, so results never depend on the thread
//! count); the hot loops of field evaluation use the hand-written triangular solve and
//! mat-vec below, which work on caller-provided buffers and never allocate.

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

/// `log det A` from the Cholesky factor `L` of `A`.
pub fn log_det_from_chol(l: &[f64], d: usize) -> f64 {
    (0..d).map(|i| 2.0 * l[i * d + i].ln()).sum()
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
        assert!((log_det_from_chol(&l, 3) - 21.29f64.ln()).abs() < 1e-13);
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
