//! A shard: the partitions of many models held by one server, and the request handler over them.
//!
//! Each partition sits behind its own `RwLock`: pulls of a model proceed in parallel, a push holds
//! the write lock only while it checks its sequence number and adds its elements, which is short.
//! Checking the sequence number under the same lock as the update makes "applied" and "recorded
//! as applied" one atomic step, so a duplicate can never be acknowledged before the original lands.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

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
    /// A writer (a matrix handle) with no push to a partition for longer than this is forgotten
    /// there: its exactly-once window leaves memory and snapshots, and a tombstone of its
    /// watermark keeps every later answer exact (see `dedup.rs`). Must exceed the longest time a
    /// client keeps retrying one push. `None`: never.
    pub writer_idle_expiry: Option<Duration>,
    /// Pushes of one writer applied above its oldest missing sequence number before that
    /// number is given up (later answered `SeqExpired`): bounds a writer's memory when a push
    /// never arrives. Must exceed the pushes a client has in flight per shard (at least 1).
    pub dedup_window: usize,
}

/// Bytes of an empty sparse row (a `Vec` header).
const SPARSE_ROW_BYTES: u64 = 24;

impl Default for Limits {
    /// Defaults that keep a server alive on a 24 GB machine: a pull answers at most 16M values
    /// (64–128 MB), a partition starts at most 4 GiB, and at most 1,024 models. Writers idle for
    /// an hour are forgotten (a client gives up on a push after about 4 minutes).
    fn default() -> Self {
        Limits {
            max_request_elements: 1 << 24,
            max_partition_bytes: 4 << 30,
            max_models: 1024,
            writer_idle_expiry: Some(Duration::from_secs(3600)),
            dedup_window: crate::dedup::DEFAULT_WINDOW,
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

    /// A partition with rows and exactly-once state read from a snapshot.
    pub(crate) fn with_store(
        spec: ModelSpec,
        shard: u32,
        shards: u32,
        aggregation: Aggregation,
        store: AnyStore,
        dedup: Dedup,
    ) -> Self {
        let partitioner = Partitioner::new(spec.partitioner, spec.rows, shards as usize);
        Partition {
            spec,
            shard,
            shards,
            partitioner,
            aggregation,
            store,
            dedup,
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
    /// This server's shard index, once the master assigned it: snapshots record it and a load
    /// of another shard's snapshot is refused.
    index: Mutex<Option<u32>>,
}

impl Shard {
    pub fn new(config: ShardConfig, aggregators: AggregatorRegistry) -> Self {
        Shard {
            config,
            aggregators,
            models: RwLock::new(HashMap::new()),
            index: Mutex::new(None),
        }
    }

    /// Records the shard index the master gave this server (its registration answer).
    pub fn assign_index(&self, index: u32) {
        *self.index.lock().unwrap_or_else(|e| e.into_inner()) = Some(index);
    }

    /// The shard index assigned with [`Shard::assign_index`], if any.
    pub fn index(&self) -> Option<u32> {
        *self.index.lock().unwrap_or_else(|e| e.into_inner())
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
                let parts = self.all_partitions();
                let placed = parts
                    .iter()
                    .map(|p| p.read().unwrap_or_else(|e| e.into_inner()).shard);
                let index = self.index().or_else(|| common(placed));
                snapshot::save(&dir, index, &parts, self.config.limits.writer_idle_expiry)?;
                Ok(Response::Done)
            }
            Request::Load { name } => self.load(name),
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
        self.check_partition_bytes(spec, shard, shards)?;
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

    /// Refuses a partition that would allocate more than the per-model limit when created.
    fn check_partition_bytes(&self, spec: &ModelSpec, shard: u32, shards: u32) -> Result<()> {
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
        Ok(())
    }

    /// Replaces every partition with those of snapshot `name`, once the snapshot is known to be
    /// this shard's: saved by the same shard index, and placing every model this shard holds
    /// now exactly as it is placed here (same spec, shard index and shard count).
    fn load(&self, name: &str) -> Result<Response> {
        let dir = self.snapshot_dir(name)?;
        let admit = |spec: &ModelSpec, shard: u32, shards: u32| {
            self.check_partition_bytes(spec, shard, shards)
        };
        let loaded = snapshot::load(&dir, &self.aggregators, &admit)?;
        let max_models = self.config.limits.max_models;
        if loaded.partitions.len() > max_models {
            return Err(PsError::snapshot(
                &dir,
                format!(
                    "holds {} models, over this server's limit of {max_models}",
                    loaded.partitions.len()
                ),
            ));
        }
        let mut models = self.write_models();
        let current: Vec<(u32, u32, ModelSpec)> = models
            .values()
            .map(|p| {
                let p = p.read().unwrap_or_else(|e| e.into_inner());
                (p.shard, p.shards, p.spec.clone())
            })
            .collect();
        let theirs = loaded
            .shard
            .or_else(|| common(loaded.partitions.iter().map(|p| p.shard)));
        let mine = self.index().or_else(|| common(current.iter().map(|c| c.0)));
        if let (Some(mine), Some(theirs)) = (mine, theirs)
            && mine != theirs
        {
            return Err(PsError::snapshot(
                &dir,
                format!(
                    "was saved by shard {theirs}, but this server is shard {mine}: it belongs to another shard (swapped data directories?); nothing was loaded"
                ),
            ));
        }
        for p in &loaded.partitions {
            let here = current.iter().find(|c| c.2.name == p.spec.name);
            if let Some((shard, shards, spec)) = here
                && (*shard != p.shard || *shards != p.shards || *spec != p.spec)
            {
                return Err(PsError::snapshot(
                    &dir,
                    format!(
                        "model '{}' is placed here as shard {shard} of {shards} ({spec:?}) but in the snapshot as shard {} of {} ({:?}); nothing was loaded",
                        p.spec.name, p.shard, p.shards, p.spec
                    ),
                ));
            }
        }
        models.clear();
        for p in loaded.partitions {
            models.insert(p.spec.name.clone(), Arc::new(RwLock::new(p)));
        }
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
        let limits = &self.config.limits;
        let (idle, window) = (limits.writer_idle_expiry, limits.dedup_window);
        match part
            .dedup
            .admit(push.writer, push.seq, Instant::now(), idle, window)
        {
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

    /// Every partition, in model-name order (so snapshots are written in a stable order).
    fn all_partitions(&self) -> Vec<Arc<RwLock<Partition>>> {
        let models = self.read_models();
        let mut named: Vec<_> = models.iter().collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        named.into_iter().map(|(_, p)| p.clone()).collect()
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

/// The value every item has, if there is at least one and they all agree.
fn common(mut items: impl Iterator<Item = u32>) -> Option<u32> {
    let first = items.next()?;
    items.all(|i| i == first).then_some(first)
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

    fn push_as(s: &Shard, writer: u64, seq: u64) -> Result<Response> {
        s.handle(&Request::Push(Push {
            model: "m".into(),
            writer,
            seq,
            rows: vec![0],
            cols: vec![0],
            values: Values::I32(vec![1]),
        }))
    }

    fn live_writers(s: &Shard) -> Vec<u64> {
        let part = s.partition("m").unwrap();
        let part = part.read().unwrap();
        let mut w: Vec<u64> = part.dedup.writers.keys().copied().collect();
        w.sort();
        w
    }

    #[test]
    fn an_idle_writer_expires_and_its_old_pushes_are_never_applied_twice_nor_late() {
        let dir = tempfile::tempdir().unwrap();
        let idle = Duration::from_millis(50);
        let config = ShardConfig {
            data_dir: Some(dir.path().to_path_buf()),
            limits: Limits {
                writer_idle_expiry: Some(idle),
                ..Limits::default()
            },
        };
        let s = Shard::new(config.clone(), AggregatorRegistry::default());
        create(&s, ModelSpec::matrix("m", 1, 1, DType::I32)).unwrap();
        // Writer 7 applies 1 and 3; its push 2 is lost in the network for now.
        push_as(&s, 7, 1).unwrap();
        push_as(&s, 7, 3).unwrap();
        std::thread::sleep(idle * 3);
        // Any push to the partition sweeps: writer 7 leaves the map (and snapshots).
        push_as(&s, 8, 1).unwrap();
        assert_eq!(live_writers(&s), vec![8]);
        s.handle(&Request::Save { name: "x".into() }).unwrap();
        // Its late push 2 is refused, not applied late (it was given up on) ...
        let err = push_as(&s, 7, 2).unwrap_err();
        assert!(
            matches!(
                err,
                PsError::SeqExpired {
                    writer: 7,
                    seq: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.is_retryable());
        // ... and retries of applied pushes are not applied twice.
        assert_eq!(push_as(&s, 7, 3).unwrap(), Response::Done);
        assert_eq!(push_as(&s, 7, 1).unwrap(), Response::Done);
        assert_eq!(value(&s), Response::Values(Values::I32(vec![3])));
        // Late retries answered from the tombstone do not bring the writer back.
        assert!(!live_writers(&s).contains(&7));
        // The same answers after a restore into a fresh shard.
        let restored = Shard::new(config, AggregatorRegistry::default());
        restored
            .handle(&Request::Load { name: "x".into() })
            .unwrap();
        assert!(matches!(
            push_as(&restored, 7, 2),
            Err(PsError::SeqExpired { seq: 2, .. })
        ));
        assert_eq!(push_as(&restored, 7, 3).unwrap(), Response::Done);
        // A writer that only paused goes on with its next push.
        assert_eq!(push_as(&restored, 7, 4).unwrap(), Response::Done);
        assert_eq!(value(&restored), Response::Values(Values::I32(vec![4])));
    }

    fn with_dir(dir: &Path) -> Shard {
        Shard::new(
            ShardConfig {
                data_dir: Some(dir.to_path_buf()),
                limits: Limits::default(),
            },
            AggregatorRegistry::default(),
        )
    }

    fn create_placed(s: &Shard, rows: u64, shard: u32, shards: u32) {
        s.handle(&Request::Create {
            spec: ModelSpec::matrix("m", rows, 1, DType::I32),
            shard,
            shards,
        })
        .unwrap();
    }

    #[test]
    fn another_shards_snapshot_is_refused() {
        // Regression (issue 9): Load never checked whose snapshot it was.
        let dir = tempfile::tempdir().unwrap();
        let (zero, one) = (with_dir(dir.path()), with_dir(dir.path()));
        zero.assign_index(0);
        one.assign_index(1);
        create_placed(&one, 4, 1, 2);
        one.handle(&Request::Save { name: "s".into() }).unwrap();
        let err = zero
            .handle(&Request::Load { name: "s".into() })
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PsError::Snapshot { .. }), "{err}");
        assert!(
            text.contains("shard 1") && text.contains("shard 0"),
            "{text}"
        );
        assert_eq!(
            zero.handle(&Request::Ping).unwrap(),
            Response::Pong { models: vec![] }
        );
        // Without an assigned index the partitions a shard holds say which shard it is.
        let fresh = with_dir(dir.path());
        create_placed(&fresh, 4, 0, 2);
        let err = fresh
            .handle(&Request::Load { name: "s".into() })
            .unwrap_err();
        assert!(err.to_string().contains("shard 1"), "{err}");
        // Its own index loads.
        one.handle(&Request::Load { name: "s".into() }).unwrap();
    }

    #[test]
    fn a_snapshot_placing_a_model_differently_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (saver, loader) = (with_dir(dir.path()), with_dir(dir.path()));
        create_placed(&saver, 6, 0, 3);
        saver.handle(&Request::Save { name: "s".into() }).unwrap();
        // The same model over 2 shards here: the snapshot's rows would land on the wrong rows.
        create_placed(&loader, 6, 0, 2);
        let err = loader
            .handle(&Request::Load { name: "s".into() })
            .unwrap_err();
        assert!(err.to_string().contains("shard 0 of 2"), "{err}");
        assert!(err.to_string().contains("shard 0 of 3"), "{err}");
        // Another spec (more rows) is refused too; the identical placement loads.
        let other = with_dir(dir.path());
        create_placed(&other, 7, 0, 3);
        assert!(other.handle(&Request::Load { name: "s".into() }).is_err());
        let same = with_dir(dir.path());
        create_placed(&same, 6, 0, 3);
        same.handle(&Request::Load { name: "s".into() }).unwrap();
    }

    #[test]
    fn loads_respect_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let big = with_dir(dir.path());
        create_placed(&big, 1000, 0, 1);
        big.handle(&Request::Save { name: "s".into() }).unwrap();
        let small = Shard::new(
            ShardConfig {
                data_dir: Some(dir.path().to_path_buf()),
                limits: Limits {
                    max_partition_bytes: 100,
                    ..Limits::default()
                },
            },
            AggregatorRegistry::default(),
        );
        let err = small
            .handle(&Request::Load { name: "s".into() })
            .unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
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
    fn the_dedup_window_bounds_how_far_a_gap_may_be_overtaken() {
        let limits = Limits {
            dedup_window: 3,
            ..Limits::default()
        };
        // Overtaken by as many pushes as the window holds: still applied late.
        let s = shard(limits.clone());
        create(&s, ModelSpec::matrix("m", 1, 1, DType::I32)).unwrap();
        for seq in [2, 3, 4, 1] {
            assert_eq!(push(&s, seq).unwrap(), Response::Done);
        }
        assert_eq!(value(&s), Response::Values(Values::I32(vec![4])));
        // By one more: given up, refused, never answered Done.
        let s = shard(limits);
        create(&s, ModelSpec::matrix("m", 1, 1, DType::I32)).unwrap();
        for seq in 2..=5 {
            assert_eq!(push(&s, seq).unwrap(), Response::Done);
        }
        let err = push(&s, 1).unwrap_err();
        assert!(matches!(err, PsError::SeqExpired { seq: 1, .. }), "{err}");
        assert_eq!(value(&s), Response::Values(Values::I32(vec![4])));
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
