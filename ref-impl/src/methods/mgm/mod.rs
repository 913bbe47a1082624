//! Algorithm 1 of the paper (App. C; Algorithm 2 is its Python sketch): **the** one
//! implementation of the MGM losses and of one training step, shared by everything that trains
//! (toy and image runs, the critic checks, the held-out estimate).
//!
//! For a generator `G_θ` (`x0 = G_θ(z)`) and a displacement-field model `f_ψ` (the "field";
//! Algorithm 2 also calls it the critic, and the logs, the `--critic-sigma` option and the
//! `critic-check` command keep that word for its loss, its noise and its check):
//!
//! 1. **Field step** on a fresh batch: `x0 = G(z)` with the gradient stopped, then
//!    `x̃_t` by [`observe`] and the regression loss [`field_loss`]
//!    `L_ψ = mean_n ‖f_ψ(x̃_t, t) − (x1 − x0)‖²` (target stopped); one Adam step on `ψ`.
//! 2. **Generator step** on another fresh batch: `x0 = G(z)` with gradients, `x̃_t` again, and
//!    [`generator_loss`] `L_θ = mean_n [2⟨f_ψ(x̃_t, t), x1 − x0⟩ − ‖f_ψ(x̃_t, t)‖²]` with `ψ`
//!    frozen; gradients reach `θ` through `x0` in the target **and** through `x̃_t` inside
//!    `f_ψ`; one Adam step on `θ`.
//!
//! Both optimizers are Adam with `β1 = 0` and otherwise default settings (App. B).
//!
//! **Observation** (Eq. 7): `t` from the variant's time law, `b ~ Bernoulli(½)`,
//! `ε ~ N(0, I)`; `x̃_t = I_t(x0, x1) + σ_t ε` if `b = 0` and `I_{1−t}(x0, x1) + σ_{1−t} ε` if
//! `b = 1`, with the **same** `ε` for both branches. The coefficients `(α, β, σ_t)` of each
//! branch come from the core crate's [`StochasticInterpolant::branch`], so any symmetric
//! interpolant it accepts (linear, trigonometric, custom) is trained with exactly the
//! semantics the exact numerics use; the paper's choice is linear with
//! `σ_t = sqrt(σ·t(1−t))` (§5.1).
//!
//! **Variants** (App. C, [`Variant`]): `mgm` (flipped, `t ~ U[0, ½]`), `midpoint` (`t = ½`)
//! and `naive` (no flip, `t ~ U[0, 1]`, Eq. 3). **Noise** (Table 1b/1c): `σ` is used when
//! updating the generator and `σ'` when updating the field; Table 1b sets both to `σ`,
//! Table 1c uses `σ = 0` with a field-only `σ' > 0`.
//!
//! **Shapes.** Nothing here assumes a data shape: `x0`, `x1`, `ε` and `x̃_t` are `[N, ...]`
//! (`[N, D]` for toys, `[N, C, H, W]` for images); `t` is `[N]` and is broadcast as
//! `[N, 1, ..., 1]`. Losses sum over all non-batch dimensions and average over the batch, as in
//! Algorithm 2.
//!
//! | module | what |
//! |---|---|
//! | [`objective`] | the observation (Eq. 6–7), the two losses (Eq. 10) and one update of either network |
//! | [`trainer`] | a generator and a field alternated 1:1 (Algorithm 1; `n` field steps as an option), with the EMA |
//! | [`health`] | warnings from a run's own losses: negative held-out `J`, a growing critic loss |
//! | [`method`] | MGM as a training method of the one loop, with its checkpoints; the [`method::Setting`] of toys and images |
//! | [`toy`] | the toy setting: MLPs, libtorch's Adam, one torch stream |
//! | [`image`] | the image setting: EDM networks from the warmup, per-step seeds, exact resume |

pub mod health;
pub mod image;
pub mod method;
pub mod objective;
pub mod toy;
pub mod trainer;

pub use objective::{
    field_loss, generator_loss, observe, sample_times, Draw, FieldUpdate, GeneratorUpdate, Mgm,
    MgmConfig, SampleStats, Side, StepLosses, Variant,
};
pub use trainer::{LossLine, MgmTrainer, LOSS_TITLES};
