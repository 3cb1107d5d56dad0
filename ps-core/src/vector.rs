//! A handle on a distributed vector, stored as a one-column matrix.

use crate::error::Result;
use crate::matrix::Matrix;
use crate::spec::ModelSpec;
use crate::value::Value;
use crate::writer::WriterState;

#[derive(Clone, Debug)]
pub struct Vector<T> {
    matrix: Matrix<T>,
}

impl<T: Value> Vector<T> {
    pub(crate) fn new(matrix: Matrix<T>) -> Self {
        Vector { matrix }
    }

    pub fn spec(&self) -> &ModelSpec {
        self.matrix.spec()
    }

    pub fn len(&self) -> u64 {
        self.matrix.rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// See [`Matrix::writer_state`].
    pub fn writer_state(&self) -> WriterState {
        self.matrix.writer_state()
    }

    /// See [`Matrix::with_writer`].
    pub fn with_writer(&self, state: WriterState) -> Result<Vector<T>> {
        Ok(Vector::new(self.matrix.with_writer(state)?))
    }

    /// Number of shards the vector spans.
    pub fn shards(&self) -> usize {
        self.matrix.shards()
    }

    /// The elements at `indices`, in order.
    pub async fn pull(&self, indices: &[u64]) -> Result<Vec<T>> {
        self.matrix.pull(indices, &vec![0; indices.len()]).await
    }

    /// Every element.
    pub async fn pull_all(&self) -> Result<Vec<T>> {
        let indices: Vec<u64> = (0..self.len()).collect();
        self.pull(&indices).await
    }

    /// Combines `values[i]` into element `indices[i]`, exactly once.
    pub async fn push(&self, indices: &[u64], values: &[T]) -> Result<()> {
        self.matrix
            .push(indices, &vec![0; indices.len()], values)
            .await
    }
}
