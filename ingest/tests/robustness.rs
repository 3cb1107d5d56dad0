//! No input panics a reader: random corruptions of a valid WARC (plain and gzip), arbitrary
//! bytes as HTML, TSV and UCI input. Every outcome must be documents, counted skips or a clean
//! error.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail loudly on purpose

use std::io::Write;
use std::sync::Arc;

use ingest::IngestError;
use ingest::readers::{self, ByteCounters, DocSink, RawDoc, Skip};
use proptest::prelude::*;

#[derive(Default)]
struct Collect {
    docs: Vec<RawDoc>,
    skips: Vec<Skip>,
}

impl DocSink for Collect {
    fn document(&mut self, doc: RawDoc) -> Result<(), IngestError> {
        self.docs.push(doc);
        Ok(())
    }
    fn skip(&mut self, skip: Skip) -> Result<(), IngestError> {
        self.skips.push(skip);
        Ok(())
    }
    fn ignore(&mut self, _: &'static str) {}
}

fn valid_warc() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..4 {
        let html = format!("<p>page {i:03} text</p>");
        let body = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n\
             {:x}\r\n{html}\r\n0\r\n\r\n",
            html.len()
        );
        write!(
            out,
            "WARC/1.0\r\nWARC-Type: response\r\nContent-Type: application/http; msgtype=response\r\n\
             WARC-Target-URI: http://x/{i}\r\nContent-Length: {}\r\n\r\n{body}\r\n\r\n",
            body.len()
        )
        .unwrap();
    }
    out
}

/// Gzip in two members, split mid-record, to exercise member boundaries too.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (a, b) = data.split_at(data.len() / 2);
    for part in [a, b] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(part).unwrap();
        out.extend(gz.finish().unwrap());
    }
    out
}

fn read_warc(bytes: &[u8]) -> Collect {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.warc");
    std::fs::write(&path, bytes).unwrap();
    let mut sink = Collect::default();
    readers::warc::read(&path, &Arc::new(ByteCounters::default()), &mut sink).unwrap();
    sink
}

#[test]
fn valid_warc_gives_every_page() {
    let sink = read_warc(&valid_warc());
    assert_eq!(sink.docs.len(), 4);
    assert!(sink.skips.is_empty(), "{:?}", sink.skips);
    match &sink.docs[0].body {
        readers::Body::Html { bytes, .. } => assert_eq!(bytes, b"<p>page 000 text</p>"),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn corrupted_warc_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        compress in any::<bool>(),
    ) {
        let mut data = valid_warc();
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        let cut = cut.index(data.len() + 1);
        data.truncate(cut);
        let bytes = if compress { gzip(&data) } else { data };
        let sink = read_warc(&bytes);
        prop_assert!(sink.docs.len() <= 4 + 8);
        for skip in &sink.skips {
            prop_assert!(skip.message.contains("x.warc"), "{}", skip.message);
        }
    }

    #[test]
    fn corrupted_gzip_never_panics(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = gzip(&valid_warc());
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = read_warc(&bytes);
    }

    #[test]
    fn arbitrary_html_never_panics(s in ".{0,300}", tagged in "(<[a-z/!?]{0,8}[^>]{0,10}>?|&#?[a-zA-Z0-9]{0,8};?|[a-z ]{0,10}){0,30}") {
        let _ = readers::html::to_text(&s);
        let _ = readers::html::to_text(&tagged);
    }

    #[test]
    fn arbitrary_text_files_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().unwrap();
        let counters = Arc::new(ByteCounters::default());
        let tsv = dir.path().join("a.tsv");
        std::fs::write(&tsv, &bytes).unwrap();
        readers::lines::read(&tsv, true, &counters, &mut Collect::default()).unwrap();
        let docword = dir.path().join("docword.a.txt");
        std::fs::write(&docword, &bytes).unwrap();
        std::fs::write(dir.path().join("vocab.a.txt"), "w1\nw2\n").unwrap();
        readers::uci::read(&docword, &counters, &mut Collect::default()).unwrap();
    }
}
