//! The model on ps-core: word-topic counts n_wk as a `Matrix<i32>` (V × K, cyclic partitioning
//! because frequent words have small ids; sparse rows when K is large) and topic totals n_k as a
//! `Vector<i64>`. Everything goes through the ps-core client, so shards may live in other
//! processes.

use ps_core::{Client, DType, Matrix, ModelSpec, PartitionerKind, PsError, Row, Storage, Vector};

use crate::conditional::Hyper;
use crate::error::{LdaError, Result};

/// Above this many topics, rows are stored and sent sparse (most n_wk are zero).
pub const SPARSE_ROWS_ABOVE: u32 = 128;

/// Rows per pull when walking the whole matrix.
const SCAN_ROWS: usize = 4096;

/// Elements per push when loading counts.
const PUSH_BATCH: usize = 1 << 20;

/// Resends of one unconfirmed push (each already retried by the client) before the run fails.
const RESENDS: usize = 4;

/// Handles on the two models of one training run.
#[derive(Debug, Clone)]
pub struct PsModel {
    client: Client,
    pub nwk: Matrix<i32>,
    pub nk: Vector<i64>,
    pub vocab: u32,
    pub topics: u32,
}

impl PsModel {
    /// Creates the models `{prefix}nwk` and `{prefix}nk` (empty).
    pub async fn create(client: &Client, h: &Hyper, prefix: &str) -> Result<Self> {
        let storage = if h.topics > SPARSE_ROWS_ABOVE {
            Storage::Sparse
        } else {
            Storage::Dense
        };
        let spec = ModelSpec::matrix(
            format!("{prefix}nwk"),
            u64::from(h.vocab),
            h.topics,
            DType::I32,
        )
        .with_storage(storage)
        .with_partitioner(PartitionerKind::Cyclic);
        let nwk = client.create_matrix::<i32>(spec).await?;
        let nk = client
            .create_vector::<i64>(ModelSpec::vector(
                format!("{prefix}nk"),
                u64::from(h.topics),
                DType::I64,
            ))
            .await?;
        Ok(PsModel {
            client: client.clone(),
            nwk,
            nk,
            vocab: h.vocab,
            topics: h.topics,
        })
    }

    /// Opens the models `{prefix}nwk` and `{prefix}nk` that another process created, checking
    /// their shape against `h`.
    pub async fn open(client: &Client, h: &Hyper, prefix: &str) -> Result<Self> {
        let nwk = client.matrix::<i32>(&format!("{prefix}nwk")).await?;
        let nk = client.vector::<i64>(&format!("{prefix}nk")).await?;
        if nwk.rows() != u64::from(h.vocab)
            || nwk.cols() != h.topics
            || nk.len() != u64::from(h.topics)
        {
            return Err(LdaError::InvalidConfig(format!(
                "the model '{prefix}nwk' on the servers is {} × {} (n_k {}), not V = {} × K = {}",
                nwk.rows(),
                nwk.cols(),
                nk.len(),
                h.vocab,
                h.topics
            )));
        }
        Ok(PsModel {
            client: client.clone(),
            nwk,
            nk,
            vocab: h.vocab,
            topics: h.topics,
        })
    }

    async fn confirm(&self, outcome: ps_core::Result<()>) -> Result<()> {
        confirm_push(&self.client, outcome).await
    }

    /// Adds one block's count deltas to n_wk, exactly once.
    pub async fn push_deltas(&self, rows: &[u64], cols: &[u32], values: &[i32]) -> Result<()> {
        let outcome = self.nwk.push(rows, cols, values).await;
        self.confirm(outcome).await
    }

    /// Adds the count triples in batches.
    pub async fn push_counts(&self, rows: &[u64], cols: &[u32], values: &[i32]) -> Result<()> {
        for start in (0..rows.len()).step_by(PUSH_BATCH) {
            let end = (start + PUSH_BATCH).min(rows.len());
            self.push_deltas(&rows[start..end], &cols[start..end], &values[start..end])
                .await?;
        }
        Ok(())
    }

    /// Adds to the topic totals.
    pub async fn push_totals(&self, deltas: &[(u32, i64)]) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let idx: Vec<u64> = deltas.iter().map(|&(k, _)| u64::from(k)).collect();
        let vals: Vec<i64> = deltas.iter().map(|&(_, d)| d).collect();
        let outcome = self.nk.push(&idx, &vals).await;
        self.confirm(outcome).await
    }

    pub async fn pull_totals(&self) -> Result<Vec<i64>> {
        Ok(self.nk.pull_all().await?)
    }

    /// Calls `f(word, row)` for every row of n_wk, in word order, pulling `SCAN_ROWS` at a time.
    pub async fn scan_rows(&self, mut f: impl FnMut(u32, &Row<i32>) -> Result<()>) -> Result<()> {
        let mut start = 0u64;
        let v = u64::from(self.vocab);
        while start < v {
            let end = (start + SCAN_ROWS as u64).min(v);
            let rows: Vec<u64> = (start..end).collect();
            let pulled = self.nwk.pull_rows(&rows).await?;
            for (r, row) in rows.iter().zip(&pulled) {
                f(*r as u32, row)?;
            }
            start = end;
        }
        Ok(())
    }
}

/// Finishes a push that the client could not confirm by resending its token (the same writer
/// and sequence numbers, so applied pieces are not applied again): a shard that was unreachable
/// for a while costs time, never a count. A refusal, or a push still unconfirmed after
/// [`RESENDS`] resends, is the caller's error.
pub async fn confirm_push(client: &Client, mut outcome: ps_core::Result<()>) -> Result<()> {
    for resend in 1..=RESENDS {
        match outcome {
            Err(PsError::PushUnconfirmed { token, cause }) => {
                tracing::warn!(resend, error = %cause, "resending an unconfirmed push");
                outcome = client.resend(*token).await;
            }
            other => return Ok(other?),
        }
    }
    Ok(outcome?)
}

/// The non-zero (topic, count) pairs of a pulled row, without allocating.
pub fn row_nonzeros(row: &Row<i32>) -> RowNonzeros<'_> {
    match row {
        Row::Dense(v) => RowNonzeros::Dense(v.iter().enumerate()),
        Row::Sparse { cols, values } => RowNonzeros::Sparse(cols.iter().zip(values.iter())),
    }
}

/// Iterator of [`row_nonzeros`].
#[derive(Debug)]
pub enum RowNonzeros<'a> {
    Dense(std::iter::Enumerate<std::slice::Iter<'a, i32>>),
    Sparse(std::iter::Zip<std::slice::Iter<'a, u32>, std::slice::Iter<'a, i32>>),
}

impl Iterator for RowNonzeros<'_> {
    type Item = (u32, i32);

    #[inline]
    fn next(&mut self) -> Option<(u32, i32)> {
        match self {
            RowNonzeros::Dense(it) => it.find(|(_, c)| **c != 0).map(|(k, &c)| (k as u32, c)),
            RowNonzeros::Sparse(it) => it.next().map(|(&k, &c)| (k, c)),
        }
    }
}
