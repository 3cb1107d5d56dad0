//! The second pass: the merged, filtered vocabulary, then every scratch segment remapped to final
//! ids in parallel, each into its own part files, listed in input order in the manifest (so the
//! corpus is the same whatever the thread count).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use datasets::{CorpusWriter, DROPPED, ManifestExtras, PartSet, WriterOptions, finish_corpus};
use serde_json::json;

use super::{EMPTIED_BY_FILTER, IngestOptions, IngestReport, Progress, Segment};
use crate::IngestError;
use crate::dictionary::TermDictionary;
use crate::input::Input;
use crate::scratch::ScratchReader;
use crate::skips::SkipLog;
use crate::vocabulary;

/// Documents between two checks of the cancel flag.
const CANCEL_CHECK_DOCS: u64 = 1024;

/// Remaps one segment into its own part set; returns it with the number of documents that the
/// vocabulary filter emptied.
fn remap_segment(
    segment: &Segment,
    mapping: &[u32],
    dir: &Path,
    progress: &Progress,
) -> Result<(PartSet, u64), IngestError> {
    let prefix = format!("{:06}-{:05}", segment.input, segment.index);
    let mut writer = CorpusWriter::create_part_set(dir, &prefix, WriterOptions::default())?;
    let mut emptied = 0;
    let mut out = Vec::new();
    for (n, doc) in ScratchReader::open(&segment.path)?.enumerate() {
        let doc = doc?;
        if (n as u64).is_multiple_of(CANCEL_CHECK_DOCS) && progress.cancelled() {
            return Err(IngestError::Cancelled);
        }
        out.clear();
        for &t in &doc.tokens {
            let mapped = *mapping.get(t as usize).ok_or_else(|| {
                IngestError::Pipeline(format!(
                    "{}: token id {t} outside the mapping of {} ids",
                    segment.path.display(),
                    mapping.len()
                ))
            })?;
            if mapped != DROPPED {
                out.push(mapped);
            }
        }
        progress.remapped.fetch_add(1, Ordering::Relaxed);
        if out.is_empty() {
            emptied += 1;
            continue;
        }
        writer.write_document(&doc.id, &out)?;
    }
    Ok((writer.finish_part_set()?, emptied))
}

/// A remapped segment's part set and emptied-document count, or why it failed.
type SegmentResult = Result<(PartSet, u64), IngestError>;

/// Remaps `segments` on `threads` threads; results in segment order.
fn remap_all(
    segments: &[Segment],
    mapping: &[u32],
    dir: &Path,
    progress: &Progress,
    threads: usize,
) -> Result<Vec<(PartSet, u64)>, IngestError> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<SegmentResult>>> =
        Mutex::new((0..segments.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, segments.len().max(1)) {
            let spawned = super::spawn_named(s, "ingest-remap", || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(segment) = segments.get(i) else {
                        return;
                    };
                    let r = remap_segment(segment, mapping, dir, progress);
                    let failed = r.is_err();
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                    if failed {
                        // Stop the others early: the run fails anyway.
                        next.store(segments.len(), Ordering::SeqCst);
                        return;
                    }
                }
            });
            // Fewer threads only slow the pass; with none, the missing segments are reported below.
            if let Err(e) = spawned {
                tracing::warn!("{e}");
            }
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| IngestError::Pipeline("a remap thread panicked".into()))?;
    let mut out = Vec::with_capacity(segments.len());
    for r in results {
        match r {
            Some(r) => out.push(r?),
            None => return Err(IngestError::Pipeline("a segment was not remapped".into())),
        }
    }
    Ok(out)
}

pub(super) fn run(
    inputs: &[Input],
    options: &IngestOptions,
    dicts: Vec<TermDictionary>,
    segments: Vec<Segment>,
    log: &SkipLog,
    progress: &Progress,
    dir: &Path,
) -> Result<IngestReport, IngestError> {
    progress.phase.store(2, Ordering::Relaxed);
    let first_pass_docs = progress.docs_kept.load(Ordering::Relaxed);
    let built = vocabulary::build(dicts, &options.filter, first_pass_docs);
    tracing::info!(
        terms = built.terms_seen,
        kept = built.vocabulary.len(),
        "vocabulary built"
    );
    let remapped = remap_all(
        &segments,
        &built.mapping,
        dir,
        progress,
        options.threads.max(1),
    )?;
    let emptied: u64 = remapped.iter().map(|(_, e)| e).sum();
    let sets: Vec<PartSet> = remapped.into_iter().map(|(set, _)| set).collect();
    log.add_skipped(EMPTIED_BY_FILTER, emptied);

    let skipped = log.skipped();
    let ignored = log.ignored();
    let docs_kept: u64 = sets.iter().map(|s| s.documents).sum();
    let tokens: u64 = sets.iter().map(|s| s.tokens).sum();
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
    extra.insert("max_doc_tokens".to_owned(), json!(options.max_doc_tokens));
    let extras = ManifestExtras {
        skipped: skipped.clone(),
        analyzer: json!(options.analyzer),
        inputs: inputs
            .iter()
            .map(|i| json!({"path": i.path.display().to_string(), "format": i.format.name(), "bytes": i.bytes}))
            .collect(),
        extra,
    };
    let manifest = if docs_kept > 0 {
        finish_corpus(dir, sets, &built.vocabulary, extras)?
    } else {
        // Nothing to write: the caller reports it and keeps any previous corpus.
        datasets::Manifest {
            format_version: datasets::FORMAT_VERSION,
            documents: 0,
            tokens: 0,
            vocabulary_size: 0,
            skipped: extras.skipped,
            analyzer: extras.analyzer,
            inputs: extras.inputs,
            parts: Vec::new(),
            extra: extras.extra,
        }
    };
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
        seconds: 0.0,
        first_pass_seconds: 0.0,
        second_pass_seconds: 0.0,
        peak_rss_bytes: None,
        manifest,
    })
}
