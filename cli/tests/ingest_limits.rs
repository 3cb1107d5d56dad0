//! `glint-lda ingest` on hostile inputs (the "bombs" of issue 11): each is skipped with a counted
//! reason, the good document after it is kept, and the process's peak resident memory stays
//! under a bound far below what the bomb would take if it were buffered. The peak is the
//! binary's own `VmHWM`, reported in `--report-json` (Linux; elsewhere the memory check skips).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::warc_record;

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// Peak RSS allowed for any bomb: the binary, one 64 MiB record or payload at most, the byte
/// budget of the pipeline. Each bomb would take 200 MB to several GB if buffered.
const PEAK_BOUND: u64 = 180 << 20;

fn gzip_member(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A gzip member whose content is `prefix`, then `repeat` repeated `times` times, then `suffix`,
/// streamed through the encoder so the test itself never holds the expanded bytes.
fn gzip_member_repeating(prefix: &[u8], repeat: &[u8], times: usize, suffix: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(prefix).unwrap();
    let chunk = repeat.repeat(1 << 14);
    for _ in 0..times / (1 << 14) {
        gz.write_all(&chunk).unwrap();
    }
    gz.write_all(suffix).unwrap();
    gz.finish().unwrap()
}

fn good_record() -> Vec<u8> {
    let http =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>river valley forest survived</p>";
    warc_record(
        "response",
        "WARC-Target-URI: http://good.example/\r\nContent-Type: application/http; msgtype=response\r\n",
        http,
    )
}

struct Outcome {
    kept: u64,
    skipped: serde_json::Value,
    peak: Option<u64>,
}

fn ingest(tmp: &Path, input: &Path) -> Outcome {
    let report = tmp.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args(["ingest", "--no-progress", "--threads", "2", "--out"])
        .arg(tmp.join("corpus"))
        .arg("--report-json")
        .arg(&report)
        .arg(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    Outcome {
        kept: r["documents_kept"].as_u64().unwrap(),
        skipped: r["skipped"].clone(),
        peak: r["peak_rss_bytes"].as_u64(),
    }
}

fn check(name: &str, o: &Outcome, reason: &str) {
    assert_eq!(
        o.kept, 1,
        "{name}: the good document is kept ({:?})",
        o.skipped
    );
    assert!(
        o.skipped[reason].as_u64().is_some_and(|n| n >= 1),
        "{name}: expected a {reason} skip, got {}",
        o.skipped
    );
    match o.peak {
        Some(peak) => {
            eprintln!("{name}: peak RSS {:.1} MB", peak as f64 / 1e6);
            assert!(
                peak < PEAK_BOUND,
                "{name}: peak RSS {peak} bytes over the bound {PEAK_BOUND}"
            );
        }
        None => eprintln!("{name}: this platform reports no peak RSS; memory not checked"),
    }
}

#[test]
fn a_warc_header_of_200_mb_is_skipped_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("header-bomb.warc.gz");
    let mut file = gzip_member_repeating(
        b"WARC/1.0\r\nWARC-Type: response\r\n",
        b"X-Padding: aaaaaaaaaaaaaaaaaaaa\r\n",
        6 << 20,
        b"Content-Length: 0\r\n\r\n\r\n\r\n",
    );
    file.extend(gzip_member(&good_record()));
    std::fs::write(&path, file).unwrap();
    check(
        "header bomb",
        &ingest(tmp.path(), &path),
        "warc-header-too-large",
    );
}

#[test]
fn a_gzip_payload_bomb_is_skipped_not_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("payload-bomb.warc");
    // 512 MB of zeros behind Content-Encoding: gzip, in about 500 KB.
    let bomb = gzip_member_repeating(b"<p>", &[0u8; 64], 8 << 20, b"</p>");
    let mut http =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n".to_vec();
    http.extend_from_slice(&bomb);
    let mut file = warc_record(
        "response",
        "Content-Type: application/http; msgtype=response\r\n",
        &http,
    );
    file.extend(good_record());
    std::fs::write(&path, file).unwrap();
    check(
        "gzip payload bomb",
        &ingest(tmp.path(), &path),
        "payload-too-large",
    );
}

#[test]
fn content_length_and_chunked_bombs_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    // A chunk size far beyond the body: taken as an unchunked body, bounded by the record.
    let chunked = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFF\r\n<p>x</p>";
    let mut file = warc_record(
        "response",
        "Content-Type: application/http; msgtype=response\r\n",
        chunked,
    );
    file.extend(good_record());
    // A Content-Length of 60 MB that the file does not back: nothing is reserved for it.
    file.extend_from_slice(
        b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: 60000000\r\n\r\nshort",
    );
    let path = tmp.path().join("length-bomb.warc");
    std::fs::write(&path, file).unwrap();
    let o = ingest(tmp.path(), &path);
    assert!(o.kept >= 1, "{:?}", o.skipped);
    check(
        "content-length bomb",
        &Outcome { kept: 1, ..o },
        "record-shorter-than-content-length",
    );
}

#[test]
fn a_uci_document_of_640m_tokens_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut docword = String::from("2\n1\n41\n");
    for _ in 0..40 {
        docword += "1 1 16000000\n";
    }
    docword += "2 1 3\n";
    let path = tmp.path().join("docword.bomb.txt");
    std::fs::write(&path, docword).unwrap();
    std::fs::write(tmp.path().join("vocab.bomb.txt"), "river\n").unwrap();
    check("UCI bomb", &ingest(tmp.path(), &path), "too-many-tokens");
}
