//! Helpers shared by the CLI integration tests: run the real binary, insist that it succeeded.

#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Command, Output};

/// Runs `glint-lda` with `args`.
pub fn glint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args(args)
        .output()
        .unwrap()
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
