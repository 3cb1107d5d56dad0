//! `glint-lda topics`: the most probable words of each topic of a trained model.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// One line per topic.
    Text,
    /// topic, rank, word, probability.
    Tsv,
    /// An array of {topic, tokens, words: [[word, probability], ...]}.
    Json,
    /// The five inputs of pyLDAvis.prepare, written to --out (see `lda::pyldavis`).
    Pyldavis,
}

#[derive(Args, Debug)]
pub struct TopicsArgs {
    /// Model directory written by `glint-lda train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Words per topic.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Output directory of --format pyldavis.
    #[arg(long, required_if_eq("format", "pyldavis"))]
    pub out: Option<PathBuf>,
    /// Show the model's terms (stems) instead of their most frequent surface forms.
    #[arg(long)]
    pub raw_terms: bool,
}

pub fn run(args: TopicsArgs) -> anyhow::Result<ExitCode> {
    if let (Format::Pyldavis, Some(out)) = (args.format, &args.out) {
        lda::pyldavis::export_pyldavis(&args.model, out, args.raw_terms).with_context(|| {
            format!(
                "writing the pyLDAvis inputs of {} to {}",
                args.model.display(),
                out.display()
            )
        })?;
        eprintln!("pyLDAvis inputs written to {}", out.display());
        return Ok(ExitCode::SUCCESS);
    }
    let topics = lda::topics::top_words(&args.model, args.top, args.raw_terms)
        .with_context(|| format!("reading the model in {}", args.model.display()))?;
    match print(&topics, args.format) {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("writing to stdout"),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

fn print(topics: &[lda::topics::Topic], format: Format) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Text => {
            for t in topics {
                let words: Vec<&str> = t.words.iter().map(|(w, _)| w.as_str()).collect();
                writeln!(
                    out,
                    "topic {:>3} ({} tokens): {}",
                    t.topic,
                    t.tokens,
                    words.join(" ")
                )?;
            }
        }
        Format::Tsv => {
            writeln!(out, "topic\trank\tword\tprobability")?;
            for t in topics {
                for (rank, (w, p)) in t.words.iter().enumerate() {
                    writeln!(out, "{}\t{}\t{}\t{:.6e}", t.topic, rank + 1, w, p)?;
                }
            }
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, topics)?;
            writeln!(out)?;
        }
        // Written as files by `run`.
        Format::Pyldavis => {}
    }
    out.flush()
}
