//! `glint-lda eval`: scores a model directory (glint-lda's or any system's `phi.npy` +
//! `vocab.txt`) with held-out perplexity on a test corpus, and optionally coherence against the
//! training corpus and topic recovery against a known truth. Prints the figures and writes them
//! as JSON.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use evaluation::{
    AlignedDocs, FoldInOptions, PerplexityOptions, TopicModel, Truth, coherence,
    held_out_perplexity, topic_diversity, topic_recovery,
};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model directory holding phi.npy (K × V float64) and vocab.txt (line j = column j).
    #[arg(long)]
    pub model: PathBuf,
    /// Test corpus directory (from `glint-lda ingest`); its terms are aligned to the model's.
    #[arg(long)]
    pub test: PathBuf,
    /// Training (reference) corpus for UMass and NPMI coherence.
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Directory with the true φ (phi.npy and vocab.tsv, as the synthetic generator writes).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Document-topic prior α of the fold-in [default: the model's hyperparameters.json].
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Gibbs sweeps of the fold-in of each test document.
    #[arg(long, default_value_t = 100)]
    pub sweeps: u32,
    /// Sweeps discarded before θ is averaged.
    #[arg(long, default_value_t = 50)]
    pub burn_in: u32,
    /// Seed of the fold-in.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Threads [default: available cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where to write the JSON report [default: MODEL/eval.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Report {
    model: PathBuf,
    test: PathBuf,
    topics: usize,
    vocabulary: usize,
    heldout: evaluation::HeldOutPerplexity,
    sweeps: u32,
    burn_in: u32,
    seed: u64,
    coherence: Option<evaluation::Coherence>,
    topic_diversity: f64,
    truth_hellinger: Option<f64>,
    seconds: f64,
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let threads = super::default_threads(args.threads);
    let model = TopicModel::load(&args.model)
        .with_context(|| format!("loading the model {}", args.model.display()))?;
    let test = AlignedDocs::from_corpus(&args.test, &model)
        .with_context(|| format!("reading the test corpus {}", args.test.display()))?;
    let opts = PerplexityOptions {
        fold_in: FoldInOptions {
            sweeps: args.sweeps,
            burn_in: args.burn_in,
            seed: args.seed,
        },
        alpha: args.alpha,
        threads,
    };
    let heldout = held_out_perplexity(&model, &test, &opts)?;
    let coherence = match &args.train {
        Some(dir) => {
            let reference = AlignedDocs::from_corpus(dir, &model)
                .with_context(|| format!("reading the training corpus {}", dir.display()))?;
            Some(coherence(&model, &reference, 10)?)
        }
        None => None,
    };
    let truth_hellinger = match &args.truth {
        Some(dir) => {
            let truth =
                Truth::load(dir).with_context(|| format!("reading the truth {}", dir.display()))?;
            Some(topic_recovery(&model, &truth)?)
        }
        None => None,
    };
    let report = Report {
        model: args.model.clone(),
        test: args.test.clone(),
        topics: model.topics,
        vocabulary: model.vocab_size(),
        heldout,
        sweeps: args.sweeps,
        burn_in: args.burn_in,
        seed: args.seed,
        coherence,
        topic_diversity: topic_diversity(&model, 25),
        truth_hellinger,
        seconds: started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_string_pretty(&report)?;
    let out = args.out.unwrap_or_else(|| args.model.join("eval.json"));
    std::fs::write(&out, format!("{json}\n"))
        .with_context(|| format!("writing {}", out.display()))?;
    if args.json {
        crate::console::print_line(&json)?;
    } else {
        crate::console::stdout(|out| print_table(out, &report))?;
        eprintln!("written to {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as a table (`out` is stdout, where a closed pipe ends the output quietly).
fn print_table(out: &mut dyn std::io::Write, r: &Report) -> std::io::Result<()> {
    let h = &r.heldout;
    writeln!(
        out,
        "model                 {} (K = {}, V = {})",
        r.model.display(),
        r.topics,
        r.vocabulary
    )?;
    writeln!(out, "held-out perplexity   {:.2}", h.perplexity)?;
    writeln!(
        out,
        "  over                {} held-out / {} observed tokens in {} documents ({} skipped, {} out-of-vocabulary tokens dropped)",
        h.held_out_tokens,
        h.observed_tokens,
        h.documents_scored,
        h.documents_skipped,
        h.out_of_vocabulary_tokens
    )?;
    if let Some(c) = &r.coherence {
        writeln!(
            out,
            "UMass coherence       {:.4}  (top {})",
            c.umass, c.top_n
        )?;
        writeln!(out, "NPMI coherence        {:.4}", c.npmi)?;
    }
    writeln!(
        out,
        "topic diversity       {:.4}  (top 25)",
        r.topic_diversity
    )?;
    if let Some(d) = r.truth_hellinger {
        writeln!(
            out,
            "Hellinger to truth    {d:.4}  (mean over matched topics)"
        )?;
    }
    Ok(())
}
