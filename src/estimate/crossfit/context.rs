//! The data and design of a cross-fitted run ([`Ctx`]): the two sample sets, the folds,
//! pairs and blocks, the draws of `(t, B, ε)` and the observations `X̃_t` of Eq. 7 block by
//! block, which half critic a training block feeds ([`half`]), and the ordered parallel walk
//! over blocks ([`Ctx::for_blocks`]) that both critics' passes take.

use ndarray::{CowArray, Ix2};
use rayon::prelude::*;

use crate::estimate::error::EstimateError;
use crate::estimate::options::EstimateOptions;
use crate::estimate::pairs::{Design, DrawGen};
use crate::estimate::progress::{Progress, Stage};
use crate::estimate::tuning::{Standardizer, TuneData};

/// Work units (blocks, or the RFF passes' units) processed in parallel before their results
/// are reduced (in unit order).
const GROUP: usize = 16;

/// The data and design of a cross-fitted run.
pub(super) struct Ctx<'a> {
    pub x0: CowArray<'a, f64, Ix2>,
    pub x1: CowArray<'a, f64, Ix2>,
    pub d: usize,
    pub design: Design,
    pub opts: &'a EstimateOptions,
    /// The caller's progress callback.
    pub progress: &'a (dyn Fn(Progress) + Sync),
    /// Per fold: the standardization of its critics' inputs and the tuning draws it was fitted
    /// on (those of every other fold).
    pub tuning: Vec<(Standardizer, TuneData)>,
}

/// Draws of one block (or of consecutive segments of blocks).
#[derive(Default)]
pub(super) struct BlockDraws {
    pub xt: Vec<f64>,
    pub t: Vec<f64>,
    pub delta: Vec<f64>,
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

    pub(super) fn delta_into(&self, fold: usize, p: usize, out: &mut [f64]) {
        let (i0, i1) = self.design.pairs[fold][p];
        let (a, b) = (self.row0(i0), self.row1(i1));
        for c in 0..self.d {
            out[c] = b[c] - a[c];
        }
    }

    pub(super) fn block_draws(&self, g: usize) -> BlockDraws {
        let mut out = BlockDraws::default();
        self.append_draws(g, 0, self.design.blocks[g].len(), &mut out);
        out
    }

    /// Appends the draws of pairs `a..e` of block `g` to `out`. The block's stream is run from
    /// its first pair (the draws of pairs before `a` are made and dropped), so a segment's
    /// draws are those of the whole block's, whichever way the block is cut.
    pub(super) fn append_draws(&self, g: usize, a: usize, e: usize, out: &mut BlockDraws) {
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
    pub(super) fn tune_data(&self, k: usize) -> TuneData {
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

impl Ctx<'_> {
    /// Runs `f` over work units in groups of [`GROUP`] in parallel and hands each result to
    /// `sink` in unit order (so reductions do not depend on the thread count), reporting
    /// `stage` to the progress callback.
    pub(super) fn for_blocks<T: Send>(
        &self,
        blocks: &[usize],
        stage: Stage,
        f: impl Fn(usize) -> Result<T, EstimateError> + Sync,
        mut sink: impl FnMut(usize, T),
    ) -> Result<(), EstimateError> {
        let progress = self.progress;
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
