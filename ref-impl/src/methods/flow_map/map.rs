//! The flow map `X_{s,t}(x) = x + (t − s)·v_{s,t}(x)` ([SD] eq. 6; [FMM] eq. 4.1 with
//! `v = f − x`), which is the identity at `s = t` by construction and whose diagonal
//! `v_{t,t} = b_t` is the velocity ([SD] eq. 7), and the samplers: `K` steps of the map, or of
//! an ODE solver on a velocity (the teacher and the "SI" baseline of [FMM] Table 1).

use tch::Tensor;

/// A two-time velocity `v_{s,t}(x)`: `x` `[N, ...]`, `s` and `t` `[N]`, output shaped as `x`.
pub trait TwoTime {
    /// `v_{s,t}(x)`.
    fn v(&self, x: &Tensor, s: &Tensor, t: &Tensor) -> Tensor;
}

impl<F: Fn(&Tensor, &Tensor, &Tensor) -> Tensor> TwoTime for F {
    fn v(&self, x: &Tensor, s: &Tensor, t: &Tensor) -> Tensor {
        self(x, s, t)
    }
}

/// A velocity field `b_t(x)`: `x` `[N, ...]`, `t` `[N]`.
pub trait Velocity {
    /// `b_t(x)`.
    fn b(&self, x: &Tensor, t: &Tensor) -> Tensor;
}

impl<F: Fn(&Tensor, &Tensor) -> Tensor> Velocity for F {
    fn b(&self, x: &Tensor, t: &Tensor) -> Tensor {
        self(x, t)
    }
}

/// The diagonal of a two-time velocity as a velocity, `b_t = v_{t,t}` ([SD] eq. 7).
pub struct Diagonal<'a>(pub &'a dyn TwoTime);

impl Velocity for Diagonal<'_> {
    fn b(&self, x: &Tensor, t: &Tensor) -> Tensor {
        self.0.v(x, t, t)
    }
}

/// `t` `[N]` reshaped to `[N, 1, ..., 1]` to scale the rows of `x`.
pub fn per_sample(t: &Tensor, x: &Tensor) -> Tensor {
    let mut shape = vec![-1i64];
    shape.resize(x.dim(), 1);
    t.reshape(shape)
}

/// `X_{s,t}(x) = x + (t − s)·v_{s,t}(x)`.
pub fn map(v: &dyn TwoTime, x: &Tensor, s: &Tensor, t: &Tensor) -> Tensor {
    x + per_sample(&(t - s), x) * v.v(x, s, t)
}

/// The uniform grid `t_k = k/K`, `k = 0..=K` ([FMM] §1.5 reading; the papers state none).
pub fn uniform_grid(k: usize) -> Vec<f64> {
    (0..=k).map(|i| i as f64 / k.max(1) as f64).collect()
}

fn full(x: &Tensor, t: f64) -> Tensor {
    Tensor::full([x.size()[0]], t, (x.kind(), x.device()))
}

/// `K = grid.len() − 1` steps of the map: `x_{k+1} = X_{t_k, t_{k+1}}(x_k)` from `x_0 = z`.
pub fn sample(v: &dyn TwoTime, z: &Tensor, grid: &[f64]) -> Tensor {
    grid.windows(2).fold(z.shallow_clone(), |x, w| {
        map(v, &x, &full(&x, w[0]), &full(&x, w[1]))
    })
}

/// Euler steps of `ẋ = b_t(x)` on `grid` (one evaluation per step: the "SI" row at `N` steps).
pub fn euler(b: &dyn Velocity, z: &Tensor, grid: &[f64]) -> Tensor {
    grid.windows(2).fold(z.shallow_clone(), |x, w| {
        let h = w[1] - w[0];
        &x + b.b(&x, &full(&x, w[0])) * h
    })
}

/// Classical fourth-order Runge–Kutta steps of `ẋ = b_t(x)` on `grid` (the teacher's ODE map,
/// the reference of a distilled map's error).
pub fn rk4(b: &dyn Velocity, z: &Tensor, grid: &[f64]) -> Tensor {
    grid.windows(2).fold(z.shallow_clone(), |x, w| {
        let (t, h) = (w[0], w[1] - w[0]);
        let k1 = b.b(&x, &full(&x, t));
        let k2 = b.b(&(&x + &k1 * (h / 2.0)), &full(&x, t + h / 2.0));
        let k3 = b.b(&(&x + &k2 * (h / 2.0)), &full(&x, t + h / 2.0));
        let k4 = b.b(&(&x + &k3 * h), &full(&x, t + h));
        &x + (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn the_map_is_the_identity_on_the_diagonal_and_steps_compose() {
        let o = (Kind::Double, Device::Cpu);
        let x = Tensor::randn([5, 3], o);
        let v = |x: &Tensor, s: &Tensor, t: &Tensor| x * per_sample(&(s + t * 2.0), x);
        let s = Tensor::rand([5], o);
        assert!(map(&v, &x, &s, &s).equal(&x));
        // Two steps of sample() are two applications of map().
        let two = sample(&v, &x, &[0.0, 0.25, 1.0]);
        let by_hand = map(
            &v,
            &map(&v, &x, &full(&x, 0.0), &full(&x, 0.25)),
            &full(&x, 0.25),
            &full(&x, 1.0),
        );
        assert!((two - by_hand).abs().max().double_value(&[]) == 0.0);
        assert_eq!(uniform_grid(4), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn rk4_is_fourth_order_and_euler_first() {
        // ẋ = x·t has x(1) = x(0)·e^{1/2}: halving the step cuts RK4's error ~16× and Euler's ~2×.
        let o = (Kind::Double, Device::Cpu);
        let z = Tensor::ones([1, 1], o);
        let b = |x: &Tensor, t: &Tensor| x * per_sample(t, x);
        let exact = 0.5f64.exp();
        let err = |f: &dyn Fn(&[f64]) -> Tensor, k| {
            (f(&uniform_grid(k)).double_value(&[0, 0]) - exact).abs()
        };
        let r = |k| err(&|g| rk4(&b, &z, g), k);
        let e = |k| err(&|g| euler(&b, &z, g), k);
        assert!((r(4) / r(8) - 16.0).abs() < 2.0, "{}", r(4) / r(8));
        assert!((e(64) / e(128) - 2.0).abs() < 0.1, "{}", e(64) / e(128));
    }
}
