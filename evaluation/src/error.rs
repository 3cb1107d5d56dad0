//! The error type of the `evaluation` crate: every failure names the file or value at fault.

use std::path::PathBuf;

/// Everything that can go wrong while loading models and corpora or computing a metric.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Reading a corpus or a `.npy` file.
    #[error(transparent)]
    Datasets(#[from] datasets::DatasetsError),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A model directory whose files disagree with each other or with the format.
    #[error("model {path}: {reason}")]
    BadModel { path: PathBuf, reason: String },
    /// Writing Parquet.
    #[error("{path}: {reason}")]
    Parquet { path: PathBuf, reason: String },
    /// An option outside its domain.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Nothing could be scored (no document, no term in common, ...).
    #[error("nothing to score: {0}")]
    Empty(String),
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, EvalError>;
