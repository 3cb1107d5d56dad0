//! The error type of the `lda` crate: every failure names the value or file at fault.

use std::path::PathBuf;

/// Everything that can go wrong while building, training, checkpointing or exporting a model.
#[derive(Debug, thiserror::Error)]
pub enum LdaError {
    /// A hyperparameter or setting outside its domain.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A token id at or past the vocabulary size.
    #[error("document {doc} holds word id {word}, but the vocabulary has only {vocab} words")]
    WordOutOfRange { doc: String, word: u32, vocab: u32 },
    /// A document too long for the compact per-document counts.
    #[error("document {doc} has {len} tokens; at most {max} are supported")]
    DocumentTooLong { doc: String, len: usize, max: usize },
    /// A worker shard with more tokens than 32-bit positions can address.
    #[error(
        "a worker shard would hold {0} tokens; at most 4294967295 are supported (use more threads)"
    )]
    ShardTooLarge(u64),
    /// The parameter server refused or failed a request.
    #[error("parameter server: {0}")]
    Ps(#[from] ps_core::PsError),
    /// A count went negative or a total disagrees with the corpus: a bug, never user error.
    #[error("model invariant violated: {0}")]
    Invariant(String),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file that exists but does not hold what it should.
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    /// Reading the corpus or writing a corpus-format file.
    #[error(transparent)]
    Datasets(#[from] datasets::DatasetsError),
    /// Writing or reading a Parquet model file.
    #[error("{path}: parquet: {message}")]
    Parquet { path: PathBuf, message: String },
    /// A cluster run could not go on: a job not published, a worker that stopped moving, a
    /// corpus that differs between driver and worker, or a run the driver aborted.
    #[error("cluster: {0}")]
    Cluster(String),
    /// A sampler thread panicked (a bug); the message it carried.
    #[error("sampler thread failed: {0}")]
    Thread(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = LdaError> = std::result::Result<T, E>;

impl LdaError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LdaError::Io {
            path: path.into(),
            source,
        }
    }

    /// A malformed file at `path`.
    pub fn bad_file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        LdaError::BadFile {
            path: path.into(),
            message: message.into(),
        }
    }
}
