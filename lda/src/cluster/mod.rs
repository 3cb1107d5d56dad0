//! Cluster mode: sampler workers in other processes (and machines) around a driver.
//!
//! The driver ([`Driver`]) creates the run's models on the parameter servers and publishes a
//! [`JobSpec`] on the master under the job's name. Each worker ([`run_worker`]) reads the job,
//! loads its part of the corpus (contiguous documents of about equal token counts, the same
//! split for every worker reading the same corpus), pushes its counts and samples its part
//! iteration by iteration with the same pipelined trainer as an embedded run.
//!
//! Coordination goes through the parameter server itself, so it needs no other channel and
//! inherits its exactly-once pushes: a small `control` vector per attempt holds each worker's
//! progress and heartbeat and the abort, rollback and release flags (see `control`). A worker
//! starts iteration t once every worker has finished iteration t − 1 − staleness (0 by
//! default: a barrier per iteration, the schedule of the embedded trainer); the driver follows
//! without stopping anybody, writes the metrics, and at the end checks the count invariants and
//! exports the model directory, documents' θ included (the workers push n_dk into a `theta`
//! matrix on the servers).
//!
//! Recovery: workers checkpoint their assignments every `checkpoint_every` iterations, before
//! they report the iteration done, so once every worker has reported iteration t the
//! checkpoints of t form a consistent state. A lost worker (no heartbeat), a restarted worker
//! (it finds itself already counted), or a lost server (requests fail) ends the attempt; the
//! driver starts the next one from the last complete checkpoint with fresh models, every worker
//! pushes the counts of its checkpointed assignments, and the driver checks the invariants
//! before it releases them. A restarted driver (`Driver::resume`) reattaches to the attempt
//! still running, or starts a new one from the checkpoint its run record names.

mod control;
mod driver;
mod job;
mod worker;

pub use driver::{Driver, DriverEvents, DriverIteration, DriverOptions, RUN_FILE, abort_job};
pub use job::{JobSpec, job_key};
pub use worker::{
    DocumentsPart, WorkerCorpus, WorkerOptions, WorkerSummary, run_worker, wait_for_job,
};

/// Most sampler threads of one worker (each worker's random streams start this far apart).
pub const MAX_WORKER_THREADS: usize = 256;

/// Most workers of one run.
pub const MAX_WORKERS: u32 = 4096;
