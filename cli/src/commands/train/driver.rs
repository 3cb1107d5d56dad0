//! `glint-lda train --master ADDR --workers N`: the driver of worker processes. It creates the
//! model, publishes the job for `glint-lda worker`, follows the iterations (held-out perplexity
//! and metrics while the workers go on) and writes the model directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lda::cluster::{Driver, DriverEvents, DriverIteration, DriverOptions};
use lda::corpus::CorpusSummary;
use lda::view::ModelView;

use super::{
    HeldOut, METRICS_FILE, MetricsLine, TrainArgs, connect_master, run_prefix, train_config,
    truncate_metrics, write_corpus_info,
};

/// A job name safe inside model names and master keys.
fn check_job_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!("--job '{name}': use 1 to 64 letters, digits, '-', '_' or '.'");
    }
    Ok(())
}

pub(super) fn run_driver(args: &TrainArgs, workers: u32) -> anyhow::Result<ExitCode> {
    if workers == 0 {
        bail!("--workers must be at least 1");
    }
    check_job_name(&args.job)?;
    let Some(addr) = args.master.as_deref() else {
        bail!("--workers needs --master");
    };
    if args.optimize_interval.is_some_and(|n| n > 0) {
        bail!(
            "--optimize-interval needs every document's topic counts in one process; it is not available with --workers"
        );
    }
    if args.sync.is_some() {
        bail!(
            "--sync chooses how the threads of one process share their moves; with --workers each worker shares its pushes as it goes"
        );
    }
    let started = Instant::now();
    // Threads of this process serve the held-out evaluation only.
    let threads = super::super::default_threads(args.threads);
    let corpus = CorpusSummary::scan(&args.corpus)
        .with_context(|| format!("reading the corpus {}", args.corpus.display()))?;
    let mut config = train_config(args, corpus.vocab, 1)?;
    config.model_prefix = run_prefix(&format!("lda-{}", args.job));
    eprintln!(
        "corpus: {} documents, {} tokens, {} words; K = {}, alpha = {}, beta = {}, {:?} sampler, {workers} workers",
        corpus.ids.len(),
        corpus.tokens,
        corpus.vocab,
        args.topics,
        config.hyper.alpha,
        args.beta,
        config.sampler
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    args.metrics.start(rt.handle())?;
    let client = connect_master(args, addr, &rt)?;
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let opts = DriverOptions {
        job: args.job.clone(),
        workers,
        iterations: args.iterations,
        staleness: args.staleness,
        stall: Duration::from_secs(args.stall_secs),
        heartbeat_timeout: Duration::from_secs(args.heartbeat_timeout_secs),
        checkpoint_every: args.checkpoint_every,
        max_recoveries: args.max_recoveries,
    };
    let metrics_path = args.out.join(METRICS_FILE);
    let mut driver = if args.resume {
        let d = Driver::resume(&client, rt.handle().clone(), corpus, &opts, &args.out)
            .with_context(|| format!("resuming the run recorded in {}", args.out.display()))?;
        truncate_metrics(&metrics_path, d.iteration())?;
        eprintln!(
            "resumed the job '{}' at iteration {} (attempt {})",
            args.job,
            d.iteration(),
            d.job().attempt
        );
        d
    } else {
        if metrics_path.exists() {
            fs::remove_file(&metrics_path)
                .with_context(|| format!("removing {}", metrics_path.display()))?;
        }
        Driver::start(
            &client,
            rt.handle().clone(),
            corpus,
            &config,
            &opts,
            &args.out,
        )
        .context("starting the job on the cluster")?
    };
    eprintln!(
        "job '{}' published; each worker runs: glint-lda worker --master {addr} --job {} --corpus DIR --index I (I = 0..{})",
        args.job,
        args.job,
        workers - 1
    );
    let outcome = (|| {
        let heldout = HeldOut::open(args, driver.view(), threads)?;
        let mut events = Events::new(args, heldout, metrics_path.clone(), driver.iteration())?;
        driver.run(&mut events)?;
        events.bar.finish();
        write_corpus_info(&args.corpus, &args.out)
    })();
    match outcome {
        Ok(()) => {
            driver
                .clean_up()
                .context("removing the run's models from the servers")?;
            eprintln!(
                "done: {} iterations on {workers} workers, {:.1}s; model in {}",
                driver.iteration(),
                started.elapsed().as_secs_f64(),
                args.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            // Stop the workers first (they watch the abort flag), then free the servers.
            if let Err(abort) = driver.abort() {
                tracing::warn!(error = %abort, "could not tell the workers to stop");
            }
            std::thread::sleep(Duration::from_millis(500));
            if let Err(clean) = driver.clean_up() {
                tracing::warn!(error = %clean, "could not remove the run's models");
            }
            Err(e)
        }
    }
}

/// The driver's view of the run on the console and in `metrics.jsonl`.
struct Events {
    heldout: Option<HeldOut>,
    metrics: File,
    metrics_path: PathBuf,
    bar: ProgressBar,
    eval_every: u32,
    iterations: u32,
    tokens: u64,
    /// Wall-clock since every worker joined (the workers never wait for the driver); kept per
    /// iteration so a rollback rewinds it.
    train_seconds: Vec<f64>,
}

impl Events {
    fn new(
        args: &TrainArgs,
        heldout: Option<HeldOut>,
        metrics_path: PathBuf,
        at: u32,
    ) -> anyhow::Result<Self> {
        let metrics = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .with_context(|| format!("opening {}", metrics_path.display()))?;
        let style = ProgressStyle::with_template(
            "{bar:30} {pos}/{len} iterations  {msg}  [{elapsed_precise} < {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = crate::console::bar(Some(u64::from(args.iterations)), style, false);
        bar.set_position(u64::from(at));
        let tokens = std::fs::read_to_string(args.corpus.join("manifest.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["tokens"].as_u64())
            .unwrap_or(0);
        Ok(Events {
            heldout,
            metrics,
            metrics_path,
            bar,
            eval_every: args.eval_every,
            iterations: args.iterations,
            tokens,
            train_seconds: vec![0.0; at as usize + 1],
        })
    }
}

impl DriverEvents for Events {
    fn joined(&mut self, joined: usize, workers: usize) {
        if joined > 0 {
            crate::console::note(format!("{joined} of {workers} workers have joined"));
        }
    }

    fn iteration(&mut self, it: &DriverIteration, view: ModelView<'_>) -> lda::Result<()> {
        let t = it.iteration as usize;
        let before = self.train_seconds.get(t - 1).copied().unwrap_or(0.0);
        self.train_seconds.truncate(t);
        self.train_seconds.resize(t, before);
        let now = before + it.seconds;
        self.train_seconds.push(now);
        let due = it.iteration.is_multiple_of(self.eval_every) || it.iteration == self.iterations;
        let held = match &self.heldout {
            Some(h) if due => Some(
                h.score(view, &vec![view.hyper.alpha; view.hyper.topics as usize])
                    .map_err(|e| lda::LdaError::Cluster(format!("held-out evaluation: {e:#}")))?,
            ),
            _ => None,
        };
        if let Some(p) = held {
            super::HELDOUT.set(p);
            crate::console::note(format!(
                "iteration {}: held-out perplexity {p:.2} after {now:.1}s of training",
                it.iteration
            ));
        }
        let line = serde_json::to_string(&MetricsLine::from_driver(it, now, held, self.tokens))
            .map_err(|e| lda::LdaError::Cluster(e.to_string()))?;
        writeln!(self.metrics, "{line}")
            .and_then(|_| self.metrics.flush())
            .map_err(|e| lda::LdaError::io(&self.metrics_path, e))?;
        self.bar
            .set_message(format!("{:.2}M tokens/s", it.tokens_per_s / 1e6));
        self.bar.set_position(u64::from(it.iteration));
        Ok(())
    }

    fn rollback(&mut self, to: u32, why: &str) -> lda::Result<()> {
        crate::console::note(format!("recovering: {why}; rolling back to iteration {to}"));
        truncate_metrics(&self.metrics_path, to)
            .map_err(|e| lda::LdaError::Cluster(format!("{e:#}")))?;
        self.bar.set_position(u64::from(to));
        Ok(())
    }

    fn recovered(&mut self, attempt: u32, from: u32) {
        crate::console::note(format!(
            "recovered (attempt {attempt}): the rebuilt model passed the count invariants; continuing from iteration {from}"
        ));
    }
}
