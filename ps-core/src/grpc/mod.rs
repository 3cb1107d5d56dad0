//! The gRPC transport: shards and the master served with tonic, reached from clients over HTTP/2.
//!
//! - [`encode`] turns ps-core messages into the compact wire messages of `proto/ps.proto` and back;
//! - [`status`] turns errors into gRPC statuses that decode to the same
//!   [`PsError`](crate::PsError) variant;
//! - [`server`] serves a [`Shard`](crate::Shard) or a [`Master`](crate::master::Master) on a
//!   listener until a shutdown future completes ([`serve_shard`], [`serve_master`]);
//! - [`client`] implements [`Transport`](crate::transport::Transport) and
//!   [`Coordinator`](crate::transport::Coordinator) over lazily connected channels, and
//!   [`connect`] builds a [`Client`](crate::Client) from a master's address;
//! - [`auth`] checks an optional shared-secret token on every call;
//! - [`tls`] configures TLS: a server's identity and optional client CA ([`TlsServer`] in
//!   [`ServeOptions::tls`]), a client's CA, optional identity and name override ([`TlsClient`] in
//!   [`ClientConfig::tls`](crate::ClientConfig::tls)).
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use ps_core::grpc::{connect, serve_master, serve_shard, GrpcCoordinator, ServeOptions};
//! use ps_core::master::{Master, MasterRequest};
//! use ps_core::transport::Coordinator;
//! use ps_core::{AggregatorRegistry, ClientConfig, DType, ModelSpec, Shard, ShardConfig};
//! use tokio::net::TcpListener;
//!
//! let token = Some("s3cret".to_string());
//! let options = ServeOptions { token: token.clone(), ..ServeOptions::default() };
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let master_addr = listener.local_addr()?.to_string();
//! tokio::spawn(serve_master(listener, Arc::new(Master::new()), options.clone(), std::future::pending()));
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let shard_addr = listener.local_addr()?.to_string();
//! let shard = Arc::new(Shard::new(ShardConfig::default(), AggregatorRegistry::default()));
//! tokio::spawn(serve_shard(listener, shard, options, std::future::pending()));
//! // A server registers with the master, which gives it its shard index.
//! let master = GrpcCoordinator::new(&master_addr, token.as_deref(), &ClientConfig::default())?;
//! master.call(MasterRequest::register(shard_addr)).await?;
//!
//! let client = connect(&master_addr, token.as_deref(), ClientConfig::default(), 1).await?;
//! let m = client.create_matrix::<i64>(ModelSpec::matrix("counts", 100, 8, DType::I64)).await?;
//! m.push(&[42, 42], &[3, 3], &[2, 5]).await?;
//! assert_eq!(m.pull(&[42], &[3]).await?, vec![7]);
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

mod auth;
mod client;
// Conversions between the wire messages and the crate's, and error ⇄ status: internals the
// crate's own tests and tools use, not an API.
#[doc(hidden)]
pub mod encode;
mod server;
#[doc(hidden)]
pub mod status;
mod tls;

/// The messages and services generated from `proto/ps.proto` (for clients in other languages,
/// the `.proto` file is the interface; this module is the crate's own use of it).
#[doc(hidden)]
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]
pub mod pb {
    tonic::include_proto!("glint.ps.v1");
}

#[doc(hidden)]
pub use auth::{AttachToken, CheckToken};
pub use client::{GrpcCoordinator, GrpcTransport, connect};
pub use server::{ServeOptions, serve_master, serve_shard};
pub use tls::{TlsClient, TlsIdentity, TlsServer};

/// Default largest gRPC message a server accepts or sends (requests above it fail with
/// [`PsError::RequestTooLarge`](crate::PsError::RequestTooLarge)).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;
