//! How clients reach shards and the master. A transport moves [`Request`]s to a shard and the
//! [`Response`] back; it may fail transiently (`PsError::Transient`), and the client retries.
//!
//! Implementations: [`InProcess`] (no serialization, the embedded default) and the fault-injecting
//! [`Faulty`] wrapper for tests.

mod fault;
mod inproc;

use std::sync::Arc;

use futures::future::BoxFuture;

// The fault-injecting wrapper exists for the crate's test suites (and tools that test
// against it), not for production use.
#[doc(hidden)]
pub use fault::{FaultConfig, Faulty, Sabotage};
pub use inproc::{InProcess, InProcessMaster};

use crate::error::Result;
use crate::master::{MasterRequest, MasterResponse};
use crate::message::{Request, Response};

/// Carries requests to the shards of a cluster, addressed by shard index.
pub trait Transport: Send + Sync + 'static {
    /// Number of shards this transport can reach.
    fn shards(&self) -> usize;
    /// Sends `request` to `shard`. The request is shared so that retries and duplicates cost no copy.
    fn call(&self, shard: usize, request: Arc<Request>) -> BoxFuture<'static, Result<Response>>;
}

/// Carries requests to the master.
pub trait Coordinator: Send + Sync + 'static {
    fn call(&self, request: MasterRequest) -> BoxFuture<'static, Result<MasterResponse>>;
}
