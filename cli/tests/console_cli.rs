//! What the commands leave on the terminal: results survive a closed pipe (`... | head -1`), log
//! lines on a non-terminal stderr hold no progress-bar control codes, and `-q` keeps stderr empty.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;
use common::{glint, ok};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `glint-lda args` with RUST_LOG unset and a stdout pipe whose read end is closed before
/// the command writes anything, as `glint-lda ... | head -0` would; returns its exit status and
/// stderr.
fn with_closed_stdout(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `glint-lda args` with RUST_LOG unset and stdout and stderr piped (not terminals).
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn write_tsv(path: &Path, bad_lines: bool) {
    let mut text = String::new();
    for i in 0..300 {
        text += &format!("d{i}\tapples and pears grow in the orchard number {i}\n");
        if bad_lines && i % 100 == 0 {
            text += "a line without any tab\n";
        }
    }
    std::fs::write(path, text).unwrap();
}

/// No escape sequence (colours, cursor moves) and no carriage return (bar redraws).
fn assert_plain(stderr: &str) {
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\r'),
        "control codes in stderr: {stderr:?}"
    );
}

#[test]
fn ingest_summary_survives_a_closed_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.tsv");
    write_tsv(&input, false);
    let out = tmp.path().join("corpus");
    let terms = tmp.path().join("terms.txt");
    let (status, err) = with_closed_stdout(&[
        "ingest",
        s(&input),
        "--out",
        s(&out),
        "--export-terms",
        s(&terms),
    ]);
    assert!(status.success(), "exit {status:?}, stderr:\n{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    // The work after the summary still happened.
    assert_eq!(
        datasets::Corpus::open(&out).unwrap().manifest().documents,
        300
    );
    assert_eq!(
        std::fs::read_to_string(&terms).unwrap().lines().count(),
        300
    );
}

#[test]
fn synth_topics_and_eval_json_survive_a_closed_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("syn");
    let model = tmp.path().join("model");
    let (status, err) = with_closed_stdout(&[
        "synth",
        "--docs",
        "40",
        "--vocab",
        "100",
        "--topics",
        "3",
        "--mean-len",
        "20",
        "--out",
        s(&corpus),
    ]);
    assert!(status.success() && !err.contains("panicked"), "{err}");
    ok(&glint(&[
        "-q",
        "train",
        "--corpus",
        s(&corpus),
        "--topics",
        "3",
        "--iterations",
        "3",
        "--threads",
        "1",
        "--out",
        s(&model),
    ]));
    for args in [
        vec!["topics", "--model", s(&model)],
        vec!["eval", "--model", s(&model), "--test", s(&corpus), "--json"],
        vec!["eval", "--model", s(&model), "--test", s(&corpus)],
    ] {
        let (status, err) = with_closed_stdout(&args);
        assert!(
            status.success(),
            "{args:?}: exit {status:?}, stderr:\n{err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn warnings_on_a_non_terminal_are_plain_lines_and_quiet_is_silent() {
    let tmp = tempfile::tempdir().unwrap();
    let messy = tmp.path().join("messy.tsv");
    write_tsv(&messy, true);
    let out = tmp.path().join("corpus");

    // Warnings (three malformed lines) emitted while the bar runs: whole lines, no bar codes.
    let o = run(&["ingest", s(&messy), "--out", s(&out)]);
    let summary = ok(&o);
    assert!(summary.contains("malformed-tsv: 3"), "{summary}");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_plain(&err);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("skipped")).collect();
    assert_eq!(warnings.len(), 3, "{err}");
    for line in err.lines() {
        // `<timestamp>  WARN <target>: ...`: each line is one whole event.
        assert_eq!(
            line.split_whitespace().nth(1),
            Some("WARN"),
            "not a log line: {line:?}"
        );
    }

    // Info logs too (-v) stay plain lines.
    let o = run(&["-v", "ingest", s(&messy), "--out", s(&out)]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_plain(&err);
    assert!(err.contains("INFO"), "{err}");

    // -q: nothing on stderr, for a clean run and for skipped lines alike; results stay on stdout.
    let clean = tmp.path().join("clean.tsv");
    write_tsv(&clean, false);
    for input in [&clean, &messy] {
        for cmd in [
            vec!["-q", "ingest", s(input), "--out", s(&out)],
            vec![
                "-q",
                "synth",
                "--docs",
                "20",
                "--out",
                s(&tmp.path().join("syn")),
            ],
        ] {
            let o = run(&cmd);
            let stdout = ok(&o);
            assert!(!stdout.is_empty(), "{cmd:?}: the summary belongs on stdout");
            assert_eq!(
                String::from_utf8_lossy(&o.stderr),
                "",
                "{cmd:?} printed on stderr under -q"
            );
        }
    }
}
