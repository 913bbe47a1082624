//! The ridge systems of the RFF critic: one Cholesky factorization of an `M = 328` Gram
//! matrix (`d = 10` at `n = 1000`: 250 random features, the constant, 11 linear and 66
//! quadratic terms), faer's `Mat::llt` (faer's global parallelism, rayon by default) against
//! `ridge::Cholesky::factor` (`Par::Seq`, what the estimator uses), plus one solve with `d = 10`
//! right-hand sides. `cargo bench --bench ridge`.

use criterion::{criterion_group, criterion_main, Criterion};
use faer::{Mat, Side};
use midpoint::estimate::ridge::Cholesky;
use std::hint::black_box;

/// A well-conditioned Gram matrix `ΦᵀΦ + I` of 400 deterministic rows (a CV half at n = 1000).
fn gram(m: usize, rows: usize) -> Mat<f64> {
    let phi = Mat::<f64>::from_fn(rows, m, |i, j| {
        ((i * 7919 + j * 104_729) % 1000) as f64 / 1000.0 - 0.5
    });
    let mut g = phi.transpose() * &phi;
    for i in 0..m {
        g[(i, i)] += 1.0;
    }
    g
}

fn bench(c: &mut Criterion) {
    let g = gram(328, 400);
    let r = Mat::<f64>::from_fn(328, 10, |i, j| (i + j) as f64);
    let mut group = c.benchmark_group("cholesky_m328");
    group.bench_function("faer_llt_global_par", |b| {
        b.iter(|| black_box(g.clone().llt(Side::Lower).unwrap()))
    });
    group.bench_function("rff_cholesky_seq", |b| {
        b.iter(|| black_box(Cholesky::factor(g.clone()).unwrap()))
    });
    let c = Cholesky::factor(g.clone()).unwrap();
    group.bench_function("rff_cholesky_solve_10_rhs", |b| {
        b.iter(|| black_box(c.solve(r.as_ref())))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
