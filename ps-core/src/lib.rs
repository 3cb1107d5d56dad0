//! ps-core: an asynchronous, sharded parameter server.
//!
//! Models (matrices and vectors of i32, i64, f32 or f64) are partitioned by row over shards with a
//! range or cyclic [`Partitioner`]. Workers hold a [`Client`] and [`pull`](Matrix::pull_rows) the
//! rows they need and [`push`](Matrix::push) updates that the shards combine with the model's
//! aggregation (addition by default). Every push is applied exactly once: it carries a writer id and
//! a per-shard sequence number, and shards ignore what they have already applied, so clients retry
//! freely; a push that still could not be confirmed fails with a [`PushToken`] to resend, and a
//! handle can take a durable writer identity ([`Matrix::with_writer`], see [`writer`]) so that a
//! restarted worker resumes its own sequence. Transports are pluggable: [`transport::InProcess`]
//! for an embedded cluster, gRPC for servers in other processes.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use ps_core::{ClusterConfig, DType, EmbeddedCluster, ModelSpec, Storage};
//! let cluster = EmbeddedCluster::start(2, ClusterConfig::default())?;
//! let client = cluster.client();
//! let spec = ModelSpec::matrix("counts", 10, 4, DType::I32).with_storage(Storage::Sparse);
//! let m = client.create_matrix::<i32>(spec).await?;
//! m.push(&[3, 3, 7], &[1, 1, 0], &[2, 5, -1]).await?;
//! assert_eq!(m.pull(&[3, 7], &[1, 0]).await?, vec![7, -1]);
//! # Ok::<(), ps_core::PsError>(()) }).unwrap();
//! ```

pub mod aggregate;
mod client;
mod codec;
mod dedup;
mod durable;
mod embedded;
mod error;
pub mod grpc;
pub mod master;
mod matrix;
mod order;
// The request and response messages a `Transport` carries: public for transports outside the
// crate, not part of the everyday API.
#[doc(hidden)]
pub mod message;
pub mod metrics;
mod partition;
pub mod registration;
mod row;
// `Shard`, `ShardConfig` and `Limits` are re-exported below; the module's other items are
// the request handler's internals.
#[doc(hidden)]
pub mod shard;
mod snapshot;
mod spec;
mod store;
mod stripes;
pub mod transport;
mod value;
mod vector;
pub mod writer;

pub use aggregate::{Aggregator, AggregatorRegistry};
pub use client::{Client, ClientConfig};
pub use embedded::{ClusterConfig, EmbeddedCluster};
pub use error::{PsError, Result};
pub use matrix::Matrix;
pub use partition::Partitioner;
pub use row::{Row, RowBlock};
pub use shard::{Limits, Shard, ShardConfig};
pub use spec::{ModelSpec, PartitionerKind, Storage};
pub use value::{DType, Value, Values};
pub use vector::Vector;
pub use writer::{PushPiece, PushToken, WriterState};
