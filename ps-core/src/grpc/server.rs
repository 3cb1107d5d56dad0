//! Serving a shard or the master over gRPC, mini-redis style: the caller binds the listener (so
//! tests can use port 0 and read the address) and passes a shutdown future; the server stops
//! accepting when it completes and finishes the calls in flight.
//!
//! Handlers turn the wire message into a request, run the synchronous [`Shard::handle`] and
//! encode the answer. Every failure is the error of that call alone.
//!
//! `Shard::handle` takes locks and loops over a request's elements (a push of millions, a pull
//! answering up to 16M values), and so do the conversions from and to wire messages, so none of
//! it runs on a tokio worker, where it would stall every other connection. Data requests run on
//! the blocking pool, in two lanes of at most `blocking_permits()` each: pulls in one, pushes
//! and the others in the other (FIFO semaphores: beyond that, requests wait in arrival order as
//! cheap futures, not as threads piling up on a lock). With one lane a pull queued behind every push that arrived before it; the partition's
//! lock stripes then let it run beside the pushes. A reply is sent only after its request was
//! applied, so a client that waits for one push before sending the next still sees them applied
//! in that order, and one push is applied whole, in its wire order. Snapshots (long file I/O)
//! use the blocking pool outside that bound, so a save does not hold up pushes.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::auth::CheckToken;
use super::encode;
use super::pb;
use super::pb::master_server::{Master as MasterRpc, MasterServer};
use super::pb::shard_server::{Shard as ShardRpc, ShardServer};
use super::status::error_to_status;
use super::tls::TlsServer;
use crate::error::{PsError, Result};
use crate::master::{MAX_ENTRY_VALUE_BYTES, Master, MasterRequest, MasterResponse};
use crate::message::{Request, Response};
use crate::shard::Shard;

/// How a server runs: its token, its TLS and its message size limit.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Shared secret every call must present; `None` accepts every caller.
    pub token: Option<String>,
    /// Largest message received or sent; larger requests fail with `RequestTooLarge`. A master
    /// allows at least [`MASTER_MIN_MESSAGE_BYTES`], so that its largest entry always fits.
    pub max_message_bytes: usize,
    /// TLS identity and optional client CA; `None` serves plain-text HTTP/2. With TLS the
    /// server accepts only TLS connections.
    pub tls: Option<TlsServer>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            token: None,
            max_message_bytes: super::DEFAULT_MAX_MESSAGE_BYTES,
            tls: None,
        }
    }
}

/// The smallest message limit of the master and its clients: an entry of the largest allowed
/// value, plus room for its key and the protobuf framing. Limits configured for shard traffic
/// must not make the master refuse an entry its own limits accept.
pub(crate) const MASTER_MIN_MESSAGE_BYTES: usize = MAX_ENTRY_VALUE_BYTES + (64 << 10);

/// HTTP/2 flow-control windows: the 64 KiB default throttles large pushes even on loopback.
pub(crate) const STREAM_WINDOW: u32 = 8 << 20;
pub(crate) const CONNECTION_WINDOW: u32 = 32 << 20;

/// HTTP/2 keepalive, on both ends: a ping every interval, and a connection whose peer does not
/// answer one within the timeout is closed (the server frees a vanished client's streams, the
/// client reconnects). Short enough to notice a dead peer well within a client's retry budget.
pub(crate) const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
pub(crate) const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `shard` on `listener` until `shutdown` completes, with `options` (token, TLS,
/// message limit; `ServeOptions::default()`: none, plain text, the default limit).
pub async fn serve_shard(
    listener: TcpListener,
    shard: Arc<Shard>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let limit = options.max_message_bytes;
    let service = ShardServer::new(ShardService {
        shard,
        reads: Arc::new(Semaphore::new(blocking_permits())),
        writes: Arc::new(Semaphore::new(blocking_permits())),
    })
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let service = InterceptedService::new(service, CheckToken::new(options.token));
    let addr = listener
        .local_addr()
        .map_err(|e| PsError::Server(e.to_string()))?;
    tracing::info!(%addr, limit, tls = tls_mode(&options.tls), "shard serving");
    builder(options.tls.as_ref())?
        .add_service(service)
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await
        .map_err(|e| PsError::Server(format!("shard on {addr}: {e}")))
}

/// Serves `master` on `listener` until `shutdown` completes, with `options`.
pub async fn serve_master(
    listener: TcpListener,
    master: Arc<Master>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let limit = options.max_message_bytes.max(MASTER_MIN_MESSAGE_BYTES);
    let service = MasterServer::new(MasterService { master })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let service = InterceptedService::new(service, CheckToken::new(options.token));
    let addr = listener
        .local_addr()
        .map_err(|e| PsError::Server(e.to_string()))?;
    tracing::info!(%addr, limit, tls = tls_mode(&options.tls), "master serving");
    builder(options.tls.as_ref())?
        .add_service(service)
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await
        .map_err(|e| PsError::Server(format!("master on {addr}: {e}")))
}

/// The server with its windows and keepalive. A client's `grpc-timeout` deadline is honoured by
/// tonic itself: a call still waiting for the blocking pool when it passes is dropped (a push
/// already running completes, and its retry is answered from the exactly-once window).
fn builder(tls: Option<&TlsServer>) -> Result<tonic::transport::Server> {
    let server = tonic::transport::Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT));
    match tls {
        // A peer that opens a connection and never finishes its handshake is dropped.
        Some(tls) => server
            .tls_config(tls.to_tonic().timeout(TLS_HANDSHAKE_TIMEOUT))
            .map_err(|e| PsError::InvalidRequest(format!("TLS server configuration: {e}"))),
        None => Ok(server),
    }
}

/// Longest a TLS handshake may take, on both ends.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn tls_mode(tls: &Option<TlsServer>) -> &'static str {
    match tls {
        Some(t) if t.requires_client_certs() => "mutual",
        Some(_) => "server",
        None => "off",
    }
}

fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Data requests of one lane handled at once on the blocking pool: two per core, so that a
/// thread waiting for a lock leaves the cores to requests for other rows and partitions.
pub(crate) fn blocking_permits() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

struct ShardService {
    shard: Arc<Shard>,
    /// Bound the pulls, and the other data requests, running on the blocking pool.
    reads: Arc<Semaphore>,
    writes: Arc<Semaphore>,
}

type Reply<T> = std::result::Result<GrpcResponse<T>, Status>;

impl ShardService {
    /// Runs `work` (decoding the wire message, handling the request, encoding the answer: all
    /// of it loops over the request's elements) on the blocking pool, within `lane`'s bound.
    async fn run<R: Send + 'static>(
        &self,
        kind: &'static str,
        lane: &Arc<Semaphore>,
        work: impl FnOnce(&Shard) -> Result<R> + Send + 'static,
    ) -> std::result::Result<R, Status> {
        let permit = lane
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| error_to_status(&PsError::ShuttingDown))?;
        let shard = self.shard.clone();
        // The permit moves into the task: it bounds the threads even if the call is cancelled
        // (a client timeout), since the request then still runs to its end.
        let handled = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let result = work(&shard);
            if let Err(e) = &result {
                tracing::debug!(kind, error = %e, "request failed");
            }
            result
        })
        .await;
        flatten(handled)
    }

    /// Runs a request that changes the shard and answers `Done`, in the write lane.
    async fn done(
        &self,
        kind: &'static str,
        request: impl FnOnce() -> Result<Request> + Send + 'static,
    ) -> Reply<pb::Empty> {
        self.run(kind, &self.writes, move |shard| {
            expect_done(shard.handle(&request()?)?)
        })
        .await
        .map(GrpcResponse::new)
    }

    /// Runs a request that does long file I/O (snapshots) on the blocking pool, outside the bound.
    async fn blocking(&self, request: Request) -> Reply<pb::Empty> {
        let shard = self.shard.clone();
        let handled =
            tokio::task::spawn_blocking(move || expect_done(shard.handle(&request)?)).await;
        flatten(handled).map(GrpcResponse::new)
    }
}

fn expect_done(response: Response) -> Result<pb::Empty> {
    match response {
        Response::Done => Ok(pb::Empty {}),
        other => Err(unexpected(&other)),
    }
}

fn flatten<R>(
    handled: std::result::Result<Result<R>, tokio::task::JoinError>,
) -> std::result::Result<R, Status> {
    match handled {
        Ok(result) => result.map_err(|e| error_to_status(&e)),
        Err(e) => Err(error_to_status(&PsError::Server(format!(
            "request task failed: {e}"
        )))),
    }
}

fn unexpected(response: &Response) -> PsError {
    PsError::Server(format!("unexpected shard response {response:?}"))
}

#[tonic::async_trait]
impl ShardRpc for ShardService {
    async fn create(&self, r: GrpcRequest<pb::CreateRequest>) -> Reply<pb::Empty> {
        let r = r.into_inner();
        self.done("create", move || {
            Ok(Request::Create {
                spec: encode::spec_from_pb(r.spec)?,
                shard: r.shard,
                shards: r.shards,
            })
        })
        .await
    }

    async fn destroy(&self, r: GrpcRequest<pb::DestroyRequest>) -> Reply<pb::Empty> {
        let model = r.into_inner().model;
        self.done("destroy", move || Ok(Request::Destroy { model }))
            .await
    }

    async fn pull_rows(&self, r: GrpcRequest<pb::PullRowsRequest>) -> Reply<pb::RowBlock> {
        let r = r.into_inner();
        self.run("pull-rows", &self.reads, move |shard| {
            let rows = encode::rows_from_deltas(&r.row_deltas);
            match shard.handle(&Request::PullRows {
                model: r.model,
                rows,
            })? {
                Response::Rows(block) => encode::row_block_to_pb(block),
                other => Err(unexpected(&other)),
            }
        })
        .await
        .map(GrpcResponse::new)
    }

    async fn pull_elements(&self, r: GrpcRequest<pb::PullElementsRequest>) -> Reply<pb::Values> {
        let r = r.into_inner();
        self.run("pull-elements", &self.reads, move |shard| {
            let rows = encode::rows_from_deltas(&r.row_deltas);
            match shard.handle(&Request::PullElements {
                model: r.model,
                rows,
                cols: r.cols,
            })? {
                Response::Values(v) => Ok(encode::values_to_pb(v)),
                other => Err(unexpected(&other)),
            }
        })
        .await
        .map(GrpcResponse::new)
    }

    async fn push(&self, r: GrpcRequest<pb::PushRequest>) -> Reply<pb::Empty> {
        let r = r.into_inner();
        self.done("push", move || encode::push_from_pb(r).map(Request::Push))
            .await
    }

    async fn save(&self, r: GrpcRequest<pb::SnapshotRequest>) -> Reply<pb::Empty> {
        self.blocking(Request::Save {
            name: r.into_inner().name,
        })
        .await
    }

    async fn load(&self, r: GrpcRequest<pb::SnapshotRequest>) -> Reply<pb::Empty> {
        self.blocking(Request::Load {
            name: r.into_inner().name,
        })
        .await
    }

    async fn ping(&self, _: GrpcRequest<pb::Empty>) -> Reply<pb::PongReply> {
        // A map lookup: answered here, so a ping also shows whether the reactor is responsive.
        match self
            .shard
            .handle(&Request::Ping)
            .map_err(|e| error_to_status(&e))?
        {
            Response::Pong { models } => Ok(GrpcResponse::new(pb::PongReply { models })),
            other => Err(error_to_status(&unexpected(&other))),
        }
    }
}

struct MasterService {
    master: Arc<Master>,
}

impl MasterService {
    /// Handles a request on the blocking pool: with a data directory a change is written and
    /// fsynced before it is answered, which must not stall the reactor.
    async fn run(&self, request: MasterRequest) -> std::result::Result<MasterResponse, Status> {
        let master = self.master.clone();
        match tokio::task::spawn_blocking(move || master.handle(request)).await {
            Ok(result) => result.map_err(|e| error_to_status(&e)),
            Err(e) => Err(error_to_status(&PsError::Server(format!(
                "master task failed: {e}"
            )))),
        }
    }
}

fn unexpected_master(response: &MasterResponse) -> Status {
    error_to_status(&PsError::Server(format!(
        "unexpected master response {response:?}"
    )))
}

fn done_reply(response: MasterResponse) -> Reply<pb::Empty> {
    match response {
        MasterResponse::Done => Ok(GrpcResponse::new(pb::Empty {})),
        other => Err(unexpected_master(&other)),
    }
}

fn record_reply(response: MasterResponse) -> Reply<pb::ModelRecord> {
    match response {
        MasterResponse::Model(r) => Ok(GrpcResponse::new(encode::record_to_pb(&r))),
        other => Err(unexpected_master(&other)),
    }
}

#[tonic::async_trait]
impl MasterRpc for MasterService {
    async fn register(&self, r: GrpcRequest<pb::RegisterRequest>) -> Reply<pb::RegisterReply> {
        let r = r.into_inner();
        match self
            .run(MasterRequest::Register {
                addr: r.addr,
                shard: r.shard,
                cluster: (!r.cluster.is_empty()).then_some(r.cluster),
            })
            .await?
        {
            MasterResponse::Registered { shard, cluster } => {
                Ok(GrpcResponse::new(pb::RegisterReply { shard, cluster }))
            }
            other => Err(unexpected_master(&other)),
        }
    }

    async fn servers(&self, _: GrpcRequest<pb::Empty>) -> Reply<pb::ServersReply> {
        match self.run(MasterRequest::Servers).await? {
            MasterResponse::Servers(addrs) => Ok(GrpcResponse::new(pb::ServersReply { addrs })),
            other => Err(unexpected_master(&other)),
        }
    }

    async fn status(&self, _: GrpcRequest<pb::Empty>) -> Reply<pb::StatusReply> {
        match self.run(MasterRequest::Status).await? {
            MasterResponse::Status(status) => Ok(GrpcResponse::new(encode::status_to_pb(&status))),
            other => Err(unexpected_master(&other)),
        }
    }

    async fn create_model(&self, r: GrpcRequest<pb::CreateModelRequest>) -> Reply<pb::ModelRecord> {
        let r = r.into_inner();
        let spec = encode::spec_from_pb(r.spec).map_err(|e| error_to_status(&e))?;
        record_reply(
            self.run(MasterRequest::CreateModel {
                spec,
                shards: r.shards,
            })
            .await?,
        )
    }

    async fn get_model(&self, r: GrpcRequest<pb::ModelName>) -> Reply<pb::ModelRecord> {
        record_reply(
            self.run(MasterRequest::GetModel {
                name: r.into_inner().name,
            })
            .await?,
        )
    }

    async fn list_models(&self, _: GrpcRequest<pb::Empty>) -> Reply<pb::ModelsReply> {
        match self.run(MasterRequest::ListModels).await? {
            MasterResponse::Models(models) => Ok(GrpcResponse::new(pb::ModelsReply {
                models: models.iter().map(encode::record_to_pb).collect(),
            })),
            other => Err(unexpected_master(&other)),
        }
    }

    async fn remove_model(&self, r: GrpcRequest<pb::ModelName>) -> Reply<pb::Empty> {
        done_reply(
            self.run(MasterRequest::RemoveModel {
                name: r.into_inner().name,
            })
            .await?,
        )
    }

    async fn put_entry(&self, r: GrpcRequest<pb::PutEntryRequest>) -> Reply<pb::Empty> {
        let r = r.into_inner();
        done_reply(
            self.run(MasterRequest::PutEntry {
                key: r.key,
                value: r.value,
            })
            .await?,
        )
    }

    async fn get_entry(&self, r: GrpcRequest<pb::EntryKey>) -> Reply<pb::EntryReply> {
        match self
            .run(MasterRequest::GetEntry {
                key: r.into_inner().key,
            })
            .await?
        {
            MasterResponse::Entry(value) => Ok(GrpcResponse::new(pb::EntryReply {
                found: value.is_some(),
                value: value.unwrap_or_default(),
            })),
            other => Err(unexpected_master(&other)),
        }
    }

    async fn remove_entry(&self, r: GrpcRequest<pb::EntryKey>) -> Reply<pb::Empty> {
        done_reply(
            self.run(MasterRequest::RemoveEntry {
                key: r.into_inner().key,
            })
            .await?,
        )
    }
}
