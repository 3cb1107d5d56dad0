//! `glint-lda train`: trains an LDA model on a corpus directory with an embedded parameter server
//! (in-process shards) or the servers of a running cluster (`--master`), writing metrics,
//! checkpoints and the model directory.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::ProgressStyle;
use lda::{Hyper, IterationStats, LoadedCorpus, TrainConfig, Trainer};
use ps_core::{ClientConfig, ClusterConfig, EmbeddedCluster};
use serde::Serialize;

mod driver;

use driver::run_driver;

pub const METRICS_FILE: &str = "metrics.jsonl";

/// The last held-out perplexity, for `--metrics-addr`.
pub(super) static HELDOUT: std::sync::LazyLock<std::sync::Arc<ps_core::metrics::Gauge>> =
    std::sync::LazyLock::new(|| {
        ps_core::metrics::gauge(
            "glint_driver_heldout_perplexity",
            "Held-out perplexity (document completion) at the last evaluation.",
            &[],
        )
    });

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Corpus directory (from `glint-lda ingest` or the synthetic generator).
    #[arg(long)]
    pub corpus: PathBuf,
    /// Number of topics K.
    #[arg(long)]
    pub topics: u32,
    /// Gibbs iterations (total, counting those before a resumed checkpoint).
    #[arg(long, default_value_t = 100)]
    pub iterations: u32,
    /// Document-topic prior α [default: 50/K].
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Topic-word prior β.
    #[arg(long, default_value_t = 0.01)]
    pub beta: f64,
    /// How each token is drawn: gibbs (the exact conditional, O(K) per token, vectorised), sparse
    /// (the same exact conditional over the document's topics and a tree of the word's, O(K_d +
    /// log K) per token; samples word by word), mh (Metropolis-Hastings cycles, O(1) per token),
    /// or auto (gibbs up to K = 200, sparse above: the measured crossover of time to a held-out
    /// perplexity, see ARCHITECTURE.md).
    #[arg(long, value_enum, default_value_t = SamplerArg::Auto)]
    pub sampler: SamplerArg,
    /// Optimise an asymmetric α every N iterations: the MAP estimate from the documents' topic
    /// counts by Minka's fixed point (MALLET's --optimize-interval, tomotopy's optim_interval);
    /// 0 keeps α symmetric at --alpha [default: 10; with --workers α stays symmetric, and only 0
    /// is accepted].
    #[arg(long, value_name = "N")]
    pub optimize_interval: Option<u32>,
    /// Fixed-point rounds per optimisation of α: 0 (the default) until it converges to the MAP
    /// estimate given the current assignments; N moves it part of the way each time (MALLET
    /// takes 1, tomotopy 10).
    #[arg(long, default_value_t = lda::AlphaOptimization::DEFAULT_ROUNDS, value_name = "N")]
    pub optimize_rounds: u32,
    /// Iterations before α is first optimised (the early assignments say little about it).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub optimize_burn_in: u32,
    /// Metropolis-Hastings cycles (one word-proposal and one doc-proposal step each) per token.
    #[arg(long, default_value_t = 2)]
    pub mh_steps: u32,
    /// Sampler threads [default: available cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed of all random streams.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Model directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Write a checkpoint every N iterations (0: no checkpoints). With --workers, each worker
    /// checkpoints its own part into its --state-dir.
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: u32,
    /// Continue from the checkpoint in the model directory (with --workers: follow the run the
    /// driver recorded there, or restart it from its last checkpoint).
    #[arg(long)]
    pub resume: bool,
    /// In-process parameter-server shards [default: threads].
    #[arg(long)]
    pub shards: Option<usize>,
    /// Tokens per vocabulary block of a sampler thread.
    #[arg(long, default_value_t = 1 << 18)]
    pub block_tokens: usize,
    /// Token order within a vocabulary block: doc (LightLDA's, cache-friendly) or word (the
    /// sparse sampler always samples word by word).
    #[arg(long, value_enum, default_value_t = OrderArg::Doc)]
    pub order: OrderArg,
    /// How sampler threads share their moves: deterministic (each samples against the model as
    /// the iteration began plus its own moves, pushes held until every thread has finished: runs
    /// are reproducible bit for bit, and were as good and faster in the threads benchmark) or
    /// eager (pushes and n_k shared while sampling; timing-dependent) [default: deterministic;
    /// with --workers, workers share eagerly and the flag is refused].
    #[arg(long, value_enum, value_name = "MODE")]
    pub sync: Option<SyncArg>,
    /// Skip the per-iteration log-likelihood (a full pass over the model).
    #[arg(long)]
    pub no_loglik: bool,
    /// Keep the model on the parameter servers registered with this master (gRPC) instead of
    /// in-process shards.
    #[arg(long, value_name = "ADDR")]
    pub master: Option<String>,
    /// With --master: file holding the cluster's shared-secret token.
    #[arg(long, requires = "master")]
    pub token_file: Option<PathBuf>,
    /// With --master: how to reach TLS servers.
    #[command(flatten)]
    pub tls: super::security::ClientSecurity,
    #[command(flatten)]
    pub metrics: super::metrics_endpoint::MetricsArgs,
    /// With --master: wait until this many servers have registered.
    #[arg(long, default_value_t = 1, requires = "master")]
    pub servers: usize,
    /// With --master: drive this many `glint-lda worker` processes instead of sampling here
    /// (each samples its part of the corpus; this process coordinates, evaluates and exports).
    #[arg(long, requires = "master")]
    pub workers: Option<u32>,
    /// With --workers: the job's name, which the workers are given as `--job`.
    #[arg(long, default_value = "lda", requires = "workers")]
    pub job: String,
    /// With --workers: iterations a worker may run ahead of the slowest (0: a barrier at every
    /// iteration, the schedule of an embedded run).
    #[arg(long, default_value_t = 0, requires = "workers")]
    pub staleness: u32,
    /// With --workers: seconds to wait for workers that do not move (joining included).
    #[arg(long, default_value_t = 600, requires = "workers")]
    pub stall_secs: u64,
    /// With --workers: seconds without a worker's heartbeat before it is taken as lost.
    #[arg(long, default_value_t = 15, requires = "workers")]
    pub heartbeat_timeout_secs: u64,
    /// With --workers: how many times a lost worker or server may roll the run back to its last
    /// checkpoint (workers checkpoint every --checkpoint-every iterations into their
    /// --state-dir) before the run fails.
    #[arg(long, default_value_t = 3, requires = "workers")]
    pub max_recoveries: u32,
    /// Test corpus: log its held-out perplexity (document completion) to metrics.jsonl.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// With --test: evaluate every N iterations (and after the last).
    #[arg(long, default_value_t = 10, requires = "test")]
    pub eval_every: u32,
    /// With --test: Gibbs sweeps of each test document's fold-in (half of them burn-in).
    #[arg(long, default_value_t = 100, requires = "test")]
    pub eval_sweeps: u32,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SamplerArg {
    Auto,
    Mh,
    Gibbs,
    Sparse,
}

impl SamplerArg {
    fn resolve(self, topics: u32) -> lda::SamplerKind {
        match self {
            SamplerArg::Mh => lda::SamplerKind::Mh,
            SamplerArg::Gibbs => lda::SamplerKind::Gibbs,
            SamplerArg::Sparse => lda::SamplerKind::Sparse,
            SamplerArg::Auto => lda::SamplerKind::auto(topics),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncArg {
    Deterministic,
    Eager,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OrderArg {
    Doc,
    Word,
}

#[derive(Serialize)]
struct MetricsLine {
    iteration: u32,
    loglik: Option<f64>,
    /// exp(−log p(w, z)/N) of the collapsed joint: a training diagnostic, not a predictive figure.
    joint_perplexity: Option<f64>,
    /// Held-out perplexity by document completion on `--test` (every `--eval-every` iterations).
    heldout_perplexity: Option<f64>,
    tokens_per_s: f64,
    /// This iteration's wall-clock seconds.
    seconds: f64,
    /// Wall-clock seconds of training so far in this process, evaluation excluded.
    train_seconds: f64,
    /// Seconds sampler threads waited for the parameter server (summed over threads).
    ps_wait_seconds: f64,
}

impl MetricsLine {
    fn from_driver(
        s: &lda::cluster::DriverIteration,
        train_seconds: f64,
        heldout: Option<f64>,
        tokens: u64,
    ) -> Self {
        MetricsLine {
            iteration: s.iteration,
            loglik: s.loglik,
            joint_perplexity: s.loglik.map(|ll| lda::loglik::joint_perplexity(ll, tokens)),
            heldout_perplexity: heldout,
            tokens_per_s: s.tokens_per_s,
            seconds: s.seconds,
            train_seconds,
            ps_wait_seconds: 0.0,
        }
    }

    fn new(s: &IterationStats, train_seconds: f64, heldout: Option<f64>) -> Self {
        MetricsLine {
            iteration: s.iteration,
            loglik: s.loglik,
            joint_perplexity: s.joint_perplexity,
            heldout_perplexity: heldout,
            tokens_per_s: s.tokens_per_s,
            seconds: s.seconds,
            train_seconds,
            ps_wait_seconds: s.ps_wait_seconds,
        }
    }
}

/// The test corpus aligned to the training vocabulary, and how to score it.
struct HeldOut {
    docs: evaluation::AlignedDocs,
    opts: evaluation::PerplexityOptions,
}

impl HeldOut {
    fn open(
        args: &TrainArgs,
        view: lda::view::ModelView<'_>,
        threads: usize,
    ) -> anyhow::Result<Option<Self>> {
        let Some(dir) = &args.test else {
            return Ok(None);
        };
        if args.eval_every == 0 || args.eval_sweeps < 2 {
            bail!("--eval-every must be positive and --eval-sweeps at least 2");
        }
        let vocab = view.vocabulary();
        let index = vocab
            .iter()
            .enumerate()
            .map(|(j, t)| (t.as_str(), j as u32))
            .collect();
        let docs = evaluation::AlignedDocs::from_corpus_with(dir, &index)
            .with_context(|| format!("reading the test corpus {}", dir.display()))?;
        eprintln!(
            "test corpus: {} documents, {} tokens in the training vocabulary, {} dropped",
            docs.len(),
            docs.kept_tokens,
            docs.dropped_tokens
        );
        let opts = evaluation::PerplexityOptions {
            fold_in: evaluation::FoldInOptions {
                sweeps: args.eval_sweeps,
                burn_in: args.eval_sweeps / 2,
                seed: args.seed,
            },
            alpha: None,
            threads,
        };
        Ok(Some(HeldOut { docs, opts }))
    }

    /// The held-out perplexity of the model in `view` under the prior `alpha` (α_k per topic).
    fn score(&self, view: lda::view::ModelView<'_>, alpha: &[f64]) -> anyhow::Result<f64> {
        let k = view.hyper.topics as usize;
        let model =
            evaluation::TopicModel::new(k, view.phi()?, view.vocabulary(), Some(alpha.to_vec()))?;
        Ok(evaluation::held_out_perplexity(&model, &self.docs, &self.opts)?.perplexity)
    }
}

/// Keeps the metric lines of iterations up to `through` (a resumed run redoes the later ones).
fn truncate_metrics(path: &Path, through: u32) -> anyhow::Result<()> {
    let Ok(file) = File::open(path) else {
        return Ok(());
    };
    let mut kept = String::new();
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let it = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v.get("iteration").and_then(serde_json::Value::as_u64));
        if it.is_some_and(|i| i <= u64::from(through)) {
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    fs::write(path, kept).with_context(|| format!("writing {}", path.display()))
}

pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    if args.topics < 2 {
        bail!("--topics must be at least 2, got {}", args.topics);
    }
    if let Some(workers) = args.workers {
        return run_driver(&args, workers);
    }
    let threads = super::default_threads(args.threads);
    let started = Instant::now();

    let corpus = LoadedCorpus::open(&args.corpus, threads)
        .with_context(|| format!("loading the corpus {}", args.corpus.display()))?;
    let mut config = train_config(&args, corpus.vocab, threads)?;
    let (docs, tokens) = (corpus.num_docs(), corpus.tokens);
    eprintln!(
        "corpus: {docs} documents, {tokens} tokens, {} words; K = {}, alpha = {alpha}, beta = {}, {threads} threads, {:?} sampler",
        corpus.vocab,
        args.topics,
        args.beta,
        config.sampler,
        alpha = config.hyper.alpha
    );

    // A small runtime for ps-core's async calls; sampling runs on the trainer's own threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    args.metrics.start(rt.handle())?;
    // Embedded shards by default; with --master, remote servers under names unique to this run.
    let (client, _cluster) = match &args.master {
        Some(addr) => {
            let client = connect_master(&args, addr, &rt)?;
            config.model_prefix = run_prefix("lda");
            (client, None)
        }
        None => {
            let cluster = EmbeddedCluster::start(
                args.shards.unwrap_or(threads).max(1),
                ClusterConfig::default(),
            )
            .context("starting the embedded parameter server")?;
            (cluster.client(), Some(cluster))
        }
    };
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let metrics_path = args.out.join(METRICS_FILE);

    let mut trainer = if args.resume {
        if !lda::checkpoint::exists(&args.out) {
            bail!("--resume: no checkpoint in {}", args.out.display());
        }
        let t = Trainer::resume(&client, rt.handle().clone(), corpus, config, &args.out)
            .with_context(|| format!("resuming from {}", args.out.display()))?;
        truncate_metrics(&metrics_path, t.iteration())?;
        eprintln!("resumed at iteration {}", t.iteration());
        t
    } else {
        if metrics_path.exists() {
            fs::remove_file(&metrics_path)
                .with_context(|| format!("removing {}", metrics_path.display()))?;
        }
        Trainer::new(&client, rt.handle().clone(), corpus, config)?
    };
    tracing::info!(
        bytes_per_token = trainer.worker_bytes_per_token(),
        "worker memory"
    );

    let heldout = HeldOut::open(&args, trainer.view(), threads)?;
    let mut metrics = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .with_context(|| format!("opening {}", metrics_path.display()))?;
    let remaining = args.iterations.saturating_sub(trainer.iteration());
    // Through the shared bars: log lines print above it, and `-q` hides it.
    let style = ProgressStyle::with_template(
        "{bar:30} {pos}/{len} iterations  {msg}  [{elapsed_precise} < {eta}]",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = crate::console::bar(Some(u64::from(args.iterations)), style, false);
    bar.set_position(u64::from(trainer.iteration()));
    let mut last: Option<IterationStats> = None;
    let mut train_seconds = 0.0;
    for _ in 0..remaining {
        let stats = trainer.run_iteration()?;
        train_seconds += stats.seconds;
        let due = stats.iteration % args.eval_every == 0 || stats.iteration == args.iterations;
        let held = match &heldout {
            Some(h) if due => Some(h.score(trainer.view(), trainer.alpha().values())?),
            _ => None,
        };
        if let Some(p) = held {
            HELDOUT.set(p);
            bar.println(format!(
                "iteration {}: held-out perplexity {p:.2} after {train_seconds:.1}s of training",
                stats.iteration
            ));
        }
        let line = serde_json::to_string(&MetricsLine::new(&stats, train_seconds, held))?;
        writeln!(metrics, "{line}")
            .with_context(|| format!("writing {}", metrics_path.display()))?;
        let ll = stats
            .loglik
            .map(|l| format!("loglik {l:.4e}, "))
            .unwrap_or_default();
        bar.set_message(format!("{ll}{:.2}M tokens/s", stats.tokens_per_s / 1e6));
        bar.inc(1);
        if args.checkpoint_every > 0 && stats.iteration % args.checkpoint_every == 0 {
            trainer.save_checkpoint(&args.out)?;
        }
        last = Some(stats);
    }
    bar.finish();
    metrics
        .flush()
        .with_context(|| format!("writing {}", metrics_path.display()))?;
    trainer
        .export(&args.out)
        .with_context(|| format!("writing the model to {}", args.out.display()))?;
    write_corpus_info(&args.corpus, &args.out)?;
    if args.master.is_some() {
        // The model now lives in the model directory; free the servers.
        let prefix = &trainer.config().model_prefix;
        for name in [format!("{prefix}nwk"), format!("{prefix}nk")] {
            rt.block_on(client.destroy(&name))
                .with_context(|| format!("removing model {name} from the servers"))?;
        }
    }
    let rate = last.as_ref().map_or(0.0, |s| s.tokens_per_s);
    eprintln!(
        "done: {} iterations, last {:.2}M tokens/s, worker memory {:.1} bytes/token, {:.1}s; model in {}",
        trainer.iteration(),
        rate / 1e6,
        trainer.worker_bytes_per_token(),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The sampler settings from the arguments, for a vocabulary of `vocab` words.
fn train_config(args: &TrainArgs, vocab: u32, threads: usize) -> anyhow::Result<TrainConfig> {
    let hyper = Hyper {
        topics: args.topics,
        vocab,
        alpha: args.alpha.unwrap_or(50.0 / f64::from(args.topics)),
        beta: args.beta,
    };
    let mut config = TrainConfig::new(hyper);
    config.sampler = args.sampler.resolve(args.topics);
    config.mh_cycles = args.mh_steps;
    config.threads = threads;
    config.seed = args.seed;
    config.block_tokens = args.block_tokens;
    config.loglik = !args.no_loglik;
    config.deterministic = args.sync != Some(SyncArg::Eager);
    config.order = match args.order {
        OrderArg::Doc => lda::SampleOrder::Doc,
        OrderArg::Word => lda::SampleOrder::Word,
    };
    let interval = args
        .optimize_interval
        .unwrap_or(lda::AlphaOptimization::DEFAULT_INTERVAL);
    config.optimize_alpha = (interval > 0).then_some(lda::AlphaOptimization {
        interval,
        burn_in: args.optimize_burn_in,
        rounds: args.optimize_rounds,
    });
    config.validate()?;
    Ok(config)
}

/// A client of the cluster at `addr`, once `--servers` servers have registered.
fn connect_master(
    args: &TrainArgs,
    addr: &str,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ps_core::Client> {
    let token = super::server::read_token(args.token_file.as_deref())?;
    let config = args.tls.client_config(ClientConfig::default())?;
    rt.block_on(ps_core::grpc::connect(
        addr,
        token.as_deref(),
        config,
        args.servers,
    ))
    .with_context(|| format!("connecting to the master at {addr}"))
}

/// Model names unique to this run on shared servers.
fn run_prefix(what: &str) -> String {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{what}-{}-{stamp}.", std::process::id())
}

/// Records in the model directory which corpus it was trained on and with which analyzer, so
/// `infer` can analyse raw text the same way.
fn write_corpus_info(corpus: &Path, out: &Path) -> anyhow::Result<()> {
    let manifest = datasets::Manifest::read(corpus)
        .with_context(|| format!("reading the manifest of {}", corpus.display()))?;
    let info = serde_json::json!({
        "corpus": corpus,
        "analyzer": manifest.analyzer,
        "vocabulary_filter": manifest.extra.get("vocabulary_filter"),
    });
    let path = out.join(super::infer::CORPUS_INFO_FILE);
    fs::write(&path, serde_json::to_string_pretty(&info)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}
