//! The rows of one model held by one shard, dense or sparse, and how pushes combine into them.

use crate::aggregate::Aggregation;
use crate::row::RowBlock;
use crate::spec::Storage;
use crate::value::{DType, Value, Values};

/// Local rows of one element type.
#[derive(Debug, Clone, PartialEq)]
pub enum RowStore<T> {
    Dense {
        cols: usize,
        data: Vec<T>,
    },
    /// One sorted `(col, value)` list per local row; zeros are never stored.
    Sparse {
        rows: Vec<Vec<(u32, T)>>,
    },
}

impl<T: Value> RowStore<T> {
    pub fn new(storage: Storage, local_rows: u64, cols: u32) -> Self {
        match storage {
            Storage::Dense => RowStore::Dense {
                cols: cols as usize,
                data: vec![T::default(); local_rows as usize * cols as usize],
            },
            Storage::Sparse => RowStore::Sparse {
                rows: vec![Vec::new(); local_rows as usize],
            },
        }
    }

    #[inline]
    pub fn get(&self, local: usize, col: u32) -> T {
        match self {
            RowStore::Dense { cols, data } => data[local * cols + col as usize],
            RowStore::Sparse { rows } => {
                let row = &rows[local];
                match row.binary_search_by_key(&col, |e| e.0) {
                    Ok(i) => row[i].1,
                    Err(_) => T::default(),
                }
            }
        }
    }

    #[inline]
    pub fn apply(&mut self, local: usize, col: u32, pushed: T, agg: &Aggregation) {
        match self {
            RowStore::Dense { cols, data } => {
                let slot = &mut data[local * *cols + col as usize];
                *slot = agg.combine(*slot, pushed);
            }
            RowStore::Sparse { rows } => {
                let row = &mut rows[local];
                match row.binary_search_by_key(&col, |e| e.0) {
                    Ok(i) => {
                        let combined = agg.combine(row[i].1, pushed);
                        if combined.is_zero() {
                            row.remove(i);
                        } else {
                            row[i].1 = combined;
                        }
                    }
                    Err(i) => {
                        let combined = agg.combine(T::default(), pushed);
                        if !combined.is_zero() {
                            row.insert(i, (col, combined));
                        }
                    }
                }
            }
        }
    }

    /// How many values [`RowStore::block`] would answer for these rows.
    pub fn block_elements(&self, locals: &[usize]) -> usize {
        match self {
            RowStore::Dense { cols, .. } => locals.len().saturating_mul(*cols),
            RowStore::Sparse { rows } => locals.iter().map(|&l| rows[l].len()).sum(),
        }
    }

    /// The given local rows as one block (dense storage gives a dense block, sparse a sparse one).
    pub fn block(&self, locals: &[usize]) -> RowBlock {
        match self {
            RowStore::Dense { cols, data } => {
                let mut out = Vec::with_capacity(locals.len() * cols);
                for &l in locals {
                    out.extend_from_slice(&data[l * cols..(l + 1) * cols]);
                }
                RowBlock::Dense {
                    cols: *cols as u32,
                    values: T::into_values(out),
                }
            }
            RowStore::Sparse { rows } => {
                let total: usize = locals.iter().map(|&l| rows[l].len()).sum();
                let mut offsets = Vec::with_capacity(locals.len() + 1);
                let mut cols = Vec::with_capacity(total);
                let mut values = Vec::with_capacity(total);
                offsets.push(0u32);
                for &l in locals {
                    for &(c, v) in &rows[l] {
                        cols.push(c);
                        values.push(v);
                    }
                    offsets.push(cols.len() as u32);
                }
                RowBlock::Sparse {
                    offsets,
                    cols,
                    values: T::into_values(values),
                }
            }
        }
    }

    /// Bytes the rows hold on the heap (allocated capacity, not only the stored elements).
    pub fn heap_bytes(&self) -> u64 {
        match self {
            RowStore::Dense { data, .. } => (data.capacity() * size_of::<T>()) as u64,
            RowStore::Sparse { rows } => {
                let cells: usize = rows.iter().map(Vec::capacity).sum();
                (rows.capacity() * size_of::<Vec<(u32, T)>>() + cells * size_of::<(u32, T)>())
                    as u64
            }
        }
    }

    /// Bytes the cells (`locals[i]`, `cols[i]`) not stored yet would add to sparse rows (0 for
    /// dense storage); repeated cells count once.
    pub fn new_cell_bytes(&self, locals: &[usize], cols: &[u32]) -> u64 {
        let RowStore::Sparse { rows } = self else {
            return 0;
        };
        let mut absent: Vec<(usize, u32)> = locals
            .iter()
            .zip(cols)
            .filter(|&(&l, &c)| {
                rows.get(l)
                    .is_some_and(|r| r.binary_search_by_key(&c, |e| e.0).is_err())
            })
            .map(|(&l, &c)| (l, c))
            .collect();
        absent.sort_unstable();
        absent.dedup();
        (absent.len() * size_of::<(u32, T)>()) as u64
    }

    /// Number of stored elements (all of them for dense storage, the non-zeros for sparse).
    #[cfg(test)]
    pub fn stored_elements(&self) -> usize {
        match self {
            RowStore::Dense { data, .. } => data.len(),
            RowStore::Sparse { rows } => rows.iter().map(Vec::len).sum(),
        }
    }
}

/// A [`RowStore`] of any element type.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyStore {
    I32(RowStore<i32>),
    I64(RowStore<i64>),
    F32(RowStore<f32>),
    F64(RowStore<f64>),
}

/// Runs `$body` with `$s` bound to the typed store inside an [`AnyStore`].
macro_rules! with_store {
    ($any:expr, $s:ident => $body:expr) => {
        match $any {
            $crate::store::AnyStore::I32($s) => $body,
            $crate::store::AnyStore::I64($s) => $body,
            $crate::store::AnyStore::F32($s) => $body,
            $crate::store::AnyStore::F64($s) => $body,
        }
    };
}

impl AnyStore {
    pub fn new(dtype: DType, storage: Storage, local_rows: u64, cols: u32) -> Self {
        match dtype {
            DType::I32 => AnyStore::I32(RowStore::new(storage, local_rows, cols)),
            DType::I64 => AnyStore::I64(RowStore::new(storage, local_rows, cols)),
            DType::F32 => AnyStore::F32(RowStore::new(storage, local_rows, cols)),
            DType::F64 => AnyStore::F64(RowStore::new(storage, local_rows, cols)),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            AnyStore::I32(_) => DType::I32,
            AnyStore::I64(_) => DType::I64,
            AnyStore::F32(_) => DType::F32,
            AnyStore::F64(_) => DType::F64,
        }
    }

    pub fn block(&self, locals: &[usize]) -> RowBlock {
        with_store!(self, s => s.block(locals))
    }

    pub fn block_elements(&self, locals: &[usize]) -> usize {
        with_store!(self, s => s.block_elements(locals))
    }

    pub fn gather(&self, locals: &[usize], cols: &[u32]) -> Values {
        with_store!(self, s => {
            let out: Vec<_> = locals.iter().zip(cols).map(|(&l, &c)| s.get(l, c)).collect();
            Value::into_values(out)
        })
    }

    /// Applies pushed `values` at (`locals[i]`, `cols[i]`); the caller has checked types and
    /// bounds. Returns the change of [`heap_bytes`](Self::heap_bytes) (sparse rows grow and
    /// shrink; dense storage never changes).
    pub fn apply_all(
        &mut self,
        locals: &[usize],
        cols: &[u32],
        values: &Values,
        agg: &Aggregation,
    ) -> i64 {
        fn run<T: Value>(
            s: &mut RowStore<T>,
            l: &[usize],
            c: &[u32],
            v: &[T],
            agg: &Aggregation,
        ) -> i64 {
            match s {
                RowStore::Sparse { rows } => {
                    merge_sparse(rows, l, c, v, agg) * size_of::<(u32, T)>() as i64
                }
                dense => {
                    for ((&l, &c), &v) in l.iter().zip(c).zip(v) {
                        dense.apply(l, c, v, agg);
                    }
                    0
                }
            }
        }
        match (self, values) {
            (AnyStore::I32(s), Values::I32(v)) => run(s, locals, cols, v, agg),
            (AnyStore::I64(s), Values::I64(v)) => run(s, locals, cols, v, agg),
            (AnyStore::F32(s), Values::F32(v)) => run(s, locals, cols, v, agg),
            (AnyStore::F64(s), Values::F64(v)) => run(s, locals, cols, v, agg),
            _ => 0,
        }
    }

    pub fn heap_bytes(&self) -> u64 {
        with_store!(self, s => s.heap_bytes())
    }

    pub fn new_cell_bytes(&self, locals: &[usize], cols: &[u32]) -> u64 {
        with_store!(self, s => s.new_cell_bytes(locals, cols))
    }
}

/// Applies a batch to sparse rows with one sorted merge per touched row: O(row + batch) however
/// the batch is ordered, where inserting element by element costs a memmove of the row each time
/// (quadratic for a wide push in descending column order, under the model's write lock).
///
/// The result equals applying the elements one by one in push order: the batch is sorted stably
/// by (row, column), so repeated cells keep their order (which `replace` and user aggregators see),
/// and a cell whose value becomes zero in between restarts from an absent element, as a removed
/// element would.
/// Returns the change in the touched rows' capacity, in elements.
fn merge_sparse<T: Value>(
    rows: &mut [Vec<(u32, T)>],
    locals: &[usize],
    cols: &[u32],
    values: &[T],
    agg: &Aggregation,
) -> i64 {
    let n = locals.len().min(cols.len()).min(values.len());
    // The gRPC path delivers pushes sorted by cell already; only unsorted batches pay for a sort.
    let sorted = (1..n).all(|i| (locals[i - 1], cols[i - 1]) <= (locals[i], cols[i]));
    let order: Option<Vec<usize>> = (!sorted).then(|| {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by_key(|&i| (locals[i], cols[i])); // stable
        idx
    });
    let at = |k: usize| order.as_ref().map_or(k, |o| o[k]);
    let mut inserts = Vec::new();
    let mut grown = 0i64;
    let mut k = 0;
    while k < n {
        let local = locals[at(k)];
        let mut end = k + 1;
        while end < n && locals[at(end)] == local {
            end += 1;
        }
        let batch = (k..end).map(|j| {
            let i = at(j);
            (cols[i], values[i])
        });
        let before = rows[local].capacity() as i64;
        merge_row(&mut rows[local], batch, agg, &mut inserts);
        grown += rows[local].capacity() as i64 - before;
        k = end;
    }
    grown
}

/// Merges `batch` (sorted by column, repeated columns adjacent in push order) into `row`.
/// `inserts` is scratch space, reused across rows.
fn merge_row<T: Value>(
    row: &mut Vec<(u32, T)>,
    batch: impl Iterator<Item = (u32, T)>,
    agg: &Aggregation,
    inserts: &mut Vec<(u32, T)>,
) {
    inserts.clear();
    let mut batch = batch.peekable();
    // Columns below `pos` are settled: the batch only moves right.
    let mut pos = 0;
    let mut zeroed = false;
    while let Some((col, first)) = batch.next() {
        let found = row[pos..].binary_search_by_key(&col, |e| e.0);
        let mut acc = match found {
            Ok(i) => row[pos + i].1,
            Err(_) => T::default(),
        };
        let mut fold = |pushed: T| {
            acc = agg.combine(acc, pushed);
            if acc.is_zero() {
                acc = T::default();
            }
        };
        fold(first);
        while let Some(&(c, v)) = batch.peek()
            && c == col
        {
            fold(v);
            batch.next();
        }
        match found {
            Ok(i) => {
                row[pos + i].1 = acc;
                zeroed |= acc.is_zero();
                pos += i + 1;
            }
            Err(i) => {
                if !acc.is_zero() {
                    inserts.push((col, acc));
                }
                pos += i;
            }
        }
    }
    if !inserts.is_empty() {
        // Merge from the back into the grown row: every element moves at most once.
        let old_len = row.len();
        row.resize(old_len + inserts.len(), (0, T::default()));
        let (mut i, mut j, mut out) = (old_len, inserts.len(), row.len());
        while j > 0 {
            out -= 1;
            if i > 0 && row[i - 1].0 > inserts[j - 1].0 {
                row[out] = row[i - 1];
                i -= 1;
            } else {
                row[out] = inserts[j - 1];
                j -= 1;
            }
        }
    }
    if zeroed {
        row.retain(|e| !e.1.is_zero());
        // Give memory back once a row has shrunk well below its capacity (with slack, so a row
        // that oscillates does not reallocate on every push).
        if row.capacity() > 4 * row.len().max(4) {
            row.shrink_to(2 * row.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

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

    proptest! {
        #[test]
        fn sparse_merge_equals_element_by_element(
            initial in proptest::collection::vec((0usize..4, 0u32..40, -3i32..4), 0..120),
            // Few distinct values and columns: many repeated cells and many zero results.
            pushes in proptest::collection::vec((0usize..4, 0u32..40, -3i32..4), 0..200),
            sort_first in any::<bool>(),
            agg in 0u8..5,
        ) {
            let agg = aggregation(agg);
            let mut store = RowStore::<i32>::new(Storage::Sparse, 4, 40);
            let mut expected = vec![BTreeMap::new(); 4];
            for &(l, c, v) in &initial {
                store.apply(l, c, v, &Aggregation::Add);
                reference(&mut expected, &[l], &[c], &[v], &Aggregation::Add);
            }
            let mut pushes = pushes;
            if sort_first {
                pushes.sort_by_key(|&(l, c, _)| (l, c)); // stable, like the wire order
            }
            let locals: Vec<usize> = pushes.iter().map(|p| p.0).collect();
            let cols: Vec<u32> = pushes.iter().map(|p| p.1).collect();
            let values: Vec<i32> = pushes.iter().map(|p| p.2).collect();
            let mut any = AnyStore::I32(store);
            any.apply_all(&locals, &cols, &Values::I32(values.clone()), &agg);
            reference(&mut expected, &locals, &cols, &values, &agg);
            let AnyStore::I32(RowStore::Sparse { rows }) = any else {
                unreachable!("built as sparse i32")
            };
            for (row, want) in rows.iter().zip(&expected) {
                let want: Vec<(u32, i32)> = want.iter().map(|(&c, &v)| (c, v)).collect();
                prop_assert_eq!(row, &want);
            }
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
            let mut any = AnyStore::F64(RowStore::new(Storage::Sparse, 1, 6));
            any.apply_all(&locals, &cols, &Values::F64(values.clone()), &agg);
            let mut expected = vec![BTreeMap::new()];
            reference(&mut expected, &locals, &cols, &values, &agg);
            let AnyStore::F64(RowStore::Sparse { rows }) = any else {
                unreachable!("built as sparse f64")
            };
            let want: Vec<(u32, f64)> = expected[0].iter().map(|(&c, &v)| (c, v)).collect();
            // Bitwise, so -0.0 and 0.0 are told apart.
            let bits = |r: &[(u32, f64)]| r.iter().map(|&(c, v)| (c, v.to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(bits(&rows[0]), bits(&want));
        }
    }

    #[test]
    fn a_wide_descending_push_is_one_pass() {
        // Regression (issue 9): element-by-element inserts made this quadratic (~8·10^10 element
        // moves for 400,000 columns: about 30 s unoptimised); the merge takes well under 1 s.
        let n = 400_000u32;
        let mut any = AnyStore::I64(RowStore::new(Storage::Sparse, 1, n));
        let cols: Vec<u32> = (0..n).rev().collect();
        let locals = vec![0; n as usize];
        let start = std::time::Instant::now();
        any.apply_all(
            &locals,
            &cols,
            &Values::I64(vec![1; n as usize]),
            &Aggregation::Add,
        );
        any.apply_all(
            &locals,
            &cols,
            &Values::I64(vec![-1; n as usize]),
            &Aggregation::Add,
        );
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        let AnyStore::I64(RowStore::Sparse { rows }) = any else {
            unreachable!("built as sparse i64")
        };
        assert!(rows[0].is_empty());
        assert!(
            rows[0].capacity() < 64,
            "memory given back: {}",
            rows[0].capacity()
        );
    }

    #[test]
    fn sparse_rows_drop_zeros_and_stay_sorted() {
        let mut s = RowStore::<i32>::new(Storage::Sparse, 2, 10);
        let add = Aggregation::Add;
        s.apply(0, 7, 3, &add);
        s.apply(0, 2, 1, &add);
        s.apply(0, 7, -3, &add);
        s.apply(1, 9, 0, &add);
        assert_eq!(s.stored_elements(), 1);
        assert_eq!(s.get(0, 2), 1);
        assert_eq!(s.get(0, 7), 0);
        s.apply(0, 5, 4, &add);
        let rows = s.block(&[0, 1]).into_rows::<i32>().unwrap();
        assert_eq!(
            rows[0],
            crate::Row::Sparse {
                cols: vec![2, 5],
                values: vec![1, 4]
            }
        );
        assert_eq!(
            rows[1],
            crate::Row::Sparse {
                cols: vec![],
                values: vec![]
            }
        );
    }

    #[test]
    fn dense_block_round_trips() {
        let mut s = RowStore::<f64>::new(Storage::Dense, 3, 2);
        s.apply(2, 1, 1.5, &Aggregation::Add);
        let rows = s.block(&[2, 0]).into_rows::<f64>().unwrap();
        assert_eq!(
            rows,
            vec![
                crate::Row::Dense(vec![0.0, 1.5]),
                crate::Row::Dense(vec![0.0, 0.0])
            ]
        );
    }
}
