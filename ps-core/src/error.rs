//! The error type of every ps-core operation.

use std::path::PathBuf;

use crate::value::DType;
use crate::writer::PushToken;

/// What went wrong in a parameter-server operation. Each variant names the offending value.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum PsError {
    #[error("row {row} is out of range for model '{model}' with {rows} rows")]
    RowOutOfRange { model: String, row: u64, rows: u64 },
    #[error("column {col} is out of range for model '{model}' with {cols} columns")]
    ColOutOfRange { model: String, col: u32, cols: u32 },
    #[error("unknown model '{0}'")]
    UnknownModel(String),
    /// A model of that name exists with another specification; the text names the model and
    /// what differs.
    #[error("model {0}")]
    ModelExists(String),
    #[error("model '{model}' holds {actual} values, not {requested}")]
    TypeMismatch {
        model: String,
        actual: DType,
        requested: DType,
    },
    #[error("unknown aggregator '{0}' (register it on every server first)")]
    UnknownAggregator(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("request of {bytes} bytes exceeds the limit of {limit} bytes")]
    RequestTooLarge { bytes: usize, limit: usize },
    #[error("shard {shard} unreachable after {attempts} attempts: {last_error}")]
    ShardUnreachable {
        shard: usize,
        attempts: u32,
        last_error: String,
    },
    #[error("shard {shard} does not exist (cluster has {shards} shards)")]
    NoSuchShard { shard: usize, shards: usize },
    /// A failure that may succeed when retried (a dropped message, a timeout, a refused connection).
    #[error("transient transport failure: {0}")]
    Transient(String),
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    #[error("master: {0}")]
    Master(String),
    #[error("snapshot {path}: {message}")]
    Snapshot { path: PathBuf, message: String },
    /// A push whose sequence number lies in a gap this shard gave up on, after more than the
    /// dedup window of later pushes were applied or when its writer was forgotten after idling
    /// past the writer expiry with the push still missing: it was **not** applied, and never
    /// will be under this (writer, seq). Not retryable.
    #[error(
        "push {seq} of writer {writer} to model '{model}' expired: the shard gave up waiting for it (too many later pushes applied, or its writer idle past the writer expiry); it was not applied"
    )]
    SeqExpired {
        model: String,
        writer: u64,
        seq: u64,
    },
    /// Some pieces of a push could not be confirmed: they may or may not have been applied.
    /// Resend `token` with [`Client::resend`](crate::Client::resend) (any number of times) to
    /// finish the push exactly once; `cause` is why the first unconfirmed piece failed.
    #[error(
        "push to model '{}' not confirmed by shard(s) {:?} (writer {}); resend its token to finish it exactly once: {cause}",
        .token.model, .token.shards(), .token.writer
    )]
    PushUnconfirmed {
        token: Box<PushToken>,
        cause: Box<PsError>,
    },
    /// A server claimed a shard index whose holder, at another address, still sends heartbeats:
    /// two live processes cannot be one shard (typically two servers started with one
    /// `--data-dir`). A restarted server gets this until its dead predecessor misses its
    /// heartbeats for the master's server timeout, so registration retries it for a while.
    #[error(
        "shard {shard} is held by {holder}, last heard from {:.1}s ago: {claimant} cannot take shard {shard} over while {holder} is alive (are two servers using one --data-dir?)",
        *.last_seen_ms as f64 / 1000.0
    )]
    ShardHeld {
        shard: u32,
        holder: String,
        claimant: String,
        last_seen_ms: u64,
    },
    /// A server claimed a shard index it was given by another cluster's master.
    #[error(
        "{claimant} claims shard {shard} of cluster {claimed}, but this master runs cluster {cluster}: its --data-dir belongs to another cluster (remove its shard-id.json to join this one as a new server)"
    )]
    ForeignCluster {
        shard: u32,
        claimant: String,
        claimed: String,
        cluster: String,
    },
    #[error("server is shutting down")]
    ShuttingDown,
    /// A server could not serve (its listener or connection machinery failed).
    #[error("server: {0}")]
    Server(String),
}

impl PsError {
    /// Whether the client may retry the request that produced this error.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PsError::Transient(_))
    }

    /// Whether this is a shard's refusal of a request it did not apply: a shard checks a push
    /// whole before changing anything, and the gRPC client maps statuses that did not come from
    /// a shard's handler to `Transient` or `Server`. Anything else leaves a push's outcome
    /// unknown.
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(
            self,
            PsError::RowOutOfRange { .. }
                | PsError::ColOutOfRange { .. }
                | PsError::UnknownModel(_)
                | PsError::ModelExists(_)
                | PsError::UnknownAggregator(_)
                | PsError::InvalidRequest(_)
                | PsError::TypeMismatch { .. }
                | PsError::RequestTooLarge { .. }
                | PsError::NoSuchShard { .. }
                | PsError::Unauthenticated(_)
                | PsError::SeqExpired { .. }
        )
    }

    /// The token of an unconfirmed push, if this is one.
    pub fn push_token(&self) -> Option<&PushToken> {
        match self {
            PsError::PushUnconfirmed { token, .. } => Some(token),
            _ => None,
        }
    }

    /// The error behind an unconfirmed push; any other error itself.
    pub fn cause(&self) -> &PsError {
        match self {
            PsError::PushUnconfirmed { cause, .. } => cause.cause(),
            other => other,
        }
    }

    pub(crate) fn snapshot(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        PsError::Snapshot {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = PsError> = std::result::Result<T, E>;
