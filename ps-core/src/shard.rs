//! A shard: the partitions of many models held by one server, and the request handler over them.
//!
//! Each partition sits behind its own `RwLock`: pulls of a model proceed in parallel, a push holds
//! the write lock only while it checks its sequence number and adds its elements, which is short.
//! Checking the sequence number under the same lock as the update makes "applied" and "recorded
//! as applied" one atomic step, so a duplicate can never be acknowledged before the original lands.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::aggregate::{Aggregation, AggregatorRegistry};
use crate::dedup::{Admission, Dedup};
use crate::error::{PsError, Result};
use crate::message::{Push, Request, Response};
use crate::partition::Partitioner;
use crate::snapshot;
use crate::spec::{ModelSpec, Storage};
use crate::store::AnyStore;

/// Limits a shard enforces on every request, so one bad client cannot exhaust a server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most rows or elements in one request, and most values in one pull's answer
    /// (rows × columns for dense rows, stored elements for sparse ones).
    pub max_request_elements: usize,
    /// Most bytes one partition may allocate when created: dense values, or the per-row
    /// headers of a sparse model (its elements then grow with pushes).
    pub max_partition_bytes: u64,
    /// Most models one server holds.
    pub max_models: usize,
}

/// Bytes of an empty sparse row (a `Vec` header).
const SPARSE_ROW_BYTES: u64 = 24;

impl Default for Limits {
    /// Defaults that keep a server alive on a 24 GB machine: a pull answers at most 16M values
    /// (64–128 MB), a partition starts at most 4 GiB, and at most 1,024 models.
    fn default() -> Self {
        Limits {
            max_request_elements: 1 << 24,
            max_partition_bytes: 4 << 30,
            max_models: 1024,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ShardConfig {
    /// Where snapshots are written; without it `Save` and `Load` are refused.
    pub data_dir: Option<PathBuf>,
    pub limits: Limits,
}

/// One shard's partition of one model.
#[derive(Debug)]
pub(crate) struct Partition {
    pub spec: ModelSpec,
    pub shard: u32,
    pub shards: u32,
    pub partitioner: Partitioner,
    pub aggregation: Aggregation,
    pub store: AnyStore,
    pub dedup: Dedup,
}

impl Partition {
    pub(crate) fn new(spec: ModelSpec, shard: u32, shards: u32, aggregation: Aggregation) -> Self {
        let partitioner = Partitioner::new(spec.partitioner, spec.rows, shards as usize);
        let local_rows = partitioner.rows_on(shard as usize);
        let store = AnyStore::new(spec.dtype, spec.storage, local_rows, spec.cols);
        Partition {
            spec,
            shard,
            shards,
            partitioner,
            aggregation,
            store,
            dedup: Dedup::default(),
        }
    }

    /// Local indices of `rows`, checking each is in range and lives on this shard.
    fn locals(&self, rows: &[u64]) -> Result<Vec<usize>> {
        rows.iter()
            .map(|&row| {
                if row >= self.spec.rows {
                    return Err(PsError::RowOutOfRange {
                        model: self.spec.name.clone(),
                        row,
                        rows: self.spec.rows,
                    });
                }
                let owner = self.partitioner.shard_of(row);
                if owner != self.shard as usize {
                    return Err(PsError::InvalidRequest(format!(
                        "row {row} of model '{}' lives on shard {owner}, not shard {}",
                        self.spec.name, self.shard
                    )));
                }
                Ok(self.partitioner.local_row(row) as usize)
            })
            .collect()
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
}

/// The models of one shard and the handler for requests to it.
#[derive(Debug)]
pub struct Shard {
    config: ShardConfig,
    aggregators: AggregatorRegistry,
    models: RwLock<HashMap<String, Arc<RwLock<Partition>>>>,
}

impl Shard {
    pub fn new(config: ShardConfig, aggregators: AggregatorRegistry) -> Self {
        Shard {
            config,
            aggregators,
            models: RwLock::new(HashMap::new()),
        }
    }

    pub fn aggregators(&self) -> &AggregatorRegistry {
        &self.aggregators
    }

    pub fn data_dir(&self) -> Option<&Path> {
        self.config.data_dir.as_deref()
    }

    /// Handles one request. Errors concern only this request; the shard keeps serving.
    pub fn handle(&self, request: &Request) -> Result<Response> {
        match request {
            Request::Create {
                spec,
                shard,
                shards,
            } => self.create(spec, *shard, *shards),
            Request::Destroy { model } => {
                self.write_models().remove(model);
                Ok(Response::Done)
            }
            Request::PullRows { model, rows } => {
                self.check_size(rows.len())?;
                let part = self.partition(model)?;
                let part = part.read().unwrap_or_else(|e| e.into_inner());
                let locals = part.locals(rows)?;
                // Bound the answer, not only the question: many copies of one wide row.
                self.check_size(part.store.block_elements(&locals))?;
                Ok(Response::Rows(part.store.block(&locals)))
            }
            Request::PullElements { model, rows, cols } => {
                self.check_size(rows.len())?;
                if rows.len() != cols.len() {
                    return Err(PsError::InvalidRequest(format!(
                        "{} rows but {} columns",
                        rows.len(),
                        cols.len()
                    )));
                }
                let part = self.partition(model)?;
                let part = part.read().unwrap_or_else(|e| e.into_inner());
                let locals = part.locals(rows)?;
                part.check_cols(cols)?;
                Ok(Response::Values(part.store.gather(&locals, cols)))
            }
            Request::Push(push) => self.push(push),
            Request::Save { name } => {
                let dir = self.snapshot_dir(name)?;
                snapshot::save(&dir, &self.all_partitions())?;
                Ok(Response::Done)
            }
            Request::Load { name } => {
                let dir = self.snapshot_dir(name)?;
                let loaded = snapshot::load(&dir, &self.aggregators)?;
                let mut models = self.write_models();
                models.clear();
                for p in loaded {
                    models.insert(p.spec.name.clone(), Arc::new(RwLock::new(p)));
                }
                Ok(Response::Done)
            }
            Request::Ping => {
                let mut models: Vec<String> = self.read_models().keys().cloned().collect();
                models.sort();
                Ok(Response::Pong { models })
            }
        }
    }

    fn create(&self, spec: &ModelSpec, shard: u32, shards: u32) -> Result<Response> {
        spec.validate()?;
        if shards == 0 || shard >= shards {
            return Err(PsError::InvalidRequest(format!(
                "shard {shard} of {shards}"
            )));
        }
        let aggregation = self.aggregators.resolve(&spec.aggregator)?;
        let partitioner = Partitioner::new(spec.partitioner, spec.rows, shards as usize);
        let local_rows = partitioner.rows_on(shard as usize);
        let limit = self.config.limits.max_partition_bytes;
        let bytes = match spec.storage {
            Storage::Dense => local_rows
                .saturating_mul(u64::from(spec.cols))
                .saturating_mul(spec.dtype.size_bytes() as u64),
            // A sparse row costs a list header even when empty.
            Storage::Sparse => local_rows.saturating_mul(SPARSE_ROW_BYTES),
        };
        if bytes > limit {
            return Err(PsError::InvalidRequest(format!(
                "model '{}' needs {bytes} bytes on shard {shard}, over this server's limit of {limit} bytes per model",
                spec.name
            )));
        }
        let mut models = self.write_models();
        if let Some(existing) = models.get(&spec.name) {
            let existing = existing.read().unwrap_or_else(|e| e.into_inner());
            // Creating the same model twice is a harmless retry.
            if existing.spec == *spec && existing.shard == shard && existing.shards == shards {
                return Ok(Response::Done);
            }
            return Err(PsError::ModelExists(crate::master::describe_difference(
                &existing.spec,
                existing.shards,
                spec,
                shards,
            )));
        }
        let max_models = self.config.limits.max_models;
        if models.len() >= max_models {
            return Err(PsError::InvalidRequest(format!(
                "this server already holds {} models, its limit",
                models.len()
            )));
        }
        let part = Partition::new(spec.clone(), shard, shards, aggregation);
        models.insert(spec.name.clone(), Arc::new(RwLock::new(part)));
        Ok(Response::Done)
    }

    fn push(&self, push: &Push) -> Result<Response> {
        self.check_size(push.rows.len())?;
        if push.rows.len() != push.cols.len() || push.rows.len() != push.values.len() {
            return Err(PsError::InvalidRequest(format!(
                "push has {} rows, {} columns and {} values",
                push.rows.len(),
                push.cols.len(),
                push.values.len()
            )));
        }
        let part = self.partition(&push.model)?;
        let mut part = part.write().unwrap_or_else(|e| e.into_inner());
        if part.store.dtype() != push.values.dtype() {
            return Err(PsError::TypeMismatch {
                model: push.model.clone(),
                actual: part.store.dtype(),
                requested: push.values.dtype(),
            });
        }
        // Validate everything before changing anything: a push is applied whole or not at all.
        let locals = part.locals(&push.rows)?;
        part.check_cols(&push.cols)?;
        match part.dedup.admit(push.writer, push.seq) {
            Admission::New => {}
            Admission::Duplicate => {
                tracing::debug!(model = %push.model, writer = push.writer, seq = push.seq, "duplicate push ignored");
                return Ok(Response::Done);
            }
            Admission::Expired => {
                return Err(PsError::SeqExpired {
                    model: push.model.clone(),
                    writer: push.writer,
                    seq: push.seq,
                });
            }
        }
        let part = &mut *part;
        part.store
            .apply_all(&locals, &push.cols, &push.values, &part.aggregation);
        Ok(Response::Done)
    }

    fn check_size(&self, n: usize) -> Result<()> {
        let limit = self.config.limits.max_request_elements;
        if n > limit {
            return Err(PsError::InvalidRequest(format!(
                "request has {n} elements, over this server's limit of {limit}"
            )));
        }
        Ok(())
    }

    fn partition(&self, model: &str) -> Result<Arc<RwLock<Partition>>> {
        self.read_models()
            .get(model)
            .cloned()
            .ok_or_else(|| PsError::UnknownModel(model.to_string()))
    }

    fn all_partitions(&self) -> Vec<Arc<RwLock<Partition>>> {
        self.read_models().values().cloned().collect()
    }

    fn snapshot_dir(&self, name: &str) -> Result<PathBuf> {
        let valid = !name.is_empty()
            && name.len() <= 128
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(PsError::InvalidRequest(format!(
                "snapshot name '{name}' must be 1-128 characters of [A-Za-z0-9._-], not starting with '.'"
            )));
        }
        let base = self.config.data_dir.as_ref().ok_or_else(|| {
            PsError::InvalidRequest("this server has no data directory for snapshots".to_string())
        })?;
        Ok(base.join("snapshots").join(name))
    }

    fn read_models(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<RwLock<Partition>>>> {
        self.models.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_models(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<RwLock<Partition>>>> {
        self.models.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::AggregatorRegistry;
    use crate::spec::ModelSpec;
    use crate::value::{DType, Values};

    fn shard(limits: Limits) -> Shard {
        Shard::new(
            ShardConfig {
                data_dir: None,
                limits,
            },
            AggregatorRegistry::default(),
        )
    }

    fn create(s: &Shard, spec: ModelSpec) -> Result<Response> {
        s.handle(&Request::Create {
            spec,
            shard: 0,
            shards: 1,
        })
    }

    fn push(s: &Shard, seq: u64) -> Result<Response> {
        s.handle(&Request::Push(Push {
            model: "m".into(),
            writer: 7,
            seq,
            rows: vec![0],
            cols: vec![0],
            values: Values::I32(vec![1]),
        }))
    }

    fn value(s: &Shard) -> Response {
        s.handle(&Request::PullElements {
            model: "m".into(),
            rows: vec![0],
            cols: vec![0],
        })
        .unwrap_or(Response::Done)
    }

    #[test]
    fn a_late_push_below_a_given_up_gap_is_refused_not_done() {
        // Regression (issue 9): it was answered Done and never applied.
        let s = shard(Limits::default());
        create(&s, ModelSpec::matrix("m", 1, 1, DType::I32)).unwrap();
        let later = (1u64 << 16) + 1;
        for seq in 2..=later + 1 {
            assert_eq!(push(&s, seq).unwrap(), Response::Done);
        }
        let err = push(&s, 1).unwrap_err();
        assert!(
            matches!(
                err,
                PsError::SeqExpired {
                    writer: 7,
                    seq: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.is_retryable());
        assert_eq!(value(&s), Response::Values(Values::I32(vec![later as i32])));
        // A retry of an applied push is still a harmless duplicate.
        assert_eq!(push(&s, 5).unwrap(), Response::Done);
        assert_eq!(value(&s), Response::Values(Values::I32(vec![later as i32])));
    }

    #[test]
    fn creates_are_bounded_in_bytes_and_in_number() {
        // Regression (issue 9): a sparse model of 2^31 rows allocated ~48 GiB of row headers.
        let s = shard(Limits {
            max_models: 2,
            ..Limits::default()
        });
        let mut huge = ModelSpec::matrix("h", 1 << 31, 1000, DType::I32);
        huge.storage = crate::spec::Storage::Sparse;
        let err = create(&s, huge).unwrap_err();
        assert!(err.to_string().contains("bytes"), "{err}");
        create(&s, ModelSpec::matrix("a", 4, 4, DType::I32)).unwrap();
        create(&s, ModelSpec::matrix("b", 4, 4, DType::I32)).unwrap();
        let err = create(&s, ModelSpec::matrix("c", 4, 4, DType::I32)).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        // The identical create again is a harmless retry, even at the limit.
        create(&s, ModelSpec::matrix("a", 4, 4, DType::I32)).unwrap();
    }

    #[test]
    fn a_pull_is_bounded_by_the_values_it_answers() {
        // Regression (issue 9): 16M copies of one wide dense row would reserve 64 GB.
        let s = shard(Limits {
            max_request_elements: 10_000,
            ..Limits::default()
        });
        create(&s, ModelSpec::matrix("w", 2, 1000, DType::I32)).unwrap();
        let ok = s.handle(&Request::PullRows {
            model: "w".into(),
            rows: vec![0; 10],
        });
        assert!(ok.is_ok());
        let err = s
            .handle(&Request::PullRows {
                model: "w".into(),
                rows: vec![1; 11],
            })
            .unwrap_err();
        assert!(err.to_string().contains("11000"), "{err}");
    }
}
