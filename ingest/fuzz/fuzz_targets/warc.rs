//! Fuzzes the WARC reader (plain and gzip, detected by magic bytes): any input must end in
//! documents, counted skips or a clean error, never a panic.

#![no_main]

use std::sync::Arc;

use ingest::IngestError;
use ingest::readers::{ByteCounters, DocSink, RawDoc, Skip, warc};
use libfuzzer_sys::fuzz_target;

struct Discard;

impl DocSink for Discard {
    fn document(&mut self, doc: RawDoc) -> Result<(), IngestError> {
        // Exercise the worker-side conversion too.
        if let ingest::readers::Body::Html { bytes, charset } = &doc.body {
            let (page, _) = ingest::readers::charset::decode(bytes, charset.as_deref());
            let _ = ingest::readers::html::to_text(&page);
        }
        Ok(())
    }
    fn skip(&mut self, _: Skip) -> Result<(), IngestError> {
        Ok(())
    }
    fn ignore(&mut self, _: &'static str) {}
}

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = std::env::temp_dir().canonicalize() else {
        return;
    };
    let path = dir.join(format!("ingest-fuzz-{}.warc", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = warc::read(&path, &Arc::new(ByteCounters::default()), &mut Discard);
    }
});
