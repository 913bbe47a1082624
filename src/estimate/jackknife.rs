//! The delete-a-group jackknife standard error of the cross-fitted estimate.
//!
//! The pair terms `Vᵢ` are i.i.d. *given the critics*, so `sd(V)/√N` is the standard error
//! conditional on the critics. It misses how the critics themselves move with the data: the
//! estimate's mean given the critics is `D − ⟨f_A − m, f_B − m⟩`, and that term changes from
//! one training set to the next. Where the critic is far from the field (10-D at `n = 10⁴`)
//! this is a visible part of the spread: the conditional SE was 25% too small there
//! (`docs/two-sample.md`, coverage table).
//!
//! The jackknife sees it because every replicate **refits the critics**: the pairs are cut
//! into `G` groups (each inside one fold and one half, so deleting it changes one critic of
//! every other fold and the held-out terms of its own fold), and the estimate is recomputed
//! `G` times with one group deleted everywhere, as training data and as held-out terms. The
//! RFF critic is ridge regression, so a refit needs only the Gram matrix and the
//! cross-products without the group, `(G_h − G_γ + λP)⁻¹(R_h − R_γ)`, and the held-out sum of
//! fold `k` under any critics `W_A`, `W_B` is `(1/r)(⟨W_A + W_B, Z_k⟩ − tr(W_Aᵀ H_k W_B))` with
//! `H_k = Σ φφᵀ` and `Z_k = Σ φΔᵀ` over the fold's held-out draws: no pass over the data per
//! replicate.
//!
//! With `m_γ` pairs in group `γ` of `N`, `h_γ = N/m_γ`, the pseudo-values
//! `θ̃_γ = h_γ θ̂ − (h_γ − 1) θ̂_(γ)` and `θ_J = G θ̂ − Σ (1 − m_γ/N) θ̂_(γ)`, the variance is
//! (Busing, Meijer & van der Leeden 1999, delete-m_γ jackknife for unequal groups)
//!
//! ```text
//! v_J = (1/G) Σ_γ (θ̃_γ − θ_J)² / (h_γ − 1),
//! ```
//!
//! which for equal groups is the familiar `((G − 1)/G) Σ (θ̂_(γ) − θ̄)²`. For a smooth
//! statistic it agrees with the delta method; for the critic's error term, a product of two
//! independent fits, it errs on the large side (the Efron–Stein inequality), so intervals
//! built on it are conservative rather than too narrow. The interval uses Student's `t` with
//! `G − 1` degrees of freedom, since `v_J` is an average of `G` squared deviations.
//!
//! Hyperparameters (bandwidth, ridge) and the input standardization are held at the values
//! chosen on the tuning pairs, as the sign-flip test holds them.

use faer::Mat;
use rayon::prelude::*;

use super::error::EstimateError;
use super::pairs::Design;
use super::ridge;
use super::warnings::{self, Warning};

/// Jackknife groups (pairs deleted together), at most: about 40 keeps the Student-t
/// quantile of the interval within 3% of the normal one at one Cholesky factorization per
/// group and other fold.
pub(crate) const MAX_GROUPS: usize = 40;
/// Fewest jackknife groups worth running; with fewer the conditional SE is reported.
pub(crate) const MIN_GROUPS: usize = 8;
/// Bytes allowed for the jackknife's per-group Gram and cross-product matrices (1 GiB).
///
/// Why this size: with 256 MiB (Gram matrices only) the jackknife stopped at `d ≈ 1,800`
/// with the default 256 features, and above it the conditional SE, blind to the critics'
/// noise, was reported — two samples of `N(0, I_2000)` gave −1.91 ± 0.88 and, with another
/// seed, +1.42 ± 0.89. 1 GiB keeps it up to `d ≈ 2,700` (default features, two folds); the
/// limit is fixed, not taken from the machine's free memory, so that the number of groups
/// (and so the interval) does not depend on the machine.
pub(crate) const BUDGET: usize = 1 << 30;

/// Jackknife groups for an RFF critic of `m` features in dimension `d` with `kf` folds: as
/// many as [`BUDGET`] pays for, at most [`MAX_GROUPS`]. `Err` with the reason (a warning for
/// the report) when fewer than [`MIN_GROUPS`] fit, or when they would take more than half of
/// the `available` memory.
pub(crate) fn rff_groups(
    m: usize,
    d: usize,
    kf: usize,
    available: Option<u64>,
) -> Result<usize, Warning> {
    // Per group and other fold: its Gram matrix (m × m) and cross-products (m × d).
    let per_group = (m * (m + d) * 8 * (kf - 1)) as u64;
    let affordable = BUDGET as u64 / per_group.max(1);
    if affordable < MIN_GROUPS as u64 {
        return Err(warnings::conditional_se_rff(
            m,
            MIN_GROUPS as u64 * per_group,
            BUDGET as u64,
            "the jackknife's fixed budget",
        ));
    }
    let groups = affordable.min(MAX_GROUPS as u64);
    match available {
        Some(a) if groups * per_group > a / 2 => Err(warnings::conditional_se_rff(
            m,
            groups * per_group,
            a / 2,
            "half the memory available",
        )),
        _ => Ok(groups as usize),
    }
}

/// Groups the jackknife deletes, as ranges of each block's pairs.
#[derive(Debug, Clone)]
pub(crate) struct Groups {
    /// Per block: `(first pair, one past the last, group)` relative to the block's start.
    pub segments: Vec<Vec<(usize, usize, usize)>>,
    /// Per group: its fold.
    pub fold: Vec<usize>,
    /// Per group: the half (critic) whose training data it is outside its fold.
    pub half: Vec<usize>,
    /// Per group: pairs.
    pub pairs: Vec<usize>,
}

impl Groups {
    /// About `target` groups in all, each inside one fold and one half (`half(g)` of its
    /// blocks), with as many pairs as the fold-half's share allows. `target ≤ 2K` gives one
    /// group per fold and half: then the groups only organize the Gram matrices and no
    /// jackknife is run.
    pub fn new(design: &Design, half: impl Fn(usize) -> usize, target: usize) -> Groups {
        let kf = design.folds();
        let total = design.total_pairs().max(1);
        let mut segments = vec![Vec::new(); design.blocks.len()];
        let (mut fold, mut halves, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..kf {
            for h in 0..2 {
                let blocks: Vec<usize> = (0..design.blocks.len())
                    .filter(|&g| design.blocks[g].fold == k && half(g) == h)
                    .collect();
                let size: usize = blocks.iter().map(|&g| design.blocks[g].len()).sum();
                if size == 0 {
                    continue;
                }
                let j =
                    ((target as f64 * size as f64 / total as f64).round() as usize).clamp(1, size);
                let base = fold.len();
                for i in 0..j {
                    fold.push(k);
                    halves.push(h);
                    pairs.push(((i + 1) * size).div_ceil(j) - (i * size).div_ceil(j));
                }
                let mut seen = 0;
                for &g in &blocks {
                    let len = design.blocks[g].len();
                    let mut p = 0;
                    while p < len {
                        let id = (seen + p) * j / size;
                        // Last pair of group `id` (exclusive), relative to the block.
                        let end = ((id + 1) * size).div_ceil(j).saturating_sub(seen).min(len);
                        segments[g].push((p, end, base + id));
                        p = end;
                    }
                    seen += len;
                }
            }
        }
        Groups {
            segments,
            fold,
            half: halves,
            pairs,
        }
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.fold.len()
    }
}

/// What the RFF jackknife needs from the fit.
pub(crate) struct JackknifeParts<'a> {
    pub groups: &'a Groups,
    /// Per fold, each half's Gram matrix (symmetric) and cross-products.
    pub grams: &'a [[Mat<f64>; 2]],
    pub crosses: &'a [[Mat<f64>; 2]],
    /// Per fold `k` and group outside it, the group's Gram (symmetric) and
    /// cross-products in fold `k`'s feature map.
    pub ggram: &'a [Vec<Option<Mat<f64>>>],
    pub gcross: &'a [Vec<Option<Mat<f64>>>],
    /// Per fold, the half critics' weights (and the test critic's).
    pub weights: &'a [[Mat<f64>; 3]],
    pub penalties: &'a [f64],
    pub unpenalized: usize,
}

/// The jackknife standard error of the estimate (see [`jackknife`]).
pub(crate) struct JackknifeSe {
    pub std_error: f64,
    pub groups: usize,
}

/// `Σ` over a fold's held-out pairs of `Vᵢ` when one half critic is refitted to `w` and the
/// other keeps its weights: `(1/r)(⟨W_A + W_B, Z⟩ − tr(W_Aᵀ H W_B))` with `H = Σ φφᵀ` and
/// `Z = Σ φΔᵀ` over the fold's held-out draws. Only one critic changes, so the quadratic
/// term needs `H` times the *other* critic's weights, `Σ φ f_otherᵀ` — accumulated with the
/// held-out terms at `M·d` per draw — and never `H` itself (`M²` per draw).
fn held_out_sum(w: &Mat<f64>, other: &Mat<f64>, h_other: &Mat<f64>, z: &Mat<f64>, r: usize) -> f64 {
    let mut s = 0.0;
    for c in 0..w.ncols() {
        for i in 0..w.nrows() {
            s += (w[(i, c)] + other[(i, c)]) * z[(i, c)] - w[(i, c)] * h_other[(i, c)];
        }
    }
    s / r as f64
}

/// Per fold `k` (held-out draws of fold `k`, its feature map): `Z_k = Σ φΔᵀ`, `H_k W_A` and
/// `H_k W_B` (`H_k = Σ φφᵀ`); per group, the sum of its pairs' `Vᵢ`.
pub(crate) struct HeldOut {
    pub z: Vec<Mat<f64>>,
    pub hw: Vec<[Mat<f64>; 2]>,
    pub group_sum: Vec<f64>,
}

/// The jackknife of the RFF estimate `c·(Σ Vᵢ)/N` (`c = ½` for `tmid`), `r` draws per pair.
pub(crate) fn rff(
    p: &JackknifeParts<'_>,
    held: &HeldOut,
    r: usize,
    c: f64,
) -> Result<JackknifeSe, EstimateError> {
    let g = p.groups;
    let kf = p.grams.len();
    let (z, hw, vsum) = (&held.z, &held.hw, &held.group_sum);
    let mut fold_sum = vec![0.0; kf];
    let mut fold_abs = vec![0.0; kf];
    for (id, s) in vsum.iter().enumerate() {
        fold_sum[g.fold[id]] += s;
        fold_abs[g.fold[id]] += s.abs();
    }
    // The identity every replicate rests on, checked on the full data from either side.
    for k in 0..kf {
        let [wa, wb, _] = &p.weights[k];
        for (w, other, h_other) in [(wa, wb, &hw[k][1]), (wb, wa, &hw[k][0])] {
            let s = held_out_sum(w, other, h_other, &z[k], r);
            if (s - fold_sum[k]).abs() > 1e-7 * (fold_abs[k] + 1.0) {
                return Err(EstimateError::Numerical(format!(
                    "jackknife: fold {k}'s held-out sum from its cross-products is {s}, \
                     but the held-out terms add up to {}",
                    fold_sum[k]
                )));
            }
        }
    }
    let n: usize = g.pairs.iter().sum();
    let replicates: Vec<f64> = (0..g.len())
        .into_par_iter()
        .map(|id| {
            let (k0, h0) = (g.fold[id], g.half[id]);
            let mut total = 0.0;
            for k in 0..kf {
                if k == k0 {
                    total += fold_sum[k] - vsum[id];
                    continue;
                }
                let (Some(gg), Some(gr)) = (&p.ggram[k][id], &p.gcross[k][id]) else {
                    unreachable!("every group outside fold k has its Gram matrix in k's map")
                };
                // G_h − G_γ, both symmetric.
                let mut gm = p.grams[k][h0].clone();
                gm -= gg;
                let mut rm = p.crosses[k][h0].clone();
                rm -= gr;
                let w = ridge::ridge_solve(&gm, p.unpenalized, rm.as_ref(), p.penalties[k])?;
                let other = &p.weights[k][1 - h0];
                total += held_out_sum(&w, other, &hw[k][1 - h0], &z[k], r);
            }
            Ok(c * total / (n - g.pairs[id]) as f64)
        })
        .collect::<Result<_, EstimateError>>()?;
    let theta = c * fold_sum.iter().sum::<f64>() / n as f64;
    let v = variance(theta, &replicates, &g.pairs);
    Ok(JackknifeSe {
        std_error: v.sqrt(),
        groups: g.len(),
    })
}

/// Jackknife variance of `theta` from the delete-a-group replicates `replicates[γ]`
/// (group `γ` with `sizes[γ]` of the `Σ sizes` units deleted); see the module docs.
///
/// ```
/// // The mean of four numbers, deleting one at a time: the textbook s²/n.
/// let x = [1.0, 3.0, 4.0, 8.0];
/// let reps: Vec<f64> = (0..4).map(|i| (16.0 - x[i]) / 3.0).collect();
/// let v = midpoint::estimate::jackknife::variance(4.0, &reps, &[1; 4]);
/// assert!((v - (26.0 / 3.0) / 4.0).abs() < 1e-12);
/// ```
///
pub fn variance(theta: f64, replicates: &[f64], sizes: &[usize]) -> f64 {
    let g = replicates.len() as f64;
    let n: f64 = sizes.iter().map(|&m| m as f64).sum();
    let theta_j = g * theta
        - replicates
            .iter()
            .zip(sizes)
            .map(|(&t, &m)| (1.0 - m as f64 / n) * t)
            .sum::<f64>();
    replicates
        .iter()
        .zip(sizes)
        .map(|(&t, &m)| {
            let h = n / m as f64;
            let pseudo = h * theta - (h - 1.0) * t;
            (pseudo - theta_j).powi(2) / (h - 1.0)
        })
        .sum::<f64>()
        / g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::crossfit;
    use crate::estimate::options::{CriticKind, DivergenceKind, EstimateOptions, RffOptions};
    use ndarray::Array2;

    #[test]
    fn the_jackknife_runs_up_to_the_budget_and_says_why_it_stops() {
        // Would catch the old limit (Gram matrices of 256 MiB: no jackknife from d ≈ 1,800)
        // or a skip without its reason. Default critic (256 features + d + 2 columns), 2 folds.
        let m = |d: usize| 256 + d + 2;
        assert_eq!(rff_groups(m(512), 512, 2, None), Ok(MAX_GROUPS));
        // d = 2048: m (m + d) 8 = 80.3 MB a group, 13 fit in 1 GiB.
        assert_eq!(rff_groups(m(2048), 2048, 2, None), Ok(13));
        // d = 4096: 3 would fit, under MIN_GROUPS.
        let w = rff_groups(m(4096), 4096, 2, None).unwrap_err();
        assert_eq!(w.kind, warnings::WarningKind::ConditionalSe);
        assert!(
            w.message
                .starts_with("no jackknife: with 4354 critic features its refits need"),
            "{w}"
        );
        assert!(
            w.message
                .contains("the jackknife's fixed budget is 1.0 GiB"),
            "{w}"
        );
        // Memory short of twice the groups' matrices: skipped with that reason, not shrunk
        // (the number of groups must not depend on the machine).
        let w = rff_groups(m(2048), 2048, 2, Some(1 << 30)).unwrap_err();
        assert!(
            w.message.contains("half the memory available is 512.0 MiB"),
            "{w}"
        );
    }

    /// For the mean, the delete-one jackknife variance is exactly `s²/n`, and the
    /// delete-a-group one with equal groups is `s_G²/G` of the group means (both textbook
    /// identities); unequal groups reduce to the weighted form. Would catch a wrong factor
    /// (`(G−1)/G`, `1/(h−1)`) in [`variance`].
    #[test]
    fn jackknife_of_the_mean_is_the_textbook_variance() {
        let x = [1.0, 4.0, 2.5, -3.0, 0.5, 7.0];
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let s2 = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let reps: Vec<f64> = (0..x.len())
            .map(|i| (x.iter().sum::<f64>() - x[i]) / (n - 1.0))
            .collect();
        let v = variance(mean, &reps, &[1; 6]);
        assert!((v - s2 / n).abs() < 1e-12, "{v} vs {}", s2 / n);
        // Three groups of two: the variance of the three group means over 3.
        let gm = [2.5, -0.25, 3.75];
        let gmean = gm.iter().sum::<f64>() / 3.0;
        let sg2 = gm.iter().map(|v| (v - gmean).powi(2)).sum::<f64>() / 2.0;
        let reps: Vec<f64> = (0..3)
            .map(|i| (x.iter().sum::<f64>() - x[2 * i] - x[2 * i + 1]) / (n - 2.0))
            .collect();
        let v = variance(mean, &reps, &[2; 3]);
        assert!((v - sg2 / 3.0).abs() < 1e-12, "{v} vs {}", sg2 / 3.0);
        // Unequal groups {1}, {2, 3, 4, 5, 6}: for the mean every pseudo-value is the group
        // mean, so v_J = (1/G) Σ (ḡ_γ − θ_J)² / (h_γ − 1).
        let reps = [(x.iter().sum::<f64>() - x[0]) / (n - 1.0), x[0]];
        let v = variance(mean, &reps, &[1, 5]);
        let gmeans = [x[0], (x.iter().sum::<f64>() - x[0]) / 5.0];
        let theta_j = 2.0 * mean - (1.0 - 1.0 / n) * reps[0] - (1.0 - 5.0 / n) * reps[1];
        let want = ((gmeans[0] - theta_j).powi(2) / (n - 1.0)
            + (gmeans[1] - theta_j).powi(2) / (n / 5.0 - 1.0))
            / 2.0;
        assert!((v - want).abs() < 1e-12, "{v} vs {want}");
    }

    /// Groups cover every pair once, stay inside one fold and half, and are near-equal.
    #[test]
    fn groups_partition_the_pairs() {
        let design = Design::new(1003, 997, 2, 1, 64, 7);
        let half = |g: usize| g % 2;
        let groups = Groups::new(&design, half, 40);
        let mut count = vec![0usize; groups.len()];
        for (g, segs) in groups.segments.iter().enumerate() {
            let b = design.blocks[g];
            let mut p = 0;
            for &(a, e, id) in segs {
                assert_eq!(a, p, "segments are contiguous");
                assert!(e > a);
                assert_eq!((groups.fold[id], groups.half[id]), (b.fold, half(g)));
                count[id] += e - a;
                p = e;
            }
            assert_eq!(p, b.len(), "segments cover the block");
        }
        assert_eq!(count, groups.pairs);
        assert_eq!(count.iter().sum::<usize>(), design.total_pairs());
        assert!((36..=44).contains(&groups.len()), "{} groups", groups.len());
        let (lo, hi) = (count.iter().min().unwrap(), count.iter().max().unwrap());
        assert!(*hi <= *lo + lo / 4 + 1, "sizes {lo}..{hi}");
    }

    /// With an overwhelming ridge every critic is its unpenalized constant, the mean `Δ` of
    /// its training half, and the estimate is a smooth function of group sums of `Δ` that the
    /// test recomputes by hand with each group deleted (critic means and held-out sums alike).
    /// Checks the group bookkeeping, the Gram and cross-product downdates, the held-out sums
    /// from `H·W` and the variance formula against an independent computation. Would catch a
    /// group deleted from the wrong critic or fold, a held-out sum using the refitted critic
    /// on the wrong side, or a group's pairs counted twice.
    #[test]
    fn jackknife_matches_a_hand_computed_one_for_constant_critics() {
        let (n0, n1, d) = (203, 211, 2);
        let x0 = Array2::from_shape_fn((n0, d), |(i, j)| ((i * 7 + j * 3) as f64 * 0.37).sin());
        let x1 = Array2::from_shape_fn((n1, d), |(i, j)| {
            0.4 + ((i * 5 + j * 11) as f64 * 0.53).cos() * (1.0 + j as f64)
        });
        let opts = EstimateOptions {
            divergence: DivergenceKind::Mid,
            critic: CriticKind::Rff(RffOptions {
                ridges: vec![1e12],
                bandwidths: vec![1.0],
                undersmooth: Some(1.0),
                ..RffOptions::default()
            }),
            seed: 3,
            ..EstimateOptions::default()
        };
        let fit =
            crossfit::run(x0.view(), x1.view(), &opts, crossfit::Needs::ALL, &|_| {}).unwrap();
        let jk = fit.jackknife.as_ref().expect("jackknife ran");
        let design = &fit.design;
        assert_eq!(design.draws, 1);
        let groups = Groups::new(design, crossfit::half, MAX_GROUPS);
        assert_eq!(groups.len(), jk.groups);
        // Δ per pair and its group; `gid[fold][pair]`.
        let kf = design.folds();
        let mut gid = vec![vec![usize::MAX; 0]; kf];
        for (k, p) in design.pairs.iter().enumerate() {
            gid[k] = vec![usize::MAX; p.len()];
        }
        for (g, b) in design.blocks.iter().enumerate() {
            for &(a, e, id) in &groups.segments[g] {
                for p in b.start + a..b.start + e {
                    gid[b.fold][p] = id;
                }
            }
        }
        let delta = |k: usize, p: usize| -> Vec<f64> {
            let (i0, i1) = design.pairs[k][p];
            (0..d)
                .map(|c| x1[[i1 as usize, c]] - x0[[i0 as usize, c]])
                .collect()
        };
        // θ with group `skip` deleted (None: all data).
        let theta = |skip: Option<usize>| -> f64 {
            let mut total = 0.0;
            let mut count = 0usize;
            for k in 0..kf {
                // Critic h of fold k: mean Δ over the pairs outside k in half h.
                let mut mean = [vec![0.0; d], vec![0.0; d]];
                let mut cnt = [0usize; 2];
                for k2 in (0..kf).filter(|&k2| k2 != k) {
                    for p in 0..design.pairs[k2].len() {
                        let id = gid[k2][p];
                        if Some(id) == skip {
                            continue;
                        }
                        let h = groups.half[id];
                        for (m, v) in mean[h].iter_mut().zip(delta(k2, p)) {
                            *m += v;
                        }
                        cnt[h] += 1;
                    }
                }
                for h in 0..2 {
                    mean[h].iter_mut().for_each(|m| *m /= cnt[h] as f64);
                }
                for p in 0..design.pairs[k].len() {
                    if Some(gid[k][p]) == skip {
                        continue;
                    }
                    let dl = delta(k, p);
                    let (mut v, mut ab) = (0.0, 0.0);
                    for c in 0..d {
                        v += (mean[0][c] + mean[1][c]) * dl[c];
                        ab += mean[0][c] * mean[1][c];
                    }
                    total += v - ab;
                    count += 1;
                }
            }
            total / count as f64
        };
        let full = theta(None);
        assert!(
            (full - fit.estimate).abs() < 1e-8,
            "{full} vs {}",
            fit.estimate
        );
        let reps: Vec<f64> = (0..groups.len()).map(|id| theta(Some(id))).collect();
        let se = variance(full, &reps, &groups.pairs).sqrt();
        assert!(
            (se - jk.std_error).abs() < 1e-7 * se,
            "hand {se} vs fit {}",
            jk.std_error
        );
        assert!(se > 1e-3, "a non-trivial spread: {se}");
    }
}
