//! The gRPC transport: shards and the master served with tonic, reached from clients over HTTP/2.
//!
//! - [`encode`] turns ps-core messages into the compact wire messages of `proto/ps.proto` and back,
//!   and errors into gRPC statuses that decode to the same [`PsError`](crate::PsError) variant;
//! - [`server`] serves a [`Shard`](crate::Shard) or a [`Master`](crate::master::Master) on a
//!   listener until a shutdown future completes ([`serve_shard`], [`serve_master`]);
//! - [`client`] implements [`Transport`](crate::transport::Transport) and
//!   [`Coordinator`](crate::transport::Coordinator) over lazily connected channels, and
//!   [`connect`] builds a [`Client`](crate::Client) from a master's address;
//! - [`auth`] checks an optional shared-secret token on every call.

mod auth;
mod client;
pub mod encode;
mod order;
mod server;

/// The messages and services generated from `proto/ps.proto`.
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

pub use auth::{AttachToken, CheckToken};
pub use client::{GrpcCoordinator, GrpcTransport, connect};
pub use server::{ServeOptions, serve_master, serve_master_with, serve_shard, serve_shard_with};

/// Default largest gRPC message a server accepts or sends (requests above it fail with
/// [`PsError::RequestTooLarge`](crate::PsError::RequestTooLarge)).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;
