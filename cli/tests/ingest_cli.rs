//! `glint-lda ingest` end to end: the real binary on crafted files in a temp dir and on the
//! shared real corpora (tests needing `../shared/corpora` skip with a message when it is absent).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly on purpose

mod common;
use common::warc_record;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datasets::Corpus;

fn glint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args(args)
        .arg("--no-progress")
        .output()
        .expect("run glint-lda")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "failed\nstdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

fn shared(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora")
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} is absent (the shared corpora are not beside the checkout)",
            p.display()
        );
        None
    }
}

fn gzip(path: &Path, data: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read_docs(dir: &Path) -> Vec<datasets::Document> {
    Corpus::open(dir)
        .unwrap()
        .documents()
        .unwrap()
        .map(|d| d.unwrap())
        .collect()
}

#[test]
fn help_lists_the_options() {
    let o = Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args(["ingest", "--help"])
        .output()
        .unwrap();
    ok(&o);
    let help = stdout(&o);
    for flag in [
        "--out",
        "--format",
        "--column",
        "--id-column",
        "--min-count",
        "--max-doc-frac",
        "--vocab-size",
        "--preset",
        "--threads",
        "--strict",
    ] {
        assert!(help.contains(flag), "missing {flag} in\n{help}");
    }
}

#[test]
fn tsv_gzip_gives_a_ranked_corpus_and_a_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.tsv.gz");
    gzip(
        &input,
        b"a\tThe cats are running and running\nb\tdogs running; cats sleeping\nc\tCats!\n",
    );
    let out = tmp.path().join("corpus");
    let o = glint(&["ingest", s(&input), "--out", s(&out), "--threads", "2"]);
    ok(&o);
    let text = stdout(&o);
    assert!(text.contains("documents read   3"), "{text}");
    assert!(text.contains("MB/s uncompressed"), "{text}");
    let corpus = Corpus::open(&out).unwrap();
    let m = corpus.manifest();
    assert_eq!((m.documents, m.tokens, m.vocabulary_size), (3, 8, 4));
    let vocab = corpus.vocabulary().unwrap();
    // Stop words go, stems merge "running"; ties in count are broken by term.
    assert_eq!(vocab.terms(), ["cat", "run", "dog", "sleep"]);
    assert_eq!(vocab.counts(), [3, 3, 1, 1]);
    assert!(vocab.is_ranked());
    let docs = read_docs(&out);
    assert_eq!(docs[0].id, "a");
    assert_eq!(docs[0].tokens, [0, 1, 1]);
    assert_eq!(m.analyzer["stem"], "english");
    assert_eq!(m.inputs[0]["format"], "tsv");
}

#[test]
fn lines_dir_and_vocabulary_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = tmp.path().join("plain.txt");
    std::fs::write(&lines, "alpha beta gamma\nalpha beta\nalpha delta\n").unwrap();
    let dir = tmp.path().join("texts");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("one.txt"), "alpha gamma").unwrap();
    gzip(&dir.join("sub/two.txt.gz"), b"beta epsilon epsilon");
    std::fs::write(dir.join("ignored.csv"), "zeta").unwrap();
    let out = tmp.path().join("c");
    let o = glint(&[
        "ingest",
        s(&lines),
        s(&dir),
        "--out",
        s(&out),
        "--preset",
        "none",
        "--min-count",
        "2",
        "--max-doc-frac",
        "0.7",
    ]);
    ok(&o);
    let corpus = Corpus::open(&out).unwrap();
    // alpha is in 4 of 5 documents (> 0.7) and delta occurs once.
    assert_eq!(
        corpus.vocabulary().unwrap().terms(),
        ["beta", "epsilon", "gamma"]
    );
    let docs = read_docs(&out);
    let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    assert!(ids[0].ends_with("plain.txt:1"), "{ids:?}");
    assert!(ids.contains(&"sub/two.txt.gz"), "{ids:?}");
    // "alpha delta" lost all its terms.
    assert_eq!(
        corpus.manifest().skipped["empty-after-vocabulary-filter"],
        1
    );

    let out2 = tmp.path().join("c2");
    ok(&glint(&[
        "ingest",
        s(&lines),
        "--out",
        s(&out2),
        "--preset",
        "none",
        "--vocab-size",
        "1",
    ]));
    assert_eq!(
        Corpus::open(&out2).unwrap().vocabulary().unwrap().terms(),
        ["alpha"]
    );
}

#[test]
fn output_is_identical_for_one_and_two_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..3000 {
        text += &format!(
            "doc{i}\tword{} common topic{} filler text number {}\n",
            i % 97,
            i % 13,
            i % 7
        );
    }
    let a = tmp.path().join("a.tsv");
    let b = tmp.path().join("b.tsv");
    std::fs::write(&a, &text).unwrap();
    std::fs::write(&b, text.replace("doc", "other")).unwrap();
    let run = |threads: &str| {
        let out = tmp.path().join(format!("t{threads}"));
        let export = tmp.path().join(format!("t{threads}.txt"));
        ok(&glint(&[
            "ingest",
            s(&a),
            s(&b),
            "--out",
            s(&out),
            "--threads",
            threads,
            "--preset",
            "none",
            "--export-terms",
            s(&export),
        ]));
        (
            std::fs::read(out.join("vocab.tsv")).unwrap(),
            std::fs::read(&export).unwrap(),
            read_docs(&out),
        )
    };
    let one = run("1");
    let two = run("2");
    assert_eq!(one.0, two.0, "vocabulary differs");
    assert_eq!(one.1, two.1, "exported documents differ");
    assert_eq!(one.2, two.2);
    assert_eq!(one.2.len(), 6000);
    assert_eq!(one.2[3000].id, "other0");
}

#[test]
fn uci_bag_of_words() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("vocab.tiny.txt"), "apple\nbanana\ncherry\n").unwrap();
    let docword = tmp.path().join("docword.tiny.txt");
    std::fs::write(&docword, "4\n3\n5\n1 1 2\n1 3 1\n2 2 4\n4 1 1\n4 9 1\n").unwrap();
    let out = tmp.path().join("c");
    let o = glint(&["ingest", s(&docword), "--out", s(&out)]);
    ok(&o);
    let corpus = Corpus::open(&out).unwrap();
    assert_eq!(
        corpus.vocabulary().unwrap().terms(),
        ["banana", "apple", "cherry"]
    );
    let docs = read_docs(&out);
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0].tokens, [1, 1, 2]);
    let skipped = &corpus.manifest().skipped;
    assert_eq!(skipped["empty"], 1, "document 3 has no words");
    assert_eq!(skipped["malformed-uci"], 1, "word id 9 is out of range");
    assert!(stderr(&o).contains("docword.tiny.txt:8"), "{}", stderr(&o));
}

#[test]
fn bad_text_inputs_are_counted_skips_and_strict_fails() {
    let tmp = tempfile::tempdir().unwrap();
    // Truncated gzip: a valid stream cut in the middle.
    let full = tmp.path().join("full.tsv.gz");
    let mut text = String::new();
    for i in 0..20000 {
        text += &format!("d{i}\tsome words for document number {i} with more words\n");
    }
    gzip(&full, text.as_bytes());
    let bytes = std::fs::read(&full).unwrap();
    let truncated = tmp.path().join("truncated.tsv.gz");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    // Non-UTF-8 bytes, an empty document, a line without a tab.
    let messy = tmp.path().join("messy.tsv");
    std::fs::write(
        &messy,
        b"ok\tgood words here\nbad\tcaf\xe9 latin1\nempty\t   \nnotab\n",
    )
    .unwrap();
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, b"").unwrap();

    let out = tmp.path().join("c");
    let o = glint(&[
        "ingest",
        s(&truncated),
        s(&messy),
        s(&empty),
        "--out",
        s(&out),
    ]);
    ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("truncated.tsv.gz") && err.contains("rest of file skipped"),
        "{err}"
    );
    assert!(err.contains("messy.tsv:2: invalid UTF-8"), "{err}");
    let m = Corpus::open(&out).unwrap().manifest().clone();
    assert_eq!(m.skipped["truncated-gzip"], 1, "{:?}", m.skipped);
    assert_eq!(m.skipped["invalid-utf8"], 1);
    assert_eq!(m.skipped["empty"], 1);
    assert_eq!(m.skipped["malformed-tsv"], 1);
    assert_eq!(m.skipped["empty-input"], 1);
    assert!(m.documents > 1000 && m.documents < 20000, "{}", m.documents);

    for bad in [&truncated, &messy, &empty] {
        let out = tmp.path().join("strict");
        let o = glint(&["ingest", s(bad), "--out", s(&out), "--strict"]);
        assert!(!o.status.success(), "strict must fail on {}", bad.display());
        let err = stderr(&o);
        assert!(
            err.contains("strict mode") && err.contains(bad.file_name().unwrap().to_str().unwrap()),
            "{err}"
        );
        assert!(
            Corpus::open(&out).is_err(),
            "no manifest after a failed run"
        );
    }
}

#[test]
fn missing_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c");
    let o = glint(&["ingest", "/nonexistent/file.tsv", "--out", s(&out)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/nonexistent/file.tsv: no such file"),
        "{}",
        stderr(&o)
    );
    let pattern = format!("{}/*.nothing", tmp.path().display());
    let o = glint(&["ingest", &pattern, "--out", s(&out)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("matches no files"), "{}", stderr(&o));
}

fn http_html(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{body}").into_bytes()
}

#[test]
fn crafted_warc_malformations_are_skipped_with_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let http = "Content-Type: application/http; msgtype=response\r\nWARC-Target-URI: http://x/";
    let good = |n: u32| {
        warc_record(
            "response",
            &format!("{http}{n}\r\n"),
            &http_html("<p>forests and rivers</p><script>var hidden;</script>"),
        )
    };
    let mut file = Vec::new();
    file.extend(warc_record("warcinfo", "", b"software: test\r\n"));
    file.extend(warc_record("request", "", b"GET / HTTP/1.1\r\n\r\n"));
    file.extend(good(1));
    // A malformed header line.
    file.extend(
        b"WARC/1.0\r\nWARC-Type response without colon\r\nContent-Length: 5\r\n\r\nhello\r\n\r\n",
    );
    file.extend(good(2));
    // A record longer than its Content-Length: 10 declared, more bytes follow.
    let mut long = warc_record(
        "response",
        &format!("{http}long\r\n"),
        &http_html("<p>short</p> and then a lot more"),
    );
    let declared = format!(
        "Content-Length: {}",
        http_html("<p>short</p> and then a lot more").len()
    );
    let s_long = String::from_utf8(long.clone())
        .unwrap()
        .replace(&declared, "Content-Length: 10");
    long = s_long.into_bytes();
    file.extend(long);
    file.extend(good(3));
    // A record shorter than its Content-Length, at the end of the file.
    file.extend(b"WARC/1.0\r\nWARC-Type: response\r\nContent-Type: application/http; msgtype=response\r\nContent-Length: 5000\r\n\r\nHTTP/1.1 200 OK\r\n\r\n<p>cut");
    let path = tmp.path().join("crafted.warc");
    std::fs::write(&path, &file).unwrap();
    let out = tmp.path().join("c");
    let o = glint(&["ingest", s(&path), "--out", s(&out), "--preset", "none"]);
    ok(&o);
    let corpus = Corpus::open(&out).unwrap();
    let m = corpus.manifest();
    assert_eq!(m.documents, 3, "{}", stdout(&o));
    assert_eq!(m.skipped["malformed-warc-header"], 1, "{:?}", m.skipped);
    assert_eq!(m.skipped["content-length-mismatch"], 1, "{:?}", m.skipped);
    assert_eq!(
        m.skipped["record-shorter-than-content-length"], 1,
        "{:?}",
        m.skipped
    );
    assert!(
        corpus
            .vocabulary()
            .unwrap()
            .terms()
            .contains(&"forests".to_owned())
    );
    assert!(
        !corpus
            .vocabulary()
            .unwrap()
            .terms()
            .contains(&"hidden".to_owned()),
        "script text must be dropped"
    );
    let err = stderr(&o);
    assert!(err.contains("crafted.warc: record at offset"), "{err}");
    assert_eq!(m.extra["ignored"]["warc-request"], 1);

    // The same file gzip-compressed and truncated.
    let gz = tmp.path().join("crafted.warc.gz");
    gzip(&gz, &file);
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() - 40]).unwrap();
    let o = glint(&["ingest", s(&gz), "--out", s(&out)]);
    ok(&o);
    assert!(
        Corpus::open(&out)
            .unwrap()
            .manifest()
            .skipped
            .contains_key("truncated-gzip"),
        "{}",
        stdout(&o)
    );
    let o = glint(&["ingest", s(&path), "--out", s(&out), "--strict"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("crafted.warc: record at offset"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn real_warc_files_from_the_shared_corpora() {
    let names = [
        "warc/example.warc",
        "warc/example.warc.gz",
        "warc/iana.warc.gz",
        "warc/at.warc.gz",
        "warc/dupes.warc.gz",
        "warc/test-crawl_0.warc.gz",
        "warc/CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc",
        "warc/CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc.wet",
        "warc/missing-status-text.warc",
    ];
    let Some(paths) = names.iter().map(|n| shared(n)).collect::<Option<Vec<_>>>() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c");
    let mut args = vec!["ingest".to_owned()];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    args.extend([
        "--out".into(),
        out.display().to_string(),
        "--threads".into(),
        "2".into(),
    ]);
    let o = glint(&args.iter().map(String::as_str).collect::<Vec<_>>());
    ok(&o);
    let m = Corpus::open(&out).unwrap().manifest().clone();
    assert!(m.documents >= 20, "{}", stdout(&o));
    assert!(m.tokens > 10_000, "{}", stdout(&o));
    // missing-status-text.warc holds a 302 with no reason phrase: ignored, not a crash.
    assert!(m.extra["ignored"]["warc-http-not-2xx"].as_u64().unwrap() >= 1);
    assert!(m.extra["ignored"]["warc-request"].as_u64().unwrap() >= 1);
}

#[test]
fn malformed_warc_from_the_shared_corpora() {
    let Some(bad) = shared("warc/example-bad.warc.gz.bad") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c");
    let o = glint(&["ingest", s(&bad), "--format", "warc", "--out", s(&out)]);
    ok(&o);
    let m = Corpus::open(&out).unwrap().manifest().clone();
    // The file compresses all records in one gzip member instead of one per record.
    assert_eq!(m.skipped["gzip-not-per-record"], 1, "{}", stdout(&o));
    assert!(m.documents >= 1);
    assert!(
        stderr(&o).contains("example-bad.warc.gz.bad"),
        "{}",
        stderr(&o)
    );
    let o = glint(&[
        "ingest",
        s(&bad),
        "--format",
        "warc",
        "--out",
        s(&out),
        "--strict",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("example-bad.warc.gz.bad"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn parquet_column_id_column_and_missing_column() {
    let Some(pq) = shared("debian-descriptions.parquet") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c");
    let o = glint(&[
        "ingest",
        s(&pq),
        "--column",
        "description",
        "--id-column",
        "package",
        "--out",
        s(&out),
        "--min-count",
        "3",
    ]);
    ok(&o);
    let corpus = Corpus::open(&out).unwrap();
    let m = corpus.manifest();
    assert!(m.documents > 60_000, "{}", stdout(&o));
    assert!(corpus.vocabulary().unwrap().terms()[..50].contains(&"packag".to_owned()));
    let first = corpus.documents().unwrap().next().unwrap().unwrap();
    assert!(
        !first.id.contains(':'),
        "ids come from the package column: {}",
        first.id
    );

    // The only input lacks the column: nothing is kept, a clear error, the corpus is unchanged.
    let before = std::fs::read(out.join("manifest.json")).unwrap();
    let o = glint(&["ingest", s(&pq), "--column", "nope", "--out", s(&out)]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("debian-descriptions.parquet: no text column \"nope\"; columns are: package")
            && err.contains("no document was kept")
            && err.contains("missing-column"),
        "{err}"
    );
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), before);
    let o = glint(&[
        "ingest",
        s(&pq),
        "--column",
        "nope",
        "--out",
        s(&out),
        "--strict",
    ]);
    assert!(!o.status.success());
}

#[test]
fn quickstart_corpus_ingests() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sotu-paragraphs.tsv.gz");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sotu");
    let o = glint(&[
        "ingest",
        s(&data),
        "--out",
        s(&out),
        "--min-count",
        "5",
        "--max-doc-frac",
        "0.5",
    ]);
    ok(&o);
    let m = Corpus::open(&out).unwrap().manifest().clone();
    assert!(m.documents > 14_000, "{}", stdout(&o));
    assert!(m.vocabulary_size > 5_000, "{}", stdout(&o));
}
