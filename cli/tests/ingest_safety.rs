//! `glint-lda ingest` never loses a corpus: a failed, empty or interrupted re-ingest leaves the
//! old one as it was, with no scratch or staging files behind; a damaged gzip member costs only
//! its own records; and the filters and inputs users expect work from the command line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use datasets::Corpus;

fn glint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args(args)
        .arg("--no-progress")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Entries of `dir` other than `keep` (staging or scratch directories left behind).
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

fn corpus_docs(dir: &Path) -> Vec<String> {
    Corpus::open(dir)
        .unwrap()
        .documents()
        .unwrap()
        .map(|d| d.unwrap().id)
        .collect()
}

#[test]
fn a_failed_or_empty_reingest_keeps_the_old_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.tsv");
    std::fs::write(&good, "a\triver forest\nb\tvalley river\n").unwrap();
    let out = tmp.path().join("corpus");
    ok(&glint(&["ingest", s(&good), "--out", s(&out)]));
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();

    // Strict mode on a bad line: fails in the first pass.
    let bad = tmp.path().join("bad.tsv");
    std::fs::write(&bad, "a\triver\nno tab here\n").unwrap();
    let o = glint(&["ingest", s(&bad), "--out", s(&out), "--strict"]);
    assert!(!o.status.success());
    // Every document empty after analysis: nothing kept, a clear error.
    let empty = tmp.path().join("stop.tsv");
    std::fs::write(&empty, "a\tthe and of\nb\tit is\n").unwrap();
    let o = glint(&["ingest", s(&empty), "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no document was kept") && err.contains("empty"),
        "{err}"
    );

    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), manifest);
    assert_eq!(corpus_docs(&out), ["a", "b"]);
    assert_eq!(
        leftovers(tmp.path(), &["good.tsv", "bad.tsv", "stop.tsv", "corpus"]),
        Vec::<String>::new()
    );

    // A directory that is not a corpus is never replaced.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    let o = glint(&["ingest", s(&good), "--out", s(&mine)]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a glint-lda corpus"));
    assert!(mine.join("notes.txt").is_file());
}

#[test]
fn a_damaged_gzip_member_loses_only_its_record() {
    let tmp = tempfile::tempdir().unwrap();
    let record = |uri: &str, words: &str| {
        let http = format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>{words}</p>");
        let mut r = format!(
            "WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {uri}\r\nContent-Type: application/http; msgtype=response\r\nContent-Length: {}\r\n\r\n",
            http.len()
        )
        .into_bytes();
        r.extend_from_slice(http.as_bytes());
        r.extend_from_slice(b"\r\n\r\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&r).unwrap();
        gz.finish().unwrap()
    };
    let first = record("http://one/", "river valley forest mountain");
    let mut second = record("http://two/", &"damaged record words ".repeat(50));
    let third = record("http://three/", "ocean island harbour sailing");
    // Damage the middle of the second member's deflate data.
    let mid = second.len() / 2;
    for b in &mut second[mid..mid + 8] {
        *b ^= 0xA5;
    }
    let path = tmp.path().join("crawl.warc.gz");
    std::fs::write(&path, [first, second, third].concat()).unwrap();
    let out = tmp.path().join("corpus");
    let report = tmp.path().join("r.json");
    ok(&glint(&[
        "ingest",
        s(&path),
        "--out",
        s(&out),
        "--report-json",
        s(&report),
    ]));
    let docs = corpus_docs(&out);
    assert!(docs.contains(&"http://one/".to_owned()), "{docs:?}");
    assert!(docs.contains(&"http://three/".to_owned()), "{docs:?}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let damaged = r["skipped"]["corrupt-gzip"].as_u64().unwrap_or(0)
        + r["skipped"]["truncated-gzip"].as_u64().unwrap_or(0);
    assert!(damaged >= 1, "{}", r["skipped"]);
}

#[test]
fn sigint_stops_cleanly_and_keeps_the_old_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.tsv");
    std::fs::write(&good, "a\triver forest\n").unwrap();
    let out = tmp.path().join("corpus");
    ok(&glint(&["ingest", s(&good), "--out", s(&out)]));
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();

    // Standard input fed line by line, so the run is mid-way when the signal comes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args(["ingest", "-", "--no-progress", "--out", s(&out)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0.. {
            if writeln!(stdin, "river valley forest document {i}").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let started = Instant::now();
    while leftovers(tmp.path(), &["good.tsv", "corpus"]).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no staging directory appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // The shell's builtin `kill`: no procps needed on a minimal machine.
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let _ = feeder.join();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), manifest);
    assert_eq!(
        leftovers(tmp.path(), &["good.tsv", "corpus"]),
        Vec::<String>::new()
    );
}

#[test]
fn stdin_filters_stopword_files_and_unknown_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("corpus");
    let stop = tmp.path().join("stop.txt");
    std::fs::write(&stop, "# project words\nRiver\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args([
            "ingest",
            "-",
            "--no-progress",
            "--min-df",
            "2",
            "--max-df",
            "3",
        ])
        .args(["--stopwords-file", s(&stop), "--out", s(&out)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // forest: 4 docs (over --max-df 3); valley: 2 docs; ocean: 1 doc (under --min-df 2);
    // river: a stop word from the file.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"forest valley river\nforest valley\nforest ocean\nforest river\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    ok(&o);
    let vocab = Corpus::open(&out).unwrap().vocabulary().unwrap();
    assert_eq!(vocab.terms(), ["valley"]);

    let o = glint(&["ingest", "--max-df", "1.5", "-", "--out", s(&out)]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--max-df"));

    // A named file of unknown format is an error; one matched by a glob is a counted skip.
    let pdf = tmp.path().join("paper.pdf");
    std::fs::write(&pdf, "%PDF-1.4").unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "river forest valley\n").unwrap();
    let o = glint(&["ingest", s(&pdf), "--out", s(&out)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--format"));
    let pattern = format!("{}/*.*", tmp.path().display());
    let report = tmp.path().join("r.json");
    ok(&glint(&[
        "ingest",
        &pattern,
        "--out",
        s(&out),
        "--report-json",
        s(&report),
    ]));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["skipped"]["unknown-format"].as_u64(), Some(1), "{r}");
}

#[test]
fn stemmed_terms_keep_their_most_frequent_surface_form() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.txt");
    std::fs::write(
        &input,
        "peace talks military government\npeace military governments\npeaceful military\n",
    )
    .unwrap();
    let out = tmp.path().join("corpus");
    ok(&glint(&["ingest", s(&input), "--out", s(&out)]));
    let vocab = Corpus::open(&out).unwrap().vocabulary().unwrap();
    let id = |term: &str| vocab.terms().iter().position(|t| t == term).unwrap() as u32;
    assert_eq!(vocab.display(id("peac")), Some("peace"));
    assert_eq!(vocab.display(id("militari")), Some("military"));
    assert_eq!(vocab.display(id("govern")), Some("government"));

    // The model shows them by default, the stems on request.
    let model = tmp.path().join("model");
    let o = Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args([
            "train",
            "--corpus",
            s(&out),
            "--topics",
            "2",
            "--iterations",
            "3",
        ])
        .args(["--threads", "1", "--out", s(&model)])
        .output()
        .unwrap();
    ok(&o);
    let topics = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_glint-lda"))
            .args(["topics", "--model", s(&model), "--top", "10"])
            .args(extra)
            .output()
            .unwrap();
        ok(&o)
    };
    let shown = topics(&[]);
    assert!(
        shown.contains("peace") && shown.contains("military"),
        "{shown}"
    );
    assert!(!shown.contains("militari"), "{shown}");
    let raw = topics(&["--raw-terms"]);
    assert!(raw.contains("militari") && raw.contains("peac "), "{raw}");
}
