//! Line-oriented text: one document per line (`lines`), or `id<TAB>text` (`tsv`), plain or gzip,
//! from a file or from standard input.

use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::Arc;

use super::{Body, ByteCounters, DocSink, RawDoc, Skip, open_maybe_gzip, stream_error_reason};
use crate::IngestError;

/// Lines (and, in directory inputs, files) longer than this are skipped instead of buffered.
pub const MAX_LINE_BYTES: u64 = 64 << 20;

/// Consumes input up to and including the next newline; returns the bytes consumed.
fn skip_rest_of_line<R: BufRead + ?Sized>(input: &mut R) -> std::io::Result<u64> {
    let mut consumed = 0u64;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(consumed);
        }
        match chunk.iter().position(|&b| b == b'\n') {
            Some(p) => {
                input.consume(p + 1);
                return Ok(consumed + p as u64 + 1);
            }
            None => {
                let n = chunk.len();
                input.consume(n);
                consumed += n as u64;
            }
        }
    }
}

/// Reads `path` line by line. With `tsv`, the text after the first tab is the document and the
/// part before it its id; otherwise the id is `FILE:LINE`.
pub fn read(
    path: &Path,
    tsv: bool,
    counters: &Arc<ByteCounters>,
    sink: &mut dyn DocSink,
) -> Result<(), IngestError> {
    read_with_limit(path, tsv, MAX_LINE_BYTES, counters, sink)
}

/// [`read`] with a configurable line limit.
fn read_with_limit(
    path: &Path,
    tsv: bool,
    max_line: u64,
    counters: &Arc<ByteCounters>,
    sink: &mut dyn DocSink,
) -> Result<(), IngestError> {
    let (input, gzip) = open_maybe_gzip(path, counters)?;
    read_stream(
        input,
        gzip,
        &path.display().to_string(),
        tsv,
        max_line,
        sink,
    )
}

/// Reads standard input (`-`) line by line, as [`read`] does a file (plain text; ids
/// `stdin:LINE`).
pub fn read_stdin(
    tsv: bool,
    counters: &Arc<ByteCounters>,
    sink: &mut dyn DocSink,
) -> Result<(), IngestError> {
    let input = CountingStdin {
        inner: std::io::stdin(),
        counters: Arc::clone(counters),
    };
    let input = std::io::BufReader::with_capacity(256 << 10, input);
    read_stream(Box::new(input), false, "stdin", tsv, MAX_LINE_BYTES, sink)
}

/// Standard input, counted as both disk and uncompressed bytes for the progress display.
struct CountingStdin {
    inner: std::io::Stdin,
    counters: Arc<ByteCounters>,
}

impl Read for CountingStdin {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for c in [&self.counters.disk, &self.counters.uncompressed] {
            c.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(n)
    }
}

fn read_stream(
    mut input: Box<dyn BufRead + Send>,
    gzip: bool,
    name: &str,
    tsv: bool,
    max_line: u64,
    sink: &mut dyn DocSink,
) -> Result<(), IngestError> {
    let mut buf = Vec::new();
    let mut lineno = 0u64;
    let mut offset = 0u64;
    loop {
        buf.clear();
        let n = match (&mut input).take(max_line).read_until(b'\n', &mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) if n as u64 == max_line && buf.last() != Some(&b'\n') => {
                // Not a document but a runaway line: drop it without holding it in memory.
                let rest = skip_rest_of_line(&mut input).unwrap_or(0);
                lineno += 1;
                offset += n as u64 + rest;
                sink.skip(Skip::new(
                    "document-too-large",
                    format!("{name}:{lineno}: line longer than {max_line} bytes"),
                ))?;
                continue;
            }
            Ok(n) => n,
            Err(e) => {
                let reason = stream_error_reason(&e, gzip);
                return sink.skip(Skip::new(
                    reason,
                    format!(
                        "{name}: {e} after line {lineno} (decompressed offset {offset}); rest of file skipped"
                    ),
                ));
            }
        };
        lineno += 1;
        let line_offset = offset;
        offset += n as u64;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(e) => {
                sink.skip(Skip::new(
                    "invalid-utf8",
                    format!(
                        "{name}:{lineno}: invalid UTF-8 at byte {} of the line (offset {line_offset})",
                        e.valid_up_to()
                    ),
                ))?;
                continue;
            }
        };
        let (id, text) = if tsv {
            match text.split_once('\t') {
                Some((id, text)) if !id.is_empty() => (id.to_owned(), text),
                Some((_, text)) => (format!("{name}:{lineno}"), text),
                None => {
                    sink.skip(Skip::new(
                        "malformed-tsv",
                        format!("{name}:{lineno}: no tab between id and text"),
                    ))?;
                    continue;
                }
            }
        } else {
            (format!("{name}:{lineno}"), text)
        };
        if text.trim().is_empty() {
            sink.skip(Skip::new(
                "empty",
                format!("{name}:{lineno}: empty document"),
            ))?;
            continue;
        }
        sink.document(RawDoc {
            id,
            body: Body::Text(text.to_owned()),
        })?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::{RawDoc, Skip};

    #[derive(Default)]
    struct Collect(Vec<String>, Vec<Skip>);

    impl DocSink for Collect {
        fn document(&mut self, doc: RawDoc) -> Result<(), IngestError> {
            self.0.push(doc.id);
            Ok(())
        }
        fn skip(&mut self, skip: Skip) -> Result<(), IngestError> {
            self.1.push(skip);
            Ok(())
        }
        fn ignore(&mut self, _: &'static str) {}
    }

    #[test]
    fn runaway_lines_are_skipped_and_reading_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tsv");
        let long = "w ".repeat(100);
        std::fs::write(&path, format!("a\tshort\nb\t{long}\nc\tafter\n")).unwrap();
        let mut sink = Collect::default();
        read_with_limit(
            &path,
            true,
            64,
            &Arc::new(ByteCounters::default()),
            &mut sink,
        )
        .unwrap();
        assert_eq!(sink.0, ["a", "c"]);
        assert_eq!(sink.1.len(), 1);
        assert_eq!(sink.1[0].reason, "document-too-large");
        assert!(
            sink.1[0].message.contains("x.tsv:2"),
            "{}",
            sink.1[0].message
        );
    }
}
