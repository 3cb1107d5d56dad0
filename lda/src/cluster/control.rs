//! An attempt's coordination state on the parameter server: each worker's progress and
//! heartbeat, the abort, rollback and release flags, and the documents' part of the
//! log-likelihood per iteration.
//!
//! Layout of the `control` vector (N workers): `[0, N)` progress, `N` abort, `N + 1` rollback,
//! `N + 2` release, `N + 3` the checkpoint the driver has recorded as complete (workers may
//! delete older ones), `[N + 4, 2N + 4)` heartbeats. Progress is absolute: a worker that resumed
//! from iteration t₀ stands at t₀ + 1 once its counts are in, at t + 1 after iteration t, and
//! one higher once its document-topic counts are pushed.

use std::time::{Duration, Instant};

use ps_core::{Client, DType, ModelSpec, Vector};

use super::job::JobSpec;
use crate::error::{LdaError, Result};
use crate::model::confirm_push;

fn control_name(prefix: &str) -> String {
    format!("{prefix}control")
}

fn doc_ll_name(prefix: &str) -> String {
    format!("{prefix}doc_ll")
}

pub(crate) fn theta_name(prefix: &str) -> String {
    format!("{prefix}theta")
}

/// Every model name of an attempt, for clean-up.
pub(crate) fn run_models(prefix: &str) -> [String; 5] {
    [
        format!("{prefix}nwk"),
        format!("{prefix}nk"),
        control_name(prefix),
        doc_ll_name(prefix),
        theta_name(prefix),
    ]
}

/// What the workers have done, as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Progress {
    pub done: Vec<i64>,
    pub aborted: bool,
    pub rollback: bool,
    /// 0: wait; 1: sample; 2: the run is complete, the workers may leave.
    pub released: i64,
    /// The iteration of the newest checkpoint the driver recorded (a rollback goes there).
    pub confirmed: i64,
    pub heartbeats: Vec<i64>,
}

impl Progress {
    pub fn min(&self) -> i64 {
        self.done.iter().copied().min().unwrap_or(0)
    }

    /// "worker 1 at step 3": the workers at the minimum.
    pub fn laggards(&self) -> String {
        let min = self.min();
        let slow: Vec<String> = self
            .done
            .iter()
            .enumerate()
            .filter(|&(_, &d)| d == min)
            .map(|(i, &d)| format!("worker {i} at step {d}"))
            .collect();
        slow.join(", ")
    }
}

/// How long after the last progress a wait keeps polling every few milliseconds.
const BUSY_POLLING: Duration = Duration::from_secs(2);

/// Why a wait ended without its condition.
#[derive(Debug)]
pub(crate) enum Interrupted {
    /// The run is over (a fatal error somewhere).
    Aborted,
    /// This attempt is over; a new one will follow from the last checkpoint.
    RolledBack(String),
    Failed(LdaError),
    /// The caller stopped this worker (its callback failed); the run goes on without it.
    Stopped(LdaError),
}

impl From<LdaError> for Interrupted {
    fn from(e: LdaError) -> Self {
        Interrupted::Failed(e)
    }
}

impl From<ps_core::PsError> for Interrupted {
    fn from(e: ps_core::PsError) -> Self {
        Interrupted::Failed(e.into())
    }
}

impl From<Interrupted> for LdaError {
    fn from(i: Interrupted) -> Self {
        match i {
            Interrupted::Aborted => LdaError::Cluster("the run was aborted".into()),
            Interrupted::RolledBack(why) => {
                LdaError::Cluster(format!("the run rolled back: {why}"))
            }
            Interrupted::Failed(e) | Interrupted::Stopped(e) => e,
        }
    }
}

/// Who waits: the driver also watches heartbeats.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Watcher {
    Worker,
    Driver { heartbeat_timeout: Duration },
}

#[derive(Debug, Clone)]
pub(crate) struct Control {
    client: Client,
    vector: Vector<i64>,
    doc_ll: Option<Vector<f64>>,
    workers: u32,
    iterations: u32,
}

impl Control {
    fn slots(workers: u32) -> u64 {
        2 * u64::from(workers) + 4
    }

    /// Creates an attempt's control models (the driver).
    pub async fn create(client: &Client, job: &JobSpec) -> Result<Self> {
        let vector = client
            .create_vector::<i64>(ModelSpec::vector(
                control_name(&job.prefix),
                Self::slots(job.workers),
                DType::I64,
            ))
            .await?;
        let slots = u64::from(job.iterations) * u64::from(job.workers);
        let doc_ll = if job.loglik && slots > 0 {
            Some(
                client
                    .create_vector::<f64>(ModelSpec::vector(
                        doc_ll_name(&job.prefix),
                        slots,
                        DType::F64,
                    ))
                    .await?,
            )
        } else {
            None
        };
        Ok(Control {
            client: client.clone(),
            vector,
            doc_ll,
            workers: job.workers,
            iterations: job.iterations,
        })
    }

    /// Opens the control models of a published attempt (a worker, or a driver reattaching).
    pub async fn open(client: &Client, job: &JobSpec) -> Result<Self> {
        let vector = client.vector::<i64>(&control_name(&job.prefix)).await?;
        if vector.len() != Self::slots(job.workers) {
            return Err(LdaError::Cluster(format!(
                "the control vector of job '{}' has {} slots, not {}",
                job.name,
                vector.len(),
                Self::slots(job.workers)
            )));
        }
        let doc_ll = if job.loglik && job.iterations > 0 {
            Some(client.vector::<f64>(&doc_ll_name(&job.prefix)).await?)
        } else {
            None
        };
        Ok(Control {
            client: client.clone(),
            vector,
            doc_ll,
            workers: job.workers,
            iterations: job.iterations,
        })
    }

    pub async fn read(&self) -> Result<Progress> {
        let all = self.vector.pull_all().await?;
        let n = self.workers as usize;
        let slots = Self::slots(self.workers) as usize;
        if all.len() != slots {
            // The servers' answer decides this length: an error, never an index out of range.
            return Err(LdaError::Cluster(format!(
                "the control vector answered {} values, not {slots}",
                all.len()
            )));
        }
        Ok(Progress {
            done: all[..n].to_vec(),
            aborted: all[n] > 0,
            rollback: all[n + 1] > 0,
            released: all[n + 2],
            confirmed: all[n + 3],
            heartbeats: all[n + 4..].to_vec(),
        })
    }

    async fn add(&self, slot: u64, delta: i64) -> Result<()> {
        let outcome = self.vector.push(&[slot], &[delta]).await;
        confirm_push(&self.client, outcome).await
    }

    /// Worker `worker` moved `steps` steps on.
    pub async fn advance(&self, worker: u32, steps: i64) -> Result<()> {
        self.add(u64::from(worker), steps).await
    }

    /// Ends the run for everybody.
    pub async fn abort(&self) -> Result<()> {
        self.add(u64::from(self.workers), 1).await
    }

    /// Ends this attempt: everybody waits for the next one.
    pub async fn roll_back(&self) -> Result<()> {
        self.add(u64::from(self.workers) + 1, 1).await
    }

    /// Lets the workers start sampling (the driver, once the rebuilt model checks out), and
    /// a second time lets them leave (the model is exported).
    pub async fn release(&self) -> Result<()> {
        self.add(u64::from(self.workers) + 2, 1).await
    }

    /// Records that the newest complete checkpoint moved from iteration `from` to `to`.
    pub async fn confirm_checkpoint(&self, from: u32, to: u32) -> Result<()> {
        self.add(u64::from(self.workers) + 3, i64::from(to) - i64::from(from))
            .await
    }

    pub async fn heartbeat(&self, worker: u32) -> Result<()> {
        self.add(u64::from(self.workers) + 4 + u64::from(worker), 1)
            .await
    }

    /// Records worker `worker`'s document part of log p(w, z) after iteration `iteration` (≥ 1).
    pub async fn report_doc_ll(&self, iteration: u32, worker: u32, value: f64) -> Result<()> {
        let Some(v) = &self.doc_ll else {
            return Ok(());
        };
        if iteration == 0 || iteration > self.iterations {
            return Ok(());
        }
        let slot = u64::from(iteration - 1) * u64::from(self.workers) + u64::from(worker);
        let outcome = v.push(&[slot], &[value]).await;
        confirm_push(&self.client, outcome).await
    }

    /// The documents' part of log p(w, z) after iteration `iteration`, summed over workers.
    pub async fn doc_ll(&self, iteration: u32) -> Result<Option<f64>> {
        let Some(v) = &self.doc_ll else {
            return Ok(None);
        };
        let first = u64::from(iteration - 1) * u64::from(self.workers);
        let slots: Vec<u64> = (first..first + u64::from(self.workers)).collect();
        Ok(Some(v.pull(&slots).await?.iter().sum()))
    }

    /// Waits until `ready` holds. Ends early when the run is aborted or the attempt rolled
    /// back, when no worker has moved for `stall` (naming the slowest), or, for the driver, when
    /// a worker's heartbeat stopped.
    pub async fn wait_for(
        &self,
        mut ready: impl FnMut(&Progress) -> bool,
        stall: Duration,
        watcher: Watcher,
        what: &str,
    ) -> std::result::Result<Progress, Interrupted> {
        let mut last = self.read().await?;
        let mut moved = Instant::now();
        let mut beats = last.heartbeats.clone();
        let mut beat_seen = vec![Instant::now(); beats.len()];
        let mut pause = Duration::from_millis(1);
        loop {
            if last.aborted {
                return Err(Interrupted::Aborted);
            }
            if last.rollback {
                return Err(Interrupted::RolledBack("a worker asked for it".into()));
            }
            if ready(&last) {
                return Ok(last);
            }
            if moved.elapsed() >= stall {
                return Err(Interrupted::Failed(LdaError::Cluster(format!(
                    "waited {}s for {what}, but no worker moved; slowest: {}",
                    stall.as_secs(),
                    last.laggards()
                ))));
            }
            if let Watcher::Driver { heartbeat_timeout } = watcher {
                for (i, (&b, seen)) in last.heartbeats.iter().zip(&mut beat_seen).enumerate() {
                    if b != beats[i] {
                        beats[i] = b;
                        *seen = Instant::now();
                    } else if b > 0 && seen.elapsed() >= heartbeat_timeout {
                        return Err(Interrupted::RolledBack(format!(
                            "worker {i} sent no heartbeat for {}s",
                            heartbeat_timeout.as_secs()
                        )));
                    }
                }
            }
            tokio::time::sleep(pause).await;
            // A worker polls every few milliseconds while the others are moving, so that a
            // barrier costs little more than the slowest worker's time (at 50 ms, a worker lost
            // up to 40% of a 0.1 s iteration waiting), then backs off to a few per second.
            // The driver only follows, so it keeps to the slow rate: on a small machine every
            // poll is CPU taken from the samplers.
            let busy = matches!(watcher, Watcher::Worker) && moved.elapsed() < BUSY_POLLING;
            let cap = Duration::from_millis(if busy { 5 } else { 50 });
            pause = (pause * 2).min(cap);
            let now = self.read().await?;
            if now.done != last.done {
                moved = Instant::now();
                pause = Duration::from_millis(1);
            }
            last = now;
        }
    }
}
