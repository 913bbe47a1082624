//! Target distributions for `midpoint-train toy`: the 2-D toy sets of the flow-matching and
//! continuous-normalizing-flow literature (scaled as in FFJORD's `toy_data.py`), and any law
//! the core crate reads from JSON.
//!
//! | name | sample (u ~ U[0,1], n ~ N(0,1), all independent) | scale |
//! |---|---|---|
//! | `swiss-roll` | `s = 1.5π(1 + 2u)`, `(s cos s + n, s sin s + n') / 5` (scikit-learn's `make_swiss_roll`, noise 1, coordinates x and z) | about ±3 |
//! | `8gaussians` | `(4·c_k + 0.5·n) / 1.414`, `c_k` the 8 unit vectors at angles `kπ/4`, `k` uniform | about ±3 |
//! | `checkerboard` | `x = 4u − 2`, `y = u' − 2·bit + (⌊x⌋ mod 2)`, returns `2·(x, y)` (8 filled squares of side 2) | ±4 |
//! | `moons` | upper moon `(cos θ, sin θ)` or lower moon `(1 − cos θ, ½ − sin θ)` with `θ ~ U[0, π]`, plus `N(0, 0.1²)` noise, then `2·(x, y) + (−1, −0.2)` (scikit-learn's `make_moons`, random angles instead of an even grid) | about ±3 |
//! | `law:FILE.json` | the core crate's [`midpoint::io::read_law`] and [`midpoint::Law::sample`] | as given |

use crate::error::TrainError;
use midpoint::Law;
use ndarray::Array2;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use std::f64::consts::{FRAC_1_SQRT_2, PI};
use std::path::Path;

/// A target distribution.
#[derive(Debug, Clone)]
pub enum Target {
    /// Swiss roll.
    SwissRoll,
    /// Eight Gaussians on a circle.
    EightGaussians,
    /// Checkerboard.
    Checkerboard,
    /// Two moons.
    Moons,
    /// A Gaussian or discrete law from a JSON file.
    Law {
        /// The file it came from (for reports).
        path: String,
        /// The law.
        law: Law,
    },
}

impl Target {
    /// Parses `swiss-roll`, `8gaussians`, `checkerboard`, `moons` or `law:FILE.json` (reading
    /// the file).
    pub fn parse(spec: &str) -> Result<Self, TrainError> {
        match spec {
            "swiss-roll" | "swissroll" => Ok(Target::SwissRoll),
            "8gaussians" => Ok(Target::EightGaussians),
            "checkerboard" => Ok(Target::Checkerboard),
            "moons" => Ok(Target::Moons),
            other => match other.strip_prefix("law:") {
                Some(path) => Ok(Target::Law {
                    path: path.to_string(),
                    law: midpoint::io::read_law(Path::new(path))?,
                }),
                None => Err(TrainError::InvalidOption(format!(
                    "unknown data {other:?} (expected swiss-roll, 8gaussians, checkerboard, moons or law:FILE.json)"
                ))),
            },
        }
    }

    /// Name for reports.
    pub fn name(&self) -> String {
        match self {
            Target::SwissRoll => "swiss-roll".into(),
            Target::EightGaussians => "8gaussians".into(),
            Target::Checkerboard => "checkerboard".into(),
            Target::Moons => "moons".into(),
            Target::Law { path, .. } => format!("law:{path}"),
        }
    }

    /// Dimension of a sample.
    pub fn dim(&self) -> usize {
        match self {
            Target::Law { law, .. } => law.dim(),
            _ => 2,
        }
    }

    /// The law, when the target is one.
    pub fn law(&self) -> Option<&Law> {
        match self {
            Target::Law { law, .. } => Some(law),
            _ => None,
        }
    }

    /// `n ≥ 1` independent samples, one per row.
    pub fn sample<R: Rng>(&self, n: usize, rng: &mut R) -> Result<Array2<f64>, TrainError> {
        if n == 0 {
            return Err(TrainError::InvalidOption("asked for 0 samples".into()));
        }
        if let Target::Law { law, .. } = self {
            return Ok(law.sample(n, rng)?);
        }
        let mut out = Array2::zeros((n, 2));
        for mut row in out.rows_mut() {
            let (x, y) = self.sample_point(rng);
            row[0] = x;
            row[1] = y;
        }
        Ok(out)
    }

    fn sample_point<R: Rng>(&self, rng: &mut R) -> (f64, f64) {
        match self {
            Target::SwissRoll => {
                let s = 1.5 * PI * (1.0 + 2.0 * rng.random::<f64>());
                let (nx, ny) = (normal(rng), normal(rng));
                ((s * s.cos() + nx) / 5.0, (s * s.sin() + ny) / 5.0)
            }
            Target::EightGaussians => {
                let k = rng.random_range(0..8u32);
                let (s, c) = (f64::from(k) * PI / 4.0).sin_cos();
                // Round to the exact unit vectors FFJORD lists ((1,0), (1/√2, 1/√2), ...).
                let round = |v: f64| {
                    if v.abs() < 1e-12 {
                        0.0
                    } else if (v.abs() - 1.0).abs() < 1e-12 {
                        v.signum()
                    } else {
                        v.signum() * FRAC_1_SQRT_2
                    }
                };
                let (nx, ny) = (normal(rng), normal(rng));
                (
                    (4.0 * round(c) + 0.5 * nx) / 1.414,
                    (4.0 * round(s) + 0.5 * ny) / 1.414,
                )
            }
            Target::Checkerboard => {
                let x = 4.0 * rng.random::<f64>() - 2.0;
                let bit = f64::from(u8::from(rng.random::<bool>()));
                let y = rng.random::<f64>() - 2.0 * bit + x.floor().rem_euclid(2.0);
                (2.0 * x, 2.0 * y)
            }
            Target::Moons => {
                let theta = PI * rng.random::<f64>();
                let (s, c) = theta.sin_cos();
                let (x, y) = if rng.random::<bool>() {
                    (c, s)
                } else {
                    (1.0 - c, 0.5 - s)
                };
                let (nx, ny) = (normal(rng), normal(rng));
                (2.0 * (x + 0.1 * nx) - 1.0, 2.0 * (y + 0.1 * ny) - 0.2)
            }
            Target::Law { .. } => unreachable!("laws are sampled in bulk"),
        }
    }
}

fn normal<R: Rng>(rng: &mut R) -> f64 {
    StandardNormal.sample(rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn samples(t: &Target) -> Array2<f64> {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        t.sample(100_000, &mut rng).unwrap()
    }

    #[test]
    fn toy_moments_match_their_definitions() {
        // Means and second moments derived by hand from each definition; 100k samples, each
        // moment's SE is below 0.02, so 6 SE = 0.12 bounds false failures near 2e-9.
        // 8 Gaussians: mean 0, E x² = (16·½ + 0.25)/1.414² (E c_x² = ½ over the 8 centers).
        let g = samples(&Target::EightGaussians);
        let ex2 = g.column(0).mapv(|v| v * v).mean().unwrap();
        assert!((ex2 - 8.25 / 1.414f64.powi(2)).abs() < 0.12, "{ex2}");
        assert!(g.column(1).mean().unwrap().abs() < 0.05);
        // Checkerboard: x = 2·U[−2, 2] so E x = 0 and E x² = 4·4/3; y = 2·(u − 2·bit + ⌊x⌋ mod 2)
        // has E y = 2·(½ − 1 + ½) = 0.
        let c = samples(&Target::Checkerboard);
        let ex2 = c.column(0).mapv(|v| v * v).mean().unwrap();
        assert!((ex2 - 16.0 / 3.0).abs() < 0.12, "{ex2}");
        assert!(c.column(1).mean().unwrap().abs() < 0.05);
        // Every checkerboard point lies in a filled square: ⌊x/2⌋ + ⌊y/2⌋ is even.
        assert!(c
            .rows()
            .into_iter()
            .all(|r| ((r[0] / 2.0).floor() + (r[1] / 2.0).floor()).rem_euclid(2.0) == 0.0));
        // Moons: E x = 2·½(E cos θ + 1 − E cos θ) − 1 = 0 with E cos θ = 0;
        // E y = 2·½(E sin θ + ½ − E sin θ) − 0.2 = 0.3.
        let m = samples(&Target::Moons);
        assert!(m.column(0).mean().unwrap().abs() < 0.05);
        assert!((m.column(1).mean().unwrap() - 0.3).abs() < 0.05);
        // Swiss roll: 5·|(x, y)| = |s·(cos s, sin s) + noise| ∈ [1.5π − |noise|, 4.5π + |noise|];
        // P(|noise| > 8) = e^{−32} per point for 2-D unit Gaussian noise.
        let s = samples(&Target::SwissRoll);
        let r: Vec<f64> = s
            .rows()
            .into_iter()
            .map(|r| 5.0 * (r[0] * r[0] + r[1] * r[1]).sqrt())
            .collect();
        let inside = r
            .iter()
            .filter(|&&r| r > 1.5 * PI - 8.0 && r < 4.5 * PI + 8.0)
            .count();
        assert_eq!(inside, r.len());
        // E s = 3π; the noise adds about E[1/(2s)] ≈ 0.06 to the mean radius; SE ≈ 0.009.
        let mean_r = r.iter().sum::<f64>() / r.len() as f64;
        assert!((mean_r - 3.0 * PI).abs() < 0.15, "{mean_r}");
    }

    #[test]
    fn parse_refuses_unknown_names_and_missing_files() {
        assert!(matches!(
            Target::parse("spiral"),
            Err(TrainError::InvalidOption(_))
        ));
        assert!(matches!(
            Target::parse("law:/nonexistent/x.json"),
            Err(TrainError::Format(_))
        ));
    }
}
