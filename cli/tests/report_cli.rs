//! `glint-lda report` over evaluated runs (a glint-lda model and a foreign baseline directory),
//! then the page opened in headless Chromium: it must render (a screenshot is taken) with no
//! console errors. Skips with a message where Chromium is not installed (`.ci/run` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use datasets::synthetic::{DocLength, SyntheticSpec, generate};

mod common;
use common::{glint, ok};

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Two evaluated runs: glint-lda trained with a held-out curve, and a "baseline" directory
/// holding only phi.npy + vocab.txt + run.json (as the baseline scripts write them).
fn runs(root: &Path) -> (String, String) {
    let corpus = root.join("corpus");
    let spec = SyntheticSpec {
        documents: 200,
        vocabulary: 200,
        topics: 4,
        mean_doc_len: 40.0,
        doc_length: DocLength::Poisson,
        alpha: 0.2,
        beta: 0.05,
        seed: 2,
        write_theta: false,
    };
    generate(&spec, &corpus).unwrap();
    let c = corpus.to_str().unwrap().to_owned();
    let model = root.join("glint").to_str().unwrap().to_owned();
    ok(&glint(&[
        "train",
        "--corpus",
        &c,
        "--topics",
        "4",
        "--iterations",
        "20",
        "--out",
        &model,
        "--test",
        &c,
        "--eval-every",
        "5",
    ]));
    ok(&glint(&["eval", "--model", &model, "--test", &c]));
    let base = root.join("baseline");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::copy(root.join("glint/phi.npy"), base.join("phi.npy")).unwrap();
    std::fs::copy(root.join("glint/vocab.txt"), base.join("vocab.txt")).unwrap();
    std::fs::write(
        base.join("run.json"),
        r#"{"system": "baseline <x>", "dataset": "corpus", "train_seconds": 3.5}"#,
    )
    .unwrap();
    let b = base.to_str().unwrap().to_owned();
    ok(&glint(&[
        "eval", "--model", &b, "--test", &c, "--alpha", "0.5",
    ]));
    (model, b)
}

#[test]
fn report_renders_tables_plots_and_top_words() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, base) = runs(tmp.path());
    let out = tmp.path().join("report");
    ok(&glint(&[
        "report",
        "--runs",
        &model,
        &base,
        "--out",
        out.to_str().unwrap(),
    ]));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    assert!(html.contains("baseline &lt;x&gt;") && html.contains("<polyline"));
    assert!(md.contains("| corpus | 4 | glint-lda |"), "{md}");
    assert!(md.contains("### baseline <x> K=4 corpus"));

    let Some(chrome) = chromium() else {
        eprintln!(
            "skipped the browser check: Chromium is not installed (apt-get install chromium)"
        );
        return;
    };
    let shot = tmp.path().join("report.png");
    let profile = tmp.path().join("chrome-profile");
    // Bounded: a browser that hangs fails the test instead of stalling CI.
    let run = Command::new("timeout")
        .arg("120")
        .arg(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1000,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", out.join("report.html").display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "chromium failed: {log}");
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("rror") || l.contains("Uncaught")))
        .collect();
    assert!(
        console_errors.is_empty(),
        "console errors: {console_errors:?}"
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}
