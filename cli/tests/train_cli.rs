//! `glint-lda train` and `glint-lda topics` driven as a user would: the real binary on a synthetic
//! corpus in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use datasets::synthetic::{DocLength, SyntheticSpec, generate};

mod common;
use common::{glint, ok};

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A synthetic corpus in `dir` (α = 0.2, β = 0.05, Poisson document lengths).
fn synthetic(dir: &Path, documents: u64, vocabulary: u32, topics: u32, mean_len: f64, seed: u64) {
    let spec = SyntheticSpec {
        documents,
        vocabulary,
        topics,
        mean_doc_len: mean_len,
        doc_length: DocLength::Poisson,
        alpha: 0.2,
        beta: 0.05,
        seed,
        write_theta: false,
    };
    generate(&spec, dir).unwrap();
}

#[test]
fn train_then_topics_then_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    synthetic(&corpus, 200, 400, 4, 50.0, 3);
    let model = tmp.path().join("model");
    let (c, m) = (corpus.to_str().unwrap(), model.to_str().unwrap());
    let common = [
        "train",
        "--corpus",
        c,
        "--topics",
        "4",
        "--alpha",
        "0.1",
        "--beta",
        "0.01",
        "--mh-steps",
        "2",
    ];
    let mut args = common.to_vec();
    args.extend([
        "--threads",
        "2",
        "--seed",
        "7",
        "--out",
        m,
        "--iterations",
        "6",
        "--checkpoint-every",
        "3",
    ]);
    ok(&glint(&args));

    let lines = metrics(&model);
    assert_eq!(lines.len(), 6);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["iteration"].as_u64(), Some(i as u64 + 1));
        for key in [
            "loglik",
            "joint_perplexity",
            "tokens_per_s",
            "seconds",
            "train_seconds",
        ] {
            assert!(l[key].as_f64().is_some_and(f64::is_finite), "{key} in {l}");
        }
    }
    let first = lines[0]["loglik"].as_f64().unwrap();
    let last = lines[5]["loglik"].as_f64().unwrap();
    assert!(last > first, "{first} -> {last}");

    let phi = datasets::npy::read(&model.join("phi.npy")).unwrap();
    assert_eq!(phi.rows, 4);
    for r in 0..4 {
        assert!((phi.row(r).iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    let vocab = std::fs::read_to_string(model.join("vocab.txt")).unwrap();
    assert_eq!(vocab.lines().count(), phi.cols);
    for f in [
        "word_topic.parquet",
        "doc_topic.parquet",
        "topic_totals.json",
        "hyperparameters.json",
        "checkpoint/state.json",
    ] {
        assert!(model.join(f).is_file(), "{f} missing");
    }

    let json = ok(&glint(&[
        "topics", "--model", m, "--top", "5", "--format", "json",
    ]));
    let topics: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(topics.as_array().map(Vec::len), Some(4));
    let tsv = ok(&glint(&[
        "topics", "--model", m, "--top", "5", "--format", "tsv",
    ]));
    assert_eq!(tsv.lines().count(), 1 + 4 * 5);
    let text = ok(&glint(&["topics", "--model", m, "--top", "3"]));
    assert_eq!(text.lines().count(), 4);
    // Words in the text output are vocabulary terms.
    let first_word = text
        .lines()
        .next()
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|w| w.split(' ').next())
        .unwrap();
    assert!(vocab.lines().any(|v| v == first_word), "{first_word}");

    // Resume to 9 iterations: the metrics continue from the checkpoint at 6.
    let mut args = common.to_vec();
    args.extend([
        "--threads",
        "2",
        "--seed",
        "7",
        "--out",
        m,
        "--iterations",
        "9",
        "--resume",
    ]);
    let out = glint(&args);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("resumed at iteration 6"));
    let lines = metrics(&model);
    assert_eq!(
        lines
            .iter()
            .map(|l| l["iteration"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (1..=9).collect::<Vec<_>>()
    );
}

/// The α list of a model directory's `hyperparameters.json`.
fn alpha_list(model: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(model.join("hyperparameters.json")).unwrap();
    let h: serde_json::Value = serde_json::from_str(&text).unwrap();
    h["alpha"]
        .as_array()
        .unwrap_or_else(|| panic!("alpha is not a list: {h}"))
        .iter()
        .map(|a| a.as_f64().unwrap())
        .collect()
}

#[test]
fn an_optimised_alpha_is_exported_checkpointed_and_resumed_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    synthetic(&corpus, 150, 300, 3, 40.0, 5);
    let c = corpus.to_str().unwrap();
    let run = |out: &Path, iterations: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--corpus",
            c,
            "--topics",
            "5",
            "--alpha",
            "0.3",
            "--threads",
            "1",
            "--seed",
            "4",
            "--optimize-interval",
            "2",
            "--optimize-burn-in",
            "2",
            "--checkpoint-every",
            "3",
            "--out",
            out.to_str().unwrap(),
            "--iterations",
            iterations,
        ];
        args.extend_from_slice(extra);
        ok(&glint(&args));
    };
    let straight = tmp.path().join("straight");
    run(&straight, "9", &[]);
    let alpha = alpha_list(&straight);
    assert_eq!(alpha.len(), 5);
    assert!(alpha.iter().all(|a| a.is_finite() && *a > 0.0));
    // Five topics for three true ones: the estimate is anything but the symmetric start.
    assert!(alpha.iter().any(|a| (a - 0.3).abs() > 0.01), "{alpha:?}");
    // Stopped at 6 (α last optimised there) and resumed: the same chain, so the same α.
    let resumed = tmp.path().join("resumed");
    run(&resumed, "6", &[]);
    run(&resumed, "9", &["--resume"]);
    assert_eq!(alpha_list(&resumed), alpha);
    let theta = std::fs::read(resumed.join("doc_topic.parquet")).unwrap();
    assert_eq!(
        theta,
        std::fs::read(straight.join("doc_topic.parquet")).unwrap()
    );
}

#[test]
fn alpha_optimisation_is_refused_with_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = glint(&[
        "train",
        "--corpus",
        tmp.path().to_str().unwrap(),
        "--topics",
        "5",
        "--out",
        tmp.path().join("m").to_str().unwrap(),
        "--master",
        "127.0.0.1:1",
        "--workers",
        "2",
        "--optimize-interval",
        "10",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--optimize-interval") && err.contains("--workers"),
        "{err}"
    );
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-corpus");
    let out = glint(&[
        "train",
        "--corpus",
        missing.to_str().unwrap(),
        "--topics",
        "5",
        "--out",
        tmp.path().join("m").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-corpus"));
    let out = glint(&["topics", "--model", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-corpus"));
    let out = glint(&["train", "--corpus", "x", "--topics", "1", "--out", "y"]);
    assert!(!out.status.success());
}

/// A child process killed on drop.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `glint-lda args...` and returns it with the address of its `listening on ADDR` line.
fn start(args: &[&str]) -> (Proc, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_glint-lda"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let addr = banner
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    (Proc(child), addr)
}

#[test]
fn training_on_server_processes_equals_embedded_training() {
    // With one sampler thread every pull sees all earlier pushes, so the run is deterministic
    // whatever the transport: a master and two servers in other processes must give the same φ.
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    let spec = SyntheticSpec {
        documents: 60,
        vocabulary: 200,
        topics: 3,
        mean_doc_len: 30.0,
        doc_length: DocLength::Poisson,
        alpha: 0.2,
        beta: 0.05,
        seed: 4,
        write_theta: false,
    };
    generate(&spec, &corpus).unwrap();
    let (_master, master_addr) = start(&["master", "--bind", "127.0.0.1:0"]);
    let _servers: Vec<(Proc, String)> = (0..2)
        .map(|_| start(&["server", "--master", &master_addr, "--bind", "127.0.0.1:0"]))
        .collect();
    let c = corpus.to_str().unwrap();
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--corpus",
            c,
            "--topics",
            "3",
            "--iterations",
            "4",
            "--threads",
            "1",
            "--seed",
            "5",
        ];
        args.extend(["--block-tokens", "200", "--out", out.to_str().unwrap()]);
        args.extend(extra);
        ok(&glint(&args));
        std::fs::read(out.join("phi.npy")).unwrap()
    };
    let remote = run(
        &tmp.path().join("remote"),
        &["--master", &master_addr, "--servers", "2"],
    );
    let embedded = run(&tmp.path().join("embedded"), &[]);
    assert_eq!(remote, embedded);
}
