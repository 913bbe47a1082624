//! Each rank's rows of a global batch: rank `r` of `N` keeps rows `[r·B/N, (r+1)·B/N)`, a
//! disjoint, deterministic partition (the global batch `B` is what `--batch` says).

use super::DistError;
use tch::Tensor;

/// A rank's share of every global batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Rank.
    pub rank: usize,
    /// Ranks.
    pub world: usize,
}

impl Shard {
    /// The whole batch (one process).
    pub const ALL: Shard = Shard { rank: 0, world: 1 };

    /// `(first row, rows)` of a global batch of `batch` rows; an error unless `world`
    /// divides `batch`.
    pub fn rows(&self, batch: i64) -> Result<(i64, i64), DistError> {
        let w = self.world as i64;
        if batch <= 0 || batch % w != 0 {
            return Err(DistError::Indivisible {
                batch,
                world: self.world,
            });
        }
        let per = batch / w;
        Ok((self.rank as i64 * per, per))
    }

    /// This rank's rows of `global` (dim 0); `global` itself for one process.
    pub fn local(&self, global: &Tensor) -> Result<Tensor, DistError> {
        if self.world == 1 {
            return Ok(global.shallow_clone());
        }
        let (start, len) = self.rows(global.size()[0])?;
        Ok(global.narrow(0, start, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shards of every rank tile the batch exactly once, in order.
    #[test]
    fn shards_partition_the_batch() {
        for world in [1usize, 2, 3, 4, 8] {
            let batch = 24i64;
            let mut next = 0;
            for rank in 0..world {
                let (start, len) = Shard { rank, world }.rows(batch).unwrap();
                assert_eq!(start, next);
                next += len;
            }
            assert_eq!(next, batch);
        }
        let e = Shard { rank: 0, world: 5 }.rows(24).unwrap_err();
        assert!(e.to_string().contains("--batch 24"), "{e}");
        let t = Tensor::arange(6, (tch::Kind::Int64, tch::Device::Cpu));
        let mine = Shard { rank: 1, world: 3 }.local(&t).unwrap();
        assert_eq!(Vec::<i64>::try_from(&mine).unwrap(), [2, 3]);
    }
}
