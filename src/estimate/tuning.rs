//! What both critics of Prop. 3.3 (random features, [`super::rff`], and nearest neighbours,
//! [`super::knn`]) are tuned on: the draws of the tuning subset ([`TuneData`]), and the
//! standardization of the inputs `(x̃, t)` fitted on them ([`Standardizer`]), which depends on
//! `X̃_t` only, never on the sign of `Δ` (the sign-flip test of Prop. 3.2 relies on that).

/// Standardization of the critic inputs `(x̃, t)`.
#[derive(Debug, Clone)]
pub struct Standardizer {
    /// Means of the `d + 1` inputs.
    pub mean: Vec<f64>,
    /// `1/sd` of the inputs (0 for a constant input).
    pub inv_sd: Vec<f64>,
}

impl Standardizer {
    /// From rows `xt` (`rows × d`, row-major) and times `t`.
    pub fn fit(xt: &[f64], t: &[f64], d: usize) -> Standardizer {
        let rows = t.len();
        let p = d + 1;
        let mut mean = vec![0.0; p];
        let mut m2 = vec![0.0; p];
        for r in 0..rows {
            let n = (r + 1) as f64;
            for j in 0..p {
                let v = if j < d { xt[r * d + j] } else { t[r] };
                let delta = v - mean[j];
                mean[j] += delta / n;
                m2[j] += delta * (v - mean[j]);
            }
        }
        let inv_sd = m2
            .iter()
            .map(|&s| {
                let sd = if rows > 1 {
                    (s / (rows - 1) as f64).sqrt()
                } else {
                    0.0
                };
                if sd > 1e-12 * (1.0 + mean.iter().fold(0.0f64, |a, b| a.max(b.abs()))) {
                    1.0 / sd
                } else {
                    0.0
                }
            })
            .collect();
        Standardizer { mean, inv_sd }
    }

    /// Standardized input `j` of row `r`.
    #[inline]
    pub fn apply(&self, xt: &[f64], t: f64, out: &mut [f64]) {
        let d = xt.len();
        for j in 0..d {
            out[j] = (xt[j] - self.mean[j]) * self.inv_sd[j];
        }
        out[d] = (t - self.mean[d]) * self.inv_sd[d];
    }
}

/// Tuning draws: rows of `X̃_t`, times, per-pair `Δ`, `r` rows per pair.
#[derive(Debug, Clone, Default)]
pub struct TuneData {
    /// `X̃_t` rows, row-major.
    pub xt: Vec<f64>,
    /// Times.
    pub t: Vec<f64>,
    /// `Δ` per pair, row-major.
    pub delta: Vec<f64>,
}

impl TuneData {
    /// Keeps every other pair starting at `parity` (0 or 1).
    pub fn half(&self, parity: usize, d: usize, r: usize) -> TuneData {
        let pairs = self.delta.len() / d;
        let mut out = TuneData::default();
        for i in (parity..pairs).step_by(2) {
            out.delta.extend_from_slice(&self.delta[i * d..(i + 1) * d]);
            out.xt
                .extend_from_slice(&self.xt[i * r * d..(i + 1) * r * d]);
            out.t.extend_from_slice(&self.t[i * r..(i + 1) * r]);
        }
        out
    }
}
