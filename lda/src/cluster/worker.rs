//! A cluster worker: reads the published job, samples its part of the corpus against the
//! shared model, reports progress and heartbeats, checkpoints its state at iteration
//! boundaries, and pushes its documents' topic counts at the end. When an attempt rolls back it
//! reloads its last complete checkpoint and joins the next attempt.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ps_core::Client;
use tokio::runtime::Handle;

use super::control::{Control, Interrupted, Progress, Watcher, theta_name};
use super::job::{JobSpec, job_key};
use crate::checkpoint::Scope;
use crate::corpus::{LoadedCorpus, PartInfo};
use crate::error::{LdaError, Result};
use crate::model::confirm_push;
use crate::train::{IterationStats, Trainer};

/// How one worker takes part.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub index: u32,
    /// The number of workers this worker expects (checked against the job), if given.
    pub workers: Option<u32>,
    pub threads: usize,
    /// How long to wait for the job (or its next attempt) to be published.
    pub wait: Duration,
    /// How long to wait for other workers that do not move.
    pub stall: Duration,
    /// Where this worker keeps its checkpoints (none: it cannot resume after a rollback past
    /// iteration 0).
    pub state_dir: Option<PathBuf>,
}

/// Where a worker's documents come from; loaded again for every attempt.
pub trait WorkerCorpus {
    /// Worker `index`'s part of the run's corpus, split for `threads` sampler threads, and
    /// where the part lies in the whole corpus.
    fn load(&self, index: u32, workers: u32, threads: usize) -> Result<(LoadedCorpus, PartInfo)>;
    /// The corpus, as an error message names it.
    fn describe(&self) -> String;
}

/// A corpus directory every worker reads: each takes its contiguous, token-balanced part.
impl WorkerCorpus for PathBuf {
    fn load(&self, index: u32, workers: u32, threads: usize) -> Result<(LoadedCorpus, PartInfo)> {
        LoadedCorpus::open_part(self, index as usize, workers as usize, threads)
    }

    fn describe(&self) -> String {
        format!("the corpus {}", self.display())
    }
}

/// A part handed over by the caller, such as a Spark task's partition: the documents of this
/// worker only, with their place in the whole corpus.
#[derive(Debug, Clone)]
pub struct DocumentsPart {
    pub docs: Vec<(String, Vec<u32>)>,
    /// Word ids of the whole corpus (every part uses the same vocabulary).
    pub vocab: u32,
    pub terms: Vec<String>,
    pub info: PartInfo,
}

impl WorkerCorpus for DocumentsPart {
    fn load(&self, _: u32, _: u32, threads: usize) -> Result<(LoadedCorpus, PartInfo)> {
        let tokens = self.docs.iter().map(|(_, t)| t.len() as u64).sum();
        let docs = self.docs.iter().map(|d| Ok(d.clone()));
        let loaded =
            LoadedCorpus::from_documents(docs, tokens, self.vocab, self.terms.clone(), threads)?;
        Ok((loaded, self.info))
    }

    fn describe(&self) -> String {
        format!("this part's corpus ({} documents here)", self.docs.len())
    }
}

/// What a worker did.
#[derive(Debug, Clone)]
pub struct WorkerSummary {
    pub job: JobSpec,
    pub documents: usize,
    pub tokens: u64,
    pub seconds: f64,
    /// Attempts this worker took part in after the first (recoveries).
    pub rejoined: u32,
}

/// n_dk triples pushed at once.
const THETA_BATCH: usize = 1 << 20;

/// Seconds between a worker's heartbeats.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Waits (up to `wait`) for the job `name`, at attempt `min_attempt` or later, to be published
/// and for its models to exist.
pub fn wait_for_job(
    client: &Client,
    handle: &Handle,
    name: &str,
    min_attempt: u32,
    wait: Duration,
) -> Result<JobSpec> {
    let key = job_key(name);
    let deadline = Instant::now() + wait;
    loop {
        let seen = match handle.block_on(client.entry(&key)) {
            Ok(Some(bytes)) => {
                let job = JobSpec::from_bytes(name, &bytes)?;
                if job.attempt < min_attempt {
                    format!("attempt {} is over, waiting for the next", job.attempt)
                } else {
                    // A job left by a driver that died may name models that no longer exist.
                    match handle.block_on(client.matrix::<i32>(&format!("{}nwk", job.prefix))) {
                        Ok(_) => return Ok(job),
                        Err(e) => format!("the job is published but its model is not ready ({e})"),
                    }
                }
            }
            Ok(None) => "no such job published yet".to_string(),
            Err(e) if e.is_retryable() => format!("the master is not answering ({e})"),
            Err(e) => return Err(e.into()),
        };
        if Instant::now() >= deadline {
            return Err(LdaError::Cluster(format!(
                "waited {}s for the job '{name}' on the master: {seen}",
                wait.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs worker `opts.index` of the job `name` on its part of `corpus` until the run is
/// complete, taking part in every recovery; `connect(n)` gives a client of the cluster that
/// knows at least `n` servers. `on_iteration` sees each iteration's figures; an error from it
/// stops this worker at once, as if its process were killed: the run is not aborted, and the
/// driver recovers when the worker is restarted or its heartbeat stops. Blocks (call it from a
/// plain thread, not from async code).
pub fn run_worker(
    connect: &dyn Fn(usize) -> Result<Client>,
    handle: Handle,
    corpus: &dyn WorkerCorpus,
    name: &str,
    opts: &WorkerOptions,
    mut on_iteration: impl FnMut(&IterationStats) -> Result<()>,
) -> Result<WorkerSummary> {
    let started = Instant::now();
    let mut min_attempt = 0;
    let mut rejoined = 0;
    loop {
        let mut client = connect(1)?;
        let job = wait_for_job(&client, &handle, name, min_attempt, opts.wait)?;
        if client.shards() < job.servers as usize {
            client = connect(job.servers as usize)?;
        }
        let outcome = attempt(&client, &handle, corpus, &job, opts, &mut on_iteration);
        let why = match outcome {
            Ok((documents, tokens)) => {
                return Ok(WorkerSummary {
                    job,
                    documents,
                    tokens,
                    seconds: started.elapsed().as_secs_f64(),
                    rejoined,
                });
            }
            Err(Interrupted::RolledBack(why)) if job.recover => why,
            // A server lost or restarted: this attempt is over, the next starts from the
            // last checkpoint.
            Err(Interrupted::Failed(LdaError::Ps(e))) if job.recover => {
                let why = format!("worker {}: {e}", opts.index);
                if let Ok(control) = handle.block_on(Control::open(&client, &job)) {
                    let _ = handle.block_on(control.roll_back());
                }
                why
            }
            Err(Interrupted::Aborted) => {
                return Err(LdaError::Cluster("the run was aborted".into()));
            }
            Err(Interrupted::Stopped(e)) => return Err(e),
            Err(other) => {
                let e = LdaError::from(other);
                tracing::error!(error = %e, "worker failed; aborting the run");
                // Tell the driver and the other workers at once rather than letting them wait.
                if let Ok(control) = handle.block_on(Control::open(&client, &job))
                    && let Err(abort) = handle.block_on(control.abort())
                {
                    tracing::warn!(error = %abort, "could not signal the abort");
                }
                return Err(e);
            }
        };
        tracing::warn!(attempt = job.attempt, reason = %why, "attempt over; waiting for the next");
        min_attempt = job.attempt + 1;
        rejoined += 1;
    }
}

/// The directory of this worker's checkpoint after iteration `t`.
fn checkpoint_dir(state: &Path, job: &JobSpec, index: u32, t: u32) -> PathBuf {
    worker_dir(state, job, index).join(format!("iteration-{t:06}"))
}

fn worker_dir(state: &Path, job: &JobSpec, index: u32) -> PathBuf {
    state.join(&job.run).join(format!("worker-{index}"))
}

/// Removes this worker's checkpoints older than the one the driver recorded as complete (the
/// one a rollback would go to; the resume point of this attempt counts as recorded too).
fn prune_checkpoints(state: &Path, job: &JobSpec, index: u32, p: &Progress) -> Result<()> {
    let dir = worker_dir(state, job, index);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut saved: Vec<u32> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("iteration-")?
                .parse()
                .ok()
        })
        .collect();
    saved.sort_unstable();
    let complete = p.confirmed.max(i64::from(job.resume_from));
    if complete <= 0 {
        return Ok(());
    }
    for t in saved.into_iter().filter(|&t| i64::from(t) < complete) {
        let old = checkpoint_dir(state, job, index, t);
        fs::remove_dir_all(&old).map_err(|e| LdaError::io(&old, e))?;
    }
    Ok(())
}

/// Pushes a heartbeat every second until dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(handle: &Handle, control: Control, index: u32) -> Self {
        Heartbeat(handle.spawn(async move {
            loop {
                if let Err(e) = control.heartbeat(index).await {
                    tracing::debug!(error = %e, "heartbeat not delivered");
                }
                tokio::time::sleep(HEARTBEAT).await;
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One attempt of the run; returns this worker's documents and tokens.
fn attempt(
    client: &Client,
    handle: &Handle,
    source: &dyn WorkerCorpus,
    job: &JobSpec,
    opts: &WorkerOptions,
    on_iteration: &mut impl FnMut(&IterationStats) -> Result<()>,
) -> std::result::Result<(usize, u64), Interrupted> {
    let me = opts.index;
    if me >= job.workers {
        return Err(LdaError::Cluster(format!(
            "this is worker {me} but the job '{}' has {} workers (indices 0 to {})",
            job.name,
            job.workers,
            job.workers - 1
        ))
        .into());
    }
    if let Some(n) = opts.workers.filter(|&n| n != job.workers) {
        return Err(LdaError::Cluster(format!(
            "this worker was told there are {n} workers, but the job '{}' has {}",
            job.name, job.workers
        ))
        .into());
    }
    let config = job.train_config(me, opts.threads)?;
    let (corpus, part) = source.load(me, job.workers, opts.threads)?;
    if part.corpus_docs != job.corpus_docs || part.corpus_tokens != job.corpus_tokens {
        return Err(LdaError::Cluster(format!(
            "{} has {} documents and {} tokens, but the job '{}' was started on one with {} and {}",
            source.describe(),
            part.corpus_docs,
            part.corpus_tokens,
            job.name,
            job.corpus_docs,
            job.corpus_tokens
        ))
        .into());
    }
    let (documents, tokens) = (corpus.num_docs(), corpus.tokens);
    let control = handle.block_on(Control::open(client, job))?;
    // Already counted in this attempt: this process restarted and lost that state, so the
    // attempt must start over from the last checkpoint.
    if handle.block_on(control.read())?.done[me as usize] > 0 {
        handle.block_on(control.roll_back())?;
        return Err(Interrupted::RolledBack(format!("worker {me} restarted")));
    }
    let t0 = job.resume_from;
    let mut trainer = if t0 == 0 {
        Trainer::new(client, handle.clone(), corpus, config)?
    } else {
        let Some(state) = &opts.state_dir else {
            return Err(LdaError::Cluster(format!(
                "the run resumes from iteration {t0}, but this worker has no --state-dir to read its checkpoint from"
            ))
            .into());
        };
        let dir = checkpoint_dir(state, job, me, t0);
        if !crate::checkpoint::exists_in(&dir) {
            return Err(LdaError::Cluster(format!(
                "the run resumes from iteration {t0}, but {} holds no checkpoint",
                dir.display()
            ))
            .into());
        }
        Trainer::resume_from(client, handle.clone(), corpus, config, &dir, Scope::Part)?
    };
    tracing::info!(job = %job.name, attempt = job.attempt, index = me, from = t0, documents, tokens, "worker joined");
    let _heartbeat = Heartbeat::start(handle, control.clone(), me);
    handle.block_on(control.advance(me, i64::from(t0) + 1))?;
    let worker = Watcher::Worker;
    handle.block_on(control.wait_for(
        |p| p.released >= 1,
        opts.stall,
        worker,
        "the driver's release",
    ))?;
    for t in t0 + 1..=job.iterations {
        // Everyone's counts are in, and nobody is more than `staleness` iterations behind.
        let need = i64::from(t.saturating_sub(job.staleness)).max(i64::from(t0) + 1);
        let p = handle.block_on(control.wait_for(
            |p| p.min() >= need,
            opts.stall,
            worker,
            &format!("the other workers before iteration {t}"),
        ))?;
        if let Some(state) = &opts.state_dir {
            prune_checkpoints(state, job, me, &p)?;
        }
        let stats = trainer.run_iteration()?;
        if job.loglik {
            handle.block_on(control.report_doc_ll(t, me, trainer.doc_loglik()))?;
        }
        if let Some(state) = &opts.state_dir
            && job.checkpoint_every > 0
            && t.is_multiple_of(job.checkpoint_every)
        {
            trainer.save_checkpoint_to(&checkpoint_dir(state, job, me, t), Scope::Part)?;
        }
        handle.block_on(control.advance(me, 1))?;
        on_iteration(&stats).map_err(Interrupted::Stopped)?;
    }
    if let Some(first) = part.first_doc {
        push_doc_topics(client, handle, &trainer, job, first)?;
    }
    handle.block_on(control.advance(me, 1))?;
    // Stay until the driver has the model: a rollback before then needs this worker too.
    handle.block_on(control.wait_for(
        |p| p.released >= 2,
        opts.stall,
        worker,
        "the driver's export",
    ))?;
    handle.block_on(control.advance(me, 1))?;
    Ok((documents, tokens))
}

/// Pushes the worker's n_dk into the run's θ matrix, its documents at rows `first..`.
fn push_doc_topics(
    client: &Client,
    handle: &Handle,
    trainer: &Trainer,
    job: &JobSpec,
    first: u64,
) -> Result<()> {
    let theta = handle.block_on(client.matrix::<i32>(&theta_name(&job.prefix)))?;
    let (mut rows, mut cols, mut vals) = (Vec::new(), Vec::new(), Vec::new());
    let mut doc = first;
    let mut outcome = Ok(());
    let flush = |rows: &mut Vec<u64>, cols: &mut Vec<u32>, vals: &mut Vec<i32>| -> Result<()> {
        if !rows.is_empty() {
            let pushed = handle.block_on(theta.push(rows, cols, vals));
            handle.block_on(confirm_push(client, pushed))?;
            rows.clear();
            cols.clear();
            vals.clear();
        }
        Ok(())
    };
    trainer.for_each_doc_topics(|_, _, nz| {
        for &(t, c) in nz.iter() {
            rows.push(doc);
            cols.push(t);
            vals.push(c as i32);
        }
        doc += 1;
        if rows.len() >= THETA_BATCH && outcome.is_ok() {
            outcome = flush(&mut rows, &mut cols, &mut vals);
        }
    });
    outcome?;
    flush(&mut rows, &mut cols, &mut vals)
}
