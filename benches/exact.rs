//! Exact divergences: time per call (criterion). `cargo bench --bench exact`.

use criterion::{criterion_group, criterion_main, Criterion};
use midpoint::divergence::{d_mid, d_t, d_tmid, ExactOptions};
use midpoint::{Discrete, Gaussian, Law, StochasticInterpolant};
use ndarray::array;
use std::hint::black_box;

fn exact(c: &mut Criterion) {
    let o = ExactOptions::default();
    let s0 = StochasticInterpolant::linear(0.0).unwrap();
    let s1 = StochasticInterpolant::linear(0.1).unwrap();
    let g0: Law = Gaussian::isotropic(array![0.0], 1.0).unwrap().into();
    let g1: Law = Gaussian::isotropic(array![1.5], 0.5).unwrap().into();
    let q0: Law = Gaussian::new(array![0.0, 0.0], array![[1.0, 0.3], [0.3, 0.5]])
        .unwrap()
        .into();
    let q1: Law = Gaussian::new(array![1.0, -0.5], array![[0.7, -0.2], [-0.2, 1.2]])
        .unwrap()
        .into();
    let a: Law = Discrete::new(array![[-1.0], [0.0], [2.0]], array![0.2, 0.5, 0.3])
        .unwrap()
        .into();
    let b: Law = Discrete::new(array![[-1.0], [1.0], [2.0]], array![0.4, 0.4, 0.2])
        .unwrap()
        .into();

    let mut g = c.benchmark_group("exact");
    g.bench_function("d_tmid gaussian 1-D (rel 1e-10)", |bn| {
        bn.iter(|| d_tmid(black_box(&g0), black_box(&g1), &s0, &o).unwrap())
    });
    g.bench_function("d_tmid gaussian 1-D sigma=0.1", |bn| {
        bn.iter(|| d_tmid(black_box(&g0), black_box(&g1), &s1, &o).unwrap())
    });
    g.bench_function("d_t(0.2) gaussian 1-D", |bn| {
        bn.iter(|| d_t(black_box(&g0), black_box(&g1), &s0, 0.2, &o).unwrap())
    });
    g.bench_function("d_mid gaussian 2-D (closed form)", |bn| {
        bn.iter(|| d_mid(black_box(&q0), black_box(&q1), &s0, &o).unwrap())
    });
    g.bench_function("d_tmid discrete 3x3 sigma=0 (closed form)", |bn| {
        bn.iter(|| d_tmid(black_box(&a), black_box(&b), &s0, &o).unwrap())
    });
    g.bench_function("d_tmid discrete 3x3 sigma=0.1 (quadrature)", |bn| {
        bn.iter(|| d_tmid(black_box(&a), black_box(&b), &s1, &o).unwrap())
    });
    g.sample_size(10);
    g.bench_function("d_tmid gaussian 2-D (rel 1e-10)", |bn| {
        bn.iter(|| d_tmid(black_box(&q0), black_box(&q1), &s0, &o).unwrap())
    });
    g.finish();
}

criterion_group!(benches, exact);
criterion_main!(benches);
