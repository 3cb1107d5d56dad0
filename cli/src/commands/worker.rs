//! `glint-lda worker`: one sampler process of a cluster run. It reads the job that
//! `glint-lda train --master ADDR --workers N` published on the master, samples its part of the
//! corpus against the model on the servers, and exits when the run is done.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::ProgressStyle;
use lda::cluster::{WorkerOptions, run_worker};
use ps_core::ClientConfig;

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// Address of the cluster's master.
    #[arg(long, value_name = "ADDR")]
    pub master: String,
    /// Name of the job to join (the driver's `--job`).
    #[arg(long, default_value = "lda")]
    pub job: String,
    /// Corpus directory: the same corpus the driver was given (a copy or a shared mount).
    #[arg(long)]
    pub corpus: PathBuf,
    /// This worker's index, 0 to N−1 [default: $JOB_COMPLETION_INDEX (a Kubernetes Indexed
    /// Job), else $SLURM_PROCID].
    #[arg(long)]
    pub index: Option<u32>,
    /// Number of workers, checked against the job [default: the job's].
    #[arg(long)]
    pub workers: Option<u32>,
    /// Sampler threads [default: available cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// File holding the cluster's shared-secret token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// How to reach TLS servers.
    #[command(flatten)]
    pub tls: super::security::ClientSecurity,
    #[command(flatten)]
    pub metrics: super::metrics_endpoint::MetricsArgs,
    /// Seconds to wait for the job (or, after a failure elsewhere, its next attempt) to be
    /// published.
    #[arg(long, default_value_t = 600)]
    pub wait_secs: u64,
    /// Directory for this worker's checkpoints (written when the driver asks for them with
    /// --checkpoint-every; needed to rejoin a run that rolls back past iteration 0). A local disk
    /// that survives the process: a persistent volume on Kubernetes.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Seconds to wait for other workers that do not move before giving up.
    #[arg(long, default_value_t = 600)]
    pub stall_secs: u64,
}

/// The worker index from the flag or the orchestrator's environment.
fn worker_index(given: Option<u32>) -> anyhow::Result<u32> {
    if let Some(i) = given {
        return Ok(i);
    }
    for var in ["JOB_COMPLETION_INDEX", "SLURM_PROCID"] {
        if let Ok(value) = std::env::var(var) {
            return value
                .trim()
                .parse()
                .with_context(|| format!("${var} = '{value}' is not a worker index"));
        }
    }
    bail!("no --index, and neither $JOB_COMPLETION_INDEX nor $SLURM_PROCID is set")
}

pub fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let index = worker_index(args.index)?;
    let threads = super::default_threads(args.threads);
    let token = super::server::read_token(args.token_file.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    args.metrics.start(rt.handle())?;
    let config = args.tls.client_config(ClientConfig::default())?;
    let connect = |servers: usize| -> lda::Result<ps_core::Client> {
        Ok(rt.block_on(ps_core::grpc::connect(
            &args.master,
            token.as_deref(),
            config.clone(),
            servers,
        ))?)
    };
    eprintln!(
        "worker {index}: waiting for the job '{}' at {}",
        args.job, args.master
    );
    let style =
        ProgressStyle::with_template("{spinner} iteration {pos}  {msg}  [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = crate::console::bar(None, style, false);
    let opts = WorkerOptions {
        index,
        workers: args.workers,
        threads,
        wait: Duration::from_secs(args.wait_secs),
        stall: Duration::from_secs(args.stall_secs),
        state_dir: args.state_dir.clone(),
    };
    let summary = run_worker(
        &connect,
        rt.handle().clone(),
        &args.corpus,
        &args.job,
        &opts,
        |s| {
            bar.set_message(format!("{:.2}M tokens/s", s.tokens_per_s / 1e6));
            bar.set_position(u64::from(s.iteration));
            Ok(())
        },
    )
    .with_context(|| format!("worker {index} of job '{}'", args.job))?;
    bar.finish();
    eprintln!(
        "worker {index} of {}: done, {} documents, {} tokens, {} recoveries, {:.1}s",
        summary.job.workers, summary.documents, summary.tokens, summary.rejoined, summary.seconds
    );
    Ok(ExitCode::SUCCESS)
}
