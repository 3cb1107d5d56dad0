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

    /// Guesses the format of `path` from its name (and whether it is a directory).
    pub fn detect(path: &Path) -> Format {
        if path.is_dir() {
            return Format::Dir;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let base = name.strip_suffix(".gz").unwrap_or(&name);
        if base.ends_with(".warc") || base.ends_with(".wet") {
            Format::Warc
        } else if base.ends_with(".parquet") || base.ends_with(".pq") {
            Format::Parquet
        } else if base.starts_with("docword.") {
            Format::Uci
        } else if base.ends_with(".tsv") {
            Format::Tsv
        } else {
            Format::Lines
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

/// Decodes consecutive gzip members (like `MultiGzDecoder`) while counting them: WARC files
/// should hold one member per record, and a whole-file member is worth reporting.
pub struct GzMembers<R: BufRead> {
    decoder: Option<GzDecoder<R>>,
    members: Arc<AtomicU64>,
}

impl<R: BufRead> GzMembers<R> {
    pub fn new(inner: R) -> (Self, Arc<AtomicU64>) {
        let members = Arc::new(AtomicU64::new(1));
        let this = GzMembers {
            decoder: Some(GzDecoder::new(inner)),
            members: Arc::clone(&members),
        };
        (this, members)
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
            let n = decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            // End of a member: another one follows unless the input is exhausted.
            let Some(decoder) = self.decoder.take() else {
                return Ok(0);
            };
            let mut inner = decoder.into_inner();
            if inner.fill_buf()?.is_empty() {
                return Ok(0);
            }
            self.members.fetch_add(1, Ordering::Relaxed);
            self.decoder = Some(GzDecoder::new(inner));
        }
    }
}

/// An opened input: the decompressed stream and, for gzip, its member count so far.
pub type Opened = (Box<dyn BufRead + Send>, Option<Arc<AtomicU64>>);

/// Opens `path` for streaming, transparently decompressing gzip (detected by its magic bytes,
/// so misnamed files work), and counting both on-disk and decompressed bytes.
pub fn open_input(path: &Path, counters: &Arc<ByteCounters>) -> Result<Opened, IngestError> {
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
        let (decoder, members) = GzMembers::new(disk);
        (Box::new(decoder), Some(members))
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
    let (reader, members) = open_input(path, counters)?;
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
        assert_eq!(f("crawl.warc.gz"), Format::Warc);
        assert_eq!(f("x.wet"), Format::Warc);
        assert_eq!(f("t.parquet"), Format::Parquet);
        assert_eq!(f("docword.kos.txt"), Format::Uci);
        assert_eq!(f("a.tsv.gz"), Format::Tsv);
        assert_eq!(f("a.txt"), Format::Lines);
    }
}
