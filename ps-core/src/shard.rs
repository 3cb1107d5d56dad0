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
use crate::dedup::Dedup;
use crate::error::{PsError, Result};
use crate::message::{Push, Request, Response};
use crate::partition::Partitioner;
use crate::snapshot;
use crate::spec::{ModelSpec, Storage};
use crate::store::AnyStore;

/// Limits a shard enforces on every request, so one bad client cannot exhaust a server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most rows or elements in one request.
    pub max_request_elements: usize,
    /// Most elements a dense partition may allocate.
    pub max_dense_elements: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_elements: 1 << 24,
            max_dense_elements: 1 << 31,
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
        let limit = self.config.limits.max_dense_elements;
        let elements = local_rows.saturating_mul(spec.cols as u64);
        let too_big = match spec.storage {
            Storage::Dense => elements > limit,
            // A sparse row costs a list header even when empty.
            Storage::Sparse => local_rows > limit,
        };
        if too_big {
            return Err(PsError::InvalidRequest(format!(
                "model '{}' needs {elements} elements on shard {shard}, over this server's limit of {limit}",
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
            return Err(PsError::ModelExists(spec.name.clone()));
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
        if !part.dedup.admit(push.writer, push.seq) {
            tracing::debug!(model = %push.model, writer = push.writer, seq = push.seq, "duplicate push ignored");
            return Ok(Response::Done);
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
