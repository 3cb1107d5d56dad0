//! Splits long `id<TAB>text` documents into paragraph-sized documents: the generator of the
//! committed quickstart corpus `data/sotu-paragraphs.tsv.gz`.
//!
//! The shared State of the Union file has its newlines collapsed, so paragraphs are rebuilt from
//! sentences: consecutive sentences are joined until a chunk reaches `target_words` words. The
//! output is deterministic (fixed gzip level, zero gzip mtime), so regenerating it gives the same bytes.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};

use crate::DatasetsError;

/// Counts from a split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SplitStats {
    pub documents: u64,
    pub paragraphs: u64,
}

/// Splits `text` at sentence ends (`.`, `?`, `!` followed by a space) into chunks of at least
/// `target_words` words; a short tail joins the previous chunk.
pub fn split_text(text: &str, target_words: usize) -> Vec<String> {
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut words = 0usize;
    for word in text.split_whitespace() {
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
        words += 1;
        let sentence_end = word.ends_with(['.', '?', '!']) || word.ends_with(".\"");
        if sentence_end && words >= target_words {
            chunks.push(std::mem::take(&mut current));
            words = 0;
        }
    }
    if !current.is_empty() {
        match chunks.last_mut() {
            Some(last) if words < target_words / 2 => {
                last.push(' ');
                last.push_str(&current);
            }
            _ => chunks.push(current),
        }
    }
    chunks
}

/// Reads `input` (`id<TAB>text`, gzip or plain) and writes `output` (gzip) with one line per
/// paragraph, ids `ORIGINAL-pNNN`.
pub fn split_tsv_file(
    input: &Path,
    output: &Path,
    target_words: usize,
) -> Result<SplitStats, DatasetsError> {
    let file = File::open(input).map_err(|e| DatasetsError::io(input, e))?;
    let reader: Box<dyn Read> = if input.extension().is_some_and(|e| e == "gz") {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let out = File::create(output).map_err(|e| DatasetsError::io(output, e))?;
    let mut out = BufWriter::new(GzBuilder::new().mtime(0).write(out, Compression::best()));
    let mut stats = SplitStats::default();
    for (lineno, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| DatasetsError::io(input, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let Some((id, text)) = line.split_once('\t') else {
            return Err(DatasetsError::format(
                input,
                format!("line {}: expected id<TAB>text", lineno + 1),
            ));
        };
        stats.documents += 1;
        for (i, chunk) in split_text(text, target_words).iter().enumerate() {
            writeln!(out, "{id}-p{:03}\t{chunk}", i + 1)
                .map_err(|e| DatasetsError::io(output, e))?;
            stats.paragraphs += 1;
        }
    }
    let gz = out
        .into_inner()
        .map_err(|e| DatasetsError::io(output, e.into_error()))?;
    gz.finish().map_err(|e| DatasetsError::io(output, e))?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_sentence_ends_and_keeps_every_word() {
        let text = "One two three. Four five six seven. Eight nine! Ten.";
        let chunks = split_text(text, 4);
        assert_eq!(
            chunks,
            ["One two three. Four five six seven.", "Eight nine! Ten."]
        );
        let joined = chunks.join(" ");
        assert_eq!(joined, text);
    }

    #[test]
    fn short_tail_joins_previous_chunk() {
        let chunks = split_text("a b c d. e", 4);
        assert_eq!(chunks, ["a b c d. e"]);
    }
}
