//! Cluster mode from Python, the pieces `glint_lda.spark` puts around Spark tasks:
//!
//! * `_LocalCluster`: a master and shards served over gRPC from this process, so that workers in
//!   other processes (Spark executors) can reach them;
//! * `_ClusterDriver`: the driver of a cluster run (`glint-lda train --workers N`);
//! * `_run_worker`: a worker over documents the caller hands over (`glint-lda worker`, with a
//!   Spark partition for its part of the corpus).
//!
//! The driver and the worker block for the whole run, so each runs on a thread of its own with
//! the GIL released; their events come back to the calling Python thread, which runs the
//! callback and checks for Ctrl-C in between.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use lda::cluster::{
    DocumentsPart, Driver, DriverEvents, DriverIteration, DriverOptions, WorkerOptions, abort_job,
    run_worker,
};
use lda::corpus::{CorpusSummary, PartInfo};
use lda::view::ModelView;
use lda::{Hyper, LdaError, TrainConfig};
use numpy::PyReadonlyArray1;
use ps_core::grpc::{GrpcCoordinator, ServeOptions};
use ps_core::master::Master;
use ps_core::registration::Registration;
use ps_core::{AggregatorRegistry, Client, ClientConfig, Shard, ShardConfig};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use tokio::sync::watch;

use crate::{detached, json_to_py, message, panic_error};

fn text(e: impl std::error::Error) -> String {
    message(&e)
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    if value.is_finite() && value > 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(PyValueError::new_err(format!(
            "{name} must be a positive number of seconds, got {value}"
        )))
    }
}

/// A gRPC client of the cluster at `addr` that knows at least `servers` servers.
fn connect(
    addr: &str,
    token: Option<&str>,
    servers: usize,
    timeout: Duration,
) -> lda::Result<Client> {
    let config = ClientConfig {
        timeout,
        ..ClientConfig::default()
    };
    let rt = crate::runtime().map_err(|e| LdaError::Cluster(e.to_string()))?;
    Ok(rt.block_on(ps_core::grpc::connect(addr, token, config, servers))?)
}

/// Runs `work` on a thread of its own with the GIL released and hands each event it sends to
/// `on_event` on this thread, with the GIL. The first error of `on_event`, or a Ctrl-C, calls
/// `interrupt` (which must make `work` end soon) and is returned beside `work`'s result;
/// events after it go to `on_event` no more but to `drop_event`.
fn run_with_events<T: Send, E: Send>(
    py: Python<'_>,
    work: impl FnOnce(mpsc::Sender<E>) -> T + Send,
    mut on_event: impl FnMut(Python<'_>, E) -> PyResult<()>,
    mut drop_event: impl FnMut(E),
    interrupt: impl Fn(),
) -> PyResult<(T, Option<PyErr>)> {
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<E>();
        let handle = s.spawn(move || work(tx));
        let mut failed: Option<PyErr> = None;
        let mut rx = rx;
        loop {
            let (got, back) = py.detach(move || (rx.recv_timeout(Duration::from_millis(100)), rx));
            rx = back;
            match got {
                Ok(event) if failed.is_none() => {
                    if let Err(e) = on_event(py, event) {
                        failed = Some(e);
                        interrupt();
                    }
                }
                Ok(event) => drop_event(event),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if failed.is_none()
                        && let Err(e) = py.check_signals()
                    {
                        failed = Some(e);
                        interrupt();
                    }
                }
                // `work` returned and dropped its sender.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let out = py
            .detach(|| handle.join())
            .map_err(|p| panic_error(p.as_ref()))?;
        Ok((out, failed))
    })
}

/// A master and `servers` shards served over gRPC from this process until `stop` (or until the
/// object is dropped). Use `glint_lda.ps.LocalCluster`.
#[pyclass(module = "glint_lda._glint_lda", name = "_LocalCluster", frozen)]
pub struct LocalCluster {
    master_addr: String,
    shard_addrs: Vec<String>,
    stop: watch::Sender<bool>,
}

#[pymethods]
impl LocalCluster {
    /// Binds the master and each shard to a free port of `host` (an address that the workers
    /// can dial). Beyond loopback a `token` is required unless `insecure`.
    #[new]
    #[pyo3(signature = (servers = 2, host = "127.0.0.1".to_string(), token = None, insecure = false))]
    fn new(
        py: Python<'_>,
        servers: usize,
        host: String,
        token: Option<String>,
        insecure: bool,
    ) -> PyResult<Self> {
        if servers == 0 || servers > 1024 {
            return Err(PyValueError::new_err(format!(
                "servers must be between 1 and 1024, got {servers}"
            )));
        }
        let rt = crate::runtime()?;
        let (stop, _) = watch::channel(false);
        let stopper = stop.clone();
        let (master_addr, shard_addrs) = detached(py, move || {
            rt.block_on(start_local(servers, &host, token, insecure, &stopper))
        })?;
        Ok(LocalCluster {
            master_addr,
            shard_addrs,
            stop,
        })
    }

    /// The master's address (HOST:PORT), what workers and `glint_lda.ps.connect` dial.
    #[getter]
    fn master_addr(&self) -> String {
        self.master_addr.clone()
    }

    /// The shards' addresses, by shard index.
    #[getter]
    fn shard_addrs(&self) -> Vec<String> {
        self.shard_addrs.clone()
    }

    /// Stops serving (calls in flight finish); the models are gone.
    fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn stopped(stop: &watch::Sender<bool>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = stop.subscribe();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// A listener on a free port of `host`, and the address workers dial; beyond loopback only when
/// `exposed_ok` (a token, or told insecure).
async fn bind(
    host: &str,
    what: &str,
    exposed_ok: bool,
) -> Result<(tokio::net::TcpListener, String), String> {
    let listener = tokio::net::TcpListener::bind((host, 0))
        .await
        .map_err(|e| format!("binding the {what} to {host}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("the {what}'s address: {e}"))?;
    if addr.ip().is_unspecified() {
        return Err(format!(
            "{host} is not an address workers can dial; give the host's own address"
        ));
    }
    if !addr.ip().is_loopback() && !exposed_ok {
        return Err(format!(
            "{host} is reachable beyond this machine: give a token (or insecure=True on a trusted network)"
        ));
    }
    // An IPv6 literal takes brackets before its port.
    let dial = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{}", addr.port())
    } else {
        format!("{host}:{}", addr.port())
    };
    Ok((listener, dial))
}

async fn start_local(
    servers: usize,
    host: &str,
    token: Option<String>,
    insecure: bool,
    stop: &watch::Sender<bool>,
) -> Result<(String, Vec<String>), String> {
    let options = ServeOptions {
        token: token.clone(),
        ..ServeOptions::default()
    };
    let (listener, master_addr) = bind(host, "master", token.is_some() || insecure).await?;
    tokio::spawn(ps_core::grpc::serve_master(
        listener,
        Arc::new(Master::new()),
        options.clone(),
        stopped(stop),
    ));
    let coordinator =
        GrpcCoordinator::new(&master_addr, token.as_deref(), &ClientConfig::default())
            .map_err(text)?;
    let mut shard_addrs = Vec::with_capacity(servers);
    for _ in 0..servers {
        let (listener, addr) = bind(host, "shard", token.is_some() || insecure).await?;
        let shard = Arc::new(Shard::new(
            ShardConfig::default(),
            AggregatorRegistry::default(),
        ));
        tokio::spawn(ps_core::grpc::serve_shard(
            listener,
            shard.clone(),
            options.clone(),
            stopped(stop),
        ));
        let id = Registration::new(addr.clone())
            .register(&coordinator)
            .await
            .map_err(|e| format!("registering the shard at {addr}: {}", message(&e)))?;
        shard.assign_index(id.shard);
        shard_addrs.push(addr);
    }
    Ok((master_addr, shard_addrs))
}

/// What the driver thread reports.
enum DriverEvent {
    Joined(usize, usize),
    Iteration(serde_json::Value),
    Rollback(u32, String),
    Recovered(u32, u32),
}

struct ChannelEvents(mpsc::Sender<DriverEvent>);

impl ChannelEvents {
    fn send(&self, e: DriverEvent) {
        // The receiver lives until the driver thread ends.
        let _ = self.0.send(e);
    }
}

impl DriverEvents for ChannelEvents {
    fn joined(&mut self, joined: usize, workers: usize) {
        self.send(DriverEvent::Joined(joined, workers));
    }

    fn iteration(&mut self, it: &DriverIteration, _: ModelView<'_>) -> lda::Result<()> {
        self.send(DriverEvent::Iteration(serde_json::json!({
            "event": "iteration",
            "iteration": it.iteration,
            "seconds": it.seconds,
            "tokens_per_s": it.tokens_per_s,
            "loglik": it.loglik,
        })));
        Ok(())
    }

    fn rollback(&mut self, to: u32, why: &str) -> lda::Result<()> {
        self.send(DriverEvent::Rollback(to, why.to_string()));
        Ok(())
    }

    fn recovered(&mut self, attempt: u32, from: u32) {
        self.send(DriverEvent::Recovered(attempt, from));
    }
}

impl DriverEvent {
    fn to_json(&self) -> serde_json::Value {
        match self {
            DriverEvent::Joined(joined, workers) => {
                serde_json::json!({"event": "joined", "joined": joined, "workers": workers})
            }
            DriverEvent::Iteration(v) => v.clone(),
            DriverEvent::Rollback(to, why) => {
                serde_json::json!({"event": "rollback", "to": to, "reason": why})
            }
            DriverEvent::Recovered(attempt, from) => {
                serde_json::json!({"event": "recovered", "attempt": attempt, "from": from})
            }
        }
    }
}

/// The driver of one cluster run (use `glint_lda.spark.fit`): `__init__` creates the models and
/// publishes the job; `run` follows the workers to the end and writes the model directory.
#[pyclass(module = "glint_lda._glint_lda", name = "_ClusterDriver", frozen)]
pub struct ClusterDriver {
    client: Client,
    job: String,
    driver: Mutex<Option<Driver>>,
}

#[pymethods]
impl ClusterDriver {
    #[new]
    #[pyo3(signature = (
        master_addr, out_dir, job, workers, topics, ids, terms, display, word_counts,
        alpha = None, beta = 0.01, seed = 1, sampler = "auto", mh_steps = 2, iterations = 100,
        staleness = 0, checkpoint_every = 10, max_recoveries = 3, stall_secs = 300.0,
        heartbeat_timeout_secs = 15.0, token = None, servers = 1, timeout = 30.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        master_addr: String,
        out_dir: PathBuf,
        job: String,
        workers: u32,
        topics: u32,
        ids: Vec<String>,
        terms: Vec<String>,
        display: Vec<String>,
        word_counts: Vec<u64>,
        alpha: Option<f64>,
        beta: f64,
        seed: u64,
        sampler: &str,
        mh_steps: u32,
        iterations: u32,
        staleness: u32,
        checkpoint_every: u32,
        max_recoveries: u32,
        stall_secs: f64,
        heartbeat_timeout_secs: f64,
        token: Option<String>,
        servers: usize,
        timeout: f64,
    ) -> PyResult<Self> {
        if topics < 2 {
            return Err(PyValueError::new_err(format!(
                "k must be at least 2, got {topics}"
            )));
        }
        if word_counts.len() != terms.len() || (!display.is_empty() && display.len() != terms.len())
        {
            return Err(PyValueError::new_err(format!(
                "{} terms, {} word counts and {} display forms",
                terms.len(),
                word_counts.len(),
                display.len()
            )));
        }
        let vocab = u32::try_from(terms.len())
            .map_err(|_| PyValueError::new_err("more than 2^32 - 1 terms"))?;
        let mut config = TrainConfig::new(Hyper {
            topics,
            vocab,
            alpha: alpha.unwrap_or(50.0 / f64::from(topics)),
            beta,
        });
        config.sampler = crate::model::parse_sampler(sampler, topics)?;
        config.mh_cycles = mh_steps;
        config.seed = seed;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        config.model_prefix = format!("lda-{job}-{}-{stamp}.", std::process::id());
        config
            .validate()
            .map_err(|e| PyValueError::new_err(message(&e)))?;
        let opts = DriverOptions {
            job: job.clone(),
            workers,
            iterations,
            staleness,
            stall: seconds("stall_secs", stall_secs)?,
            heartbeat_timeout: seconds("heartbeat_timeout_secs", heartbeat_timeout_secs)?,
            checkpoint_every,
            max_recoveries,
        };
        let timeout = seconds("timeout", timeout)?;
        let tokens = word_counts.iter().sum();
        let corpus = CorpusSummary {
            ids,
            word_counts,
            tokens,
            vocab,
            terms,
            display,
        };
        let handle = crate::runtime()?.handle().clone();
        let (client, driver) = detached(py, move || {
            std::fs::create_dir_all(&out_dir)
                .map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
            let client = connect(&master_addr, token.as_deref(), servers, timeout).map_err(text)?;
            let driver =
                Driver::start(&client, handle, corpus, &config, &opts, &out_dir).map_err(text)?;
            Ok((client, driver))
        })?;
        Ok(ClusterDriver {
            client,
            job,
            driver: Mutex::new(Some(driver)),
        })
    }

    /// Follows the run to its end and writes the model directory. `callback(dict)` gets each
    /// event: "joined", "iteration" (iteration, seconds, tokens_per_s, loglik), "rollback" (to,
    /// reason) and "recovered" (attempt, from). An exception from the callback, or Ctrl-C,
    /// aborts the run and is raised. The run's models are removed from the servers either way.
    #[pyo3(signature = (callback = None))]
    fn run(&self, py: Python<'_>, callback: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let driver = self
            .driver
            .lock()
            .map_err(|_| crate::GlintError::new_err("the driver failed earlier"))?
            .take();
        let Some(mut driver) = driver else {
            return Err(crate::GlintError::new_err("this run was already followed"));
        };
        let handle = crate::runtime()?.handle().clone();
        let (client, job) = (self.client.clone(), self.job.clone());
        let (outcome, failed) = run_with_events(
            py,
            move |tx| {
                let outcome = driver.run(&mut ChannelEvents(tx));
                if outcome.is_err()
                    && let Err(abort) = driver.abort()
                {
                    tracing::warn!(error = %abort, "could not tell the workers to stop");
                }
                if let Err(clean) = driver.clean_up() {
                    tracing::warn!(error = %clean, "could not remove the run's models");
                }
                outcome.map_err(text)
            },
            |py, event| match &callback {
                Some(cb) => cb.call1((json_to_py(py, &event.to_json())?,)).map(|_| ()),
                None => Ok(()),
            },
            drop,
            || {
                if let Err(e) = abort_job(&client, &handle, &job) {
                    tracing::warn!(error = %e, "could not abort the run");
                }
            },
        )?;
        if let Some(e) = failed {
            return Err(e);
        }
        outcome.map_err(crate::GlintError::new_err)
    }

    /// Aborts the run: its workers and its driver stop at their next wait.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        let handle = crate::runtime()?.handle().clone();
        let (client, job) = (self.client.clone(), self.job.clone());
        detached(py, move || abort_job(&client, &handle, &job).map_err(text))
    }
}

/// Runs worker `index` of the published job `job` over the documents given as `ids`, `tokens`
/// and `offsets` (document i is `tokens[offsets[i]:offsets[i + 1]]`), which lie at
/// `first_doc..` of a corpus of `corpus_docs` documents and `corpus_tokens` tokens, until the run
/// is complete, taking part in every recovery. `callback(dict)` sees each iteration's figures
/// (iteration, tokens_per_s, seconds, attempt); an exception from it stops this worker at once,
/// as a killed process would (the run goes on and recovers), and is raised. Returns a summary.
#[pyfunction]
#[pyo3(signature = (
    master_addr, job, index, ids, tokens, offsets, first_doc, corpus_docs, corpus_tokens,
    vocab_size, workers = None, token = None, servers = 1, threads = 1, state_dir = None,
    wait_secs = 120.0, stall_secs = 300.0, timeout = 30.0, callback = None
))]
#[allow(clippy::too_many_arguments)]
pub fn _run_worker<'py>(
    py: Python<'py>,
    master_addr: String,
    job: String,
    index: u32,
    ids: Vec<String>,
    tokens: PyReadonlyArray1<'py, u32>,
    offsets: PyReadonlyArray1<'py, u64>,
    first_doc: Option<u64>,
    corpus_docs: u64,
    corpus_tokens: u64,
    vocab_size: u32,
    workers: Option<u32>,
    token: Option<String>,
    servers: usize,
    threads: usize,
    state_dir: Option<PathBuf>,
    wait_secs: f64,
    stall_secs: f64,
    timeout: f64,
    callback: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let part = documents_part(&ids, tokens.as_slice()?, offsets.as_slice()?, vocab_size)?;
    let part = DocumentsPart {
        info: PartInfo {
            first_doc: first_doc.filter(|_| !ids.is_empty()),
            corpus_docs,
            corpus_tokens,
        },
        ..part
    };
    let opts = WorkerOptions {
        index,
        workers,
        threads: threads.max(1),
        wait: seconds("wait_secs", wait_secs)?,
        stall: seconds("stall_secs", stall_secs)?,
        state_dir,
    };
    let timeout = seconds("timeout", timeout)?;
    let handle = crate::runtime()?.handle().clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = Arc::clone(&stop);
    type Reply = mpsc::SyncSender<bool>;
    let (outcome, failed) = run_with_events(
        py,
        move |tx: mpsc::Sender<(serde_json::Value, Reply)>| {
            let connect =
                |n: usize| connect(&master_addr, token.as_deref(), n.max(servers), timeout);
            run_worker(&connect, handle, &part, &job, &opts, |stats| {
                let (reply, answer) = mpsc::sync_channel(1);
                let line = serde_json::json!({
                    "iteration": stats.iteration,
                    "tokens_per_s": stats.tokens_per_s,
                    "seconds": stats.seconds,
                });
                let go = tx.send((line, reply)).is_ok() && answer.recv().unwrap_or(false);
                if go && !stop_flag.load(Ordering::Relaxed) {
                    Ok(())
                } else {
                    Err(LdaError::Cluster(format!("worker {index} was stopped")))
                }
            })
            .map_err(text)
        },
        |py, (line, reply): (serde_json::Value, Reply)| {
            let called = match &callback {
                Some(cb) => cb.call1((json_to_py(py, &line)?,)).map(|_| ()),
                None => Ok(()),
            };
            let _ = reply.send(called.is_ok());
            called
        },
        |(_, reply)| {
            let _ = reply.send(false);
        },
        || stop.store(true, Ordering::Relaxed),
    )?;
    if let Some(e) = failed {
        return Err(e);
    }
    let summary = outcome.map_err(crate::GlintError::new_err)?;
    json_to_py(
        py,
        &serde_json::json!({
            "index": index,
            "documents": summary.documents,
            "tokens": summary.tokens,
            "seconds": summary.seconds,
            "rejoined": summary.rejoined,
            "attempt": summary.job.attempt,
        }),
    )
}

/// The documents of a worker's part, checked: offsets that do not delimit `tokens` or word ids
/// beyond the vocabulary are a `ValueError`, not a panic.
fn documents_part(
    ids: &[String],
    tokens: &[u32],
    offsets: &[u64],
    vocab: u32,
) -> PyResult<DocumentsPart> {
    if offsets.len() != ids.len() + 1 || offsets.first() != Some(&0) {
        return Err(PyValueError::new_err(format!(
            "{} ids need {} offsets starting at 0, got {}",
            ids.len(),
            ids.len() + 1,
            offsets.len()
        )));
    }
    if offsets.last().copied() != Some(tokens.len() as u64) {
        return Err(PyValueError::new_err(format!(
            "the last offset must be the number of tokens ({})",
            tokens.len()
        )));
    }
    if let Some(&w) = tokens.iter().find(|&&w| w >= vocab) {
        return Err(PyValueError::new_err(format!(
            "word id {w} is beyond the vocabulary of {vocab} words"
        )));
    }
    let mut docs = Vec::with_capacity(ids.len());
    for (d, id) in ids.iter().enumerate() {
        let (a, b) = (offsets[d], offsets[d + 1]);
        if a > b {
            return Err(PyValueError::new_err(format!(
                "offsets decrease at document {d}"
            )));
        }
        docs.push((id.clone(), tokens[a as usize..b as usize].to_vec()));
    }
    Ok(DocumentsPart {
        docs,
        vocab,
        terms: Vec::new(),
        info: PartInfo {
            first_doc: None,
            corpus_docs: 0,
            corpus_tokens: 0,
        },
    })
}
