//! The error type of the `ingest` crate. Messages name the file and, where known, the record
//! offset or line.

use std::path::PathBuf;

/// Errors that stop an ingest run (per-record problems are counted skips, not errors).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// An I/O error on `path`.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Invalid settings (bad language, inconsistent lengths, unknown format, ...).
    #[error("{0}")]
    Config(String),
    /// An input pattern matched nothing, or was not readable as a path or glob.
    #[error("input {0}")]
    Input(String),
    /// `--strict`: the first skipped record or document ends the run.
    #[error("strict mode: {0}")]
    Strict(String),
    /// Writing the corpus failed.
    #[error(transparent)]
    Corpus(#[from] datasets::DatasetsError),
    /// The run was cancelled (e.g. Ctrl-C): nothing was written, the output is unchanged.
    #[error("cancelled: nothing was written and the output directory is unchanged")]
    Cancelled,
    /// Every document was skipped (or the inputs held none): no corpus was written.
    #[error("no document was kept, so no corpus was written: {0}")]
    NothingKept(String),
    /// A worker thread panicked or a pipeline channel closed unexpectedly.
    #[error("internal pipeline failure: {0}")]
    Pipeline(String),
}

impl IngestError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IngestError::Io {
            path: path.into(),
            source,
        }
    }
}
