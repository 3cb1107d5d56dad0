//! `glint-lda report`: the comparison report over run directories. Each run directory holds the
//! `eval.json` that `glint-lda eval` wrote, and optionally `run.json` (`system`, `dataset`,
//! `train_seconds`, `tokens_per_s`: what baseline scripts record), `metrics.jsonl` (glint-lda's
//! training log: the held-out curve and throughput) and `phi.npy` + `vocab.txt` (top words, shown
//! by their `display.txt` forms when the model has them).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use evaluation::{RunSummary, TopicModel, render_html, render_markdown};

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run directories (each with the eval.json of `glint-lda eval`).
    #[arg(long, num_args = 1.., required = true)]
    pub runs: Vec<PathBuf>,
    /// Output directory: report.html and report.md.
    #[arg(long)]
    pub out: PathBuf,
    /// Title of the report.
    #[arg(long, default_value = "glint-lda comparison")]
    pub title: String,
    /// Topics whose top words are listed per run.
    #[arg(long, default_value_t = 20)]
    pub show_topics: usize,
    /// Show the models' terms (stems) instead of their most frequent surface forms.
    #[arg(long)]
    pub raw_terms: bool,
}

fn read_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn load_run(dir: &Path, show_topics: usize, raw_terms: bool) -> anyhow::Result<RunSummary> {
    let eval = read_json(&dir.join("eval.json"))?;
    let Some(perplexity) = eval["heldout"]["perplexity"].as_f64() else {
        bail!("{}: eval.json has no heldout.perplexity", dir.display());
    };
    let run = if dir.join("run.json").is_file() {
        read_json(&dir.join("run.json"))?
    } else {
        serde_json::Value::Null
    };
    let (mut curve, mut rates, mut last_seconds) = (Vec::new(), Vec::new(), None);
    if let Ok(text) = fs::read_to_string(dir.join("metrics.jsonl")) {
        for line in text.lines() {
            let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let t = m["train_seconds"].as_f64();
            if let (Some(t), Some(p)) = (t, m["heldout_perplexity"].as_f64()) {
                curve.push((t, p));
            }
            if let Some(r) = m["tokens_per_s"].as_f64() {
                rates.push(r);
            }
            last_seconds = t.or(last_seconds);
        }
    }
    rates.sort_by(f64::total_cmp);
    let median_rate = rates.get(rates.len() / 2).copied();
    let model = TopicModel::load(dir).ok();
    // Display forms line up with vocab.txt when their count matches; otherwise the terms.
    let shown = lda::export::read_shown_terms(dir, raw_terms)
        .ok()
        .filter(|s| model.as_ref().is_some_and(|m| s.len() == m.vocab.len()));
    let top_words = model.as_ref().map_or_else(Vec::new, |m| {
        let words = shown.as_ref().unwrap_or(&m.vocab);
        (0..m.topics.min(show_topics))
            .map(|k| {
                m.top_words(k, 10)
                    .into_iter()
                    .map(|w| words[w as usize].clone())
                    .collect()
            })
            .collect()
    });
    let dataset = run["dataset"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let test = eval["test"].as_str().unwrap_or("");
            Path::new(test)
                .file_name()
                .map_or_else(|| test.to_owned(), |n| n.to_string_lossy().into_owned())
        });
    Ok(RunSummary {
        system: run["system"].as_str().unwrap_or("glint-lda").to_owned(),
        dataset,
        topics: eval["topics"].as_u64().unwrap_or(0) as usize,
        heldout_perplexity: perplexity,
        train_seconds: run["train_seconds"].as_f64().or(last_seconds),
        tokens_per_s: run["tokens_per_s"].as_f64().or(median_rate),
        curve,
        top_words,
    })
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let mut runs = Vec::new();
    for dir in &args.runs {
        runs.push(
            load_run(dir, args.show_topics, args.raw_terms)
                .with_context(|| format!("run {}", dir.display()))?,
        );
    }
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let html = args.out.join("report.html");
    fs::write(&html, render_html(&args.title, &runs))
        .with_context(|| format!("writing {}", html.display()))?;
    let md = args.out.join("report.md");
    fs::write(&md, render_markdown(&args.title, &runs))
        .with_context(|| format!("writing {}", md.display()))?;
    eprintln!(
        "report of {} runs: {} and {}",
        runs.len(),
        html.display(),
        md.display()
    );
    Ok(ExitCode::SUCCESS)
}
