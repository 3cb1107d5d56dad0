//! `glint_lda._glint_lda`: the native half of the `glint_lda` Python package, a thin layer of
//! PyO3 over the workspace's libraries (the `glint-lda` binary's twin).
//!
//! * [`corpus`]: `Corpus`, a token-id corpus in memory: ingested from texts, Parquet or WARC by
//!   the `ingest` pipeline, or read from and written to the corpus directory format.
//! * [`model`]: `_Model`, an LDA model trained by `lda` on an embedded parameter server or
//!   loaded from a model directory, with inference, perplexity and coherence from `evaluation`.
//! * [`ps`]: a client of a ps-core cluster (gRPC) and an in-process cluster.
//! * [`cluster`]: gRPC servers in this process, a cluster run's driver and a worker over
//!   documents handed over from Python (what `glint_lda.spark` runs in Spark tasks).
//!
//! Every call that works for long (ingest, training, inference, parameter-server requests)
//! releases the GIL; library errors become `GlintError` with the library's message, and a panic
//! (a bug) becomes a `GlintError` too instead of crossing into Python.

mod cluster;
mod corpus;
mod model;
mod ps;

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;

pyo3::create_exception!(
    glint_lda,
    GlintError,
    PyException,
    "An error reported by the glint-lda libraries (bad input, a missing file, a refused request); the message is theirs."
);

pyo3::create_exception!(
    glint_lda,
    EmptyCorpusError,
    GlintError,
    "Ingest kept no document: every input document was empty, or analysed to no term."
);

/// A library error as a Python `GlintError`: the message with its chain of causes.
pub(crate) fn glint_err(e: &dyn std::error::Error) -> PyErr {
    GlintError::new_err(message(e))
}

/// `e` and its sources, `outer: inner: ...`, each cause left out when the message above already
/// includes it.
pub(crate) fn message(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The tokio runtime that drives ps-core's async client for every object of this module (two
/// worker threads: sampling runs on the trainer's own threads, not here).
pub(crate) fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("glint-lda-tokio")
                .enable_all()
                .build()
                .map_err(|e| format!("starting the tokio runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| GlintError::new_err(e.clone()))
}

/// Runs `work` with the GIL released. Its error becomes a `GlintError`, and so does a panic.
pub(crate) fn detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> Result<T, String> + Send,
{
    match py.detach(|| std::panic::catch_unwind(AssertUnwindSafe(work))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(GlintError::new_err(message)),
        Err(panic) => Err(panic_error(panic.as_ref())),
    }
}

/// The `GlintError` for a caught panic.
pub(crate) fn panic_error(panic: &(dyn std::any::Any + Send)) -> PyErr {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    GlintError::new_err(format!("internal error (a bug in glint-lda): {what}"))
}

/// Sampler or analyzer threads to use: `given`, else every core.
pub(crate) fn default_threads(given: Option<usize>) -> usize {
    given
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// Converts a JSON value to the Python object `json.loads` makes of it.
pub(crate) fn json_to_py<'py>(
    py: Python<'py>,
    value: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| glint_err(&e))?;
    py.import("json")?.call_method1("loads", (text,))
}

#[pymodule]
fn _glint_lda(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("GlintError", py.get_type::<GlintError>())?;
    m.add("EmptyCorpusError", py.get_type::<EmptyCorpusError>())?;
    m.add_class::<corpus::Corpus>()?;
    m.add_class::<model::Model>()?;
    m.add_class::<ps::PsClient>()?;
    m.add_class::<ps::PsMatrix>()?;
    m.add_class::<ps::PsEmbeddedCluster>()?;
    m.add_function(wrap_pyfunction!(ps::connect, m)?)?;
    m.add_function(wrap_pyfunction!(corpus::_select_vocabulary, m)?)?;
    m.add_class::<cluster::LocalCluster>()?;
    m.add_class::<cluster::ClusterDriver>()?;
    m.add_function(wrap_pyfunction!(cluster::_run_worker, m)?)?;
    Ok(())
}
