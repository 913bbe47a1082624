//! Training images as [`Batches`]: a data set visited in seeded epoch-wise permutations, or a
//! synthetic law over images. Batch `index` is a pure function of its index, so that a resumed
//! run sees exactly the batches of the uninterrupted one.

use super::order::derive_seed;
use super::{BatchOrder, ImageSet};
use crate::error::TrainError;
use crate::train::method::Batches;
use tch::{Device, Tensor};

/// Stream of the training set's batch order of an MGM run.
const DATA_STREAM: u64 = 0x4441_5441;

/// A training set ([`ImageSet`]: CIFAR-10 binary or a PNG folder) visited in the epoch-wise
/// permutations of [`BatchOrder`], optionally mirrored left–right with probability ½.
#[derive(Debug)]
pub struct DataImages {
    set: ImageSet,
    order: BatchOrder,
    xflip: bool,
    seed: u64,
}

impl DataImages {
    /// The images of `set` in the order of an MGM run of seed `seed`.
    pub fn new(set: ImageSet, seed: u64, xflip: bool) -> Result<Self, TrainError> {
        let order_seed = derive_seed(seed, DATA_STREAM, 0);
        Self::with_order_seed(set, order_seed, seed, xflip)
    }

    /// The images of `set` in the order [`BatchOrder::new`]`(len, order_seed)` (the warmup
    /// orders by its run seed itself); `seed` is the run's, for [`Batches::describe`].
    pub fn with_order_seed(
        set: ImageSet,
        order_seed: u64,
        seed: u64,
        xflip: bool,
    ) -> Result<Self, TrainError> {
        if set.is_empty() {
            return Err(TrainError::InvalidOption(format!(
                "{}: no training images",
                set.source()
            )));
        }
        let order = BatchOrder::new(set.len(), order_seed);
        Ok(DataImages {
            set,
            order,
            xflip,
            seed,
        })
    }
}

impl Batches for DataImages {
    fn batch(&mut self, index: u64, n: i64, device: Device) -> Result<Tensor, TrainError> {
        let n = usize::try_from(n)
            .map_err(|_| TrainError::InvalidOption(format!("batch of {n} images")))?;
        let idx = self.order.indices(index, n);
        let flips = self.order.flips(index, n, self.xflip);
        Ok(self.set.batch(&idx, &flips, device))
    }

    /// Only the rows asked for are gathered (a data-parallel rank reads its share alone).
    fn rows(
        &mut self,
        index: u64,
        n: i64,
        start: i64,
        len: i64,
        device: Device,
    ) -> Result<Tensor, TrainError> {
        let bad =
            || TrainError::InvalidOption(format!("rows {start}..{start}+{len} of a batch of {n}"));
        let (n, start, len) = (
            usize::try_from(n).map_err(|_| bad())?,
            usize::try_from(start).map_err(|_| bad())?,
            usize::try_from(len).map_err(|_| bad())?,
        );
        if start + len > n {
            return Err(bad());
        }
        let idx = self.order.indices(index, n);
        let flips = self.order.flips(index, n, self.xflip);
        Ok(self
            .set
            .batch(&idx[start..start + len], &flips[start..start + len], device))
    }

    fn describe(&self) -> String {
        format!(
            "{} ({} images, xflip {}, seed {})",
            self.set.source(),
            self.set.len(),
            self.xflip,
            self.seed
        )
    }
}

/// Images drawn from a law over flattened images (e.g. a [`midpoint::Law`] of dimension
/// `C·H·W`): batch `index` is `n` draws from a generator seeded by `(seed, index)`.
#[derive(Debug, Clone)]
pub struct LawImages {
    /// The law, of dimension `C·H·W`.
    pub law: midpoint::Law,
    /// `[C, H, W]`.
    pub shape: [i64; 3],
    /// Seed of the batches.
    pub seed: u64,
}

impl LawImages {
    /// Checks that the law's dimension is `C·H·W`.
    pub fn new(law: midpoint::Law, shape: [i64; 3], seed: u64) -> Result<Self, TrainError> {
        let d: i64 = shape.iter().product();
        if law.dim() as i64 != d {
            return Err(TrainError::InvalidOption(format!(
                "law of dimension {} for images of {shape:?} ({d} values)",
                law.dim()
            )));
        }
        Ok(LawImages { law, shape, seed })
    }
}

impl Batches for LawImages {
    fn batch(&mut self, index: u64, n: i64, device: Device) -> Result<Tensor, TrainError> {
        use rand::SeedableRng;
        let mut rng =
            rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(derive_seed(self.seed, 7, index));
        let x = crate::train::bridge::law_tensor(&self.law, n as usize, &mut rng, device)?;
        let [c, h, w] = self.shape;
        Ok(x.reshape([n, c, h, w]))
    }

    fn describe(&self) -> String {
        format!(
            "synthetic law of dimension {} (seed {})",
            self.law.dim(),
            self.seed
        )
    }
}
