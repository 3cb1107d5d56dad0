//! Assignment of a model's rows to shards, and the mapping between global and shard-local rows.

use crate::spec::PartitionerKind;

/// Maps global rows to (shard, local row) for one model over `shards` shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioner {
    kind: PartitionerKind,
    rows: u64,
    shards: u64,
    /// Rows per shard for range partitioning (the last shard may hold fewer).
    chunk: u64,
    /// log2(shards) when cyclic over a power-of-two number of shards (one shard included): the
    /// per-element mapping on the push path is then a mask and a shift instead of two divisions.
    cyclic_shift: Option<u32>,
}

impl Partitioner {
    pub fn new(kind: PartitionerKind, rows: u64, shards: usize) -> Self {
        let shards = shards.max(1) as u64;
        let chunk = rows.div_ceil(shards).max(1);
        let single_range = kind == PartitionerKind::Range && shards == 1;
        let cyclic_shift = (kind == PartitionerKind::Cyclic || single_range)
            .then_some(shards)
            .filter(|s| s.is_power_of_two())
            .map(u64::trailing_zeros);
        Partitioner {
            kind,
            rows,
            shards,
            chunk,
            cyclic_shift,
        }
    }

    pub fn shards(&self) -> usize {
        self.shards as usize
    }

    /// The shard holding global row `row` (`row < rows`).
    #[inline]
    pub fn shard_of(&self, row: u64) -> usize {
        if let Some(shift) = self.cyclic_shift {
            return (row & ((1u64 << shift) - 1)) as usize;
        }
        match self.kind {
            PartitionerKind::Range => (row / self.chunk) as usize,
            PartitionerKind::Cyclic => (row % self.shards) as usize,
        }
    }

    /// The index of global row `row` within its shard.
    #[inline]
    pub fn local_row(&self, row: u64) -> u64 {
        if let Some(shift) = self.cyclic_shift {
            return row >> shift;
        }
        match self.kind {
            PartitionerKind::Range => row % self.chunk,
            PartitionerKind::Cyclic => row / self.shards,
        }
    }

    /// The global row of `local` on `shard`.
    #[inline]
    pub fn global_row(&self, shard: usize, local: u64) -> u64 {
        if let Some(shift) = self.cyclic_shift {
            return (local << shift) | shard as u64;
        }
        match self.kind {
            PartitionerKind::Range => shard as u64 * self.chunk + local,
            PartitionerKind::Cyclic => local * self.shards + shard as u64,
        }
    }

    /// How many rows `shard` holds.
    pub fn rows_on(&self, shard: usize) -> u64 {
        let shard = shard as u64;
        match self.kind {
            PartitionerKind::Range => {
                let start = (shard * self.chunk).min(self.rows);
                let end = ((shard + 1) * self.chunk).min(self.rows);
                end - start
            }
            PartitionerKind::Cyclic => {
                if shard < self.rows % self.shards {
                    self.rows / self.shards + 1
                } else {
                    self.rows / self.shards
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_row_maps_to_one_shard_and_back(rows in 0u64..500, shards in 1usize..9, cyclic: bool) {
            let kind = if cyclic { PartitionerKind::Cyclic } else { PartitionerKind::Range };
            let p = Partitioner::new(kind, rows, shards);
            let mut per_shard = vec![0u64; shards];
            for row in 0..rows {
                let s = p.shard_of(row);
                prop_assert!(s < shards);
                let local = p.local_row(row);
                prop_assert!(local < p.rows_on(s));
                prop_assert_eq!(p.global_row(s, local), row);
                per_shard[s] += 1;
            }
            for (s, n) in per_shard.iter().enumerate() {
                prop_assert_eq!(*n, p.rows_on(s));
            }
        }
    }
}
