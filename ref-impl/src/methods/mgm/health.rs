//! Warnings for an MGM run that is going wrong, from its own losses (issue: a GPU run whose
//! critic loss grew 37× while nothing said so).
//!
//! Two signals, each read over a window of the last [`WINDOW`] steps:
//!
//! * **Negative held-out `J`.** The generator loss `L_θ` is computed on a batch the field has
//!   not seen, so it is a held-out value of Prop. 3.3's `J(f_ψ) = D − E‖f_ψ − m̃_t‖²`, which is
//!   ≥ 0 for the zero field. A window mean below zero by more than [`Z`] standard errors says
//!   the field is worse than `f = 0`: the generator is then descending noise.
//! * **Growing critic loss.** `L_ψ` measures how far the field is from the displacements; a
//!   window mean above [`GROWTH`] × the mean of the run's first [`START`] steps says the field is
//!   losing track of the generator (or the generator's samples are drifting away; the
//!   message gives `L_ψ / E‖x1 − x0‖²` to tell the two apart).

use super::StepLosses;

/// Steps per window.
pub const WINDOW: usize = 200;
/// Standard errors below zero that count as negative.
pub const Z: f64 = 4.0;
/// Growth of the critic loss that counts as growing.
pub const GROWTH: f64 = 10.0;
/// Steps that define the start of a run (a blow-up within the first window must not hide in
/// the baseline: a toy run at lr 1e-2 went from 3.7 to 3e16 within 250 steps).
pub const START: usize = 20;

fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, (var / n).sqrt())
}

/// The first warning that `losses` (consecutive steps, oldest first) call for, as
/// `(kind, line)`; `None` for a healthy run or fewer than [`WINDOW`] steps.
pub fn warning(losses: &[StepLosses]) -> Option<(&'static str, String)> {
    if losses.len() < WINDOW {
        return None;
    }
    let last = &losses[losses.len() - WINDOW..];
    let (j, se) = mean_se(&last.iter().map(|l| l.generator).collect::<Vec<_>>());
    if j < -Z * se {
        return Some((
            "negative-j",
            format!(
                "held-out J = {j:.4} ± {se:.4} over the last {WINDOW} steps is below 0: the field is worse than f = 0 (Prop. 3.3), so the generator follows noise; lower the learning rates or add critic steps (--critic-steps)"
            ),
        ));
    }
    let critic = |w: &[StepLosses]| w.iter().map(|l| l.critic).sum::<f64>() / w.len() as f64;
    let (start, now) = (critic(&losses[..START]), critic(last));
    if now > GROWTH * start {
        let rel = last.iter().map(|l| l.critic_rel).sum::<f64>() / WINDOW as f64;
        return Some((
            "critic-growth",
            format!(
                "critic loss grew {:.0}× (from {start:.4} to {now:.4}; L_ψ / E‖x1 − x0‖² = {rel:.3}, 1 is the zero field): the field is losing track of the generator",
                now / start
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(critic: f64, generator: f64) -> StepLosses {
        StepLosses {
            critic,
            generator,
            critic_rel: 0.5,
            grad_critic: 1.0,
            grad_generator: 1.0,
            raw_mean: 0.0,
            raw_std: 1.0,
            raw_outside: 0.0,
        }
    }

    #[test]
    fn healthy_short_negative_and_growing_runs() {
        // Alternating J of ±0.1 around +0.01: healthy.
        let ok: Vec<_> = (0..400)
            .map(|i| step(1.0, 0.01 + if i % 2 == 0 { 0.1 } else { -0.1 }))
            .collect();
        assert_eq!(warning(&ok), None);
        assert_eq!(warning(&ok[..WINDOW - 1]), None);
        // Mean −0.05 with spread 0.1 over 200 steps: 7 SE below 0.
        let neg: Vec<_> = (0..400)
            .map(|i| step(1.0, -0.05 + if i % 2 == 0 { 0.1 } else { -0.1 }))
            .collect();
        assert_eq!(warning(&neg).map(|w| w.0), Some("negative-j"));
        // Critic loss from 1 to 11 (> 10×) with J fine.
        let grow: Vec<_> = (0..400)
            .map(|i| step(if i < 200 { 1.0 } else { 11.0 }, 0.1))
            .collect();
        assert_eq!(warning(&grow).map(|w| w.0), Some("critic-growth"));
        // A blow-up at step 50, inside the first window, is still seen.
        let early: Vec<_> = (0..200)
            .map(|i| step(if i < 50 { 1.0 } else { 1e6 }, 0.1))
            .collect();
        assert_eq!(warning(&early).map(|w| w.0), Some("critic-growth"));
        let almost: Vec<_> = (0..400)
            .map(|i| step(if i < 200 { 1.0 } else { 9.0 }, 0.1))
            .collect();
        assert_eq!(warning(&almost), None);
    }
}
