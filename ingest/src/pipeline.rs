//! The ingest run: readers → analyzer workers → scratch writer (pass one), then vocabulary and
//! remap into the final corpus (pass two).
//!
//! ```text
//!  reader threads ──batches of raw docs──▶ N analyzer workers ──token batches──▶ scratch writer
//!  (inputs in turn)   bounded channel      (own term dictionary)  bounded channel  (one file per input,
//!                                                                                   batches re-ordered)
//!  then: merge dictionaries → filter + rank → remap each scratch file, in input order → corpus
//! ```
//!
//! Memory is bounded by the channels (a few batches of ~1 MiB per worker), the re-order buffer
//! (at most the batches in flight), each worker's word memo (capped) and term dictionary
//! (proportional to the distinct terms it met, not to the corpus; a term seen by several workers
//! is held once per worker until the merge). Temporary ids are `local_id * workers + worker`, so
//! the scratch files need no shared dictionary. Document order in the output follows the inputs
//! and is independent of the thread count, and so are the ids: the run is reproducible.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datasets::{CorpusWriter, Manifest, ManifestExtras, WriterOptions, remap_documents};
use serde_json::json;

use crate::IngestError;
use rustc_hash::FxHashMap;

use crate::analyzer::{Analyzer, AnalyzerConfig, Normalizer};
use crate::dictionary::TermDictionary;
use crate::input::{self, Input};
use crate::readers::html;
use crate::readers::parquet::ParquetColumns;
use crate::readers::{self, Body, ByteCounters, DocSink, Format, RawDoc, Skip, charset};
use crate::scratch::{ScratchReader, ScratchWriter};
use crate::skips::SkipLog;
use crate::vocabulary::{self, VocabularyFilter, temp_id};

/// A batch is sent once it holds this many bytes of raw text...
const BATCH_BYTES: usize = 1 << 20;
/// ... or this many documents.
const BATCH_DOCS: usize = 2048;
/// Scratch directory inside the output directory.
const SCRATCH_DIR: &str = ".ingest-scratch";
/// Reason recorded for documents whose terms were all filtered out of the vocabulary.
pub const EMPTIED_BY_FILTER: &str = "empty-after-vocabulary-filter";

/// Everything an ingest run needs.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Files, directories or globs.
    pub inputs: Vec<String>,
    /// Forces a format; `None` detects it per input.
    pub format: Option<Format>,
    pub parquet: ParquetColumns,
    pub analyzer: AnalyzerConfig,
    pub filter: VocabularyFilter,
    /// Analyzer worker threads (readers and the scratch writer run beside them).
    pub threads: usize,
    /// Fail on the first skipped record instead of counting it.
    pub strict: bool,
    pub out_dir: PathBuf,
}

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes: Arc<ByteCounters>,
    /// Total size on disk of all inputs (the progress bar's length).
    pub total_disk_bytes: AtomicU64,
    pub docs_read: AtomicU64,
    pub docs_kept: AtomicU64,
    pub tokens: AtomicU64,
    /// 1 while reading, 2 while writing the corpus.
    pub phase: AtomicUsize,
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct IngestReport {
    pub inputs: Vec<Input>,
    /// Documents seen: kept plus skipped.
    pub docs_read: u64,
    pub docs_kept: u64,
    pub skipped: BTreeMap<String, u64>,
    /// First message of each skip reason.
    pub skip_examples: BTreeMap<String, String>,
    /// Records that are not documents by design (WARC requests, ...).
    pub ignored: BTreeMap<String, u64>,
    pub tokens: u64,
    pub vocabulary_size: u32,
    /// Distinct terms before vocabulary filtering.
    pub terms_seen: u64,
    pub disk_bytes: u64,
    pub uncompressed_bytes: u64,
    pub seconds: f64,
    pub manifest: Manifest,
}

struct RawBatch {
    input: usize,
    seq: u64,
    last: bool,
    docs: Vec<RawDoc>,
}

struct TokenBatch {
    input: usize,
    seq: u64,
    last: bool,
    docs: Vec<(String, Vec<u32>)>,
}

/// Collects a reader's documents into batches for the workers.
struct BatchingSink<'a> {
    tx: &'a SyncSender<RawBatch>,
    log: &'a SkipLog,
    progress: &'a Progress,
    input: usize,
    seq: u64,
    docs: Vec<RawDoc>,
    bytes: usize,
}

impl BatchingSink<'_> {
    fn send(&mut self, last: bool) -> Result<(), IngestError> {
        let batch = RawBatch {
            input: self.input,
            seq: self.seq,
            last,
            docs: std::mem::take(&mut self.docs),
        };
        self.seq += 1;
        self.bytes = 0;
        self.tx
            .send(batch)
            .map_err(|_| IngestError::Pipeline("analyzer workers stopped".into()))
    }
}

impl DocSink for BatchingSink<'_> {
    fn document(&mut self, doc: RawDoc) -> Result<(), IngestError> {
        if self.log.aborted() {
            return Err(IngestError::Pipeline("run aborted".into()));
        }
        self.progress.docs_read.fetch_add(1, Ordering::Relaxed);
        self.bytes += doc.body.len();
        self.docs.push(doc);
        if self.bytes >= BATCH_BYTES || self.docs.len() >= BATCH_DOCS {
            self.send(false)?;
        }
        Ok(())
    }

    fn skip(&mut self, skip: Skip) -> Result<(), IngestError> {
        self.progress.docs_read.fetch_add(1, Ordering::Relaxed);
        self.log.skip(skip)
    }

    fn ignore(&mut self, reason: &'static str) {
        self.log.ignore(reason);
    }
}

fn read_input(
    input: &Input,
    options: &IngestOptions,
    counters: &Arc<ByteCounters>,
    sink: &mut BatchingSink<'_>,
) -> Result<(), IngestError> {
    if input.format != Format::Dir && input.bytes == 0 {
        return sink.skip(Skip::new(
            "empty-input",
            format!("{}: empty input file", input.path.display()),
        ));
    }
    let path = input.path.as_path();
    let result = match input.format {
        Format::Lines => readers::lines::read(path, false, counters, sink),
        Format::Tsv => readers::lines::read(path, true, counters, sink),
        Format::Dir => readers::dir::read(path, counters, sink),
        Format::Parquet => readers::parquet::read(path, &options.parquet, counters, sink),
        Format::Warc => readers::warc::read(path, counters, sink),
        Format::Uci => readers::uci::read(path, counters, sink),
    };
    match result {
        // A file that cannot be opened is one failed input, not a failed run (unless strict).
        Err(e @ (IngestError::Io { .. } | IngestError::Input(_))) => {
            sink.skip(Skip::new("unreadable-input", e.to_string()))
        }
        other => other,
    }
}

/// Marks a word whose term is dropped (stop word, length) in a [`WordMemo`].
const DROPPED_WORD: u32 = u32::MAX;
/// Words a memo holds before it is cleared (bounds memory on web-scale vocabularies).
const MEMO_LIMIT: usize = 1 << 19;

fn id_space_error(workers: usize) -> IngestError {
    IngestError::Config(format!(
        "more than {} distinct terms in one worker: the temporary id space is full (use fewer threads)",
        u32::MAX as usize / workers
    ))
}

/// A worker's analysis state: its analyzer, its term dictionary and a memo from word (before
/// stop words and stemming) straight to local term id, so a repeated word costs one hash lookup.
struct WorkerState {
    analyzer: Analyzer,
    normalizer: Normalizer,
    dict: TermDictionary,
    memo: FxHashMap<Box<str>, u32>,
    worker: usize,
    workers: usize,
}

impl WorkerState {
    fn new(analyzer: Analyzer, worker: usize, workers: usize) -> Self {
        WorkerState {
            normalizer: analyzer.normalizer().clone(),
            analyzer,
            dict: TermDictionary::default(),
            memo: FxHashMap::default(),
            worker,
            workers,
        }
    }

    /// Appends the temporary ids of `text`'s terms to `tokens`, counting them. Fails when the
    /// worker's dictionary outgrows the temporary id space.
    fn analyze(&mut self, text: &str, tokens: &mut Vec<u32>) -> Result<(), IngestError> {
        if self.memo.len() > MEMO_LIMIT {
            self.memo.clear();
        }
        let WorkerState {
            analyzer,
            normalizer,
            dict,
            memo,
            worker,
            workers,
        } = self;
        let mut overflow = false;
        analyzer.for_each_word(text, &mut |word| {
            let local = match memo.get(word) {
                Some(&id) => id,
                None => {
                    let id = normalizer
                        .normalize(word)
                        .map_or(DROPPED_WORD, |term| dict.intern(&term));
                    memo.insert(word.into(), id);
                    id
                }
            };
            if local != DROPPED_WORD {
                match temp_id(local, *worker, *workers) {
                    Some(t) => {
                        dict.count(local, 1);
                        tokens.push(t);
                    }
                    None => overflow = true,
                }
            }
        });
        if overflow {
            return Err(id_space_error(*workers));
        }
        Ok(())
    }

    /// Analyzes one raw batch into tokens with temporary ids.
    fn analyze_batch(&mut self, batch: RawBatch, log: &SkipLog) -> Result<TokenBatch, IngestError> {
        let mut out = Vec::with_capacity(batch.docs.len());
        for doc in batch.docs {
            self.dict.begin_document();
            let mut tokens = Vec::new();
            match &doc.body {
                Body::Text(text) => self.analyze(text, &mut tokens)?,
                Body::Html { bytes, charset: cs } => {
                    let (page, _lossy) = charset::decode(bytes, cs.as_deref());
                    self.analyze(&html::to_text(&page), &mut tokens)?;
                }
                Body::Terms(terms) => {
                    for (term, n) in terms {
                        let local = self.dict.add(term, u64::from(*n));
                        let t = temp_id(local, self.worker, self.workers)
                            .ok_or_else(|| id_space_error(self.workers))?;
                        tokens.extend(std::iter::repeat_n(t, *n as usize));
                    }
                }
            }
            if tokens.is_empty() {
                log.skip(Skip::new(
                    "empty",
                    format!("document {}: no terms after analysis", doc.id),
                ))?;
                continue;
            }
            out.push((doc.id, tokens));
        }
        Ok(TokenBatch {
            input: batch.input,
            seq: batch.seq,
            last: batch.last,
            docs: out,
        })
    }
}

/// Writes token batches to one scratch file per input, restoring each input's batch order.
struct ScratchStage<'a> {
    dir: &'a Path,
    progress: &'a Progress,
    open: HashMap<usize, (ScratchWriter, u64, BTreeMap<u64, TokenBatch>)>,
}

impl ScratchStage<'_> {
    fn path(dir: &Path, input: usize) -> PathBuf {
        dir.join(format!("input-{input:06}.bin"))
    }

    fn accept(&mut self, batch: TokenBatch) -> Result<(), IngestError> {
        let input = batch.input;
        if !self.open.contains_key(&input) {
            let writer = ScratchWriter::create(&Self::path(self.dir, input))?;
            self.open.insert(input, (writer, 0, BTreeMap::new()));
        }
        let Some((writer, next, pending)) = self.open.get_mut(&input) else {
            return Err(IngestError::Pipeline("scratch writer vanished".into()));
        };
        pending.insert(batch.seq, batch);
        let mut finished = false;
        while let Some(batch) = pending.remove(next) {
            for (id, tokens) in &batch.docs {
                writer.write(id, tokens)?;
                self.progress.docs_kept.fetch_add(1, Ordering::Relaxed);
                self.progress
                    .tokens
                    .fetch_add(tokens.len() as u64, Ordering::Relaxed);
            }
            *next += 1;
            finished |= batch.last;
        }
        if finished && let Some((writer, _, _)) = self.open.remove(&input) {
            writer.finish()?;
        }
        Ok(())
    }
}

fn pipeline_result<T>(r: std::thread::Result<Result<T, IngestError>>) -> Result<T, IngestError> {
    r.map_err(|_| IngestError::Pipeline("a pipeline thread panicked".into()))?
}

/// Runs an ingest: reads `options.inputs`, writes the corpus to `options.out_dir`.
pub fn run(options: &IngestOptions, progress: &Progress) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let inputs = input::resolve(&options.inputs, options.format)?;
    let analyzer = Analyzer::new(options.analyzer.clone())?;
    if !(options.filter.max_doc_frac > 0.0 && options.filter.max_doc_frac <= 1.0) {
        return Err(IngestError::Config(
            "max document fraction must be in (0, 1]".into(),
        ));
    }
    let workers = options.threads.max(1);
    if workers > 256 {
        return Err(IngestError::Config("at most 256 threads".into()));
    }
    progress
        .total_disk_bytes
        .store(inputs.iter().map(|i| i.bytes).sum(), Ordering::Relaxed);
    progress.phase.store(1, Ordering::Relaxed);
    let scratch = options.out_dir.join(SCRATCH_DIR);
    std::fs::create_dir_all(&scratch).map_err(|e| IngestError::io(&scratch, e))?;
    let log = SkipLog::new(options.strict);

    let result = first_pass(
        &inputs, options, &analyzer, workers, &log, progress, &scratch,
    )
    .and_then(|dicts| second_pass(&inputs, options, dicts, &log, progress, &scratch, started));
    // The scratch files are only useful inside this run, whatever its outcome.
    if let Err(e) = std::fs::remove_dir_all(&scratch) {
        tracing::warn!("could not remove {}: {e}", scratch.display());
    }
    result
}

fn first_pass(
    inputs: &[Input],
    options: &IngestOptions,
    analyzer: &Analyzer,
    workers: usize,
    log: &SkipLog,
    progress: &Progress,
    scratch: &Path,
) -> Result<Vec<TermDictionary>, IngestError> {
    let readers = inputs.len().clamp(1, workers.div_ceil(2));
    let (raw_tx, raw_rx) = sync_channel::<RawBatch>(2 * workers);
    let raw_rx = Arc::new(Mutex::new(raw_rx));
    let (tok_tx, tok_rx) = sync_channel::<TokenBatch>(2 * workers);
    let next_input = AtomicUsize::new(0);

    std::thread::scope(|s| {
        let mut reader_handles = Vec::new();
        for _ in 0..readers {
            let raw_tx = raw_tx.clone();
            let next_input = &next_input;
            reader_handles.push(s.spawn(move || -> Result<(), IngestError> {
                loop {
                    let i = next_input.fetch_add(1, Ordering::SeqCst);
                    let Some(input) = inputs.get(i) else { return Ok(()) };
                    tracing::info!(input = %input.path.display(), format = input.format.name(), "reading");
                    let mut sink = BatchingSink {
                        tx: &raw_tx,
                        log,
                        progress,
                        input: i,
                        seq: 0,
                        docs: Vec::new(),
                        bytes: 0,
                    };
                    let r = read_input(input, options, &progress.bytes, &mut sink);
                    // Always close the input so the scratch writer can finish its file.
                    let closed = sink.send(true);
                    if let Err(e) = r.and(closed) {
                        log.request_abort();
                        return Err(e);
                    }
                }
            }));
        }
        drop(raw_tx);

        let mut worker_handles = Vec::new();
        for w in 0..workers {
            let raw_rx = Arc::clone(&raw_rx);
            let tok_tx = tok_tx.clone();
            let analyzer = analyzer.clone();
            worker_handles.push(s.spawn(move || -> Result<TermDictionary, IngestError> {
                let mut state = WorkerState::new(analyzer, w, workers);
                loop {
                    // The lock is held only while waiting for one batch: batches are coarse.
                    let batch = match raw_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => {
                            return Err(IngestError::Pipeline("worker queue poisoned".into()));
                        }
                    };
                    let Ok(batch) = batch else {
                        return Ok(state.dict);
                    };
                    let out = state
                        .analyze_batch(batch, log)
                        .inspect_err(|_| log.request_abort())?;
                    if tok_tx.send(out).is_err() {
                        return Err(IngestError::Pipeline("scratch writer stopped".into()));
                    }
                }
            }));
        }
        // Only workers may hold the receivers: if they all stop, blocked readers must see the
        // channel close instead of waiting forever.
        drop(raw_rx);
        drop(tok_tx);

        let writer = s.spawn(move || -> Result<(), IngestError> {
            let mut stage = ScratchStage {
                dir: scratch,
                progress,
                open: HashMap::new(),
            };
            for batch in tok_rx.iter() {
                stage.accept(batch).inspect_err(|_| log.request_abort())?;
            }
            Ok(())
        });

        // Report the root cause: a strict failure or I/O error, not the "stopped" echoes of it.
        let mut errors = Vec::new();
        for h in reader_handles {
            if let Err(e) = pipeline_result(h.join()) {
                errors.push(e);
            }
        }
        let mut dicts = Vec::new();
        for h in worker_handles {
            match pipeline_result(h.join()) {
                Ok(d) => dicts.push(d),
                Err(e) => errors.push(e),
            }
        }
        if let Err(e) = pipeline_result(writer.join()) {
            errors.push(e);
        }
        let root = errors
            .iter()
            .position(|e| !matches!(e, IngestError::Pipeline(_)))
            .unwrap_or(0);
        match errors.into_iter().nth(root) {
            Some(e) => Err(e),
            None => Ok(dicts),
        }
    })
}

fn second_pass(
    inputs: &[Input],
    options: &IngestOptions,
    dicts: Vec<TermDictionary>,
    log: &SkipLog,
    progress: &Progress,
    scratch: &Path,
    started: Instant,
) -> Result<IngestReport, IngestError> {
    progress.phase.store(2, Ordering::Relaxed);
    let first_pass_docs = progress.docs_kept.load(Ordering::Relaxed);
    let built = vocabulary::build(dicts, &options.filter, first_pass_docs);
    tracing::info!(
        terms = built.terms_seen,
        kept = built.vocabulary.len(),
        "vocabulary built"
    );
    let mut writer = CorpusWriter::create(&options.out_dir, WriterOptions::default())?;
    let mut emptied = 0;
    for i in 0..inputs.len() {
        let path = ScratchStage::path(scratch, i);
        if !path.exists() {
            continue; // the input produced no batch file (e.g. unreadable)
        }
        let stats = remap_documents(ScratchReader::open(&path)?, &built.mapping, &mut writer)?;
        emptied += stats.emptied;
    }
    log.add_skipped(EMPTIED_BY_FILTER, emptied);

    let skipped = log.skipped();
    let ignored = log.ignored();
    let docs_kept = writer.documents();
    let tokens = writer.tokens();
    let uncompressed = progress.bytes.uncompressed.load(Ordering::Relaxed);
    let disk = progress.bytes.disk.load(Ordering::Relaxed);
    let mut extra = BTreeMap::new();
    extra.insert(
        "created_by".to_owned(),
        json!(format!("glint-lda ingest {}", env!("CARGO_PKG_VERSION"))),
    );
    extra.insert("vocabulary_filter".to_owned(), json!(options.filter));
    extra.insert("ignored".to_owned(), json!(ignored));
    extra.insert("terms_seen".to_owned(), json!(built.terms_seen));
    extra.insert("uncompressed_bytes".to_owned(), json!(uncompressed));
    let extras = ManifestExtras {
        skipped: skipped.clone(),
        analyzer: json!(options.analyzer),
        inputs: inputs
            .iter()
            .map(|i| json!({"path": i.path.display().to_string(), "format": i.format.name(), "bytes": i.bytes}))
            .collect(),
        extra,
    };
    let manifest = writer.finish(&built.vocabulary, extras)?;
    Ok(IngestReport {
        inputs: inputs.to_vec(),
        docs_read: docs_kept + skipped.values().sum::<u64>(),
        docs_kept,
        skip_examples: log.examples(),
        skipped,
        ignored,
        tokens,
        vocabulary_size: manifest.vocabulary_size,
        terms_seen: built.terms_seen,
        disk_bytes: disk,
        uncompressed_bytes: uncompressed,
        seconds: started.elapsed().as_secs_f64(),
        manifest,
    })
}
