//! A partition's rows in lock stripes: contiguous ranges of local rows, each behind its own
//! `RwLock`, so that a pull waits only for pushes into the stripes it reads, and pushes into
//! different stripes (two LDA workers' batches, ordered by row) proceed at the same time.
//!
//! A push takes one stripe's write lock at a time, in ascending stripe order, and applies the
//! part of its batch that falls there: no thread ever holds two stripe locks, so there is no
//! lock order to get wrong, and the longest wait is one stripe's share of one push. A reader
//! sees each stripe before or after a push's part in it, never a row half updated; a pull that
//! spans stripes may see a concurrent push in some of them and not yet in others, as it may see
//! one concurrent push and not another. Exactly-once bookkeeping and the consistency of
//! snapshots (no push half applied in one) are the partition's, in `shard.rs`.

use std::ops::Range;
use std::sync::{Arc, LazyLock, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};
use std::time::Instant;

use crate::aggregate::Aggregation;
use crate::metrics::{self, Counter};
use crate::row::RowBlock;
use crate::spec::Storage;
use crate::store::{AnyStore, RowStore, merge_row};
use crate::value::{DType, Value, Values};

/// Stripes per partition unless configured (`Limits::lock_stripes`): enough that the pushes
/// and pulls of a few dozen workers rarely meet in one stripe, few enough that a pull of
/// scattered rows pays little for taking their locks.
pub const DEFAULT_STRIPES: usize = 64;

static LOCK_WAIT: LazyLock<Arc<Counter>> = LazyLock::new(|| {
    metrics::seconds_counter(
        "ps_shard_lock_wait_seconds_total",
        "Seconds requests waited for a lock stripe of a model partition.",
        &[],
    )
});

/// Registers this module's metrics (with the shard's, so a scrape lists them from the start).
pub(crate) fn register_metrics() {
    LazyLock::force(&LOCK_WAIT);
}

/// The local rows of one partition, of one element type, in lock stripes.
#[derive(Debug)]
pub(crate) struct Stripes<T> {
    storage: Storage,
    cols: usize,
    /// log2 of the rows per stripe: local row `l` is row `l & mask` of stripe `l >> shift`.
    shift: u32,
    stripes: Vec<RwLock<RowStore<T>>>,
}

/// Rows per stripe (a power of two) for `local_rows` rows in at most `max_stripes` stripes.
fn rows_per_stripe(local_rows: u64, max_stripes: usize) -> u64 {
    local_rows
        .div_ceil(max_stripes.max(1) as u64)
        .max(1)
        .next_power_of_two()
}

impl<T: Value> Stripes<T> {
    pub fn new(storage: Storage, local_rows: u64, cols: u32, max_stripes: usize) -> Self {
        let per = rows_per_stripe(local_rows, max_stripes);
        let count = local_rows.div_ceil(per).max(1);
        let stripes = (0..count)
            .map(|s| {
                let rows = per.min(local_rows - (s * per).min(local_rows));
                RwLock::new(RowStore::new(storage, rows, cols))
            })
            .collect();
        Stripes {
            storage,
            cols: cols as usize,
            shift: per.trailing_zeros(),
            stripes,
        }
    }

    /// Splits the rows of one store (a snapshot's) into stripes.
    pub fn from_store(store: RowStore<T>, max_stripes: usize) -> Self {
        match store {
            RowStore::Dense { cols, data } => {
                let local_rows = data.len().checked_div(cols).unwrap_or(0);
                let per = rows_per_stripe(local_rows as u64, max_stripes);
                let chunk = (per as usize * cols).max(1);
                // Split in place from the back, giving each cut's memory back as it goes: a
                // load peaks at the snapshot's size plus one stripe, not twice the snapshot.
                let mut data = data;
                let mut pieces = Vec::with_capacity(data.len().div_ceil(chunk).max(1));
                while data.len() > chunk {
                    let last = (data.len() - 1) / chunk * chunk;
                    pieces.push(data.split_off(last));
                    data.shrink_to_fit();
                }
                pieces.push(data);
                pieces.reverse();
                let stripes: Vec<_> = pieces
                    .into_iter()
                    .map(|data| RwLock::new(RowStore::Dense { cols, data }))
                    .collect();
                Stripes {
                    storage: Storage::Dense,
                    cols,
                    shift: per.trailing_zeros(),
                    stripes,
                }
            }
            RowStore::Sparse { rows } => {
                let per = rows_per_stripe(rows.len() as u64, max_stripes);
                let mut stripes = Vec::new();
                let mut rest = rows.into_iter().peekable();
                while rest.peek().is_some() {
                    let rows: Vec<_> = rest.by_ref().take(per as usize).collect();
                    stripes.push(RwLock::new(RowStore::Sparse { rows }));
                }
                if stripes.is_empty() {
                    stripes.push(RwLock::new(RowStore::Sparse { rows: Vec::new() }));
                }
                Stripes {
                    storage: Storage::Sparse,
                    cols: 0,
                    shift: per.trailing_zeros(),
                    stripes,
                }
            }
        }
    }

    /// All rows as one store (a snapshot's copy), each stripe read in turn.
    pub fn to_store(&self) -> RowStore<T> {
        match self.storage {
            Storage::Dense => {
                let mut data = Vec::new();
                for s in 0..self.stripes.len() {
                    if let RowStore::Dense { data: d, .. } = &*self.read(s) {
                        data.extend_from_slice(d);
                    }
                }
                RowStore::Dense {
                    cols: self.cols,
                    data,
                }
            }
            Storage::Sparse => {
                let mut rows = Vec::new();
                for s in 0..self.stripes.len() {
                    if let RowStore::Sparse { rows: r } = &*self.read(s) {
                        rows.extend(r.iter().cloned());
                    }
                }
                RowStore::Sparse { rows }
            }
        }
    }

    #[inline]
    fn stripe_of(&self, local: usize) -> usize {
        local >> self.shift
    }

    #[inline]
    fn mask(&self) -> usize {
        (1usize << self.shift) - 1
    }

    /// A stripe's read lock; time spent waiting for it is counted in the lock-wait metric.
    fn read(&self, s: usize) -> RwLockReadGuard<'_, RowStore<T>> {
        match self.stripes[s].try_read() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                let waited = Instant::now();
                let guard = self.stripes[s].read().unwrap_or_else(|e| e.into_inner());
                LOCK_WAIT.add_duration(waited.elapsed());
                guard
            }
        }
    }

    fn write(&self, s: usize) -> RwLockWriteGuard<'_, RowStore<T>> {
        match self.stripes[s].try_write() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                let waited = Instant::now();
                let guard = self.stripes[s].write().unwrap_or_else(|e| e.into_inner());
                LOCK_WAIT.add_duration(waited.elapsed());
                guard
            }
        }
    }

    /// Number of values [`Stripes::block`] answers for these rows.
    pub fn block_elements(&self, locals: &[usize]) -> usize {
        if self.storage == Storage::Dense {
            return locals.len().saturating_mul(self.cols);
        }
        let mask = self.mask();
        let mut total = 0usize;
        for_runs(
            locals.len(),
            |k| self.stripe_of(locals[k]),
            |s, run| {
                let store = self.read(s);
                total += locals[run]
                    .iter()
                    .map(|&l| store.row_len(l & mask))
                    .sum::<usize>();
            },
        );
        total
    }

    /// The given local rows as one block (dense storage gives a dense block, sparse a sparse
    /// one), or `Err(values)` when it would hold more than `limit` values: the answer is
    /// bounded while it is built, not by a count that a concurrent push could outgrow.
    pub fn block(&self, locals: &[usize], limit: usize) -> Result<RowBlock, usize> {
        let mask = self.mask();
        match self.storage {
            Storage::Dense => {
                let total = locals.len().saturating_mul(self.cols);
                if total > limit {
                    return Err(total);
                }
                let mut out = Vec::with_capacity(total);
                for_runs(
                    locals.len(),
                    |k| self.stripe_of(locals[k]),
                    |s, run| {
                        let store = self.read(s);
                        for &l in &locals[run] {
                            out.extend_from_slice(store.dense_row(l & mask));
                        }
                    },
                );
                Ok(RowBlock::Dense {
                    cols: self.cols as u32,
                    values: T::into_values(out),
                })
            }
            Storage::Sparse => {
                let mut offsets = Vec::with_capacity(locals.len() + 1);
                let (mut cols, mut values) = (Vec::new(), Vec::new());
                offsets.push(0u32);
                let mut over = false;
                for_runs(
                    locals.len(),
                    |k| self.stripe_of(locals[k]),
                    |s, run| {
                        if over {
                            return;
                        }
                        let store = self.read(s);
                        for &l in &locals[run] {
                            let row = store.sparse_row(l & mask);
                            if cols.len() + row.len() > limit {
                                over = true;
                                return;
                            }
                            cols.extend(row.iter().map(|e| e.0));
                            values.extend(row.iter().map(|e| e.1));
                            offsets.push(cols.len() as u32);
                        }
                    },
                );
                if over {
                    return Err(self.block_elements(locals).max(limit.saturating_add(1)));
                }
                Ok(RowBlock::Sparse {
                    offsets,
                    cols,
                    values: T::into_values(values),
                })
            }
        }
    }

    /// The values at (`locals[i]`, `cols[i]`); the caller has checked the bounds.
    pub fn gather(&self, locals: &[usize], cols: &[u32]) -> Vec<T> {
        let mask = self.mask();
        let n = locals.len().min(cols.len());
        let mut out = Vec::with_capacity(n);
        for_runs(
            n,
            |k| self.stripe_of(locals[k]),
            |s, run| {
                let store = self.read(s);
                out.extend(run.map(|k| store.get(locals[k] & mask, cols[k])));
            },
        );
        out
    }

    /// Applies pushed `values` at (`locals[i]`, `cols[i]`) with `agg`, with the result of
    /// applying them one by one in push order; the caller has checked types and bounds.
    /// Returns the change of [`heap_bytes`](Self::heap_bytes).
    pub fn apply_all(
        &self,
        locals: &[usize],
        cols: &[u32],
        values: &[T],
        agg: &Aggregation,
    ) -> i64 {
        let n = locals.len().min(cols.len()).min(values.len());
        let mask = self.mask();
        match self.storage {
            Storage::Sparse => {
                // One stable order by cell serves both the stripes (ascending) and the merge.
                let order = crate::order::by_key(n, |i| locals[i] as u64, |i| cols[i]);
                let at = |k: usize| order.as_ref().map_or(k, |o| o[k] as usize);
                let mut grown = 0i64;
                let mut scratch = Vec::new();
                for_runs(
                    n,
                    |k| self.stripe_of(locals[at(k)]),
                    |s, run| {
                        let mut store = self.write(s);
                        if let RowStore::Sparse { rows } = &mut *store {
                            grown += merge_run(
                                rows,
                                mask,
                                run,
                                &at,
                                locals,
                                cols,
                                values,
                                agg,
                                &mut scratch,
                            );
                        }
                    },
                );
                grown * size_of::<(u32, T)>() as i64
            }
            Storage::Dense => {
                let order = self.stripe_order(locals, n);
                let at = |k: usize| order.as_ref().map_or(k, |o| o[k] as usize);
                for_runs(
                    n,
                    |k| self.stripe_of(locals[at(k)]),
                    |s, run| {
                        let mut store = self.write(s);
                        for k in run {
                            let i = at(k);
                            store.apply(locals[i] & mask, cols[i], values[i], agg);
                        }
                    },
                );
                0
            }
        }
    }

    /// Positions `0..n` stably ordered by stripe (a counting sort), or `None` when they are
    /// already: pushes to one stripe keep their order, which order-dependent aggregations see.
    fn stripe_order(&self, locals: &[usize], n: usize) -> Option<Vec<u32>> {
        if (1..n).all(|i| self.stripe_of(locals[i - 1]) <= self.stripe_of(locals[i])) {
            return None;
        }
        let mut starts = vec![0usize; self.stripes.len() + 1];
        for &l in &locals[..n] {
            starts[self.stripe_of(l) + 1] += 1;
        }
        for s in 1..starts.len() {
            starts[s] += starts[s - 1];
        }
        let mut order = vec![0u32; n];
        for (i, &l) in locals[..n].iter().enumerate() {
            let slot = &mut starts[self.stripe_of(l)];
            order[*slot] = i as u32;
            *slot += 1;
        }
        Some(order)
    }

    /// Bytes the rows hold on the heap (allocated capacity, not only the stored elements).
    pub fn heap_bytes(&self) -> u64 {
        (0..self.stripes.len())
            .map(|s| self.read(s).heap_bytes())
            .sum()
    }

    /// Bytes the cells (`locals[i]`, `cols[i]`) not stored yet would add to sparse rows (0 for
    /// dense storage); repeated cells count once.
    pub fn new_cell_bytes(&self, locals: &[usize], cols: &[u32]) -> u64 {
        if self.storage == Storage::Dense {
            return 0;
        }
        let mask = self.mask();
        let n = locals.len().min(cols.len());
        let mut absent: Vec<(usize, u32)> = Vec::new();
        for_runs(
            n,
            |k| self.stripe_of(locals[k]),
            |s, run| {
                let store = self.read(s);
                absent.extend(
                    run.filter(|&k| !store.has(locals[k] & mask, cols[k]))
                        .map(|k| (locals[k], cols[k])),
                );
            },
        );
        absent.sort_unstable();
        absent.dedup();
        (absent.len() * size_of::<(u32, T)>()) as u64
    }
}

/// Calls `f(stripe, run)` for each maximal run of consecutive positions in `0..n` that lie in
/// one stripe, holding nothing between calls.
fn for_runs(n: usize, stripe: impl Fn(usize) -> usize, mut f: impl FnMut(usize, Range<usize>)) {
    let mut k = 0;
    while k < n {
        let s = stripe(k);
        let mut end = k + 1;
        while end < n && stripe(end) == s {
            end += 1;
        }
        f(s, k..end);
        k = end;
    }
}

/// Merges the elements at positions `run` of a batch (ordered by cell through `at`) into the
/// sparse rows of one stripe, one sorted merge per row. Returns the change of the rows'
/// capacity, in elements.
#[allow(clippy::too_many_arguments)]
fn merge_run<T: Value>(
    rows: &mut [Vec<(u32, T)>],
    mask: usize,
    run: Range<usize>,
    at: &impl Fn(usize) -> usize,
    locals: &[usize],
    cols: &[u32],
    values: &[T],
    agg: &Aggregation,
    scratch: &mut Vec<(u32, T)>,
) -> i64 {
    let mut grown = 0i64;
    let mut k = run.start;
    while k < run.end {
        let local = locals[at(k)];
        let mut end = k + 1;
        while end < run.end && locals[at(end)] == local {
            end += 1;
        }
        let batch = (k..end).map(|j| {
            let i = at(j);
            (cols[i], values[i])
        });
        let row = &mut rows[local & mask];
        let before = row.capacity() as i64;
        merge_row(row, batch, agg, scratch);
        grown += row.capacity() as i64 - before;
        k = end;
    }
    grown
}

/// [`Stripes`] of any element type.
#[derive(Debug)]
pub(crate) enum AnyStripes {
    I32(Stripes<i32>),
    I64(Stripes<i64>),
    F32(Stripes<f32>),
    F64(Stripes<f64>),
}

/// Runs `$body` with `$s` bound to the typed stripes inside an [`AnyStripes`].
macro_rules! with_stripes {
    ($any:expr, $s:ident => $body:expr) => {
        match $any {
            AnyStripes::I32($s) => $body,
            AnyStripes::I64($s) => $body,
            AnyStripes::F32($s) => $body,
            AnyStripes::F64($s) => $body,
        }
    };
}

impl AnyStripes {
    pub fn new(
        dtype: DType,
        storage: Storage,
        local_rows: u64,
        cols: u32,
        max_stripes: usize,
    ) -> Self {
        match dtype {
            DType::I32 => AnyStripes::I32(Stripes::new(storage, local_rows, cols, max_stripes)),
            DType::I64 => AnyStripes::I64(Stripes::new(storage, local_rows, cols, max_stripes)),
            DType::F32 => AnyStripes::F32(Stripes::new(storage, local_rows, cols, max_stripes)),
            DType::F64 => AnyStripes::F64(Stripes::new(storage, local_rows, cols, max_stripes)),
        }
    }

    pub fn from_store(store: AnyStore, max_stripes: usize) -> Self {
        match store {
            AnyStore::I32(s) => AnyStripes::I32(Stripes::from_store(s, max_stripes)),
            AnyStore::I64(s) => AnyStripes::I64(Stripes::from_store(s, max_stripes)),
            AnyStore::F32(s) => AnyStripes::F32(Stripes::from_store(s, max_stripes)),
            AnyStore::F64(s) => AnyStripes::F64(Stripes::from_store(s, max_stripes)),
        }
    }

    pub fn to_store(&self) -> AnyStore {
        match self {
            AnyStripes::I32(s) => AnyStore::I32(s.to_store()),
            AnyStripes::I64(s) => AnyStore::I64(s.to_store()),
            AnyStripes::F32(s) => AnyStore::F32(s.to_store()),
            AnyStripes::F64(s) => AnyStore::F64(s.to_store()),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            AnyStripes::I32(_) => DType::I32,
            AnyStripes::I64(_) => DType::I64,
            AnyStripes::F32(_) => DType::F32,
            AnyStripes::F64(_) => DType::F64,
        }
    }

    pub fn block(&self, locals: &[usize], limit: usize) -> Result<RowBlock, usize> {
        with_stripes!(self, s => s.block(locals, limit))
    }

    pub fn gather(&self, locals: &[usize], cols: &[u32]) -> Values {
        with_stripes!(self, s => Value::into_values(s.gather(locals, cols)))
    }

    /// Applies pushed `values` (of this store's type: others are ignored, the caller checks).
    pub fn apply_all(
        &self,
        locals: &[usize],
        cols: &[u32],
        values: &Values,
        agg: &Aggregation,
    ) -> i64 {
        match (self, values) {
            (AnyStripes::I32(s), Values::I32(v)) => s.apply_all(locals, cols, v, agg),
            (AnyStripes::I64(s), Values::I64(v)) => s.apply_all(locals, cols, v, agg),
            (AnyStripes::F32(s), Values::F32(v)) => s.apply_all(locals, cols, v, agg),
            (AnyStripes::F64(s), Values::F64(v)) => s.apply_all(locals, cols, v, agg),
            _ => 0,
        }
    }

    pub fn heap_bytes(&self) -> u64 {
        with_stripes!(self, s => s.heap_bytes())
    }

    pub fn new_cell_bytes(&self, locals: &[usize], cols: &[u32]) -> u64 {
        with_stripes!(self, s => s.new_cell_bytes(locals, cols))
    }

    /// Holds stripe `s` of an i32 partition as a push in progress there would (tests of what
    /// waits for what).
    #[cfg(test)]
    pub(crate) fn hold_i32(&self, s: usize) -> Option<RwLockWriteGuard<'_, RowStore<i32>>> {
        match self {
            AnyStripes::I32(stripes) => Some(stripes.write(s)),
            _ => None,
        }
    }

    #[cfg(test)]
    fn stripe_count(&self) -> usize {
        with_stripes!(self, s => s.stripes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    /// The per-element semantics: each pushed value combined in push order, zeros removed.
    fn reference<T: Value>(
        rows: &mut [BTreeMap<u32, T>],
        locals: &[usize],
        cols: &[u32],
        values: &[T],
        agg: &Aggregation,
    ) {
        for ((&l, &c), &v) in locals.iter().zip(cols).zip(values) {
            let current = rows[l].get(&c).copied().unwrap_or_default();
            let combined = agg.combine(current, v);
            if combined.is_zero() {
                rows[l].remove(&c);
            } else {
                rows[l].insert(c, combined);
            }
        }
    }

    struct Halve;
    impl crate::aggregate::Aggregator for Halve {
        fn combine_i64(&self, current: i64, pushed: i64) -> i64 {
            current / 2 + pushed
        }
        fn combine_f64(&self, current: f64, pushed: f64) -> f64 {
            current / 2.0 + pushed
        }
    }

    fn aggregation(i: u8) -> Aggregation {
        match i % 5 {
            0 => Aggregation::Add,
            1 => Aggregation::Max,
            2 => Aggregation::Min,
            3 => Aggregation::Replace,
            _ => Aggregation::Custom(Arc::new(Halve)),
        }
    }

    fn sparse_rows<T: Value>(s: &Stripes<T>) -> Vec<Vec<(u32, T)>> {
        match s.to_store() {
            RowStore::Sparse { rows } => rows,
            RowStore::Dense { .. } => unreachable!("built as sparse"),
        }
    }

    const ROWS: usize = 6;

    proptest! {
        #[test]
        fn sparse_merge_equals_element_by_element(
            initial in proptest::collection::vec((0usize..ROWS, 0u32..40, -3i32..4), 0..120),
            // Few distinct values and columns: many repeated cells and many zero results.
            pushes in proptest::collection::vec((0usize..ROWS, 0u32..40, -3i32..4), 0..200),
            sort_first in any::<bool>(),
            agg in 0u8..5,
            max_stripes in 1usize..8,
        ) {
            let agg = aggregation(agg);
            let store = Stripes::<i32>::new(Storage::Sparse, ROWS as u64, 40, max_stripes);
            let mut expected = vec![BTreeMap::new(); ROWS];
            for &(l, c, v) in &initial {
                store.apply_all(&[l], &[c], &[v], &Aggregation::Add);
                reference(&mut expected, &[l], &[c], &[v], &Aggregation::Add);
            }
            let mut pushes = pushes;
            if sort_first {
                pushes.sort_by_key(|&(l, c, _)| (l, c)); // stable, like the wire order
            }
            let locals: Vec<usize> = pushes.iter().map(|p| p.0).collect();
            let cols: Vec<u32> = pushes.iter().map(|p| p.1).collect();
            let values: Vec<i32> = pushes.iter().map(|p| p.2).collect();
            store.apply_all(&locals, &cols, &values, &agg);
            reference(&mut expected, &locals, &cols, &values, &agg);
            let rows = sparse_rows(&store);
            prop_assert_eq!(rows.len(), ROWS);
            for (row, want) in rows.iter().zip(&expected) {
                let want: Vec<(u32, i32)> = want.iter().map(|(&c, &v)| (c, v)).collect();
                prop_assert_eq!(row, &want);
            }
            // A block of every row, in an arbitrary order, answers the same rows.
            let order: Vec<usize> = (0..ROWS).rev().chain([2, 2]).collect();
            let block = store.block(&order, usize::MAX).unwrap().into_rows::<i32>().unwrap();
            for (&l, got) in order.iter().zip(block) {
                let want: Vec<(u32, i32)> = expected[l].iter().map(|(&c, &v)| (c, v)).collect();
                prop_assert_eq!(got.nonzeros(), want);
            }
        }

        #[test]
        fn dense_pushes_keep_their_order_across_stripes(
            pushes in proptest::collection::vec((0usize..ROWS, 0u32..3, -3i64..4), 0..200),
            agg in 0u8..5,
            max_stripes in 1usize..8,
        ) {
            let agg = aggregation(agg);
            let store = Stripes::<i64>::new(Storage::Dense, ROWS as u64, 3, max_stripes);
            let locals: Vec<usize> = pushes.iter().map(|p| p.0).collect();
            let cols: Vec<u32> = pushes.iter().map(|p| p.1).collect();
            let values: Vec<i64> = pushes.iter().map(|p| p.2).collect();
            store.apply_all(&locals, &cols, &values, &agg);
            let mut expected = vec![BTreeMap::new(); ROWS];
            reference(&mut expected, &locals, &cols, &values, &agg);
            let all: Vec<usize> = (0..ROWS).flat_map(|l| [l; 3]).collect();
            let cells: Vec<u32> = (0..ROWS).flat_map(|_| [0, 1, 2]).collect();
            let got = store.gather(&all, &cells);
            let want: Vec<i64> = all
                .iter()
                .zip(&cells)
                .map(|(&l, c)| expected[l].get(c).copied().unwrap_or_default())
                .collect();
            prop_assert_eq!(got, want);
            // Splitting a copy into a different number of stripes keeps every row.
            let resplit = Stripes::from_store(store.to_store(), max_stripes + 2);
            prop_assert_eq!(resplit.to_store(), store.to_store());
        }

        #[test]
        fn float_merge_keeps_negative_zero_semantics(
            pushes in proptest::collection::vec(
                (0u32..6, prop_oneof![Just(0.0f64), Just(-0.0), Just(1.5), Just(-1.5)]),
                0..40,
            ),
            agg in 0u8..5,
        ) {
            let agg = aggregation(agg);
            let cols: Vec<u32> = pushes.iter().map(|p| p.0).collect();
            let values: Vec<f64> = pushes.iter().map(|p| p.1).collect();
            let locals = vec![0; pushes.len()];
            let store = Stripes::<f64>::new(Storage::Sparse, 1, 6, 4);
            store.apply_all(&locals, &cols, &values, &agg);
            let mut expected = vec![BTreeMap::new()];
            reference(&mut expected, &locals, &cols, &values, &agg);
            let want: Vec<(u32, f64)> = expected[0].iter().map(|(&c, &v)| (c, v)).collect();
            // Bitwise, so -0.0 and 0.0 are told apart.
            let bits = |r: &[(u32, f64)]| r.iter().map(|&(c, v)| (c, v.to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(bits(&sparse_rows(&store)[0]), bits(&want));
        }
    }

    #[test]
    fn stripes_cover_every_row_in_at_most_the_configured_number() {
        for (rows, max, stripes) in [
            (0, 64, 1),
            (1, 64, 1),
            (100_000, 64, 49),
            (7, 64, 7),
            (7, 1, 1),
        ] {
            let s = AnyStripes::new(DType::I32, Storage::Sparse, rows, 4, max);
            assert_eq!(s.stripe_count(), stripes, "{rows} rows, at most {max}");
            let AnyStore::I32(RowStore::Sparse { rows: all }) = s.to_store() else {
                unreachable!("built as sparse i32")
            };
            assert_eq!(all.len() as u64, rows);
        }
    }

    #[test]
    fn a_wide_descending_push_is_one_pass() {
        // Regression (issue 9): element-by-element inserts made this quadratic (~8·10^10 element
        // moves for 400,000 columns: about 30 s unoptimised); the merge takes well under 1 s.
        let n = 400_000u32;
        let store = Stripes::<i64>::new(Storage::Sparse, 1, n, DEFAULT_STRIPES);
        let cols: Vec<u32> = (0..n).rev().collect();
        let locals = vec![0; n as usize];
        let start = Instant::now();
        store.apply_all(&locals, &cols, &vec![1; n as usize], &Aggregation::Add);
        store.apply_all(&locals, &cols, &vec![-1; n as usize], &Aggregation::Add);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        let rows = sparse_rows(&store);
        assert!(rows[0].is_empty());
        assert!(
            rows[0].capacity() < 64,
            "memory given back: {}",
            rows[0].capacity()
        );
    }

    #[test]
    fn a_block_over_its_limit_is_refused_with_its_size() {
        let store = Stripes::<i32>::new(Storage::Sparse, 8, 100, 4);
        let locals: Vec<usize> = (0..8).flat_map(|l| [l; 10]).collect();
        let cols: Vec<u32> = (0..80).map(|i| i % 10).collect();
        store.apply_all(&locals, &cols, &[1; 80], &Aggregation::Add);
        assert!(store.block(&[0, 7], 20).is_ok());
        assert_eq!(store.block(&[0, 7, 3], 20).err(), Some(30));
        let dense = Stripes::<i32>::new(Storage::Dense, 8, 100, 4);
        assert_eq!(dense.block(&[1, 2], 199).err(), Some(200));
        assert!(dense.block(&[1, 2], 200).is_ok());
    }

    #[test]
    fn a_pull_waits_only_for_its_own_stripes() {
        // 4 stripes of 4 rows. A writer holding stripe 0 (a push in progress there) must not
        // delay a pull of rows in other stripes; a pull of a row in stripe 0 (the control)
        // waits until the writer lets go.
        let store = Arc::new(Stripes::<i32>::new(Storage::Sparse, 16, 8, 4));
        let held = store.stripes[0].write().unwrap();
        let pull = |rows: Vec<usize>| {
            let store = store.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(store.block(&rows, usize::MAX).is_ok());
            });
            rx
        };
        let elsewhere = pull(vec![4, 9, 15]);
        assert_eq!(elsewhere.recv_timeout(Duration::from_secs(10)), Ok(true));
        let same = pull(vec![9, 1]);
        assert!(same.recv_timeout(Duration::from_millis(200)).is_err());
        drop(held);
        assert_eq!(same.recv_timeout(Duration::from_secs(10)), Ok(true));
    }

    #[test]
    fn concurrent_pushes_and_pulls_lose_nothing() {
        let store = Arc::new(Stripes::<i64>::new(Storage::Sparse, 256, 16, 8));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for round in 0..200u64 {
                        // Every row in a different order per thread: the pushes cross stripes.
                        let locals: Vec<usize> = (0..256)
                            .map(|i| ((i * 37 + t * 11 + round) % 256) as usize)
                            .collect();
                        let cols: Vec<u32> = (0..256).map(|i| ((i + round) % 16) as u32).collect();
                        store.apply_all(&locals, &cols, &[1; 256], &Aggregation::Add);
                        let _ = store.block(&[(round % 256) as usize, 3], usize::MAX);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let total: i64 = sparse_rows(&store).iter().flatten().map(|e| e.1).sum();
        assert_eq!(total, 4 * 200 * 256);
    }
}
