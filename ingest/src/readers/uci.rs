//! The UCI bag-of-words format, as pre-tokenized input: `docword.NAME.txt` (three header lines D,
//! W, NNZ, then `docID wordID count` triples, 1-based, grouped by document) with `vocab.NAME.txt`
//! (one term per line, line i is word i) found beside it by that naming. Gzip variants work.
//!
//! Terms bypass the analyzer (they are already preprocessed); only the vocabulary filters apply.
//! Word order inside a document is lost in this format, so tokens come grouped by term.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    Body, ByteCounters, DocSink, MAX_DOC_TOKENS, RawDoc, Skip, TOO_MANY_TOKENS, open_maybe_gzip,
    stream_error_reason,
};
use crate::IngestError;

/// Largest count accepted in one triple: a word repeated more often in one document is a
/// corrupt line, and expanding it would exhaust memory.
const MAX_COUNT: u32 = 1 << 24;

/// `vocab.NAME.txt` (or `.txt.gz`) beside `docword.NAME.txt[.gz]`.
pub fn vocab_path(docword: &Path) -> Result<PathBuf, IngestError> {
    let name = docword
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".gz").unwrap_or(&name);
    let Some(rest) = stem.strip_prefix("docword.") else {
        return Err(IngestError::Input(format!(
            "{}: UCI input must be named docword.NAME.txt",
            docword.display()
        )));
    };
    let dir = docword.parent().unwrap_or(Path::new("."));
    for candidate in [format!("vocab.{rest}"), format!("vocab.{rest}.gz")] {
        let path = dir.join(&candidate);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(IngestError::Input(format!(
        "{}: UCI vocabulary vocab.{rest} not found beside it",
        docword.display()
    )))
}

fn read_vocab(path: &Path, counters: &Arc<ByteCounters>) -> Result<Vec<String>, IngestError> {
    let (input, _) = open_maybe_gzip(path, counters)?;
    let mut terms = Vec::new();
    for line in input.lines() {
        let line = line.map_err(|e| IngestError::io(path, e))?;
        terms.push(line.trim().to_owned());
    }
    Ok(terms)
}

fn parse_triple(line: &str) -> Option<(u64, usize, u32)> {
    let mut it = line.split_ascii_whitespace();
    let triple = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    it.next().is_none().then_some(triple)
}

/// Reads a UCI `docword` file with its vocabulary.
pub fn read(
    docword: &Path,
    counters: &Arc<ByteCounters>,
    sink: &mut dyn DocSink,
) -> Result<(), IngestError> {
    let vocab = read_vocab(&vocab_path(docword)?, counters)?;
    let (input, gzip) = open_maybe_gzip(docword, counters)?;
    let name = docword.display().to_string();
    let mut header = Vec::with_capacity(3);
    // The document being collected, and its token total (a document over the limit keeps only
    // its total: it is skipped, and must not be buffered).
    let mut current: Option<(u64, Vec<(String, u32)>)> = None;
    let mut current_tokens = 0u64;
    let mut last_doc = 0u64;
    let emit = |doc: u64, terms: Vec<(String, u32)>, tokens: u64, sink: &mut dyn DocSink| {
        if tokens > MAX_DOC_TOKENS {
            return sink.skip(Skip::new(
                TOO_MANY_TOKENS,
                format!(
                    "{name}: document {doc} has {tokens} tokens, over the limit of {MAX_DOC_TOKENS}"
                ),
            ));
        }
        sink.document(RawDoc {
            id: doc.to_string(),
            body: Body::Terms(terms),
        })
    };
    for (i, line) in input.lines().enumerate() {
        let lineno = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                if let Some((doc, terms)) = current.take() {
                    emit(doc, terms, current_tokens, sink)?;
                }
                return sink.skip(Skip::new(
                    stream_error_reason(&e, gzip),
                    format!("{name}:{lineno}: {e}; rest of file skipped"),
                ));
            }
        };
        if header.len() < 3 {
            match line.trim().parse::<u64>() {
                Ok(v) => header.push(v),
                Err(_) => {
                    return sink.skip(Skip::new(
                        "malformed-uci",
                        format!("{name}:{lineno}: expected the D, W, NNZ header, found {line:?}"),
                    ));
                }
            }
            continue;
        }
        let Some((doc, word, count)) = parse_triple(&line) else {
            if !line.trim().is_empty() {
                sink.skip(Skip::new(
                    "malformed-uci",
                    format!("{name}:{lineno}: expected `docID wordID count`, found {line:?}"),
                ))?;
            }
            continue;
        };
        if count == 0 || count > MAX_COUNT {
            sink.skip(Skip::new(
                "malformed-uci",
                format!("{name}:{lineno}: count {count} outside 1..={MAX_COUNT}"),
            ))?;
            continue;
        }
        let Some(term) = word.checked_sub(1).and_then(|w| vocab.get(w)) else {
            sink.skip(Skip::new(
                "malformed-uci",
                format!(
                    "{name}:{lineno}: word id {word} outside the vocabulary of {} terms",
                    vocab.len()
                ),
            ))?;
            continue;
        };
        match &mut current {
            Some((d, terms)) if *d == doc => {
                current_tokens += u64::from(count);
                if current_tokens > MAX_DOC_TOKENS {
                    terms.clear();
                    terms.shrink_to_fit();
                } else {
                    terms.push((term.clone(), count));
                }
            }
            _ => {
                if let Some((d, terms)) = current.take() {
                    emit(d, terms, current_tokens, sink)?;
                }
                current_tokens = u64::from(count);
                // Documents with no triples at all are empty documents of the collection.
                for missing in (last_doc + 1)..doc {
                    sink.skip(Skip::new(
                        "empty",
                        format!("{name}: document {missing} has no words"),
                    ))?;
                }
                last_doc = last_doc.max(doc);
                current = Some((doc, vec![(term.clone(), count)]));
            }
        }
    }
    if let Some((doc, terms)) = current.take() {
        emit(doc, terms, current_tokens, sink)?;
    }
    if let Some(&d) = header.first() {
        for missing in (last_doc + 1)..=d {
            sink.skip(Skip::new(
                "empty",
                format!("{name}: document {missing} has no words"),
            ))?;
        }
    }
    Ok(())
}
