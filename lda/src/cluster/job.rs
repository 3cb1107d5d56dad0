//! The job a driver publishes on the master for its workers.

use serde::{Deserialize, Serialize};

use crate::conditional::Hyper;
use crate::error::{LdaError, Result};
use crate::sampler::SamplerKind;
use crate::train::{SampleOrder, TrainConfig};

/// Version of the published job; a worker refuses one it does not know.
pub const JOB_FORMAT: u32 = 1;

/// The master entry under which the job `name` is published.
pub fn job_key(name: &str) -> String {
    format!("glint-lda/job/{name}")
}

/// Everything a worker needs to take part in a run, besides its corpus and thread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub format: u32,
    pub name: String,
    /// The run's identity, the same through every recovery (names the workers' checkpoints).
    pub run: String,
    /// Recoveries so far: each attempt gets fresh models, rebuilt from the checkpoint.
    pub attempt: u32,
    /// The iteration this attempt starts from: 0 (the seeded initial state) or a checkpoint.
    pub resume_from: u32,
    /// Workers checkpoint their state after every this many iterations (0: never).
    pub checkpoint_every: u32,
    /// Whether failures roll back to the last checkpoint (else they end the run).
    pub recover: bool,
    /// Prefix of this attempt's model names on the servers.
    pub prefix: String,
    pub hyper: Hyper,
    pub sampler: SamplerKind,
    pub mh_cycles: u32,
    pub order: SampleOrder,
    pub block_tokens: usize,
    pub seed: u64,
    pub iterations: u32,
    pub workers: u32,
    /// Servers the run's models are spread over (a worker waits until it knows them all).
    pub servers: u32,
    /// Iterations a worker may run ahead of the slowest (0: a barrier per iteration).
    pub staleness: u32,
    /// Workers report their documents' part of the log-likelihood every iteration.
    pub loglik: bool,
    /// The corpus every worker must read: its documents and tokens.
    pub corpus_docs: u64,
    pub corpus_tokens: u64,
}

impl JobSpec {
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| LdaError::Cluster(format!("encoding the job: {e}")))
    }

    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Self> {
        let job: JobSpec = serde_json::from_slice(bytes).map_err(|e| {
            LdaError::Cluster(format!(
                "the job '{name}' on the master is not readable: {e}"
            ))
        })?;
        if job.format != JOB_FORMAT {
            return Err(LdaError::Cluster(format!(
                "the job '{name}' has format {}, this worker reads format {JOB_FORMAT} (a different glint-lda version?)",
                job.format
            )));
        }
        job.validate()?;
        Ok(job)
    }

    pub fn validate(&self) -> Result<()> {
        if self.workers == 0 || self.workers > super::MAX_WORKERS {
            return Err(LdaError::InvalidConfig(format!(
                "{} workers; between 1 and {} are supported",
                self.workers,
                super::MAX_WORKERS
            )));
        }
        // One log-likelihood slot per (iteration, worker) on the servers.
        if u64::from(self.iterations) * u64::from(self.workers) > 1 << 26 {
            return Err(LdaError::InvalidConfig(format!(
                "{} iterations × {} workers is too many for one run",
                self.iterations, self.workers
            )));
        }
        self.hyper.validate()
    }

    /// The trainer settings of worker `index` running `threads` sampler threads.
    pub fn train_config(&self, index: u32, threads: usize) -> Result<TrainConfig> {
        if threads == 0 || threads > super::MAX_WORKER_THREADS {
            return Err(LdaError::InvalidConfig(format!(
                "{threads} threads per worker; between 1 and {} are supported",
                super::MAX_WORKER_THREADS
            )));
        }
        let mut c = TrainConfig::new(self.hyper);
        c.sampler = self.sampler;
        c.mh_cycles = self.mh_cycles;
        c.order = self.order;
        c.block_tokens = self.block_tokens;
        c.seed = self.seed;
        c.threads = threads;
        c.loglik = false;
        c.model_prefix = self.prefix.clone();
        c.stream_base = index as usize * super::MAX_WORKER_THREADS;
        c.join_existing = true;
        // Other workers push as they go; a worker's own threads do the same (the schedule the
        // cluster benchmarks measured).
        c.deterministic = false;
        c.validate()?;
        Ok(c)
    }
}
