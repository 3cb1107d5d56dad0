//! A directory of text files: each `.txt` (or `.txt.gz`) file below it, recursively and in sorted
//! order, is one document whose id is its path relative to the directory. Other files are
//! counted as ignored (`dir-not-txt`) and logged, not silently passed over.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Body, ByteCounters, DocSink, RawDoc, Skip, open_maybe_gzip, stream_error_reason};
use crate::IngestError;

/// Lists the text files below `root`, sorted, so runs are reproducible.
pub fn text_files(root: &Path) -> Result<Vec<PathBuf>, IngestError> {
    Ok(list(root)?.0)
}

/// The text files below `root` (sorted) and the other files passed over.
fn list(root: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), IngestError> {
    let mut out = Vec::new();
    let mut other = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| IngestError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| IngestError::io(&dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| IngestError::io(&path, e))?;
            if kind.is_dir() {
                stack.push(path);
            } else {
                let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
                if name.ends_with(".txt") || name.ends_with(".txt.gz") {
                    out.push(path);
                } else {
                    other.push(path);
                }
            }
        }
    }
    out.sort();
    other.sort();
    Ok((out, other))
}

/// Reads every text file below `root` as one document.
pub fn read(
    root: &Path,
    counters: &Arc<ByteCounters>,
    sink: &mut dyn DocSink,
) -> Result<(), IngestError> {
    let (files, other) = list(root)?;
    // Not documents by design, but said: a directory of `.md` files should not look empty.
    for path in &other {
        tracing::info!("{}: not a .txt file, passed over", path.display());
        sink.ignore("dir-not-txt");
    }
    for path in files {
        let id = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let (mut input, gzip) = match open_maybe_gzip(&path, counters) {
            Ok(x) => x,
            Err(e) => {
                sink.skip(Skip::new("unreadable-input", e.to_string()))?;
                continue;
            }
        };
        let mut bytes = Vec::new();
        let read = (&mut input)
            .take(super::lines::MAX_LINE_BYTES + 1)
            .read_to_end(&mut bytes);
        if bytes.len() as u64 > super::lines::MAX_LINE_BYTES {
            sink.skip(Skip::new(
                "document-too-large",
                format!(
                    "{}: longer than {} bytes",
                    path.display(),
                    super::lines::MAX_LINE_BYTES
                ),
            ))?;
            continue;
        }
        if let Err(e) = read {
            sink.skip(Skip::new(
                stream_error_reason(&e, gzip),
                format!("{}: {e}", path.display()),
            ))?;
            continue;
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                sink.skip(Skip::new(
                    "invalid-utf8",
                    format!(
                        "{}: invalid UTF-8 at byte offset {}",
                        path.display(),
                        e.utf8_error().valid_up_to()
                    ),
                ))?;
                continue;
            }
        };
        if text.trim().is_empty() {
            sink.skip(Skip::new(
                "empty",
                format!("{}: empty document", path.display()),
            ))?;
            continue;
        }
        sink.document(RawDoc {
            id,
            body: Body::Text(text),
        })?;
    }
    Ok(())
}
