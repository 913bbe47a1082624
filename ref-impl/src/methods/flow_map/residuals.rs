//! The residual of every flow-map loss, per sample, as written out and corrected in
//! `../shared/notes/flow-maps.md` and checked by the Gaussian oracle (`tests/flow_map_oracle.rs`):
//! each vanishes at the exact flow map (the two regressions on `İ_t` at their conditional
//! mean). A loss is the batch mean of the squared norm of its residual(s).
//!
//! | function | loss | paper |
//! |---|---|---|
//! | [`diagonal`] | flow matching on the diagonal, the velocity teacher | [FMM] eq. 3.14; [SD] eq. 3 |
//! | [`lagrangian`] | LSD (target `v_{t,t}`), LMD (target a teacher `b_t`) | [SD] eq. 13; [FMM] Cor. 3.4 |
//! | [`eulerian`] | ESD (tangent `v_{s,s}(I_s)`), EMD (tangent `b_s(I_s)`) | [SD] eq. 14 corrected; [FMM] eq. 3.9 |
//! | [`semigroup`] | PSD-M, PSD-U (rescaled) | [SD] eq. 23 |
//! | [`fmm`] | direct flow map matching | [FMM] eq. 3.15 |
//! | [`progressive`] | PFMM from a `K`-step map | [FMM] eq. 3.16, grid corrected |
//!
//! Times are `[N]`, points `[N, ...]`. Derivatives inside a residual go through
//! [`crate::train::jvp`] on either route; every residual stays differentiable in the
//! parameters of whatever `v` closes over.

use super::map::{map, per_sample, TwoTime, Velocity};
use crate::train::jvp::{jvp, JvpRoute};
use tch::{TchError, Tensor};

/// `v_{t,t}(I_t) − İ_t`: its mean square is minimized by `v_{t,t} = b_t` and equals
/// `E|İ_t|² − E|b_t(I_t)|²` there.
pub fn diagonal(v: &dyn TwoTime, i_t: &Tensor, i_dot: &Tensor, t: &Tensor) -> Tensor {
    v.v(i_t, t, t) - i_dot
}

/// `∂_t X_{s,t}(x) − b_t(X_{s,t}(x))` at `x = I_s`, the derivative in the map's second time slot.
/// `b` is the model's own diagonal (LSD) or a frozen teacher (LMD); `stop_gradient` detaches
/// the whole target term ([SD] §3's "convexified" LSD; LMD "as in distillation").
pub fn lagrangian(
    v: &dyn TwoTime,
    b: &dyn Velocity,
    x: &Tensor,
    s: &Tensor,
    t: &Tensor,
    stop_gradient: bool,
    route: JvpRoute,
) -> Result<Tensor, TchError> {
    let ones = t.ones_like();
    let (x_st, d_t) = jvp(route, |p| map(v, x, s, &p[0]), &[t], &[&ones])?;
    let target = b.b(&x_st, t);
    let target = if stop_gradient {
        target.detach()
    } else {
        target
    };
    Ok(d_t - target)
}

/// `∂_s X_{s,t}(x) + ∇_x X_{s,t}(x)·a` at `x = I_s`: one JVP along `(a, 1)` in `(x, s)`. The
/// tangent must be the velocity at the *first* time, `a = v_{s,s}(I_s)` (ESD) or `b_s(I_s)`
/// (EMD); [SD] eq. 14 and [FMM] Alg. 2 print `t` there, which leaves a residual at the exact map.
pub fn eulerian(
    v: &dyn TwoTime,
    x: &Tensor,
    s: &Tensor,
    t: &Tensor,
    a: &Tensor,
    route: JvpRoute,
) -> Result<Tensor, TchError> {
    let ones = s.ones_like();
    let (_, d) = jvp(route, |p| map(v, &p[0], &p[1], t), &[x, s], &[a, &ones])?;
    Ok(d)
}

/// `v_{s,t}(x) − [(1−γ)·v_{s,u}(x) + γ·v_{u,t}(X_{s,u}(x))]` with `u = γs + (1−γ)t`: the
/// semigroup residual `X_{s,t} − X_{u,t}∘X_{s,u}` divided by `t − s` ([SD] eq. 23; its square is
/// eq. 15 over `(t − s)²`). With `stop_gradient` (the paper's checker runs) the bracket, the
/// two-jump teacher, is detached.
pub fn semigroup(
    v: &dyn TwoTime,
    x: &Tensor,
    s: &Tensor,
    t: &Tensor,
    gamma: &Tensor,
    stop_gradient: bool,
) -> Tensor {
    semigroup_with_teacher(v, v, x, s, t, gamma, stop_gradient)
}

/// [`semigroup`] with the two-jump target built from `teacher` (the same weights without
/// dropout, in training).
pub fn semigroup_with_teacher(
    v: &dyn TwoTime,
    teacher: &dyn TwoTime,
    x: &Tensor,
    s: &Tensor,
    t: &Tensor,
    gamma: &Tensor,
    stop_gradient: bool,
) -> Tensor {
    let u = gamma * s + (1.0 - gamma) * t;
    let v_su = teacher.v(x, s, &u);
    let y = x + per_sample(&(&u - s), x) * &v_su;
    let g = per_sample(gamma, x);
    let target: Tensor = (1.0 - &g) * v_su + g * teacher.v(&y, &u, t);
    let target = if stop_gradient {
        target.detach()
    } else {
        target
    };
    v.v(x, s, t) - target
}

/// Direct flow map matching at `(s, t)` on `(I_t, İ_t)`: with `y = X_{t,s}(I_t)` (the map run
/// backward), `(∂_t X_{s,t}(y) − İ_t, X_{s,t}(y) − I_t)`. The derivative is the partial in the
/// outer map's second slot with `y` held fixed (its own tensor of `t`), not the total
/// derivative; gradients still reach the parameters through `y`.
pub fn fmm(
    v: &dyn TwoTime,
    i_t: &Tensor,
    i_dot: &Tensor,
    s: &Tensor,
    t: &Tensor,
    route: JvpRoute,
) -> Result<(Tensor, Tensor), TchError> {
    let y = map(v, i_t, t, s);
    let ones = t.ones_like();
    let (out, d_t) = jvp(route, |p| map(v, &y, s, &p[0]), &[t], &[&ones])?;
    Ok((d_t - i_dot, out - i_t))
}

/// `X̌_{s,t}(x) − (X_{t_{K−1},t_K} ∘ … ∘ X_{t_0,t_1})(x)` with the teacher's `K` steps on
/// `t_k = s + k(t − s)/K` (the printed grid lacks the `/K`); the teacher is not differentiated.
pub fn progressive(
    student: &dyn TwoTime,
    teacher: &dyn TwoTime,
    x: &Tensor,
    s: &Tensor,
    t: &Tensor,
    k: usize,
) -> Tensor {
    let target = tch::no_grad(|| {
        (0..k).fold(x.shallow_clone(), |y, j| {
            let a = s + (t - s) * (j as f64 / k as f64);
            let b = s + (t - s) * ((j + 1) as f64 / k as f64);
            map(teacher, &y, &a, &b)
        })
    });
    map(student, x, s, t) - target
}

/// The batch mean of `|r|²` summed over each sample's coordinates.
pub fn mean_square(r: &Tensor) -> Tensor {
    r.square()
        .flatten(1, -1)
        .sum_dim_intlist([1].as_slice(), false, r.kind())
        .mean(r.kind())
}
