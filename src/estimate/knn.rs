//! The k-nearest-neighbour critic: `f(x̃, t)` is the mean `Δ` of the `k` training draws
//! nearest to `(x̃, t)` in standardized coordinates (the same standardization as
//! [`super::tuning::Standardizer`]), found with a kd-tree (the `kdtree` crate, whose dimension is
//! a run-time value; `kiddo` fixes it at compile time). The fit is linear in the training
//! targets `Δ` with weights that depend on `X̃_t` only, as the sign-flip test needs.
//! `k` is chosen by 2-fold cross-validation on the tuning subset.

use kdtree::distance::squared_euclidean;
use kdtree::KdTree;

use super::error::EstimateError;
use super::options::KnnOptions;
use super::tuning::{Standardizer, TuneData};

/// A kd-tree over standardized training draws; the payload is caller-defined.
pub struct Tree<T> {
    tree: KdTree<f64, T, Vec<f64>>,
    std: Standardizer,
    /// Point dimension `d + 1`.
    pub dims: usize,
}

impl<T: Copy> Tree<T> {
    /// Empty tree for `d`-dimensional samples.
    pub fn new(std: Standardizer, d: usize, capacity: usize) -> Self {
        Tree {
            tree: KdTree::with_capacity(d + 1, capacity.max(1)),
            std,
            dims: d + 1,
        }
    }

    /// Adds one draw.
    pub fn add(&mut self, xt: &[f64], t: f64, payload: T) -> Result<(), EstimateError> {
        let mut p = vec![0.0; self.dims];
        self.std.apply(xt, t, &mut p);
        self.tree
            .add(p, payload)
            .map_err(|e| EstimateError::Numerical(format!("kd-tree: {e:?}")))
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.tree.size()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Payloads of the `k` nearest draws, nearest first.
    pub fn nearest(
        &self,
        xt: &[f64],
        t: f64,
        k: usize,
        buf: &mut [f64],
    ) -> Result<Vec<T>, EstimateError> {
        self.std.apply(xt, t, buf);
        let found = self
            .tree
            .nearest(buf, k, &squared_euclidean)
            .map_err(|e| EstimateError::Numerical(format!("kd-tree: {e:?}")))?;
        Ok(found.into_iter().map(|(_, p)| *p).collect())
    }
}

/// The chosen `k` and its cross-validated mean squared error per draw.
#[derive(Debug, Clone, Copy)]
pub struct KnnChoice {
    /// `k`.
    pub k: usize,
    /// CV mean of `‖Δ − f‖²` per draw.
    pub cv_mse: f64,
}

/// Picks `k` minimizing the 2-fold CV squared error on `data` (pairs split by parity); `k`
/// values above the training half's size are skipped.
pub fn tune(
    data: &TuneData,
    std: &Standardizer,
    d: usize,
    r: usize,
    opts: &KnnOptions,
) -> Result<KnnChoice, EstimateError> {
    let halves = [data.half(0, d, r), data.half(1, d, r)];
    let kmax_allowed = halves.iter().map(|h| h.t.len()).min().unwrap_or(0).max(1);
    let ks: Vec<usize> = {
        let mut v: Vec<usize> = opts
            .ks
            .iter()
            .copied()
            .filter(|&k| k <= kmax_allowed)
            .collect();
        if v.is_empty() {
            v.push(kmax_allowed.min(*opts.ks.iter().min().expect("non-empty")));
        }
        v.sort_unstable();
        v.dedup();
        v
    };
    let kmax = *ks.iter().max().expect("non-empty");
    let mut sse = vec![0.0; ks.len()];
    let mut count = 0usize;
    let mut buf = vec![0.0; d + 1];
    for (a, b) in [(0, 1), (1, 0)] {
        let (ta, tb) = (&halves[a], &halves[b]);
        if ta.t.is_empty() || tb.t.is_empty() {
            continue;
        }
        let mut tree = Tree::new(std.clone(), d, ta.t.len());
        for row in 0..ta.t.len() {
            tree.add(&ta.xt[row * d..(row + 1) * d], ta.t[row], (row / r) as u32)?;
        }
        let mut acc = vec![0.0; d];
        for row in 0..tb.t.len() {
            let nn = tree.nearest(&tb.xt[row * d..(row + 1) * d], tb.t[row], kmax, &mut buf)?;
            acc.fill(0.0);
            let target = &tb.delta[(row / r) * d..(row / r + 1) * d];
            let mut ki = 0;
            for (j, &p) in nn.iter().enumerate() {
                let dp = &ta.delta[p as usize * d..(p as usize + 1) * d];
                for c in 0..d {
                    acc[c] += dp[c];
                }
                while ki < ks.len() && ks[ki] == j + 1 {
                    let kk = (j + 1) as f64;
                    sse[ki] += (0..d)
                        .map(|c| (target[c] - acc[c] / kk).powi(2))
                        .sum::<f64>();
                    ki += 1;
                }
            }
        }
        count += tb.t.len();
    }
    let mut best = KnnChoice {
        k: ks[0],
        cv_mse: f64::INFINITY,
    };
    for (i, &k) in ks.iter().enumerate() {
        let mse = if count > 0 {
            sse[i] / count as f64
        } else {
            0.0
        };
        if mse < best.cv_mse {
            best = KnnChoice { k, cv_mse: mse };
        }
    }
    Ok(best)
}
