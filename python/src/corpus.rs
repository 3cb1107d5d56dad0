//! `Corpus`: a token-id corpus held in memory, made by the `ingest` pipeline (the engine of
//! `glint-lda ingest`) from texts, Parquet, WARC or any input the CLI reads, or read from a corpus
//! directory; `save` writes the directory format back.
//!
//! Ingest runs on files, so `from_texts` streams the texts into a temporary `id<TAB>text` file
//! (tabs and line breaks inside a text become spaces, which every tokenizer splits on anyway)
//! and ingests that into a temporary directory, which is read into memory and removed.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use datasets::{CorpusWriter, ManifestExtras, TermStats, Vocabulary, WriterOptions};
use evaluation::AlignedDocs;
use ingest::{AnalyzerConfig, Format, IngestOptions, ParquetColumns, Preset, VocabularyFilter};
use numpy::PyArray1;
use pyo3::exceptions::{PyIndexError, PyKeyboardInterrupt, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::{detached, glint_err, json_to_py, message, panic_error};

/// A corpus in memory: documents as token ids, the vocabulary and how the corpus was made.
#[derive(Debug, Clone)]
pub(crate) struct CorpusData {
    pub ids: Vec<String>,
    /// Document i is `tokens[offsets[i]..offsets[i + 1]]`.
    pub tokens: Vec<u32>,
    pub offsets: Vec<usize>,
    pub vocab: Vocabulary,
    /// Number of word ids (at least the vocabulary's length).
    pub vocab_size: u32,
    /// The analyzer settings (`ingest::AnalyzerConfig` as JSON), null when unknown.
    pub analyzer: serde_json::Value,
    pub skipped: BTreeMap<String, u64>,
    pub inputs: Vec<serde_json::Value>,
    pub extra: BTreeMap<String, serde_json::Value>,
    /// The directory it was read from, if any.
    pub source: Option<PathBuf>,
}

impl CorpusData {
    /// Reads a corpus directory (from `glint-lda ingest`, `synth` or `Corpus.save`).
    pub fn read(dir: &Path) -> Result<Self, String> {
        let corpus = datasets::Corpus::open(dir).map_err(|e| message(&e))?;
        let vocab = corpus.vocabulary().map_err(|e| message(&e))?;
        let manifest = corpus.manifest().clone();
        let (mut ids, mut tokens, mut offsets) = (Vec::new(), Vec::new(), vec![0usize]);
        for doc in corpus.documents().map_err(|e| message(&e))? {
            let doc = doc.map_err(|e| message(&e))?;
            ids.push(doc.id);
            tokens.extend_from_slice(&doc.tokens);
            offsets.push(tokens.len());
        }
        Ok(CorpusData {
            ids,
            tokens,
            offsets,
            vocab_size: manifest.vocabulary_size.max(vocab.len() as u32),
            vocab,
            analyzer: manifest.analyzer,
            skipped: manifest.skipped,
            inputs: manifest.inputs,
            extra: manifest.extra,
            source: Some(dir.to_path_buf()),
        })
    }

    /// Writes the corpus directory format to `dir` (a previous corpus there is replaced).
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        let mut writer =
            CorpusWriter::create(dir, WriterOptions::default()).map_err(|e| message(&e))?;
        for (d, id) in self.ids.iter().enumerate() {
            writer
                .write_document(id, self.doc(d))
                .map_err(|e| message(&e))?;
        }
        let extras = ManifestExtras {
            skipped: self.skipped.clone(),
            analyzer: self.analyzer.clone(),
            inputs: self.inputs.clone(),
            extra: self.extra.clone(),
        };
        writer
            .finish(&self.vocab, extras)
            .map_err(|e| message(&e))?;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn doc(&self, d: usize) -> &[u32] {
        &self.tokens[self.offsets[d]..self.offsets[d + 1]]
    }

    /// The term of each word id (the id itself where the vocabulary has none).
    pub fn terms(&self) -> Vec<String> {
        (0..self.vocab_size)
            .map(|j| match self.vocab.term(j).filter(|t| !t.is_empty()) {
                Some(t) => t.to_owned(),
                None => j.to_string(),
            })
            .collect()
    }

    /// Display forms by word id (the most frequent surface form of a stemmed term), empty when
    /// the corpus records none.
    pub fn display(&self) -> Vec<String> {
        if !self.vocab.has_surfaces() {
            return Vec::new();
        }
        (0..self.vocab_size)
            .map(|j| {
                self.vocab
                    .display(j)
                    .map_or_else(|| j.to_string(), str::to_owned)
            })
            .collect()
    }

    /// The documents in a model's columns, aligned by term; unknown terms are dropped and counted.
    pub fn aligned(&self, index: &HashMap<&str, u32>) -> AlignedDocs {
        let map: Vec<Option<u32>> = self
            .terms()
            .iter()
            .map(|t| index.get(t.as_str()).copied())
            .collect();
        let mut out = AlignedDocs::default();
        for (d, id) in self.ids.iter().enumerate() {
            let mut kept = Vec::with_capacity(self.doc(d).len());
            for &w in self.doc(d) {
                match map.get(w as usize).copied().flatten() {
                    Some(c) => kept.push(c),
                    None => out.dropped_tokens += 1,
                }
            }
            out.kept_tokens += kept.len() as u64;
            out.ids.push(id.clone());
            out.docs.push(kept);
        }
        out
    }

    /// The corpus split for `threads` sampler threads.
    pub fn loaded(&self, threads: usize) -> lda::Result<lda::LoadedCorpus> {
        let docs = (0..self.len()).map(|d| Ok((self.ids[d].clone(), self.doc(d).to_vec())));
        let mut loaded = lda::LoadedCorpus::from_documents(
            docs,
            self.tokens.len() as u64,
            self.vocab_size,
            self.vocab.terms().to_vec(),
            threads,
        )?;
        loaded.display = self.display();
        Ok(loaded)
    }

    /// `corpus.json` of a model trained on this corpus: where it came from and how it was
    /// analysed (what `glint-lda infer` reads to analyse raw text the same way).
    pub fn info(&self) -> serde_json::Value {
        serde_json::json!({
            "corpus": self.source,
            "analyzer": self.analyzer,
            "vocabulary_filter": self.extra.get("vocabulary_filter"),
        })
    }
}

/// Ingest settings from keyword arguments, as `glint-lda ingest` takes them as flags.
struct IngestSettings {
    analyzer: AnalyzerConfig,
    filter: VocabularyFilter,
    threads: usize,
    strict: bool,
    max_doc_tokens: usize,
    parquet: ParquetColumns,
}

/// Keyword arguments every ingest method accepts.
const ANALYZER_OPTIONS: &[&str] = &[
    "preset",
    "tokenizer",
    "stem",
    "stopwords",
    "stopwords_files",
    "min_len",
    "max_len",
    "max_raw_len",
    "min_count",
    "min_df",
    "max_df",
    "vocab_size",
    "max_doc_tokens",
    "threads",
    "strict",
];

/// `None`, `False` or `"none"` (any case) switch a stage off; a string names its language.
fn language(key: &str, value: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if value.is_none() {
        return Ok(None);
    }
    if let Ok(false) = value.extract::<bool>() {
        return Ok(None);
    }
    let text: String = value.extract().map_err(|_| {
        PyTypeError::new_err(format!("{key} must be a language name, 'none' or None"))
    })?;
    Ok((!text.eq_ignore_ascii_case("none")).then(|| text.to_ascii_lowercase()))
}

/// `value` as a `T`, with `key` named in the error.
fn arg<'py, T: FromPyObjectOwned<'py>>(key: &str, value: &Bound<'py, PyAny>) -> PyResult<T> {
    value.extract::<T>().map_err(|e| {
        let e: PyErr = e.into();
        PyTypeError::new_err(format!("{key}: {e}"))
    })
}

fn positive(key: &str, n: usize) -> PyResult<usize> {
    if n == 0 {
        return Err(PyValueError::new_err(format!("{key} must be at least 1")));
    }
    Ok(n)
}

impl IngestSettings {
    /// Parses `options`; `parquet` also accepts `column` and `id_column`.
    fn parse(options: Option<&Bound<'_, PyDict>>, parquet: bool) -> PyResult<Self> {
        let get = |key: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
            match options {
                Some(d) => Ok(d.get_item(key)?.filter(|v| !v.is_none())),
                None => Ok(None),
            }
        };
        if let Some(d) = options {
            for key in d.keys() {
                let key: String = key.extract()?;
                let known = ANALYZER_OPTIONS.contains(&key.as_str())
                    || (parquet && (key == "column" || key == "id_column"));
                if !known {
                    return Err(PyTypeError::new_err(format!(
                        "unexpected keyword argument '{key}'"
                    )));
                }
            }
        }
        let preset = match get("preset")? {
            None => Preset::Seed,
            Some(v) => match arg::<String>("preset", &v)?.to_ascii_lowercase().as_str() {
                "seed" => Preset::Seed,
                "none" => Preset::None,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "preset must be 'seed' or 'none', got {other:?}"
                    )));
                }
            },
        };
        let mut analyzer = AnalyzerConfig::preset(preset);
        if let Some(v) = get("tokenizer")? {
            analyzer.tokenizer = match arg::<String>("tokenizer", &v)?
                .to_ascii_lowercase()
                .as_str()
            {
                "letters" => ingest::TokenizerKind::Letters,
                "alphanumeric" => ingest::TokenizerKind::Alphanumeric,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "tokenizer must be 'letters' or 'alphanumeric', got {other:?}"
                    )));
                }
            };
        }
        // `None` is a value here (no stemming), so presence is tested, not the value.
        let present = |key: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
            match options {
                Some(d) => d.get_item(key),
                None => Ok(None),
            }
        };
        if let Some(v) = present("stem")? {
            analyzer.stem = language("stem", &v)?;
        }
        if let Some(v) = present("stopwords")? {
            analyzer.stopwords = language("stopwords", &v)?;
        }
        if let Some(v) = get("stopwords_files")? {
            analyzer.stopword_files = match v.extract::<PathBuf>() {
                Ok(one) => vec![one],
                Err(_) => arg("stopwords_files", &v)?,
            };
        }
        if let Some(v) = get("min_len")? {
            analyzer.min_len = arg("min_len", &v)?;
        }
        if let Some(v) = get("max_len")? {
            analyzer.max_len = arg("max_len", &v)?;
        }
        if let Some(v) = get("max_raw_len")? {
            analyzer.max_raw_len = arg("max_raw_len", &v)?;
        }
        let mut filter = VocabularyFilter::default();
        if let Some(v) = get("min_count")? {
            filter.min_count = arg("min_count", &v)?;
        }
        if let Some(v) = get("min_df")? {
            filter.min_docs = arg("min_df", &v)?;
        }
        if let Some(v) = get("max_df")? {
            // scikit-learn's convention: an int is a document count, a float a fraction.
            if v.is_instance_of::<pyo3::types::PyBool>() {
                return Err(PyTypeError::new_err("max_df must be an int or a float"));
            }
            if v.is_instance_of::<pyo3::types::PyInt>() {
                filter.max_docs = Some(arg("max_df", &v)?);
            } else {
                let f: f64 = arg("max_df", &v)?;
                if !(f > 0.0 && f <= 1.0) {
                    return Err(PyValueError::new_err(format!(
                        "max_df as a fraction must be in (0, 1], got {f}"
                    )));
                }
                filter.max_doc_frac = f;
            }
        }
        if let Some(v) = get("vocab_size")? {
            filter.max_size = Some(arg("vocab_size", &v)?);
        }
        let max_doc_tokens = match get("max_doc_tokens")? {
            Some(v) => positive("max_doc_tokens", arg("max_doc_tokens", &v)?)?,
            None => ingest::pipeline::DEFAULT_MAX_DOC_TOKENS,
        };
        let threads = match get("threads")? {
            Some(v) => positive("threads", arg("threads", &v)?)?,
            None => crate::default_threads(None),
        };
        let strict = match get("strict")? {
            Some(v) => arg("strict", &v)?,
            None => false,
        };
        let column = match get("column")? {
            Some(v) => arg("column", &v)?,
            None => "text".to_string(),
        };
        let id = match get("id_column")? {
            Some(v) => Some(arg("id_column", &v)?),
            None => None,
        };
        Ok(IngestSettings {
            analyzer,
            filter,
            threads,
            strict,
            max_doc_tokens,
            parquet: ParquetColumns { text: column, id },
        })
    }
}

/// Runs `work` on a thread of its own with the GIL released, checking for Ctrl-C every 100 ms:
/// on KeyboardInterrupt (or any error a signal handler raises) it sets `cancel`, waits for
/// `work` to stop and returns that error.
fn interruptible<T: Send>(
    py: Python<'_>,
    cancel: &AtomicBool,
    work: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let handle = s.spawn(move || {
            let out = work();
            let _ = tx.send(());
            out
        });
        let mut rx = rx;
        loop {
            // The receiver goes to the detached closure and back (it is Send, not Sync).
            let (waited, back) =
                py.detach(move || (rx.recv_timeout(Duration::from_millis(100)), rx));
            rx = back;
            match waited {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        cancel.store(true, Ordering::Relaxed);
                        let _ = py.detach(|| handle.join());
                        return Err(e);
                    }
                }
                // Done, or the thread panicked (the join below says which).
                _ => break,
            }
        }
        py.detach(|| handle.join())
            .map_err(|p| panic_error(p.as_ref()))
    })
}

/// Ingests `inputs` into a temporary directory and reads the corpus into memory.
fn ingest_into_memory(
    py: Python<'_>,
    inputs: Vec<String>,
    format: Option<Format>,
    settings: IngestSettings,
    describe: Option<serde_json::Value>,
) -> PyResult<CorpusData> {
    let scratch = tempfile::tempdir().map_err(|e| glint_err(&e))?;
    let out = scratch.path().join("corpus");
    let options = IngestOptions {
        inputs,
        format,
        parquet: settings.parquet,
        analyzer: settings.analyzer,
        filter: settings.filter,
        threads: settings.threads,
        strict: settings.strict,
        max_doc_tokens: settings.max_doc_tokens,
        out_dir: out.clone(),
    };
    let progress = ingest::Progress::default();
    let report = interruptible(py, &progress.cancel, || ingest::run(&options, &progress))?;
    match report {
        Ok(_) => {}
        Err(ingest::IngestError::Cancelled) => {
            return Err(PyKeyboardInterrupt::new_err("ingest cancelled"));
        }
        Err(e @ ingest::IngestError::NothingKept(_)) => {
            return Err(crate::EmptyCorpusError::new_err(message(&e)));
        }
        Err(e) => return Err(glint_err(&e)),
    }
    let mut data = detached(py, || CorpusData::read(&out))?;
    data.source = None;
    if let Some(d) = describe {
        data.inputs = vec![d];
    }
    Ok(data)
}

/// One path or a list of paths (str or os.PathLike) as ingest inputs.
fn path_list(paths: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let one = |p: &Bound<'_, PyAny>| -> PyResult<String> {
        let path: PathBuf = p.extract()?;
        path.into_os_string()
            .into_string()
            .map_err(|p| PyValueError::new_err(format!("path is not UTF-8: {p:?}")))
    };
    if paths.is_instance_of::<PyString>() || paths.hasattr("__fspath__")? {
        return Ok(vec![one(paths)?]);
    }
    let mut out = Vec::new();
    for p in paths.try_iter()? {
        out.push(one(&p?)?);
    }
    if out.is_empty() {
        return Err(PyValueError::new_err("no input paths given"));
    }
    Ok(out)
}

fn parse_format(format: Option<&str>) -> PyResult<Option<Format>> {
    Ok(match format.map(str::to_ascii_lowercase).as_deref() {
        None | Some("auto") => None,
        Some("warc") => Some(Format::Warc),
        Some("parquet") => Some(Format::Parquet),
        Some("lines") => Some(Format::Lines),
        Some("tsv") => Some(Format::Tsv),
        Some("dir") => Some(Format::Dir),
        Some("uci") => Some(Format::Uci),
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "format must be auto, warc, parquet, lines, tsv, dir or uci, got {other:?}"
            )));
        }
    })
}

/// A token-id corpus: documents as word ids into a vocabulary, with the analyzer settings that
/// made it. Built by the same pipeline as `glint-lda ingest` (`from_texts`, `from_parquet`,
/// `from_warc`, `ingest`) or read from a corpus directory (`open`); held in memory.
///
/// Documents that analyse to nothing, or that the vocabulary filter empties, are skipped (see
/// `skipped`), so a corpus may hold fewer documents than its input: `ids` names those kept.
#[pyclass(module = "glint_lda._glint_lda", name = "Corpus", frozen)]
pub struct Corpus {
    pub(crate) data: Arc<CorpusData>,
}

impl Corpus {
    fn new(data: CorpusData) -> Self {
        Corpus {
            data: Arc::new(data),
        }
    }

    fn index(&self, i: isize) -> PyResult<usize> {
        let n = self.data.len() as isize;
        let j = if i < 0 { i + n } else { i };
        if !(0..n).contains(&j) {
            return Err(PyIndexError::new_err(format!(
                "document {i} out of range for a corpus of {n} documents"
            )));
        }
        Ok(j as usize)
    }
}

#[pymethods]
impl Corpus {
    /// Analyses `texts` (an iterable of str, one document each) as `glint-lda ingest` would and
    /// builds the vocabulary. `ids` (an iterable of str, default "0", "1", ...) names the
    /// documents. Keyword options mirror the ingest flags: preset ("seed" | "none"), tokenizer
    /// ("letters" | "alphanumeric"), stem (a Snowball language, or None), stopwords ("english"
    /// or None), stopwords_files, min_len, max_len, max_raw_len, min_count, min_df, max_df (an
    /// int: a document count; a float: a fraction), vocab_size, max_doc_tokens, threads, strict.
    #[staticmethod]
    #[pyo3(signature = (texts, ids = None, **options))]
    fn from_texts(
        py: Python<'_>,
        texts: &Bound<'_, PyAny>,
        ids: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Corpus> {
        if texts.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "texts must be an iterable of strings, not one string",
            ));
        }
        let settings = IngestSettings::parse(options, false)?;
        let scratch = tempfile::tempdir().map_err(|e| glint_err(&e))?;
        let path = scratch.path().join("texts.tsv");
        let file = std::fs::File::create(&path).map_err(|e| glint_err(&e))?;
        let mut out = BufWriter::new(file);
        let mut ids = match ids {
            Some(i) if i.is_instance_of::<PyString>() => {
                return Err(PyTypeError::new_err("ids must be an iterable of strings"));
            }
            Some(i) => Some(i.try_iter()?),
            None => None,
        };
        let mut n = 0usize;
        for text in texts.try_iter()? {
            let text = text?;
            let text = text
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err(format!("texts[{n}] is not a str")))?;
            let id = match ids.as_mut() {
                Some(it) => {
                    let id = it.next().ok_or_else(|| {
                        PyValueError::new_err(format!("fewer ids than texts ({n})"))
                    })??;
                    let id: String = id.extract()?;
                    if id.contains(['\t', '\n', '\r']) {
                        return Err(PyValueError::new_err(format!(
                            "id {id:?} holds a tab or a line break"
                        )));
                    }
                    id
                }
                None => n.to_string(),
            };
            let body = text.to_cow()?;
            let body = if body.contains(['\t', '\n', '\r']) {
                body.replace(['\t', '\n', '\r'], " ").into()
            } else {
                body
            };
            writeln!(out, "{id}\t{body}").map_err(|e| glint_err(&e))?;
            n += 1;
        }
        if let Some(it) = ids.as_mut()
            && it.next().is_some()
        {
            return Err(PyValueError::new_err(format!("more ids than texts ({n})")));
        }
        out.flush().map_err(|e| glint_err(&e))?;
        drop(out);
        let input = path.to_string_lossy().into_owned();
        let describe =
            serde_json::json!({"path": "<python texts>", "format": "tsv", "documents": n});
        ingest_into_memory(py, vec![input], Some(Format::Tsv), settings, Some(describe))
            .map(Corpus::new)
    }

    /// Ingests Parquet files (a path or a list of paths; globs allowed): the text is in string
    /// column `column`, document ids in `id_column` (default FILE:ROW). Options as `from_texts`.
    #[staticmethod]
    #[pyo3(signature = (paths, column = "text", id_column = None, **options))]
    fn from_parquet(
        py: Python<'_>,
        paths: &Bound<'_, PyAny>,
        column: &str,
        id_column: Option<String>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Corpus> {
        let mut settings = IngestSettings::parse(options, false)?;
        settings.parquet = ParquetColumns {
            text: column.to_string(),
            id: id_column,
        };
        ingest_into_memory(py, path_list(paths)?, Some(Format::Parquet), settings, None)
            .map(Corpus::new)
    }

    /// Ingests WARC or WET files (a path or a list of paths, plain or gzip; globs allowed): the
    /// text of each response or conversion record. Options as `from_texts`.
    #[staticmethod]
    #[pyo3(signature = (paths, **options))]
    fn from_warc(
        py: Python<'_>,
        paths: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Corpus> {
        let settings = IngestSettings::parse(options, false)?;
        ingest_into_memory(py, path_list(paths)?, Some(Format::Warc), settings, None)
            .map(Corpus::new)
    }

    /// Ingests any inputs `glint-lda ingest` reads (files, directories, globs), with `format`
    /// one of auto (from each name), warc, parquet, lines, tsv, dir, uci. Options as
    /// `from_texts`, plus column and id_column for Parquet.
    #[staticmethod]
    #[pyo3(signature = (inputs, format = None, **options))]
    fn ingest(
        py: Python<'_>,
        inputs: &Bound<'_, PyAny>,
        format: Option<&str>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Corpus> {
        let settings = IngestSettings::parse(options, true)?;
        let format = parse_format(format)?;
        ingest_into_memory(py, path_list(inputs)?, format, settings, None).map(Corpus::new)
    }

    /// Reads a corpus directory (vocab.tsv, docs/*.parquet, manifest.json) into memory.
    #[staticmethod]
    fn open(py: Python<'_>, dir: PathBuf) -> PyResult<Corpus> {
        detached(py, || CorpusData::read(&dir)).map(Corpus::new)
    }

    /// Writes the corpus directory format to `dir` (created; a corpus there is replaced), which
    /// `glint-lda train --corpus DIR` and `Corpus.open` read.
    fn save(&self, py: Python<'_>, dir: PathBuf) -> PyResult<()> {
        let data = Arc::clone(&self.data);
        detached(py, move || data.write(&dir))
    }

    /// Number of documents.
    fn __len__(&self) -> usize {
        self.data.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Corpus(documents={}, tokens={}, vocabulary={})",
            self.data.len(),
            self.data.tokens.len(),
            self.data.vocab_size
        )
    }

    /// Total tokens over all documents.
    #[getter]
    fn num_tokens(&self) -> usize {
        self.data.tokens.len()
    }

    /// The term of each word id (list of str; id j is `vocabulary[j]`).
    #[getter]
    fn vocabulary(&self) -> Vec<String> {
        self.data.terms()
    }

    /// The readable form of each word id: the most frequent surface form of a stemmed term
    /// (the term itself when the corpus records none).
    #[getter]
    fn display_vocabulary(&self) -> Vec<String> {
        let display = self.data.display();
        if display.is_empty() {
            self.data.terms()
        } else {
            display
        }
    }

    /// Occurrences of each word id over the corpus (uint64 array).
    #[getter]
    fn term_counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        let mut counts = vec![0u64; self.data.vocab_size as usize];
        for &w in &self.data.tokens {
            counts[w as usize] += 1;
        }
        PyArray1::from_vec(py, counts)
    }

    /// Number of documents containing each word id (uint64 array).
    #[getter]
    fn document_counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        let mut counts = vec![0u64; self.data.vocab_size as usize];
        let mut seen = vec![usize::MAX; self.data.vocab_size as usize];
        for d in 0..self.data.len() {
            for &w in self.data.doc(d) {
                if seen[w as usize] != d {
                    seen[w as usize] = d;
                    counts[w as usize] += 1;
                }
            }
        }
        PyArray1::from_vec(py, counts)
    }

    /// The documents as word ids of another vocabulary (`terms`, id j = `terms[j]`): terms it
    /// lacks are dropped, and so are the documents left empty. Returns (ids, tokens, offsets),
    /// document i being `tokens[offsets[i]:offsets[i + 1]]` (uint32 and uint64 arrays).
    fn _aligned_to<'py>(
        &self,
        py: Python<'py>,
        terms: Vec<String>,
    ) -> PyResult<AlignedArrays<'py>> {
        let data = Arc::clone(&self.data);
        let (ids, tokens, offsets) = detached(py, move || {
            let index: HashMap<&str, u32> = terms
                .iter()
                .enumerate()
                .map(|(j, t)| (t.as_str(), j as u32))
                .collect();
            let aligned = data.aligned(&index);
            let (mut ids, mut tokens, mut offsets) = (Vec::new(), Vec::new(), vec![0u64]);
            for (id, doc) in aligned.ids.into_iter().zip(aligned.docs) {
                if !doc.is_empty() {
                    ids.push(id);
                    tokens.extend_from_slice(&doc);
                    offsets.push(tokens.len() as u64);
                }
            }
            Ok((ids, tokens, offsets))
        })?;
        Ok((
            ids,
            PyArray1::from_vec(py, tokens),
            PyArray1::from_vec(py, offsets),
        ))
    }

    /// Document ids, in corpus order.
    #[getter]
    fn ids(&self) -> Vec<String> {
        self.data.ids.clone()
    }

    /// The analyzer settings the corpus was made with (a dict, as in manifest.json), or None.
    #[getter]
    fn analyzer<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.data.analyzer)
    }

    /// Documents skipped while ingesting, by reason.
    #[getter]
    fn skipped(&self) -> BTreeMap<String, u64> {
        self.data.skipped.clone()
    }

    /// The word ids of document `i` (uint32 array; negative indices count from the end).
    fn tokens<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let d = self.index(i)?;
        Ok(PyArray1::from_slice(py, self.data.doc(d)))
    }

    /// The terms of document `i`, in order.
    fn terms<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyList>> {
        let d = self.index(i)?;
        let terms = self.data.terms();
        PyList::new(
            py,
            self.data.doc(d).iter().map(|&w| terms[w as usize].as_str()),
        )
    }
}

/// The vocabulary `ingest` would keep from merged term statistics (each term's occurrences and
/// documents over `documents` documents) under the filter options `min_count`, `min_df`,
/// `max_df` and `vocab_size` (as `Corpus.from_texts` takes them): the indices of the kept
/// terms, in vocabulary order. What `glint_lda.spark` builds one vocabulary from partitions with.
#[pyfunction]
#[pyo3(signature = (terms, counts, docs, documents, **options))]
pub(crate) fn _select_vocabulary(
    terms: Vec<String>,
    counts: Vec<u64>,
    docs: Vec<u64>,
    documents: u64,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<usize>> {
    if counts.len() != terms.len() || docs.len() != terms.len() {
        return Err(PyValueError::new_err(format!(
            "{} terms but {} counts and {} document counts",
            terms.len(),
            counts.len(),
            docs.len()
        )));
    }
    if let Some(d) = options {
        for key in d.keys() {
            let key: String = key.extract()?;
            if !matches!(
                key.as_str(),
                "min_count" | "min_df" | "max_df" | "vocab_size"
            ) {
                return Err(PyTypeError::new_err(format!(
                    "unexpected keyword argument '{key}' (a vocabulary filter takes min_count, min_df, max_df and vocab_size)"
                )));
            }
        }
    }
    let filter = IngestSettings::parse(options, false)?.filter;
    let entries: Vec<TermStats> = terms
        .into_iter()
        .zip(counts)
        .zip(docs)
        .map(|((term, count), docs)| TermStats { term, count, docs })
        .collect();
    Ok(ingest::vocabulary::select(&entries, &filter, documents))
}

/// (ids, tokens, offsets) of documents handed to Python.
type AlignedArrays<'py> = (
    Vec<String>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u64>>,
);

/// The data of `value` if it is a `Corpus`.
pub(crate) fn corpus_data(value: &Bound<'_, PyAny>) -> Option<Arc<CorpusData>> {
    value
        .cast::<Corpus>()
        .ok()
        .map(|c| Arc::clone(&c.get().data))
}

/// The `TypeError` for documents that are neither a `Corpus` nor strings.
pub(crate) fn not_a_corpus(what: &str) -> PyErr {
    PyTypeError::new_err(format!("{what} must be a Corpus or a list of str"))
}
