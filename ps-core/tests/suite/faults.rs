//! The fault test that must catch a broken dedup (issue 9, item 7), run over every transport.
//!
//! Several independent writers (each its own client, so its own writer ids and window) push to
//! one model per built-in aggregator through one [`Faulty`] transport that drops requests and
//! responses, duplicates requests, reorders them, and holds some requests and responses back for
//! longer than the client's timeout: applied pushes really are retried, and stale copies really
//! arrive after later pushes. Each writer pushes more times per (model, shard) than the shards'
//! dedup window (shrunk to [`WINDOW`] for this), keeps a few pushes in flight, and resends the
//! token of any push it could not confirm. Halfway, the shards save a snapshot, the writers push
//! a doomed batch, and the snapshot is restored (undoing the batch); then the writers go on. The
//! result must equal the reference exactly. With the transport's [`Sabotage`] (dedup by
//! sequence number only, or no window at all) the same scenario must *not* match: that is what
//! shows the test can tell a working dedup from a broken one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use ps_core::transport::{FaultConfig, Faulty, Sabotage, Transport};
use ps_core::{
    Client, ClientConfig, DType, Limits, Matrix, ModelSpec, PartitionerKind, PsError, Storage,
    Value,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::Harness;

/// The dedup window of the shards under this test: small, so every writer pushes to every
/// partition several times more often than it holds.
pub const WINDOW: usize = 8;

/// The limits a harness for this test must give its shards.
pub fn limits() -> Limits {
    Limits {
        dedup_window: WINDOW,
        ..Limits::default()
    }
}

const WRITERS: u64 = 4;
/// Rounds per writer; each round pushes to every model and usually every shard.
const ROUNDS: u64 = 32;
/// Rounds of the batch pushed after the snapshot and undone by restoring it.
const DOOMED: u64 = 3;
/// Pushes of additive models a writer keeps in flight (below [`WINDOW`]: a push retried for
/// long is overtaken by fewer pushes than the window holds, so no gap is given up).
const IN_FLIGHT: usize = 3;
const ROWS: u64 = 24;
const COLS: u32 = 5;
const PER_PUSH: usize = 6;

/// The client's timeout per attempt, and the hold-back of late requests and responses beyond it.
const TIMEOUT: Duration = Duration::from_millis(100);
const LATE: Duration = Duration::from_millis(250);

/// One round of one writer: a push for each model.
struct Round {
    add: (Vec<u64>, Vec<u32>, Vec<i64>),
    max: (Vec<u64>, Vec<u32>, Vec<i64>),
    min: (Vec<u64>, Vec<u32>, Vec<f64>),
    /// Only into rows this writer owns (row % WRITERS == writer), so that the order of its
    /// own pushes decides every element.
    replace: (Vec<u64>, Vec<u32>, Vec<i32>),
}

fn round(writer: u64, round: u64, doomed: bool) -> Round {
    let seed = (writer << 40) ^ (round << 8) ^ u64::from(doomed);
    let mut rng = StdRng::seed_from_u64(seed);
    let big = if doomed { 1000 } else { 1 };
    let mut cells = |n: usize| -> (Vec<u64>, Vec<u32>) {
        (0..n)
            .map(|_| (rng.random_range(0..ROWS), rng.random_range(0..COLS)))
            .unzip()
    };
    let (ar, ac) = cells(PER_PUSH);
    let (xr, xc) = cells(PER_PUSH);
    let (nr, nc) = cells(PER_PUSH);
    let (rr, rc) = cells(PER_PUSH);
    // ROWS is a multiple of WRITERS, so this stays in range.
    let rr: Vec<u64> = rr.into_iter().map(|r| r - r % WRITERS + writer).collect();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    Round {
        add: (
            ar,
            ac,
            (0..PER_PUSH)
                .map(|_| big * rng.random_range(-3..=3))
                .collect(),
        ),
        max: (
            xr,
            xc,
            (0..PER_PUSH)
                .map(|_| big * rng.random_range(-50..50))
                .collect(),
        ),
        min: (
            nr,
            nc,
            (0..PER_PUSH)
                .map(|_| (big * rng.random_range(-50..50)) as f64)
                .collect(),
        ),
        replace: (
            rr,
            rc,
            (0..PER_PUSH)
                .map(|i| (big * (round as i64 * 10 + i as i64 + 1)) as i32)
                .collect(),
        ),
    }
}

/// The contents every model must hold: the rounds of every writer, not the doomed batch.
fn reference() -> [Vec<Vec<f64>>; 4] {
    let dense = || vec![vec![0.0; COLS as usize]; ROWS as usize];
    let (mut add, mut max, mut min, mut replace) = (dense(), dense(), dense(), dense());
    for w in 0..WRITERS {
        for r in 0..ROUNDS {
            let o = round(w, r, false);
            for ((&row, &col), &v) in o.add.0.iter().zip(&o.add.1).zip(&o.add.2) {
                add[row as usize][col as usize] += v as f64;
            }
            for ((&row, &col), &v) in o.max.0.iter().zip(&o.max.1).zip(&o.max.2) {
                let e = &mut max[row as usize][col as usize];
                *e = e.max(v as f64);
            }
            for ((&row, &col), &v) in o.min.0.iter().zip(&o.min.1).zip(&o.min.2) {
                let e = &mut min[row as usize][col as usize];
                *e = e.min(v);
            }
            for ((&row, &col), &v) in o.replace.0.iter().zip(&o.replace.1).zip(&o.replace.2) {
                replace[row as usize][col as usize] = f64::from(v);
            }
        }
    }
    [add, max, min, replace]
}

const MODELS: [&str; 4] = ["fx-add", "fx-max", "fx-min", "fx-replace"];

async fn create_models(c: &Client) {
    let spec = |name: &str, dtype, agg: &str, storage, part| {
        ModelSpec::matrix(name, ROWS, COLS, dtype)
            .with_aggregator(agg)
            .with_storage(storage)
            .with_partitioner(part)
    };
    use PartitionerKind::{Cyclic, Range};
    use Storage::{Dense, Sparse};
    c.create_matrix::<i64>(spec(MODELS[0], DType::I64, "add", Sparse, Cyclic))
        .await
        .unwrap();
    c.create_matrix::<i64>(spec(MODELS[1], DType::I64, "max", Dense, Range))
        .await
        .unwrap();
    c.create_matrix::<f64>(spec(MODELS[2], DType::F64, "min", Sparse, Range))
        .await
        .unwrap();
    c.create_matrix::<i32>(spec(MODELS[3], DType::I32, "replace", Dense, Cyclic))
        .await
        .unwrap();
}

/// One writer: its own client, hence its own writer identity on every model.
#[derive(Clone)]
struct Writer {
    index: u64,
    client: Client,
    add: Matrix<i64>,
    max: Matrix<i64>,
    min: Matrix<f64>,
    replace: Matrix<i32>,
    resent: Arc<AtomicUsize>,
}

impl Writer {
    async fn open(index: u64, client: Client, resent: Arc<AtomicUsize>) -> Self {
        Writer {
            index,
            add: client.matrix(MODELS[0]).await.unwrap(),
            max: client.matrix(MODELS[1]).await.unwrap(),
            min: client.matrix(MODELS[2]).await.unwrap(),
            replace: client.matrix(MODELS[3]).await.unwrap(),
            client,
            resent,
        }
    }

    /// Waits for a push, resending its token while it stays unconfirmed (the application-level
    /// retry that must stay exactly-once).
    async fn confirm(&self, pushed: ps_core::Result<()>) -> Result<(), String> {
        let mut outcome = pushed;
        for _ in 0..100 {
            match outcome {
                Ok(()) => return Ok(()),
                Err(PsError::PushUnconfirmed { token, .. }) => {
                    self.resent.fetch_add(1, Ordering::Relaxed);
                    outcome = self.client.resend(*token).await;
                }
                Err(e) => return Err(format!("writer {}: {e}", self.index)),
            }
        }
        Err(format!("writer {}: a push stayed unconfirmed", self.index))
    }

    async fn push<T: Value>(
        &self,
        m: &Matrix<T>,
        (rows, cols, values): &(Vec<u64>, Vec<u32>, Vec<T>),
    ) -> Result<(), String> {
        self.confirm(m.push(rows, cols, values).await).await
    }

    /// Pushes `rounds`: the additive and extremal models with a few rounds in flight, replace
    /// one push at a time (its result depends on the order).
    async fn run(self, rounds: std::ops::Range<u64>, doomed: bool) -> Result<(), String> {
        let commutative = futures::stream::iter(rounds.clone())
            .map(|r| {
                let me = self.clone();
                async move {
                    let o = round(me.index, r, doomed);
                    let (a, b, c) = futures::join!(
                        me.push(&me.add, &o.add),
                        me.push(&me.max, &o.max),
                        me.push(&me.min, &o.min)
                    );
                    a.and(b).and(c)
                }
            })
            .buffered(IN_FLIGHT)
            .try_collect::<Vec<()>>();
        let ordered = async {
            for r in rounds.clone() {
                self.push(&self.replace, &round(self.index, r, doomed).replace)
                    .await?;
            }
            Ok(())
        };
        futures::try_join!(commutative, ordered).map(|_| ())
    }
}

async fn all(writers: &[Writer], rounds: std::ops::Range<u64>, doomed: bool) -> Result<(), String> {
    let tasks: Vec<_> = writers
        .iter()
        .map(|w| tokio::spawn(w.clone().run(rounds.clone(), doomed)))
        .collect();
    let mut first = Ok(());
    for t in tasks {
        let outcome = t.await.unwrap_or_else(|e| Err(format!("writer task: {e}")));
        if first.is_ok() {
            first = outcome;
        }
    }
    first
}

/// Runs the scenario; `Ok` when every model equals the reference exactly, else what differs.
/// `resent` counts the unconfirmed pushes whose tokens were resent.
pub async fn scenario(
    h: &dyn Harness,
    sabotage: Sabotage,
    resent: Arc<AtomicUsize>,
) -> Result<(), String> {
    let setup = super::client(h);
    create_models(&setup).await;
    let faults = FaultConfig {
        drop_request: 0.1,
        drop_response: 0.1,
        duplicate: 0.15,
        max_delay: Duration::from_millis(2),
        late_request: 0.02,
        late_response: 0.02,
        late_delay: LATE,
        sabotage,
        seed: 9,
    };
    let config = ClientConfig {
        timeout: TIMEOUT,
        max_attempts: 3,
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(8),
        ..ClientConfig::default()
    };
    // Over gRPC the servers then drop attempts still queued when their client gave up on them.
    let faulty = Arc::new(Faulty::new(h.transport_for(&config), faults));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let transport: Arc<dyn Transport> = faulty.clone();
        let client = Client::new(transport, h.coordinator(), config.clone());
        writers.push(Writer::open(w, client, resent.clone()).await);
    }
    let half = ROUNDS / 2;
    let first = all(&writers, 0..half, false).await;
    // Snapshot with nothing in flight, push a batch, and undo it by restoring the snapshot.
    faulty.settled().await;
    setup.save_snapshot("fx-mid").await.unwrap();
    let doomed = all(&writers, ROUNDS..ROUNDS + DOOMED, true).await;
    faulty.settled().await;
    setup.load_snapshot("fx-mid").await.unwrap();
    let second = all(&writers, half..ROUNDS, false).await;
    faulty.settled().await;
    first.and(doomed).and(second)?;

    let expected = reference();
    let all_rows: Vec<u64> = (0..ROWS).collect();
    let mut differences = Vec::new();
    for (i, name) in MODELS.iter().enumerate() {
        let got: Vec<Vec<f64>> = match i {
            0 | 1 => dense(&setup.matrix::<i64>(name).await.unwrap(), &all_rows).await,
            2 => dense(&setup.matrix::<f64>(name).await.unwrap(), &all_rows).await,
            _ => dense(&setup.matrix::<i32>(name).await.unwrap(), &all_rows).await,
        };
        let wrong = got
            .iter()
            .flatten()
            .zip(expected[i].iter().flatten())
            .filter(|(g, e)| g != e)
            .count();
        if wrong > 0 {
            differences.push(format!("{name}: {wrong} elements differ"));
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(differences.join("; "))
    }
}

async fn dense<T: Value>(m: &Matrix<T>, rows: &[u64]) -> Vec<Vec<f64>> {
    m.pull_rows(rows)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            r.to_dense(COLS as usize)
                .into_iter()
                .map(|v| v.to_f64())
                .collect()
        })
        .collect()
}
