//! Cross-fitting: critics fitted on the other folds, held-out terms, profile, and the block
//! quadratic form `Q` of the sign-flip test.
//!
//! Every held-out fold `k` has, for the estimate, two critics `f_{k,0}`, `f_{k,1}` fitted on
//! the two halves `h(g')` of the blocks outside `k` (see [`half`] for why two), and for the
//! test one critic `f_k` fitted on all of them. Notation: block `g` of fold `k(g)`;
//! `Z_g⁽ᵏ⁾ = Σ_{draws in g} φ_k(x̃) Δᵀ` (`M × d`) in the feature map of fold `k`;
//! `A_k = (G_k + λ N_cv P)⁻¹` (`P`: identity but 0 on the constant);
//! `W_k = A_k Σ_{g' ∉ k} Z_{g'}⁽ᵏ⁾`. The pair term `Tᵢ = (1/r) Σ_s ⟨W_kᵀ φ_k(x̃ᵢₛ), Δᵢ⟩`
//! summed over a block is `(1/r)⟨Z_g⁽ᵏ⁾, W_k⟩ = Σ_{g'} Q_{g g'}` with
//!
//! ```text
//! Q_{g g'} = (1/r) ⟨Z_g⁽ᵏ⁽ᵍ⁾⁾, A_{k(g)} Z_{g'}⁽ᵏ⁽ᵍ⁾⁾⟩   for k(g') ≠ k(g),   0 otherwise.
//! ```
//!
//! Flipping the signs `ε_g` of whole blocks multiplies `Z_g` by `ε_g` and leaves `G_k` and the
//! hyperparameters unchanged, so the refitted statistic is `S(ε) = εᵀQε`. For the kNN critic
//! `Q_{g g'} = (1/(2 r k)) Σ ⟨Δᵢ, Δⱼ⟩` over held-out draws of `g` and their neighbours in `g'`
//! (each half's tree gives `k` neighbours).

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use ndarray::{ArrayView2, CowArray, Ix2};
use rayon::prelude::*;

use super::jackknife::{self, Groups, HeldOut, JackknifeParts, JackknifeSe};
use super::knn::{self, Tree};
use super::pairs::{Design, DrawGen, MIN_PAIRS_PER_FOLD};
use super::profile::{ProfileAcc, ProfileBin};
use super::rff::{self, FeatureMap, Standardizer, TuneData};
use super::{
    CriticChoice, CriticKind, DivergenceKind, Draws, EstimateError, EstimateOptions, Progress,
    Sample, Stage,
};
use crate::montecarlo::Moments;

/// Blocks processed in parallel before their partial sums are reduced (in block order).
const GROUP: usize = 16;
/// Most non-tuning blocks over all folds.
const MAX_BLOCKS: usize = 1024;
/// Fewest non-tuning blocks (memory permitting).
const MIN_BLOCKS: usize = 16;
/// Doubles allowed for the stored `Z` matrices of the RFF test (128 MiB).
const Z_BUDGET: usize = 1 << 24;
/// Multiply-adds allowed for the RFF test's `Q` (`blocks² · M · d`).
const Q_FLOPS: usize = 1 << 28;
/// Draws per unit of work of the RFF fitting pass.
const CHUNK_ROWS: usize = 4096;
/// Blocks per matrix product when building `Q`.
const Q_RUN: usize = 16;
/// Jackknife groups (pairs deleted together), at most: about 40 keeps the Student-t
/// quantile of the interval within 3% of the normal one at one Cholesky factorization per
/// group and other fold.
pub(crate) const JK_GROUPS: usize = 40;
/// Fewest jackknife groups worth running; with fewer the conditional SE is reported.
const JK_MIN_GROUPS: usize = 8;
/// Bytes allowed for the jackknife's per-group Gram matrices (256 MiB).
const JK_BUDGET: usize = 1 << 28;

/// The sign-flip test's quadratic form over blocks.
#[derive(Debug, Clone)]
pub struct Quadratic {
    /// `nb × nb`, row-major.
    pub q: Vec<f64>,
    /// Blocks whose sign is held at +1 (tuning blocks).
    pub fixed: Vec<bool>,
}

impl Quadratic {
    /// Number of blocks.
    pub fn blocks(&self) -> usize {
        self.fixed.len()
    }
}

/// Output of a cross-fitted run.
pub(crate) struct Fit {
    pub estimate: f64,
    /// `c·sd(V)/√N`: the standard error given the critics.
    pub std_error_conditional: f64,
    /// The jackknife standard error, where it was computed.
    pub jackknife: Option<JackknifeSe>,
    pub pairs: usize,
    pub draws: usize,
    pub choices: Vec<CriticChoice>,
    pub profile: Vec<ProfileBin>,
    pub quadratic: Option<Quadratic>,
    /// `Σ Tᵢ` over all held-out pairs (the sign-flip statistic).
    pub sum_t: f64,
    /// The folds, pairs and blocks used.
    #[cfg_attr(not(test), allow(dead_code))]
    pub design: Design,
}

struct Ctx<'a> {
    x0: CowArray<'a, f64, Ix2>,
    x1: CowArray<'a, f64, Ix2>,
    d: usize,
    design: Design,
    opts: &'a EstimateOptions,
}

/// Draws of one block.
struct BlockDraws {
    xt: Vec<f64>,
    t: Vec<f64>,
    delta: Vec<f64>,
}

impl Ctx<'_> {
    fn row0(&self, i: u32) -> &[f64] {
        let d = self.d;
        &self.x0.as_slice().expect("standard layout")[i as usize * d..(i as usize + 1) * d]
    }

    fn row1(&self, i: u32) -> &[f64] {
        let d = self.d;
        &self.x1.as_slice().expect("standard layout")[i as usize * d..(i as usize + 1) * d]
    }

    fn delta_into(&self, fold: usize, p: usize, out: &mut [f64]) {
        let (i0, i1) = self.design.pairs[fold][p];
        let (a, b) = (self.row0(i0), self.row1(i1));
        for c in 0..self.d {
            out[c] = b[c] - a[c];
        }
    }

    fn block_draws(&self, g: usize) -> BlockDraws {
        let b = self.design.blocks[g];
        let (d, r) = (self.d, self.design.draws);
        let mut gen = DrawGen::new(
            &self.opts.interpolant,
            self.opts.divergence,
            &self.design,
            g,
        );
        let mut out = BlockDraws {
            xt: vec![0.0; b.len() * r * d],
            t: vec![0.0; b.len() * r],
            delta: vec![0.0; b.len() * d],
        };
        for (j, p) in (b.start..b.end).enumerate() {
            let (i0, i1) = self.design.pairs[b.fold][p];
            let (a, c) = (self.row0(i0), self.row1(i1));
            for k in 0..d {
                out.delta[j * d + k] = c[k] - a[k];
            }
            for s in 0..r {
                let row = j * r + s;
                out.t[row] = gen.draw(a, c, &mut out.xt[row * d..(row + 1) * d]);
            }
        }
        out
    }

    /// Tuning draws of every fold except `k`, in fold order.
    fn tune_data(&self, k: usize) -> TuneData {
        let mut out = TuneData::default();
        for (g, b) in self.design.blocks.iter().enumerate() {
            if b.fixed && b.fold != k {
                let bd = self.block_draws(g);
                out.xt.extend(bd.xt);
                out.t.extend(bd.t);
                out.delta.extend(bd.delta);
            }
        }
        out
    }
}

/// Draws per pair for `pairs` pairs.
fn draws_per_pair(opts: &EstimateOptions, pairs: usize) -> usize {
    match opts.draws {
        Draws::Fixed(r) => r,
        Draws::Auto => {
            if opts.divergence == DivergenceKind::Mid && opts.interpolant.noise().is_zero() {
                1
            } else {
                // Extra draws only pay while the pairs are few: at 10⁵ pairs, 8 draws cost 12×
                // the time (measured) for a 2% smaller SE, since Δ's own variance dominates.
                ((1usize << 17) / pairs.max(1)).clamp(1, 8)
            }
        }
    }
}

/// What a run computes besides the estimate and its conditional standard error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Needs {
    /// The sign-flip test's quadratic form `Q`.
    pub q: bool,
    /// The jackknife standard error (RFF critic only; see [`jackknife`]).
    pub jackknife: bool,
}

impl Needs {
    /// Everything: what [`super::estimate`] reports.
    pub const ALL: Needs = Needs {
        q: true,
        jackknife: true,
    };
    /// The estimate alone (permutation replicates, refit checks).
    pub const ESTIMATE: Needs = Needs {
        q: false,
        jackknife: false,
    };
}

/// Runs the cross-fitted estimate; builds `Q` and the jackknife as `needs` says.
pub(crate) fn run(
    x0: ArrayView2<'_, f64>,
    x1: ArrayView2<'_, f64>,
    opts: &EstimateOptions,
    needs: Needs,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Fit, EstimateError> {
    let (n0, n1, d) = (x0.nrows(), x1.nrows(), x0.ncols());
    let k = opts.folds;
    let need = MIN_PAIRS_PER_FOLD * k;
    if n0.min(n1) < need {
        let (which, n) = if n0 <= n1 {
            (Sample::X0, n0)
        } else {
            (Sample::X1, n1)
        };
        return Err(EstimateError::TooFewSamples {
            which,
            n,
            folds: k,
            need,
            per_fold: MIN_PAIRS_PER_FOLD,
        });
    }
    // RFF features: at most one per two training pairs (with one per eight, the critic's
    // smoothing bias dominated at n = 10³: D_t-mid 4% lower in 2-D in development runs), at
    // least 32, at most the
    // requested M.
    let critic = match &opts.critic {
        CriticKind::Rff(o) => {
            let half_pairs = n0.min(n1) * (k - 1) / k / 2;
            CriticKind::Rff(super::RffOptions {
                features: o.features.min(half_pairs.max(32)),
                cubic: Some(
                    o.cubic
                        .unwrap_or_else(|| rff::cubic_wanted(d + 1, half_pairs)),
                ),
                undersmooth: Some(
                    o.undersmooth
                        .unwrap_or_else(|| opts.divergence.default_undersmooth()),
                ),
                ..o.clone()
            })
        }
        c => c.clone(),
    };
    let max_blocks = match &critic {
        CriticKind::Rff(o) => {
            let cubic = if o.cubic == Some(true) {
                rff::cubic_terms(d + 1)
            } else {
                0
            };
            let md = (2 + d + rff::quadratic_terms(d + 1) + cubic + o.features) * d;
            // Memory for the stored Z matrices, and blocks²·M·d ≤ Q_FLOPS for Q.
            let by_q = ((Q_FLOPS / md) as f64).sqrt() as usize;
            (Z_BUDGET / (k * md))
                .min(by_q)
                .clamp(MIN_BLOCKS, MAX_BLOCKS)
        }
        CriticKind::Knn(_) => MAX_BLOCKS,
    }
    // At least two pairs per block.
    .min((n0.min(n1) / 2).max(MIN_BLOCKS));
    let mut design = Design::new(n0, n1, k, 1, max_blocks, opts.seed);
    design.draws = draws_per_pair(opts, design.total_pairs());
    let ctx = Ctx {
        x0: x0.as_standard_layout(),
        x1: x1.as_standard_layout(),
        d,
        design,
        opts,
    };
    progress(Progress {
        stage: Stage::Tuning,
        done: 0,
        total: k as u64,
    });
    let stds: Vec<(Standardizer, TuneData)> = (0..k)
        .map(|f| {
            let td = ctx.tune_data(f);
            (Standardizer::fit(&td.xt, &td.t, d), td)
        })
        .collect();
    let out = match &critic {
        CriticKind::Rff(o) => run_rff(&ctx, o, &stds, needs, progress)?,
        CriticKind::Knn(o) => run_knn(&ctx, o, &stds, needs.q, progress)?,
    };
    Ok(out)
}

/// Per-block results of the evaluation pass.
struct EvalBlock {
    v: Moments,
    sum_t: f64,
    profile: ProfileAcc,
    /// RFF with the test: `Z_g` in the own critic's features, flattened; kNN: the block's
    /// row of `Q`.
    extra: Vec<f64>,
    /// RFF: `Z_g = Σ φ Δᵀ` over the block's draws in the own critic's features.
    z: Option<Mat<f64>>,
    /// RFF with the jackknife: `Σ φ f_Aᵀ` and `Σ φ f_Bᵀ` over the block's draws (`H W_A`,
    /// `H W_B` for the block's Gram `H`).
    hw: Option<[Mat<f64>; 2]>,
    /// RFF: `Σ Vᵢ` over the block's pairs in each jackknife group it meets.
    group_v: Vec<(usize, f64)>,
}

/// Folds the evaluation results into a [`Fit`].
fn finish(
    ctx: &Ctx<'_>,
    evals: Vec<EvalBlock>,
    choices: Vec<CriticChoice>,
    quadratic: Option<Quadratic>,
    jackknife: Option<JackknifeSe>,
) -> Fit {
    let mut v = Moments::default();
    let mut sum_t = 0.0;
    let mut prof = ProfileAcc::new(
        ctx.opts.profile_bins,
        ctx.opts.divergence == DivergenceKind::TMid,
    );
    for e in &evals {
        v = v.merge(e.v);
        sum_t += e.sum_t;
        prof.merge(&e.profile);
    }
    let c = ctx.opts.divergence.scale();
    let var = if v.n > 1 {
        v.m2 / (v.n - 1) as f64
    } else {
        f64::NAN
    };
    Fit {
        estimate: c * v.mean,
        std_error_conditional: c * (var / v.n as f64).sqrt(),
        jackknife,
        pairs: ctx.design.total_pairs(),
        draws: ctx.design.draws,
        choices,
        profile: prof.finish(),
        quadratic,
        sum_t,
        design: ctx.design.clone(),
    }
}

/// Runs `f` over blocks in groups of [`GROUP`] in parallel and hands each result to `sink` in
/// block order (so reductions do not depend on the thread count).
fn for_blocks<T: Send>(
    blocks: &[usize],
    stage: Stage,
    progress: &(dyn Fn(Progress) + Sync),
    f: impl Fn(usize) -> Result<T, EstimateError> + Sync,
    mut sink: impl FnMut(usize, T),
) -> Result<(), EstimateError> {
    let total = blocks.len() as u64;
    progress(Progress {
        stage,
        done: 0,
        total,
    });
    for (gi, group) in blocks.chunks(GROUP).enumerate() {
        let parts: Vec<Result<T, EstimateError>> = group.par_iter().map(|&g| f(g)).collect();
        for (&g, p) in group.iter().zip(parts) {
            sink(g, p?);
        }
        progress(Progress {
            stage,
            done: (gi * GROUP + group.len()) as u64,
            total,
        });
    }
    Ok(())
}

/// Accumulates one pair's draws into the evaluation results.
struct PairAcc {
    draws: Vec<(usize, f64)>,
    v: f64,
    t: f64,
}

fn run_rff(
    ctx: &Ctx<'_>,
    o: &super::RffOptions,
    stds: &[(Standardizer, TuneData)],
    needs: Needs,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Fit, EstimateError> {
    let (d, r, kf) = (ctx.d, ctx.design.draws, ctx.design.folds());
    let nb = ctx.design.blocks.len();
    // Tuning and feature maps per critic.
    // Folds tuned in parallel (each over its bandwidths in parallel too), collected in order.
    let tuned = std::sync::atomic::AtomicU64::new(0);
    let picks: Vec<rff::RffChoice> = stds
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
    // Jackknife groups: up to JK_GROUPS, fewer where their Gram matrices (one per group and
    // other fold) would pass JK_BUDGET; below JK_MIN_GROUPS none, and the groups are just the
    // folds' halves (one Gram matrix per critic, as the fit needs anyway).
    let affordable = JK_BUDGET / (m * m * 8) / (kf - 1);
    let jk = needs.jackknife && affordable >= JK_MIN_GROUPS;
    let groups = Groups::new(
        &ctx.design,
        half,
        if jk { affordable.min(JK_GROUPS) } else { 0 },
    );
    let ng = groups.len();
    // Pass 1: Gram matrices and training cross-products per critic and group. Work units are
    // runs of consecutive blocks with at least CHUNK_ROWS draws (fixed by the design), each
    // with one partial per critic and group it touches, reduced in chunk order.
    let mut ggram: Vec<Vec<Option<Mat<f64>>>> = vec![vec![None; ng]; kf];
    let mut gcross: Vec<Vec<Option<Mat<f64>>>> = vec![vec![None; ng]; kf];
    let mut z_train: Vec<Vec<Mat<f64>>> = vec![Vec::new(); nb];
    let mut chunks: Vec<Vec<usize>> = vec![Vec::new()];
    let mut rows = 0;
    for g in 0..nb {
        if rows >= CHUNK_ROWS {
            chunks.push(Vec::new());
            rows = 0;
        }
        chunks.last_mut().expect("non-empty").push(g);
        rows += ctx.design.blocks[g].len() * r;
    }
    let chunk_ids: Vec<usize> = (0..chunks.len()).collect();
    for_blocks(
        &chunk_ids,
        Stage::Fitting,
        progress,
        |c| {
            let mut gpart: Vec<Vec<Option<Mat<f64>>>> = vec![vec![None; ng]; kf];
            let mut rpart: Vec<Vec<Option<Mat<f64>>>> = vec![vec![None; ng]; kf];
            let mut zs = Vec::with_capacity(chunks[c].len());
            for &g in &chunks[c] {
                let bd = ctx.block_draws(g);
                let own = ctx.design.blocks[g].fold;
                let mut zg = Vec::with_capacity(kf - 1);
                for (k, fm) in fmaps.iter().enumerate() {
                    if k == own {
                        continue;
                    }
                    let phi = fm.features(&bd.xt, &bd.t);
                    for &(a, e, id) in &groups.segments[g] {
                        let seg = phi.as_ref().subrows(a * r, (e - a) * r);
                        rff::add_gram(gpart[k][id].get_or_insert_with(|| Mat::zeros(m, m)), seg);
                        let z = rff::cross(seg, &bd.delta[a * d..e * d], d, r);
                        add_into(&mut rpart[k][id], &z);
                    }
                    zg.push(rff::cross(phi.as_ref(), &bd.delta, d, r));
                }
                zs.push((g, zg));
            }
            Ok((gpart, rpart, zs))
        },
        |_, (gpart, rpart, zs)| {
            for (k, (gp, rp)) in gpart.into_iter().zip(rpart).enumerate() {
                for (id, (x, y)) in gp.into_iter().zip(rp).enumerate() {
                    if let Some(x) = x {
                        add_into(&mut ggram[k][id], &x);
                    }
                    if let Some(y) = y {
                        add_into(&mut gcross[k][id], &y);
                    }
                }
            }
            for (g, zg) in zs {
                z_train[g] = zg;
            }
        },
    )?;
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
        for g in gk.iter_mut() {
            rff::symmetrize(g);
        }
        grams.push(gk);
        crosses.push(rk);
    }
    // Solve each fold's critics: one per half (the estimate, undersmoothed) and their union
    // (the test statistic, at the CV penalty: the most powerful critic the data allow).
    let mut inv: Vec<Mat<f64>> = Vec::with_capacity(kf);
    let mut weights: Vec<[Mat<f64>; 3]> = Vec::with_capacity(kf);
    let mut penalties: Vec<f64> = Vec::with_capacity(kf);
    let q = fmaps[0].unpenalized();
    for k in 0..kf {
        let (gk, rk) = (&grams[k], &crosses[k]);
        let undersmoothed = final_penalty(&picks[k], o);
        let wa = rff::ridge_solve(&gk[0], q, rk[0].as_ref(), undersmoothed)?;
        let wb = rff::ridge_solve(&gk[1], q, rk[1].as_ref(), undersmoothed)?;
        let mut g_all = gk[0].clone();
        g_all += &gk[1];
        let mut r_all = rk[0].clone();
        r_all += &rk[1];
        // The test critic's inverse is kept (the refitted quadratic form needs it).
        let a = rff::ridge_inverse(&g_all, q, picks[k].penalty)?;
        let mut wt = Mat::<f64>::zeros(m, d);
        matmul(
            wt.as_mut(),
            Accum::Replace,
            a.as_ref(),
            r_all.as_ref(),
            1.0,
            Par::Seq,
        );
        inv.push(a);
        weights.push([wa, wb, wt]);
        penalties.push(undersmoothed);
    }
    // Pass 2: held-out terms.
    let mut evals: Vec<EvalBlock> = Vec::with_capacity(nb);
    let all: Vec<usize> = (0..nb).collect();
    let tmid = ctx.opts.divergence == DivergenceKind::TMid;
    let eval_block = |g: usize| -> Result<EvalBlock, EstimateError> {
        let bd = ctx.block_draws(g);
        let k = ctx.design.blocks[g].fold;
        let phi = fmaps[k].features(&bd.xt, &bd.t);
        let predict = |w: &Mat<f64>| {
            let mut f = Mat::<f64>::zeros(phi.nrows(), d);
            matmul(
                f.as_mut(),
                Accum::Replace,
                phi.as_ref(),
                w.as_ref(),
                1.0,
                Par::Seq,
            );
            f
        };
        let [fa, fb, ft] = [0, 1, 2].map(|c| predict(&weights[k][c]));
        let mut ev = EvalBlock {
            v: Moments::default(),
            sum_t: 0.0,
            profile: ProfileAcc::new(ctx.opts.profile_bins, tmid),
            extra: Vec::new(),
            z: None,
            hw: None,
            group_v: Vec::with_capacity(groups.segments[g].len()),
        };
        let mut acc = PairAcc {
            draws: Vec::with_capacity(r),
            v: 0.0,
            t: 0.0,
        };
        for &(a, e, id) in &groups.segments[g] {
            let mut gsum = 0.0;
            for j in a..e {
                let delta = &bd.delta[j * d..(j + 1) * d];
                acc.draws.clear();
                acc.v = 0.0;
                acc.t = 0.0;
                for s in 0..r {
                    let row = j * r + s;
                    // v = ⟨f_A, Δ⟩ + ⟨f_B, Δ⟩ − ⟨f_A, f_B⟩ (see `half`); τ = ⟨f_test, Δ⟩.
                    let (mut v, mut tau) = (0.0, 0.0);
                    for c in 0..d {
                        let (a, b) = (fa[(row, c)], fb[(row, c)]);
                        v += (a + b) * delta[c] - a * b;
                        tau += ft[(row, c)] * delta[c];
                    }
                    acc.v += v;
                    acc.t += tau;
                    acc.draws.push((ev.profile.bin_of(bd.t[row]), v));
                }
                let (vi, ti) = (acc.v / r as f64, acc.t / r as f64);
                if !vi.is_finite() {
                    return Err(EstimateError::Numerical(
                        "the critic produced a non-finite value (inputs too large?)".into(),
                    ));
                }
                ev.v.push(vi);
                gsum += vi;
                ev.sum_t += ti;
                ev.profile.add_pair(&acc.draws);
            }
            ev.group_v.push((id, gsum));
        }
        let z = rff::cross(phi.as_ref(), &bd.delta, d, r);
        if needs.q {
            ev.extra = (0..d).flat_map(|c| z.col_as_slice(c).to_vec()).collect();
        }
        ev.z = Some(z);
        if jk {
            ev.hw = Some([&fa, &fb].map(|f| {
                let mut out = Mat::<f64>::zeros(m, d);
                matmul(
                    out.as_mut(),
                    Accum::Replace,
                    phi.transpose(),
                    f.as_ref(),
                    1.0,
                    Par::Seq,
                );
                out
            }));
        }
        Ok(ev)
    };
    for_blocks(&all, Stage::Evaluating, progress, eval_block, |_, ev| {
        evals.push(ev)
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
        Some(rff_jackknife(ctx, &parts, &evals)?)
    } else {
        None
    };
    let quadratic = if needs.q {
        Some(rff_quadratic(ctx, &inv, &z_train, &evals, m, d, r))
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
    Ok(finish(ctx, evals, choices, quadratic, jackknife))
}

/// `slot += x`, allocating on first use.
fn add_into(slot: &mut Option<Mat<f64>>, x: &Mat<f64>) {
    match slot {
        Some(s) => *s += x,
        None => *slot = Some(x.clone()),
    }
}

/// Per-fold held-out cross-products `Z_k`, `H_k W_A`, `H_k W_B` and per-group held-out sums
/// (in block order), then the jackknife.
fn rff_jackknife(
    ctx: &Ctx<'_>,
    parts: &JackknifeParts<'_>,
    evals: &[EvalBlock],
) -> Result<JackknifeSe, EstimateError> {
    let (kf, d) = (ctx.design.folds(), ctx.d);
    let m = parts.grams[0][0].nrows();
    let mut held = HeldOut {
        z: (0..kf).map(|_| Mat::zeros(m, d)).collect(),
        hw: (0..kf)
            .map(|_| [Mat::zeros(m, d), Mat::zeros(m, d)])
            .collect(),
        group_sum: vec![0.0; parts.groups.len()],
    };
    for (b, e) in ctx.design.blocks.iter().zip(evals) {
        held.z[b.fold] += e.z.as_ref().expect("RFF blocks carry Z");
        let [ha, hb] = e.hw.as_ref().expect("jackknife blocks carry H·W");
        held.hw[b.fold][0] += ha;
        held.hw[b.fold][1] += hb;
        for &(id, s) in &e.group_v {
            held.group_sum[id] += s;
        }
    }
    jackknife::rff(parts, &held, ctx.design.draws, ctx.opts.divergence.scale())
}

/// Index of critic `k`'s matrix among the `K − 1` stored for a block of fold `own`.
/// The final critics' total penalty: the CV choice times `undersmooth`, but never below the
/// smallest ridge of the CV grid. Below the grid CV has seen nothing, and there the ridge
/// stops holding back directions the data do not determine: in 1-D `D_mid` at `n = 10³`, a
/// fold whose CV picked the grid's smallest ridge (1e-6), undersmoothed to 1e-8, returned
/// −0.21 ± 1.20 for an exact 1.0.
fn final_penalty(c: &rff::RffChoice, o: &super::RffOptions) -> f64 {
    let floor = o.ridges.iter().copied().fold(f64::INFINITY, f64::min);
    let undersmooth = o.undersmooth.expect("resolved in `run`");
    c.penalty * (undersmooth.max(floor / c.ridge))
}

/// Which of a fold's two critics block `g` trains when it is outside the held-out fold.
///
/// Each held-out fold gets two critics `f_A`, `f_B` fitted on disjoint halves of its training
/// blocks, and the held-out term is `⟨f_A, Δ⟩ + ⟨f_B, Δ⟩ − ⟨f_A, f_B⟩` in place of
/// `2⟨f, Δ⟩ − ‖f‖²`. Given the critics its mean is `D − ⟨f_A − m, f_B − m⟩`; the two errors
/// are independent, so over the training draws the mean is `D − ‖E f − m‖²`: the critic's
/// estimation variance, which made `‖f‖²` too large by `E‖f − E f‖²` (the dominant bias in
/// 10-D at `n = 10³`–`10⁴`), no longer biases the estimate; only its smoothing bias does.
/// (The same device as the U-statistic estimate of MMD², which drops the diagonal.) The
/// sign-flip statistic uses a third critic fitted on both halves at the cross-validated
/// penalty: averaging the half critics instead cost power in a development run (mean shift,
/// `n = 1000`: 0.61 against 0.85 with the full-data critic).
pub(crate) fn half(g: usize) -> usize {
    g % 2
}

fn z_index(k: usize, own: usize) -> usize {
    if k < own {
        k
    } else {
        k - 1
    }
}

fn rff_quadratic(
    ctx: &Ctx<'_>,
    inv: &[Mat<f64>],
    z_train: &[Vec<Mat<f64>>],
    evals: &[EvalBlock],
    m: usize,
    d: usize,
    r: usize,
) -> Quadratic {
    let blocks = &ctx.design.blocks;
    let nb = blocks.len();
    let md = m * d;
    let mut q = vec![0.0; nb * nb];
    for k in 0..ctx.design.folds() {
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
                    let g = run[jc / d];
                    z_train[g][z_index(k, blocks[g].fold)][(i, jc % d)]
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
                // Regrouped as one column of length m·d per block (column-major, like `extra`).
                Mat::<f64>::from_fn(md, run.len(), |ic, j| y[(ic % m, j * d + ic / m)])
            })
            .collect();
        let ymat = Mat::<f64>::from_fn(md, cols.len(), |ic, j| ys[j / Q_RUN][(ic, j % Q_RUN)]);
        let qrows: Vec<Vec<f64>> = rows
            .par_chunks(Q_RUN)
            .flat_map_iter(|run| {
                let zr = Mat::<f64>::from_fn(run.len(), md, |i, ic| evals[run[i]].extra[ic]);
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

fn run_knn(
    ctx: &Ctx<'_>,
    o: &super::KnnOptions,
    stds: &[(Standardizer, TuneData)],
    need_q: bool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Fit, EstimateError> {
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
        for_blocks(
            &outside,
            Stage::Fitting,
            progress,
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
    let tmid = ctx.opts.divergence == DivergenceKind::TMid;
    let mut evals: Vec<EvalBlock> = Vec::with_capacity(nb);
    for_blocks(
        &all,
        Stage::Evaluating,
        progress,
        |g| {
            let bd = ctx.block_draws(g);
            let k = ctx.design.blocks[g].fold;
            let halves = [&trees[2 * k], &trees[2 * k + 1]];
            let kk = picks[k].k.min(halves[0].len()).min(halves[1].len());
            let mut ev = EvalBlock {
                v: Moments::default(),
                sum_t: 0.0,
                profile: ProfileAcc::new(ctx.opts.profile_bins, tmid),
                extra: if need_q { vec![0.0; nb] } else { Vec::new() },
                z: None,
                hw: None,
                group_v: Vec::new(),
            };
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
                                ev.extra[gb as usize] += w * dot;
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
            Ok(ev)
        },
        |_, ev| evals.push(ev),
    )?;
    let quadratic = need_q.then(|| {
        let mut q = vec![0.0; nb * nb];
        for (g, e) in evals.iter().enumerate() {
            q[g * nb..(g + 1) * nb].copy_from_slice(&e.extra);
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
    Ok(finish(ctx, evals, choices, quadratic, None))
}
