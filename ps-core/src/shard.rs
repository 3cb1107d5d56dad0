//! A shard: the partitions of many models held by one server, and the request handler over them.
//!
//! A partition's rows are in lock stripes (`stripes.rs`): pulls read only the stripes of their
//! rows, a push writes one stripe at a time, so pulls and pushes into different row ranges do
//! not wait for each other. A push is admitted by its sequence number before it is applied; a
//! retry of a push still being applied waits until it has landed, so a duplicate is never
//! acknowledged before the original is in the rows, and snapshots wait for pushes in flight, so
//! none records a push as applied that is only partly in its rows.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::aggregate::{Aggregation, AggregatorRegistry};
use crate::dedup::{Admission, Dedup, DedupImage};
use crate::error::{PsError, Result};
use crate::message::{Push, Request, Response};
use crate::metrics::{self, Counter, Gauge};
use crate::partition::Partitioner;
use crate::snapshot;
use crate::spec::{ModelSpec, Storage};
use crate::store::AnyStore;
use crate::stripes::AnyStripes;

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
    /// Most bytes all of this server's model data may take (dense values and sparse rows,
    /// allocated capacity): a create or a growing push that would pass it is refused, not
    /// applied. Concurrent pushes to different models may overshoot it by what they add.
    /// `None`: no cap beyond the per-model and per-request limits.
    pub max_memory_bytes: Option<u64>,
    /// Most lock stripes per partition: its rows are split into up to this many ranges with a
    /// lock each, so pulls and pushes into different ranges do not wait for each other (1: one
    /// lock per partition).
    pub lock_stripes: usize,
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
            max_memory_bytes: None,
            lock_stripes: crate::stripes::DEFAULT_STRIPES,
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
///
/// Its rows are in lock stripes ([`AnyStripes`]): a push applies its part in each stripe in
/// turn, a pull reads only its own stripes. The exactly-once state has its own lock, taken
/// briefly to admit a push. A push holds `gate` shared from its admission until its last stripe
/// is applied, and a snapshot holds it exclusively while it copies: a snapshot never records a
/// push as applied whose elements are not all in its rows.
#[derive(Debug)]
pub(crate) struct Partition {
    pub spec: ModelSpec,
    pub shard: u32,
    pub shards: u32,
    pub partitioner: Partitioner,
    pub aggregation: Aggregation,
    pub rows: AnyStripes,
    exactly: Mutex<ExactlyOnce>,
    /// Signalled whenever a push in flight has been applied (see [`ExactlyOnce::in_flight`]).
    landed: Condvar,
    gate: RwLock<()>,
    /// Set, under `gate` held exclusively, once the partition was destroyed or replaced by a
    /// load: a push that found it before then is refused instead of applied to rows nobody
    /// reads (and counted in the server's memory).
    retired: AtomicBool,
}

#[derive(Debug, Default)]
struct ExactlyOnce {
    dedup: Dedup,
    /// Pushes admitted and not yet fully applied, as (writer, seq): a retry of one waits until
    /// it has landed, so that `Done` always means "applied".
    in_flight: HashSet<(u64, u64)>,
}

/// Takes a push off the in-flight set when dropped, waking its retries. Applying a push does
/// not panic (its rows and columns were checked); should it, the retries are still woken and
/// answered as applied, so the panic is logged as the error it is.
struct Landing<'a> {
    part: &'a Partition,
    key: (u64, u64),
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(
                model = %self.part.spec.name,
                writer = self.key.0,
                seq = self.key.1,
                "applying a push panicked: it may be partly applied"
            );
        }
        self.part.exactly().in_flight.remove(&self.key);
        self.part.landed.notify_all();
    }
}

impl Partition {
    pub(crate) fn new(
        spec: ModelSpec,
        shard: u32,
        shards: u32,
        aggregation: Aggregation,
        stripes: usize,
    ) -> Self {
        let partitioner = Partitioner::new(spec.partitioner, spec.rows, shards as usize);
        let local_rows = partitioner.rows_on(shard as usize);
        let rows = AnyStripes::new(spec.dtype, spec.storage, local_rows, spec.cols, stripes);
        Partition::with_rows(spec, shard, shards, aggregation, rows, Dedup::default())
    }

    /// A partition with the rows and exactly-once state of a snapshot.
    pub(crate) fn restore(restored: snapshot::Restored, stripes: usize) -> Self {
        let rows = AnyStripes::from_store(restored.store, stripes);
        Partition::with_rows(
            restored.spec,
            restored.shard,
            restored.shards,
            restored.aggregation,
            rows,
            restored.dedup,
        )
    }

    fn with_rows(
        spec: ModelSpec,
        shard: u32,
        shards: u32,
        aggregation: Aggregation,
        rows: AnyStripes,
        dedup: Dedup,
    ) -> Self {
        let partitioner = Partitioner::new(spec.partitioner, spec.rows, shards as usize);
        Partition {
            spec,
            shard,
            shards,
            partitioner,
            aggregation,
            rows,
            exactly: Mutex::new(ExactlyOnce {
                dedup,
                in_flight: HashSet::new(),
            }),
            landed: Condvar::new(),
            gate: RwLock::new(()),
            retired: AtomicBool::new(false),
        }
    }

    fn exactly(&self) -> std::sync::MutexGuard<'_, ExactlyOnce> {
        self.exactly.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses every push from now on, once those in flight have landed; returns the heap bytes
    /// the rows hold then (for the server's memory count).
    pub(crate) fn retire(&self) -> u64 {
        let _quiet = self.gate.write().unwrap_or_else(|e| e.into_inner());
        self.retired.store(true, Ordering::Relaxed);
        self.rows.heap_bytes()
    }

    /// A consistent copy of the rows and the exactly-once state, for a snapshot: no push is
    /// half applied in it.
    pub(crate) fn image(&self, now: Instant, idle: Option<Duration>) -> (AnyStore, DedupImage) {
        let _quiet = self.gate.write().unwrap_or_else(|e| e.into_inner());
        let store = self.rows.to_store();
        let dedup = self.exactly().dedup.image(now, idle);
        (store, dedup)
    }

    /// Applies a checked push (its rows as `locals`) exactly once: a push already applied (a
    /// retry) is answered `Done` once the original has landed, without being applied again.
    /// `grown` gets the change of the rows' heap bytes while the push still holds the gate, so
    /// that a destroy (which waits for the gate) never counts bytes that land after it.
    pub(crate) fn apply_once(
        &self,
        push: &Push,
        locals: &[usize],
        limits: &Limits,
        grown: impl FnOnce(i64),
    ) -> Result<()> {
        let key = (push.writer, push.seq);
        let gate = self.gate.read().unwrap_or_else(|e| e.into_inner());
        if self.retired.load(Ordering::Relaxed) {
            return Err(PsError::UnknownModel(push.model.clone()));
        }
        let mut exactly = self.exactly();
        let admission = exactly.dedup.admit(
            push.writer,
            push.seq,
            Instant::now(),
            limits.writer_idle_expiry,
            limits.dedup_window,
        );
        match admission {
            Admission::New => {
                exactly.in_flight.insert(key);
                drop(exactly);
                let _landing = Landing { part: self, key };
                grown(
                    self.rows
                        .apply_all(locals, &push.cols, &push.values, &self.aggregation),
                );
                drop(gate);
                Ok(())
            }
            Admission::Duplicate => {
                drop(gate);
                while exactly.in_flight.contains(&key) {
                    exactly = self.landed.wait(exactly).unwrap_or_else(|e| e.into_inner());
                }
                tracing::debug!(model = %push.model, writer = push.writer, seq = push.seq, "duplicate push ignored");
                Ok(())
            }
            Admission::Expired => Err(PsError::SeqExpired {
                model: push.model.clone(),
                writer: push.writer,
                seq: push.seq,
            }),
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

/// Request kinds, as `Request::kind` names them (the metrics' `kind` label).
const KINDS: [&str; 8] = [
    "create",
    "destroy",
    "pull-rows",
    "pull-elements",
    "push",
    "save",
    "load",
    "ping",
];

struct ShardMetrics {
    requests: Vec<Arc<Counter>>,
    errors: Vec<Arc<Counter>>,
    pushed_values: Arc<Counter>,
    memory: Arc<Gauge>,
}

static SHARD_METRICS: LazyLock<ShardMetrics> = LazyLock::new(|| {
    crate::stripes::register_metrics();
    ShardMetrics {
        requests: KINDS
            .iter()
            .map(|k| {
                metrics::counter(
                    "ps_shard_requests_total",
                    "Requests handled by shards.",
                    &[("kind", k)],
                )
            })
            .collect(),
        errors: KINDS
            .iter()
            .map(|k| {
                metrics::counter(
                    "ps_shard_errors_total",
                    "Requests shards answered with an error.",
                    &[("kind", k)],
                )
            })
            .collect(),
        pushed_values: metrics::counter(
            "ps_shard_pushed_values_total",
            "Values pushed to shards.",
            &[],
        ),
        memory: metrics::gauge(
            "ps_shard_memory_bytes",
            "Heap bytes of model data on a shard (the last one to answer, in a process with several).",
            &[],
        ),
    }
});

/// The models of one shard and the handler for requests to it.
#[derive(Debug)]
pub struct Shard {
    config: ShardConfig,
    aggregators: AggregatorRegistry,
    models: RwLock<HashMap<String, Arc<Partition>>>,
    /// This server's shard index, once the master assigned it: snapshots record it and a load
    /// of another shard's snapshot is refused.
    index: Mutex<Option<u32>>,
    /// Heap bytes of every partition's data, kept current by creates, pushes, destroys and
    /// loads (checked against `Limits::max_memory_bytes`).
    used_bytes: AtomicU64,
}

impl Shard {
    pub fn new(config: ShardConfig, aggregators: AggregatorRegistry) -> Self {
        Shard {
            config,
            aggregators,
            models: RwLock::new(HashMap::new()),
            index: Mutex::new(None),
            used_bytes: AtomicU64::new(0),
        }
    }

    /// Heap bytes of this server's model data (see `Limits::max_memory_bytes`).
    pub fn memory_bytes(&self) -> u64 {
        self.used_bytes.load(Ordering::Relaxed)
    }

    fn grow(&self, delta: i64) {
        if delta >= 0 {
            self.used_bytes.fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            let shrink = delta.unsigned_abs();
            let _ = self
                .used_bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                    Some(u.saturating_sub(shrink))
                });
        }
    }

    /// Refuses `more` bytes beyond the memory cap, naming what asked for them.
    fn check_memory(&self, more: u64, what: &str) -> Result<()> {
        let Some(cap) = self.config.limits.max_memory_bytes else {
            return Ok(());
        };
        let used = self.memory_bytes();
        if used.saturating_add(more) > cap {
            return Err(PsError::InvalidRequest(format!(
                "{what} needs {more} more bytes, but this server holds {used} of its {cap}-byte memory cap (--max-memory-mb); this request was not applied"
            )));
        }
        Ok(())
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
        let m = &*SHARD_METRICS;
        let i = KINDS.iter().position(|k| *k == request.kind()).unwrap_or(0);
        m.requests[i].inc();
        if let Request::Push(p) = request {
            m.pushed_values.add(p.values.len() as u64);
        }
        let answer = self.answer(request);
        if answer.is_err() {
            m.errors[i].inc();
        }
        m.memory.set(self.memory_bytes() as f64);
        answer
    }

    fn answer(&self, request: &Request) -> Result<Response> {
        match request {
            Request::Create {
                spec,
                shard,
                shards,
            } => self.create(spec, *shard, *shards),
            Request::Destroy { model } => {
                // Release the models lock before waiting for the pushes in flight.
                let removed = self.write_models().remove(model);
                if let Some(part) = removed {
                    self.grow(-(part.retire() as i64));
                }
                Ok(Response::Done)
            }
            Request::PullRows { model, rows } => {
                self.check_size(rows.len())?;
                let part = self.partition(model)?;
                let locals = part.locals(rows)?;
                // Bound the answer, not only the question: many copies of one wide row.
                let limit = self.config.limits.max_request_elements;
                match part.rows.block(&locals, limit) {
                    Ok(block) => Ok(Response::Rows(block)),
                    Err(values) => Err(self.too_large(values)),
                }
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
                let locals = part.locals(rows)?;
                part.check_cols(cols)?;
                Ok(Response::Values(part.rows.gather(&locals, cols)))
            }
            Request::Push(push) => self.push(push),
            Request::Save { name } => {
                let dir = self.snapshot_dir(name)?;
                let parts = self.all_partitions();
                let placed = parts.iter().map(|p| p.shard);
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
        let stripes = self.config.limits.lock_stripes;
        let part = Partition::new(spec.clone(), shard, shards, aggregation, stripes);
        let bytes = part.rows.heap_bytes();
        self.check_memory(bytes, &format!("model '{}'", spec.name))?;
        self.grow(bytes as i64);
        models.insert(spec.name.clone(), Arc::new(part));
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
            .map(|p| (p.shard, p.shards, p.spec.clone()))
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
        let bytes: u64 = loaded.partitions.iter().map(|p| p.store.heap_bytes()).sum();
        if let Some(cap) = self.config.limits.max_memory_bytes
            && bytes > cap
        {
            return Err(PsError::snapshot(
                &dir,
                format!(
                    "holds {bytes} bytes of model data, over this server's memory cap of {cap}; nothing was loaded"
                ),
            ));
        }
        for (_, old) in models.drain() {
            old.retire();
        }
        let stripes = self.config.limits.lock_stripes;
        let mut restored_bytes = 0;
        for p in loaded.partitions {
            let part = Partition::restore(p, stripes);
            restored_bytes += part.rows.heap_bytes();
            models.insert(part.spec.name.clone(), Arc::new(part));
        }
        self.used_bytes.store(restored_bytes, Ordering::Relaxed);
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
        if part.rows.dtype() != push.values.dtype() {
            return Err(PsError::TypeMismatch {
                model: push.model.clone(),
                actual: part.rows.dtype(),
                requested: push.values.dtype(),
            });
        }
        // Validate everything before changing anything: a push is applied whole or not at all.
        let locals = part.locals(&push.rows)?;
        part.check_cols(&push.cols)?;
        let limits = &self.config.limits;
        if let Some(cap) = limits.max_memory_bytes {
            // Cheap bound first (every pushed cell new, rows doubling): only a push that could
            // pass the cap pays for counting its new cells exactly. Checked before the dedup
            // window admits the push, so a refused push is not recorded as applied.
            let entry = (push.values.dtype().size_bytes() + 4).next_power_of_two() as u64;
            let worst = 2 * entry * push.rows.len() as u64;
            if self.memory_bytes().saturating_add(worst) > cap {
                let exact = part.rows.new_cell_bytes(&locals, &push.cols);
                self.check_memory(exact, &format!("a push to '{}'", push.model))?;
            }
        }
        part.apply_once(push, &locals, limits, |grown| self.grow(grown))?;
        Ok(Response::Done)
    }

    fn too_large(&self, n: usize) -> PsError {
        let limit = self.config.limits.max_request_elements;
        PsError::InvalidRequest(format!(
            "request has {n} elements, over this server's limit of {limit}"
        ))
    }

    fn check_size(&self, n: usize) -> Result<()> {
        if n > self.config.limits.max_request_elements {
            return Err(self.too_large(n));
        }
        Ok(())
    }

    fn partition(&self, model: &str) -> Result<Arc<Partition>> {
        self.read_models()
            .get(model)
            .cloned()
            .ok_or_else(|| PsError::UnknownModel(model.to_string()))
    }

    /// Every partition, in model-name order (so snapshots are written in a stable order).
    fn all_partitions(&self) -> Vec<Arc<Partition>> {
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

    fn read_models(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Partition>>> {
        self.models.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_models(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Partition>>> {
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
        let mut w: Vec<u64> = part.exactly().dedup.writers.keys().copied().collect();
        w.sort();
        w
    }

    fn one_push(seq: u64) -> Push {
        Push {
            model: "m".into(),
            writer: 5,
            seq,
            rows: vec![0],
            cols: vec![0],
            values: Values::I32(vec![1]),
        }
    }

    /// Runs `f` on another thread; the receiver gets its result.
    fn spawn<R: Send + 'static>(
        f: impl FnOnce() -> R + Send + 'static,
    ) -> std::sync::mpsc::Receiver<R> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx
    }

    #[test]
    fn a_destroy_waits_for_the_push_in_flight_and_the_memory_count_ends_at_zero() {
        let s = Arc::new(shard(Limits::default()));
        let spec = ModelSpec::matrix("m", 4, 1000, DType::I32).with_storage(Storage::Sparse);
        create(&s, spec).unwrap();
        let part = s.partition("m").unwrap();
        // The push is admitted, then waits for its stripe (held here, as a slow push would).
        let held = part.rows.hold_i32(0).unwrap();
        let pusher = s.clone();
        let pushed = spawn(move || push(&pusher, 1).is_ok());
        while part.exactly().in_flight.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let destroyer = s.clone();
        let destroyed = spawn(move || {
            destroyer
                .handle(&Request::Destroy { model: "m".into() })
                .is_ok()
        });
        assert!(
            destroyed.recv_timeout(Duration::from_millis(200)).is_err(),
            "the destroy finished while a push to the model was still being applied"
        );
        drop(held);
        assert!(pushed.recv_timeout(Duration::from_secs(10)).unwrap());
        assert!(destroyed.recv_timeout(Duration::from_secs(10)).unwrap());
        assert_eq!(
            s.memory_bytes(),
            0,
            "bytes of a destroyed model still counted"
        );
        // A push that found the partition before the destroy is refused, not applied to it.
        let late = part.apply_once(&one_push(9), &[0], &Limits::default(), |_| {
            panic!("a retired partition grew")
        });
        assert!(matches!(late, Err(PsError::UnknownModel(_))), "{late:?}");
    }

    #[test]
    fn a_retry_is_done_only_once_the_original_has_landed_and_snapshots_wait_for_it() {
        let spec = ModelSpec::matrix("m", 4, 1, DType::I32);
        let part = Arc::new(Partition::new(spec, 0, 1, Aggregation::Add, 4));
        let limits = Limits::default();
        // The original is admitted, then waits for its stripe (held here, as a slow push would).
        let held = part.rows.hold_i32(0).unwrap();
        let (p, l) = (part.clone(), limits.clone());
        let original = spawn(move || p.apply_once(&one_push(1), &[0], &l, |_| {}).is_ok());
        while !part.exactly().in_flight.contains(&(5, 1)) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let (p, l) = (part.clone(), limits.clone());
        let retry = spawn(move || p.apply_once(&one_push(1), &[0], &l, |_| {}).is_ok());
        let p = part.clone();
        let snapshot = spawn(move || p.image(Instant::now(), None));
        // Neither the retry's `Done` nor a snapshot may come before the original is applied.
        let wait = Duration::from_millis(200);
        assert!(
            retry.recv_timeout(wait).is_err(),
            "a retry answered before its original landed"
        );
        assert!(
            snapshot.recv_timeout(wait).is_err(),
            "a snapshot of a half-applied push"
        );
        // A pull of another stripe does not wait for the push.
        let p = part.clone();
        let pull = spawn(move || p.rows.gather(&[3], &[0]));
        assert_eq!(
            pull.recv_timeout(Duration::from_secs(10)),
            Ok(Values::I32(vec![0]))
        );
        drop(held);
        let long = Duration::from_secs(10);
        assert_eq!(original.recv_timeout(long), Ok(true));
        assert_eq!(retry.recv_timeout(long), Ok(true));
        let (store, dedup) = snapshot.recv_timeout(long).unwrap();
        let AnyStore::I32(crate::store::RowStore::Dense { data, .. }) = store else {
            unreachable!("built as dense i32")
        };
        assert_eq!(data, vec![1, 0, 0, 0], "applied once, and in the snapshot");
        assert_eq!(dedup.windows.len(), 1);
        assert_eq!(part.rows.gather(&[0], &[0]), Values::I32(vec![1]));
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
    fn the_memory_cap_refuses_growth_but_never_loses_or_half_applies_a_push() {
        let s = shard(Limits {
            max_memory_bytes: Some(4096),
            ..Limits::default()
        });
        let mut spec = ModelSpec::matrix("m", 8, 100_000, DType::I32);
        spec.storage = crate::spec::Storage::Sparse;
        create(&s, spec).unwrap();
        let headers = s.memory_bytes();
        assert!(headers > 0 && headers < 4096, "{headers}");
        // A dense model past the cap is refused at create.
        let err = create(&s, ModelSpec::matrix("dense", 100, 100, DType::I64)).unwrap_err();
        assert!(err.to_string().contains("memory cap"), "{err}");
        let cells = |n: u32, seq: u64, writer: u64| Push {
            model: "m".into(),
            writer,
            seq,
            rows: vec![0; n as usize],
            cols: (0..n).collect(),
            values: Values::I32(vec![1; n as usize]),
        };
        // 100 new cells fit; 1,000 more do not: refused whole, and not recorded as applied.
        s.handle(&Request::Push(cells(100, 1, 7))).unwrap();
        let grown = s.memory_bytes();
        assert!(grown > headers, "{grown} vs {headers}");
        let err = s.handle(&Request::Push(cells(1000, 2, 7))).unwrap_err();
        assert!(err.to_string().contains("memory cap"), "{err}");
        let sum = |s: &Shard| match s
            .handle(&Request::PullRows {
                model: "m".into(),
                rows: vec![0],
            })
            .unwrap()
        {
            Response::Rows(crate::row::RowBlock::Sparse { cols, .. }) => cols.len(),
            other => panic!("{other:?}"),
        };
        assert_eq!(sum(&s), 100);
        // Updates of stored cells need no memory and still apply at the cap; the refused push,
        // sent again once room is made, is applied (its seq was never admitted).
        s.handle(&Request::Push(cells(100, 3, 8))).unwrap();
        assert_eq!(s.memory_bytes(), grown);
        s.handle(&Request::Destroy { model: "m".into() }).unwrap();
        assert_eq!(s.memory_bytes(), 0);
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
