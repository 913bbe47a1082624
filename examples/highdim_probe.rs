//! High-dimensional probe behind docs/reliability.md, "Correctness: intervals in high
//! dimension": `estimate` (`tmid`, RFF critic) on N(0, I_d) against N(μ, I_d), ‖μ‖ = SHIFT,
//! one line per replication with the estimate, both standard errors and the critics' choices.
//!
//! `cargo run --release --example highdim_probe -- D N REPS UNDERSMOOTH RIDGE_MAX SHIFT [seeds]`
//! (RIDGE_MAX extends the ridge grid beyond 1 by decades; `seeds` keeps one data set and
//! varies only the estimator's seed). With `PROBE_TEST=1` in the environment the sign-flip
//! test runs too and its p-value ends the line.
use midpoint::estimate::{
    estimate, CriticKind, DivergenceKind, EstimateOptions, RffOptions, TestKind,
};
use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let d: usize = a[1].parse().unwrap();
    let n: usize = a[2].parse().unwrap();
    let reps: usize = a[3].parse().unwrap();
    let us: f64 = a[4].parse().unwrap();
    let rmax: f64 = a[5].parse().unwrap();
    let shift: f64 = a[6].parse().unwrap();
    let same_data = a.get(7).map(|s| s == "seeds").unwrap_or(false);
    let mut ridges = vec![1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0];
    let mut r = 10.0;
    while r <= rmax {
        ridges.push(r);
        r *= 10.0;
    }
    for rep in 0..reps {
        let ds = if same_data { 0 } else { rep as u64 };
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1000 + ds);
        let x0 = Array2::from_shape_fn((n, d), |_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            z
        });
        let m = shift / (d as f64).sqrt();
        let x1 = Array2::from_shape_fn((n, d), |_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            z + m
        });
        let o = EstimateOptions {
            divergence: DivergenceKind::TMid,
            critic: CriticKind::Rff(RffOptions {
                undersmooth: Some(us),
                ridges: ridges.clone(),
                ..RffOptions::default()
            }),
            test: if std::env::var("PROBE_TEST").is_ok_and(|v| v == "1") {
                TestKind::SignFlip
            } else {
                TestKind::None
            },
            seed: rep as u64,
            ..EstimateOptions::default()
        };
        let t = std::time::Instant::now();
        let r = estimate(x0.view(), x1.view(), &o).unwrap();
        let ch: Vec<String> = r
            .critic_choices
            .iter()
            .map(|c| {
                format!(
                    "l{}r{}mse{:.1}",
                    c.bandwidth.unwrap_or(0.0),
                    c.ridge.unwrap_or(0.0),
                    c.cv_mse
                )
            })
            .collect();
        println!(
            "{rep} est {:.4} se {:.4} sec {:.4} {:?} {} {:.0}s p {}",
            r.estimate,
            r.std_error,
            r.std_error_conditional,
            r.se_method,
            ch.join(","),
            t.elapsed().as_secs_f64(),
            r.p_value.map_or("-".into(), |p| format!("{p:.4}"))
        );
    }
}
