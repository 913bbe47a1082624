//! The kNN critic's pass over the data (notation of [`super`]): per fold `k`, `k` chosen by
//! cross-validation on the tuning draws and two trees (one per half, [`half`]) over the draws
//! of the blocks outside `k`; then for every held-out draw the two half critics' means of the
//! neighbours' `Δ`, giving the pair terms of Prop. 3.3, the profile and, through the
//! neighbours' blocks, the rows of the sign-flip test's `Q`.

use super::context::{half, Ctx};
use super::fit::{finish, Fit, Totals};
use crate::estimate::error::EstimateError;
use crate::estimate::knn::{self, Tree};
use crate::estimate::options::KnnOptions;
use crate::estimate::progress::{Progress, Stage};
use crate::estimate::report::CriticChoice;
use crate::estimate::signflip::Quadratic;

/// The cross-fitted run with the kNN critic: tuning, one tree per fold and half, then the
/// held-out terms and the rows of `Q` in one pass.
pub(super) fn run_knn(ctx: &Ctx<'_>, o: &KnnOptions, need_q: bool) -> Result<Fit, EstimateError> {
    let (stds, progress) = (&ctx.tuning, ctx.progress);
    let (d, r, kf) = (ctx.d, ctx.design.draws, ctx.design.folds());
    let nb = ctx.design.blocks.len();
    let mut picks = Vec::with_capacity(kf);
    for (k, (std, td)) in stds.iter().enumerate() {
        picks.push(knn::tune(td, std, d, r, o)?);
        progress(Progress {
            stage: Stage::Tuning,
            done: k as u64 + 1,
            total: kf as u64,
        });
    }
    // Trees: fold k's critic h indexes the draws of the blocks outside fold k in half h.
    let mut trees: Vec<Tree<(u32, u32)>> = Vec::with_capacity(2 * kf);
    let all: Vec<usize> = (0..nb).collect();
    for (k, h) in (0..kf).flat_map(|k| [(k, 0), (k, 1)]) {
        let std = &stds[k].0;
        let outside: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&g| ctx.design.blocks[g].fold != k && half(g) == h)
            .collect();
        if outside.is_empty() {
            return Err(EstimateError::Numerical(format!(
                "fold {k}: no training blocks in half {h}"
            )));
        }
        let cap: usize = outside
            .iter()
            .map(|&g| ctx.design.blocks[g].len() * r)
            .sum();
        let mut tree = Tree::new(std.clone(), d, cap);
        let mut err = None;
        ctx.for_blocks(
            &outside,
            Stage::Fitting,
            |g| Ok(ctx.block_draws(g)),
            |g, bd| {
                for row in 0..bd.t.len() {
                    let res = tree.add(
                        &bd.xt[row * d..(row + 1) * d],
                        bd.t[row],
                        (g as u32, (row / r) as u32),
                    );
                    if let Err(e) = res {
                        err.get_or_insert(e);
                    }
                }
            },
        )?;
        if let Some(e) = err {
            return Err(e);
        }
        trees.push(tree);
    }
    let mut totals = Totals::new(ctx.opts);
    let mut qrows: Vec<Vec<f64>> = Vec::with_capacity(if need_q { nb } else { 0 });
    ctx.for_blocks(
        &all,
        Stage::Evaluating,
        |g| {
            let bd = ctx.block_draws(g);
            let k = ctx.design.blocks[g].fold;
            let halves = [&trees[2 * k], &trees[2 * k + 1]];
            let kk = picks[k].k.min(halves[0].len()).min(halves[1].len());
            let mut ev = Totals::new(ctx.opts);
            // The block's row of `Q`.
            let mut qrow = if need_q { vec![0.0; nb] } else { Vec::new() };
            let mut buf = vec![0.0; d + 1];
            let mut f = [vec![0.0; d], vec![0.0; d]];
            let mut dj = vec![0.0; d];
            let mut draws = Vec::with_capacity(r);
            // τ uses the mean of the two half critics.
            let w = 0.5 / (r as f64 * kk as f64);
            for j in 0..bd.delta.len() / d {
                let delta = &bd.delta[j * d..(j + 1) * d];
                draws.clear();
                let (mut vs, mut ts) = (0.0, 0.0);
                for s in 0..r {
                    let row = j * r + s;
                    for (fh, tree) in f.iter_mut().zip(halves) {
                        let nn =
                            tree.nearest(&bd.xt[row * d..(row + 1) * d], bd.t[row], kk, &mut buf)?;
                        fh.fill(0.0);
                        for &(gb, p) in &nn {
                            let b = ctx.design.blocks[gb as usize];
                            ctx.delta_into(b.fold, b.start + p as usize, &mut dj);
                            let mut dot = 0.0;
                            for c in 0..d {
                                fh[c] += dj[c];
                                dot += dj[c] * delta[c];
                            }
                            if need_q {
                                qrow[gb as usize] += w * dot;
                            }
                        }
                        for v in fh.iter_mut() {
                            *v /= kk as f64;
                        }
                    }
                    // τ = ⟨(f_A + f_B)/2, Δ⟩ and v = 2τ − ⟨f_A, f_B⟩ (see `half`).
                    let (mut tau, mut ff) = (0.0, 0.0);
                    for c in 0..d {
                        tau += 0.5 * (f[0][c] + f[1][c]) * delta[c];
                        ff += f[0][c] * f[1][c];
                    }
                    let v = 2.0 * tau - ff;
                    vs += v;
                    ts += tau;
                    draws.push((ev.profile.bin_of(bd.t[row]), v));
                }
                ev.v.push(vs / r as f64);
                ev.sum_t += ts / r as f64;
                ev.profile.add_pair(&draws);
            }
            Ok((ev, qrow))
        },
        |_, (ev, qrow)| {
            totals.merge(&ev);
            if need_q {
                qrows.push(qrow);
            }
        },
    )?;
    let quadratic = need_q.then(|| {
        let mut q = vec![0.0; nb * nb];
        for (g, row) in qrows.iter().enumerate() {
            q[g * nb..(g + 1) * nb].copy_from_slice(row);
        }
        Quadratic {
            q,
            fixed: ctx.design.blocks.iter().map(|b| b.fixed).collect(),
        }
    });
    let choices = picks
        .iter()
        .enumerate()
        .map(|(k, c)| CriticChoice {
            fold: k,
            bandwidth: None,
            ridge: None,
            k: Some(c.k),
            cv_mse: c.cv_mse,
        })
        .collect();
    Ok(finish(ctx, &totals, choices, quadratic, None))
}
