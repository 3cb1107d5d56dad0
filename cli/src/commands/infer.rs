//! `glint-lda infer`: folds new documents into a trained model (φ fixed) and writes each
//! document's topic distribution to Parquet. Input is a corpus directory (aligned to the model by
//! term) or a text file of one document per line (`id<TAB>text` or plain text, numbered), which
//! goes through the analyzer the training corpus was ingested with (the model's `corpus.json`).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use evaluation::{AlignedDocs, FoldInMethod, FoldInOptions, TopicModel, infer_theta, write_theta};

/// Written beside the model by `train`: where its corpus came from and how it was analysed.
pub const CORPUS_INFO_FILE: &str = "corpus.json";
pub const THETA_FILE: &str = "theta.parquet";

#[derive(Args, Debug)]
pub struct InferArgs {
    /// Model directory (phi.npy, vocab.txt, hyperparameters.json; corpus.json for raw text).
    #[arg(long)]
    pub model: PathBuf,
    /// A corpus directory, or a text file with one document per line (`id<TAB>text` or text;
    /// gzip allowed).
    #[arg(long)]
    pub input: PathBuf,
    /// Output directory: theta.parquet with doc, theta (list of K), top_topics.
    #[arg(long)]
    pub out: PathBuf,
    /// Sweeps over each document.
    #[arg(long, default_value_t = 20)]
    pub sweeps: u32,
    /// Sweeps discarded before θ is averaged.
    #[arg(long, default_value_t = 10)]
    pub burn_in: u32,
    /// mh (Metropolis-Hastings with exact proposals, O(1) per step), sparse (the exact Gibbs
    /// conditional over the document's topics plus a per-word prior table) or gibbs (all K
    /// topics per token, as `eval` does).
    #[arg(long, value_enum, default_value_t = MethodArg::Mh)]
    pub method: MethodArg,
    /// With --method mh: (word, doc) proposal cycles per token and sweep.
    #[arg(long, default_value_t = 1)]
    pub mh_steps: u32,
    /// Document-topic prior α [default: the model's].
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Topics listed in top_topics.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Threads [default: available cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MethodArg {
    Mh,
    Sparse,
    Gibbs,
}

pub fn run(args: InferArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let threads = super::default_threads(args.threads);
    let model = TopicModel::load(&args.model)
        .with_context(|| format!("loading the model {}", args.model.display()))?;
    let alpha = model.alpha_or(args.alpha)?;
    let docs = if args.input.join(datasets::MANIFEST_FILE).is_file() {
        AlignedDocs::from_corpus(&args.input, &model)
            .with_context(|| format!("reading the corpus {}", args.input.display()))?
    } else if args.input.is_file() {
        analyze_text(&args.input, &args.model, &model)?
    } else {
        bail!(
            "{}: neither a corpus directory (no {}) nor a text file",
            args.input.display(),
            datasets::MANIFEST_FILE
        );
    };
    let opts = FoldInOptions {
        sweeps: args.sweeps,
        burn_in: args.burn_in,
        seed: args.seed,
    };
    let t0 = Instant::now();
    let method = match args.method {
        MethodArg::Mh => FoldInMethod::Mh {
            cycles: args.mh_steps,
        },
        MethodArg::Sparse => FoldInMethod::Sparse,
        MethodArg::Gibbs => FoldInMethod::Gibbs,
    };
    let theta = infer_theta(&model, &docs, &alpha, &opts, method, threads)?;
    let secs = t0.elapsed().as_secs_f64();
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let path = args.out.join(THETA_FILE);
    write_theta(
        &path,
        &docs.ids,
        &theta,
        model.topics,
        args.top.min(model.topics),
    )?;
    eprintln!(
        "{} documents ({} tokens kept, {} unknown dropped) in {secs:.2}s ({:.0} documents/s on {threads} threads); {} in {:.1}s",
        docs.len(),
        docs.kept_tokens,
        docs.dropped_tokens,
        docs.len() as f64 / secs.max(1e-9),
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads one document per line and analyses it as the training corpus was.
fn analyze_text(path: &Path, model_dir: &Path, model: &TopicModel) -> anyhow::Result<AlignedDocs> {
    let info_path = model_dir.join(CORPUS_INFO_FILE);
    let info: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(&info_path).with_context(|| {
            format!(
                "{} is needed to analyse raw text like the training corpus (pass a corpus directory instead)",
                info_path.display()
            )
        })?,
    )
    .with_context(|| format!("parsing {}", info_path.display()))?;
    let config: ingest::AnalyzerConfig = serde_json::from_value(info["analyzer"].clone())
        .with_context(|| format!("{}: no valid analyzer settings", info_path.display()))?;
    let mut analyzer = ingest::Analyzer::new(config)?;
    let index = model.term_index();
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader: Box<dyn BufRead> = {
        let mut b = BufReader::new(file);
        let gz = b
            .fill_buf()
            .map(|h| h.starts_with(&[0x1f, 0x8b]))
            .unwrap_or(false);
        if gz {
            Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(b)))
        } else {
            Box::new(b)
        }
    };
    let (mut ids, mut docs) = (Vec::new(), Vec::new());
    let (mut dropped, mut kept) = (0u64, 0u64);
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .with_context(|| format!("reading {} (line {})", path.display(), n + 1))?;
        if read == 0 {
            break;
        }
        n += 1;
        let text = line.trim_end_matches(['\n', '\r']);
        let (id, body) = match text.split_once('\t') {
            Some((id, body)) => (id.to_owned(), body),
            None => (n.to_string(), text),
        };
        let mut doc = Vec::new();
        analyzer.for_each_term(body, &mut |t| match index.get(t) {
            Some(&c) => doc.push(c),
            None => dropped += 1,
        });
        kept += doc.len() as u64;
        ids.push(id);
        docs.push(doc);
    }
    Ok(AlignedDocs {
        ids,
        docs,
        dropped_tokens: dropped,
        kept_tokens: kept,
    })
}
