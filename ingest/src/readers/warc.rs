//! WARC 1.0/1.1 (plain or gzip per record, Common Crawl style), read as a stream of records.
//!
//! Documents are `response` records whose HTTP payload is HTML (or plain text), `resource`
//! records of those types, and WET `conversion` records (plain text). `warcinfo`, `request`,
//! `metadata`, `revisit` and non-text or non-2xx responses are ignored by design (counted, not
//! skipped). Malformed input is skipped with its decompressed offset and the reader resynchronises
//! on the next `WARC/` line: bad headers, a missing Content-Length, a record shorter or longer
//! than its Content-Length, truncated gzip.
//!
//! The parser is hand-written over `flate2::MultiGzDecoder` rather than the `warc` crate, which
//! would bring libflate, chrono, uuid and nom for the ~200 lines of framing needed here, and which
//! stops at the first malformed record where this reader counts it and goes on.

use std::io::{self, BufRead, Read};
use std::path::Path;
use std::sync::Arc;

use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

use super::charset::{self, charset_param};
use super::{Body, ByteCounters, DocSink, GzStats, RawDoc, Skip, open_input, stream_error_reason};
use crate::IngestError;

/// Records larger than this are skipped rather than buffered.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;
/// Decoded (de-chunked, decompressed) payloads larger than this are skipped, not truncated.
pub const MAX_PAYLOAD_BYTES: u64 = 64 << 20;
/// Header lines longer than this are treated as garbage.
const MAX_LINE: usize = 64 << 10;
/// A record header (WARC fields up to the blank line) larger than this is skipped: real headers
/// are a few hundred bytes, and an unbounded one would be buffered whole.
pub const MAX_HEADER_BYTES: usize = 256 << 10;
/// ... and so is one with more lines than this.
pub const MAX_HEADER_LINES: usize = 1024;
/// A record's buffer starts at most this large and grows as bytes arrive, so a Content-Length
/// that the input does not back costs nothing.
const MAX_RESERVATION: u64 = 1 << 20;

/// Reads one line (up to and including `\n`), at most `MAX_LINE` bytes.
fn read_line_bounded<R: BufRead + ?Sized>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok(buf.len());
        }
        let room = MAX_LINE - buf.len();
        let chunk = &available[..available.len().min(room)];
        match chunk.iter().position(|&c| c == b'\n') {
            Some(p) => {
                buf.extend_from_slice(&chunk[..=p]);
                r.consume(p + 1);
                return Ok(buf.len());
            }
            None => {
                let n = chunk.len();
                buf.extend_from_slice(chunk);
                r.consume(n);
                if buf.len() >= MAX_LINE {
                    return Ok(buf.len());
                }
            }
        }
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., b'\n' | b'\r'] = l {
        l = rest;
    }
    l
}

fn is_version_line(line: &[u8]) -> bool {
    line.starts_with(b"WARC/1.") || line.starts_with(b"WARC/0.")
}

/// Named header fields of a WARC record or an HTTP message (names lower-cased).
#[derive(Debug, Default)]
struct Headers(Vec<(String, String)>);

impl Headers {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parses `Name: value` lines; continuation lines (leading space or tab) extend the last value.
    fn parse_line(&mut self, line: &[u8]) -> bool {
        let line = String::from_utf8_lossy(trim_eol(line));
        if line.starts_with([' ', '\t']) {
            if let Some(last) = self.0.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
                return true;
            }
            return false;
        }
        match line.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                self.0
                    .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                true
            }
            _ => false,
        }
    }
}

/// State of the record stream.
struct WarcStream<'a> {
    input: Box<dyn BufRead + Send>,
    name: String,
    gzip: bool,
    /// The gzip decoder's findings (damaged members it passed over).
    gz: Option<Arc<GzStats>>,
    /// Decompressed bytes consumed so far: the offsets in messages.
    offset: u64,
    line: Vec<u8>,
    /// A version line already read while checking the end of the previous record.
    pending_version: bool,
    sink: &'a mut dyn DocSink,
}

enum Step {
    Continue,
    End,
}

impl WarcStream<'_> {
    fn line(&mut self) -> io::Result<usize> {
        let n = read_line_bounded(&mut self.input, &mut self.line)?;
        self.offset += n as u64;
        Ok(n)
    }

    /// Counts the damaged gzip members passed over since the last call, one skip each.
    fn report_damaged_members(&mut self) -> Result<(), IngestError> {
        let Some(gz) = &self.gz else {
            return Ok(());
        };
        for (reason, message) in gz.take_damaged() {
            self.sink
                .skip(Skip::new(reason, format!("{}: {message}", self.name)))?;
        }
        Ok(())
    }

    fn skip(
        &mut self,
        reason: &'static str,
        record_at: u64,
        what: &str,
    ) -> Result<(), IngestError> {
        self.sink.skip(Skip::new(
            reason,
            format!("{}: record at offset {record_at}: {what}", self.name),
        ))
    }

    /// Reads lines until a `WARC/` version line (`Ok(true)`) or end of input (`Ok(false)`).
    /// Counts the garbage it passes over as one skip.
    fn resync(&mut self, from: u64, why: Option<&'static str>) -> Result<bool, IngestError> {
        let mut garbage = false;
        loop {
            match self.line() {
                Ok(0) => break,
                Ok(_) if is_version_line(&self.line) => {
                    self.report_garbage(garbage, from, why)?;
                    return Ok(true);
                }
                Ok(_) => garbage |= !trim_eol(&self.line).is_empty(),
                Err(e) => {
                    self.report_garbage(garbage, from, why)?;
                    self.stream_error(&e)?;
                    return Ok(false);
                }
            }
        }
        self.report_garbage(garbage, from, why)?;
        Ok(false)
    }

    fn report_garbage(
        &mut self,
        garbage: bool,
        from: u64,
        why: Option<&'static str>,
    ) -> Result<(), IngestError> {
        match why {
            Some(reason) if garbage => self.skip(
                reason,
                from,
                "bytes that are not a WARC record skipped up to the next record",
            ),
            _ => Ok(()),
        }
    }

    fn stream_error(&mut self, e: &io::Error) -> Result<(), IngestError> {
        let reason = stream_error_reason(e, self.gzip);
        let msg = format!(
            "{}: {e} at decompressed offset {}; rest of file skipped",
            self.name, self.offset
        );
        self.sink.skip(Skip::new(reason, msg))
    }

    fn next_record(&mut self) -> Result<Step, IngestError> {
        // 1. The version line (skipping blank lines between records).
        if !self.pending_version {
            loop {
                let start = self.offset;
                match self.line() {
                    Ok(0) => return Ok(Step::End),
                    Ok(_) if trim_eol(&self.line).is_empty() => continue,
                    Ok(_) if is_version_line(&self.line) => break,
                    Ok(_) => {
                        let found = String::from_utf8_lossy(trim_eol(&self.line))
                            .chars()
                            .take(40)
                            .collect::<String>();
                        self.skip(
                            "malformed-warc-header",
                            start,
                            &format!("expected a WARC/1.x version line, found {found:?}"),
                        )?;
                        if !self.resync(start, None)? {
                            return Ok(Step::End);
                        }
                        break;
                    }
                    Err(e) => {
                        self.stream_error(&e)?;
                        return Ok(Step::End);
                    }
                }
            }
        }
        self.pending_version = false;
        let record_at = self.offset - self.line.len() as u64;

        // 2. Header fields up to the blank line.
        let mut headers = Headers::default();
        let (mut header_bytes, mut header_lines) = (0usize, 0usize);
        loop {
            if header_bytes > MAX_HEADER_BYTES || header_lines > MAX_HEADER_LINES {
                self.skip(
                    "warc-header-too-large",
                    record_at,
                    &format!("header exceeds {MAX_HEADER_BYTES} bytes or {MAX_HEADER_LINES} lines"),
                )?;
                return self.resync_after(record_at);
            }
            let read = self.line();
            if let Ok(n) = read {
                header_bytes += n;
                header_lines += 1;
            }
            match read {
                Ok(0) => {
                    self.skip(
                        "truncated-record",
                        record_at,
                        "input ends inside the record header",
                    )?;
                    return Ok(Step::End);
                }
                Ok(_) if trim_eol(&self.line).is_empty() => break,
                Ok(_) if is_version_line(&self.line) => {
                    self.skip(
                        "malformed-warc-header",
                        record_at,
                        "header not terminated by a blank line",
                    )?;
                    self.pending_version = true;
                    return Ok(Step::Continue);
                }
                Ok(_) => {
                    let line = self.line.clone();
                    if !headers.parse_line(&line) {
                        let found = String::from_utf8_lossy(trim_eol(&line))
                            .chars()
                            .take(60)
                            .collect::<String>();
                        self.skip(
                            "malformed-warc-header",
                            record_at,
                            &format!("bad header line {found:?}"),
                        )?;
                        return self.resync_after(record_at);
                    }
                }
                Err(e) => {
                    self.stream_error(&e)?;
                    return Ok(Step::End);
                }
            }
        }
        let Some(length) = headers
            .get("content-length")
            .and_then(|v| v.parse::<u64>().ok())
        else {
            self.skip(
                "malformed-warc-header",
                record_at,
                "missing or invalid Content-Length",
            )?;
            return self.resync_after(record_at);
        };

        // 3. The block.
        if length > MAX_RECORD_BYTES {
            self.skip(
                "record-too-large",
                record_at,
                &format!("Content-Length {length} exceeds {MAX_RECORD_BYTES}"),
            )?;
            let copied = io::copy(&mut (&mut self.input).take(length), &mut io::sink());
            match copied {
                Ok(n) => self.offset += n,
                Err(e) => {
                    self.stream_error(&e)?;
                    return Ok(Step::End);
                }
            }
            return Ok(Step::Continue);
        }
        let mut block = Vec::with_capacity(length.min(MAX_RESERVATION) as usize);
        match (&mut self.input).take(length).read_to_end(&mut block) {
            Ok(n) => self.offset += n as u64,
            Err(e) => {
                self.stream_error(&e)?;
                return Ok(Step::End);
            }
        }
        if (block.len() as u64) < length {
            self.skip(
                "record-shorter-than-content-length",
                record_at,
                &format!(
                    "Content-Length is {length} but the input ends after {} bytes",
                    block.len()
                ),
            )?;
            return Ok(Step::End);
        }

        // 4. What follows must be blank lines then the next version line (or the end).
        loop {
            let at = self.offset;
            match self.line() {
                Ok(0) => break,
                Ok(_) if trim_eol(&self.line).is_empty() => continue,
                Ok(_) if is_version_line(&self.line) => {
                    self.pending_version = true;
                    break;
                }
                Ok(_) => {
                    self.skip(
                        "content-length-mismatch",
                        record_at,
                        &format!("the record continues past its Content-Length of {length} (unexpected bytes at offset {at})"),
                    )?;
                    self.pending_version = self.resync(at, None)?;
                    return Ok(if self.pending_version {
                        Step::Continue
                    } else {
                        Step::End
                    });
                }
                Err(e) => {
                    // The record itself is complete: use it, then report the stream error.
                    self.record(&headers, block, record_at)?;
                    self.stream_error(&e)?;
                    return Ok(Step::End);
                }
            }
        }
        self.record(&headers, block, record_at)?;
        Ok(Step::Continue)
    }

    fn resync_after(&mut self, record_at: u64) -> Result<Step, IngestError> {
        self.pending_version = self.resync(record_at, None)?;
        Ok(if self.pending_version {
            Step::Continue
        } else {
            Step::End
        })
    }

    /// Turns a complete record into a document, an ignore or a skip.
    fn record(
        &mut self,
        headers: &Headers,
        block: Vec<u8>,
        record_at: u64,
    ) -> Result<(), IngestError> {
        let kind = headers.get("warc-type").unwrap_or("").to_ascii_lowercase();
        let id = headers
            .get("warc-target-uri")
            .or_else(|| headers.get("warc-record-id"))
            .map_or_else(|| format!("{}@{record_at}", self.name), str::to_owned);
        let content_type = headers
            .get("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        match kind.as_str() {
            "response" if content_type.starts_with("application/http") => {
                match parse_http(&block) {
                    Ok((status, http_headers, body_at)) => {
                        if !(200..300).contains(&status) {
                            self.sink.ignore("warc-http-not-2xx");
                            return Ok(());
                        }
                        let payload = match decode_payload(&http_headers, &block[body_at..]) {
                            Ok(p) => p,
                            Err((reason, what)) => return self.skip(reason, record_at, &what),
                        };
                        let ct = http_headers
                            .get("content-type")
                            .unwrap_or("")
                            .to_ascii_lowercase();
                        self.payload(id, &ct, payload, record_at)
                    }
                    Err(what) => self.skip("malformed-http", record_at, &what),
                }
            }
            "response" | "resource" => self.payload(id, &content_type, block, record_at),
            "conversion" => self.payload(id, "text/plain", block, record_at),
            "warcinfo" | "request" | "metadata" | "revisit" | "continuation" => {
                self.sink.ignore(match kind.as_str() {
                    "warcinfo" => "warc-warcinfo",
                    "request" => "warc-request",
                    "metadata" => "warc-metadata",
                    "revisit" => "warc-revisit",
                    _ => "warc-continuation",
                });
                Ok(())
            }
            _ => self.skip(
                "malformed-warc-header",
                record_at,
                &format!("unknown WARC-Type {kind:?}"),
            ),
        }
    }

    fn payload(
        &mut self,
        id: String,
        content_type: &str,
        bytes: Vec<u8>,
        record_at: u64,
    ) -> Result<(), IngestError> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        let sniff_html = media.is_empty() && {
            let start = bytes
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(0);
            bytes.get(start) == Some(&b'<')
        };
        let charset = charset_param(content_type);
        let body = if media == "text/html" || media == "application/xhtml+xml" || sniff_html {
            Body::Html { bytes, charset }
        } else if media == "text/plain" {
            Body::Text(charset::decode(&bytes, charset.as_deref()).0)
        } else {
            self.sink.ignore("warc-not-text");
            return Ok(());
        };
        if body.is_empty() {
            return self.skip("empty", record_at, "empty payload");
        }
        self.sink.document(RawDoc { id, body })
    }
}

/// Splits an HTTP response: status code, headers, start of the body. Accepts a status line
/// without reason phrase (`HTTP/1.0 302`) and bare `\n` line ends.
fn parse_http(block: &[u8]) -> Result<(u16, Headers, usize), String> {
    let mut pos = 0;
    let next_line = |pos: &mut usize| -> Option<&[u8]> {
        if *pos >= block.len() {
            return None;
        }
        let end = block[*pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(block.len(), |p| *pos + p + 1);
        let line = &block[*pos..end];
        *pos = end;
        Some(line)
    };
    let status_line = next_line(&mut pos).ok_or("empty HTTP response")?;
    let status_text = String::from_utf8_lossy(trim_eol(status_line)).into_owned();
    let mut parts = status_text.split_whitespace();
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(format!("bad HTTP status line {status_text:?}"));
    };
    let code: u16 = match (version.starts_with("HTTP/"), code.parse()) {
        (true, Ok(c)) => c,
        _ => return Err(format!("bad HTTP status line {status_text:?}")),
    };
    let mut headers = Headers::default();
    loop {
        let Some(line) = next_line(&mut pos) else {
            // Headers without a body: fine, the payload is empty.
            return Ok((code, headers, block.len()));
        };
        if trim_eol(line).is_empty() {
            return Ok((code, headers, pos));
        }
        if !headers.parse_line(line) {
            return Err(format!(
                "bad HTTP header line {:?}",
                String::from_utf8_lossy(trim_eol(line))
            ));
        }
    }
}

/// Undoes chunked transfer encoding and gzip/deflate/brotli content encoding, as crawlers that
/// store raw traffic leave them in place. Errors carry the skip reason: `payload-too-large` for a
/// payload that decodes past [`MAX_PAYLOAD_BYTES`], `bad-http-payload` otherwise.
fn decode_payload(headers: &Headers, body: &[u8]) -> Result<Vec<u8>, (&'static str, String)> {
    let data = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        dechunk(body).unwrap_or_else(|| body.to_vec())
    } else {
        body.to_vec()
    };
    let limit = MAX_PAYLOAD_BYTES;
    let encoding = headers.get("content-encoding").map(str::to_ascii_lowercase);
    let decoded = match encoding.as_deref() {
        None | Some("" | "identity" | "none") => return Ok(data),
        // Archives such as Common Crawl store decoded payloads but keep the original header:
        // without the gzip magic the body is taken as it is.
        Some("gzip" | "x-gzip") if !data.starts_with(&[0x1f, 0x8b]) => return Ok(data),
        Some("gzip" | "x-gzip") => read_limited(MultiGzDecoder::new(&data[..]), limit),
        Some("deflate") => match read_limited(ZlibDecoder::new(&data[..]), limit) {
            Ok(out) => Ok(out),
            Err(e) if is_too_large(&e) => Err(e),
            // Some servers send raw deflate, some archives already-decoded bodies.
            Err(_) => match read_limited(DeflateDecoder::new(&data[..]), limit) {
                Err(e) if is_too_large(&e) => Err(e),
                other => other.or(Ok(data)),
            },
        },
        Some("br") => read_limited(
            brotli_decompressor::Decompressor::new(&data[..], 64 << 10),
            limit,
        ),
        Some(other) => {
            return Err((
                "bad-http-payload",
                format!("unsupported content encoding {other:?}"),
            ));
        }
    };
    decoded.map_err(|e| {
        let reason = if is_too_large(&e) {
            "payload-too-large"
        } else {
            "bad-http-payload"
        };
        (
            reason,
            format!("content encoding {:?}: {e}", encoding.unwrap_or_default()),
        )
    })
}

/// The error of [`read_limited`] for a payload over its limit.
fn is_too_large(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::FileTooLarge
}

/// Reads a decoder to the end; more than `limit` bytes is an error (a decompression bomb stops
/// there and the payload is skipped, never truncated).
fn read_limited<R: Read>(reader: R, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("decodes to more than {limit} bytes"),
        ));
    }
    Ok(out)
}

/// Decodes `Transfer-Encoding: chunked`; `None` if the body is not actually chunked (some archives
/// keep the header but store the de-chunked body).
fn dechunk(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut pos = 0;
    loop {
        let line_end = body[pos..].iter().position(|&b| b == b'\n')? + pos;
        let size_text = std::str::from_utf8(trim_eol(&body[pos..line_end])).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        pos = line_end + 1;
        if size == 0 {
            return Some(out);
        }
        let end = pos.checked_add(size)?;
        out.extend_from_slice(body.get(pos..end)?);
        pos = end;
        while matches!(body.get(pos), Some(b'\r' | b'\n')) {
            pos += 1;
        }
    }
}

/// Reads every record of one WARC file.
pub fn read(
    path: &Path,
    counters: &Arc<ByteCounters>,
    sink: &mut dyn DocSink,
) -> Result<(), IngestError> {
    let (input, gz) = open_input(path, counters, true)?;
    let mut stream = WarcStream {
        input,
        name: path.display().to_string(),
        gz: gz.clone(),
        gzip: gz.is_some(),
        offset: 0,
        line: Vec::new(),
        pending_version: false,
        sink,
    };
    let mut records = 0u64;
    while let Step::Continue = stream.next_record()? {
        stream.report_damaged_members()?;
        records += 1;
    }
    stream.report_damaged_members()?;
    // Record-at-a-time compression is what the WARC standard asks for: a single member holding
    // many records reads fine here, but tools that seek by record offset cannot use the file.
    if let Some(gz) = gz
        && gz.members.load(std::sync::atomic::Ordering::Relaxed) == 1
        && records > 1
    {
        stream.sink.skip(Skip::new(
            "gzip-not-per-record",
            format!(
                "{}: one gzip member holds all {records} records (WARC wants one member per record); records were read anyway",
                stream.name
            ),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_status_without_reason_and_chunked_body() {
        let (code, headers, at) = parse_http(b"HTTP/1.0 302 \r\nLocation: x\r\n\r\n").unwrap();
        assert_eq!((code, headers.get("location"), at), (302, Some("x"), 30));
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n").unwrap(),
            b"Wikipedia"
        );
        assert!(dechunk(b"<html>").is_none());
        assert!(parse_http(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn content_encodings_and_stale_headers() {
        use std::io::Write;
        let headers = |enc: &str| {
            let mut h = Headers::default();
            h.parse_line(format!("Content-Encoding: {enc}").as_bytes());
            h
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"<p>zipped</p>").unwrap();
        let zipped = gz.finish().unwrap();
        assert_eq!(
            decode_payload(&headers("gzip"), &zipped).unwrap(),
            b"<p>zipped</p>"
        );
        // Header kept, body already decoded (Common Crawl): used as is.
        assert_eq!(
            decode_payload(&headers("gzip"), b"<p>plain</p>").unwrap(),
            b"<p>plain</p>"
        );
        assert_eq!(
            decode_payload(&headers("deflate"), b"<p>plain</p>").unwrap(),
            b"<p>plain</p>"
        );
        assert!(decode_payload(&headers("gzip"), &zipped[..zipped.len() / 2]).is_err());
        assert!(decode_payload(&headers("br"), b"not brotli").is_err());
        assert!(decode_payload(&headers("zstd"), b"x").is_err());
    }
}
