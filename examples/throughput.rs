//! Timings for the side-by-side comparison with NumPy/SciPy (benches/python/compare.sh):
//! exact 1-D Gaussian D_t-mid to relative 1e-10, and Rao–Blackwellized Monte Carlo draws per
//! second on one thread. Prints one JSON object.
//!
//! `cargo run --release --example throughput`

use midpoint::divergence::{d_tmid, ExactOptions};
use midpoint::montecarlo::{rao_blackwell, Setup, TimeLaw};
use midpoint::{Gaussian, Law, StochasticInterpolant};
use ndarray::array;
use std::time::Instant;

/// Median of `reps` timings of `f`, in seconds.
fn median_time(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2]
}

fn main() {
    // The laws of the comparison: p0 = N(0, 1), p1 = N(1.5, 0.5), linear, σ = 0.
    let p0: Law = Gaussian::isotropic(array![0.0], 1.0).unwrap().into();
    let p1: Law = Gaussian::isotropic(array![1.5], 0.5).unwrap().into();
    let si = StochasticInterpolant::linear(0.0).unwrap();
    let opts = ExactOptions::default();
    let exact = d_tmid(&p0, &p1, &si, &opts).unwrap();
    let tmid_s = median_time(201, || {
        std::hint::black_box(d_tmid(&p0, &p1, &si, &opts).unwrap());
    });

    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let n = 1 << 22;
    let setup = Setup::new(&p0, &p1, &si).at(TimeLaw::Fixed(0.3));
    let mut estimate = None;
    let rb_s = median_time(5, || {
        estimate = Some(one.install(|| rao_blackwell(&setup, n, 7).unwrap()));
    });
    let setup_u = Setup::new(&p0, &p1, &si);
    let rb_u_s = median_time(3, || {
        std::hint::black_box(one.install(|| rao_blackwell(&setup_u, n / 8, 7).unwrap()));
    });
    let json = serde_json::json!({
        "tmid_exact_value": exact.value,
        "tmid_exact_error_bound": exact.error_bound,
        "tmid_exact_seconds": tmid_s,
        "rb_fixed_t_draws": n,
        "rb_fixed_t_estimate": estimate.map(|e| e.estimate),
        "rb_fixed_t_draws_per_second_1_thread": n as f64 / rb_s,
        "rb_uniform_t_draws_per_second_1_thread": (n / 8) as f64 / rb_u_s,
    });
    println!("{json}");
}
