//! Line-oriented text: one document per line (`lines`), or `id<TAB>text` (`tsv`), plain or gzip.

use std::path::Path;
use std::sync::Arc;

use super::{Body, ByteCounters, DocSink, RawDoc, Skip, open_maybe_gzip, stream_error_reason};
use crate::IngestError;

/// Reads `path` line by line. With `tsv`, the text after the first tab is the document and the
/// part before it its id; otherwise the id is `FILE:LINE`.
pub fn read(
    path: &Path,
    tsv: bool,
    counters: &Arc<ByteCounters>,
    sink: &mut dyn DocSink,
) -> Result<(), IngestError> {
    let (mut input, gzip) = open_maybe_gzip(path, counters)?;
    let name = path.display().to_string();
    let mut buf = Vec::new();
    let mut lineno = 0u64;
    let mut offset = 0u64;
    loop {
        buf.clear();
        let n = match input.read_until(b'\n', &mut buf) {
            Ok(0) => return Ok(()),
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
