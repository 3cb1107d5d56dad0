//! Rows as users see them, and row blocks as they travel between clients and shards.

use crate::value::{Value, Values};

/// One row of a matrix, as pulled.
#[derive(Debug, Clone, PartialEq)]
pub enum Row<T> {
    Dense(Vec<T>),
    /// Non-zero elements only, `cols` strictly increasing.
    Sparse {
        cols: Vec<u32>,
        values: Vec<T>,
    },
}

impl<T: Value> Row<T> {
    /// The element at `col` (zero when a sparse row does not hold it, or `col` is past a dense row).
    pub fn get(&self, col: u32) -> T {
        match self {
            Row::Dense(v) => v.get(col as usize).copied().unwrap_or_default(),
            Row::Sparse { cols, values } => match cols.binary_search(&col) {
                Ok(i) => values[i],
                Err(_) => T::default(),
            },
        }
    }

    /// The row as `len` dense elements.
    pub fn to_dense(&self, len: usize) -> Vec<T> {
        match self {
            Row::Dense(v) => {
                let mut out = v.clone();
                out.resize(len, T::default());
                out
            }
            Row::Sparse { cols, values } => {
                let mut out = vec![T::default(); len];
                for (&c, &v) in cols.iter().zip(values) {
                    if let Some(slot) = out.get_mut(c as usize) {
                        *slot = v;
                    }
                }
                out
            }
        }
    }

    /// Non-zero (col, value) pairs in column order.
    pub fn nonzeros(&self) -> Vec<(u32, T)> {
        match self {
            Row::Dense(v) => v
                .iter()
                .enumerate()
                .filter(|(_, x)| !x.is_zero())
                .map(|(c, &x)| (c as u32, x))
                .collect(),
            Row::Sparse { cols, values } => cols
                .iter()
                .zip(values)
                .filter(|(_, x)| !x.is_zero())
                .map(|(&c, &x)| (c, x))
                .collect(),
        }
    }
}

/// Several rows of one model in one flat buffer, the form rows take in a response.
#[derive(Debug, Clone, PartialEq)]
pub enum RowBlock {
    /// `values.len() == rows * cols`.
    Dense { cols: u32, values: Values },
    /// Row `i` holds `cols[offsets[i]..offsets[i + 1]]`; `offsets.len() == rows + 1`.
    Sparse {
        offsets: Vec<u32>,
        cols: Vec<u32>,
        values: Values,
    },
}

impl RowBlock {
    pub fn row_count(&self) -> usize {
        match self {
            RowBlock::Dense { cols, values } => {
                if *cols == 0 {
                    0
                } else {
                    values.len() / *cols as usize
                }
            }
            RowBlock::Sparse { offsets, .. } => offsets.len().saturating_sub(1),
        }
    }

    /// Splits the block into rows of type `T`; `None` when the element type differs or the block
    /// is inconsistent.
    pub fn into_rows<T: Value>(self) -> Option<Vec<Row<T>>> {
        match self {
            RowBlock::Dense { cols, values } => {
                let values = T::from_values(values)?;
                if cols == 0 || values.len() % cols as usize != 0 {
                    return None;
                }
                Some(
                    values
                        .chunks(cols as usize)
                        .map(|c| Row::Dense(c.to_vec()))
                        .collect(),
                )
            }
            RowBlock::Sparse {
                offsets,
                cols,
                values,
            } => {
                let values = T::from_values(values)?;
                if cols.len() != values.len() || offsets.last().copied() != Some(cols.len() as u32)
                {
                    return None;
                }
                let mut rows = Vec::with_capacity(offsets.len().saturating_sub(1));
                for w in offsets.windows(2) {
                    let (a, b) = (w[0] as usize, w[1] as usize);
                    if a > b || b > cols.len() {
                        return None;
                    }
                    rows.push(Row::Sparse {
                        cols: cols[a..b].to_vec(),
                        values: values[a..b].to_vec(),
                    });
                }
                Some(rows)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inconsistent_sparse_blocks_are_rejected_not_panicked_on() {
        let bad = RowBlock::Sparse {
            offsets: vec![0, 10, 2],
            cols: vec![1, 2],
            values: Values::I32(vec![1, 2]),
        };
        assert_eq!(bad.into_rows::<i32>(), None);
        let bad = RowBlock::Sparse {
            offsets: vec![0, 2],
            cols: vec![1, 2],
            values: Values::I64(vec![1, 2]),
        };
        assert_eq!(bad.into_rows::<i32>(), None);
        let dense = RowBlock::Dense {
            cols: 3,
            values: Values::F32(vec![1.0; 4]),
        };
        assert_eq!(dense.into_rows::<f32>(), None);
    }
}
