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

mod rff_pass;

use ndarray::{ArrayView2, CowArray, Ix2};
use rayon::prelude::*;

use super::jackknife::JackknifeSe;
use super::knn::{self, Tree};
use super::pairs::{Design, DrawGen, MIN_PAIRS_PER_FOLD};
use super::profile::{ProfileAcc, ProfileBin};
use super::rff;
use super::tuning::{Standardizer, TuneData};
use crate::estimate::error::{EstimateError, Sample};
use crate::estimate::options::{
    CriticKind, DivergenceKind, Draws, EstimateOptions, KnnOptions, RffOptions,
};
use crate::estimate::progress::{Progress, Stage};
use crate::estimate::report::CriticChoice;
use crate::moments::Moments;

/// Work units (blocks, or the RFF passes' units) processed in parallel before their results
/// are reduced (in unit order).
const GROUP: usize = 16;
/// Most non-tuning blocks over all folds.
const MAX_BLOCKS: usize = 1024;
/// Fewest non-tuning blocks (memory permitting).
const MIN_BLOCKS: usize = 16;
/// Doubles allowed for the stored `Z` matrices of the RFF test (128 MiB).
const Z_BUDGET: usize = 1 << 24;
/// Multiply-adds allowed for the RFF test's `Q` (`blocks² · M · d`).
const Q_FLOPS: usize = 1 << 28;
/// Draws per unit of work of the RFF passes (fewer at a jackknife group's end).
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

/// Draws of one block (or of consecutive segments of blocks).
#[derive(Default)]
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
        let mut out = BlockDraws::default();
        self.append_draws(g, 0, self.design.blocks[g].len(), &mut out);
        out
    }

    /// Appends the draws of pairs `a..e` of block `g` to `out`. The block's stream is run from
    /// its first pair (the draws of pairs before `a` are made and dropped), so a segment's
    /// draws are those of the whole block's, whichever way the block is cut.
    fn append_draws(&self, g: usize, a: usize, e: usize, out: &mut BlockDraws) {
        let b = self.design.blocks[g];
        let (d, r) = (self.d, self.design.draws);
        let mut gen = DrawGen::new(
            &self.opts.interpolant,
            self.opts.divergence,
            &self.design,
            g,
        );
        let (rows0, pairs0) = (out.t.len(), out.delta.len() / d);
        out.xt.resize((rows0 + (e - a) * r) * d, 0.0);
        out.t.resize(rows0 + (e - a) * r, 0.0);
        out.delta.resize((pairs0 + e - a) * d, 0.0);
        let mut skip = vec![0.0; d];
        for p in 0..e {
            let (i0, i1) = self.design.pairs[b.fold][b.start + p];
            let (x0, x1) = (self.row0(i0), self.row1(i1));
            if p < a {
                for _ in 0..r {
                    gen.draw(x0, x1, &mut skip);
                }
                continue;
            }
            let j = pairs0 + p - a;
            for k in 0..d {
                out.delta[j * d + k] = x1[k] - x0[k];
            }
            for s in 0..r {
                let row = rows0 + (p - a) * r + s;
                out.t[row] = gen.draw(x0, x1, &mut out.xt[row * d..(row + 1) * d]);
            }
        }
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
            CriticKind::Rff(RffOptions {
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
        CriticKind::Rff(o) => rff_pass::run_rff(&ctx, o, &stds, needs, progress)?,
        CriticKind::Knn(o) => run_knn(&ctx, o, &stds, needs.q, progress)?,
    };
    Ok(out)
}

/// Sums of the held-out terms: the pair values `Vᵢ`, `Σ Tᵢ` and the profile.
struct Totals {
    v: Moments,
    sum_t: f64,
    profile: ProfileAcc,
}

impl Totals {
    fn new(opts: &EstimateOptions) -> Totals {
        Totals {
            v: Moments::default(),
            sum_t: 0.0,
            profile: ProfileAcc::new(opts.profile_bins, opts.divergence == DivergenceKind::TMid),
        }
    }

    fn merge(&mut self, o: &Totals) {
        self.v = self.v.merge(o.v);
        self.sum_t += o.sum_t;
        self.profile.merge(&o.profile);
    }
}

/// Folds the held-out sums into a [`Fit`].
fn finish(
    ctx: &Ctx<'_>,
    totals: &Totals,
    choices: Vec<CriticChoice>,
    quadratic: Option<Quadratic>,
    jackknife: Option<JackknifeSe>,
) -> Fit {
    let v = totals.v;
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
        profile: totals.profile.finish(),
        quadratic,
        sum_t: totals.sum_t,
        design: ctx.design.clone(),
    }
}

/// Runs `f` over work units in groups of [`GROUP`] in parallel and hands each result to `sink`
/// in unit order (so reductions do not depend on the thread count).
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

fn run_knn(
    ctx: &Ctx<'_>,
    o: &KnnOptions,
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
    let mut totals = Totals::new(ctx.opts);
    let mut qrows: Vec<Vec<f64>> = Vec::with_capacity(if need_q { nb } else { 0 });
    for_blocks(
        &all,
        Stage::Evaluating,
        progress,
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
