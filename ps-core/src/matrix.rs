//! A handle on a distributed matrix: pull rows or elements, push elements or whole rows.
//! Requests are split by shard and by message size and sent concurrently (a push's pieces for
//! one shard one after the other, in order); answers are reassembled in order.

use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::try_join_all;

use crate::client::{Client, random_id};
use crate::error::{PsError, Result};
use crate::master::ModelRecord;
use crate::message::{Push, Request, Response};
use crate::partition::Partitioner;
use crate::row::Row;
use crate::spec::ModelSpec;
use crate::value::Value;
use crate::writer::{Piece, Writer, WriterState};

/// A matrix of `T`. Cheap to clone; clones share the writer identity (a random id unless
/// [`Matrix::with_writer`] gave it a durable one).
pub struct Matrix<T> {
    client: Client,
    spec: Arc<ModelSpec>,
    partitioner: Partitioner,
    writer: Arc<Writer>,
    _values: PhantomData<fn() -> T>,
}

impl<T> Clone for Matrix<T> {
    fn clone(&self) -> Self {
        Matrix {
            client: self.client.clone(),
            spec: self.spec.clone(),
            partitioner: self.partitioner,
            writer: self.writer.clone(),
            _values: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Matrix<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matrix")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// Positions of a request's entries that go to each shard.
fn group_by_shard(partitioner: &Partitioner, rows: &[u64]) -> Vec<Vec<usize>> {
    let mut groups = vec![Vec::new(); partitioner.shards()];
    for (i, &row) in rows.iter().enumerate() {
        groups[partitioner.shard_of(row)].push(i);
    }
    groups
}

impl<T: Value> Matrix<T> {
    pub(crate) fn new(client: Client, record: ModelRecord) -> Self {
        let partitioner = Partitioner::new(
            record.spec.partitioner,
            record.spec.rows,
            record.shards as usize,
        );
        let writer = Writer::new(WriterState::new(random_id(), record.shards as usize));
        Matrix {
            client,
            spec: Arc::new(record.spec),
            partitioner,
            writer: Arc::new(writer),
            _values: PhantomData,
        }
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn rows(&self) -> u64 {
        self.spec.rows
    }

    pub fn cols(&self) -> u32 {
        self.spec.cols
    }

    /// Number of shards the model spans (the length of [`WriterState::next_seq`]).
    pub fn shards(&self) -> usize {
        self.partitioner.shards()
    }

    /// This handle's writer identity and next sequence numbers, to persist for a restart (see
    /// [`crate::writer`] for what must be persisted with it). Pushes in progress may advance it.
    pub fn writer_state(&self) -> WriterState {
        self.writer.state()
    }

    /// A handle on the same model that pushes as `state`: a caller-chosen writer id, resumed at
    /// its persisted sequence numbers. The new handle and its clones share the identity; it must
    /// not be used by any other live handle of this model.
    pub fn with_writer(&self, state: WriterState) -> Result<Matrix<T>> {
        let writer = Writer::checked(state, &self.spec.name, self.shards())?;
        Ok(Matrix {
            writer: Arc::new(writer),
            ..self.clone()
        })
    }

    fn check_rows(&self, rows: &[u64]) -> Result<()> {
        match rows.iter().find(|&&r| r >= self.spec.rows) {
            Some(&row) => Err(PsError::RowOutOfRange {
                model: self.spec.name.clone(),
                row,
                rows: self.spec.rows,
            }),
            None => Ok(()),
        }
    }

    fn check_cols(&self, cols: &[u32]) -> Result<()> {
        match cols.iter().find(|&&c| c >= self.spec.cols) {
            Some(&col) => Err(PsError::ColOutOfRange {
                model: self.spec.name.clone(),
                col,
                cols: self.spec.cols,
            }),
            None => Ok(()),
        }
    }

    /// Whole rows, in the order asked (dense or sparse as the model stores them).
    pub async fn pull_rows(&self, rows: &[u64]) -> Result<Vec<Row<T>>> {
        self.check_rows(rows)?;
        let per_message = self.client.config().max_elements(T::DTYPE.size_bytes());
        let rows_per_message = (per_message / self.spec.cols as usize).max(1);
        let groups = group_by_shard(&self.partitioner, rows);
        let mut calls = Vec::new();
        for (shard, positions) in groups.iter().enumerate() {
            for chunk in positions.chunks(rows_per_message) {
                let request = Arc::new(Request::PullRows {
                    model: self.spec.name.clone(),
                    rows: chunk.iter().map(|&i| rows[i]).collect(),
                });
                let client = self.client.clone();
                calls.push(async move {
                    let response = client.call(shard, request).await?;
                    Ok::<_, PsError>((chunk, response))
                });
            }
        }
        let mut out: Vec<Option<Row<T>>> = vec![None; rows.len()];
        for (chunk, response) in try_join_all(calls).await? {
            let block = match response {
                Response::Rows(b) => b,
                other => return Err(self.unexpected(&other)),
            };
            let got = block.into_rows::<T>().ok_or_else(|| self.malformed())?;
            if got.len() != chunk.len() {
                return Err(self.malformed());
            }
            for (&i, row) in chunk.iter().zip(got) {
                out[i] = Some(row);
            }
        }
        out.into_iter()
            .map(|r| r.ok_or_else(|| self.malformed()))
            .collect()
    }

    /// The elements at (`rows[i]`, `cols[i]`), in order.
    pub async fn pull(&self, rows: &[u64], cols: &[u32]) -> Result<Vec<T>> {
        self.check_lengths(rows.len(), cols.len(), cols.len())?;
        self.check_rows(rows)?;
        self.check_cols(cols)?;
        let per_message = self.client.config().max_elements(T::DTYPE.size_bytes());
        let groups = group_by_shard(&self.partitioner, rows);
        let mut calls = Vec::new();
        for (shard, positions) in groups.iter().enumerate() {
            for chunk in positions.chunks(per_message) {
                let request = Arc::new(Request::PullElements {
                    model: self.spec.name.clone(),
                    rows: chunk.iter().map(|&i| rows[i]).collect(),
                    cols: chunk.iter().map(|&i| cols[i]).collect(),
                });
                let client = self.client.clone();
                calls.push(async move {
                    let response = client.call(shard, request).await?;
                    Ok::<_, PsError>((chunk, response))
                });
            }
        }
        let mut out = vec![T::default(); rows.len()];
        for (chunk, response) in try_join_all(calls).await? {
            let values = match response {
                Response::Values(v) => T::from_values(v).ok_or_else(|| self.malformed())?,
                other => return Err(self.unexpected(&other)),
            };
            if values.len() != chunk.len() {
                return Err(self.malformed());
            }
            for (&i, v) in chunk.iter().zip(values) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Combines `values[i]` into (`rows[i]`, `cols[i]`) with the model's aggregation. Each element
    /// is applied exactly once, however often its message is retried.
    ///
    /// Shards are pushed concurrently; the pieces of one shard (a push larger than a message)
    /// are applied in the order given, which order-dependent aggregations (`replace`, most
    /// user-defined ones) rely on. No piece in flight is cancelled because another failed; a
    /// shard's pieces after one that could not be confirmed are held back. Then the error is
    /// [`PsError::PushUnconfirmed`]: resend its token with
    /// [`Client::resend`] to finish the push exactly once. An error without a token (a piece
    /// refused by its shard, with nothing left unconfirmed) means the refused pieces were not
    /// applied; the others were.
    pub async fn push(&self, rows: &[u64], cols: &[u32], values: &[T]) -> Result<()> {
        self.check_lengths(rows.len(), cols.len(), values.len())?;
        self.check_rows(rows)?;
        self.check_cols(cols)?;
        let per_message = self.client.config().max_elements(T::DTYPE.size_bytes());
        let mut pieces: Vec<Piece> = Vec::new();
        for (shard, (rows, cols, values)) in self
            .split_by_shard(rows, cols, values)
            .into_iter()
            .enumerate()
        {
            let mut add = |rows: Vec<u64>, cols: Vec<u32>, values: Vec<T>| {
                let request = Arc::new(Request::Push(Push {
                    model: self.spec.name.clone(),
                    writer: self.writer.id(),
                    seq: self.writer.next(shard),
                    rows,
                    cols,
                    values: T::into_values(values),
                }));
                pieces.push((shard, request));
            };
            if rows.len() <= per_message {
                if !rows.is_empty() {
                    add(rows, cols, values);
                }
            } else {
                for start in (0..rows.len()).step_by(per_message) {
                    let end = (start + per_message).min(rows.len());
                    add(
                        rows[start..end].to_vec(),
                        cols[start..end].to_vec(),
                        values[start..end].to_vec(),
                    );
                }
            }
        }
        self.client
            .push_pieces(&self.spec.name, self.writer.id(), pieces)
            .await
    }

    /// The pushed elements of each shard, in one pass and in their original order (the order
    /// matters to order-dependent aggregations such as `replace`).
    #[allow(clippy::type_complexity)]
    fn split_by_shard(
        &self,
        rows: &[u64],
        cols: &[u32],
        values: &[T],
    ) -> Vec<(Vec<u64>, Vec<u32>, Vec<T>)> {
        let shards = self.partitioner.shards();
        if shards == 1 {
            return vec![(rows.to_vec(), cols.to_vec(), values.to_vec())];
        }
        let expected = rows.len() / shards + rows.len() / (4 * shards) + 16;
        let mut parts: Vec<_> = (0..shards)
            .map(|_| {
                (
                    Vec::with_capacity(expected),
                    Vec::with_capacity(expected),
                    Vec::with_capacity(expected),
                )
            })
            .collect();
        for ((&row, &col), &value) in rows.iter().zip(cols).zip(values) {
            let part: &mut (Vec<u64>, Vec<u32>, Vec<T>) =
                &mut parts[self.partitioner.shard_of(row)];
            part.0.push(row);
            part.1.push(col);
            part.2.push(value);
        }
        parts
    }

    /// Pushes whole rows: every non-zero element of `data[i]` into row `rows[i]`.
    pub async fn push_rows(&self, rows: &[u64], data: &[Row<T>]) -> Result<()> {
        self.check_lengths(rows.len(), data.len(), data.len())?;
        let (mut rs, mut cs, mut vs) = (Vec::new(), Vec::new(), Vec::new());
        for (&row, r) in rows.iter().zip(data) {
            for (c, v) in r.nonzeros() {
                rs.push(row);
                cs.push(c);
                vs.push(v);
            }
        }
        self.push(&rs, &cs, &vs).await
    }

    fn check_lengths(&self, rows: usize, cols: usize, values: usize) -> Result<()> {
        if rows != cols || rows != values {
            return Err(PsError::InvalidRequest(format!(
                "model '{}': {rows} rows, {cols} columns and {values} values do not line up",
                self.spec.name
            )));
        }
        Ok(())
    }

    fn unexpected(&self, response: &Response) -> PsError {
        PsError::InvalidRequest(format!(
            "model '{}': unexpected response {response:?}",
            self.spec.name
        ))
    }

    fn malformed(&self) -> PsError {
        PsError::InvalidRequest(format!(
            "model '{}': a shard answered with rows of the wrong type or count",
            self.spec.name
        ))
    }
}
