//! The client: creates, opens and destroys models, and carries every shard request with a bounded
//! window of requests in flight, a timeout per attempt, and retries with exponential back-off and
//! jitter for transient failures. Cheap to clone; clones share the window.
//!
//! A window permit is held only while an attempt is in flight, never through a back-off sleep,
//! so requests retrying against a dead shard leave the window to the healthy ones. Pushes whose
//! pieces could not all be confirmed are reported with a token to [`Client::resend`].

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{join_all, try_join_all};
use tokio::sync::Semaphore;

use crate::error::{PsError, Result};
use crate::master::{ClusterStatus, MasterRequest, MasterResponse, ModelRecord};
use crate::matrix::Matrix;
use crate::message::{Request, Response};
use crate::spec::ModelSpec;
use crate::transport::{Coordinator, Transport};
use crate::value::Value;
use crate::vector::Vector;
use crate::writer::{Piece, PushPiece, PushToken};

/// Client behaviour: flow control, timeouts, retries and message sizes.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Most shard requests in flight at once from this client (back-pressure beyond it).
    pub max_in_flight: usize,
    /// Time allowed for one attempt of one request (over gRPC also sent to the server as the
    /// call's deadline, so it drops work nobody waits for).
    pub timeout: Duration,
    /// Attempts per request before the shard counts as unreachable.
    pub max_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Requests are split so that each stays under this encoded size.
    pub max_message_bytes: usize,
    /// TLS for gRPC channels (the master and every shard): `None` dials plain-text `http`, a
    /// [`TlsClient`](crate::grpc::TlsClient) dials `https` and verifies servers against its CA.
    /// Ignored by in-process transports.
    pub tls: Option<crate::grpc::TlsClient>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_in_flight: 64,
            timeout: Duration::from_secs(30),
            max_attempts: 8,
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_secs(2),
            max_message_bytes: 4 << 20,
            tls: None,
        }
    }
}

impl ClientConfig {
    /// Largest number of pushed elements or pulled rows of `cols` columns in one message, assuming
    /// the worst-case encoding (varint row, varint column and a full-width value per element).
    pub(crate) fn max_elements(&self, value_bytes: usize) -> usize {
        (self.max_message_bytes / (10 + 5 + value_bytes.max(8))).max(1)
    }
}

struct Inner {
    transport: Arc<dyn Transport>,
    coordinator: Arc<dyn Coordinator>,
    config: ClientConfig,
    window: Semaphore,
}

#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("shards", &self.inner.transport.shards())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Client {
    pub fn new(
        transport: Arc<dyn Transport>,
        coordinator: Arc<dyn Coordinator>,
        config: ClientConfig,
    ) -> Self {
        let window = Semaphore::new(config.max_in_flight.max(1));
        Client {
            inner: Arc::new(Inner {
                transport,
                coordinator,
                config,
                window,
            }),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Number of shards this client reaches.
    pub fn shards(&self) -> usize {
        self.inner.transport.shards()
    }

    /// Creates a matrix on every shard and registers it with the master.
    pub async fn create_matrix<T: Value>(&self, spec: ModelSpec) -> Result<Matrix<T>> {
        let record = self.create(spec, T::DTYPE).await?;
        Ok(Matrix::new(self.clone(), record))
    }

    /// Opens an existing matrix by name.
    pub async fn matrix<T: Value>(&self, name: &str) -> Result<Matrix<T>> {
        let record = self.record(name).await?;
        check_dtype::<T>(&record.spec)?;
        Ok(Matrix::new(self.clone(), record))
    }

    /// Creates a vector (`spec.cols` must be 1, as [`ModelSpec::vector`] makes it).
    pub async fn create_vector<T: Value>(&self, spec: ModelSpec) -> Result<Vector<T>> {
        if spec.cols != 1 {
            return Err(PsError::InvalidRequest(format!(
                "vector '{}' must have one column, not {}",
                spec.name, spec.cols
            )));
        }
        Ok(Vector::new(self.create_matrix(spec).await?))
    }

    pub async fn vector<T: Value>(&self, name: &str) -> Result<Vector<T>> {
        Ok(Vector::new(self.matrix(name).await?))
    }

    /// Removes a model from every shard and from the master.
    pub async fn destroy(&self, name: &str) -> Result<()> {
        let record = self.record(name).await?;
        let request = Arc::new(Request::Destroy {
            model: name.to_string(),
        });
        try_join_all((0..record.shards as usize).map(|s| self.call(s, request.clone()))).await?;
        self.master(MasterRequest::RemoveModel {
            name: name.to_string(),
        })
        .await?;
        Ok(())
    }

    pub async fn list_models(&self) -> Result<Vec<ModelRecord>> {
        match self.master(MasterRequest::ListModels).await? {
            MasterResponse::Models(m) => Ok(m),
            other => Err(unexpected_master(&other)),
        }
    }

    /// Stores `value` under `key` on the master, replacing any earlier value. Entries are small
    /// coordination records, such as the job description a driver publishes for its workers,
    /// not model data: keys are non-empty and at most
    /// [`MAX_ENTRY_KEY_BYTES`](crate::master::MAX_ENTRY_KEY_BYTES), values at most
    /// [`MAX_ENTRY_VALUE_BYTES`](crate::master::MAX_ENTRY_VALUE_BYTES) (1 MiB), and the master
    /// holds at most [`MAX_ENTRIES`](crate::master::MAX_ENTRIES); beyond them the put fails with
    /// [`PsError::InvalidRequest`]. Retried like every master call (a put is idempotent).
    pub async fn put_entry(&self, key: &str, value: Vec<u8>) -> Result<()> {
        // Refused here rather than after sending up to a whole oversized value.
        crate::master::check_entry(key, Some(&value))?;
        self.master_done(MasterRequest::PutEntry {
            key: key.to_string(),
            value,
        })
        .await
    }

    /// The value stored under `key` on the master (see [`Client::put_entry`]), `None` if there
    /// is none.
    pub async fn entry(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self
            .master(MasterRequest::GetEntry {
                key: key.to_string(),
            })
            .await?
        {
            MasterResponse::Entry(value) => Ok(value),
            other => Err(unexpected_master(&other)),
        }
    }

    /// Removes the entry under `key` from the master (see [`Client::put_entry`]); succeeds if
    /// there is none.
    pub async fn remove_entry(&self, key: &str) -> Result<()> {
        self.master_done(MasterRequest::RemoveEntry {
            key: key.to_string(),
        })
        .await
    }

    /// Every server of the cluster as the master sees it: its index, address and the time since
    /// its last heartbeat.
    pub async fn cluster_status(&self) -> Result<ClusterStatus> {
        match self.master(MasterRequest::Status).await? {
            MasterResponse::Status(status) => Ok(status),
            other => Err(unexpected_master(&other)),
        }
    }

    async fn master_done(&self, request: MasterRequest) -> Result<()> {
        match self.master(request).await? {
            MasterResponse::Done => Ok(()),
            other => Err(unexpected_master(&other)),
        }
    }

    /// Asks every shard to write its partitions to snapshot `name` in its data directory.
    pub async fn save_snapshot(&self, name: &str) -> Result<()> {
        self.broadcast(Request::Save {
            name: name.to_string(),
        })
        .await
    }

    /// Asks every shard to replace its partitions with those of snapshot `name`.
    /// The models must be registered with the master (as they were when the snapshot was saved).
    pub async fn load_snapshot(&self, name: &str) -> Result<()> {
        self.broadcast(Request::Load {
            name: name.to_string(),
        })
        .await
    }

    async fn broadcast(&self, request: Request) -> Result<()> {
        let request = Arc::new(request);
        try_join_all((0..self.shards()).map(|s| self.call(s, request.clone()))).await?;
        Ok(())
    }

    async fn create(&self, spec: ModelSpec, dtype: crate::value::DType) -> Result<ModelRecord> {
        spec.validate()?;
        if spec.dtype != dtype {
            return Err(PsError::TypeMismatch {
                model: spec.name,
                actual: spec.dtype,
                requested: dtype,
            });
        }
        let shards = self.shards() as u32;
        let record = match self
            .master(MasterRequest::CreateModel { spec, shards })
            .await?
        {
            MasterResponse::Model(r) => r,
            other => return Err(unexpected_master(&other)),
        };
        let created = try_join_all((0..record.shards).map(|shard| {
            let request = Arc::new(Request::Create {
                spec: record.spec.clone(),
                shard,
                shards: record.shards,
            });
            self.call(shard as usize, request)
        }))
        .await;
        if let Err(e) = created {
            // Leave nothing half-created behind.
            let _ = self.destroy(&record.spec.name).await;
            return Err(e);
        }
        Ok(record)
    }

    async fn record(&self, name: &str) -> Result<ModelRecord> {
        let record = match self
            .master(MasterRequest::GetModel {
                name: name.to_string(),
            })
            .await?
        {
            MasterResponse::Model(r) => r,
            other => return Err(unexpected_master(&other)),
        };
        if record.shards as usize > self.shards() {
            return Err(PsError::Master(format!(
                "model '{name}' spans {} shards but this client knows {}",
                record.shards,
                self.shards()
            )));
        }
        Ok(record)
    }

    async fn master(&self, request: MasterRequest) -> Result<MasterResponse> {
        let cfg = &self.inner.config;
        let mut delay = cfg.backoff_initial;
        let mut last = String::new();
        for attempt in 1..=cfg.max_attempts.max(1) {
            match tokio::time::timeout(cfg.timeout, self.inner.coordinator.call(request.clone()))
                .await
            {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) if !e.is_retryable() => return Err(e),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("timed out after {:?}", cfg.timeout),
            }
            if attempt < cfg.max_attempts {
                tokio::time::sleep(jittered(delay, attempt as u64)).await;
                delay = (delay * 2).min(cfg.backoff_max);
            }
        }
        Err(PsError::Master(format!(
            "unreachable after {} attempts: {last}",
            cfg.max_attempts
        )))
    }

    /// Sends the pieces of one push of `writer` to `model`: the shards concurrently, the pieces
    /// of one shard one after the other in sequence order, so that an order-dependent
    /// aggregation (`replace`, a user-defined one) sees them as pushed. No piece in flight is
    /// cancelled when another fails; after a piece of a shard could not be confirmed, that
    /// shard's later pieces are not sent (they could overtake it) and go into the token with it,
    /// see [`PsError::PushUnconfirmed`]. A refused piece was never applied, so the next follows.
    pub(crate) async fn push_pieces(
        &self,
        model: &str,
        writer: u64,
        pieces: Vec<Piece>,
    ) -> Result<()> {
        let mut by_shard: std::collections::BTreeMap<usize, Vec<Piece>> = Default::default();
        for piece in pieces {
            by_shard.entry(piece.0).or_default().push(piece);
        }
        let sent = join_all(by_shard.into_values().map(|mut list| async move {
            list.sort_by_key(|(_, r)| match &**r {
                Request::Push(p) => p.seq,
                _ => 0,
            });
            let mut outcomes = Vec::with_capacity(list.len());
            let mut failed = false;
            for piece in list {
                let outcome = if failed {
                    None
                } else {
                    let r = self.call(piece.0, piece.1.clone()).await;
                    // A refused piece was not applied and never will be: the next may follow.
                    failed = match &r {
                        Ok(Response::Done) => false,
                        Err(e) => !e.is_refusal(),
                        Ok(_) => true,
                    };
                    Some(r)
                };
                outcomes.push((piece, outcome));
            }
            outcomes
        }))
        .await;
        let mut unconfirmed = Vec::new();
        let (mut unknown, mut refusal) = (None, None);
        let mut unsent = 0usize;
        for (piece, result) in sent.into_iter().flatten() {
            let error = match result {
                Some(Ok(Response::Done)) => continue,
                Some(Ok(other)) => Some(PsError::Server(format!(
                    "model '{model}': unexpected answer {other:?} to a push"
                ))),
                Some(Err(e)) => Some(e),
                None => None,
            };
            let shard = piece.0;
            match PushPiece::from_request(piece) {
                Some(p) => unconfirmed.push(p),
                // Pieces are only ever pushes; say so rather than drop one silently.
                None => {
                    unknown.get_or_insert(PsError::Server(format!(
                        "model '{model}': a push piece for shard {shard} could not be kept"
                    )));
                }
            }
            match error {
                Some(e) if e.is_refusal() => {
                    refusal.get_or_insert(e);
                }
                Some(e) => {
                    unknown.get_or_insert(e);
                }
                None => unsent += 1,
            }
        }
        debug_assert!(unsent == 0 || unknown.is_some());
        match (unknown, refusal) {
            (None, None) => Ok(()),
            // Every failed piece was turned away unapplied: nothing is left in doubt.
            (None, Some(refusal)) => Err(refusal),
            (Some(cause), _) => {
                let pieces = unconfirmed.len();
                tracing::warn!(model, writer, pieces, error = %cause, "push not confirmed");
                Err(PsError::PushUnconfirmed {
                    token: Box::new(PushToken {
                        model: model.to_string(),
                        writer,
                        pieces: unconfirmed,
                    }),
                    cause: Box::new(cause),
                })
            }
        }
    }

    /// Sends the pieces of an unconfirmed push again, each under the writer and sequence number
    /// it was first sent with: pieces already applied are answered without being applied
    /// again, the others are applied once. Safe to call any number of times, from any client of
    /// the cluster (also after a restart, with a deserialized token). Fails like a push: with a
    /// new, smaller token while pieces stay unconfirmed; with a refusal when a shard turned a
    /// piece away (e.g. `SeqExpired`: that piece was never applied and never will be).
    pub async fn resend(&self, token: PushToken) -> Result<()> {
        let PushToken {
            model,
            writer,
            pieces,
        } = token;
        let pieces = pieces
            .into_iter()
            .map(|p| p.into_request(&model, writer))
            .collect();
        self.push_pieces(&model, writer, pieces).await
    }

    /// Sends one request to one shard, within the window, with timeouts and retries.
    /// Only requests that are safe to repeat reach here: pulls, idempotent control requests, and
    /// pushes carrying their (writer, seq) identity.
    pub(crate) async fn call(&self, shard: usize, request: Arc<Request>) -> Result<Response> {
        let cfg = &self.inner.config;
        let mut delay = cfg.backoff_initial;
        let mut last = String::new();
        let attempts = cfg.max_attempts.max(1);
        for attempt in 1..=attempts {
            let outcome = {
                // One permit per attempt: released before the back-off sleep below.
                let _permit = self
                    .inner
                    .window
                    .acquire()
                    .await
                    .map_err(|_| PsError::ShuttingDown)?;
                let call = self.inner.transport.call(shard, request.clone());
                tokio::time::timeout(cfg.timeout, call).await
            };
            match outcome {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) if !e.is_retryable() => return Err(e),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("timed out after {:?}", cfg.timeout),
            }
            tracing::debug!(shard, attempt, kind = request.kind(), error = %last, "retrying");
            if attempt < attempts {
                tokio::time::sleep(jittered(delay, shard as u64 ^ (attempt as u64) << 32)).await;
                delay = (delay * 2).min(cfg.backoff_max);
            }
        }
        Err(PsError::ShardUnreachable {
            shard,
            attempts,
            last_error: last,
        })
    }
}

fn check_dtype<T: Value>(spec: &ModelSpec) -> Result<()> {
    if spec.dtype != T::DTYPE {
        return Err(PsError::TypeMismatch {
            model: spec.name.clone(),
            actual: spec.dtype,
            requested: T::DTYPE,
        });
    }
    Ok(())
}

fn unexpected_master(response: &MasterResponse) -> PsError {
    PsError::Master(format!("unexpected answer {response:?}"))
}

/// A delay between half and all of `delay`, so that clients retrying together spread out.
fn jittered(delay: Duration, salt: u64) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(salt);
    let frac = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    delay.mul_f64(0.5 + 0.5 * frac)
}

/// A random 64-bit identity, unique across processes with overwhelming probability.
pub(crate) fn random_id() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::FutureExt;
    use futures::future::BoxFuture;

    use super::*;
    use crate::master::Master;
    use crate::spec::ModelSpec;
    use crate::transport::InProcessMaster;
    use crate::value::DType;

    /// A shard that never answers, counting how often it was asked.
    struct Silent(AtomicUsize);
    impl Transport for Silent {
        fn shards(&self) -> usize {
            1
        }
        fn call(&self, _: usize, _: Arc<Request>) -> BoxFuture<'static, Result<Response>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            futures::future::pending().boxed()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_shard_times_out_after_the_configured_attempts() {
        let master = Arc::new(Master::new());
        master.handle(MasterRequest::register("x")).unwrap();
        let spec = ModelSpec::matrix("m", 4, 4, DType::I32);
        master
            .handle(MasterRequest::CreateModel { spec, shards: 1 })
            .unwrap();
        let silent = Arc::new(Silent(AtomicUsize::new(0)));
        let config = ClientConfig {
            timeout: Duration::from_secs(3),
            max_attempts: 4,
            ..ClientConfig::default()
        };
        let client = Client::new(
            silent.clone(),
            Arc::new(InProcessMaster::new(master)),
            config,
        );
        let m = client.matrix::<i32>("m").await.unwrap();
        let started = tokio::time::Instant::now();
        let err = m.pull(&[1], &[1]).await.unwrap_err();
        assert!(
            matches!(
                err,
                PsError::ShardUnreachable {
                    shard: 0,
                    attempts: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("timed out"), "{err}");
        assert_eq!(silent.0.load(Ordering::SeqCst), 4);
        // Four timeouts plus three back-offs of at most 10, 20 and 40 ms.
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_secs(12) && elapsed < Duration::from_millis(12_100),
            "{elapsed:?}"
        );
    }

    /// Shard 0 fails at once, every time; shard 1 answers.
    struct OneDead;
    impl Transport for OneDead {
        fn shards(&self) -> usize {
            2
        }
        fn call(&self, shard: usize, _: Arc<Request>) -> BoxFuture<'static, Result<Response>> {
            let answer = match shard {
                0 => Err(PsError::Transient("refused".into())),
                _ => Ok(Response::Done),
            };
            futures::future::ready(answer).boxed()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_shard_retrying_does_not_hold_the_window() {
        // Regression (issue 9): permits were held through back-off sleeps, so requests
        // retrying against one dead shard starved the healthy shards of the window.
        let config = ClientConfig {
            max_in_flight: 2,
            max_attempts: 6,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(1),
            ..ClientConfig::default()
        };
        let master = Arc::new(InProcessMaster::new(Arc::new(Master::new())));
        let client = Client::new(Arc::new(OneDead), master, config);
        let dead: Vec<_> = (0..2)
            .map(|_| {
                let c = client.clone();
                tokio::spawn(async move { c.call(0, Arc::new(Request::Ping)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let started = tokio::time::Instant::now();
        let healthy = client.call(1, Arc::new(Request::Ping)).await;
        assert_eq!(healthy, Ok(Response::Done));
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        for d in dead {
            let err = d.await.unwrap().unwrap_err();
            assert!(
                matches!(
                    err,
                    PsError::ShardUnreachable {
                        shard: 0,
                        attempts: 6,
                        ..
                    }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn jitter_stays_within_half_and_all_of_the_delay() {
        for salt in 0..200 {
            let d = jittered(Duration::from_millis(100), salt);
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_millis(100),
                "{d:?}"
            );
        }
    }
}
