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

    /// Applies pushed `values` at (`locals[i]`, `cols[i]`); the caller has checked types and bounds.
    pub fn apply_all(
        &mut self,
        locals: &[usize],
        cols: &[u32],
        values: &Values,
        agg: &Aggregation,
    ) {
        fn run<T: Value>(s: &mut RowStore<T>, l: &[usize], c: &[u32], v: &[T], agg: &Aggregation) {
            for ((&l, &c), &v) in l.iter().zip(c).zip(v) {
                s.apply(l, c, v, agg);
            }
        }
        match (self, values) {
            (AnyStore::I32(s), Values::I32(v)) => run(s, locals, cols, v, agg),
            (AnyStore::I64(s), Values::I64(v)) => run(s, locals, cols, v, agg),
            (AnyStore::F32(s), Values::F32(v)) => run(s, locals, cols, v, agg),
            (AnyStore::F64(s), Values::F64(v)) => run(s, locals, cols, v, agg),
            _ => {}
        }
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
