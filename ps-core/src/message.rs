//! Requests a client sends to a shard and the shard's responses, independent of the transport.
//! The in-process transport hands them over as they are; the gRPC transport encodes them.

use crate::row::RowBlock;
use crate::spec::ModelSpec;
use crate::value::Values;

/// A request to one shard. Row indices are global; the shard maps them to its local rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Create this shard's partition of a model.
    Create {
        spec: ModelSpec,
        shard: u32,
        shards: u32,
    },
    Destroy {
        model: String,
    },
    PullRows {
        model: String,
        rows: Vec<u64>,
    },
    PullElements {
        model: String,
        rows: Vec<u64>,
        cols: Vec<u32>,
    },
    Push(Push),
    /// Write every partition to the snapshot `name` under the server's data directory.
    Save {
        name: String,
    },
    /// Replace every partition with those of snapshot `name`.
    Load {
        name: String,
    },
    Ping,
}

/// Elements pushed to one shard: `values[i]` is combined into (`rows[i]`, `cols[i]`).
/// `(writer, seq)` identifies the push so a shard applies it exactly once however often it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub model: String,
    pub writer: u64,
    pub seq: u64,
    pub rows: Vec<u64>,
    pub cols: Vec<u32>,
    pub values: Values,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Done,
    Rows(RowBlock),
    Values(Values),
    /// Answer to `Ping`: the shard's index and its models.
    Pong {
        models: Vec<String>,
    },
}

impl Request {
    /// A short name for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Create { .. } => "create",
            Request::Destroy { .. } => "destroy",
            Request::PullRows { .. } => "pull-rows",
            Request::PullElements { .. } => "pull-elements",
            Request::Push(_) => "push",
            Request::Save { .. } => "save",
            Request::Load { .. } => "load",
            Request::Ping => "ping",
        }
    }
}
