//! The cost of a Jacobian-vector product (`midpoint_train::train::jvp`, double backward)
//! through EDM's `ddpm++` network, against a plain forward pass and a forward + backward
//! pass: what a flow-map loss with a derivative inside pays per step (docs/performance.md,
//! "Flow maps: the cost of a JVP").
//!
//! `cargo run --release -p midpoint-train --example jvp_cost -- [ARCH] [BATCH] [REPS]`
//! (default `tiny 16 7`; CPU, or CUDA where available). Prints the median seconds of each
//! kind of pass, for both JVP routes, and the ratios.
use midpoint_train::nets::edm::{SongUNet, UNetConfig};
use midpoint_train::train::jvp::{jvp, JvpRoute};
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let arch = a.get(1).map_or("tiny", String::as_str);
    let batch: i64 = a.get(2).map_or(Ok(16), |s| s.parse())?;
    let reps: usize = a.get(3).map_or(Ok(7), |s| s.parse())?;
    let device = Device::cuda_if_available();
    let config = UNetConfig::named(arch)?;
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let net = SongUNet::new(&vs.root(), &config)?;
    let r = config.img_resolution;
    let o = (Kind::Float, device);
    let x = Tensor::randn([batch, config.img_channels, r, r], o);
    let c = Tensor::rand([batch], o);
    let vx = Tensor::randn_like(&x);
    let vc = c.ones_like();
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let f = |x: &Tensor, c: &Tensor| net.forward(x, c, None, false);
    let vars = vs.trainable_variables();
    let time = |work: &dyn Fn()| -> f64 {
        work(); // warm-up
        sync();
        median(
            (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    work();
                    sync();
                    t.elapsed().as_secs_f64()
                })
                .collect(),
        )
    };
    let forward = time(&|| {
        let _ = f(&x, &c);
    });
    let backward = time(&|| {
        let y = f(&x, &c);
        let _ = Tensor::run_backward(&[y.square().mean(None)], &vars, false, false);
    });
    let mut rows = vec![
        ("forward".to_string(), forward),
        ("forward + backward".into(), backward),
    ];
    for route in [JvpRoute::ForwardMode, JvpRoute::DoubleBackward] {
        let jvp_x = time(&|| {
            let _ = jvp(route, |p| f(&p[0], &c), &[&x], &[&vx]).unwrap();
        });
        let jvp_t = time(&|| {
            let _ = jvp(route, |p| f(&x, &p[0]), &[&c], &[&vc]).unwrap();
        });
        let jvp_train = time(&|| {
            let (y, jv) = jvp(route, |p| f(&x, &p[0]), &[&c], &[&vc]).unwrap();
            let loss = y.square().mean(None) + jv.square().mean(None);
            let _ = Tensor::run_backward(&[loss], &vars, false, false);
        });
        rows.push((format!("{route:?}: JVP along x (value)"), jvp_x));
        rows.push((
            format!("{route:?}: JVP along the noise input (value)"),
            jvp_t,
        ));
        rows.push((
            format!("{route:?}: JVP along the noise input + backward"),
            jvp_train,
        ));
    }
    println!(
        "{arch}, batch {batch}, {device:?}, {} threads, median of {reps}",
        tch::get_num_threads()
    );
    for (name, s) in rows {
        println!(
            "{name:<56} {:>9.4} s  {:>5.2}x forward  {:>5.2}x forward+backward",
            s,
            s / forward,
            s / backward
        );
    }
    Ok(())
}
