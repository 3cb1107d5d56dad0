//! The ingest run: readers → analyzer workers → scratch writer (pass one), then vocabulary and
//! remap into the final corpus (pass two).
//!
//! ```text
//!  reader threads ──batches of raw docs──▶ N analyzer workers ──token batches──▶ scratch writer
//!  (inputs in turn)   bounded channel      (own term dictionary)  bounded channel  (segment files
//!                     + byte budget                                                per input, batches
//!                                                                                  re-ordered)
//!  then: merge dictionaries → filter + rank → remap the segments in parallel → corpus parts,
//!        listed in input order → vocab.tsv, manifest.json → swap into --out
//! ```
//!
//! Memory is bounded whatever the input: readers cap what they buffer per record (see
//! [`crate::readers`]); raw batches hold a [`budget::ByteBudget`] from the moment a reader sends
//! them until their tokens are in the scratch file, so the channels and the re-order buffer hold
//! at most [`IN_FLIGHT_BYTES`]; a document is capped at [`IngestOptions::max_doc_tokens`]; each
//! worker's word memo is capped and its term dictionary grows with the distinct terms it met,
//! not with the corpus. Temporary ids are `local_id * workers + worker`, so the scratch files need
//! no shared dictionary.
//!
//! The output is written to a staging directory beside `--out` and swapped in only on success
//! ([`output`]): a failed, interrupted ([`Progress::cancel`]) or empty run leaves an existing
//! corpus as it was and removes its scratch files. Document order follows the inputs, and ids,
//! segments and parts depend only on the data, not on the thread count: the run is reproducible.

mod budget;
mod output;
mod second_pass;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::IngestError;
use crate::analyzer::{Analyzer, AnalyzerConfig};
use crate::dictionary::TermDictionary;
use crate::input::{self, Input};
use crate::readers::parquet::ParquetColumns;
use crate::readers::{self, ByteCounters, DocSink, Format, RawDoc, Skip};
use crate::scratch::ScratchWriter;
use crate::skips::SkipLog;
use crate::vocabulary::VocabularyFilter;
use budget::ByteBudget;
use datasets::Manifest;
use worker::WorkerState;

pub use worker::TOO_MANY_TOKENS;

/// A batch is sent once it holds this many bytes of raw text...
const BATCH_BYTES: usize = 1 << 20;
/// ... or this many documents.
const BATCH_DOCS: usize = 2048;
/// Raw bytes in flight between the readers and the scratch files (one larger batch is admitted
/// alone).
pub const IN_FLIGHT_BYTES: usize = 64 << 20;
/// A scratch segment is closed after this many tokens (at a document boundary): the unit of
/// the parallel second pass (small enough that a few large inputs still balance over threads).
const SEGMENT_TOKENS: u64 = 1 << 20;
/// Default cap of tokens per document: a document longer than this (a book of some 10,000
/// pages) is skipped with a reason.
pub const DEFAULT_MAX_DOC_TOKENS: usize = 4 << 20;
/// Scratch directory inside the staging directory.
const SCRATCH_DIR: &str = ".ingest-scratch";
/// Reason recorded for documents whose terms were all filtered out of the vocabulary.
pub const EMPTIED_BY_FILTER: &str = "empty-after-vocabulary-filter";

/// Everything an ingest run needs.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Files, directories or globs; `-` is standard input (one document per line).
    pub inputs: Vec<String>,
    /// Forces a format; `None` detects it per input.
    pub format: Option<Format>,
    pub parquet: ParquetColumns,
    pub analyzer: AnalyzerConfig,
    pub filter: VocabularyFilter,
    /// Analyzer worker threads (readers and the scratch writer run beside them); also the
    /// second pass's parallelism.
    pub threads: usize,
    /// Fail on the first skipped record instead of counting it.
    pub strict: bool,
    /// Documents with more tokens are skipped (`too-many-tokens`).
    pub max_doc_tokens: usize,
    pub out_dir: PathBuf,
}

impl IngestOptions {
    /// Options with the defaults: detected formats, the seed analyzer, no filter, all cores.
    pub fn new(inputs: Vec<String>, out_dir: impl Into<PathBuf>) -> IngestOptions {
        IngestOptions {
            inputs,
            format: None,
            parquet: ParquetColumns {
                text: "text".into(),
                id: None,
            },
            analyzer: AnalyzerConfig::preset(crate::Preset::Seed),
            filter: VocabularyFilter::default(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            strict: false,
            max_doc_tokens: DEFAULT_MAX_DOC_TOKENS,
            out_dir: out_dir.into(),
        }
    }
}

/// Live counters for a progress display, and the flag that stops a run.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes: Arc<ByteCounters>,
    /// Total size on disk of all inputs (the progress bar's length).
    pub total_disk_bytes: AtomicU64,
    pub docs_read: AtomicU64,
    pub docs_kept: AtomicU64,
    pub tokens: AtomicU64,
    /// Documents written to the final corpus so far (the second pass; its total is `docs_kept`).
    pub remapped: AtomicU64,
    /// 1 while reading, 2 while writing the corpus.
    pub phase: AtomicUsize,
    /// Set (e.g. by a SIGINT handler) to stop the run: it ends with [`IngestError::Cancelled`],
    /// removes its scratch files and leaves `--out` as it was.
    pub cancel: AtomicBool,
}

impl Progress {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
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
    /// Seconds of the first pass (reading, analysis) and of the second (remap, writing).
    pub first_pass_seconds: f64,
    pub second_pass_seconds: f64,
    /// Peak resident memory of the process so far, where the platform reports it (Linux).
    pub peak_rss_bytes: Option<u64>,
    pub manifest: Manifest,
}

struct RawBatch {
    input: usize,
    seq: u64,
    last: bool,
    /// Bytes taken from the budget for this batch.
    charge: usize,
    docs: Vec<RawDoc>,
}

struct TokenBatch {
    input: usize,
    seq: u64,
    last: bool,
    charge: usize,
    docs: Vec<(String, Vec<u32>)>,
}

/// Collects a reader's documents into batches for the workers.
struct BatchingSink<'a> {
    tx: &'a SyncSender<RawBatch>,
    budget: &'a ByteBudget,
    log: &'a SkipLog,
    progress: &'a Progress,
    input: usize,
    seq: u64,
    docs: Vec<RawDoc>,
    bytes: usize,
}

impl BatchingSink<'_> {
    fn stopped(&self) -> bool {
        self.log.aborted() || self.progress.cancelled()
    }

    fn send(&mut self, last: bool) -> Result<(), IngestError> {
        let charge = self.bytes;
        let stop = || self.log.aborted() || self.progress.cancelled();
        if !self.budget.acquire(charge, &stop) {
            return Err(IngestError::Pipeline("run aborted".into()));
        }
        let batch = RawBatch {
            input: self.input,
            seq: self.seq,
            last,
            charge,
            docs: std::mem::take(&mut self.docs),
        };
        self.seq += 1;
        self.bytes = 0;
        self.tx.send(batch).map_err(|_| {
            self.budget.release(charge);
            IngestError::Pipeline("analyzer workers stopped".into())
        })
    }
}

impl DocSink for BatchingSink<'_> {
    fn document(&mut self, doc: RawDoc) -> Result<(), IngestError> {
        if self.stopped() {
            return Err(IngestError::Pipeline("run aborted".into()));
        }
        self.progress.docs_read.fetch_add(1, Ordering::Relaxed);
        self.bytes += doc.body.len() + doc.id.len();
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
    if input.format != Format::Dir && !input.is_stdin() && input.bytes == 0 {
        return sink.skip(Skip::new(
            "empty-input",
            format!("{}: empty input file", input.path.display()),
        ));
    }
    let path = input.path.as_path();
    let result = match input.format {
        _ if input.is_stdin() => {
            readers::lines::read_stdin(input.format == Format::Tsv, counters, sink)
        }
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

/// One scratch segment: a file of documents of one input, in order.
#[derive(Debug, Clone)]
struct Segment {
    input: usize,
    index: usize,
    path: PathBuf,
}

/// Writes token batches to segment files per input, restoring each input's batch order, and
/// gives each batch's bytes back to the budget once written.
struct ScratchStage<'a> {
    dir: &'a Path,
    progress: &'a Progress,
    budget: &'a ByteBudget,
    /// Per open input: the current segment's writer, the next batch expected, the batches that
    /// arrived early.
    open: HashMap<usize, (ScratchWriter, u64, BTreeMap<u64, TokenBatch>)>,
    segments: Vec<Segment>,
}

impl ScratchStage<'_> {
    fn new_segment(&mut self, input: usize) -> Result<ScratchWriter, IngestError> {
        let index = self.segments.iter().filter(|s| s.input == input).count();
        let path = self.dir.join(format!("input-{input:06}-{index:05}.bin"));
        let writer = ScratchWriter::create(&path)?;
        self.segments.push(Segment { input, index, path });
        Ok(writer)
    }

    fn accept(&mut self, batch: TokenBatch) -> Result<(), IngestError> {
        let input = batch.input;
        if !self.open.contains_key(&input) {
            let writer = self.new_segment(input)?;
            self.open.insert(input, (writer, 0, BTreeMap::new()));
        }
        let Some((mut writer, mut next, mut pending)) = self.open.remove(&input) else {
            return Err(IngestError::Pipeline("scratch writer vanished".into()));
        };
        pending.insert(batch.seq, batch);
        let mut finished = false;
        while let Some(batch) = pending.remove(&next) {
            for (id, tokens) in &batch.docs {
                if writer.tokens() >= SEGMENT_TOKENS {
                    let full = std::mem::replace(&mut writer, self.new_segment(input)?);
                    full.finish()?;
                }
                writer.write(id, tokens)?;
                self.progress.docs_kept.fetch_add(1, Ordering::Relaxed);
                self.progress
                    .tokens
                    .fetch_add(tokens.len() as u64, Ordering::Relaxed);
            }
            self.budget.release(batch.charge);
            next += 1;
            finished |= batch.last;
        }
        if finished {
            writer.finish()?;
        } else {
            self.open.insert(input, (writer, next, pending));
        }
        Ok(())
    }

    /// The segments in input order (each input's in its own order).
    fn into_segments(self) -> Vec<Segment> {
        let mut segments = self.segments;
        segments.sort_by_key(|s| (s.input, s.index));
        segments
    }
}

/// Spawns a named thread in `scope` (names show in profilers and panic messages).
pub(super) fn spawn_named<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    f: impl FnOnce() -> T + Send + 'scope,
) -> Result<std::thread::ScopedJoinHandle<'scope, T>, IngestError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn_scoped(scope, f)
        .map_err(|e| IngestError::Pipeline(format!("cannot start a {name} thread: {e}")))
}

fn pipeline_result<T>(r: std::thread::Result<Result<T, IngestError>>) -> Result<T, IngestError> {
    r.map_err(|_| IngestError::Pipeline("a pipeline thread panicked".into()))?
}

/// Peak resident set size of this process (`VmHWM`), on Linux.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs an ingest: reads `options.inputs`, writes the corpus to `options.out_dir`.
pub fn run(options: &IngestOptions, progress: &Progress) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let (inputs, unknown) = input::resolve_reporting(&options.inputs, options.format)?;
    if inputs.is_empty() {
        return Err(IngestError::Input(format!(
            "none of the {} matched file(s) has a known format (e.g. {}); pass --format",
            unknown.len(),
            unknown
                .first()
                .map_or_else(String::new, |p| p.display().to_string())
        )));
    }
    let analyzer = Analyzer::new(options.analyzer.clone())?;
    let frac = options.filter.max_doc_frac;
    if !(frac > 0.0 && frac <= 1.0) {
        return Err(IngestError::Config(format!(
            "max document fraction must be in (0, 1], got {frac}"
        )));
    }
    if options.max_doc_tokens == 0 {
        return Err(IngestError::Config(
            "the token limit per document must be at least 1".into(),
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
    let staging = output::Staging::create(&options.out_dir)?;
    let scratch = staging.dir().join(SCRATCH_DIR);
    std::fs::create_dir_all(&scratch).map_err(|e| IngestError::io(&scratch, e))?;
    let log = SkipLog::new(options.strict);
    for path in &unknown {
        log.skip(Skip::new(
            "unknown-format",
            format!(
                "{}: matched by a glob, but its format cannot be told from the name (not read; pass --format to read it)",
                path.display()
            ),
        ))?;
    }

    let (dicts, segments) = first_pass(
        &inputs, options, &analyzer, workers, &log, progress, &scratch,
    )?;
    if progress.cancelled() {
        return Err(IngestError::Cancelled);
    }
    let first_pass_seconds = started.elapsed().as_secs_f64();
    let mut report = second_pass::run(
        &inputs,
        options,
        dicts,
        segments,
        &log,
        progress,
        staging.dir(),
    )?;
    // The scratch files are only useful inside this run.
    if let Err(e) = std::fs::remove_dir_all(&scratch) {
        tracing::warn!("could not remove {}: {e}", scratch.display());
    }
    if report.docs_kept == 0 {
        return Err(IngestError::NothingKept(nothing_kept_summary(&report)));
    }
    staging.commit()?;
    report.seconds = started.elapsed().as_secs_f64();
    report.first_pass_seconds = first_pass_seconds;
    report.second_pass_seconds = report.seconds - first_pass_seconds;
    report.peak_rss_bytes = peak_rss_bytes();
    Ok(report)
}

/// What went wrong in a run that kept nothing, by skip reason with an example each.
fn nothing_kept_summary(report: &IngestReport) -> String {
    if report.skipped.is_empty() {
        return format!("the {} input(s) held no documents", report.inputs.len());
    }
    let reasons: Vec<String> = report
        .skipped
        .iter()
        .map(|(reason, n)| match report.skip_examples.get(reason) {
            Some(example) => format!("{reason}: {n} (first: {example})"),
            None => format!("{reason}: {n}"),
        })
        .collect();
    format!(
        "all {} document(s) were skipped; {}",
        report.docs_read,
        reasons.join("; ")
    )
}

fn first_pass(
    inputs: &[Input],
    options: &IngestOptions,
    analyzer: &Analyzer,
    workers: usize,
    log: &SkipLog,
    progress: &Progress,
    scratch: &Path,
) -> Result<(Vec<TermDictionary>, Vec<Segment>), IngestError> {
    let readers = inputs.len().clamp(1, workers.div_ceil(2));
    let (raw_tx, raw_rx) = sync_channel::<RawBatch>(2 * workers);
    let raw_rx = Arc::new(Mutex::new(raw_rx));
    let (tok_tx, tok_rx) = sync_channel::<TokenBatch>(2 * workers);
    let next_input = AtomicUsize::new(0);
    let budget = ByteBudget::new(IN_FLIGHT_BYTES);

    std::thread::scope(|s| {
        let mut reader_handles = Vec::new();
        for _ in 0..readers {
            let raw_tx = raw_tx.clone();
            let (next_input, budget) = (&next_input, &budget);
            reader_handles.push(spawn_named(s, "ingest-reader", move || -> Result<(), IngestError> {
                loop {
                    let i = next_input.fetch_add(1, Ordering::SeqCst);
                    let Some(input) = inputs.get(i) else { return Ok(()) };
                    tracing::info!(input = %input.path.display(), format = input.format.name(), "reading");
                    let mut sink = BatchingSink {
                        tx: &raw_tx,
                        budget,
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
            })?);
        }
        drop(raw_tx);

        let mut worker_handles = Vec::new();
        for w in 0..workers {
            let raw_rx = Arc::clone(&raw_rx);
            let tok_tx = tok_tx.clone();
            let analyzer = analyzer.clone();
            let max_doc_tokens = options.max_doc_tokens;
            worker_handles.push(spawn_named(
                s,
                "ingest-analyzer",
                move || -> Result<TermDictionary, IngestError> {
                    let mut state = WorkerState::new(analyzer, max_doc_tokens, w, workers);
                    loop {
                        // The lock is held only while waiting for one batch: batches are coarse.
                        let batch = match raw_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => {
                                return Err(IngestError::Pipeline("worker queue poisoned".into()));
                            }
                        };
                        let Ok(batch) = batch else {
                            return Ok(state.into_dictionary());
                        };
                        if progress.cancelled() {
                            log.request_abort();
                            return Err(IngestError::Cancelled);
                        }
                        let out = state
                            .analyze_batch(batch, log)
                            .inspect_err(|_| log.request_abort())?;
                        if tok_tx.send(out).is_err() {
                            return Err(IngestError::Pipeline("scratch writer stopped".into()));
                        }
                    }
                },
            )?);
        }
        // Only workers may hold the receivers: if they all stop, blocked readers must see the
        // channel close instead of waiting forever.
        drop(raw_rx);
        drop(tok_tx);

        let budget = &budget;
        let writer = spawn_named(
            s,
            "ingest-scratch",
            move || -> Result<Vec<Segment>, IngestError> {
                let mut stage = ScratchStage {
                    dir: scratch,
                    progress,
                    budget,
                    open: HashMap::new(),
                    segments: Vec::new(),
                };
                for batch in tok_rx.iter() {
                    stage.accept(batch).inspect_err(|_| log.request_abort())?;
                }
                Ok(stage.into_segments())
            },
        )?;

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
        let segments = match pipeline_result(writer.join()) {
            Ok(segments) => segments,
            Err(e) => {
                errors.push(e);
                Vec::new()
            }
        };
        if progress.cancelled() {
            return Err(IngestError::Cancelled);
        }
        let root = errors
            .iter()
            .position(|e| !matches!(e, IngestError::Pipeline(_) | IngestError::Cancelled))
            .unwrap_or(0);
        match errors.into_iter().nth(root) {
            Some(e) => Err(e),
            None => Ok((dicts, segments)),
        }
    })
}
