//! The RFF critic's passes over the data (notation of [`super`]): the random-feature ridge
//! critics of Prop. 3.3 fitted on the other folds, the held-out terms, the jackknife's parts
//! and the sign-flip test's `Q` (Prop. 3.2).
//!
//! * Tuning per fold, then the feature maps.
//! * **Pass 1** (training side): per critic `k` and jackknife group `γ` outside fold `k`, the
//!   Gram matrix `Σ φ_k φ_kᵀ` and cross-products `Σ φ_k Δᵀ`; per block, `Z_g⁽ᵏ⁾` for `Q`.
//! * The ridge solves: two half critics per fold (the estimate) and the test critic.
//! * **Pass 2** (held-out side): the pair terms `Vᵢ`, `Tᵢ` and the profile; per block `Z_g` in
//!   the own critic's map (for `Q`); per fold `Z_k`, `H_k W_A`, `H_k W_B` (the jackknife).
//!
//! Both passes work in [`Unit`]s: runs of one jackknife group's pairs. A group's draws go
//! through its feature map in one call and into its Gram matrix as one product, where working
//! block by block (a few pairs each at `n = 10³`) meant hundreds of small products, each
//! reading and writing a whole `M × M` partial sum, and a partial Gram matrix per work unit
//! and group that was allocated, filled and added up.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rayon::prelude::*;

use super::context::{half, BlockDraws, Ctx};
use super::fit::{finish, Fit, Needs, Totals};
use crate::estimate::error::EstimateError;
use crate::estimate::jackknife::{self, Groups, HeldOut, JackknifeParts};
use crate::estimate::options::RffOptions;
use crate::estimate::pairs::Design;
use crate::estimate::progress::{Progress, Stage};
use crate::estimate::report::CriticChoice;
use crate::estimate::rff::{self, FeatureMap, RffChoice};
use crate::estimate::ridge;
use crate::estimate::signflip::Quadratic;

/// Draws per unit of work of the RFF passes (fewer at a jackknife group's end).
const CHUNK_ROWS: usize = 4096;
/// Blocks per matrix product when building `Q`.
const Q_RUN: usize = 16;

/// Consecutive segments of one jackknife group, with at least [`CHUNK_ROWS`] draws except at
/// the group's end: the unit of parallel work of both passes. Units are fixed by the design
/// (not by the thread count), and results are reduced in unit order.
struct Unit {
    group: usize,
    /// `(block, first pair, one past the last)`, pairs relative to the block's start.
    segs: Vec<(usize, usize, usize)>,
}

fn units(groups: &Groups, r: usize) -> Vec<Unit> {
    let mut members: Vec<Vec<(usize, usize, usize)>> = vec![Vec::new(); groups.len()];
    for (g, segs) in groups.segments.iter().enumerate() {
        for &(a, e, id) in segs {
            members[id].push((g, a, e));
        }
    }
    let mut out = Vec::new();
    for (id, segs) in members.into_iter().enumerate() {
        let mut rows = 0;
        for s in segs {
            if rows == 0 || rows >= CHUNK_ROWS {
                out.push(Unit {
                    group: id,
                    segs: Vec::new(),
                });
                rows = 0;
            }
            rows += (s.2 - s.1) * r;
            out.last_mut().expect("pushed").segs.push(s);
        }
    }
    out
}

/// The draws of a unit, segment after segment.
fn unit_draws(ctx: &Ctx<'_>, u: &Unit) -> BlockDraws {
    let mut out = BlockDraws::default();
    for &(g, a, e) in &u.segs {
        ctx.append_draws(g, a, e, &mut out);
    }
    out
}

/// `slot += x`, taking `x` on first use.
fn add_or_take(slot: &mut Option<Mat<f64>>, x: Mat<f64>) {
    match slot {
        Some(s) => *s += &x,
        None => *slot = Some(x),
    }
}

/// Index of critic `k`'s matrix among the `K − 1` stored for a block of fold `own`.
fn z_index(k: usize, own: usize) -> usize {
    if k < own {
        k
    } else {
        k - 1
    }
}

/// Pass-1 results of one unit.
struct TrainPart {
    /// Per critic `k` (none for the unit's own fold): Gram matrix (lower triangle) and
    /// cross-products of the unit's draws in `k`'s feature map.
    gram: Vec<Option<Mat<f64>>>,
    cross: Vec<Option<Mat<f64>>>,
    /// Per segment: its block and `Z` in each other critic's map ([`z_index`] order).
    z: Vec<(usize, Vec<Mat<f64>>)>,
}

/// Pass-2 results of one unit.
struct EvalPart {
    totals: Totals,
    /// Per segment: its block and `Z = Σ φΔᵀ` in the own critic's map (when `Q` or the
    /// jackknife needs it).
    z: Vec<(usize, Mat<f64>)>,
    /// `Σ φ [f_A f_B]ᵀ` over the unit's draws (`M × 2d`, the jackknife's `H W_A`, `H W_B`).
    hw: Option<Mat<f64>>,
    /// `Σ Vᵢ` over the unit's pairs.
    group_sum: f64,
}

/// The cross-fitted run with the RFF critic: tuning, pass 1, the solves, pass 2, then the
/// jackknife and `Q` as `needs` asks (see the module docs).
pub(super) fn run_rff(ctx: &Ctx<'_>, o: &RffOptions, needs: Needs) -> Result<Fit, EstimateError> {
    let (stds, progress) = (&ctx.tuning, ctx.progress);
    let (d, r, kf) = (ctx.d, ctx.design.draws, ctx.design.folds());
    let nb = ctx.design.blocks.len();
    // Folds tuned in parallel (each over its bandwidths in parallel too), collected in order.
    let tuned = std::sync::atomic::AtomicU64::new(0);
    let picks: Vec<RffChoice> = stds
        .par_iter()
        .map(|(std, td)| {
            let c = rff::tune(td, std, d, r, o, ctx.opts.seed);
            progress(Progress {
                stage: Stage::Tuning,
                done: tuned.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                total: kf as u64,
            });
            c
        })
        .collect::<Result<_, _>>()?;
    let fmaps: Vec<FeatureMap> = stds
        .iter()
        .zip(&picks)
        .map(|((std, _), c)| {
            FeatureMap::new(
                std.clone(),
                d,
                o.features,
                c.bandwidth,
                o.cubic.unwrap_or(false),
                ctx.opts.seed,
            )
        })
        .collect();
    let m = fmaps[0].dim();
    // Jackknife groups: up to MAX_GROUPS, fewer where their Gram and cross-product matrices
    // (one each per group and other fold) would pass the BUDGET; below MIN_GROUPS none (the
    // report says why), and the groups are just the folds' halves (one Gram matrix per
    // critic, as the fit needs anyway).
    let (jk_groups, skipped) = if needs.jackknife {
        match jackknife::rff_groups(m, d, kf, crate::resources::available_memory()) {
            Ok(g) => (g, None),
            Err(w) => (0, Some(w)),
        }
    } else {
        (0, None)
    };
    let jk = jk_groups > 0;
    let groups = Groups::new(&ctx.design, half, jk_groups);
    let ng = groups.len();
    let units = units(&groups, r);
    let unit_ids: Vec<usize> = (0..units.len()).collect();

    // Pass 1.
    let mut ggram: Vec<Vec<Option<Mat<f64>>>> = vec![vec![None; ng]; kf];
    let mut gcross: Vec<Vec<Option<Mat<f64>>>> = vec![vec![None; ng]; kf];
    let mut z_train: Vec<Vec<Option<Mat<f64>>>> = vec![vec![None; kf - 1]; nb];
    ctx.for_blocks(
        &unit_ids,
        Stage::Fitting,
        |u| {
            let unit = &units[u];
            let own = groups.fold[unit.group];
            let ud = unit_draws(ctx, unit);
            let mut part = TrainPart {
                gram: vec![None; kf],
                cross: vec![None; kf],
                z: unit.segs.iter().map(|s| (s.0, Vec::new())).collect(),
            };
            for (k, fm) in fmaps.iter().enumerate() {
                if k == own {
                    continue;
                }
                let phi = fm.features(&ud.xt, &ud.t);
                let mut gram = Mat::<f64>::zeros(m, m);
                ridge::add_gram(&mut gram, phi.as_ref());
                part.gram[k] = Some(gram);
                let mut first = 0;
                for (i, &(_, a, e)) in unit.segs.iter().enumerate() {
                    let seg = phi.as_ref().subrows(first * r, (e - a) * r);
                    let z = ridge::cross(seg, &ud.delta[first * d..(first + e - a) * d], d, r);
                    add_or_take(&mut part.cross[k], z.clone());
                    part.z[i].1.push(z);
                    first += e - a;
                }
            }
            Ok((unit.group, part))
        },
        |_, (id, part)| {
            for (k, (gram, cross)) in part.gram.into_iter().zip(part.cross).enumerate() {
                if let (Some(gram), Some(cross)) = (gram, cross) {
                    add_or_take(&mut ggram[k][id], gram);
                    add_or_take(&mut gcross[k][id], cross);
                }
            }
            for (g, zs) in part.z {
                for (slot, z) in z_train[g].iter_mut().zip(zs) {
                    add_or_take(slot, z);
                }
            }
        },
    )?;
    // Both triangles of every group's Gram matrix: the jackknife subtracts them whole.
    for gram in ggram.iter_mut().flatten().flatten() {
        ridge::symmetrize(gram);
    }
    // Each fold's two halves: the sums of their groups, in group order.
    let mut grams: Vec<[Mat<f64>; 2]> = Vec::with_capacity(kf);
    let mut crosses: Vec<[Mat<f64>; 2]> = Vec::with_capacity(kf);
    for k in 0..kf {
        let mut gk = [Mat::<f64>::zeros(m, m), Mat::<f64>::zeros(m, m)];
        let mut rk = [Mat::<f64>::zeros(m, d), Mat::<f64>::zeros(m, d)];
        let mut count = [0usize; 2];
        for id in (0..ng).filter(|&id| groups.fold[id] != k) {
            let h = groups.half[id];
            if let (Some(x), Some(y)) = (&ggram[k][id], &gcross[k][id]) {
                gk[h] += x;
                rk[h] += y;
                count[h] += 1;
            }
        }
        if let Some(h) = (0..2).find(|&h| count[h] == 0) {
            return Err(EstimateError::Numerical(format!(
                "fold {k}: no training blocks in half {h}"
            )));
        }
        grams.push(gk);
        crosses.push(rk);
    }

    // Each fold's critics: one per half (the estimate, undersmoothed) and their union (the
    // test statistic, at the CV penalty: the most powerful critic the data allow), side by
    // side as `[W_A W_B W_test]` (`M × 3d`) so that pass 2 predicts all three in one product.
    let mut inv: Vec<Mat<f64>> = Vec::with_capacity(kf);
    let mut weights: Vec<[Mat<f64>; 3]> = Vec::with_capacity(kf);
    let mut stacked: Vec<Mat<f64>> = Vec::with_capacity(kf);
    let mut penalties: Vec<f64> = Vec::with_capacity(kf);
    let q = fmaps[0].unpenalized();
    for k in 0..kf {
        let (gk, rk) = (&grams[k], &crosses[k]);
        let undersmoothed = final_penalty(&picks[k], o);
        let wa = ridge::ridge_solve(&gk[0], q, rk[0].as_ref(), undersmoothed)?;
        let wb = ridge::ridge_solve(&gk[1], q, rk[1].as_ref(), undersmoothed)?;
        let mut g_all = gk[0].clone();
        g_all += &gk[1];
        let mut r_all = rk[0].clone();
        r_all += &rk[1];
        // The test critic's inverse is kept (the refitted quadratic form needs it).
        let a = ridge::ridge_inverse(&g_all, q, picks[k].penalty)?;
        let mut wt = Mat::<f64>::zeros(m, d);
        matmul(
            wt.as_mut(),
            Accum::Replace,
            a.as_ref(),
            r_all.as_ref(),
            1.0,
            Par::Seq,
        );
        stacked.push(Mat::from_fn(m, 3 * d, |i, j| {
            [&wa, &wb, &wt][j / d][(i, j % d)]
        }));
        inv.push(a);
        weights.push([wa, wb, wt]);
        penalties.push(undersmoothed);
    }

    // Pass 2.
    let want_z = needs.q || jk;
    let eval_unit = |u: usize| -> Result<EvalPart, EstimateError> {
        let unit = &units[u];
        let k = groups.fold[unit.group];
        let ud = unit_draws(ctx, unit);
        let phi = fmaps[k].features(&ud.xt, &ud.t);
        // Columns 0..d: f_A, d..2d: f_B, 2d..3d: the test critic.
        let mut f = Mat::<f64>::zeros(phi.nrows(), 3 * d);
        matmul(
            f.as_mut(),
            Accum::Replace,
            phi.as_ref(),
            stacked[k].as_ref(),
            1.0,
            Par::Seq,
        );
        let mut ev = EvalPart {
            totals: Totals::new(ctx.opts),
            z: Vec::new(),
            hw: None,
            group_sum: 0.0,
        };
        let mut draws = Vec::with_capacity(r);
        for j in 0..ud.delta.len() / d {
            let delta = &ud.delta[j * d..(j + 1) * d];
            draws.clear();
            let (mut vs, mut ts) = (0.0, 0.0);
            for s in 0..r {
                let row = j * r + s;
                // v = ⟨f_A, Δ⟩ + ⟨f_B, Δ⟩ − ⟨f_A, f_B⟩ (see `half`); τ = ⟨f_test, Δ⟩.
                let (mut v, mut tau) = (0.0, 0.0);
                for c in 0..d {
                    let (a, b) = (f[(row, c)], f[(row, d + c)]);
                    v += (a + b) * delta[c] - a * b;
                    tau += f[(row, 2 * d + c)] * delta[c];
                }
                vs += v;
                ts += tau;
                draws.push((ev.totals.profile.bin_of(ud.t[row]), v));
            }
            let (vi, ti) = (vs / r as f64, ts / r as f64);
            if !vi.is_finite() {
                return Err(EstimateError::Numerical(
                    "the critic produced a non-finite value (inputs too large?)".into(),
                ));
            }
            ev.totals.v.push(vi);
            ev.group_sum += vi;
            ev.totals.sum_t += ti;
            ev.totals.profile.add_pair(&draws);
        }
        if want_z {
            let mut first = 0;
            for &(g, a, e) in &unit.segs {
                let seg = phi.as_ref().subrows(first * r, (e - a) * r);
                let delta = &ud.delta[first * d..(first + e - a) * d];
                ev.z.push((g, ridge::cross(seg, delta, d, r)));
                first += e - a;
            }
        }
        if jk {
            let mut hw = Mat::<f64>::zeros(m, 2 * d);
            matmul(
                hw.as_mut(),
                Accum::Replace,
                phi.transpose(),
                f.as_ref().subcols(0, 2 * d),
                1.0,
                Par::Seq,
            );
            ev.hw = Some(hw);
        }
        Ok(ev)
    };
    let mut totals = Totals::new(ctx.opts);
    let mut z_own: Vec<Option<Mat<f64>>> = vec![None; nb];
    let mut held = HeldOut {
        z: (0..kf).map(|_| Mat::zeros(m, d)).collect(),
        hw: (0..kf)
            .map(|_| [Mat::zeros(m, d), Mat::zeros(m, d)])
            .collect(),
        group_sum: vec![0.0; ng],
    };
    ctx.for_blocks(&unit_ids, Stage::Evaluating, eval_unit, |u, ev| {
        let id = units[u].group;
        let k = groups.fold[id];
        totals.merge(&ev.totals);
        held.group_sum[id] += ev.group_sum;
        for (g, z) in ev.z {
            if jk {
                held.z[k] += &z;
            }
            if needs.q {
                add_or_take(&mut z_own[g], z);
            }
        }
        if let Some(hw) = ev.hw {
            held.hw[k][0] += hw.as_ref().subcols(0, d);
            held.hw[k][1] += hw.as_ref().subcols(d, d);
        }
    })?;
    let jackknife = if jk {
        let parts = JackknifeParts {
            groups: &groups,
            grams: &grams,
            crosses: &crosses,
            ggram: &ggram,
            gcross: &gcross,
            weights: &weights,
            penalties: &penalties,
            unpenalized: q,
        };
        Some(jackknife::rff(
            &parts,
            &held,
            ctx.design.draws,
            ctx.opts.divergence.scale(),
        )?)
    } else {
        None
    };
    let quadratic = if needs.q {
        Some(rff_quadratic(&ctx.design, &inv, &z_train, &z_own, m, d, r))
    } else {
        None
    };
    let choices = picks
        .iter()
        .enumerate()
        .map(|(k, c)| CriticChoice {
            fold: k,
            bandwidth: Some(c.bandwidth),
            ridge: Some(c.ridge),
            k: None,
            cv_mse: c.cv_mse,
        })
        .collect();
    let mut fit = finish(ctx, &totals, choices, quadratic, jackknife);
    fit.jackknife_skipped = skipped;
    Ok(fit)
}

/// The final critics' total penalty: the CV choice times `undersmooth`, but never below the
/// smallest ridge of the CV grid. Below the grid CV has seen nothing, and there the ridge
/// stops holding back directions the data do not determine: in 1-D `D_mid` at `n = 10³`, a
/// fold whose CV picked the grid's smallest ridge (1e-6), undersmoothed to 1e-8, returned
/// −0.21 ± 1.20 for an exact 1.0.
fn final_penalty(c: &RffChoice, o: &RffOptions) -> f64 {
    let floor = o.ridges.iter().copied().fold(f64::INFINITY, f64::min);
    let undersmooth = o.undersmooth.expect("resolved in `run`");
    c.penalty * (undersmooth.max(floor / c.ridge))
}

/// `Q` from the test critics' inverses `A_k`, every block's `Z` in the other critics' maps
/// (`z_train`) and in its own (`z_own`).
fn rff_quadratic(
    design: &Design,
    inv: &[Mat<f64>],
    z_train: &[Vec<Option<Mat<f64>>>],
    z_own: &[Option<Mat<f64>>],
    m: usize,
    d: usize,
    r: usize,
) -> Quadratic {
    let blocks = &design.blocks;
    let nb = blocks.len();
    let md = m * d;
    let train = |g: usize, k: usize| {
        z_train[g][z_index(k, blocks[g].fold)]
            .as_ref()
            .expect("every block has training-side Z")
    };
    let own = |g: usize| z_own[g].as_ref().expect("every block has held-out Z");
    let mut q = vec![0.0; nb * nb];
    for k in 0..design.folds() {
        let rows: Vec<usize> = (0..nb).filter(|&g| blocks[g].fold == k).collect();
        let cols: Vec<usize> = (0..nb).filter(|&g| blocks[g].fold != k).collect();
        // Q[g, g'] = Σ_c Z_g[:, c]ᵀ A_k Z_g'[:, c] / r as products over runs of Q_RUN blocks:
        // Y = A_k [Z_g' …] (training blocks side by side), then held-out rows against Y.
        // A product per block (d columns) ran far below the machine's peak. The runs are
        // fixed by the design, not by the thread count, so neither are the sums.
        let ys: Vec<Mat<f64>> = cols
            .par_chunks(Q_RUN)
            .map(|run| {
                let zc = Mat::<f64>::from_fn(m, d * run.len(), |i, jc| {
                    train(run[jc / d], k)[(i, jc % d)]
                });
                let mut y = Mat::<f64>::zeros(m, d * run.len());
                matmul(
                    y.as_mut(),
                    Accum::Replace,
                    inv[k].as_ref(),
                    zc.as_ref(),
                    1.0,
                    Par::Seq,
                );
                // Regrouped as one column of length m·d per block (column-major).
                Mat::<f64>::from_fn(md, run.len(), |ic, j| y[(ic % m, j * d + ic / m)])
            })
            .collect();
        let ymat = Mat::<f64>::from_fn(md, cols.len(), |ic, j| ys[j / Q_RUN][(ic, j % Q_RUN)]);
        let qrows: Vec<Vec<f64>> = rows
            .par_chunks(Q_RUN)
            .flat_map_iter(|run| {
                let zr = Mat::<f64>::from_fn(run.len(), md, |i, ic| own(run[i])[(ic % m, ic / m)]);
                let mut out = Mat::<f64>::zeros(run.len(), cols.len());
                matmul(
                    out.as_mut(),
                    Accum::Replace,
                    zr.as_ref(),
                    ymat.as_ref(),
                    1.0 / r as f64,
                    Par::Seq,
                );
                (0..run.len())
                    .map(|i| (0..cols.len()).map(|j| out[(i, j)]).collect::<Vec<f64>>())
                    .collect::<Vec<_>>()
            })
            .collect();
        for (&g, row) in rows.iter().zip(qrows) {
            for (&gp, v) in cols.iter().zip(row) {
                q[g * nb + gp] = v;
            }
        }
    }
    Quadratic {
        q,
        fixed: blocks.iter().map(|b| b.fixed).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::options::EstimateOptions;
    use crate::StochasticInterpolant;
    use ndarray::Array2;

    /// The units partition every group's pairs, in group order and block order, and the
    /// draws of a unit are those of its blocks cut at the segments: the same `(t, X̃_t, Δ)` as
    /// generating each whole block. Would catch a block stream restarted at a segment (the
    /// draws of other pairs, or the same draws twice), or a unit that drops or repeats a
    /// segment — either would change the estimate without failing any range check.
    #[test]
    fn units_cover_the_groups_with_the_blocks_draws() {
        let (n, d) = (603, 2);
        let x0 = Array2::from_shape_fn((n, d), |(i, j)| ((i * 31 + j * 7) % 97) as f64 / 10.0);
        let x1 = Array2::from_shape_fn((n, d), |(i, j)| ((i * 17 + j * 3) % 89) as f64 / 10.0);
        let opts = EstimateOptions {
            // σ > 0: the draws consume normal variates too.
            interpolant: StochasticInterpolant::linear(0.3).unwrap(),
            seed: 5,
            ..EstimateOptions::default()
        };
        let mut design = Design::new(n, n, 3, 1, 40, opts.seed);
        design.draws = 3;
        let ctx = Ctx {
            x0: x0.view().into(),
            x1: x1.view().into(),
            d,
            design,
            opts: &opts,
            progress: &|_| {},
            tuning: Vec::new(),
        };
        let groups = Groups::new(&ctx.design, half, 17);
        let r = ctx.design.draws;
        let units = units(&groups, r);
        let mut seen: Vec<Vec<bool>> = ctx
            .design
            .blocks
            .iter()
            .map(|b| vec![false; b.len()])
            .collect();
        let mut last_group = 0;
        for u in &units {
            assert!(u.group >= last_group, "units out of group order");
            last_group = u.group;
            let ud = unit_draws(&ctx, u);
            let mut first = 0;
            for &(g, a, e) in &u.segs {
                let whole = ctx.block_draws(g);
                for p in a..e {
                    assert!(!seen[g][p], "pair {p} of block {g} twice");
                    seen[g][p] = true;
                    let j = first + p - a;
                    assert_eq!(
                        ud.delta[j * d..(j + 1) * d],
                        whole.delta[p * d..(p + 1) * d]
                    );
                    assert_eq!(ud.t[j * r..(j + 1) * r], whole.t[p * r..(p + 1) * r]);
                    assert_eq!(
                        ud.xt[j * r * d..(j + 1) * r * d],
                        whole.xt[p * r * d..(p + 1) * r * d]
                    );
                }
                first += e - a;
            }
            assert_eq!(ud.delta.len(), first * d);
        }
        assert!(seen.iter().flatten().all(|&s| s), "a pair in no unit");
        assert!(units.len() >= groups.len());
        // Some block is cut inside, so the skipping of a stream's first pairs is exercised.
        assert!(units.iter().flat_map(|u| &u.segs).any(|s| s.1 > 0));
    }
}
