//! Monte Carlo throughput (draws/s) against dimension, on one thread and on all threads.
//! `cargo bench --bench montecarlo`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use midpoint::montecarlo::{rao_blackwell, variational, Setup, TimeLaw};
use midpoint::{Gaussian, Law, StochasticInterpolant};
use ndarray::{Array1, Array2};
use std::hint::black_box;

/// N(0, S) against N(m, S') in dimension d with distinct, correlated covariances (two
/// covariance classes: the general field path).
fn pair(d: usize) -> (Law, Law) {
    let s0 = Array2::from_shape_fn((d, d), |(i, j)| {
        if i == j {
            1.0
        } else {
            0.2 / (1.0 + (i as f64 - j as f64).abs())
        }
    });
    let s1 = Array2::from_shape_fn((d, d), |(i, j)| {
        if i == j {
            0.6
        } else {
            -0.1 / (1.0 + (i as f64 - j as f64).abs())
        }
    });
    let m = Array1::from_shape_fn(d, |i| 0.5 + 0.1 * i as f64);
    (
        Gaussian::new(Array1::zeros(d), s0).unwrap().into(),
        Gaussian::new(m, s1).unwrap().into(),
    )
}

fn throughput(c: &mut Criterion) {
    let si = StochasticInterpolant::linear(0.0).unwrap();
    let n = 1 << 18;
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut g = c.benchmark_group("rao_blackwell D(0.3)");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    for d in [1usize, 2, 4, 8, 16] {
        let (p0, p1) = pair(d);
        let setup = Setup::new(&p0, &p1, &si).at(TimeLaw::Fixed(0.3));
        g.bench_with_input(BenchmarkId::new("1 thread", d), &d, |b, _| {
            b.iter(|| one.install(|| rao_blackwell(black_box(&setup), n, 1).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("all threads", d), &d, |b, _| {
            b.iter(|| rao_blackwell(black_box(&setup), n, 1).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("variational J(f), f affine");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    for d in [1usize, 4, 16] {
        let (p0, p1) = pair(d);
        let setup = Setup::new(&p0, &p1, &si).at(TimeLaw::Fixed(0.3));
        let f = |_t: f64, x: &[f64], out: &mut [f64]| {
            for (o, v) in out.iter_mut().zip(x) {
                *o = 0.5 - 0.3 * v;
            }
        };
        g.bench_with_input(BenchmarkId::new("1 thread", d), &d, |b, _| {
            b.iter(|| one.install(|| variational(black_box(&setup), &f, n, 1).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
