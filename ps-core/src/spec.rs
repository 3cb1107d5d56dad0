//! The description of a model: its name, shape, element type, row storage, partitioning and aggregation.

use serde::{Deserialize, Serialize};

use crate::error::{PsError, Result};
use crate::value::DType;

/// How the rows of a model are kept on a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// Every element is stored.
    Dense,
    /// Only non-zero elements are stored; a row whose elements become zero takes no space.
    Sparse,
}

/// How rows are assigned to shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionerKind {
    /// Contiguous ranges of rows per shard.
    Range,
    /// Row `r` lives on shard `r % shards`: spreads small (frequent) ids evenly.
    Cyclic,
}

/// A model: a matrix of `rows` × `cols`, or a vector (a matrix with one column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub name: String,
    pub rows: u64,
    pub cols: u32,
    pub dtype: DType,
    pub storage: Storage,
    pub partitioner: PartitionerKind,
    /// Name of the aggregation applied by pushes: `add` (default), `max`, `min`, `replace`,
    /// or a user-defined aggregator registered on every server.
    pub aggregator: String,
}

/// Longest model name accepted: names travel in every request.
pub const MAX_NAME_LEN: usize = 256;

impl ModelSpec {
    /// A dense, cyclically partitioned matrix with additive pushes.
    pub fn matrix(name: impl Into<String>, rows: u64, cols: u32, dtype: DType) -> Self {
        ModelSpec {
            name: name.into(),
            rows,
            cols,
            dtype,
            storage: Storage::Dense,
            partitioner: PartitionerKind::Cyclic,
            aggregator: "add".to_string(),
        }
    }

    /// A dense vector of `len` elements with additive pushes.
    pub fn vector(name: impl Into<String>, len: u64, dtype: DType) -> Self {
        ModelSpec::matrix(name, len, 1, dtype)
    }

    pub fn with_storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    pub fn with_partitioner(mut self, partitioner: PartitionerKind) -> Self {
        self.partitioner = partitioner;
        self
    }

    pub fn with_aggregator(mut self, aggregator: impl Into<String>) -> Self {
        self.aggregator = aggregator.into();
        self
    }

    /// Rejects specifications no shard could hold.
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() || self.name.len() > MAX_NAME_LEN {
            return Err(PsError::InvalidRequest(format!(
                "model name must have 1 to {MAX_NAME_LEN} bytes, got {}",
                self.name.len()
            )));
        }
        if self.cols == 0 {
            return Err(PsError::InvalidRequest(format!(
                "model '{}' must have at least one column",
                self.name
            )));
        }
        if self.aggregator.is_empty() {
            return Err(PsError::InvalidRequest(format!(
                "model '{}' has an empty aggregator name",
                self.name
            )));
        }
        Ok(())
    }
}
