//! The client side of the gRPC transport: [`GrpcTransport`] (one lazily connected channel per
//! shard, multiplexing every request to that shard over one HTTP/2 connection, replaced when the
//! master says the shard moved), [`GrpcCoordinator`] for the master, and [`connect`], which
//! discovers the shards from the master.
//!
//! Every call carries the client's per-attempt timeout as its gRPC deadline (`grpc-timeout`),
//! so a server drops queued work whose caller has given up, and channels send HTTP/2 keepalive
//! pings, so a connection to a server that vanished without closing it (a crashed host, a
//! dropped route) fails in seconds and is re-established, instead of every call on it waiting
//! for its timeout.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use super::auth::AttachToken;
use super::encode;
use super::pb;
use super::pb::master_client::MasterClient;
use super::pb::shard_client::ShardClient;
use super::server::{
    CONNECTION_WINDOW, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, MASTER_MIN_MESSAGE_BYTES,
    STREAM_WINDOW, TLS_HANDSHAKE_TIMEOUT,
};
use super::status::error_from_status;
use crate::client::{Client, ClientConfig};
use crate::error::{PsError, Result};
use crate::master::{MasterRequest, MasterResponse};
use crate::message::{Request, Response};
use crate::transport::{Coordinator, Transport};

type Chan = InterceptedService<Channel, AttachToken>;

/// Largest message a client sends or accepts. Requests are split well under
/// `max_message_bytes` by the client itself; the margin admits worst-case encodings.
fn client_limit(config: &ClientConfig) -> usize {
    config.max_message_bytes.saturating_mul(2).max(1 << 20)
}

/// A channel to `addr` that connects on first use and reconnects after failures; over TLS when
/// `config.tls` is set.
fn channel(addr: &str, config: &ClientConfig) -> Result<Channel> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(PsError::InvalidRequest(
            "gRPC channels must be created inside a tokio runtime".to_string(),
        ));
    }
    let uri = uri(addr, config.tls.is_some())?;
    let connect_timeout = config.timeout.min(Duration::from_secs(10));
    let mut endpoint = Endpoint::from_shared(uri)
        .map_err(|e| PsError::InvalidRequest(format!("bad address '{addr}': {e}")))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        // Idle channels too: a worker between iterations finds a dead server before its next call.
        .keep_alive_while_idle(true);
    if let Some(tls) = &config.tls {
        // `connect_timeout` covers only TCP; a server that never answers the handshake must
        // not hold the call until its deadline either.
        let tls = tls
            .to_tonic()
            .timeout(connect_timeout.min(TLS_HANDSHAKE_TIMEOUT));
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| PsError::InvalidRequest(format!("TLS for '{addr}': {e}")))?;
    }
    Ok(endpoint.connect_lazy())
}

/// The URI of `addr`: a bare `HOST:PORT` gets `https://` with TLS and `http://` without; an
/// explicit scheme must agree with whether TLS is configured, so that a cluster set up for TLS
/// is never dialled in plain text by mistake.
fn uri(addr: &str, tls: bool) -> Result<String> {
    match (addr.split_once("://"), tls) {
        (None, false) => Ok(format!("http://{addr}")),
        (None, true) => Ok(format!("https://{addr}")),
        (Some(("http", _)), false) | (Some(("https", _)), true) => Ok(addr.to_string()),
        (Some(("https", _)), false) => Err(PsError::InvalidRequest(format!(
            "address '{addr}' is https but no TLS CA is configured to verify it"
        ))),
        (Some(("http", _)), true) => Err(PsError::InvalidRequest(format!(
            "address '{addr}' is plain-text http but TLS is configured; give HOST:PORT or https://"
        ))),
        (Some((scheme, _)), _) => Err(PsError::InvalidRequest(format!(
            "address '{addr}': unknown scheme '{scheme}' (use HOST:PORT)"
        ))),
    }
}

/// Elements from which a message is converted on the blocking pool rather than on the tokio
/// worker running the call: sorting and encoding a 100,000-element push takes milliseconds, in
/// which the worker could not complete other calls (a pull's answer waiting behind the pushes
/// of the same process). Below it, the hand-off would cost more than it saves.
const OFF_REACTOR_ELEMENTS: usize = 16 * 1024;

/// Runs the conversion of a message of `elements` elements, off the reactor when it is large.
async fn off_reactor<T: Send + 'static>(
    elements: usize,
    convert: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    if elements < OFF_REACTOR_ELEMENTS {
        return convert();
    }
    tokio::task::spawn_blocking(convert)
        .await
        .map_err(|e| PsError::Server(format!("converting a message failed: {e}")))?
}

/// `message` with `timeout` as its deadline, sent to the server in the `grpc-timeout` header.
fn with_deadline<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Shard requests over gRPC, one channel per shard address (index = shard index).
///
/// With a resolver (the master, as [`connect`] sets it), a call that fails at the connection
/// level (`PsError::Transient`: refused, reset, unreachable) makes the transport ask the master
/// for the shard's current address; when it has changed (the server restarted elsewhere under
/// its index) the shard's channel is replaced, and the client's next attempt goes there. The
/// failed attempt still counts against the client's retry budget.
#[derive(Clone)]
pub struct GrpcTransport {
    shared: Arc<Shared>,
    /// Where moved shards are looked up; `None`: addresses are fixed.
    resolver: Option<Arc<dyn Coordinator>>,
}

struct Shared {
    /// Swapped whole per shard under the write lock, which is never held across an await:
    /// a call clones its shard's client under the read lock and runs on that clone.
    slots: RwLock<Vec<Slot>>,
    /// One per shard: concurrent failures of one shard wait for one lookup instead of each
    /// asking the master. Holds when that shard's last lookup finished.
    lookups: Vec<tokio::sync::Mutex<Option<Instant>>>,
    attach: AttachToken,
    /// For channels to moved shards: TLS, timeouts and message limits as the first ones.
    config: ClientConfig,
    /// The deadline of each call: the client's per-attempt timeout.
    timeout: Duration,
}

#[derive(Clone)]
struct Slot {
    addr: String,
    client: ShardClient<Chan>,
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcTransport")
            .field("addrs", &self.addrs())
            .field("resolves", &self.resolver.is_some())
            .finish()
    }
}

impl GrpcTransport {
    /// Channels to `addrs` (connected lazily); must be called inside a tokio runtime.
    pub fn new(addrs: &[String], token: Option<&str>, config: &ClientConfig) -> Result<Self> {
        let attach = AttachToken::new(token)?;
        let slots = addrs
            .iter()
            .map(|a| {
                Ok(Slot {
                    addr: a.clone(),
                    client: shard_client(a, &attach, config)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GrpcTransport {
            shared: Arc::new(Shared {
                lookups: (0..slots.len())
                    .map(|_| tokio::sync::Mutex::new(None))
                    .collect(),
                slots: RwLock::new(slots),
                attach,
                config: config.clone(),
                timeout: config.timeout,
            }),
            resolver: None,
        })
    }

    /// Looks up the address of a shard that cannot be reached in `master`'s list of servers.
    pub fn with_resolver(mut self, master: Arc<dyn Coordinator>) -> Self {
        self.resolver = Some(master);
        self
    }

    /// The current address of every shard.
    pub fn addrs(&self) -> Vec<String> {
        self.shared
            .read_slots()
            .iter()
            .map(|s| s.addr.clone())
            .collect()
    }
}

impl Shared {
    fn read_slots(&self) -> std::sync::RwLockReadGuard<'_, Vec<Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    /// After a connection failure to `shard` at `failed` (a call started at `started`): asks
    /// the master where the shard is now and, if it moved, points the shard's slot there.
    async fn relocate(
        &self,
        master: &dyn Coordinator,
        shard: usize,
        failed: &str,
        started: Instant,
    ) {
        let Some(lookup) = self.lookups.get(shard) else {
            return;
        };
        let mut last = lookup.lock().await;
        // A lookup that finished after this call started saw at least as much as one now would.
        if last.is_some_and(|t| t >= started) || !self.is_at(shard, failed) {
            return;
        }
        let answer = tokio::time::timeout(self.timeout, master.call(MasterRequest::Servers)).await;
        *last = Some(Instant::now());
        let addr = match answer {
            Ok(Ok(MasterResponse::Servers(list))) => match list.into_iter().nth(shard) {
                Some(a) if !a.is_empty() && a != failed => a,
                _ => return,
            },
            Ok(Ok(other)) => {
                tracing::warn!(?other, "unexpected answer to a server lookup");
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(shard, error = %e, "cannot look up a moved shard");
                return;
            }
            Err(_) => return,
        };
        let client = match shard_client(&addr, &self.attach, &self.config) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(shard, %addr, error = %e, "cannot dial the new address of a shard");
                return;
            }
        };
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get_mut(shard)
            && slot.addr == failed
        {
            tracing::info!(shard, from = failed, to = %addr, "shard moved; reconnecting");
            *slot = Slot { addr, client };
        }
    }

    /// Whether `shard` is still dialled at `addr` (no other call has moved it meanwhile).
    fn is_at(&self, shard: usize, addr: &str) -> bool {
        self.read_slots().get(shard).is_some_and(|s| s.addr == addr)
    }
}

/// A client of the shard at `addr`, its channel connected lazily.
fn shard_client(
    addr: &str,
    attach: &AttachToken,
    config: &ClientConfig,
) -> Result<ShardClient<Chan>> {
    let limit = client_limit(config);
    Ok(
        ShardClient::with_interceptor(channel(addr, config)?, attach.clone())
            .max_encoding_message_size(limit)
            .max_decoding_message_size(limit),
    )
}

impl Transport for GrpcTransport {
    fn shards(&self) -> usize {
        self.shared.read_slots().len()
    }

    fn call(&self, shard: usize, request: Arc<Request>) -> BoxFuture<'static, Result<Response>> {
        let slot = {
            let slots = self.shared.read_slots();
            match slots.get(shard) {
                Some(slot) => slot.clone(),
                None => {
                    let err = PsError::NoSuchShard {
                        shard,
                        shards: slots.len(),
                    };
                    return futures::future::ready(Err(err)).boxed();
                }
            }
        };
        let shared = self.shared.clone();
        let resolver = self.resolver.clone();
        async move {
            let started = Instant::now();
            let result = shard_call(slot.client, request, shared.timeout).await;
            if let (Err(PsError::Transient(_)), Some(master)) = (&result, resolver) {
                shared
                    .relocate(master.as_ref(), shard, &slot.addr, started)
                    .await;
            }
            result
        }
        .boxed()
    }
}

async fn shard_call(
    mut c: ShardClient<Chan>,
    request: Arc<Request>,
    timeout: Duration,
) -> Result<Response> {
    let s = |e: tonic::Status| error_from_status(&e);
    match &*request {
        Request::Create {
            spec,
            shard,
            shards,
        } => {
            let msg = pb::CreateRequest {
                spec: Some(encode::spec_to_pb(spec)),
                shard: *shard,
                shards: *shards,
            };
            c.create(with_deadline(msg, timeout)).await.map_err(s)?;
            Ok(Response::Done)
        }
        Request::Destroy { model } => {
            c.destroy(with_deadline(
                pb::DestroyRequest {
                    model: model.clone(),
                },
                timeout,
            ))
            .await
            .map_err(s)?;
            Ok(Response::Done)
        }
        Request::PullRows { model, rows } => {
            let msg = pb::PullRowsRequest {
                model: model.clone(),
                row_deltas: encode::rows_to_deltas(rows),
            };
            let block = c
                .pull_rows(with_deadline(msg, timeout))
                .await
                .map_err(s)?
                .into_inner();
            Ok(Response::Rows(encode::row_block_from_pb(block)?))
        }
        Request::PullElements { model, rows, cols } => {
            let msg = pb::PullElementsRequest {
                model: model.clone(),
                row_deltas: encode::rows_to_deltas(rows),
                cols: cols.clone(),
            };
            let values = c
                .pull_elements(with_deadline(msg, timeout))
                .await
                .map_err(s)?
                .into_inner();
            Ok(Response::Values(encode::values_from_pb(Some(values))?))
        }
        Request::Push(push) => {
            let owned = request.clone();
            let msg = off_reactor(push.values.len(), move || match &*owned {
                Request::Push(push) => encode::push_to_pb(push),
                other => Err(PsError::Server(format!("not a push: {}", other.kind()))),
            })
            .await?;
            c.push(with_deadline(msg, timeout)).await.map_err(s)?;
            Ok(Response::Done)
        }
        Request::Save { name } => {
            c.save(with_deadline(
                pb::SnapshotRequest { name: name.clone() },
                timeout,
            ))
            .await
            .map_err(s)?;
            Ok(Response::Done)
        }
        Request::Load { name } => {
            c.load(with_deadline(
                pb::SnapshotRequest { name: name.clone() },
                timeout,
            ))
            .await
            .map_err(s)?;
            Ok(Response::Done)
        }
        Request::Ping => {
            let pong = c
                .ping(with_deadline(pb::Empty {}, timeout))
                .await
                .map_err(s)?
                .into_inner();
            Ok(Response::Pong {
                models: pong.models,
            })
        }
    }
}

/// Master requests over gRPC.
#[derive(Clone)]
pub struct GrpcCoordinator {
    client: MasterClient<Chan>,
    addr: String,
    timeout: Duration,
}

impl std::fmt::Debug for GrpcCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcCoordinator")
            .field("addr", &self.addr)
            .finish()
    }
}

impl GrpcCoordinator {
    /// A lazily connected channel to the master at `addr`; must be called inside a tokio runtime.
    pub fn new(addr: &str, token: Option<&str>, config: &ClientConfig) -> Result<Self> {
        // Entries up to their own size limit must pass whatever the shard message limit is.
        let limit = client_limit(config).max(MASTER_MIN_MESSAGE_BYTES);
        let client =
            MasterClient::with_interceptor(channel(addr, config)?, AttachToken::new(token)?)
                .max_encoding_message_size(limit)
                .max_decoding_message_size(limit);
        Ok(GrpcCoordinator {
            client,
            addr: addr.to_string(),
            timeout: config.timeout,
        })
    }
}

impl Coordinator for GrpcCoordinator {
    fn call(&self, request: MasterRequest) -> BoxFuture<'static, Result<MasterResponse>> {
        master_call(self.client.clone(), request, self.timeout).boxed()
    }
}

async fn master_call(
    mut c: MasterClient<Chan>,
    request: MasterRequest,
    timeout: Duration,
) -> Result<MasterResponse> {
    let s = |e: tonic::Status| error_from_status(&e);
    Ok(match request {
        MasterRequest::Register {
            addr,
            shard,
            cluster,
        } => {
            let msg = pb::RegisterRequest {
                addr,
                shard,
                cluster: cluster.unwrap_or_default(),
            };
            let reply = c
                .register(with_deadline(msg, timeout))
                .await
                .map_err(s)?
                .into_inner();
            MasterResponse::Registered {
                shard: reply.shard,
                cluster: reply.cluster,
            }
        }
        MasterRequest::Status => MasterResponse::Status(encode::status_from_pb(
            c.status(with_deadline(pb::Empty {}, timeout))
                .await
                .map_err(s)?
                .into_inner(),
        )),
        MasterRequest::Servers => MasterResponse::Servers(
            c.servers(with_deadline(pb::Empty {}, timeout))
                .await
                .map_err(s)?
                .into_inner()
                .addrs,
        ),
        MasterRequest::CreateModel { spec, shards } => {
            let msg = pb::CreateModelRequest {
                spec: Some(encode::spec_to_pb(&spec)),
                shards,
            };
            let record = c
                .create_model(with_deadline(msg, timeout))
                .await
                .map_err(s)?
                .into_inner();
            MasterResponse::Model(encode::record_from_pb(record)?)
        }
        MasterRequest::GetModel { name } => {
            let record = c
                .get_model(with_deadline(pb::ModelName { name }, timeout))
                .await
                .map_err(s)?
                .into_inner();
            MasterResponse::Model(encode::record_from_pb(record)?)
        }
        MasterRequest::ListModels => {
            let reply = c
                .list_models(with_deadline(pb::Empty {}, timeout))
                .await
                .map_err(s)?
                .into_inner();
            let models = reply.models.into_iter().map(encode::record_from_pb);
            MasterResponse::Models(models.collect::<Result<_>>()?)
        }
        MasterRequest::RemoveModel { name } => {
            c.remove_model(with_deadline(pb::ModelName { name }, timeout))
                .await
                .map_err(s)?;
            MasterResponse::Done
        }
        MasterRequest::PutEntry { key, value } => {
            c.put_entry(with_deadline(pb::PutEntryRequest { key, value }, timeout))
                .await
                .map_err(s)?;
            MasterResponse::Done
        }
        MasterRequest::GetEntry { key } => {
            let reply = c
                .get_entry(with_deadline(pb::EntryKey { key }, timeout))
                .await
                .map_err(s)?
                .into_inner();
            MasterResponse::Entry(reply.found.then_some(reply.value))
        }
        MasterRequest::RemoveEntry { key } => {
            c.remove_entry(with_deadline(pb::EntryKey { key }, timeout))
                .await
                .map_err(s)?;
            MasterResponse::Done
        }
    })
}

/// A client of the cluster whose master listens at `master_addr`. Waits (up to
/// `config.timeout`) until at least `wait_for_servers` servers (at least one) have registered, then
/// reaches every registered server by its index.
pub async fn connect(
    master_addr: &str,
    token: Option<&str>,
    config: ClientConfig,
    wait_for_servers: usize,
) -> Result<Client> {
    let coordinator = GrpcCoordinator::new(master_addr, token, &config)?;
    let wanted = wait_for_servers.max(1);
    let deadline = Instant::now() + config.timeout;
    let servers = loop {
        let answer =
            tokio::time::timeout(config.timeout, coordinator.call(MasterRequest::Servers)).await;
        let seen = match answer {
            Ok(Ok(MasterResponse::Servers(list)))
                if list.len() >= wanted && list.iter().all(|a| !a.is_empty()) =>
            {
                break list;
            }
            Ok(Ok(MasterResponse::Servers(list))) => {
                // Vacant indices: a restarted master relearning its servers from heartbeats.
                let vacant: Vec<usize> = (0..list.len()).filter(|&i| list[i].is_empty()).collect();
                if vacant.is_empty() {
                    format!("{} servers registered", list.len())
                } else {
                    format!(
                        "{} servers registered, shards {vacant:?} not re-registered yet",
                        list.len()
                    )
                }
            }
            Ok(Ok(other)) => return Err(PsError::Master(format!("unexpected answer {other:?}"))),
            Ok(Err(e)) if !e.is_retryable() => return Err(e),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer".to_string(),
        };
        if Instant::now() >= deadline {
            return Err(PsError::Master(format!(
                "master {master_addr}: waited {:?} for {wanted} servers, last: {seen}",
                config.timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tracing::info!(master = master_addr, ?servers, "connected");
    // The master also tells the transport where a server that restarted elsewhere went.
    let transport =
        GrpcTransport::new(&servers, token, &config)?.with_resolver(Arc::new(coordinator.clone()));
    Ok(Client::new(
        Arc::new(transport),
        Arc::new(coordinator),
        config,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_carries_its_deadline() {
        let request = with_deadline(pb::Empty {}, Duration::from_millis(1500));
        let header = request.metadata().get("grpc-timeout");
        assert_eq!(header.and_then(|v| v.to_str().ok()), Some("1500000u"));
    }
}
