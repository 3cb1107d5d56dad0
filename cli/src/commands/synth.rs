//! `glint-lda synth`: a corpus drawn from the LDA generative process, with its ground truth beside
//! it (`phi.npy`, K × V; `theta.npy`, D × K), for checking topic recovery (`eval --truth`) and for
//! benchmarks at any scale. Arguments are validated by clap and here into a
//! `datasets::synthetic::SyntheticSpec`; the generator itself is `datasets::synthetic::generate`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum, value_parser};
use datasets::synthetic::{DocLength, PHI_FILE, SyntheticSpec, THETA_FILE, generate};
use indicatif::ProgressStyle;

use crate::console;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocLengthArg {
    /// Poisson with mean --mean-len, redrawn while 0 (no empty documents).
    Poisson,
    /// Exactly --mean-len tokens (rounded) in every document.
    Fixed,
}

/// Generate a synthetic corpus from the LDA generative process, with the true φ and θ.
#[derive(Args, Debug)]
#[command(
    after_help = "The process: φ_k ~ Dirichlet(β) over the vocabulary for each topic, \
    θ_d ~ Dirichlet(α) over the topics for each document, a length (--doc-length), then for each \
    token a topic z ~ θ_d and a word w ~ φ_z.\n\n\
    Writes into --out: manifest.json, vocab.tsv and docs/ (a corpus like \
    `ingest` writes; words are named w0, w1, ... and ranked by frequency), phi.npy (the true \
    topics, K × V float64, columns in vocabulary order) and theta.npy (the true topic mixtures, \
    D × K float64, rows in document order).\n\n\
    Examples:\n  \
    glint-lda synth --docs 2000 --vocab 5000 --topics 20 --out /tmp/syn\n  \
    glint-lda train --corpus /tmp/syn --topics 20 --alpha 0.1 --beta 0.01 --out /tmp/syn-model\n  \
    glint-lda eval --model /tmp/syn-model --test /tmp/syn --truth /tmp/syn\n  \
    glint-lda synth --docs 1000000 --vocab 50000 --topics 100 --no-theta --out /tmp/syn-100m"
)]
pub struct SynthArgs {
    /// Output directory (created; an existing corpus there is replaced).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Number of documents D.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = value_parser!(u64).range(1..))]
    pub docs: u64,
    /// Vocabulary size V.
    #[arg(long, value_name = "V", default_value_t = 1000,
          value_parser = value_parser!(u32).range(1..i64::from(u32::MAX)))]
    pub vocab: u32,
    /// Number of true topics K.
    #[arg(long, value_name = "K", default_value_t = 10, value_parser = value_parser!(u32).range(1..))]
    pub topics: u32,
    /// Concentration of the symmetric Dirichlet prior of each document's topic mixture θ_d
    /// (small: few topics per document).
    #[arg(long, value_name = "A", default_value_t = 0.1, value_parser = positive)]
    pub alpha: f64,
    /// Concentration of the symmetric Dirichlet prior of each topic's word distribution φ_k
    /// (small: few words per topic).
    #[arg(long, value_name = "B", default_value_t = 0.01, value_parser = positive)]
    pub beta: f64,
    /// Mean document length in tokens (at least 1).
    #[arg(long, value_name = "L", default_value_t = 100.0, value_parser = at_least_one)]
    pub mean_len: f64,
    /// How document lengths are drawn.
    #[arg(long, value_enum, default_value_t = DocLengthArg::Poisson)]
    pub doc_length: DocLengthArg,
    /// Random seed: the same arguments and seed give the same files.
    #[arg(long, value_name = "S", default_value_t = 42)]
    pub seed: u64,
    /// Do not write theta.npy (D × K × 8 bytes: 800 MB for a million documents and 100 topics).
    #[arg(long)]
    pub no_theta: bool,
    /// Also write the corpus as text, one document per line of space-separated terms (the input
    /// other toolkits train on).
    #[arg(long, value_name = "PATH")]
    pub export_terms: Option<PathBuf>,
    /// No progress spinner.
    #[arg(long)]
    pub no_progress: bool,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(_) => Err("must be a positive number".into()),
        Err(e) => Err(format!("not a number: {e}")),
    }
}

fn at_least_one(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 1.0 => Ok(v),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(format!("not a number: {e}")),
    }
}

/// Files and directories `synth` (or `ingest`) writes: an output directory holding only these
/// may be written over.
const OWN_ENTRIES: &[&str] = &[
    datasets::MANIFEST_FILE,
    datasets::VOCAB_FILE,
    datasets::DOCS_DIR,
    PHI_FILE,
    THETA_FILE,
    ".synthetic-scratch",
];

/// Validates the arguments into the generator's spec.
fn spec(args: &SynthArgs) -> anyhow::Result<SyntheticSpec> {
    let cells = u64::from(args.topics) * u64::from(args.vocab);
    // φ (f64) and its alias tables (f64 + u32) are held in memory while generating.
    if cells > usize::MAX as u64 / 20 {
        bail!(
            "--topics {} × --vocab {} is too large to hold φ in memory",
            args.topics,
            args.vocab
        );
    }
    Ok(SyntheticSpec {
        documents: args.docs,
        vocabulary: args.vocab,
        topics: args.topics,
        mean_doc_len: args.mean_len,
        doc_length: match args.doc_length {
            DocLengthArg::Poisson => DocLength::Poisson,
            DocLengthArg::Fixed => DocLength::Fixed,
        },
        alpha: args.alpha,
        beta: args.beta,
        seed: args.seed,
        write_theta: !args.no_theta,
    })
}

/// Refuses to write into a directory holding anything but a previous corpus (a typo in --out
/// must not scatter files into, say, a home directory); removes a previous θ that this run
/// would leave stale.
fn prepare_out(args: &SynthArgs) -> anyhow::Result<()> {
    let out = &args.out;
    if out.exists() && !out.is_dir() {
        bail!("--out {} exists and is not a directory", out.display());
    }
    if out.is_dir() {
        let entries =
            std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", out.display()))?;
            let name = entry.file_name();
            let own = OWN_ENTRIES.iter().any(|e| name == *e)
                || args.export_terms.as_deref().and_then(Path::file_name) == Some(name.as_os_str());
            if !own {
                bail!(
                    "--out {} holds {} and other files that are not a corpus; choose a new or \
                     empty directory",
                    out.display(),
                    Path::new(&name).display()
                );
            }
        }
        let theta = out.join(THETA_FILE);
        if args.no_theta && theta.exists() {
            std::fs::remove_file(&theta)
                .with_context(|| format!("removing the previous {}", theta.display()))?;
        }
    }
    Ok(())
}

pub fn run(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let spec = spec(&args)?;
    prepare_out(&args)?;
    let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bar = console::bar(None, style, args.no_progress);
    let phi_mb = (u64::from(spec.topics) * u64::from(spec.vocabulary) * 20) as f64 / 1e6;
    bar.set_message(format!(
        "generating {} documents, K = {}, V = {} (φ: {phi_mb:.0} MB in memory)",
        spec.documents, spec.topics, spec.vocabulary
    ));
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    let generated = generate(&spec, &args.out);
    bar.finish_and_clear();
    let manifest =
        generated.with_context(|| format!("generating a corpus in {}", args.out.display()))?;
    let secs = started.elapsed().as_secs_f64();

    let out = args.out.display();
    let mut summary = format!(
        "generated {} documents, {} tokens, {} terms, {} topics in {secs:.2} s ({:.1}M tokens/s)\n",
        manifest.documents,
        manifest.tokens,
        manifest.vocabulary_size,
        spec.topics,
        manifest.tokens as f64 / secs.max(1e-9) / 1e6
    );
    let _ = writeln!(summary, "  true φ           {out}/{PHI_FILE}");
    if spec.write_theta {
        let _ = writeln!(summary, "  true θ           {out}/{THETA_FILE}");
    }
    if let Some(path) = &args.export_terms {
        let corpus = datasets::Corpus::open(&args.out)?;
        let lines = datasets::export_terms(&corpus, path)
            .with_context(|| format!("exporting terms to {}", path.display()))?;
        let _ = writeln!(
            summary,
            "  as text          {} ({lines} lines)",
            path.display()
        );
    }
    let _ = write!(summary, "corpus written to {out}");
    console::print_line(summary)?;
    Ok(ExitCode::SUCCESS)
}
