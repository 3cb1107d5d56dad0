//! Helpers shared by the CLI integration tests: run the real binary, insist that it succeeded.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use datasets::synthetic::{DocLength, SyntheticSpec, generate};
use datasets::{Corpus, CorpusWriter, ManifestExtras, WriterOptions};

/// Runs `glint-lda` with `args`.
pub fn glint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args(args)
        .output()
        .unwrap()
}

/// A `glint-lda master` or `server` that printed `listening on ADDR[ as shard N]`, killed when
/// dropped.
pub struct Listening {
    pub child: Child,
    pub banner: String,
    pub addr: String,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `glint-lda args...` and waits for its `listening on ...` line.
pub fn listen(args: &[&str]) -> Listening {
    let mut child = Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let banner = banner.trim().to_string();
    let Some(rest) = banner.strip_prefix("listening on ") else {
        let _ = child.kill();
        panic!("{args:?} printed {banner:?}");
    };
    let addr = rest.split(' ').next().unwrap_or_default().to_string();
    Listening {
        child,
        banner,
        addr,
    }
}

/// Its standard output, after asserting that it exited successfully (stderr in the message).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One WARC record of type `kind` with extra header lines `extra` (each ending in CRLF) and
/// the given block, followed by the blank lines that end a record.
pub fn warc_record(kind: &str, extra: &str, block: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "WARC/1.0\r\nWARC-Type: {kind}\r\n{extra}Content-Length: {}\r\n\r\n",
        block.len()
    )
    .into_bytes();
    r.extend_from_slice(block);
    r.extend_from_slice(b"\r\n\r\n");
    r
}

/// A synthetic corpus (with its true φ) split into `train` (first 90%) and `test`.
pub fn split_corpus(root: &Path) {
    let all = root.join("all");
    let spec = SyntheticSpec {
        documents: 400,
        vocabulary: 300,
        topics: 5,
        mean_doc_len: 60.0,
        doc_length: DocLength::Poisson,
        alpha: 0.2,
        beta: 0.05,
        seed: 11,
        write_theta: false,
    };
    generate(&spec, &all).unwrap();
    let corpus = Corpus::open(&all).unwrap();
    let vocab = corpus.vocabulary().unwrap();
    let docs: Vec<_> = corpus.documents().unwrap().map(|d| d.unwrap()).collect();
    for (name, range) in [("train", 0..360), ("test", 360..400)] {
        let mut w = CorpusWriter::create(&root.join(name), WriterOptions::default()).unwrap();
        for d in &docs[range] {
            w.write_document(&d.id, &d.tokens).unwrap();
        }
        w.finish(&vocab, ManifestExtras::default()).unwrap();
    }
}
