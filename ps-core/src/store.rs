//! The rows of one model held by one shard, dense or sparse, and how pushes combine into them.

use crate::aggregate::Aggregation;
use crate::spec::Storage;
use crate::value::Value;

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

    /// Stored elements of a local row (its width for dense storage).
    #[inline]
    pub fn row_len(&self, local: usize) -> usize {
        match self {
            RowStore::Dense { cols, .. } => *cols,
            RowStore::Sparse { rows } => rows[local].len(),
        }
    }

    /// A dense local row (empty for sparse storage).
    #[inline]
    pub fn dense_row(&self, local: usize) -> &[T] {
        match self {
            RowStore::Dense { cols, data } => &data[local * cols..(local + 1) * cols],
            RowStore::Sparse { .. } => &[],
        }
    }

    /// A sparse local row's sorted `(col, value)` list (empty for dense storage).
    #[inline]
    pub fn sparse_row(&self, local: usize) -> &[(u32, T)] {
        match self {
            RowStore::Dense { .. } => &[],
            RowStore::Sparse { rows } => &rows[local],
        }
    }

    /// Whether the cell is stored (always, for dense storage).
    #[inline]
    pub fn has(&self, local: usize, col: u32) -> bool {
        match self {
            RowStore::Dense { .. } => true,
            RowStore::Sparse { rows } => rows[local].binary_search_by_key(&col, |e| e.0).is_ok(),
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
    pub fn heap_bytes(&self) -> u64 {
        with_store!(self, s => s.heap_bytes())
    }
}

/// Merges `batch` (sorted by column, repeated columns adjacent in push order) into `row` in one
/// pass: O(row + batch) however the push was ordered, where inserting element by element costs a
/// memmove of the row each time (quadratic for a wide push in descending column order).
///
/// The result equals applying the elements one by one in push order: repeated cells are
/// combined in their order (which `replace` and user aggregators see), and a cell whose value
/// becomes zero in between restarts from an absent element, as a removed element would.
/// `inserts` is scratch space, reused across rows.
pub(crate) fn merge_row<T: Value>(
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
        let found = gallop(&row[pos..], col);
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

/// `row.binary_search_by_key(&col, |e| e.0)`, probing from the front in doubling steps first: a
/// push's columns in one row are usually close together (an LDA push touches many columns of a
/// row), so the next one is a few elements on, found in O(log gap) rather than O(log row).
#[inline]
fn gallop<T>(row: &[(u32, T)], col: u32) -> Result<usize, usize> {
    let mut hi = 1;
    while hi < row.len() && row[hi - 1].0 < col {
        hi *= 2;
    }
    let lo = hi / 2;
    let hi = hi.min(row.len());
    match row[lo..hi].binary_search_by_key(&col, |e| e.0) {
        Ok(i) => Ok(lo + i),
        Err(i) => Err(lo + i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(s.sparse_row(0), &[(2, 1), (5, 4)]);
        assert!(s.sparse_row(1).is_empty());
        assert!(s.has(0, 5) && !s.has(0, 7));
    }

    #[test]
    fn galloping_finds_what_binary_search_finds() {
        for len in 0..40u32 {
            let row: Vec<(u32, ())> = (0..len).map(|c| (3 * c + 1, ())).collect();
            for col in 0..3 * len + 3 {
                assert_eq!(
                    gallop(&row, col),
                    row.binary_search_by_key(&col, |e| e.0),
                    "{len} {col}"
                );
            }
        }
    }
}
