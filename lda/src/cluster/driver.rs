//! The driver of a cluster run: creates each attempt's models, publishes the job, follows the
//! workers without stopping them, rolls back to the last complete checkpoint when a worker or a
//! server is lost, and exports the model when the workers are done.
//!
//! A recovery is a new attempt: fresh models under a new prefix, into which every worker pushes
//! the counts of its checkpointed assignments (n_wk and n_k are functions of the assignments,
//! so the rebuilt model is consistent with the workers by construction). The driver checks the
//! count invariants before it releases the workers, after every (re)start.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ps_core::{Client, DType, ModelSpec, Storage};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::control::{Control, Interrupted, Watcher, run_models, theta_name};
use super::job::{JOB_FORMAT, JobSpec, job_key};
use crate::alpha::Alpha;
use crate::corpus::CorpusSummary;
use crate::error::{LdaError, Result};
use crate::export::{
    AlphaValue, DOC_TOPIC_FILE, DocTopicTable, HyperFile, read_json_file, write_json,
};
use crate::model::{PsModel, row_nonzeros};
use crate::train::TrainConfig;
use crate::view::ModelView;

/// The driver's record of its run in the model directory, for `train --resume`.
pub const RUN_FILE: &str = "cluster-run.json";

/// How the driver runs a job.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    pub job: String,
    pub workers: u32,
    pub iterations: u32,
    pub staleness: u32,
    /// How long to wait for workers that do not move (joining included).
    pub stall: Duration,
    /// A worker whose heartbeat stops this long is taken as lost.
    pub heartbeat_timeout: Duration,
    /// Workers checkpoint every this many iterations (0: never; a recovery then restarts from
    /// the seeded initial state).
    pub checkpoint_every: u32,
    /// Recoveries allowed before the run fails (0: the first failure ends it).
    pub max_recoveries: u32,
}

/// One finished iteration as the driver saw it.
#[derive(Debug, Clone)]
pub struct DriverIteration {
    pub iteration: u32,
    /// Seconds since the previous iteration was finished by every worker.
    pub seconds: f64,
    pub tokens_per_s: f64,
    /// log p(w, z): the documents' part as the workers left it after this iteration, the word
    /// part as the model stands when the driver reads it (the workers do not wait for it).
    pub loglik: Option<f64>,
}

/// What the driver tells its caller while it runs.
pub trait DriverEvents {
    /// `joined` of the workers have pushed their counts into the current attempt.
    fn joined(&mut self, joined: usize, workers: usize);
    /// Every worker finished an iteration; `view` is the model as it stands now.
    fn iteration(&mut self, it: &DriverIteration, view: ModelView<'_>) -> Result<()>;
    /// The run rolls back to iteration `to` (0: the seeded start) because of `why`.
    fn rollback(&mut self, to: u32, why: &str) -> Result<()>;
    /// An attempt after a recovery passed the count invariants and was released.
    fn recovered(&mut self, attempt: u32, from: u32);
}

/// Ends the job `name` from outside its driver (another thread or process): sets the abort flag
/// of its published attempt, which its workers and its driver see at their next wait. Nothing
/// happens when no such job is published.
pub fn abort_job(client: &Client, handle: &Handle, name: &str) -> Result<()> {
    let Some(bytes) = handle.block_on(client.entry(&job_key(name)))? else {
        return Ok(());
    };
    let job = JobSpec::from_bytes(name, &bytes)?;
    let control = handle.block_on(Control::open(client, &job))?;
    handle.block_on(control.abort())
}

/// `cluster-run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunRecord {
    job: JobSpec,
    last_checkpoint: u32,
}

/// A run in progress, seen from the driver.
#[derive(Debug)]
pub struct Driver {
    client: Client,
    handle: Handle,
    job: JobSpec,
    model: PsModel,
    control: Control,
    corpus: CorpusSummary,
    opts: DriverOptions,
    out: PathBuf,
    iteration: u32,
    last_checkpoint: u32,
    last_done: Instant,
}

impl Driver {
    /// Starts a run: creates attempt 0 and publishes the job; `config` holds the sampler
    /// settings and the run's model prefix (each worker chooses its own thread count).
    pub fn start(
        client: &Client,
        handle: Handle,
        corpus: CorpusSummary,
        config: &TrainConfig,
        opts: &DriverOptions,
        out: &Path,
    ) -> Result<Self> {
        if corpus.ids.is_empty() {
            return Err(LdaError::InvalidConfig(
                "the corpus has no documents".into(),
            ));
        }
        let run = config.model_prefix.trim_end_matches('.').to_string();
        let job = JobSpec {
            format: JOB_FORMAT,
            name: opts.job.clone(),
            run: run.clone(),
            attempt: 0,
            resume_from: 0,
            checkpoint_every: opts.checkpoint_every,
            recover: opts.max_recoveries > 0,
            prefix: format!("{run}.a0."),
            hyper: config.hyper,
            sampler: config.sampler,
            mh_cycles: config.mh_cycles,
            order: config.order,
            block_tokens: config.block_tokens,
            seed: config.seed,
            iterations: opts.iterations,
            workers: opts.workers,
            servers: client.shards() as u32,
            staleness: opts.staleness,
            loglik: config.loglik,
            corpus_docs: corpus.ids.len() as u64,
            corpus_tokens: corpus.tokens,
        };
        job.validate()?;
        if let Some(old) = handle.block_on(client.entry(&job_key(&job.name)))? {
            let prefix = JobSpec::from_bytes(&job.name, &old).map(|j| j.prefix);
            tracing::warn!(job = %job.name, old = ?prefix.ok(), "replacing a job left by an earlier driver");
        }
        let (model, control) = publish(client, &handle, &job)?;
        let driver = Driver {
            client: client.clone(),
            handle,
            job,
            model,
            control,
            corpus,
            opts: opts.clone(),
            out: out.to_path_buf(),
            iteration: 0,
            last_checkpoint: 0,
            last_done: Instant::now(),
        };
        driver.save_record()?;
        Ok(driver)
    }

    /// Continues the run recorded in `out` by a driver that stopped: follows the attempt still
    /// on the cluster if there is one, else starts a new attempt from the last checkpoint.
    pub fn resume(
        client: &Client,
        handle: Handle,
        corpus: CorpusSummary,
        opts: &DriverOptions,
        out: &Path,
    ) -> Result<Self> {
        let record: RunRecord = read_json_file(&out.join(RUN_FILE))?;
        let mut job = record.job;
        if job.corpus_tokens != corpus.tokens || job.corpus_docs != corpus.ids.len() as u64 {
            return Err(LdaError::Cluster(format!(
                "the corpus differs from the one the run in {} was started on",
                out.display()
            )));
        }
        let published = handle
            .block_on(client.entry(&job_key(&job.name)))?
            .map(|b| JobSpec::from_bytes(&job.name, &b))
            .transpose()?;
        let live = match published {
            Some(p) if p.run == job.run && p.attempt >= job.attempt => {
                let opened = handle.block_on(async {
                    let model = PsModel::open(client, &p.hyper, &p.prefix).await?;
                    let control = Control::open(client, &p).await?;
                    Ok::<_, LdaError>((model, control))
                });
                opened.ok().map(|mc| (p, mc))
            }
            _ => None,
        };
        let (model, control, iteration) = match live {
            Some((p, (model, control))) => {
                // Reattach: the workers went on without the driver.
                let done = handle.block_on(control.read())?.min();
                job = p;
                let iteration = (done - 1).clamp(0, i64::from(job.iterations)) as u32;
                tracing::info!(
                    attempt = job.attempt,
                    iteration,
                    "reattached to the running attempt"
                );
                (model, control, iteration)
            }
            None => {
                job.attempt += 1;
                job.resume_from = record.last_checkpoint;
                job.prefix = format!("{}.a{}.", job.run, job.attempt);
                tracing::info!(
                    attempt = job.attempt,
                    from = job.resume_from,
                    "new attempt from the last checkpoint"
                );
                let (model, control) = publish(client, &handle, &job)?;
                (model, control, record.last_checkpoint)
            }
        };
        let driver = Driver {
            client: client.clone(),
            handle,
            job,
            model,
            control,
            corpus,
            opts: opts.clone(),
            out: out.to_path_buf(),
            iteration,
            last_checkpoint: record.last_checkpoint,
            last_done: Instant::now(),
        };
        driver.save_record()?;
        Ok(driver)
    }

    pub fn job(&self) -> &JobSpec {
        &self.job
    }

    /// The last iteration every worker finished, as the driver last saw it.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// The model on the servers.
    pub fn view(&self) -> ModelView<'_> {
        ModelView {
            model: &self.model,
            handle: &self.handle,
            hyper: self.job.hyper,
            terms: &self.corpus.terms,
            display: &self.corpus.display,
            word_counts: &self.corpus.word_counts,
            tokens: self.corpus.tokens,
        }
    }

    fn save_record(&self) -> Result<()> {
        write_json(
            &self.out.join(RUN_FILE),
            &RunRecord {
                job: self.job.clone(),
                last_checkpoint: self.last_checkpoint,
            },
        )
    }

    /// Runs the job to its end, recovering from lost workers and servers, and writes the model
    /// directory.
    pub fn run(&mut self, events: &mut dyn DriverEvents) -> Result<()> {
        let mut recoveries = 0;
        loop {
            let why = match self.follow(events) {
                Ok(()) => return Ok(()),
                Err(Interrupted::Aborted) => {
                    return Err(LdaError::Cluster("a worker aborted the run".into()));
                }
                Err(Interrupted::RolledBack(why)) => why,
                Err(Interrupted::Failed(LdaError::Ps(e))) => e.to_string(),
                Err(Interrupted::Failed(e) | Interrupted::Stopped(e)) => return Err(e),
            };
            if recoveries >= self.opts.max_recoveries {
                return Err(LdaError::Cluster(format!(
                    "{why}; no recovery left (--max-recoveries {})",
                    self.opts.max_recoveries
                )));
            }
            recoveries += 1;
            crate::telemetry::DRIVER.recoveries.inc();
            let to = self.last_checkpoint;
            tracing::warn!(reason = %why, to, recoveries, "rolling back");
            events.rollback(to, &why)?;
            self.new_attempt(to)?;
        }
    }

    /// Ends the current attempt and starts the next from iteration `from`, waiting (up to the
    /// stall time) for lost servers to come back.
    fn new_attempt(&mut self, from: u32) -> Result<()> {
        // Tell the workers (if the control vector is still reachable), then free the servers.
        let _ = self.handle.block_on(self.control.roll_back());
        for name in run_models(&self.job.prefix) {
            let _ = self.handle.block_on(self.client.destroy(&name));
        }
        self.job.attempt += 1;
        self.job.resume_from = from;
        self.job.prefix = format!("{}.a{}.", self.job.run, self.job.attempt);
        let deadline = Instant::now() + self.opts.stall;
        let (model, control) = loop {
            match publish(&self.client, &self.handle, &self.job) {
                Ok(mc) => break mc,
                Err(LdaError::Ps(e)) if Instant::now() < deadline => {
                    tracing::info!(error = %e, "the servers are not all back yet");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => return Err(e),
            }
        };
        self.model = model;
        self.control = control;
        self.iteration = from;
        crate::telemetry::DRIVER
            .attempt
            .set(f64::from(self.job.attempt));
        self.save_record()
    }

    /// Follows the current attempt to the end of the run.
    fn follow(&mut self, events: &mut dyn DriverEvents) -> std::result::Result<(), Interrupted> {
        let n = self.job.workers as usize;
        let from = i64::from(self.job.resume_from);
        let watch = Watcher::Driver {
            heartbeat_timeout: self.opts.heartbeat_timeout,
        };
        let stall = self.opts.stall;
        let mut seen = usize::MAX;
        let p = self.handle.block_on(self.control.wait_for(
            |p| {
                let joined = p.done.iter().filter(|&&d| d > from).count();
                if joined != seen {
                    seen = joined;
                    events.joined(joined, n);
                }
                joined == n
            },
            stall,
            watch,
            "the workers to join",
        ))?;
        if p.released == 0 {
            // The model was rebuilt from the workers' assignments: it must account for every
            // token exactly before anybody samples against it.
            self.view().check_invariants()?;
            self.handle.block_on(self.control.release())?;
            if self.job.attempt > 0 {
                events.recovered(self.job.attempt, self.job.resume_from);
            }
        }
        self.last_done = Instant::now();
        while self.iteration < self.job.iterations {
            let t = self.iteration + 1;
            let p = self.handle.block_on(self.control.wait_for(
                |p| p.min() > i64::from(t),
                stall,
                watch,
                &format!("iteration {t}"),
            ))?;
            let seconds = self.last_done.elapsed().as_secs_f64();
            self.last_done = Instant::now();
            self.iteration = t;
            if self.job.checkpoint_every > 0 && t.is_multiple_of(self.job.checkpoint_every) {
                // Each worker saved iteration t before it reported t done. Recorded first,
                // then confirmed to the workers, which may then delete older checkpoints.
                self.last_checkpoint = t;
                self.save_record()?;
                let shown = u32::try_from(p.confirmed).unwrap_or(0);
                self.handle
                    .block_on(self.control.confirm_checkpoint(shown, t))?;
            }
            let loglik = match self.handle.block_on(self.control.doc_ll(t))? {
                Some(doc) => Some(doc + self.view().word_loglik()?),
                None => None,
            };
            let it = DriverIteration {
                iteration: t,
                seconds,
                tokens_per_s: self.corpus.tokens as f64 / seconds.max(1e-9),
                loglik,
            };
            let m = &crate::telemetry::DRIVER;
            m.iteration.set(f64::from(t));
            m.tokens_per_s.set(it.tokens_per_s);
            if let Some(ll) = it.loglik {
                m.loglik.set(ll);
            }
            events.iteration(&it, self.view())?;
        }
        let last = i64::from(self.job.iterations) + 2;
        self.handle.block_on(self.control.wait_for(
            |p| p.min() >= last,
            stall,
            watch,
            "the workers' document-topic counts",
        ))?;
        self.view().check_invariants()?;
        self.export()?;
        self.handle.block_on(self.control.release())?;
        // The workers leave once they saw it; waiting for them keeps the clean-up from pulling
        // the control vector out from under them.
        let _ = self.handle.block_on(self.control.wait_for(
            |p| p.min() > last,
            Duration::from_secs(10),
            Watcher::Worker,
            "the workers to leave",
        ));
        Ok(())
    }

    fn export(&self) -> Result<()> {
        let h = self.job.hyper;
        self.view().export_model(
            &self.out,
            &HyperFile {
                topics: h.topics,
                vocabulary: h.vocab,
                alpha: AlphaValue::Symmetric(h.alpha),
                beta: h.beta,
                iterations: self.job.iterations,
                mh_steps: self.job.mh_cycles,
                seed: self.job.seed,
                threads: self.job.workers as usize,
                documents: self.corpus.ids.len(),
                tokens: self.corpus.tokens,
            },
        )?;
        self.write_doc_topics(&self.out.join(DOC_TOPIC_FILE))
    }

    fn write_doc_topics(&self, path: &Path) -> Result<()> {
        const SCAN: u64 = 4096;
        let theta = self
            .handle
            .block_on(self.client.matrix::<i32>(&theta_name(&self.job.prefix)))?;
        let alpha = Alpha::symmetric(self.job.hyper.topics, self.job.hyper.alpha);
        let mut table = DocTopicTable::default();
        let mut nz = Vec::new();
        let docs = self.corpus.ids.len() as u64;
        let mut start = 0u64;
        while start < docs {
            let end = (start + SCAN).min(docs);
            let rows: Vec<u64> = (start..end).collect();
            let pulled = self.handle.block_on(theta.pull_rows(&rows))?;
            for (d, row) in rows.iter().zip(&pulled) {
                nz.clear();
                let mut len = 0u32;
                for (t, c) in row_nonzeros(row) {
                    let c = u32::try_from(c).map_err(|_| {
                        LdaError::Invariant(format!("n_dk < 0 at document {d}, topic {t}: {c}"))
                    })?;
                    len += c;
                    nz.push((t, c));
                }
                table.add(&alpha, &self.corpus.ids[*d as usize], len, &mut nz);
            }
            start = end;
        }
        table.write(path)
    }

    /// Tells the workers to stop (after a failure of the driver).
    pub fn abort(&self) -> Result<()> {
        self.handle.block_on(self.control.abort())
    }

    /// Withdraws the job and frees the servers of the run's models.
    pub fn clean_up(&self) -> Result<()> {
        self.handle
            .block_on(self.client.remove_entry(&job_key(&self.job.name)))?;
        for name in run_models(&self.job.prefix) {
            match self.handle.block_on(self.client.destroy(&name)) {
                Ok(()) | Err(ps_core::PsError::UnknownModel(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Creates an attempt's models and publishes its job.
fn publish(client: &Client, handle: &Handle, job: &JobSpec) -> Result<(PsModel, Control)> {
    let model = handle.block_on(PsModel::create(client, &job.hyper, &job.prefix))?;
    let control = handle.block_on(Control::create(client, job))?;
    handle.block_on(
        client.create_matrix::<i32>(
            ModelSpec::matrix(
                theta_name(&job.prefix),
                job.corpus_docs,
                job.hyper.topics,
                DType::I32,
            )
            .with_storage(Storage::Sparse),
        ),
    )?;
    handle.block_on(client.put_entry(&job_key(&job.name), job.to_bytes()?))?;
    tracing::info!(job = %job.name, attempt = job.attempt, prefix = %job.prefix, workers = job.workers, "job published");
    Ok((model, control))
}
