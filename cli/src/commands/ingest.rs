//! `glint-lda ingest`: raw corpora (WARC, Parquet, text, UCI) to a token-id corpus directory.
//! Arguments are validated into `ingest::IngestOptions`; a progress bar polls the pipeline's
//! counters; a summary goes to stdout at the end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use ingest::{
    AnalyzerConfig, Format, IngestOptions, IngestReport, ParquetColumns, Preset, Progress,
    TokenizerKind, VocabularyFilter,
};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    /// Detect from each input's name: *.warc[.gz]/*.wet → warc, *.parquet → parquet,
    /// docword.*.txt → uci, *.tsv[.gz] → tsv, directories → dir, anything else → lines.
    Auto,
    Warc,
    Parquet,
    Lines,
    Tsv,
    Dir,
    Uci,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresetArg {
    /// Split on non-letters, drop tokens over 32 chars, lower case, English stop words,
    /// Snowball English stems of 3-14 chars.
    Seed,
    /// Alphanumeric tokens, lower case, no stop words, no stemming.
    None,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerArg {
    Letters,
    Alphanumeric,
}

/// Turn raw corpora into a glint-lda corpus directory (vocab.tsv, Parquet parts, manifest.json).
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    glint-lda ingest data/sotu-paragraphs.tsv.gz --out corpora/sotu --min-count 5\n  \
    glint-lda ingest 'crawl/*.warc.gz' --out corpora/crawl --threads 8 --max-doc-frac 0.5\n  \
    glint-lda ingest table.parquet --column description --id-column package --out corpora/deb")]
pub struct IngestArgs {
    /// Input files, directories or globs (quote globs to let glint-lda expand them); `-` reads
    /// standard input, one document per line.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Output corpus directory (created; an existing corpus there is replaced).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Input format.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,
    /// Parquet: the string column holding the text.
    #[arg(long, default_value = "text")]
    pub column: String,
    /// Parquet: the string column holding document ids (default: FILE:ROW).
    #[arg(long)]
    pub id_column: Option<String>,
    /// Drop terms occurring fewer times than this over the corpus.
    #[arg(long, default_value_t = 1)]
    pub min_count: u64,
    /// Drop terms occurring in more than this fraction of documents.
    #[arg(long, default_value_t = 1.0)]
    pub max_doc_frac: f64,
    /// Drop terms in fewer than N documents (gensim's no_below).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_df: u64,
    /// Drop terms in more documents than this: a fraction in (0, 1] (`0.5`, gensim's no_above)
    /// or a count (`1000`).
    #[arg(long, value_name = "FRACTION|COUNT")]
    pub max_df: Option<String>,
    /// Keep only the N most frequent terms (after the other filters).
    #[arg(long, value_name = "N", alias = "keep-top")]
    pub vocab_size: Option<usize>,
    /// Skip documents with more tokens than this (after analysis).
    #[arg(long, value_name = "N", default_value_t = ingest::pipeline::DEFAULT_MAX_DOC_TOKENS)]
    pub max_doc_tokens: usize,
    /// Analyzer preset; the options below override its settings.
    #[arg(long, value_enum, default_value_t = PresetArg::Seed)]
    pub preset: PresetArg,
    /// Tokenizer (preset seed: letters; none: alphanumeric).
    #[arg(long, value_enum)]
    pub tokenizer: Option<TokenizerArg>,
    /// Snowball stemmer language (english, german, french, ...) or `none`.
    #[arg(long, value_name = "LANG")]
    pub stem: Option<String>,
    /// Stop-word list (`english`) or `none`.
    #[arg(long, value_name = "LIST")]
    pub stopwords: Option<String>,
    /// A file of further stop words, one per line (`#` comments); may be repeated.
    #[arg(long, value_name = "PATH")]
    pub stopwords_file: Vec<PathBuf>,
    /// Minimum term length in characters, after stemming.
    #[arg(long)]
    pub min_len: Option<usize>,
    /// Maximum term length in characters, after stemming.
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Raw tokens longer than this many bytes are dropped before stemming.
    #[arg(long)]
    pub max_raw_len: Option<usize>,
    /// Analyzer worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Fail on the first skipped record or document instead of counting it.
    #[arg(long)]
    pub strict: bool,
    /// Also write the corpus as text, one document per line of space-separated terms.
    #[arg(long, value_name = "PATH")]
    pub export_terms: Option<PathBuf>,
    /// Write the run's figures as JSON (for scripts and benchmarks).
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
    /// No progress bar (`-q` hides it too; it is never drawn when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

fn none_or(value: &str) -> Option<String> {
    (!value.eq_ignore_ascii_case("none")).then(|| value.to_ascii_lowercase())
}

/// `--max-df`: an integer is a document count, anything else a fraction in (0, 1] (the
/// scikit-learn convention).
fn parse_max_df(value: &str) -> anyhow::Result<(f64, Option<u64>)> {
    if let Ok(count) = value.parse::<u64>() {
        return Ok((1.0, Some(count)));
    }
    match value.parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => Ok((f, None)),
        _ => anyhow::bail!(
            "--max-df must be a fraction in (0, 1] or a whole number of documents, got {value:?}"
        ),
    }
}

/// Validates the arguments into pipeline options.
fn options(args: &IngestArgs) -> anyhow::Result<IngestOptions> {
    let mut analyzer = AnalyzerConfig::preset(match args.preset {
        PresetArg::Seed => Preset::Seed,
        PresetArg::None => Preset::None,
    });
    if let Some(t) = args.tokenizer {
        analyzer.tokenizer = match t {
            TokenizerArg::Letters => TokenizerKind::Letters,
            TokenizerArg::Alphanumeric => TokenizerKind::Alphanumeric,
        };
    }
    if let Some(s) = &args.stem {
        analyzer.stem = none_or(s);
    }
    if let Some(s) = &args.stopwords {
        analyzer.stopwords = none_or(s);
    }
    analyzer.stopword_files = args.stopwords_file.clone();
    analyzer.min_len = args.min_len.unwrap_or(analyzer.min_len);
    analyzer.max_len = args.max_len.unwrap_or(analyzer.max_len);
    analyzer.max_raw_len = args.max_raw_len.unwrap_or(analyzer.max_raw_len);
    let threads = match args.threads {
        Some(0) => anyhow::bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if !(args.max_doc_frac > 0.0 && args.max_doc_frac <= 1.0) {
        anyhow::bail!(
            "--max-doc-frac must be in (0, 1], got {}",
            args.max_doc_frac
        );
    }
    let (max_doc_frac, max_docs) = match args.max_df.as_deref() {
        None => (args.max_doc_frac, None),
        Some(v) => parse_max_df(v)?,
    };
    if args.max_doc_tokens == 0 {
        anyhow::bail!("--max-doc-tokens must be at least 1");
    }
    let format = match args.format {
        FormatArg::Auto => None,
        FormatArg::Warc => Some(Format::Warc),
        FormatArg::Parquet => Some(Format::Parquet),
        FormatArg::Lines => Some(Format::Lines),
        FormatArg::Tsv => Some(Format::Tsv),
        FormatArg::Dir => Some(Format::Dir),
        FormatArg::Uci => Some(Format::Uci),
    };
    Ok(IngestOptions {
        inputs: args.inputs.clone(),
        format,
        parquet: ParquetColumns {
            text: args.column.clone(),
            id: args.id_column.clone(),
        },
        analyzer,
        filter: VocabularyFilter {
            min_count: args.min_count,
            min_docs: args.min_df,
            max_doc_frac,
            max_docs,
            max_size: args.vocab_size,
        },
        threads,
        strict: args.strict,
        max_doc_tokens: args.max_doc_tokens,
        out_dir: args.out.clone(),
    })
}

/// Polls the pipeline's counters into a progress bar until `done`: bytes read on disk in the
/// first pass, then a second bar of documents written out of those kept. Hidden by
/// `--no-progress` (`hidden`) or `-q`; log lines pass through it (`crate::console`).
fn show_progress(progress: &Progress, done: &AtomicBool, hidden: bool) {
    let style = |template: &str| {
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
    };
    /// Rates over less than this are noise.
    const SETTLED: f64 = 0.5;
    let reading = crate::console::bar(
        Some(0),
        style(
            "{spinner} [{elapsed_precise}] {bar:30} {binary_bytes}/{binary_total_bytes} on disk  {wide_msg}",
        ),
        hidden,
    );
    let started = Instant::now();
    let mut writing: Option<(ProgressBar, Instant)> = None;
    while !done.load(Ordering::Relaxed) {
        if progress.phase.load(Ordering::Relaxed) >= 2 {
            let (bar, since) = writing.get_or_insert_with(|| {
                reading.finish_and_clear();
                let bar = crate::console::bar(
                    Some(progress.docs_kept.load(Ordering::Relaxed)),
                    style("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} documents written  {wide_msg}"),
                    hidden,
                );
                (bar, Instant::now())
            });
            let written = progress.remapped.load(Ordering::Relaxed);
            let secs = since.elapsed().as_secs_f64();
            bar.set_length(progress.docs_kept.load(Ordering::Relaxed));
            bar.set_position(written);
            if secs >= SETTLED {
                bar.set_message(format!("{:.0} docs/s", written as f64 / secs));
            }
            bar.tick();
        } else {
            let secs = started.elapsed().as_secs_f64();
            let docs = progress.docs_read.load(Ordering::Relaxed);
            let raw = progress.bytes.uncompressed.load(Ordering::Relaxed);
            reading.set_length(progress.total_disk_bytes.load(Ordering::Relaxed));
            reading.set_position(progress.bytes.disk.load(Ordering::Relaxed));
            reading.set_message(if secs >= SETTLED {
                format!(
                    "{docs} docs ({:.0} docs/s, {:.1} MB/s uncompressed)",
                    docs as f64 / secs,
                    raw as f64 / 1e6 / secs
                )
            } else {
                format!("{docs} docs")
            });
            reading.tick();
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    reading.finish_and_clear();
    if let Some((bar, _)) = writing {
        bar.finish_and_clear();
    }
}

fn summary(report: &IngestReport, out: &std::path::Path) -> String {
    let secs = report.seconds.max(1e-9);
    let join = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let skipped: u64 = report.skipped.values().sum();
    let ignored: u64 = report.ignored.values().sum();
    let mut s = format!(
        "ingested {} input(s): {:.1} MB on disk, {:.1} MB uncompressed, in {:.2} s\n",
        report.inputs.len(),
        report.disk_bytes as f64 / 1e6,
        report.uncompressed_bytes as f64 / 1e6,
        report.seconds
    );
    s += &format!("  documents read   {}\n", report.docs_read);
    s += &format!("  kept             {}\n", report.docs_kept);
    s += &format!("  skipped          {skipped}");
    if skipped > 0 {
        s += &format!("  ({})", join(&report.skipped));
    }
    s += "\n";
    if ignored > 0 {
        s += &format!(
            "  ignored records  {ignored}  ({})\n",
            join(&report.ignored)
        );
    }
    s += &format!("  tokens           {}\n", report.tokens);
    s += &format!(
        "  vocabulary       {} terms (of {} distinct)\n",
        report.vocabulary_size, report.terms_seen
    );
    s += &format!(
        "  throughput       {:.1} MB/s uncompressed, {:.0} docs/s\n",
        report.uncompressed_bytes as f64 / 1e6 / secs,
        report.docs_read as f64 / secs
    );
    for (reason, example) in &report.skip_examples {
        s += &format!("  first {reason}: {example}\n");
    }
    s += &format!("corpus written to {}", out.display());
    s
}

/// A flag set by SIGINT or SIGTERM; a second signal while it is set exits with status 130.
fn interrupt_flag() -> anyhow::Result<std::sync::Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(signal, 130, std::sync::Arc::clone(&flag))
            .context("installing the signal handler")?;
        signal_hook::flag::register(signal, std::sync::Arc::clone(&flag))
            .context("installing the signal handler")?;
    }
    Ok(flag)
}

pub fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let options = options(&args)?;
    let progress = Progress::default();
    let done = AtomicBool::new(false);
    let interrupted = interrupt_flag()?;
    let report = std::thread::scope(|s| {
        let ticker = s.spawn(|| show_progress(&progress, &done, args.no_progress));
        // Ctrl-C or SIGTERM: ask the pipeline to stop, so it removes its scratch files and leaves
        // --out as it was. A second signal ends the process at once.
        let watcher = s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if interrupted.load(Ordering::Relaxed) {
                    progress.cancel.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let report = ingest::run(&options, &progress);
        done.store(true, Ordering::Relaxed);
        let _ = ticker.join();
        let _ = watcher.join();
        report
    });
    let report = match report {
        Err(ingest::IngestError::Cancelled) => {
            eprintln!(
                "interrupted: nothing was written, {} is unchanged",
                args.out.display()
            );
            return Ok(ExitCode::from(130));
        }
        other => other.with_context(|| format!("ingesting into {}", args.out.display()))?,
    };
    // Through `console`: `ingest ... | head -1` closing the pipe is not an error.
    crate::console::print_line(summary(&report, &args.out))?;
    if let Some(path) = &args.export_terms {
        let corpus = datasets::Corpus::open(&args.out)?;
        let lines = datasets::export_terms(&corpus, path)
            .with_context(|| format!("exporting terms to {}", path.display()))?;
        crate::console::print_line(format_args!(
            "exported {lines} documents as text to {}",
            path.display()
        ))?;
    }
    if let Some(path) = &args.report_json {
        let json = serde_json::json!({
            "inputs": report.inputs,
            "documents_read": report.docs_read,
            "documents_kept": report.docs_kept,
            "skipped": report.skipped,
            "ignored": report.ignored,
            "tokens": report.tokens,
            "vocabulary_size": report.vocabulary_size,
            "terms_seen": report.terms_seen,
            "disk_bytes": report.disk_bytes,
            "uncompressed_bytes": report.uncompressed_bytes,
            "seconds": report.seconds,
            "first_pass_seconds": report.first_pass_seconds,
            "second_pass_seconds": report.second_pass_seconds,
            "peak_rss_bytes": report.peak_rss_bytes,
            "threads": options.threads,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
