//! `glint-lda server`: one parameter-server shard. It binds its listener, starts serving, registers
//! its address with the master (which answers with its shard index), prints
//! `listening on ADDR as shard N` on stdout, and serves until SIGINT or SIGTERM, sending the master
//! a heartbeat every `--heartbeat-secs`. With `--data-dir` the index is kept there
//! (`shard-id.json`), and a restart claims it again from whatever address the server now has.
//! A server whose index the master has given to another live server stops with an error. Bound
//! beyond loopback it refuses to start without a token or client certificates (see `security`);
//! with `--tls-ca` it registers with a TLS master.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use ps_core::grpc::{GrpcCoordinator, ServeOptions};
use ps_core::registration::Registration;
use ps_core::{AggregatorRegistry, ClientConfig, Limits, Shard, ShardConfig};

use super::security::{ClientSecurity, ServerSecurity};
use super::server_config::ServerSettings;

// Kept here for the commands that read a token through this path (`train`, `worker`).
pub(crate) use super::security::read_token;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Address of the master, HOST:PORT.
    #[arg(long)]
    pub master: String,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: String,
    /// Address clients use to reach this server; defaults to the bound address.
    #[arg(long)]
    pub advertise: Option<String>,
    #[command(flatten)]
    pub security: ServerSecurity,
    #[command(flatten)]
    pub metrics: super::metrics_endpoint::MetricsArgs,
    /// How this server reaches the master to register (TLS when the master serves TLS).
    #[command(flatten)]
    pub master_security: ClientSecurity,
    /// Directory for snapshots and for this server's shard index (`shard-id.json`), which a
    /// restart with the same directory claims again, from any address; without it, save and
    /// load requests are refused and every start registers as a new server.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seconds between heartbeats to the master (keep it well under the master's
    /// --server-timeout-secs).
    #[arg(long, default_value_t = 5)]
    pub heartbeat_secs: u64,
    /// Largest gRPC message accepted, in MiB [default: 64].
    #[arg(long)]
    pub max_message_mb: Option<usize>,
    /// How long to keep trying to register with the master, in seconds (also how long a
    /// restarted server waits for its predecessor's heartbeats to lapse).
    #[arg(long, default_value_t = 30)]
    pub register_timeout_secs: u64,
    /// Most rows or elements in one request, and most values in one pull's answer
    /// [default: 16777216].
    #[arg(long)]
    pub max_request_elements: Option<usize>,
    /// Most bytes one model's partition may allocate when it is created, in MiB [default: 4096].
    #[arg(long)]
    pub max_model_mb: Option<u64>,
    /// Most models this server holds [default: 1024].
    #[arg(long)]
    pub max_models: Option<usize>,
    /// Seconds without a push after which a writer's exactly-once window is dropped (a compact
    /// tombstone keeps answers exact); 0 keeps every writer forever. Must exceed how long a
    /// client retries one push [default: 3600].
    #[arg(long)]
    pub writer_idle_secs: Option<u64>,
    /// Pushes of one writer applied above a missing one before it is given up (then answered
    /// SeqExpired, never silently) [default: 65536].
    #[arg(long)]
    pub dedup_window: Option<usize>,
    /// Most MiB all of this server's model data may take (dense values and sparse rows): a
    /// create or a growing push past it is refused with an error, never applied [default: no cap
    /// beyond --max-model-mb per model].
    #[arg(long, value_name = "MB")]
    pub max_memory_mb: Option<u64>,
    /// Most lock stripes per model partition: its rows are split into up to this many ranges
    /// with a lock each, so pulls and pushes of different rows do not wait for each other
    /// (1: one lock per partition) [default: 64].
    #[arg(long, value_name = "N")]
    pub lock_stripes: Option<usize>,
    /// JSON file of the settings above (same names, snake_case); flags given on the command line
    /// win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: ServerArgs, aggregators: AggregatorRegistry) -> anyhow::Result<ExitCode> {
    if args.heartbeat_secs == 0 {
        bail!("--heartbeat-secs must be at least 1");
    }
    let options = args.security.serve_options()?;
    // Read before binding: a bad certificate file fails before anything is served.
    let register_config = args.master_security.client_config(ClientConfig {
        timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    })?;
    if let Some(dir) = &args.data_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    let file = match &args.config {
        Some(path) => ServerSettings::read(path)?,
        None => ServerSettings::default(),
    };
    let flags = ServerSettings {
        max_request_elements: args.max_request_elements,
        max_model_mb: args.max_model_mb,
        max_models: args.max_models,
        writer_idle_secs: args.writer_idle_secs,
        dedup_window: args.dedup_window,
        max_message_mb: args.max_message_mb,
        max_memory_mb: args.max_memory_mb,
        lock_stripes: args.lock_stripes,
    };
    let (limits, max_message_mb) = flags.resolve(&file)?;
    let options = ServeOptions {
        max_message_bytes: max_message_mb << 20,
        ..options
    };
    runtime()?.block_on(serve(args, options, register_config, limits, aggregators))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    args: ServerArgs,
    options: ServeOptions,
    register_config: ClientConfig,
    limits: Limits,
    aggregators: AggregatorRegistry,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding the server to {}", args.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    args.security.check_exposure(addr, &options)?;
    args.metrics.spawn().await?;
    let advertise = match args.advertise {
        Some(a) => a,
        None if addr.ip().is_unspecified() => {
            bail!("bound to {addr}, which clients cannot dial: pass --advertise HOST:PORT")
        }
        None => addr.to_string(),
    };
    let config = ShardConfig {
        data_dir: args.data_dir.clone(),
        limits,
    };
    let shard = Arc::new(Shard::new(config, aggregators));
    let token = options.token.clone();
    let mut serving = tokio::spawn(ps_core::grpc::serve_shard(
        listener,
        shard.clone(),
        options,
        shutdown_signal(),
    ));

    let coordinator = GrpcCoordinator::new(&args.master, token.as_deref(), &register_config)
        .with_context(|| format!("connecting to the master at {}", args.master))?;
    let registration = Registration {
        data_dir: args.data_dir.clone(),
        patience: Duration::from_secs(args.register_timeout_secs),
        timeout: register_config.timeout,
        ..Registration::new(advertise.clone())
    };
    let id = registration
        .register(&coordinator)
        .await
        .with_context(|| format!("registering {advertise} with the master at {}", args.master))?;
    let index = id.shard;
    // Snapshots record the index, and a load of another shard's snapshot is refused.
    shard.assign_index(index);
    println!("listening on {addr} as shard {index}");
    tracing::info!(%addr, advertise, index, cluster = id.cluster, master = args.master, "server ready");

    let interval = Duration::from_secs(args.heartbeat_secs);
    tokio::select! {
        served = &mut serving => {
            served
                .context("the server task failed")?
                .with_context(|| format!("serving on {addr}"))?;
        }
        // Returns only when the master gave this index to another live server: stop serving,
        // so that clients cannot split between two servers of one shard.
        replaced = registration.heartbeats(&coordinator, &id, interval) => {
            serving.abort();
            return Err(anyhow::Error::new(replaced))
                .with_context(|| format!("shard {index} at {advertise} was replaced; stopping"));
        }
    }
    tracing::info!(%addr, "server stopped");
    Ok(())
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// Completes on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown signal received");
}
