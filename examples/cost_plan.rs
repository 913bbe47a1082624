//! The cost plan of `estimate` (`midpoint::estimate::cost`) against the measured time, for
//! docs/performance.md ("estimate: the cost plan"): one line per size with the planned and
//! the measured seconds, in total and per stage (tuning; critics = fitting + held-out terms,
//! which include the jackknife; test).
//!
//! `cargo run --release --example cost_plan -- N:D [N:D ...]` (default test: sign-flip).
use midpoint::estimate::{cost, estimate_with_progress, EstimateOptions, Stage};
use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use std::sync::Mutex;
use std::time::Instant;

fn main() {
    let rate = cost::measure_rate();
    println!("rate {:.2} GFLOP/s", rate / 1e9);
    for spec in std::env::args().skip(1) {
        let (n, d) = spec.split_once(':').expect("N:D");
        let (n, d): (usize, usize) = (n.parse().unwrap(), d.parse().unwrap());
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let mut draw = |shift: f64| {
            Array2::from_shape_fn((n, d), |_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                z + shift
            })
        };
        let (x0, x1) = (draw(0.0), draw(0.1));
        let o = EstimateOptions::default();
        let plan = cost::plan(n, n, d, &o).unwrap().unwrap();
        let secs = plan.seconds(rate);
        // Raw seconds per kind at the full matrix-product rate (to fit EFFICIENCY).
        let raw: Vec<String> = plan
            .flops
            .iter()
            .map(|[s, f]| format!("{:.2}/{:.2}", s / rate, f / rate))
            .collect();
        println!("  raw stream/factor s per stage: {}", raw.join(" "));
        let marks = Mutex::new(Vec::<(Stage, Instant)>::new());
        let t0 = Instant::now();
        estimate_with_progress(x0.view(), x1.view(), &o, &|p| {
            let mut m = marks.lock().unwrap();
            if m.last().is_none_or(|(s, _)| *s != p.stage) {
                m.push((p.stage, Instant::now()));
            }
        })
        .unwrap();
        let total = t0.elapsed().as_secs_f64();
        let m = marks.into_inner().unwrap();
        let at = |s: Stage| {
            m.iter()
                .find(|(x, _)| *x == s)
                .map(|(_, t)| t.duration_since(t0).as_secs_f64())
        };
        let fit = at(Stage::Fitting).unwrap_or(total);
        let test = at(Stage::Testing).unwrap_or(total);
        println!(
            "n {n} d {d} m {} groups {}: planned {:.1} s (tuning {:.1}, critics {:.1}, test {:.1}), measured {:.1} s (tuning {:.1}, critics {:.1}, test {:.1}); ratio {:.2}",
            plan.features,
            plan.jackknife_groups,
            secs.iter().sum::<f64>(),
            secs[0],
            secs[1] + secs[2],
            secs[3],
            total,
            fit,
            test - fit,
            total - test,
            total / secs.iter().sum::<f64>()
        );
    }
}
