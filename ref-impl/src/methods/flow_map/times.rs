//! Where on `[0, 1]²` the losses are evaluated: `(s, t)` pairs, and `γ` for the semigroup loss.
//! Neither paper gives all of these; what each follows is stated per function.

use tch::{Device, Kind, Tensor};

/// `(s, t)` uniform on the upper triangle `s ≤ t` (`U_od` of [SD] §2.5, by sorting two
/// uniforms), with the gap `t − s` shrunk by `width ∈ [0, 1]`: `s ← t − width·(t − s)`.
/// `width = 0` is the diagonal (flow matching only), `1` is `U_od`; [SD]'s annealing widens it
/// linearly, and does not say how the narrowing is realized (a scaled gap is continuous in the
/// width and keeps `t`'s law fixed).
pub fn upper_triangle(n: i64, width: f64, kind: Kind, device: Device) -> (Tensor, Tensor) {
    let a = Tensor::rand([n], (kind, device));
    let b = Tensor::rand([n], (kind, device));
    let t = a.maximum(&b);
    let s = &t - (&t - a.minimum(&b)) * width.clamp(0.0, 1.0);
    (s, t)
}

/// `t ~ U[0, 1]`, `s ~ U[max(0, t − h), min(1, t + h)]`: the symmetric band `|t − s| ≤ h` of
/// banded FMM ([FMM] §4: `h = 1/K`, `K = 4`); `h ≥ 1` is the full square. Symmetric, as
/// FMM's weight must be, so the network learns both directions.
pub fn band(n: i64, h: f64, kind: Kind, device: Device) -> (Tensor, Tensor) {
    let t = Tensor::rand([n], (kind, device));
    let lo = (&t - h).clamp_min(0.0);
    let hi = (&t + h).clamp_max(1.0);
    let s = &lo + (&hi - &lo) * Tensor::rand([n], (kind, device));
    (s, t)
}

/// How `γ` of the semigroup loss is drawn ([SD] §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GammaLaw {
    /// `γ = 1/2` (PSD-M, the continuous limit of shortcut models).
    Mid,
    /// `γ ~ U[0, 1]` (PSD-U).
    Uniform,
}

/// `n` draws of `γ`.
pub fn gamma(law: GammaLaw, n: i64, kind: Kind, device: Device) -> Tensor {
    match law {
        GammaLaw::Mid => Tensor::full([n], 0.5, (kind, device)),
        GammaLaw::Uniform => Tensor::rand([n], (kind, device)),
    }
}

/// The width of [`upper_triangle`] at step `k`: 0 for `warmup` steps (the diagonal alone),
/// then linear to 1 over `anneal` steps ([SD] §2.5).
pub fn annealed_width(k: u64, warmup: u64, anneal: u64) -> f64 {
    if k < warmup {
        0.0
    } else if anneal == 0 {
        1.0
    } else {
        ((k - warmup) as f64 / anneal as f64).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_samplers_stay_in_their_regions_with_the_stated_laws() {
        tch::manual_seed(0);
        let (k, d) = (Kind::Double, Device::Cpu);
        let n = 200_000;
        let (s, t) = upper_triangle(n, 1.0, k, d);
        assert!(bool::try_from(s.le_tensor(&t).all()).unwrap());
        // U_od: t has density 2t, mean 2/3; s mean 1/3. SE of a uniform-type mean at n = 2e5
        // is about 0.24/447 ≈ 5e-4: tolerance 3e-3 (6 SE; false-failure probability ~1e-9).
        assert!((t.mean(k).double_value(&[]) - 2.0 / 3.0).abs() < 3e-3);
        assert!((s.mean(k).double_value(&[]) - 1.0 / 3.0).abs() < 3e-3);
        let (s, t) = upper_triangle(n, 0.25, k, d);
        let gap = &t - &s;
        assert!(gap.max().double_value(&[]) <= 0.25 + 1e-15);
        assert!(gap.min().double_value(&[]) >= 0.0);
        let (s, t) = upper_triangle(10, 0.0, k, d);
        assert!(s.equal(&t));
        let (s, t) = band(n, 0.25, k, d);
        let gap = (&t - &s).abs();
        assert!(gap.max().double_value(&[]) <= 0.25 + 1e-15);
        assert!(s.min().double_value(&[]) >= 0.0 && s.max().double_value(&[]) <= 1.0);
        // Symmetric: as many pairs with s > t as with s < t (binomial SE 0.5/447 ≈ 1.1e-3).
        let above = s.gt_tensor(&t).to_kind(k).mean(k).double_value(&[]);
        assert!((above - 0.5).abs() < 7e-3, "{above}");
        assert_eq!(annealed_width(5, 10, 10), 0.0);
        assert_eq!(annealed_width(15, 10, 10), 0.5);
        assert_eq!(annealed_width(25, 10, 10), 1.0);
        assert_eq!(annealed_width(10, 10, 0), 1.0);
    }
}
