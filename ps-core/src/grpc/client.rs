//! The client side of the gRPC transport: [`GrpcTransport`] (one lazily connected channel per
//! shard, multiplexing every request to that shard over one HTTP/2 connection), [`GrpcCoordinator`]
//! for the master, and [`connect`], which discovers the shards from the master.
//!
//! Every call carries the client's per-attempt timeout as its gRPC deadline (`grpc-timeout`),
//! so a server drops queued work whose caller has given up, and channels send HTTP/2 keepalive
//! pings, so a connection to a server that vanished without closing it (a crashed host, a
//! dropped route) fails in seconds and is re-established, instead of every call on it waiting
//! for its timeout.

use std::sync::Arc;
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

/// `message` with `timeout` as its deadline, sent to the server in the `grpc-timeout` header.
fn with_deadline<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Shard requests over gRPC, one channel per shard address (index = shard index).
#[derive(Clone)]
pub struct GrpcTransport {
    shards: Arc<[ShardClient<Chan>]>,
    addrs: Arc<[String]>,
    /// The deadline of each call: the client's per-attempt timeout.
    timeout: Duration,
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcTransport")
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl GrpcTransport {
    /// Channels to `addrs` (connected lazily); must be called inside a tokio runtime.
    pub fn new(addrs: &[String], token: Option<&str>, config: &ClientConfig) -> Result<Self> {
        let attach = AttachToken::new(token)?;
        let limit = client_limit(config);
        let shards = addrs
            .iter()
            .map(|a| {
                Ok(
                    ShardClient::with_interceptor(channel(a, config)?, attach.clone())
                        .max_encoding_message_size(limit)
                        .max_decoding_message_size(limit),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GrpcTransport {
            shards: shards.into(),
            addrs: addrs.into(),
            timeout: config.timeout,
        })
    }

    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }
}

impl Transport for GrpcTransport {
    fn shards(&self) -> usize {
        self.shards.len()
    }

    fn call(&self, shard: usize, request: Arc<Request>) -> BoxFuture<'static, Result<Response>> {
        let Some(client) = self.shards.get(shard).cloned() else {
            let err = PsError::NoSuchShard {
                shard,
                shards: self.shards.len(),
            };
            return futures::future::ready(Err(err)).boxed();
        };
        shard_call(client, request, self.timeout).boxed()
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
            c.push(with_deadline(encode::push_to_pb(push)?, timeout))
                .await
                .map_err(s)?;
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
        MasterRequest::Register { addr } => {
            let reply = c
                .register(with_deadline(pb::RegisterRequest { addr }, timeout))
                .await
                .map_err(s)?
                .into_inner();
            MasterResponse::Registered { shard: reply.shard }
        }
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
            Ok(Ok(MasterResponse::Servers(list))) if list.len() >= wanted => break list,
            Ok(Ok(MasterResponse::Servers(list))) => format!("{} servers registered", list.len()),
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
    let transport = GrpcTransport::new(&servers, token, &config)?;
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
