//! Input readers: each turns one input (file or directory) into a stream of raw documents and
//! counted skips, pushed into a [`DocSink`].
//!
//! Readers only parse framing (lines, records, row groups) and leave the expensive work — HTML to
//! text, analysis — to the pipeline's workers, so one reader thread can feed several workers.

pub mod charset;
pub mod dir;
pub mod html;
pub mod lines;
pub mod parquet;
pub mod uci;
pub mod warc;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::bufread::GzDecoder;
use serde::{Deserialize, Serialize};

use crate::IngestError;

/// Largest document a reader buffers, in tokens, for formats that count them before analysis
/// (UCI): a larger one is skipped as [`TOO_MANY_TOKENS`] (the pipeline's own per-document cap,
/// [`crate::IngestOptions::max_doc_tokens`], applies after analysis).
pub const MAX_DOC_TOKENS: u64 = crate::pipeline::DEFAULT_MAX_DOC_TOKENS as u64;
pub use crate::pipeline::TOO_MANY_TOKENS;

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Warc,
    Parquet,
    Lines,
    Tsv,
    Dir,
    Uci,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Warc => "warc",
            Format::Parquet => "parquet",
            Format::Lines => "lines",
            Format::Tsv => "tsv",
            Format::Dir => "dir",
            Format::Uci => "uci",
        }
    }

    /// Guesses the format of `path` from its name (and whether it is a directory): `None` for a
    /// name that says nothing this reader knows (`report.pdf`), which is reported rather than
    /// read as lines. Text is `.txt`, `.text`, `.lines` or a name without extension.
    pub fn detect(path: &Path) -> Option<Format> {
        if path.is_dir() {
            return Some(Format::Dir);
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let base = name.strip_suffix(".gz").unwrap_or(&name);
        let extension = base.rsplit_once('.').map(|(_, e)| e);
        if base.starts_with("docword.") {
            return Some(Format::Uci);
        }
        match extension {
            Some("warc" | "wet") => Some(Format::Warc),
            Some("parquet" | "pq") => Some(Format::Parquet),
            Some("tsv") => Some(Format::Tsv),
            Some("txt" | "text" | "lines") | None => Some(Format::Lines),
            Some(_) => None,
        }
    }
}

/// The content of a raw document.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Plain text, to be analyzed.
    Text(String),
    /// An HTML page, to be converted to text (with the charset announced by HTTP, if any).
    Html {
        bytes: Vec<u8>,
        charset: Option<String>,
    },
    /// Pre-tokenized terms with their counts (UCI bag of words): bypasses the analyzer.
    Terms(Vec<(String, u32)>),
}

impl Body {
    /// Size in bytes, for batching.
    pub fn len(&self) -> usize {
        match self {
            Body::Text(t) => t.len(),
            Body::Html { bytes, .. } => bytes.len(),
            Body::Terms(t) => t.iter().map(|(s, _)| s.len() + 4).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A document as read, before analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDoc {
    pub id: String,
    pub body: Body,
}

/// A record or document that could not be used, with a message naming the file and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// Short stable reason, the key in the manifest's `skipped` map.
    pub reason: &'static str,
    pub message: String,
}

impl Skip {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Skip {
        Skip {
            reason,
            message: message.into(),
        }
    }
}

/// Where readers send what they read. Returning an error stops the reader (strict mode, or the
/// pipeline shutting down).
pub trait DocSink {
    fn document(&mut self, doc: RawDoc) -> Result<(), IngestError>;
    fn skip(&mut self, skip: Skip) -> Result<(), IngestError>;
    /// Records that are not documents by design (WARC requests, non-HTML responses, ...).
    fn ignore(&mut self, reason: &'static str);
}

/// Byte counters shared between readers and the progress display.
#[derive(Debug, Default)]
pub struct ByteCounters {
    /// Bytes read from disk (compressed size for gzip inputs).
    pub disk: AtomicU64,
    /// Bytes after decompression: the "uncompressed MB/s" figure.
    pub uncompressed: AtomicU64,
}

/// Counts bytes passing through a reader into one of the shared counters.
pub struct CountingReader<R> {
    inner: R,
    counter: Arc<ByteCounters>,
    disk: bool,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let counter = if self.disk {
            &self.counter.disk
        } else {
            &self.counter.uncompressed
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// What a gzip input met so far: its members, and the damaged ones passed over.
#[derive(Debug, Default)]
pub struct GzStats {
    /// Members started (the first one included).
    pub members: AtomicU64,
    /// Damaged members skipped by a resynchronising reader, as (reason, message), not yet
    /// reported by the format reader.
    damaged: std::sync::Mutex<Vec<(&'static str, String)>>,
}

impl GzStats {
    /// Takes the damage events recorded since the last call.
    pub fn take_damaged(&self) -> Vec<(&'static str, String)> {
        match self.damaged.lock() {
            Ok(mut d) => std::mem::take(&mut *d),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    fn record(&self, reason: &'static str, message: String) {
        match self.damaged.lock() {
            Ok(mut d) => d.push((reason, message)),
            Err(poisoned) => poisoned.into_inner().push((reason, message)),
        }
    }
}

/// A `BufRead` that knows how many bytes were consumed from it: the compressed offsets of
/// damaged members, and the guarantee that a resynchronisation always moves forward.
struct Tracked<R> {
    inner: R,
    consumed: u64,
}

impl<R: BufRead> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tracked<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

/// The gzip magic and the deflate method byte that start every member.
const GZIP_MEMBER_START: [u8; 3] = [0x1f, 0x8b, 0x08];

/// Decodes consecutive gzip members (like `MultiGzDecoder`) while counting them: WARC files
/// should hold one member per record, and a whole-file member is worth reporting.
///
/// With `resync`, a damaged member does not end the stream: the decoder scans forward to the
/// next member start and goes on, recording the damage in [`GzStats`] (per-record gzip, as in
/// `.warc.gz`, then loses only the damaged records). A false member start inside compressed data
/// fails at its header or data and the scan continues past it.
pub struct GzMembers<R: BufRead> {
    decoder: Option<GzDecoder<Tracked<R>>>,
    stats: Arc<GzStats>,
    resync: bool,
    /// Compressed offset at which the current member started.
    member_at: u64,
}

impl<R: BufRead> GzMembers<R> {
    pub fn new(inner: R, resync: bool) -> (Self, Arc<GzStats>) {
        let stats = Arc::new(GzStats::default());
        stats.members.store(1, Ordering::Relaxed);
        let this = GzMembers {
            decoder: Some(GzDecoder::new(Tracked { inner, consumed: 0 })),
            stats: Arc::clone(&stats),
            resync,
            member_at: 0,
        };
        (this, stats)
    }

    /// After a damaged member: consumes bytes up to the next member start. `Ok(false)` at the end
    /// of the input.
    fn seek_next_member(inner: &mut Tracked<R>, failed_at: u64) -> io::Result<bool> {
        if inner.consumed == failed_at {
            // The decoder failed without consuming anything: step over the false start.
            if inner.fill_buf()?.is_empty() {
                return Ok(false);
            }
            inner.consume(1);
        }
        loop {
            let buf = inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(false);
            }
            if let Some(p) = buf.windows(3).position(|w| w == GZIP_MEMBER_START) {
                inner.consume(p);
                return Ok(true);
            }
            // Keep the last two bytes: a member start may straddle two buffer fills. The buffer
            // is refilled only when empty, so consume one byte at a time near the end.
            let keep = buf.len().min(2);
            let n = buf.len() - keep;
            if n == 0 {
                inner.consume(1);
            } else {
                inner.consume(n);
            }
        }
    }
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            let err = match decoder.read(buf) {
                Ok(n) if n > 0 => return Ok(n),
                Ok(_) => None,
                Err(e) if self.resync => Some(e),
                Err(e) => return Err(e),
            };
            let Some(decoder) = self.decoder.take() else {
                return Ok(0);
            };
            let mut inner = decoder.into_inner();
            if let Some(e) = err {
                let reason = stream_error_reason(&e, true);
                let found = Self::seek_next_member(&mut inner, self.member_at)?;
                let what = if found {
                    format!(
                        "resumed at the next member at compressed offset {}",
                        inner.consumed
                    )
                } else {
                    "no member follows".to_owned()
                };
                self.stats.record(
                    reason,
                    format!(
                        "gzip member at compressed offset {}: {e}; {what}",
                        self.member_at
                    ),
                );
                if !found {
                    return Ok(0);
                }
            } else if inner.fill_buf()?.is_empty() {
                // End of a member and of the input.
                return Ok(0);
            }
            self.member_at = inner.consumed;
            self.stats.members.fetch_add(1, Ordering::Relaxed);
            self.decoder = Some(GzDecoder::new(inner));
        }
    }
}

/// An opened input: the decompressed stream and, for gzip, what its decoder met.
pub type Opened = (Box<dyn BufRead + Send>, Option<Arc<GzStats>>);

/// Opens `path` for streaming, transparently decompressing gzip (detected by its magic bytes,
/// so misnamed files work), and counting both on-disk and decompressed bytes. With `resync`, a
/// damaged gzip member is skipped (see [`GzMembers`]) instead of ending the stream.
pub fn open_input(
    path: &Path,
    counters: &Arc<ByteCounters>,
    resync: bool,
) -> Result<Opened, IngestError> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let mut disk = BufReader::with_capacity(
        256 << 10,
        CountingReader {
            inner: file,
            counter: Arc::clone(counters),
            disk: true,
        },
    );
    let magic = disk.fill_buf().map_err(|e| IngestError::io(path, e))?;
    let is_gzip = magic.len() >= 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    let (inner, members): (Box<dyn Read + Send>, _) = if is_gzip {
        // Multi-member: `.warc.gz` is one gzip member per record, and `cat a.gz b.gz` is valid.
        let (decoder, stats) = GzMembers::new(disk, resync);
        (Box::new(decoder), Some(stats))
    } else {
        (Box::new(disk), None)
    };
    let counted = CountingReader {
        inner,
        counter: Arc::clone(counters),
        disk: false,
    };
    Ok((
        Box::new(BufReader::with_capacity(256 << 10, counted)),
        members,
    ))
}

/// [`open_input`] for readers that only need to know whether the input was gzip.
pub fn open_maybe_gzip(
    path: &Path,
    counters: &Arc<ByteCounters>,
) -> Result<(Box<dyn BufRead + Send>, bool), IngestError> {
    let (reader, members) = open_input(path, counters, false)?;
    Ok((reader, members.is_some()))
}

/// Describes an I/O error met mid-stream; truncated gzip shows up as `UnexpectedEof` or
/// `InvalidInput`/`InvalidData` from the decoder.
pub fn stream_error_reason(err: &io::Error, gzip: bool) -> &'static str {
    match err.kind() {
        io::ErrorKind::UnexpectedEof if gzip => "truncated-gzip",
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData if gzip => "corrupt-gzip",
        io::ErrorKind::UnexpectedEof => "truncated-input",
        _ => "read-error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_by_name() {
        let f = |n: &str| Format::detect(Path::new(n));
        assert_eq!(f("crawl.warc.gz"), Some(Format::Warc));
        assert_eq!(f("x.wet"), Some(Format::Warc));
        assert_eq!(f("t.parquet"), Some(Format::Parquet));
        assert_eq!(f("docword.kos.txt"), Some(Format::Uci));
        assert_eq!(f("a.tsv.gz"), Some(Format::Tsv));
        assert_eq!(f("a.txt"), Some(Format::Lines));
        assert_eq!(f("news"), Some(Format::Lines));
        assert_eq!(f("report.pdf"), None);
        assert_eq!(f("photo.jpg.gz"), None);
    }
}
