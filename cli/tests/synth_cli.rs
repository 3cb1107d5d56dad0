//! `glint-lda synth` driven as a user would: the real binary writes a synthetic corpus with its
//! true φ and θ; the corpus opens, the matrices are distributions, and bad arguments are refused
//! with messages that name the argument.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;

use datasets::Corpus;

mod common;
use common::{glint, ok};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every row of the `.npy` matrix at `path` sums to 1 (within rounding); returns (rows, cols).
fn rows_sum_to_one(path: &Path) -> (usize, usize) {
    let m = datasets::npy::read(path).unwrap();
    for r in 0..m.rows {
        let row = m.row(r);
        assert!(row.iter().all(|p| p.is_finite() && *p >= 0.0));
        let sum: f64 = row.iter().sum();
        assert!(
            (sum - 1.0).abs() < 1e-9,
            "row {r} of {path:?} sums to {sum}"
        );
    }
    (m.rows, m.cols)
}

#[test]
fn synth_writes_a_corpus_with_its_true_phi_and_theta() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("syn");
    // One spec, run three times below.
    let run = |dir: &Path| {
        glint(&[
            "synth",
            "--docs",
            "60",
            "--vocab",
            "300",
            "--topics",
            "4",
            "--alpha",
            "0.2",
            "--beta",
            "0.05",
            "--mean-len",
            "40",
            "--seed",
            "7",
            "--out",
            s(dir),
        ])
    };
    let o = run(&out);
    let text = ok(&o);
    assert!(
        text.starts_with("generated 60 documents"),
        "summary: {text}"
    );
    assert!(
        text.contains("phi.npy") && text.contains("theta.npy"),
        "{text}"
    );

    let corpus = Corpus::open(&out).unwrap();
    let m = corpus.manifest().clone();
    assert_eq!((m.documents, m.vocabulary_size), (60, 300));
    assert_eq!(m.extra["synthetic"]["topics"], 4);
    assert_eq!(m.extra["synthetic"]["alpha"], 0.2);
    let docs: Vec<_> = corpus.documents().unwrap().map(|d| d.unwrap()).collect();
    assert_eq!(docs.len(), 60);
    let tokens: usize = docs.iter().map(|d| d.tokens.len()).sum();
    assert_eq!(tokens as u64, m.tokens);
    assert!(docs.iter().all(|d| !d.tokens.is_empty()));
    assert!(docs.iter().flat_map(|d| &d.tokens).all(|&w| w < 300));
    assert!(corpus.vocabulary().unwrap().is_ranked());

    assert_eq!(rows_sum_to_one(&out.join("phi.npy")), (4, 300));
    assert_eq!(rows_sum_to_one(&out.join("theta.npy")), (60, 4));

    // The same seed gives the same files; a run over the old corpus replaces it.
    let again = tmp.path().join("again");
    ok(&run(&again));
    ok(&run(&out));
    for f in ["phi.npy", "theta.npy", "vocab.tsv"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f} differs between two runs with the same seed"
        );
    }
}

#[test]
fn fixed_lengths_no_theta_and_terms_export() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("syn");
    // A θ from an earlier run must not be left beside a corpus it does not describe.
    ok(&glint(&["synth", "--docs", "5", "--out", s(&out)]));
    assert!(out.join("theta.npy").exists());
    let terms = out.join("terms.txt");
    let o = glint(&[
        "synth",
        "--docs",
        "25",
        "--vocab",
        "50",
        "--topics",
        "3",
        "--mean-len",
        "12",
        "--doc-length",
        "fixed",
        "--no-theta",
        "--export-terms",
        s(&terms),
        "--out",
        s(&out),
    ]);
    let text = ok(&o);
    assert!(!text.contains("theta.npy"), "{text}");
    assert!(!out.join("theta.npy").exists(), "stale theta.npy left");
    let corpus = Corpus::open(&out).unwrap();
    assert_eq!(corpus.manifest().tokens, 25 * 12);
    assert!(
        corpus
            .documents()
            .unwrap()
            .all(|d| d.unwrap().tokens.len() == 12)
    );
    let lines = std::fs::read_to_string(&terms).unwrap();
    assert_eq!(lines.lines().count(), 25);
    assert!(lines.lines().all(|l| l.split(' ').count() == 12));
    assert_eq!(rows_sum_to_one(&out.join("phi.npy")), (3, 50));
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("syn");
    let o = s(&out);
    for (args, expect) in [
        (vec!["--topics", "0"], vec!["--topics", "0"]),
        (vec!["--docs", "0"], vec!["--docs", "0"]),
        (vec!["--vocab", "0"], vec!["--vocab", "0"]),
        (vec!["--alpha", "0"], vec!["--alpha", "positive"]),
        (vec!["--alpha=-1"], vec!["--alpha", "positive"]),
        (vec!["--beta", "nan"], vec!["--beta", "positive"]),
        (vec!["--beta", "x"], vec!["--beta", "not a number"]),
        (vec!["--mean-len", "0.5"], vec!["--mean-len", "at least 1"]),
        (
            vec!["--doc-length", "uniform"],
            vec!["--doc-length", "poisson"],
        ),
    ] {
        let mut all = vec!["synth", "--out", o];
        all.extend(&args);
        let run = glint(&all);
        assert!(!run.status.success(), "{args:?} must fail");
        let err = stderr(&run);
        for e in expect {
            assert!(err.contains(e), "{args:?}: {e:?} not in\n{err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{args:?} created the output");
    }

    // A directory holding other files is not written over.
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("notes.txt"), "mine").unwrap();
    let run = glint(&["synth", "--docs", "3", "--out", s(&home)]);
    assert!(!run.status.success());
    let err = stderr(&run);
    assert!(
        err.contains("notes.txt") && err.contains("not a corpus"),
        "{err}"
    );
    assert!(!home.join("manifest.json").exists());
}

#[test]
fn help_shows_the_defaults() {
    let help = ok(&glint(&["synth", "--help"]));
    for text in [
        "--docs <N>",
        "[default: 1000]",
        "--topics <K>",
        "[default: 10]",
        "--alpha <A>",
        "[default: 0.1]",
        "--beta <B>",
        "[default: 0.01]",
        "--mean-len <L>",
        "[default: 100]",
        "--seed <S>",
        "[default: 42]",
        "--doc-length",
        "phi.npy",
        "theta.npy",
    ] {
        assert!(help.contains(text), "{text:?} not in\n{help}");
    }
    // The product CLI keeps no benchmark (it lives in benchsuite/ps.sh).
    let top = ok(&glint(&["--help"]));
    assert!(top.contains("synth"), "{top}");
    assert!(!top.contains("bench"), "{top}");
}
