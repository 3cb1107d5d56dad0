//! The error type of the `datasets` crate: every variant names the file it concerns.

use std::path::PathBuf;

/// Errors from reading or writing corpora, vocabularies, manifests and `.npy` files.
#[derive(Debug, thiserror::Error)]
pub enum DatasetsError {
    /// An operating-system I/O error on `path`.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The Parquet library rejected `path` (corrupt file, wrong schema, ...).
    #[error("{path}: parquet: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Building or decoding an Arrow batch for `path` failed.
    #[error("{path}: arrow: {source}")]
    Arrow {
        path: PathBuf,
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// `manifest.json` could not be parsed or written.
    #[error("{path}: json: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The file exists but its content does not follow the corpus format.
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// An argument is out of range (e.g. a synthetic spec with zero topics).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl DatasetsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parquet(path: impl Into<PathBuf>, source: parquet::errors::ParquetError) -> Self {
        Self::Parquet {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn arrow(path: impl Into<PathBuf>, source: arrow_schema::ArrowError) -> Self {
        Self::Arrow {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}
